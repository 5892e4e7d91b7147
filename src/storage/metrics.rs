//! Counters of the storage layer: what each mount's backend was asked and sent, and what its
//! read-through cache did. Registered on the server's `/metrics` by the HTTP layer; the storage
//! layer only updates them (it never imports `http`).
//!
//! Every series carries the mount name as the `mount` label.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MountLabel {
    pub mount: String,
}

/// A backend call.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Op {
    head,
    get,
    put,
    delete,
    list,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MountOp {
    pub mount: String,
    pub op: Op,
}

/// How the cache served a read.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Served {
    /// From a complete cache entry.
    hit,
    /// By the request that started the backend read (the fill).
    miss,
    /// By following a fill another request started.
    coalesced,
    /// Straight from the backend, past the cache.
    bypass,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MountServed {
    pub mount: String,
    pub served: Served,
}

/// Why a read went past the cache, or why a fill failed.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Reason {
    /// The object is larger than the cache's `max_size`.
    too_large,
    /// Every byte of the cache is pinned by readers or fills in progress.
    no_room,
    /// The cache disk reported ENOSPC (recently).
    disk_full,
    /// Another local I/O failure of the cache directory.
    disk_error,
    /// A range that starts beyond what a fill in progress has written.
    range_ahead,
    /// The backend failed (or the object changed) during a fill.
    backend,
    /// The cache was opened but never started (its directory is not prepared).
    not_started,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MountReason {
    pub mount: String,
    pub reason: Reason,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency() -> Histogram {
    // 0.5 ms … ~65 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

/// Every storage-layer series. Cheap to clone (the families are shared).
#[derive(Clone)]
pub struct StorageMetrics {
    /// Body bytes received from a mount's backend by reads (cache fills and pass-through).
    pub backend_read_bytes: Family<MountLabel, Counter<u64, AtomicU64>>,
    /// Backend calls by operation.
    pub backend_requests: Family<MountOp, Counter>,
    /// Reads served from a complete entry.
    pub cache_hits: Family<MountLabel, Counter>,
    /// Reads that found nothing cached and started a fill.
    pub cache_misses: Family<MountLabel, Counter>,
    /// Reads that joined a fill another read started instead of asking the backend.
    pub cache_coalesced_waiters: Family<MountLabel, Counter>,
    /// Reads sent past the cache, by reason.
    pub cache_bypassed: Family<MountReason, Counter>,
    /// Fills that did not complete, by reason.
    pub cache_fill_failures: Family<MountReason, Counter>,
    /// Entries evicted to make room, and their bytes.
    pub cache_evictions: Family<MountLabel, Counter>,
    pub cache_evicted_bytes: Family<MountLabel, Counter<u64, AtomicU64>>,
    /// Bytes written into the cache by fills.
    pub cache_fill_bytes: Family<MountLabel, Counter<u64, AtomicU64>>,
    /// Bytes served to readers from cache files (hits and followers of fills).
    pub cache_served_bytes: Family<MountLabel, Counter<u64, AtomicU64>>,
    /// Bytes held: complete entries plus space reserved by fills in progress.
    pub cache_stored_bytes: Family<MountLabel, Gauge>,
    pub cache_entries: Family<MountLabel, Gauge>,
    /// Validation requests sent to the backend (HEAD), and requests that shared one.
    pub cache_validations: Family<MountLabel, Counter>,
    pub cache_validations_shared: Family<MountLabel, Counter>,
    /// Latency of a validation (from the request's arrival to the backend's answer).
    pub cache_validation_seconds: HistogramFamily<MountLabel>,
    /// Time from a read's start to its first body byte being available, by how it was served.
    pub cache_first_byte_seconds: HistogramFamily<MountServed>,
    /// Duration of complete fills.
    pub cache_fill_seconds: HistogramFamily<MountLabel>,
}

impl Default for StorageMetrics {
    fn default() -> Self {
        StorageMetrics {
            backend_read_bytes: Family::default(),
            backend_requests: Family::default(),
            cache_hits: Family::default(),
            cache_misses: Family::default(),
            cache_coalesced_waiters: Family::default(),
            cache_bypassed: Family::default(),
            cache_fill_failures: Family::default(),
            cache_evictions: Family::default(),
            cache_evicted_bytes: Family::default(),
            cache_fill_bytes: Family::default(),
            cache_served_bytes: Family::default(),
            cache_stored_bytes: Family::default(),
            cache_entries: Family::default(),
            cache_validations: Family::default(),
            cache_validations_shared: Family::default(),
            cache_validation_seconds: Family::new_with_constructor(latency),
            cache_first_byte_seconds: Family::new_with_constructor(latency),
            cache_fill_seconds: Family::new_with_constructor(latency),
        }
    }
}

impl StorageMetrics {
    /// Adds every series to `registry` (names below its prefix).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry;
        r.register(
            "backend_read_bytes",
            "Body bytes received from the mount's backend by reads (cache fills and pass-through)",
            self.backend_read_bytes.clone(),
        );
        r.register(
            "backend_requests",
            "Calls to the mount's backend by operation",
            self.backend_requests.clone(),
        );
        r.register(
            "cache_hits",
            "Reads served from a complete cache entry",
            self.cache_hits.clone(),
        );
        r.register(
            "cache_misses",
            "Reads that found nothing cached and started a fill from the backend",
            self.cache_misses.clone(),
        );
        r.register(
            "cache_coalesced_waiters",
            "Reads that streamed from a fill another read had started",
            self.cache_coalesced_waiters.clone(),
        );
        r.register(
            "cache_bypassed",
            "Reads sent straight to the backend, by reason",
            self.cache_bypassed.clone(),
        );
        r.register(
            "cache_fill_failures",
            "Fills that did not complete, by reason",
            self.cache_fill_failures.clone(),
        );
        r.register(
            "cache_evictions",
            "Cache entries evicted (least recently used first)",
            self.cache_evictions.clone(),
        );
        r.register(
            "cache_evicted_bytes",
            "Bytes of evicted cache entries",
            self.cache_evicted_bytes.clone(),
        );
        r.register(
            "cache_fill_bytes",
            "Bytes written into the cache by fills",
            self.cache_fill_bytes.clone(),
        );
        r.register(
            "cache_served_bytes",
            "Bytes served to readers from cache files",
            self.cache_served_bytes.clone(),
        );
        r.register(
            "cache_stored_bytes",
            "Bytes in the cache: complete entries plus space reserved by fills",
            self.cache_stored_bytes.clone(),
        );
        r.register(
            "cache_entries",
            "Complete entries in the cache",
            self.cache_entries.clone(),
        );
        r.register(
            "cache_validations",
            "Validation requests (HEAD) sent to the backend",
            self.cache_validations.clone(),
        );
        r.register(
            "cache_validations_shared",
            "Reads validated by a HEAD that another concurrent read had queued",
            self.cache_validations_shared.clone(),
        );
        r.register(
            "cache_validation_seconds",
            "Time from a read's arrival to the backend's answer to its validation",
            self.cache_validation_seconds.clone(),
        );
        r.register(
            "cache_first_byte_seconds",
            "Time from a read's start to its first body byte, by how it was served",
            self.cache_first_byte_seconds.clone(),
        );
        r.register(
            "cache_fill_seconds",
            "Duration of complete fills",
            self.cache_fill_seconds.clone(),
        );
    }
}

impl std::fmt::Debug for StorageMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageMetrics")
    }
}
