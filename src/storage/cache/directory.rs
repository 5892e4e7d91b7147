//! The cache directory and its index: the start-up scan, the fill task that writes an entry
//! (temporary file, pinned backend read, fsync, rename, commit), a fill's failure, deleting
//! evicted files, and the gauges that report the index. Writes the directory; what a read is
//! served from is decided by `serve.rs`.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::fill::{self, Failure, Fill, Phase};
use super::index::{self, Evicted, Index};
use super::{Inner, State};
use crate::error::{Error, ErrorKind, Result};
use crate::storage::metrics::{MountReason, Reason};
use crate::storage::GetOptions;

/// Why a cache directory cannot be used by this process.
pub(super) enum Refused {
    /// Another process holds the directory's lock.
    InUse(PathBuf),
    Io(std::io::Error),
}

impl From<std::io::Error> for Refused {
    fn from(e: std::io::Error) -> Refused {
        Refused::Io(e)
    }
}

/// Takes the directory's lock (an exclusive `flock` on `<dir>/lock`, held while the returned
/// file is open), creates the directories, empties `tmp`, scans `data`. A directory locked by
/// another process is refused before anything in it is touched: two processes on one cache
/// directory would delete each other's fills in progress and evict each other's entries.
pub(super) fn prepare(
    dir: &Path,
    data_dir: &Path,
    tmp_dir: &Path,
    max: u64,
) -> std::result::Result<(Index, Evicted, std::fs::File), Refused> {
    std::fs::create_dir_all(dir)?;
    let lock_path = dir.join("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    // rustix's flock rather than `File::try_lock`, which needs a newer Rust than the MSRV.
    #[cfg(target_os = "linux")]
    match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Err(Refused::InUse(lock_path)),
        Err(e) => return Err(Refused::Io(e.into())),
    }
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
    Ok((index, evicted, lock))
}

impl Inner {
    /// Prepares the directory (see [`prepare`]) and serves reads from the cache from then on.
    /// A second call does nothing: it would remove the files of fills in progress.
    pub(super) async fn start(&self) -> Result<()> {
        if self.started.load(Ordering::Acquire) {
            return Ok(());
        }
        let (root, d, t, max) = (
            self.dir.clone(),
            self.data_dir.clone(),
            self.tmp_dir.clone(),
            self.max_size,
        );
        let (index, evicted, lock) =
            tokio::task::spawn_blocking(move || prepare(&root, &d, &t, max))
                .await
                .map_err(|e| Error::new(ErrorKind::Internal, format!("cache start-up: {e}")))?
                .map_err(|e| match e {
                    Refused::InUse(lock) => Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "cache directory {} is in use by another process (it holds {}): \
                             give every process and every mount a [mounts.cache] dir of its own",
                            self.dir.display(),
                            lock.display()
                        ),
                    ),
                    Refused::Io(e) => Error::new(
                        ErrorKind::InvalidInput,
                        format!("cache directory {}: {e}", self.dir.display()),
                    ),
                })?;
        let _ = self.lock.set(lock);
        tracing::info!(mount = %self.mount, dir = %self.dir.display(), entries = index.len(), bytes = index.used(), max_size = max, "cache ready");
        {
            let mut st = self.state.lock().expect("cache lock");
            st.index = index;
            self.update_gauges(&st);
        }
        self.note_evicted(evicted);
        self.started.store(true, Ordering::Release);
        Ok(())
    }

    pub(super) fn update_gauges(&self, st: &State) {
        self.metrics
            .cache_stored_bytes
            .get_or_create(&self.label)
            .set(st.index.used() as i64);
        self.metrics
            .cache_entries
            .get_or_create(&self.label)
            .set(st.index.len() as i64);
    }

    /// Drops the entry known for `path` (after a put or delete through this store). Readers of
    /// it keep their open file; the file is deleted in the background.
    pub(super) fn drop_entry(&self, path: &crate::storage::ArtifactPath) {
        let mut st = self.state.lock().expect("cache lock");
        let Some((key, bytes)) = st.index.remove_path(path) else {
            return;
        };
        self.update_gauges(&st);
        drop(st);
        self.delete_files(&Evicted {
            keys: vec![key],
            bytes,
        });
    }

    pub(super) fn forget(&self, key: &str) {
        let mut st = self.state.lock().expect("cache lock");
        st.index.remove(key);
        self.update_gauges(&st);
    }

    pub(super) fn note_evicted(&self, evicted: Evicted) {
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
    pub(super) fn delete_files(&self, evicted: &Evicted) {
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

    /// The fill task: temporary file, backend read pinned to the ETag, copy, fsync, rename.
    pub(super) async fn run_fill(self: Arc<Self>, fill: Arc<Fill>) {
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
            let e = crate::storage::errors::changed(&fill.path);
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
        // The rename and the commit happen under the lock (a rename is one quick metadata
        // operation): once the temporary file is gone the entry is in the index, so a fill is
        // never seen half-finished. The directory is synced after, for a crash's sake.
        let renamed = {
            let mut st = self.state.lock().expect("cache lock");
            if st
                .fills
                .get(&fill.key)
                .is_some_and(|f| Arc::ptr_eq(f, &fill))
            {
                st.fills.remove(&fill.key);
            }
            let renamed = std::fs::rename(&fill.tmp_path, self.data_dir.join(&fill.key));
            if renamed.is_ok() {
                st.index
                    .commit(fill.key.clone(), fill.meta.size, fill.pin.clone());
                st.index.learn(&fill.key, &fill.path);
            } else {
                // Every byte is in the file the readers hold open: they finish; the entry
                // is not kept.
                st.index.release(fill.meta.size);
            }
            self.update_gauges(&st);
            renamed
        };
        fill.set_phase(Phase::Done);
        if let Err(e) = renamed {
            tracing::warn!(mount = %self.mount, path = %fill.path.as_str(), error = %e, "cannot keep a complete cache fill");
            let _ = std::fs::remove_file(&fill.tmp_path);
            return;
        }
        self.metrics
            .cache_fill_seconds
            .get_or_create(&self.label)
            .observe(fill.started.elapsed().as_secs_f64());
        tracing::debug!(mount = %self.mount, path = %fill.path.as_str(), bytes = written, took = ?fill.started.elapsed(), "cache fill complete");
        let dir = self.data_dir.clone();
        let synced =
            tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all()).await;
        if let Ok(Err(e)) = synced {
            tracing::warn!(mount = %self.mount, error = %e, "cannot sync the cache directory");
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
}
