//! Listing for the opendal adapter: one level (delimiter `/`), starting after `after` on the
//! server, about `limit` keys read, never the whole bucket; directories that key order puts
//! out of name order are probed (see the adapter's module doc).

use std::collections::BTreeMap;
use std::time::SystemTime;

use ::opendal::ErrorKind as OdKind;
use futures::StreamExt;

use super::OpendalStorage;
use crate::error::Result;
use crate::storage::etag::unquote;
use crate::storage::path::RESERVED_SEGMENT;
use crate::storage::{ArtifactPath, Entry, ListOptions, ListPage};

impl OpendalStorage {
    /// One page of one level below `dir`, exactly name-sorted.
    pub(super) async fn list_entries(
        &self,
        dir: &ArtifactPath,
        opts: ListOptions,
    ) -> Result<ListPage> {
        let dir_key = dir.as_dir_prefix();
        let limit = opts.limit.max(1);
        let after = opts.after.as_deref();
        // A few spare entries cover the names a page filters out (the reserved directory,
        // names that are not valid artifact names, a directory named `after` itself).
        let page = (limit + 8).min(1000);
        let mut known: BTreeMap<String, Entry> = BTreeMap::new();
        let mut cursor: Option<String> = after.map(|a| format!("{dir_key}{a}"));
        let mut last_raw: Option<String> = None;
        let mut exhausted = false;
        while known.len() <= limit {
            let (entries, ended) = self.list_page(&dir_key, cursor.as_deref(), page).await?;
            for e in &entries {
                let key = e.path().to_string();
                if last_raw.as_ref().is_none_or(|l| &key > l) {
                    last_raw = Some(key.clone());
                }
                if let Some(entry) = self.entry_of(dir, &dir_key, e, after) {
                    known.entry(entry.name.clone()).or_insert(entry);
                }
            }
            if ended {
                exhausted = true;
                break;
            }
            if last_raw == cursor {
                // No progress (a directory prefix repeated by the server): stop here.
                break;
            }
            cursor = last_raw.clone();
        }
        if !exhausted {
            if let Some(last) = &last_raw {
                self.probe_out_of_order_dirs(dir, &dir_key, last, after, limit, &mut known)
                    .await?;
            }
        }
        let more = known.len() > limit || !exhausted;
        let entries: Vec<Entry> = known.into_values().take(limit).collect();
        Ok(ListPage::new(entries, more))
    }

    /// Reads one page of at most `page` raw listing entries after `start_after` (a key relative
    /// to the root). Returns the entries and whether the listing ended.
    pub(super) async fn list_page(
        &self,
        dir_key: &str,
        start_after: Option<&str>,
        page: usize,
    ) -> Result<(Vec<::opendal::Entry>, bool)> {
        let list_path = if dir_key.is_empty() { "/" } else { dir_key };
        let mut fut = self.op.lister_with(list_path).recursive(false).limit(page);
        if let Some(s) = start_after {
            fut = fut.start_after(s);
        }
        let mut lister = match fut.await {
            Ok(l) => l,
            Err(e) if e.kind() == OdKind::NotFound => return Ok((Vec::new(), true)),
            Err(e) => return Err(self.err("list", e, None)),
        };
        let mut out = Vec::with_capacity(page.min(1024));
        while out.len() < page {
            match lister.next().await {
                None => return Ok((out, true)),
                Some(Ok(entry)) => out.push(entry),
                Some(Err(e)) if e.kind() == OdKind::NotFound => return Ok((out, true)),
                Some(Err(e)) => return Err(self.err("list", e, None)),
            }
        }
        Ok((out, false))
    }

    /// Whether `dir_key` + `name` + `/` has anything under it (one `max-keys=1` list).
    async fn dir_exists(&self, dir_key: &str, name: &str) -> Result<bool> {
        let (entries, _) = self
            .list_page(&format!("{dir_key}{name}/"), None, 1)
            .await?;
        Ok(!entries.is_empty())
    }

    /// The listing entry for a raw opendal entry, or `None` when it is hidden or filtered.
    fn entry_of(
        &self,
        dir: &ArtifactPath,
        dir_key: &str,
        e: &::opendal::Entry,
        after: Option<&str>,
    ) -> Option<Entry> {
        let rel = e.path().strip_prefix(dir_key)?;
        let is_dir = rel.ends_with('/');
        let name = rel.trim_end_matches('/');
        if name.is_empty()
            || name.contains('/')
            || name == RESERVED_SEGMENT
            || dir.child(name).is_err()
        {
            return None;
        }
        if after.is_some_and(|a| name <= a) {
            return None;
        }
        if is_dir {
            return Some(Entry::dir(name));
        }
        let md = e.metadata();
        Some(Entry::file(
            name,
            md.content_length(),
            md.last_modified().map(SystemTime::from),
            md.etag().map(|t| unquote(t).to_string()),
            None,
        ))
    }

    /// Directories whose key sorts after the last listed key but whose name sorts before some
    /// listed name are exactly the prefixes `d` of the last key's name followed by a character
    /// below `/`. Probes each one that could land on this page.
    async fn probe_out_of_order_dirs(
        &self,
        dir: &ArtifactPath,
        dir_key: &str,
        last_key: &str,
        after: Option<&str>,
        limit: usize,
        known: &mut BTreeMap<String, Entry>,
    ) -> Result<()> {
        let Some(rel) = last_key.strip_prefix(dir_key) else {
            return Ok(());
        };
        let last_name = rel.trim_end_matches('/');
        let cutoff = known.keys().nth(limit).cloned();
        for (i, b) in last_name.bytes().enumerate() {
            if i == 0 || b >= b'/' || !last_name.is_char_boundary(i) {
                continue;
            }
            let candidate = &last_name[..i];
            if after.is_some_and(|a| candidate <= a)
                || cutoff.as_deref().is_some_and(|c| candidate >= c)
                || known.get(candidate).is_some_and(|e| e.is_dir)
                || dir.child(candidate).is_err()
            {
                continue;
            }
            if self.dir_exists(dir_key, candidate).await? {
                known.insert(candidate.to_string(), Entry::dir(candidate));
            }
        }
        Ok(())
    }
}
