//! The local filesystem backend.
//!
//! Why not `object_store`'s `LocalFileSystem`: it cannot store a digest or content type with a
//! file, cannot do a guarded (`If-Match`) replace, and lists recursively; all three are core
//! to the product, so this small adapter is written here on `tokio::fs`.
//!
//! Layout under the mount's root:
//! - artifacts at their own paths;
//! - `.artifact-gateway/tmp/<uuid>`: uploads in progress (same filesystem, so the final
//!   `rename` is atomic), created by the first write. Leftovers from a crash are never visible
//!   under a final name and are removed by [`Storage::start`] once older than an hour;
//! - `.artifact-gateway/meta/<path>.json`: the sidecar record of `sidecar.rs` (SHA-256, content
//!   type). It is written *before* the data is renamed into place and its validator is the data
//!   file's ETag (inode, mtime, size, which a rename keeps); it is believed only while that
//!   still matches, so a file replaced by another tool shows no digest rather than a wrong one.
//!
//! Opening writes nothing: a missing root is created by [`Storage::start`], the staging and
//! metadata directories by the first put. A read-only directory can be opened and read.
//!
//! Paths that resolve outside the root through a symlink are refused as `InvalidPath`.

mod fs;

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher as _};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::Mutex;

use self::fs::{
    escape, etag_of, not_found_or_io, read_small, remove_stale_temp_files, resolve_root, sync_dir,
    TempGuard,
};
use super::blocking::blocking;
use super::errors::{directory_in_the_way, exists, file_in_the_way, is_a_directory};
use super::file_io;
use super::path::RESERVED_SEGMENT;
use super::sidecar::Record;
use super::{
    guess_content_type, ArtifactPath, ByteStream, Capabilities, Entry, GetOptions, GetResult,
    HashingBody, ListOptions, ListPage, Meta, PutMode, PutOptions, PutResult, Sha256, Storage,
};
use crate::error::{Error, ErrorKind, Result};

/// Bodies up to this size are read in the same blocking-pool trip as the open and stat.
const SMALL_BODY: u64 = 64 * 1024;
const LOCK_STRIPES: usize = 64;
/// Sidecars remembered in memory (the cache is emptied when it is full).
const SIDECAR_CACHE_ENTRIES: usize = 8192;
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Artifacts in a directory on local disk.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    tmp: PathBuf,
    meta: PathBuf,
    /// Set once the staging directory is known to exist (it is created by the first put).
    staging_ready: AtomicBool,
    /// Serializes check-then-replace for `PutMode::Update`/`Create` within this process.
    locks: Vec<Mutex<()>>,
    /// Parsed sidecars by artifact path, each valid only for the data file version it was read
    /// for.
    sidecars: std::sync::Mutex<HashMap<ArtifactPath, (FileVersion, Option<Record>)>>,
}

/// What identifies one version of a data file: a replaced, rewritten or touched file differs
/// in at least one field (a put renames a new inode into place; an in-place write or a touch
/// moves the change time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileVersion {
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
    /// Opens a store rooted at `root`. Writes nothing: a root that does not exist yet is
    /// created by [`Storage::start`] (reads find nothing until then).
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = resolve_root(root.as_ref())?;
        let internal = root.join(RESERVED_SEGMENT);
        let tmp = internal.join("tmp");
        let meta = internal.join("meta");
        let locks = (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect();
        Ok(LocalStorage {
            inner: Arc::new(Inner {
                root,
                tmp,
                meta,
                staging_ready: AtomicBool::new(false),
                locks,
                sidecars: std::sync::Mutex::new(HashMap::new()),
            }),
        })
    }

    /// A new temporary file name in the staging directory, creating the directory once.
    async fn staging_name(&self, suffix: &str) -> Result<PathBuf> {
        if !self.inner.staging_ready.load(Ordering::Relaxed) {
            tokio::fs::create_dir_all(&self.inner.tmp)
                .await
                .map_err(|e| Error::io("cannot create the staging directory", e))?;
            self.inner.staging_ready.store(true, Ordering::Relaxed);
        }
        Ok(self
            .inner
            .tmp
            .join(format!("{}{suffix}", uuid::Uuid::new_v4())))
    }

    fn full_path(&self, path: &ArtifactPath) -> PathBuf {
        let mut p = self.inner.root.clone();
        for seg in path.segments() {
            p.push(seg);
        }
        p
    }

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

    /// Resolves an existing path and refuses it if a symlink leads outside the root.
    async fn resolve_existing(&self, path: &ArtifactPath) -> Result<PathBuf> {
        let full = self.full_path(path);
        let real = tokio::fs::canonicalize(&full)
            .await
            .map_err(|e| not_found_or_io(e, path))?;
        if !real.starts_with(&self.inner.root) {
            return Err(escape(path));
        }
        Ok(real)
    }

    /// Creates the parent directories of `path` after checking that the deepest existing
    /// ancestor is inside the root (so no directory is created through an escaping symlink).
    async fn prepare_parent(&self, path: &ArtifactPath) -> Result<PathBuf> {
        let full = self.full_path(path);
        let parent = full
            .parent()
            .expect("artifact paths have a parent")
            .to_path_buf();
        let mut existing = parent.clone();
        loop {
            match tokio::fs::canonicalize(&existing).await {
                Ok(real) => {
                    if !real.starts_with(&self.inner.root) {
                        return Err(escape(path));
                    }
                    break;
                }
                Err(_) if existing != self.inner.root => {
                    existing.pop();
                }
                Err(e) => return Err(Error::io("the data directory is gone", e)),
            }
        }
        tokio::fs::create_dir_all(&parent).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotADirectory
                || e.kind() == std::io::ErrorKind::AlreadyExists
            {
                file_in_the_way(path)
            } else {
                Error::io("cannot create parent directories", e).with_path(path.as_str())
            }
        })?;
        let real_parent = tokio::fs::canonicalize(&parent)
            .await
            .map_err(|e| Error::io("cannot resolve parent", e))?;
        if !real_parent.starts_with(&self.inner.root) {
            return Err(escape(path));
        }
        Ok(real_parent.join(path.file_name()))
    }

    /// Resolves, (optionally) opens, stats and reads the sidecar, all synchronously: callers run
    /// it on the blocking pool in one trip.
    fn open_meta(&self, path: &ArtifactPath, open: bool) -> Result<(Meta, Option<std::fs::File>)> {
        let full = self.full_path(path);
        let real = std::fs::canonicalize(&full).map_err(|e| not_found_or_io(e, path))?;
        if !real.starts_with(&self.inner.root) {
            return Err(escape(path));
        }
        let (file, md) = if open {
            let f = std::fs::File::open(&real).map_err(|e| not_found_or_io(e, path))?;
            let md = f.metadata().map_err(|e| Error::io("cannot stat", e))?;
            (Some(f), md)
        } else {
            (
                None,
                std::fs::metadata(&real).map_err(|e| not_found_or_io(e, path))?,
            )
        };
        if !md.is_file() {
            return Err(is_a_directory(path));
        }
        let sidecar = self.recorded(path, &md);
        Ok((meta_from(path, &md, sidecar), file))
    }

    /// The sidecar record of the data file `md` describes: from memory when it was already read
    /// for this very version of the file, else from disk (blocking).
    fn recorded(&self, path: &ArtifactPath, md: &std::fs::Metadata) -> Option<Record> {
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

    fn lock_for(&self, path: &ArtifactPath) -> &Mutex<()> {
        let mut h = DefaultHasher::new();
        path.hash(&mut h);
        &self.inner.locks[(h.finish() as usize) % LOCK_STRIPES]
    }

    async fn meta_of(&self, path: &ArtifactPath, md: &std::fs::Metadata) -> Meta {
        let file = self.sidecar_path(path);
        let sidecar = tokio::task::spawn_blocking(move || read_small(&file))
            .await
            .ok()
            .flatten();
        let sidecar = sidecar.and_then(|b| Record::matching(&b, md.len(), &etag_of(md)));
        meta_from(path, md, sidecar)
    }

    async fn write_sidecar(&self, path: &ArtifactPath, sidecar: &Record) -> Result<()> {
        let target = self.sidecar_path(path);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| Error::io("cannot create metadata directory", e))?;
        }
        let tmp = self.staging_name(".meta").await?;
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

    /// Streams the body into a temporary file, fsyncs it and checks size and digest.
    async fn stage(
        &self,
        path: &ArtifactPath,
        body: ByteStream,
        opts: &PutOptions,
    ) -> Result<(PathBuf, Sha256)> {
        let tmp = self.staging_name("").await?;
        let guard = TempGuard(Some(tmp.clone()));
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| Error::io("cannot create a temporary file", e))?
            .into_std()
            .await;
        let mut body = HashingBody::new(body, opts.max_size);
        file_io::receive(file, &mut body, path).await?;
        let (sha, _len) = body.finish(opts.sha256, path)?;
        Ok((guard.keep(), sha))
    }
}

#[async_trait]
impl Storage for LocalStorage {
    fn describe(&self) -> String {
        format!("local:{}", self.inner.root.display())
    }

    /// Everything; `atomic_update` is atomic against other requests to this process (a
    /// striped lock), a second process writing the same directory is not coordinated with.
    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    async fn head(&self, path: &ArtifactPath) -> Result<Meta> {
        let this = self.clone();
        let path = path.clone();
        // One trip to the blocking pool for resolve + stat + sidecar: this is the hot path.
        blocking(move || this.open_meta(&path, false).map(|(meta, _)| meta)).await
    }

    async fn get(&self, path: &ArtifactPath, opts: GetOptions) -> Result<GetResult> {
        let this = self.clone();
        let owned = path.clone();
        let range_opt = opts.range.clone();
        // One blocking-pool trip: resolve, open, stat, sidecar and, for a small body, the read.
        let (meta, source, range) = blocking(move || {
            let (meta, file) = this.open_meta(&owned, true)?;
            opts.check(&meta)?;
            let mut file = file.expect("opened for reading");
            let range = range_opt.unwrap_or(0..meta.size);
            if range.start > 0 {
                use std::io::Seek;
                file.seek(std::io::SeekFrom::Start(range.start))
                    .map_err(|e| Error::io("cannot seek", e))?;
            }
            let len = range.end - range.start;
            let source = if len <= SMALL_BODY {
                Source::Read(
                    file_io::read_all(&file, len).map_err(|e| Error::io("read failed", e))?,
                )
            } else {
                Source::File(file)
            };
            Ok((meta, source, range))
        })
        .await?;
        let body = match source {
            Source::Read(bytes) => futures::stream::once(async { Ok(bytes) }).boxed(),
            Source::File(file) => file_io::stream(file, range.end - range.start, path),
        };
        Ok(GetResult::new(meta, range, body))
    }

    async fn put(
        &self,
        path: &ArtifactPath,
        body: ByteStream,
        opts: PutOptions,
    ) -> Result<PutResult> {
        path.require_artifact()?;
        let target = self.prepare_parent(path).await?;
        let (tmp, sha) = self.stage(path, body, &opts).await?;
        let guard = TempGuard(Some(tmp.clone()));
        let content_type = opts
            .content_type
            .clone()
            .unwrap_or_else(|| guess_content_type(path));
        let staged_md = tokio::fs::metadata(&tmp)
            .await
            .map_err(|e| Error::io("cannot stat the upload", e))?;
        let sidecar = Record::new(
            sha,
            Some(content_type),
            staged_md.len(),
            etag_of(&staged_md),
        );

        let _lock = self.lock_for(path).lock().await;
        let existing = tokio::fs::symlink_metadata(&target).await.ok();
        if existing.as_ref().is_some_and(|md| md.is_dir()) {
            return Err(directory_in_the_way(path));
        }
        // The ETag is what a symlink inside the root points at, as reads report it.
        let current = match (&opts.mode, &existing) {
            (PutMode::Update { .. }, Some(_)) => Some(etag_of(
                &tokio::fs::metadata(&target)
                    .await
                    .map_err(|e| not_found_or_io(e, path))?,
            )),
            (_, Some(_)) => Some(String::new()),
            (_, None) => None,
        };
        opts.mode.check(path, current.as_deref())?;
        self.write_sidecar(path, &sidecar).await?;
        let placed = if opts.mode == PutMode::Create {
            // A hard link fails atomically if the name exists, even against other processes.
            tokio::fs::hard_link(&tmp, &target).await.map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    exists(path)
                } else {
                    Error::io("cannot place the upload", e).with_path(path.as_str())
                }
            })
        } else {
            tokio::fs::rename(&tmp, &target)
                .await
                .map_err(|e| Error::io("cannot place the upload", e).with_path(path.as_str()))
        };
        if let Err(e) = placed {
            if existing.is_none() && e.kind() != ErrorKind::PreconditionFailed {
                // Nothing was there: leave no record of what was not stored either.
                let _ = tokio::fs::remove_file(self.sidecar_path(path)).await;
            }
            return Err(e);
        }
        drop(guard);
        sync_dir(target.parent().expect("has parent")).await;
        let md = tokio::fs::metadata(&target)
            .await
            .map_err(|e| Error::io("cannot stat the stored artifact", e))?;
        Ok(PutResult {
            meta: self.meta_of(path, &md).await,
            created: existing.is_none(),
        })
    }

    async fn delete(&self, path: &ArtifactPath) -> Result<()> {
        let real = self.resolve_existing(path).await?;
        let md = tokio::fs::symlink_metadata(self.full_path(path))
            .await
            .map_err(|e| not_found_or_io(e, path))?;
        if md.is_dir() {
            return Err(is_a_directory(path));
        }
        let _lock = self.lock_for(path).lock().await;
        // Remove the name itself (a symlink inside the root is removed, not its target).
        let _ = real;
        tokio::fs::remove_file(self.full_path(path))
            .await
            .map_err(|e| not_found_or_io(e, path))?;
        let _ = tokio::fs::remove_file(self.sidecar_path(path)).await;
        self.inner
            .sidecars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(path);
        Ok(())
    }

    async fn list(&self, dir: &ArtifactPath, opts: ListOptions) -> Result<ListPage> {
        let real = match self.resolve_existing(dir).await {
            Ok(p) => p,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(ListPage::default()),
            Err(e) => return Err(e),
        };
        let mut rd = match tokio::fs::read_dir(&real).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                return Ok(ListPage::default())
            }
            Err(e) => return Err(not_found_or_io(e, dir)),
        };
        let mut names: Vec<(String, bool)> = Vec::new();
        while let Some(entry) = rd
            .next_entry()
            .await
            .map_err(|e| Error::io("cannot read directory", e))?
        {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if dir.child(&name).is_err() {
                continue; // not a valid artifact name (includes the reserved directory)
            }
            if opts
                .after
                .as_ref()
                .is_some_and(|a| name.as_str() <= a.as_str())
            {
                continue;
            }
            let is_dir = tokio::fs::metadata(entry.path())
                .await
                .map(|m| m.is_dir())
                .unwrap_or(false);
            names.push((name, is_dir));
        }
        names.sort();
        let limit = opts.limit.max(1);
        let truncated = names.len() > limit;
        names.truncate(limit);
        let mut entries = Vec::with_capacity(names.len());
        for (name, is_dir) in names {
            if is_dir {
                entries.push(Entry::dir(name));
                continue;
            }
            let child = dir.child(&name)?;
            let Ok(md) = tokio::fs::metadata(real.join(&name)).await else {
                continue;
            };
            let meta = self.meta_of(&child, &md).await;
            entries.push(Entry::file(
                name,
                meta.size,
                Some(meta.last_modified),
                Some(meta.etag),
                meta.sha256,
            ));
        }
        Ok(ListPage::new(entries, truncated))
    }

    async fn ready(&self) -> Result<()> {
        let md = tokio::fs::metadata(&self.inner.root)
            .await
            .map_err(|e| Error::io("the data directory is not usable", e))?;
        if !md.is_dir() {
            return Err(Error::new(
                ErrorKind::Internal,
                "the data directory is not a directory",
            ));
        }
        Ok(())
    }

    /// Creates a missing root and removes uploads a crash left behind (older than an hour).
    /// On a read-only directory there is nothing to remove and nothing fails.
    async fn start(&self) -> Result<()> {
        let root = self.inner.root.clone();
        let tmp = self.inner.tmp.clone();
        blocking(move || {
            if !root.is_dir() {
                std::fs::create_dir_all(&root).map_err(|e| {
                    Error::io(
                        &format!("cannot create data directory {}", root.display()),
                        e,
                    )
                })?;
            }
            remove_stale_temp_files(&tmp, STALE_TEMP_AGE);
            Ok(())
        })
        .await
    }

    /// Creates the staging directory and a file in it, and removes the file: a read-only
    /// filesystem (`EROFS`) or a directory this process may not write (`EACCES`, `EPERM`) is
    /// [`ErrorKind::ReadOnly`].
    async fn check_writable(&self) -> Result<()> {
        let root = self.inner.root.clone();
        let tmp = self.inner.tmp.clone();
        blocking(move || {
            let probe = tmp.join(format!("{}.probe", uuid::Uuid::new_v4()));
            let result = std::fs::create_dir_all(&tmp)
                .and_then(|()| std::fs::File::create(&probe))
                .map(drop);
            let _ = std::fs::remove_file(&probe);
            match result {
                Ok(()) => Ok(()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ReadOnlyFilesystem
                            | std::io::ErrorKind::PermissionDenied
                    ) =>
                {
                    Err(Error::new(
                        ErrorKind::ReadOnly,
                        format!("{} cannot be written: {e}", root.display()),
                    )
                    .with_source(e))
                }
                Err(e) => Err(Error::io(
                    &format!("cannot write a probe file in {}", tmp.display()),
                    e,
                )),
            }
        })
        .await
    }
}

/// What a GET streams from.
enum Source {
    /// A small body, already read.
    Read(bytes::Bytes),
    /// An open file positioned at the range's start.
    File(std::fs::File),
}

fn meta_from(path: &ArtifactPath, md: &std::fs::Metadata, sidecar: Option<Record>) -> Meta {
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
    use super::*;
    use bytes::Bytes;
    use std::io::Write as _;

    fn body(bytes: &'static [u8]) -> ByteStream {
        futures::stream::iter([Ok(Bytes::from_static(bytes))]).boxed()
    }

    async fn stored(dir: &Path) -> (LocalStorage, ArtifactPath, PathBuf) {
        std::fs::create_dir_all(dir).unwrap();
        let store = LocalStorage::new(dir).unwrap();
        let path = ArtifactPath::parse("jobs/a.jar").unwrap();
        store
            .put(&path, body(b"first version"), PutOptions::default())
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
            .put(&path, body(b"second version"), PutOptions::default())
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
