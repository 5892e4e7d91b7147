//! ETag spelling: the one place that adds and strips the quotes of an entity tag.
//!
//! [`Meta::etag`](super::Meta) carries a validator *without* quotes; stores and HTTP spell it
//! with them (`"abc"`), and some stores or proxies add a weak prefix (`W/"abc"`) or stray
//! white space. Every backend converts through these two functions, so a tag read from a store
//! and a tag a client sends back compare equal.

/// The bare validator: white space trimmed, a `W/` prefix and the surrounding quotes removed.
pub fn unquote(tag: &str) -> &str {
    let t = tag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.trim_matches('"')
}

/// The quoted form a store expects in `If-Match` / `If-None-Match`; an already quoted tag is
/// not quoted twice.
pub fn quote(tag: &str) -> String {
    format!("\"{}\"", unquote(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_quotes_weak_prefix_and_white_space_and_quotes_once() {
        let spelled = [
            ("\"abc\"", "abc"),
            ("abc", "abc"),
            (" W/\"abc-2\" ", "abc-2"),
            ("W/\"ABC\"", "ABC"),
            ("\"\"", ""),
        ];
        for (tag, bare) in spelled {
            assert_eq!(unquote(tag), bare, "{tag:?}");
            assert_eq!(quote(tag), format!("\"{bare}\""), "{tag:?}");
        }
        assert_eq!(unquote(&quote("d41d8cd9-3")), "d41d8cd9-3");
    }
}
