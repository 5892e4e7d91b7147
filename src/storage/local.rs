//! The local filesystem backend.
//!
//! Why not `object_store`'s `LocalFileSystem`: it cannot store a digest or content type with a
//! file, cannot do a guarded (`If-Match`) replace, and lists recursively; all three are core
//! to the product, so this small adapter is written here on `tokio::fs`.
//!
//! Layout under the mount's root:
//! - artifacts at their own paths;
//! - `.artifact-gateway/tmp/<uuid>`: uploads in progress (same filesystem, so the final
//!   `rename` is atomic). Leftovers from a crash are never visible under a final name and are
//!   removed at start-up once older than an hour;
//! - `.artifact-gateway/meta/<path>.json`: the sidecar with SHA-256 and content type. It is
//!   written *before* the data is renamed into place and names the data file's inode, size and
//!   mtime (which a rename keeps); it is believed only while all three still match, so a file
//!   replaced by another tool shows no digest rather than a wrong one.
//!
//! Paths that resolve outside the root through a symlink are refused as `InvalidPath`.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher as _};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::blocking::blocking;
use super::errors::{exists, not_found};
use super::file_io;
use super::path::RESERVED_SEGMENT;
use super::{
    exact_length, guess_content_type, ArtifactPath, ByteStream, Capabilities, Entry, GetOptions,
    GetResult, HashingBody, ListOptions, ListPage, Meta, PutMode, PutOptions, PutResult, Sha256,
    Storage,
};
use crate::error::{Error, ErrorKind, Result};

/// Bodies up to this size are read in the same blocking-pool trip as the open and stat.
const SMALL_BODY: u64 = 64 * 1024;
const LOCK_STRIPES: usize = 64;
/// Sidecars remembered in memory (the cache is emptied when it is full).
const SIDECAR_CACHE_ENTRIES: usize = 8192;

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
    /// Serializes check-then-replace for `PutMode::Update`/`Create` within this process.
    locks: Vec<Mutex<()>>,
    /// Parsed sidecars by artifact path, each valid only for the data file it was read for.
    sidecars: std::sync::Mutex<HashMap<ArtifactPath, (FileVersion, Option<Described>)>>,
}

/// What identifies one version of a data file: a replaced, rewritten or touched file differs
/// in at least one field (a put renames a new inode into place; an in-place write moves the
/// change time).
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
            mtime_ns: mtime_ns(md),
            ctime_ns: md.ctime() as i128 * 1_000_000_000 + md.ctime_nsec() as i128,
        }
    }
}

/// A sidecar's content, parsed.
#[derive(Debug, Clone)]
struct Described {
    sha256: Option<Sha256>,
    content_type: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Sidecar {
    sha256: String,
    content_type: Option<String>,
    size: u64,
    ino: u64,
    mtime_ns: i128,
}

impl LocalStorage {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        std::fs::create_dir_all(root).map_err(|e| {
            Error::io(
                &format!("cannot create data directory {}", root.display()),
                e,
            )
        })?;
        let root = std::fs::canonicalize(root)
            .map_err(|e| Error::io(&format!("cannot resolve {}", root.display()), e))?;
        let internal = root.join(RESERVED_SEGMENT);
        let tmp = internal.join("tmp");
        let meta = internal.join("meta");
        for dir in [&tmp, &meta] {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(&format!("cannot create {}", dir.display()), e))?;
        }
        remove_stale_temp_files(&tmp, Duration::from_secs(3600));
        let locks = (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect();
        Ok(LocalStorage {
            inner: Arc::new(Inner {
                root,
                tmp,
                meta,
                locks,
                sidecars: std::sync::Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
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
                Error::new(
                    ErrorKind::PreconditionFailed,
                    "a parent of this path is a file",
                )
                .with_path(path.as_str())
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
            return Err(Error::new(
                ErrorKind::NotFound,
                "no artifact at this path (it is a directory)",
            )
            .with_path(path.as_str()));
        }
        let described = self.described(path, &md);
        Ok((meta_from(path, &md, described), file))
    }

    /// The sidecar of the data file `md` describes, from memory when it was already read for
    /// this very version of the file, else from disk (blocking).
    fn described(&self, path: &ArtifactPath, md: &std::fs::Metadata) -> Option<Described> {
        let version = FileVersion::of(md);
        if let Some((v, d)) = self.inner.sidecars.lock().expect("not poisoned").get(path) {
            if *v == version {
                return d.clone();
            }
        }
        let described = std::fs::read(self.sidecar_path(path))
            .ok()
            .and_then(|b| serde_json::from_slice::<Sidecar>(&b).ok())
            .filter(|s| s.size == md.len() && s.ino == md.ino() && s.mtime_ns == mtime_ns(md))
            .map(Described::from);
        let mut cache = self.inner.sidecars.lock().expect("not poisoned");
        if cache.len() >= SIDECAR_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(path.clone(), (version, described.clone()));
        described
    }

    fn lock_for(&self, path: &ArtifactPath) -> &Mutex<()> {
        let mut h = DefaultHasher::new();
        path.hash(&mut h);
        &self.inner.locks[(h.finish() as usize) % LOCK_STRIPES]
    }

    async fn meta_of(&self, path: &ArtifactPath, md: &std::fs::Metadata) -> Meta {
        let sidecar = self.read_sidecar(path, md).await.map(Described::from);
        meta_from(path, md, sidecar)
    }

    async fn read_sidecar(&self, path: &ArtifactPath, md: &std::fs::Metadata) -> Option<Sidecar> {
        let bytes = tokio::fs::read(self.sidecar_path(path)).await.ok()?;
        let s: Sidecar = serde_json::from_slice(&bytes).ok()?;
        (s.size == md.len() && s.ino == md.ino() && s.mtime_ns == mtime_ns(md)).then_some(s)
    }

    async fn write_sidecar(&self, path: &ArtifactPath, sidecar: &Sidecar) -> Result<()> {
        let target = self.sidecar_path(path);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| Error::io("cannot create metadata directory", e))?;
        }
        let tmp = self
            .inner
            .tmp
            .join(format!("{}.meta", uuid::Uuid::new_v4()));
        let json = serde_json::to_vec(sidecar).expect("sidecar serializes");
        tokio::fs::write(&tmp, json)
            .await
            .map_err(|e| Error::io("cannot write metadata", e))?;
        tokio::fs::rename(&tmp, &target)
            .await
            .map_err(|e| Error::io("cannot place metadata", e))?;
        Ok(())
    }

    /// Streams the body into a temporary file, fsyncs it and checks size and digest.
    async fn stage(
        &self,
        path: &ArtifactPath,
        body: ByteStream,
        opts: &PutOptions,
    ) -> Result<(PathBuf, Sha256)> {
        let tmp = self.inner.tmp.join(uuid::Uuid::new_v4().to_string());
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

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            range_read: true,
            pinned_read: true,
            atomic_create: true,
            // Atomic against other requests to this process (a striped lock); a second process
            // writing the same directory is not coordinated with.
            atomic_update: true,
            stores_digest: true,
        }
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
        let len = range.end - range.start;
        let body = match source {
            Source::Read(bytes) => exact_length(
                futures::stream::once(async { Ok(bytes) }).boxed(),
                len,
                path,
            ),
            Source::File(file) => file_io::stream(file, len, path),
        };
        Ok(GetResult { body, meta, range })
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
        let sidecar = Sidecar {
            sha256: sha.to_hex(),
            content_type: Some(content_type),
            size: staged_md.len(),
            ino: staged_md.ino(),
            mtime_ns: mtime_ns(&staged_md),
        };

        let _lock = self.lock_for(path).lock().await;
        let existing = tokio::fs::symlink_metadata(&target).await.ok();
        if let Some(md) = &existing {
            if md.is_dir() {
                return Err(Error::new(
                    ErrorKind::PreconditionFailed,
                    "a directory exists at this path",
                )
                .with_path(path.as_str()));
            }
        }
        match &opts.mode {
            PutMode::Overwrite => {}
            PutMode::Create => {
                if existing.is_some() {
                    return Err(exists(path));
                }
            }
            PutMode::Update { etag } => match &existing {
                None => {
                    return Err(
                        Error::new(ErrorKind::PreconditionFailed, "no artifact to replace")
                            .with_path(path.as_str()),
                    )
                }
                Some(_) => {
                    let md = tokio::fs::metadata(&target)
                        .await
                        .map_err(|e| not_found_or_io(e, path))?;
                    if &etag_of(&md) != etag {
                        return Err(Error::new(
                            ErrorKind::PreconditionFailed,
                            "the artifact's ETag does not match If-Match",
                        )
                        .with_path(path.as_str()));
                    }
                }
            },
        }
        self.write_sidecar(path, &sidecar).await?;
        if opts.mode == PutMode::Create {
            // A hard link fails atomically if the name exists, even against other processes.
            tokio::fs::hard_link(&tmp, &target).await.map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    exists(path)
                } else {
                    Error::io("cannot place the upload", e)
                }
            })?;
        } else {
            tokio::fs::rename(&tmp, &target)
                .await
                .map_err(|e| Error::io("cannot place the upload", e).with_path(path.as_str()))?;
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
            return Err(Error::new(
                ErrorKind::NotFound,
                "no artifact at this path (it is a directory)",
            )
            .with_path(path.as_str()));
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
            .expect("not poisoned")
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
                entries.push(Entry {
                    name,
                    is_dir: true,
                    size: None,
                    last_modified: None,
                    etag: None,
                    sha256: None,
                });
                continue;
            }
            let child = dir.child(&name)?;
            let Ok(md) = tokio::fs::metadata(real.join(&name)).await else {
                continue;
            };
            let meta = self.meta_of(&child, &md).await;
            entries.push(Entry {
                name,
                is_dir: false,
                size: Some(meta.size),
                last_modified: Some(meta.last_modified),
                etag: Some(meta.etag),
                sha256: meta.sha256,
            });
        }
        let next_after = if truncated {
            entries.last().map(|e| e.name.clone())
        } else {
            None
        };
        Ok(ListPage {
            entries,
            next_after,
        })
    }

    async fn ready(&self) -> Result<()> {
        let md = tokio::fs::metadata(&self.inner.tmp)
            .await
            .map_err(|e| Error::io("the data directory is not usable", e))?;
        if !md.is_dir() {
            return Err(Error::new(
                ErrorKind::Internal,
                "the data directory's staging area is not a directory",
            ));
        }
        Ok(())
    }
}

/// What a GET streams from.
enum Source {
    /// A small body, already read.
    Read(bytes::Bytes),
    /// An open file positioned at the range's start.
    File(std::fs::File),
}

impl From<Sidecar> for Described {
    fn from(s: Sidecar) -> Self {
        Described {
            sha256: Sha256::from_hex(&s.sha256).ok(),
            content_type: s.content_type,
        }
    }
}

/// Removes a temporary file on drop unless [`TempGuard::keep`] was called.
struct TempGuard(Option<PathBuf>);

impl TempGuard {
    fn keep(mut self) -> PathBuf {
        self.0.take().expect("kept once")
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn meta_from(path: &ArtifactPath, md: &std::fs::Metadata, sidecar: Option<Described>) -> Meta {
    Meta {
        path: path.clone(),
        size: md.len(),
        last_modified: md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        etag: etag_of(md),
        sha256: sidecar.as_ref().and_then(|s| s.sha256),
        content_type: Some(
            sidecar
                .and_then(|s| s.content_type)
                .unwrap_or_else(|| guess_content_type(path)),
        ),
    }
}

fn etag_of(md: &std::fs::Metadata) -> String {
    format!("{:x}-{:x}-{:x}", md.ino(), mtime_ns(md), md.len())
}

fn mtime_ns(md: &std::fs::Metadata) -> i128 {
    md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128
}

fn not_found_or_io(e: std::io::Error, path: &ArtifactPath) -> Error {
    if matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    ) {
        not_found(path)
    } else {
        Error::io("filesystem error", e).with_path(path.as_str())
    }
}

fn escape(path: &ArtifactPath) -> Error {
    Error::new(
        ErrorKind::InvalidPath,
        "the path leaves the mount's root through a symlink",
    )
    .with_path(path.as_str())
}

async fn sync_dir(dir: &Path) {
    let dir = dir.to_path_buf();
    let _ =
        tokio::task::spawn_blocking(move || std::fs::File::open(dir).and_then(|f| f.sync_all()))
            .await;
}

fn remove_stale_temp_files(tmp: &Path, older_than: Duration) {
    let Ok(rd) = std::fs::read_dir(tmp) else {
        return;
    };
    let now = SystemTime::now();
    for entry in rd.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .map(|m| now.duration_since(m).unwrap_or_default() > older_than)
            .unwrap_or(false);
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
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
