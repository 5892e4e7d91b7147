//! The local backend's metadata: what a data file's [`Meta`] is, and the sidecar records that
//! carry the SHA-256 and content type recorded at put (`.artifact-gateway/meta/<path>.json`).
//!
//! A sidecar is believed only for the data file version it was written for (its validator is
//! the data file's ETag). Parsed records are remembered in memory by [`FileVersion`], so a hot
//! read costs one stat and no sidecar read; a file rewritten, replaced or touched by another
//! tool has a new version and shows no digest rather than a wrong one.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::SystemTime;

use super::fs::{etag_of, read_small, TempGuard};
use super::LocalStorage;
use crate::error::{Error, Result};
use crate::storage::sidecar::Record;
use crate::storage::{guess_content_type, ArtifactPath, Meta};

/// Sidecars remembered in memory (the cache is emptied when it is full).
const SIDECAR_CACHE_ENTRIES: usize = 8192;

/// Parsed sidecars by artifact path, each valid only for the data file version it was read
/// for.
pub(super) type SidecarCache =
    std::sync::Mutex<HashMap<ArtifactPath, (FileVersion, Option<Record>)>>;

/// What identifies one version of a data file: a replaced, rewritten or touched file differs
/// in at least one field (a put renames a new inode into place; an in-place write or a touch
/// moves the change time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileVersion {
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileVersion {
    fn of(md: &std::fs::Metadata) -> Self {
        FileVersion {
            ino: md.ino(),
            size: md.len(),
            mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
            ctime_ns: md.ctime() as i128 * 1_000_000_000 + md.ctime_nsec() as i128,
        }
    }
}

impl LocalStorage {
    fn sidecar_path(&self, path: &ArtifactPath) -> PathBuf {
        let mut p = self.inner.meta.clone();
        for seg in path.segments() {
            p.push(seg);
        }
        let name = format!(
            "{}.json",
            p.file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        p.set_file_name(name);
        p
    }

    /// The sidecar record of the data file `md` describes: from memory when it was already read
    /// for this very version of the file, else from disk (blocking).
    pub(super) fn recorded(&self, path: &ArtifactPath, md: &std::fs::Metadata) -> Option<Record> {
        let version = FileVersion::of(md);
        let cache = &self.inner.sidecars;
        if let Some((v, r)) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(path) {
            if *v == version {
                return r.clone();
            }
        }
        let record = read_small(&self.sidecar_path(path))
            .and_then(|b| Record::matching(&b, md.len(), &etag_of(md)));
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= SIDECAR_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(path.clone(), (version, record.clone()));
        record
    }

    pub(super) async fn meta_of(&self, path: &ArtifactPath, md: &std::fs::Metadata) -> Meta {
        let file = self.sidecar_path(path);
        let sidecar = tokio::task::spawn_blocking(move || read_small(&file))
            .await
            .ok()
            .flatten();
        let sidecar = sidecar.and_then(|b| Record::matching(&b, md.len(), &etag_of(md)));
        meta_from(path, md, sidecar)
    }

    pub(super) async fn write_sidecar(&self, path: &ArtifactPath, sidecar: &Record) -> Result<()> {
        let target = self.sidecar_path(path);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| Error::io("cannot create metadata directory", e))?;
        }
        let tmp = self.staging_name(".meta").await?;
        // A full disk may fail the write: leave no temporary file behind.
        let guard = TempGuard(Some(tmp.clone()));
        tokio::fs::write(&tmp, sidecar.to_json())
            .await
            .map_err(|e| Error::io("cannot write metadata", e).with_path(path.as_str()))?;
        tokio::fs::rename(&tmp, &target)
            .await
            .map_err(|e| Error::io("cannot place metadata", e).with_path(path.as_str()))?;
        guard.keep();
        Ok(())
    }

    /// Removes the sidecar of a deleted artifact, on disk and in memory.
    pub(super) async fn forget_sidecar(&self, path: &ArtifactPath) {
        let _ = tokio::fs::remove_file(self.sidecar_path(path)).await;
        self.inner
            .sidecars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(path);
    }
}

pub(super) fn meta_from(
    path: &ArtifactPath,
    md: &std::fs::Metadata,
    sidecar: Option<Record>,
) -> Meta {
    Meta {
        path: path.clone(),
        size: md.len(),
        last_modified: md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        etag: etag_of(md),
        sha256: sidecar.as_ref().and_then(Record::sha256),
        content_type: Some(
            sidecar
                .as_ref()
                .and_then(Record::content_type)
                .map(str::to_string)
                .unwrap_or_else(|| guess_content_type(path)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::path::Path;
    use std::time::Duration;

    use bytes::Bytes;
    use futures::StreamExt;

    use super::*;
    use crate::storage::{ByteStream, GetOptions, Sha256, Storage, Upload};

    fn body(bytes: &'static [u8]) -> ByteStream {
        futures::stream::iter([Ok(Bytes::from_static(bytes))]).boxed()
    }

    async fn stored(dir: &Path) -> (LocalStorage, ArtifactPath, PathBuf) {
        std::fs::create_dir_all(dir).unwrap();
        let store = LocalStorage::new(dir).unwrap();
        let path = ArtifactPath::parse("jobs/a.jar").unwrap();
        store
            .put(&path, Upload::new(body(b"first version")))
            .await
            .unwrap();
        // The digest comes back, and is now remembered in memory.
        let meta = store.head(&path).await.unwrap();
        assert_eq!(meta.sha256, Some(Sha256::of(b"first version")));
        (store, path, dir.join("jobs/a.jar"))
    }

    async fn body_of(store: &LocalStorage, path: &ArtifactPath) -> Vec<u8> {
        let mut res = store.get(path, GetOptions::default()).await.unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = res.body.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    // A clock tick apart, so the change shows in the file's times.
    fn tick() {
        std::thread::sleep(Duration::from_millis(20));
    }

    #[tokio::test]
    async fn a_file_rewritten_in_place_is_never_served_with_the_remembered_digest() {
        let dir = tempfile::tempdir().unwrap();
        let (store, path, file) = stored(dir.path()).await;
        tick();
        // Same inode, same size, new bytes: another tool writing into the file.
        let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.write_all(b"second versio").unwrap();
        drop(f);
        let res = store.get(&path, GetOptions::default()).await.unwrap();
        assert_eq!(res.meta.sha256, None, "the sidecar describes other bytes");
        assert_eq!(body_of(&store, &path).await, b"second versio");
        assert_eq!(store.head(&path).await.unwrap().sha256, None);
    }

    #[tokio::test]
    async fn a_file_replaced_or_touched_by_another_tool_loses_the_remembered_digest() {
        let dir = tempfile::tempdir().unwrap();
        let (store, path, file) = stored(dir.path()).await;
        tick();
        let other = dir.path().join("other");
        std::fs::write(&other, b"first version").unwrap();
        std::fs::rename(&other, &file).unwrap();
        assert_eq!(store.head(&path).await.unwrap().sha256, None);

        let (store, path, file) = stored(&dir.path().join("again")).await;
        tick();
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(SystemTime::now()).unwrap();
        drop(f);
        assert_eq!(store.head(&path).await.unwrap().sha256, None);
    }

    #[tokio::test]
    async fn a_new_put_is_served_with_its_own_digest() {
        let dir = tempfile::tempdir().unwrap();
        let (store, path, _) = stored(dir.path()).await;
        store
            .put(&path, Upload::new(body(b"second version")))
            .await
            .unwrap();
        let res = store.get(&path, GetOptions::default()).await.unwrap();
        assert_eq!(res.meta.sha256, Some(Sha256::of(b"second version")));
        assert_eq!(body_of(&store, &path).await, b"second version");
        store.delete(&path).await.unwrap();
        std::fs::write(dir.path().join("jobs/a.jar"), b"second version").unwrap();
        assert_eq!(store.head(&path).await.unwrap().sha256, None);
    }
}
