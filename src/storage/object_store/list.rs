//! Listing for the `object_store` adapter: ONE page of one level (delimiter `/`,
//! `start-after`, `max-keys`), never the whole bucket; see the adapter's module doc for the
//! order entries come in.

use std::borrow::Cow;
use std::time::SystemTime;

use ::object_store::list::PaginatedListOptions;

use super::{etag_of, map_err, ObjectStoreStorage};
use crate::error::Result;
use crate::storage::{ArtifactPath, Entry, ListOptions, ListPage};

impl ObjectStoreStorage {
    /// One page of one level below `dir`, from one or a few store pages.
    pub(super) async fn list_page(
        &self,
        dir: &ArtifactPath,
        opts: ListOptions,
    ) -> Result<ListPage> {
        let base = self.dir_prefix(dir);
        let limit = opts.limit.max(1);
        let after = opts.after.clone();
        let mut entries: Vec<(String, Entry)> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = PaginatedListOptions {
                offset: if token.is_none() {
                    after.as_ref().map(|a| format!("{base}{a}"))
                } else {
                    None
                },
                delimiter: Some(Cow::Borrowed("/")),
                // One more than asked to learn whether a next page exists, plus room for the
                // `after` entry itself coming back as a directory.
                max_keys: Some((limit + 2).min(1000)),
                page_token: token.take(),
                ..Default::default()
            };
            let prefix_arg = if base.is_empty() {
                None
            } else {
                Some(base.as_str())
            };
            let page = self
                .lister
                .list_paginated(prefix_arg, req)
                .await
                .map_err(|e| map_err(e, dir))?;
            for p in &page.result.common_prefixes {
                let Some(name) = child_name(p.as_ref(), &base) else {
                    continue;
                };
                if after.as_deref() == Some(name) || dir.child(name).is_err() {
                    continue;
                }
                entries.push((format!("{name}/"), Entry::dir(name)));
            }
            for o in &page.result.objects {
                let Some(name) = child_name(o.location.as_ref(), &base) else {
                    continue;
                };
                if after.as_deref() == Some(name) || dir.child(name).is_err() {
                    continue;
                }
                // A listing carries no object metadata; a digest would cost a HEAD per entry.
                let entry = Entry::file(
                    name,
                    o.size,
                    Some(SystemTime::from(o.last_modified)),
                    Some(etag_of(o)),
                    None,
                );
                entries.push((name.to_string(), entry));
            }
            match page.page_token {
                Some(t) if entries.len() <= limit => token = Some(t),
                Some(_) => break,
                None => break,
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        let truncated = entries.len() > limit;
        entries.truncate(limit);
        let entries: Vec<Entry> = entries.into_iter().map(|(_, e)| e).collect();
        Ok(ListPage::new(entries, truncated))
    }
}

/// The single segment of `key` below `base`, if it is one.
fn child_name<'a>(key: &'a str, base: &str) -> Option<&'a str> {
    let name = key.strip_prefix(base)?.trim_end_matches('/');
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_below_a_base() {
        assert_eq!(child_name("p/a/b.jar", "p/a/"), Some("b.jar"));
        assert_eq!(child_name("p/a/d/", "p/a/"), Some("d"));
        assert_eq!(child_name("p/a/", "p/a/"), None);
        assert_eq!(child_name("p/a/d/e", "p/a/"), None);
        assert_eq!(child_name("q/a", "p/"), None);
        assert_eq!(child_name("top.jar", ""), Some("top.jar"));
    }
}
