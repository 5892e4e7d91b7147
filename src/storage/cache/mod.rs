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
//! - **Restarts.** At start the index is rebuilt from the data directory and leftovers of fills
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
//! - One process per cache directory; one directory per mount.

mod fill;
pub mod index;
mod validate;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytesize::ByteSize;
use serde::Deserialize;
use sha2::Digest;

use self::fill::{Failure, Fallback, Fill, Phase, ReaderMetrics, Source};
use self::index::{Evicted, Index, Key, Pin};
use self::validate::Validator;
use super::metrics::{MountLabel, MountReason, MountServed, Reason, Served, StorageMetrics};
use super::{
    ArtifactPath, ByteStream, Capabilities, GetOptions, GetResult, ListOptions, ListPage, Meta,
    PutOptions, PutResult, Storage,
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
    data_dir: PathBuf,
    tmp_dir: PathBuf,
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

/// How one read is served.
enum Plan {
    Hit(Pin),
    Join(Arc<Fill>),
    Start(Arc<Fill>),
    Bypass(Reason),
}

impl CachedStorage {
    /// Opens (or creates) the cache directory: removes leftovers of interrupted fills and
    /// rebuilds the index from the entries on disk.
    pub async fn open(
        backend: Arc<dyn Storage>,
        opts: &CacheOptions,
        mount: &str,
        metrics: StorageMetrics,
    ) -> Result<CachedStorage> {
        let data_dir = opts.dir.join("data");
        let tmp_dir = opts.dir.join("tmp");
        let max = opts.max_size.as_u64();
        let (d, t) = (data_dir.clone(), tmp_dir.clone());
        let (index, evicted) = tokio::task::spawn_blocking(move || prepare(&d, &t, max))
            .await
            .map_err(|e| Error::new(ErrorKind::Internal, format!("cache start-up: {e}")))?
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("cache directory {}: {e}", opts.dir.display()),
                )
            })?;
        let label = MountLabel {
            mount: mount.to_string(),
        };
        tracing::info!(mount, dir = %opts.dir.display(), entries = index.len(), bytes = index.used(), max_size = max, "cache ready");
        let inner = Arc::new(Inner {
            backend_id: backend.describe(),
            validator: Validator::new(backend.clone()),
            backend,
            mount: mount.to_string(),
            data_dir,
            tmp_dir,
            disk_full_backoff: opts.disk_full_backoff,
            state: Mutex::new(State {
                index,
                fills: HashMap::new(),
                disk_full_until: None,
            }),
            metrics,
            label,
        });
        inner.note_evicted(evicted);
        inner.update_gauges(&inner.state.lock().expect("cache lock"));
        Ok(CachedStorage { inner })
    }
}

/// Creates the directories, empties `tmp`, scans `data`.
fn prepare(data_dir: &Path, tmp_dir: &Path, max: u64) -> std::io::Result<(Index, Evicted)> {
    std::fs::create_dir_all(data_dir)?;
    if tmp_dir.exists() {
        let mut leftovers = 0;
        for e in std::fs::read_dir(tmp_dir)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                std::fs::remove_dir_all(e.path())?;
            } else {
                std::fs::remove_file(e.path())?;
            }
            leftovers += 1;
        }
        if leftovers > 0 {
            tracing::info!(dir = %tmp_dir.display(), leftovers, "removed leftovers of interrupted cache fills");
        }
    }
    std::fs::create_dir_all(tmp_dir)?;
    let mut index = Index::new(max);
    for (key, size) in index::scan(data_dir)? {
        index.insert_existing(key, size);
    }
    let evicted = index.shrink_to_fit();
    for k in &evicted.keys {
        std::fs::remove_file(data_dir.join(k))?;
    }
    Ok((index, evicted))
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

    fn update_gauges(&self, st: &State) {
        self.metrics
            .cache_stored_bytes
            .get_or_create(&self.label)
            .set(st.index.used() as i64);
        self.metrics
            .cache_entries
            .get_or_create(&self.label)
            .set(st.index.len() as i64);
    }

    /// Drops an entry from the index (its file is deleted by the caller).
    fn forget(&self, key: &str) {
        let mut st = self.state.lock().expect("cache lock");
        st.index.remove(key);
        self.update_gauges(&st);
    }

    fn note_evicted(&self, evicted: Evicted) {
        if evicted.keys.is_empty() {
            return;
        }
        self.metrics
            .cache_evictions
            .get_or_create(&self.label)
            .inc_by(evicted.keys.len() as u64);
        self.metrics
            .cache_evicted_bytes
            .get_or_create(&self.label)
            .inc_by(evicted.bytes);
    }

    /// Deletes evicted files in the background.
    fn delete_files(&self, evicted: &Evicted) {
        if evicted.keys.is_empty() {
            return;
        }
        let paths: Vec<PathBuf> = evicted.keys.iter().map(|k| self.data_dir.join(k)).collect();
        tokio::task::spawn_blocking(move || {
            for p in paths {
                if let Err(e) = std::fs::remove_file(&p) {
                    tracing::warn!(file = %p.display(), error = %e, "cannot delete an evicted cache entry");
                }
            }
        });
    }

    fn bypassed(&self, reason: Reason) -> prometheus_client::metrics::counter::Counter {
        self.metrics
            .cache_bypassed
            .get_or_create(&MountReason {
                mount: self.mount.clone(),
                reason,
            })
            .clone()
    }

    fn plan(self: &Arc<Self>, key: &Key, path: &ArtifactPath, meta: &Meta) -> Plan {
        let mut st = self.state.lock().expect("cache lock");
        if let Some(pin) = st.index.pin(key, meta.size) {
            return Plan::Hit(pin);
        }
        if let Some(f) = st.fills.get(key) {
            return Plan::Join(f.clone());
        }
        if meta.size > st.index.max_size() {
            return Plan::Bypass(Reason::too_large);
        }
        if let Some(until) = st.disk_full_until {
            if Instant::now() < until {
                return Plan::Bypass(Reason::disk_full);
            }
            st.disk_full_until = None;
        }
        let Some(evicted) = st.index.reserve(meta.size) else {
            return Plan::Bypass(Reason::no_room);
        };
        let tmp = self
            .tmp_dir
            .join(format!("{key}.{}", uuid::Uuid::new_v4().simple()));
        let fill = Arc::new(Fill::new(key.clone(), path.clone(), meta.clone(), tmp));
        st.fills.insert(key.clone(), fill.clone());
        self.update_gauges(&st);
        drop(st);
        self.delete_files(&evicted);
        self.note_evicted(evicted);
        tokio::spawn(self.clone().run_fill(fill.clone()));
        Plan::Start(fill)
    }

    /// The fill task: temporary file, backend read pinned to the ETag, copy, fsync, rename.
    async fn run_fill(self: Arc<Self>, fill: Arc<Fill>) {
        let tmp = fill.tmp_path.clone();
        let created = tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp)
        })
        .await;
        match created {
            Ok(Ok(f)) => {
                let _ = fill.file.set(Arc::new(f));
            }
            Ok(Err(e)) => return self.fail(&fill, Failure::local("creating a cache file", &e)),
            Err(e) => {
                let e = std::io::Error::other(e.to_string());
                return self.fail(&fill, Failure::local("creating a cache file", &e));
            }
        }
        let opts = GetOptions {
            range: None,
            if_match: Some(fill.meta.etag.clone()),
        };
        let res = match self.backend.get(&fill.path, opts).await {
            Ok(r) => r,
            Err(e) => return self.fail(&fill, Failure::backend(&e)),
        };
        if res.meta.size != fill.meta.size || res.meta.etag != fill.meta.etag {
            let e = super::errors::changed(&fill.path);
            return self.fail(&fill, Failure::backend(&e));
        }
        fill.set_phase(Phase::Streaming);
        let written = match fill::copy_body(&fill, res.body).await {
            Ok(n) => n,
            Err(f) => return self.fail(&fill, f),
        };
        self.metrics
            .cache_fill_bytes
            .get_or_create(&self.label)
            .inc_by(written);
        if written != fill.meta.size {
            let e = Error::new(
                ErrorKind::BackendUnavailable,
                format!(
                    "the backend sent {written} bytes of an artifact of {}",
                    fill.meta.size
                ),
            );
            return self.fail(&fill, Failure::backend(&e));
        }
        let (tmp, dest, dir) = (
            fill.tmp_path.clone(),
            self.data_dir.join(&fill.key),
            self.data_dir.clone(),
        );
        let renamed = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::rename(&tmp, &dest)?;
            std::fs::File::open(&dir)?.sync_all()
        })
        .await;
        let mut st = self.state.lock().expect("cache lock");
        if st
            .fills
            .get(&fill.key)
            .is_some_and(|f| Arc::ptr_eq(f, &fill))
        {
            st.fills.remove(&fill.key);
        }
        match renamed {
            Ok(Ok(())) => {
                st.index
                    .commit(fill.key.clone(), fill.meta.size, fill.pin.clone());
                self.update_gauges(&st);
                drop(st);
                self.metrics
                    .cache_fill_seconds
                    .get_or_create(&self.label)
                    .observe(fill.started.elapsed().as_secs_f64());
                tracing::debug!(mount = %self.mount, path = %fill.path.as_str(), bytes = written, took = ?fill.started.elapsed(), "cache fill complete");
                fill.set_phase(Phase::Done);
            }
            other => {
                // Every byte is in the file the readers hold open: they finish; the entry is
                // not kept.
                st.index.release(fill.meta.size);
                self.update_gauges(&st);
                drop(st);
                tracing::warn!(mount = %self.mount, path = %fill.path.as_str(), result = ?other.map(|r| r.map_err(|e| e.to_string())), "cannot keep a complete cache fill");
                let _ = std::fs::remove_file(&fill.tmp_path);
                fill.set_phase(Phase::Done);
            }
        }
    }

    fn fail(&self, fill: &Arc<Fill>, failure: Failure) {
        let reason = if failure.disk_full {
            Reason::disk_full
        } else if failure.local {
            Reason::disk_error
        } else {
            Reason::backend
        };
        {
            let mut st = self.state.lock().expect("cache lock");
            if st
                .fills
                .get(&fill.key)
                .is_some_and(|f| Arc::ptr_eq(f, fill))
            {
                st.fills.remove(&fill.key);
            }
            st.index.release(fill.meta.size);
            if failure.disk_full {
                st.disk_full_until = Some(Instant::now() + self.disk_full_backoff);
            }
            self.update_gauges(&st);
        }
        self.metrics
            .cache_fill_failures
            .get_or_create(&MountReason {
                mount: self.mount.clone(),
                reason,
            })
            .inc();
        tracing::warn!(mount = %self.mount, path = %fill.path.as_str(), reason = ?reason, error = %failure.message, "cache fill failed");
        fill.set_phase(Phase::Failed(failure));
        let tmp = fill.tmp_path.clone();
        tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_file(tmp);
        });
    }

    fn reader_metrics(&self, served: Served, started: Instant) -> ReaderMetrics {
        ReaderMetrics {
            served_bytes: self
                .metrics
                .cache_served_bytes
                .get_or_create(&self.label)
                .clone(),
            first_byte: self
                .metrics
                .cache_first_byte_seconds
                .get_or_create(&MountServed {
                    mount: self.mount.clone(),
                    served,
                })
                .clone(),
            started,
        }
    }

    fn fallback(&self, meta: &Meta, reason: Reason) -> Fallback {
        Fallback {
            backend: self.backend.clone(),
            etag: meta.etag.clone(),
            bypassed: self.bypassed(reason),
        }
    }

    /// The bytes `range` of the validated version `meta`.
    async fn open(
        self: &Arc<Self>,
        path: &ArtifactPath,
        meta: &Meta,
        range: Range<u64>,
        started: Instant,
    ) -> Result<ByteStream> {
        let key = self.key(meta);
        let plan = self.plan(&key, path, meta);
        let m = &self.metrics;
        let (source, served) = match plan {
            Plan::Hit(pin) => {
                m.cache_hits.get_or_create(&self.label).inc();
                let file_path = self.data_dir.join(&key);
                let size = meta.size;
                let opened = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
                    let f = std::fs::File::open(&file_path)?;
                    let len = f.metadata()?.len();
                    Ok((f, len))
                })
                .await;
                match opened {
                    Ok(Ok((file, len))) if len == size => (
                        Source::Entry {
                            file: Arc::new(file),
                            pin,
                        },
                        Served::hit,
                    ),
                    other => {
                        // Gone or damaged behind our back: forget it; the next read refills.
                        tracing::warn!(mount = %self.mount, path = %path.as_str(), result = ?other.map(|r| r.map(|(_, l)| l).map_err(|e| e.to_string())), "a cache entry is missing or damaged; dropping it");
                        drop(pin);
                        self.forget(&key);
                        let _ = tokio::fs::remove_file(self.data_dir.join(&key)).await;
                        return self
                            .bypass(path, meta, range, Reason::disk_error, started)
                            .await;
                    }
                }
            }
            Plan::Start(fill) => {
                m.cache_misses.get_or_create(&self.label).inc();
                (Source::Fill(fill), Served::miss)
            }
            Plan::Join(fill) => {
                m.cache_coalesced_waiters.get_or_create(&self.label).inc();
                (Source::Fill(fill), Served::coalesced)
            }
            Plan::Bypass(reason) => {
                return self.bypass(path, meta, range, reason, started).await;
            }
        };
        let (source, served) = match source {
            Source::Fill(fill) => {
                let written = match fill.opened().await {
                    Ok(w) => w,
                    Err(f) if f.local => {
                        return self
                            .bypass(path, meta, range, Reason::disk_error, started)
                            .await
                    }
                    Err(f) => return Err(fill::open_error(&f, path)),
                };
                let done = fill.progress.borrow().phase == Phase::Done;
                if range.start > written && !done {
                    return self
                        .bypass(path, meta, range, Reason::range_ahead, started)
                        .await;
                }
                (Source::Fill(fill), served)
            }
            s => (s, served),
        };
        Ok(fill::read(
            source,
            path.clone(),
            range,
            self.fallback(meta, Reason::disk_error),
            self.reader_metrics(served, started),
        ))
    }

    async fn bypass(
        &self,
        path: &ArtifactPath,
        meta: &Meta,
        range: Range<u64>,
        reason: Reason,
        started: Instant,
    ) -> Result<ByteStream> {
        self.bypassed(reason).inc();
        let opts = GetOptions {
            range: Some(range),
            if_match: Some(meta.etag.clone()),
        };
        let res = self.backend.get(path, opts).await?;
        let hist = self
            .metrics
            .cache_first_byte_seconds
            .get_or_create(&MountServed {
                mount: self.mount.clone(),
                served: Served::bypass,
            })
            .clone();
        let mut first = true;
        Ok(Box::pin(futures::StreamExt::inspect(res.body, move |c| {
            if first && c.is_ok() {
                first = false;
                hist.observe(started.elapsed().as_secs_f64());
            }
        })))
    }

    async fn validate(&self, path: &ArtifactPath) -> Result<Meta> {
        let started = Instant::now();
        let (meta, v) = self.validator.validate(path).await?;
        let m = &self.metrics;
        if v.shared {
            m.cache_validations_shared.get_or_create(&self.label).inc();
        } else {
            m.cache_validations.get_or_create(&self.label).inc();
        }
        m.cache_validation_seconds
            .get_or_create(&self.label)
            .observe(started.elapsed().as_secs_f64());
        Ok(meta)
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

    async fn put(
        &self,
        path: &ArtifactPath,
        body: ByteStream,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.backend.put(path, body, opts).await
    }

    async fn delete(&self, path: &ArtifactPath) -> Result<()> {
        self.inner.backend.delete(path).await
    }

    async fn list(&self, dir: &ArtifactPath, opts: ListOptions) -> Result<ListPage> {
        self.inner.backend.list(dir, opts).await
    }

    async fn ready(&self) -> Result<()> {
        self.inner.backend.ready().await
    }

    async fn start(&self) -> Result<()> {
        self.inner.backend.start().await
    }

    async fn check_writable(&self) -> Result<()> {
        self.inner.backend.check_writable().await
    }
}
