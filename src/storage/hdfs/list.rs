//! Listing for the HDFS backend. HDFS orders names by *signed* bytes, not by UTF-8 order, and
//! its client cannot start after a name, so the page is chosen and sorted here.

use std::collections::BTreeMap;

use hdfs_native::client::FileStatus;

use super::errors::is_not_found;
use super::{map_error, mtime, validator, HdfsStorage};
use crate::error::Result;
use crate::storage::path::RESERVED_SEGMENT;
use crate::storage::{ArtifactPath, Entry, ListOptions, ListPage};

impl HdfsStorage {
    /// One level below `dir`: the whole directory streams past and only the best `limit + 1`
    /// names are kept (the client cannot start after a name).
    pub(super) async fn list_page(
        &self,
        dir: &ArtifactPath,
        opts: ListOptions,
    ) -> Result<ListPage> {
        let dir_abs = self.abs(dir.as_str());
        let limit = opts.limit.max(1);
        let after = opts.after.as_deref();
        let iter = self.client.list_status_iter(&dir_abs, false);
        // The best `limit + 1` names in UTF-8 order; the rest is dropped as it streams past.
        let mut best: BTreeMap<String, FileStatus> = BTreeMap::new();
        while let Some(item) = iter.next().await {
            let st = match item {
                Ok(st) => st,
                Err(e) if is_not_found(&e) => return Ok(ListPage::default()),
                Err(e) => return Err(map_error("list", e).with_path(dir.as_str())),
            };
            if st.path.trim_end_matches('/') == dir_abs.trim_end_matches('/') {
                return Ok(ListPage::default()); // `dir` is a file: HDFS lists the file itself
            }
            let name = st.path.rsplit('/').next().unwrap_or("").to_string();
            if name == RESERVED_SEGMENT
                || dir.child(&name).is_err()
                || after.is_some_and(|a| name.as_str() <= a)
            {
                continue;
            }
            if best.len() > limit && best.last_key_value().is_some_and(|(k, _)| &name >= k) {
                continue;
            }
            best.insert(name, st);
            if best.len() > limit + 1 {
                best.pop_last();
            }
        }
        let more = best.len() > limit;
        let entries: Vec<Entry> = best
            .into_iter()
            .take(limit)
            .map(|(name, st)| {
                if st.isdir {
                    Entry::dir(name)
                } else {
                    Entry::file(
                        name,
                        st.length as u64,
                        Some(mtime(&st)),
                        Some(validator(&st)),
                        None,
                    )
                }
            })
            .collect();
        Ok(ListPage::new(entries, more))
    }
}
