//! A read-through disk cache for a mount: [`CachedStorage`] wraps any backend's [`Storage`] and
//! keeps copies of what was read in a local directory (`[mounts.cache]`, see [`CacheOptions`]).
//!
//! Owns: the cache directory, its index, fills (one backend read per uncached object), and the
//! validation of entries against the backend. Must never import `service` or `http`.
//!
//! Contracts (each has a test in `tests/cache_s3.rs` or `tests/cache_hdfs.rs`):
//! - **Never stale.** Every read is validated by one HEAD (`Storage::head`) to the backend that
//!   was sent after the read arrived; entries are keyed by the backend's ETag (with the path,
//!   size and backend), so a changed object is a miss and its new bytes are served. Concurrent
//!   reads of one path share HEADs: while one is in flight, the reads arriving meanwhile wait
//!   for the next one (see `validate`). Cost per read: one HEAD round trip (two at most when
//!   it queues), shared; a hit then costs no other backend call. `head()` is the same
//!   validation, so a `Range` or `HEAD` request over HTTP (head, then pinned get) costs two.
//! - **Atomic fills.** A fill writes a temporary file, fsyncs it and renames it into place
//!   (then fsyncs the directory). Only renamed files are entries; a half-written file is never
//!   served as whole. A fill also reads the backend pinned to the validated ETag, so a change
//!   during the fill fails it instead of mixing versions.
//! - **Restarts.** At start (`Storage::start`; opening writes nothing) the index is rebuilt from the data directory and leftovers of fills
//!   that crashed (the temporary directory) are removed. Entries found on disk are served only
//!   after a read's validation returns the ETag they were keyed with — never trusted blindly.
//! - **One backend read per object.** Concurrent reads of an uncached object cause one backend
//!   read (a fill); every read streams from the growing file as bytes arrive. A `Range` read
//!   whose first byte the fill has already written reads the file; one that starts beyond it
//!   reads its range straight from the backend (pinned to the ETag) while the fill goes on.
//! - **Backend failure mid-fill.** Every reader of the fill ends with an error (over HTTP the
//!   response is cut, never a short 200); the temporary file is deleted; later reads start a
//!   new fill.
//! - **Size limit.** Complete entries plus the sizes of fills in progress stay within
//!   `max_size`; least recently used entries are evicted to make room, never one that is being
//!   read or filled. An object larger than `max_size`, or one that finds no room, is read
//!   straight from the backend.
//! - **Full disk.** A fill that hits ENOSPC stops; its readers continue from the backend
//!   (pinned to the ETag) and succeed; for `disk_full_backoff` no new fill starts and reads go
//!   straight to the backend.
//! - A fill continues when the reads that wanted it go away (the next read will want it too).
//! - A put or delete through the store drops the path's entry at once (entries are learnt per
//!   path when a fill commits or a read hits; one never read since a restart ages out by LRU).
//! - A conditional GET answered 304/412 opens no body (`http::handlers`), so it starts no fill.
//! - One process per cache directory; one directory per mount. [`Storage::start`] takes an
//!   exclusive lock on `<dir>/lock` (held while the store lives; the kernel drops it when the
//!   process dies) and refuses a directory another process holds, before touching anything.

mod directory;
mod fill;
mod hit;
pub mod index;
mod serve;
mod validate;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytesize::ByteSize;
use serde::Deserialize;
use sha2::Digest;

use self::fill::Fill;
use self::index::{Index, Key};
use self::validate::Validator;
use super::metrics::{MountLabel, StorageMetrics};
use super::{
    ArtifactPath, Capabilities, GetOptions, GetResult, ListOptions, ListPage, Meta, PutResult,
    Storage, Upload,
};
use crate::error::{Error, ErrorKind, Result};

/// `[mounts.cache]`: a read-through disk cache in front of the mount's backend.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CacheOptions {
    /// Directory of the cache; created if missing. One mount per directory. Required.
    pub dir: PathBuf,
    /// Most bytes the cache holds (complete entries plus fills in progress); least recently
    /// used entries are evicted to make room. Larger objects are never cached. Default "10 GiB".
    #[serde(default = "default_max_size")]
    pub max_size: ByteSize,
    /// After the cache disk reports itself full (ENOSPC), no fill starts for this long and
    /// reads go straight to the backend. Default "30s".
    #[serde(default = "default_disk_full_backoff", with = "humantime_serde")]
    pub disk_full_backoff: Duration,
}

fn default_max_size() -> ByteSize {
    ByteSize::gib(10)
}

fn default_disk_full_backoff() -> Duration {
    Duration::from_secs(30)
}

impl CacheOptions {
    /// Options with every default, in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> CacheOptions {
        CacheOptions {
            dir: dir.into(),
            max_size: default_max_size(),
            disk_full_backoff: default_disk_full_backoff(),
        }
    }
}

/// The storage of a mount with a read-through cache.
pub struct CachedStorage {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn Storage>,
    /// Part of every key: the same path on another backend is another object.
    backend_id: String,
    mount: String,
    dir: PathBuf,
    data_dir: PathBuf,
    tmp_dir: PathBuf,
    max_size: u64,
    /// Set by [`Storage::start`] once the directory is prepared; reads bypass the cache before.
    started: AtomicBool,
    /// The directory's lock, held from [`Storage::start`] for the life of the store.
    lock: std::sync::OnceLock<std::fs::File>,
    disk_full_backoff: Duration,
    state: Mutex<State>,
    validator: Validator,
    metrics: StorageMetrics,
    label: MountLabel,
}

struct State {
    index: Index,
    fills: HashMap<Key, Arc<Fill>>,
    disk_full_until: Option<Instant>,
}

impl CachedStorage {
    /// A cache in `opts.dir` in front of `backend`. Writes nothing: the directory is prepared
    /// (created, leftovers of interrupted fills removed, the index rebuilt from the entries on
    /// disk) by [`Storage::start`]; until then every read goes straight to the backend.
    pub fn new(
        backend: Arc<dyn Storage>,
        opts: &CacheOptions,
        mount: &str,
        metrics: StorageMetrics,
    ) -> CachedStorage {
        let max_size = opts.max_size.as_u64();
        let inner = Arc::new(Inner {
            backend_id: backend.describe(),
            validator: Validator::new(backend.clone()),
            backend,
            mount: mount.to_string(),
            dir: opts.dir.clone(),
            data_dir: opts.dir.join("data"),
            tmp_dir: opts.dir.join("tmp"),
            max_size,
            started: AtomicBool::new(false),
            lock: std::sync::OnceLock::new(),
            disk_full_backoff: opts.disk_full_backoff,
            state: Mutex::new(State {
                index: Index::new(max_size),
                fills: HashMap::new(),
                disk_full_until: None,
            }),
            metrics,
            label: MountLabel {
                mount: mount.to_string(),
            },
        });
        CachedStorage { inner }
    }
}

impl Inner {
    fn key(&self, meta: &Meta) -> Key {
        let mut h = sha2::Sha256::new();
        for part in [
            self.backend_id.as_bytes(),
            meta.path.as_str().as_bytes(),
            meta.etag.as_bytes(),
            meta.size.to_string().as_bytes(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        hex::encode(h.finalize())
    }
}

impl std::fmt::Debug for CachedStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStorage")
            .field("mount", &self.inner.mount)
            .field("dir", &self.inner.data_dir.parent())
            .field("backend", &self.inner.backend)
            .finish()
    }
}

/// A copy of an error (kind, message, where) for every reader of a shared result.
pub(crate) fn clone_error(e: &Error) -> Error {
    let mut c = Error::new(e.kind(), e.message());
    if let Some(p) = e.path() {
        c = c.with_path(p);
    }
    if let Some(m) = e.mount() {
        c = c.with_mount(m);
    }
    c
}

/// Attempts at a consistent read when the object changes between validation and read.
const READ_ATTEMPTS: usize = 3;

#[async_trait]
impl Storage for CachedStorage {
    fn describe(&self) -> String {
        format!("{} (cached)", self.inner.backend.describe())
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.backend.capabilities()
    }

    /// The backend's current metadata (a validation, shared with concurrent reads).
    async fn head(&self, path: &ArtifactPath) -> Result<Meta> {
        self.inner.validate(path).await
    }

    async fn get(&self, path: &ArtifactPath, opts: GetOptions) -> Result<GetResult> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let meta = self.inner.validate(path).await?;
            opts.check(&meta)?;
            let range = opts.range.clone().unwrap_or(0..meta.size);
            if range.start >= range.end {
                return Ok(GetResult {
                    meta,
                    range,
                    body: Box::pin(futures::stream::empty()),
                });
            }
            match self.inner.open(path, &meta, range.clone(), started).await {
                Ok(body) => return Ok(GetResult { meta, range, body }),
                // Changed between validation and read: validate again unless the caller
                // pinned the version.
                Err(e)
                    if e.kind() == ErrorKind::PreconditionFailed
                        && opts.if_match.is_none()
                        && attempt < READ_ATTEMPTS =>
                {
                    continue
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Stores through the backend and drops the cache's entry of the old version (it could
    /// never be served again: entries are keyed by ETag, but it would hold space until evicted).
    async fn put(&self, path: &ArtifactPath, upload: Upload) -> Result<PutResult> {
        let res = self.inner.backend.put(path, upload).await;
        self.inner.drop_entry(path);
        res
    }

    /// Deletes through the backend and drops the cache's entry.
    async fn delete(&self, path: &ArtifactPath) -> Result<()> {
        let res = self.inner.backend.delete(path).await;
        self.inner.drop_entry(path);
        res
    }

    async fn list(&self, dir: &ArtifactPath, opts: ListOptions) -> Result<ListPage> {
        self.inner.backend.list(dir, opts).await
    }

    async fn ready(&self) -> Result<()> {
        self.inner.backend.ready().await
    }

    /// The backend's housekeeping, then the cache directory's (see [`CachedStorage::new`]).
    async fn start(&self) -> Result<()> {
        self.inner.backend.start().await?;
        self.inner.start().await
    }

    async fn check_writable(&self) -> Result<()> {
        self.inner.backend.check_writable().await
    }
}
