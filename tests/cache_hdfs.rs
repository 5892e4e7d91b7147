//! The read-through cache over a real MiniDFSCluster: concurrent cold reads cause one HDFS
//! read (through the `Storage` trait and through the real binary's HTTP API), and a file
//! replaced by another HDFS client is served new.
//!
//! Backend bytes are counted twice: by the datanode itself (its JMX `BytesRead`, every byte it
//! served to any client) and by the gateway's per-mount `backend_read_bytes`, taken below the
//! cache on the HDFS client's read stream. The tests of this file run one at a time so the
//! datanode's count is theirs alone.
//!
//! Needs `AG_TEST_HDFS_URL` and `AG_TEST_HDFS_DATANODE_HTTP` (tests/servers/hdfs/start.sh writes
//! them).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_gateway::storage::cache::CacheOptions;
use artifact_gateway::storage::metrics::StorageMetrics;
use artifact_gateway::storage::{ArtifactPath, Storage};
use bytes::Bytes;
use common::cache::{
    cached_mount, concurrent_downloads, concurrent_reads, counts, gateway_backend_bytes, label,
    pattern, read_range, settle, Counts,
};

const MOUNT: &str = "hcached";

/// The tests of this file share the datanode's byte count: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Bytes the datanode has served to clients, as of now. Hadoop's JMX answers from a snapshot
/// refreshed at most every 10 s (the metrics period) when read: wait out one period first.
async fn datanode_bytes_read() -> u64 {
    let base = common::require_env("AG_TEST_HDFS_DATANODE_HTTP");
    tokio::time::sleep(Duration::from_millis(11_000)).await;
    let url = format!("{base}/jmx?qry=Hadoop:service=DataNode,name=DataNodeActivity-*");
    let v: serde_json::Value = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("datanode JMX at {url}: {e}"))
        .json()
        .await
        .unwrap();
    v["beans"]
        .as_array()
        .and_then(|b| b.first())
        .and_then(|b| b["BytesRead"].as_u64())
        .unwrap_or_else(|| panic!("no BytesRead in the datanode's JMX: {v}"))
}

/// Writes a file as another HDFS client would.
async fn write_raw(url: &str, abs: &str, data: &[u8]) {
    let c = hdfs_native::ClientBuilder::new()
        .with_url(url)
        .build()
        .unwrap();
    let mut w = c
        .create(abs, hdfs_native::WriteOptions::default().overwrite(true))
        .await
        .unwrap();
    for chunk in data.chunks(1 << 20) {
        w.write_bytes(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    w.close().await.unwrap();
}

async fn cached(
    url: &str,
    prefix: &str,
    opts: &CacheOptions,
    metrics: &StorageMetrics,
) -> Arc<dyn Storage> {
    cached_mount(&common::hdfs_spec(url, prefix), MOUNT, opts, metrics).await
}

async fn read_all(store: &Arc<dyn Storage>, p: &ArtifactPath) -> Vec<u8> {
    read_range(store, p, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_cold_reads_cause_one_hdfs_read() {
    let _serial = SERIAL.lock().await;
    let url = common::hdfs_url();
    let prefix = common::random_prefix("hcache64");
    let size = 32 << 20;
    let data = Arc::new(pattern(size, 1));
    write_raw(&url, &format!("/{prefix}/jobs/big.jar"), &data).await;
    let dir = common::tempdir();
    let metrics = StorageMetrics::default();
    let store = cached(&url, &prefix, &CacheOptions::in_dir(dir.path()), &metrics).await;
    let p = ArtifactPath::parse("jobs/big.jar").unwrap();
    let dn_before = datanode_bytes_read().await;
    let started = Instant::now();
    concurrent_reads(&store, &p, &data, 64).await;
    let took = started.elapsed();
    let Counts {
        backend_bytes: backend,
        hits,
        misses,
        coalesced,
    } = counts(&metrics, MOUNT);
    let dn = datanode_bytes_read().await - dn_before;
    println!(
        "HDFS: 64 readers of {size} bytes in {took:?}: the datanode served {dn} bytes, the gateway counted {backend}; misses {misses}, coalesced {coalesced}, hits {hits}"
    );
    assert!(
        dn as f64 <= size as f64 * 1.05,
        "the datanode served {dn} bytes for a {size}-byte file"
    );
    assert!(
        dn >= size as u64,
        "the datanode's count missed the read: {dn}"
    );
    assert!(
        backend as f64 <= size as f64 * 1.05,
        "{backend} backend bytes"
    );
    assert_eq!(backend, size as u64);
    assert_eq!(misses, 1);
    assert_eq!(coalesced + hits, 63);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_replaced_behind_the_cache_is_served_new() {
    let _serial = SERIAL.lock().await;
    let url = common::hdfs_url();
    let prefix = common::random_prefix("hcachechg");
    let abs = format!("/{prefix}/udf.jar");
    let (v1, v2) = (pattern(2 << 20, 2), pattern(2 << 20, 3));
    write_raw(&url, &abs, &v1).await;
    let dir = common::tempdir();
    let metrics = StorageMetrics::default();
    let store = cached(&url, &prefix, &CacheOptions::in_dir(dir.path()), &metrics).await;
    let p = ArtifactPath::parse("udf.jar").unwrap();
    assert!(read_all(&store, &p).await == v1);
    settle(dir.path()).await;
    assert!(read_all(&store, &p).await == v1);
    assert_eq!(metrics.cache_hits.get_or_create(&label(MOUNT)).get(), 1);
    // HDFS's validator is the modification time (ms) and length: make sure the clock moves.
    tokio::time::sleep(Duration::from_millis(20)).await;
    write_raw(&url, &abs, &v2).await;
    assert!(
        read_all(&store, &p).await == v2,
        "the replaced file is served new"
    );
    assert_eq!(metrics.cache_misses.get_or_create(&label(MOUNT)).get(), 2);
    assert_eq!(
        metrics
            .backend_read_bytes
            .get_or_create(&label(MOUNT))
            .get(),
        4 << 20
    );
}

/// Through the real binary: 64 concurrent GETs of an uncached HDFS file, one HDFS read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sixty_four_concurrent_cold_downloads_read_hdfs_once() {
    let _serial = SERIAL.lock().await;
    let url = common::hdfs_url();
    let prefix = common::random_prefix("hcache64http");
    let size: usize = 16 << 20;
    let data = Arc::new(pattern(size, 4));
    write_raw(&url, &format!("/{prefix}/job.jar"), &data).await;
    let dir = common::tempdir();
    let config = dir.path().join("gw.toml");
    std::fs::write(
        &config,
        format!(
            "[[mounts]]\nname = \"{MOUNT}\"\nurl = \"{url}/{prefix}\"\nanonymous_read = true\n[mounts.cache]\ndir = {:?}\n",
            dir.path().join("cache").to_str().unwrap()
        ),
    )
    .unwrap();
    let gw = common::Gateway::start(&["--config", config.to_str().unwrap()], &[]);
    concurrent_downloads(&gw.artifact(MOUNT, "job.jar"), &data, 64).await;
    let backend = gateway_backend_bytes(&gw, MOUNT).await;
    let misses = common::gateway_metric(&gw.url, "artifact_gateway_cache_misses_total", &[]).await;
    println!("HDFS over HTTP: backend bytes {backend}, misses {misses}");
    assert_eq!(backend, size as f64);
    assert_eq!(misses, 1.0);
}
