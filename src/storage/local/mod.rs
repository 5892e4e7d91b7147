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

#[cfg(target_os = "linux")]
mod fast;
mod fs;
mod meta;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;

use self::fs::{
    escape, etag_of, not_found_or_io, remove_stale_temp_files, resolve_root, sync_dir, TempGuard,
};
use self::meta::{meta_from, SidecarCache};
use super::blocking::blocking;
use super::errors::{directory_in_the_way, exists, file_in_the_way, is_a_directory};
use super::file_io;
use super::path::RESERVED_SEGMENT;
use super::sidecar::Record;
use super::{
    ArtifactPath, ByteStream, Capabilities, Entry, GetOptions, GetResult, HashingBody, ListOptions,
    ListPage, Meta, PutMode, PutOptions, PutResult, Sha256, Storage, Upload,
};
use crate::error::{Error, ErrorKind, Result};

/// Bodies up to this size are read in the same blocking-pool trip as the open and stat.
const SMALL_BODY: u64 = 64 * 1024;
const LOCK_STRIPES: usize = 64;
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
    sidecars: SidecarCache,
    /// The inline path for reads the kernel's caches can answer.
    #[cfg(target_os = "linux")]
    fast: fast::Fast,
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
        #[cfg(target_os = "linux")]
        let fast = fast::Fast::new(&root);
        Ok(LocalStorage {
            inner: Arc::new(Inner {
                root,
                tmp,
                meta,
                staging_ready: AtomicBool::new(false),
                locks,
                sidecars: SidecarCache::default(),
                #[cfg(target_os = "linux")]
                fast,
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
        let meta = meta_from(path, &md, sidecar);
        #[cfg(target_os = "linux")]
        self.inner.fast.remember(&md, &meta);
        Ok((meta, file))
    }

    fn lock_for(&self, path: &ArtifactPath) -> &Mutex<()> {
        let mut h = DefaultHasher::new();
        path.hash(&mut h);
        &self.inner.locks[(h.finish() as usize) % LOCK_STRIPES]
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
        #[cfg(target_os = "linux")]
        if let Some(meta) = self.inner.fast.head(path) {
            return Ok(meta);
        }
        let this = self.clone();
        let path = path.clone();
        // One trip to the blocking pool for resolve + stat + sidecar: this is the hot path.
        blocking(move || this.open_meta(&path, false).map(|(meta, _)| meta)).await
    }

    async fn get(&self, path: &ArtifactPath, opts: GetOptions) -> Result<GetResult> {
        #[cfg(target_os = "linux")]
        if let Some(found) = self.inner.fast.get(path, &opts, SMALL_BODY) {
            let (meta, found, range) = found?;
            let source = match found {
                fast::Found::Bytes(b) => Source::Read(b),
                fast::Found::File(f) => Source::File(f),
            };
            return Ok(body_of(meta, source, range, path));
        }
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
        Ok(body_of(meta, source, range, path))
    }

    async fn put(&self, path: &ArtifactPath, upload: Upload) -> Result<PutResult> {
        let Upload { body, opts } = upload;
        path.require_artifact()?;
        let target = self.prepare_parent(path).await?;
        let (tmp, sha) = self.stage(path, body, &opts).await?;
        let guard = TempGuard(Some(tmp.clone()));
        let content_type = opts.content_type_for(path);
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
                self.forget_sidecar(path).await;
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
        self.forget_sidecar(path).await;
        #[cfg(target_os = "linux")]
        self.inner.fast.forget(path);
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

/// The result of a read from its source.
fn body_of(
    meta: Meta,
    source: Source,
    range: std::ops::Range<u64>,
    path: &ArtifactPath,
) -> GetResult {
    match source {
        Source::Read(bytes) => GetResult::whole(meta, range, bytes),
        Source::File(file) => {
            // file_io's stream checks its length itself.
            let body = file_io::stream(file, range.end - range.start, path);
            GetResult::exact(meta, range, body)
        }
    }
}

/// What a GET streams from.
enum Source {
    /// A small body, already read.
    Read(bytes::Bytes),
    /// An open file positioned at the range's start.
    File(std::fs::File),
}
