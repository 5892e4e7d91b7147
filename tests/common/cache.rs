//! Support shared by the read-through cache tests over every backend: test data, a cached
//! mount built by the registry, bodies read and compared chunk by chunk (through the trait and
//! over HTTP), the cache's own counters, and waiting for its fills to end.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_gateway::storage::cache::CacheOptions;
use artifact_gateway::storage::metrics::{MountLabel, StorageMetrics};
use artifact_gateway::storage::registry::{self, BackendSpec};
use artifact_gateway::storage::{ArtifactPath, GetOptions, Storage};
use futures::StreamExt;

/// `len` deterministic bytes; `seed` makes versions differ.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed.wrapping_mul(0xD1B5_4A32_D192_ED03);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn path(p: &str) -> ArtifactPath {
    ArtifactPath::parse(p).unwrap()
}

/// The storage a `[mounts.cache]` mount named `mount` gets, built by the registry and
/// started, as the server starts every mount before it listens.
pub async fn cached_mount(
    spec: &BackendSpec,
    mount: &str,
    opts: &CacheOptions,
    metrics: &StorageMetrics,
) -> Arc<dyn Storage> {
    let store = registry::build_mount(spec, mount, Some(opts), metrics)
        .await
        .expect("build the cached mount");
    store.start().await.expect("start the cached mount");
    store
}

/// The per-mount counters the cache tests read.
pub struct Counts {
    pub backend_bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub coalesced: u64,
}

pub fn label(mount: &str) -> MountLabel {
    MountLabel {
        mount: mount.to_string(),
    }
}

pub fn counts(m: &StorageMetrics, mount: &str) -> Counts {
    let label = label(mount);
    Counts {
        backend_bytes: m.backend_read_bytes.get_or_create(&label).get(),
        hits: m.cache_hits.get_or_create(&label).get(),
        misses: m.cache_misses.get_or_create(&label).get(),
        coalesced: m.cache_coalesced_waiters.get_or_create(&label).get(),
    }
}

/// Reads a whole body, comparing it with `expected` chunk by chunk. Returns (time of the first
/// byte, time of the end) or the error that ended the body.
pub async fn read_and_compare(
    store: &Arc<dyn Storage>,
    p: &ArtifactPath,
    opts: GetOptions,
    expected: &[u8],
) -> Result<(Instant, Instant), String> {
    let res = store.get(p, opts).await.map_err(|e| e.to_string())?;
    let mut body = res.body;
    let mut pos = 0usize;
    let mut first = None;
    while let Some(chunk) = body.next().await {
        let c = chunk.map_err(|e| format!("body error after {pos} bytes: {e}"))?;
        first.get_or_insert_with(Instant::now);
        assert_eq!(
            &c[..],
            &expected[pos..pos + c.len()],
            "wrong bytes at offset {pos}"
        );
        pos += c.len();
    }
    assert_eq!(pos, expected.len(), "short body");
    Ok((first.unwrap_or_else(Instant::now), Instant::now()))
}

/// The bytes `range` of `p` (the whole object when `None`), read through the trait.
pub async fn read_range(
    store: &Arc<dyn Storage>,
    p: &ArtifactPath,
    range: Option<std::ops::Range<u64>>,
) -> Vec<u8> {
    let opts = GetOptions {
        range,
        ..Default::default()
    };
    let res = store.get(p, opts).await.unwrap();
    res.body.map(|c| c.unwrap().to_vec()).concat().await
}

/// `n` concurrent reads of `p` through the trait, each compared with `data`: for every reader,
/// when it started, when its first byte came and when it ended.
pub async fn concurrent_reads(
    store: &Arc<dyn Storage>,
    p: &ArtifactPath,
    data: &Arc<Vec<u8>>,
    n: usize,
) -> Vec<(Instant, Instant, Instant)> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (store, p, data) = (store.clone(), p.clone(), data.clone());
            tokio::spawn(async move {
                let t0 = Instant::now();
                let r = read_and_compare(&store, &p, GetOptions::default(), &data).await;
                (t0, r)
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        let (t0, r) = t.await.unwrap();
        let (first, end) = r.expect("every reader gets the whole object");
        results.push((t0, first, end));
    }
    results
}

/// `n` concurrent GETs of `url`, each a 200 with the right length whose body, compared chunk
/// by chunk, is `data`.
pub async fn concurrent_downloads(url: &str, data: &Arc<Vec<u8>>, n: usize) {
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, url, data) = (client.clone(), url.to_string(), data.clone());
            tokio::spawn(async move {
                let resp = client.get(&url).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                assert_eq!(resp.content_length(), Some(data.len() as u64));
                let mut body = resp.bytes_stream();
                let mut pos = 0usize;
                while let Some(c) = body.next().await {
                    let c = c.expect("the body streams to the end");
                    assert_eq!(&c[..], &data[pos..pos + c.len()], "bytes at {pos}");
                    pos += c.len();
                }
                assert_eq!(pos, data.len());
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// The names in `dir`, sorted; none when it does not exist.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Waits (bounded) until `dir` is empty; the cache deletes failed fills in the background.
pub async fn wait_empty(dir: &Path) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let files = files_in(dir);
        if files.is_empty() || Instant::now() > deadline {
            return files;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the fills of a cache directory are over (renamed or removed): the last bytes
/// reach readers before the fill's fsync and rename, so a read right after another may still
/// find the fill rather than a complete entry.
pub async fn settle(cache_dir: &Path) {
    let left = wait_empty(&cache_dir.join("tmp")).await;
    assert!(left.is_empty(), "fills still running after 5 s: {left:?}");
}

/// What a running gateway counted as read from the backend of `mount`, below its cache.
pub async fn gateway_backend_bytes(gw: &super::Gateway, mount: &str) -> f64 {
    let name = "artifact_gateway_backend_read_bytes_total";
    super::gateway_metric(&gw.url, name, &[("mount", mount)]).await
}
