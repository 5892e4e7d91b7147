//! Conditional requests and ranges, decided once, per RFC 9110.
//!
//! Precedence (RFC 9110 §13.2.2): If-Match → If-Unmodified-Since → If-None-Match →
//! If-Modified-Since → (GET with Range) If-Range. Entity tags compare strongly for If-Match and
//! If-Range, weakly for If-None-Match. Dates compare at one-second resolution, as sent on the
//! wire. Malformed dates are ignored, as the RFC requires; a malformed Range is ignored (200).
//! Several ranges in one request are answered with the whole body (200): no client of ours
//! asks for them, and a single stream keeps the server simple and fast.

use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{header, HeaderMap, Method};
use http_range_header::{EndPosition, RangeUnsatisfiableError, StartPosition};

use crate::storage::Meta;

/// What the preconditions say about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    Proceed,
    /// 304 (GET/HEAD only).
    NotModified,
    /// 412.
    Failed,
}

/// What the Range header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeDecision {
    Full,
    Partial(Range<u64>),
    /// 416 with `Content-Range: bytes */<size>`.
    Unsatisfiable,
}

/// The strong validator as sent on the wire: `"<etag>"`.
pub fn quoted_etag(meta: &Meta) -> String {
    let mut s = String::with_capacity(meta.etag.len() + 2);
    s.push('"');
    s.push_str(&meta.etag);
    s.push('"');
    s
}

/// Whether the request carries any precondition header (its answer may then need no body).
pub fn has_conditions(headers: &HeaderMap) -> bool {
    [
        header::IF_MATCH,
        header::IF_UNMODIFIED_SINCE,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
    ]
    .iter()
    .any(|h| headers.contains_key(h))
}

/// Evaluates the preconditions against the current artifact (`None`: it does not exist).
pub fn evaluate(method: &Method, headers: &HeaderMap, meta: Option<&Meta>) -> Precondition {
    let safe = method == Method::GET || method == Method::HEAD;
    // Step 1 / 2: If-Match, else If-Unmodified-Since.
    if let Some(v) = header_str(headers, header::IF_MATCH) {
        let ok = match meta {
            None => false,
            Some(m) => etag_list_matches(v, &m.etag, true),
        };
        if !ok {
            return Precondition::Failed;
        }
    } else if let (Some(v), Some(m)) = (header_str(headers, header::IF_UNMODIFIED_SINCE), meta) {
        if let Ok(date) = httpdate::parse_http_date(v) {
            if truncate(m.last_modified) > date {
                return Precondition::Failed;
            }
        }
    }
    // Step 3 / 4: If-None-Match, else If-Modified-Since (GET/HEAD only).
    if let Some(v) = header_str(headers, header::IF_NONE_MATCH) {
        let matched = match meta {
            None => false,
            Some(m) => etag_list_matches(v, &m.etag, false),
        };
        if matched {
            return if safe {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if let (true, Some(v), Some(m)) =
        (safe, header_str(headers, header::IF_MODIFIED_SINCE), meta)
    {
        if let Ok(date) = httpdate::parse_http_date(v) {
            if truncate(m.last_modified) <= date {
                return Precondition::NotModified;
            }
        }
    }
    Precondition::Proceed
}

/// Decides the byte range of a GET, after the preconditions passed.
pub fn range(headers: &HeaderMap, meta: &Meta) -> RangeDecision {
    let Some(value) = header_str(headers, header::RANGE) else {
        return RangeDecision::Full;
    };
    if let Some(if_range) = header_str(headers, header::IF_RANGE) {
        if !if_range_holds(if_range, meta) {
            return RangeDecision::Full;
        }
    }
    let parsed = match http_range_header::parse_range_header(value) {
        Ok(parsed) => parsed,
        // `bytes=-0` is well-formed but can never be satisfied (RFC 9110 §14.1.1: a suffix range
        // is satisfiable only with a non-zero length): 416, like any other single range that
        // cannot be served. Found by the property tests (tests/properties.rs).
        Err(RangeUnsatisfiableError::ZeroSuffix) if !value.contains(',') => {
            return RangeDecision::Unsatisfiable
        }
        Err(_) => return RangeDecision::Full,
    };
    if parsed.ranges.len() != 1 {
        return RangeDecision::Full;
    }
    let size = meta.size;
    let r = parsed.ranges[0];
    let (start, end_inclusive) = match (r.start, r.end) {
        (StartPosition::FromLast(n), _) => {
            if size == 0 {
                return RangeDecision::Unsatisfiable;
            }
            (size.saturating_sub(n), size - 1)
        }
        (StartPosition::Index(s), EndPosition::LastByte) => {
            if s >= size {
                return RangeDecision::Unsatisfiable;
            }
            (s, size - 1)
        }
        (StartPosition::Index(s), EndPosition::Index(e)) => {
            if s > e {
                return RangeDecision::Full; // syntactically invalid: ignore
            }
            if s >= size {
                return RangeDecision::Unsatisfiable;
            }
            (s, e.min(size - 1))
        }
    };
    RangeDecision::Partial(start..end_inclusive + 1)
}

fn if_range_holds(value: &str, meta: &Meta) -> bool {
    let v = value.trim();
    if v.starts_with('"') || v.starts_with("W/") {
        // Strong comparison: weak tags never match.
        return !v.starts_with("W/") && unquote(v) == Some(meta.etag.as_str());
    }
    match httpdate::parse_http_date(v) {
        Ok(date) => truncate(meta.last_modified) == date,
        Err(_) => false,
    }
}

fn etag_list_matches(list: &str, etag: &str, strong: bool) -> bool {
    if list.trim() == "*" {
        return true;
    }
    list.split(',').map(str::trim).any(|candidate| {
        let (weak, tag) = match candidate.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, candidate),
        };
        if strong && weak {
            return false;
        }
        unquote(tag) == Some(etag)
    })
}

/// The opaque part of an entity tag written `"…"`; `None` for anything else (weak or bare).
pub fn unquote(tag: &str) -> Option<&str> {
    tag.strip_prefix('"')?.strip_suffix('"')
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn truncate(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::ArtifactPath;
    use http::HeaderValue;

    fn meta() -> Meta {
        Meta {
            path: ArtifactPath::parse("a.jar").unwrap(),
            size: 100,
            last_modified: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            etag: "abc".into(),
            sha256: None,
            content_type: None,
        }
    }

    fn h(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        m
    }

    const ABC: &str = "\"abc\"";
    const BEFORE: &str = "Tue, 14 Nov 2023 22:13:19 GMT";
    const AT: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

    #[test]
    fn precedence() {
        use header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_UNMODIFIED_SINCE};
        use Precondition::{Failed, NotModified, Proceed};
        let m = meta();
        let (get, put) = (Method::GET, Method::PUT);
        // (method, conditions, whether the artifact exists, decision)
        let cases = [
            (&get, vec![(IF_MATCH, ABC)], true, Proceed),
            (&get, vec![(IF_MATCH, "\"x\", \"abc\"")], true, Proceed),
            (&get, vec![(IF_MATCH, "W/\"abc\"")], true, Failed),
            (&get, vec![(IF_MATCH, "*")], false, Failed),
            // If-Match wins over a failing If-Unmodified-Since.
            (
                &get,
                vec![(IF_MATCH, ABC), (IF_UNMODIFIED_SINCE, BEFORE)],
                true,
                Proceed,
            ),
            (&get, vec![(IF_UNMODIFIED_SINCE, BEFORE)], true, Failed),
            (&get, vec![(IF_UNMODIFIED_SINCE, AT)], true, Proceed),
            (&get, vec![(IF_NONE_MATCH, "W/\"abc\"")], true, NotModified),
            (&put, vec![(IF_NONE_MATCH, "*")], true, Failed),
            (&put, vec![(IF_NONE_MATCH, "*")], false, Proceed),
            // If-None-Match present: If-Modified-Since is ignored.
            (
                &get,
                vec![(IF_NONE_MATCH, "\"zzz\""), (IF_MODIFIED_SINCE, AT)],
                true,
                Proceed,
            ),
            (&get, vec![(IF_MODIFIED_SINCE, AT)], true, NotModified),
            (&get, vec![(IF_MODIFIED_SINCE, BEFORE)], true, Proceed),
            (&get, vec![(IF_MODIFIED_SINCE, "garbage")], true, Proceed),
        ];
        for (method, conditions, exists, want) in cases {
            let current = exists.then_some(&m);
            assert_eq!(
                evaluate(method, &h(&conditions), current),
                want,
                "{method} {conditions:?}, exists: {exists}"
            );
        }
    }

    #[test]
    fn ranges() {
        let m = meta();
        let r = |v: &str| range(&h(&[(header::RANGE, v)]), &m);
        assert_eq!(r("bytes=0-9"), RangeDecision::Partial(0..10));
        assert_eq!(r("bytes=90-"), RangeDecision::Partial(90..100));
        assert_eq!(r("bytes=-10"), RangeDecision::Partial(90..100));
        assert_eq!(r("bytes=-1000"), RangeDecision::Partial(0..100));
        assert_eq!(r("bytes=50-1000"), RangeDecision::Partial(50..100));
        assert_eq!(r("bytes=100-"), RangeDecision::Unsatisfiable);
        assert_eq!(r("bytes=-0"), RangeDecision::Unsatisfiable);
        assert_eq!(r("bytes=-0,0-1"), RangeDecision::Full);
        assert_eq!(r("bytes=0-1,5-6"), RangeDecision::Full);
        assert_eq!(r("items=0-1"), RangeDecision::Full);
        assert_eq!(r("bytes=5-1"), RangeDecision::Full);
        let with_if_range = |ir: &str| {
            range(
                &h(&[(header::RANGE, "bytes=0-0"), (header::IF_RANGE, ir)]),
                &m,
            )
        };
        assert_eq!(with_if_range("\"abc\""), RangeDecision::Partial(0..1));
        assert_eq!(with_if_range("\"other\""), RangeDecision::Full);
        assert_eq!(with_if_range("W/\"abc\""), RangeDecision::Full);
        assert_eq!(with_if_range(AT), RangeDecision::Partial(0..1));
        assert_eq!(with_if_range(BEFORE), RangeDecision::Full);
    }
}
