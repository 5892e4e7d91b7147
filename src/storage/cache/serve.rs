//! Serving a read from the cache: validate against the backend, then plan — a hit on a
//! complete entry, joining or starting a fill, or a bypass straight to the backend — and open
//! the body the plan names. Decides; the files are written by `directory.rs`.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::fill::{self, Fallback, Fill, Following, Phase, ReaderMetrics, Source};
use super::hit;
use super::index::{Key, Pin};
use super::Inner;
use crate::error::Result;
use crate::storage::metrics::{MountReason, MountServed, Reason, Served};
use crate::storage::{ArtifactPath, ByteStream, GetOptions, Meta};

/// How one read is served.
enum Plan {
    Hit(Pin),
    Join(Following),
    Start(Following),
    Bypass(Reason),
}

impl Inner {
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
    pub(super) async fn open(
        self: &Arc<Self>,
        path: &ArtifactPath,
        meta: &Meta,
        range: Range<u64>,
        started: Instant,
    ) -> Result<ByteStream> {
        let key = self.key(meta);
        let plan = self.plan(&key, path, meta, range.start);
        let m = &self.metrics;
        let (source, served) = match plan {
            Plan::Hit(pin) => {
                m.cache_hits.get_or_create(&self.label).inc();
                let file_path = self.data_dir.join(&key);
                let size = meta.size;
                let r = range.clone();
                let opened =
                    tokio::task::spawn_blocking(move || hit::open(&file_path, size, &r)).await;
                match opened {
                    Ok(Ok(Some(opened))) => {
                        return Ok(hit::body(
                            opened,
                            path.clone(),
                            range,
                            pin,
                            self.fallback(meta, Reason::disk_error),
                            self.reader_metrics(Served::hit, started),
                        ))
                    }
                    other => {
                        // Gone or damaged behind our back: forget it; the next read refills.
                        tracing::warn!(mount = %self.mount, path = %path.as_str(), result = ?other.map(|r| r.map(|o| o.is_some()).map_err(|e| e.to_string())), "a cache entry is missing or damaged; dropping it");
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
            Source::Fill(following) => {
                let fill = following.fill();
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
                (Source::Fill(following), served)
            }
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

    pub(super) async fn validate(&self, path: &ArtifactPath) -> Result<Meta> {
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

    fn bypassed(&self, reason: Reason) -> prometheus_client::metrics::counter::Counter {
        self.metrics
            .cache_bypassed
            .get_or_create(&MountReason {
                mount: self.mount.clone(),
                reason,
            })
            .clone()
    }

    /// What a read of `meta` from `from` on does; a read that follows a fill is counted as its
    /// reader from here on (see `fill::Following`).
    fn plan(self: &Arc<Self>, key: &Key, path: &ArtifactPath, meta: &Meta, from: u64) -> Plan {
        if !self.started.load(Ordering::Acquire) {
            return Plan::Bypass(Reason::not_started);
        }
        let mut st = self.state.lock().expect("cache lock");
        if let Some(pin) = st.index.pin(key, meta.size) {
            st.index.learn(key, path);
            return Plan::Hit(pin);
        }
        if let Some(f) = st.fills.get(key) {
            return Plan::Join(Following::new(f.clone(), from));
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
        let following = Following::new(fill.clone(), from);
        self.update_gauges(&st);
        drop(st);
        self.delete_files(&evicted);
        self.note_evicted(evicted);
        tokio::spawn(self.clone().run_fill(fill));
        Plan::Start(following)
    }
}
