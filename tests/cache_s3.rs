//! The read-through cache (`[mounts.cache]`) over a real MinIO: every contract of
//! `storage::cache`, through the `Storage` trait and through the HTTP API of the real binary.
//!
//! Backend bytes are counted on the backend's side of the gateway, twice: by a counting TCP
//! proxy between the gateway and MinIO (every byte MinIO put on the wire, headers included)
//! and, where the MinIO is private to the test, by MinIO's own `minio_s3_traffic_sent_bytes`.
//! The gateway's own `artifact_gateway_backend_read_bytes_total` must agree with them.
//!
//! Needs `AG_TEST_S3_*` (tests/servers/minio/start.sh writes them). Tests that kill MinIO start
//! a private instance; the full-disk test mounts a small tmpfs (needs root, as in CI).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_gateway::storage::cache::CacheOptions;
use artifact_gateway::storage::metrics::{MountReason, Reason, StorageMetrics};
use artifact_gateway::storage::registry::{self, BackendSpec, S3Options};
use artifact_gateway::storage::{GetOptions, Storage};
use bytesize::ByteSize;
use common::cache::{
    self, cached_mount, concurrent_downloads, concurrent_reads, files_in, gateway_backend_bytes,
    label, path, pattern, read_and_compare, read_range, settle, wait_empty, Counts,
};
use common::config::Config;
use common::minio::{Minio, PrivateMinio, Staged};
use futures::StreamExt;

const MOUNT: &str = "cached";

/// The storage a `[mounts.cache]` mount gets, built by the registry.
async fn cached(
    minio: &Minio,
    prefix: &str,
    opts: &CacheOptions,
    metrics: &StorageMetrics,
) -> Arc<dyn Storage> {
    cached_with(minio, minio.options(), prefix, opts, metrics).await
}

async fn cached_with(
    minio: &Minio,
    s3: S3Options,
    prefix: &str,
    opts: &CacheOptions,
    metrics: &StorageMetrics,
) -> Arc<dyn Storage> {
    let spec = BackendSpec::S3 {
        bucket: minio.bucket.clone(),
        prefix: prefix.to_string(),
        options: s3,
    };
    cached_mount(&spec, MOUNT, opts, metrics).await
}

fn counts(m: &StorageMetrics) -> Counts {
    cache::counts(m, MOUNT)
}

fn bypassed(m: &StorageMetrics, reason: Reason) -> u64 {
    m.cache_bypassed
        .get_or_create(&MountReason {
            mount: MOUNT.into(),
            reason,
        })
        .get()
}

fn fill_failures(m: &StorageMetrics, reason: Reason) -> u64 {
    m.cache_fill_failures
        .get_or_create(&MountReason {
            mount: MOUNT.into(),
            reason,
        })
        .get()
}

// ---------- coalescing ----------

/// 64 concurrent reads of an uncached 32 MiB object: one backend read, counted at the
/// backend's side (the proxy's wire bytes) and by the gateway; every reader streams from the
/// fill as it grows (its first byte comes long before the fill ends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_cold_reads_cause_one_backend_read() {
    let minio = Minio::from_env();
    let size = 32 << 20;
    let data = Arc::new(pattern(size, 1));
    // 32 MiB at 16 MiB/s: the fill takes about 2 s, so the readers overlap it.
    let Staged { prefix, proxy, via } = minio
        .stage_behind_proxy("cache64", &[("jobs/big.jar", &data[..])], 16 << 20)
        .await;
    let dir = common::tempdir();
    let metrics = StorageMetrics::default();
    let store = cached(&via, &prefix, &CacheOptions::in_dir(dir.path()), &metrics).await;
    let p = path("jobs/big.jar");
    let before = proxy.down_bytes();
    let started = Instant::now();
    let results = concurrent_reads(&store, &p, &data, 64).await;
    let wire = proxy.down_bytes() - before;
    let c = counts(&metrics);
    let earliest_end = results.iter().map(|r| r.2).min().unwrap();
    let slowest_first = results
        .iter()
        .map(|(t0, first, _)| first.duration_since(*t0))
        .max()
        .unwrap();
    println!(
        "64 readers of {size} bytes in {:?}: backend wire bytes {wire}, gateway-counted {}, \
         misses {}, coalesced {}, hits {}, slowest first byte {slowest_first:?}, first reader done after {:?}",
        started.elapsed(),
        c.backend_bytes,
        c.misses,
        c.coalesced,
        c.hits,
        earliest_end.duration_since(started)
    );
    let limit = size as f64 * 1.05;
    assert!(
        (wire as f64) <= limit,
        "MinIO sent {wire} bytes for a {size}-byte object"
    );
    assert!(
        wire >= size as u64,
        "the proxy saw less than one copy ({wire})"
    );
    assert_eq!(
        c.backend_bytes, size as u64,
        "the gateway counts exactly one body"
    );
    assert_eq!(c.misses, 1, "one fill");
    assert_eq!(c.coalesced + c.hits, 63);
    assert!(
        c.coalesced >= 32,
        "most readers joined the fill: {}",
        c.coalesced
    );
    for (t0, first, _) in &results {
        assert!(
            *first < earliest_end,
            "a reader that started {:?} in got its first byte only after a reader had finished",
            t0.duration_since(started)
        );
    }
    // The object is now cached: another read costs no backend bytes.
    settle(dir.path()).await;
    read_and_compare(&store, &p, GetOptions::default(), &data)
        .await
        .unwrap();
    assert_eq!(counts(&metrics).backend_bytes, size as u64);
    assert_eq!(files_in(&dir.path().join("tmp")), Vec::<String>::new());
    assert_eq!(files_in(&dir.path().join("data")).len(), 1);
    minio.delete_prefix(&prefix).await;
}

/// The same through the real binary's HTTP API, against a private MinIO whose own metrics
/// count what it sent: 64 concurrent GETs of an uncached object, MinIO sends it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sixty_four_concurrent_cold_downloads_read_the_backend_once() {
    let private = PrivateMinio::start();
    let minio = private.minio.clone();
    let size: usize = 32 << 20;
    let data = Arc::new(pattern(size, 2));
    let staged = minio
        .stage_behind_proxy("cache64http", &[("flink/job.jar", &data[..])], 16 << 20)
        .await;
    let dir = common::tempdir();
    let gw = start_cached_gateway(&staged.via, &staged.prefix, dir.path(), None);
    let minio_before = minio.sent_bytes().await;
    let wire_before = staged.proxy.down_bytes();
    let started = Instant::now();
    concurrent_downloads(&gw.artifact(MOUNT, "flink/job.jar"), &data, 64).await;
    let took = started.elapsed();
    let wire = staged.proxy.down_bytes() - wire_before;
    let minio_sent = minio.sent_bytes_settled(minio_before + size as f64).await - minio_before;
    let gw_bytes = gateway_backend_bytes(&gw, MOUNT).await;
    let misses = common::gateway_metric(&gw.url, "artifact_gateway_cache_misses_total", &[]).await;
    let coalesced = common::gateway_metric(
        &gw.url,
        "artifact_gateway_cache_coalesced_waiters_total",
        &[],
    )
    .await;
    println!(
        "HTTP: 64 downloads of {size} bytes in {took:?}; MinIO says it sent {minio_sent}, the proxy saw {wire}, \
         the gateway counted {gw_bytes}; misses {misses}, coalesced {coalesced}"
    );
    let rss = peak_rss_kib(gw.child.id());
    println!("gateway peak RSS after 64 concurrent cold downloads: {rss} KiB");
    assert!(rss <= 64 * 1024, "peak RSS {rss} KiB during 64 downloads");
    let limit = size as f64 * 1.05;
    assert!(minio_sent <= limit, "MinIO sent {minio_sent} bytes");
    assert!(
        minio_sent >= size as f64,
        "MinIO's counter missed the fill: {minio_sent}"
    );
    assert!((wire as f64) <= limit, "the proxy saw {wire} bytes");
    assert_eq!(gw_bytes, size as f64);
    assert_eq!(misses, 1.0);
}

/// The peak resident set (VmHWM) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// Starts the binary with one cached S3 mount `cached`, its config in `dir` and its cache in
/// `dir/cache`; with `token`, writes need that bearer token.
fn start_cached_gateway(
    minio: &Minio,
    prefix: &str,
    dir: &Path,
    token: Option<&str>,
) -> common::Gateway {
    let cache = format!(
        "\n[mounts.cache]\ndir = {:?}\n",
        dir.join("cache").to_str().unwrap()
    );
    Config::new()
        .backend_timeout("10s")
        .mount(MOUNT, &format!("s3://{}/{prefix}", minio.bucket))
        .anonymous_read()
        .s3(minio, &minio.endpoint, &minio.secret_key)
        .raw(&cache)
        .start(dir, token)
}

// ---------- start ----------

/// Opening a cache writes nothing: until `start` its directory does not exist and reads go
/// straight to the backend; `start` prepares the directory and reads fill it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unstarted_cache_writes_nothing_and_passes_reads_through() {
    let minio = Minio::from_env();
    let data = pattern(1 << 20, 100);
    let prefix = minio.stage("cachenostart", &[("a.jar", &data[..])]).await;
    let dir = common::tempdir();
    let cache_dir = dir.path().join("cache");
    let metrics = StorageMetrics::default();
    let spec = BackendSpec::S3 {
        bucket: minio.bucket.clone(),
        prefix: prefix.clone(),
        options: minio.options(),
    };
    let opts = CacheOptions::in_dir(&cache_dir);
    let store = registry::build_mount(&spec, MOUNT, Some(&opts), &metrics)
        .await
        .unwrap();
    let p = path("a.jar");
    read_and_compare(&store, &p, GetOptions::default(), &data)
        .await
        .unwrap();
    assert!(!cache_dir.exists(), "opening and reading wrote nothing");
    assert_eq!(bypassed(&metrics, Reason::not_started), 1);
    assert_eq!(counts(&metrics).misses, 0);

    store.start().await.unwrap();
    read_and_compare(&store, &p, GetOptions::default(), &data)
        .await
        .unwrap();
    settle(&cache_dir).await;
    assert_eq!(files_in(&cache_dir.join("data")).len(), 1);
    assert_eq!(counts(&metrics).misses, 1);
    minio.delete_prefix(&prefix).await;
}

/// Two stores on one cache directory (two gateways, or two mounts by mistake): the second
/// `start` is refused, naming the directory, before it touches the first one's files; once the
/// first store is gone, the directory can be used again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_directory_in_use_is_refused() {
    let minio = Minio::from_env();
    let data = pattern(1 << 20, 101);
    let prefix = minio.stage("cachelock", &[("a.jar", &data[..])]).await;
    let dir = common::tempdir();
    let cache_dir = dir.path().join("cache");
    let metrics = StorageMetrics::default();
    let opts = CacheOptions::in_dir(&cache_dir);
    let first = cached(&minio, &prefix, &opts, &metrics).await;
    read_and_compare(&first, &path("a.jar"), GetOptions::default(), &data)
        .await
        .unwrap();
    settle(&cache_dir).await;

    let spec = BackendSpec::S3 {
        bucket: minio.bucket.clone(),
        prefix: prefix.clone(),
        options: minio.options(),
    };
    let second = registry::build_mount(&spec, "other", Some(&opts), &StorageMetrics::default())
        .await
        .unwrap();
    let err = second.start().await.unwrap_err();
    assert_eq!(err.kind(), artifact_gateway::ErrorKind::InvalidInput);
    assert!(err.message().contains("in use by another process"), "{err}");
    assert!(err.message().contains(cache_dir.to_str().unwrap()), "{err}");
    assert_eq!(
        files_in(&cache_dir.join("data")).len(),
        1,
        "the first store's entry is untouched"
    );
    read_and_compare(&first, &path("a.jar"), GetOptions::default(), &data)
        .await
        .unwrap();
    assert_eq!(counts(&metrics).hits, 1);

    drop(first);
    let third = registry::build_mount(&spec, "third", Some(&opts), &StorageMetrics::default())
        .await
        .unwrap();
    third
        .start()
        .await
        .expect("the lock went with the first store");
    minio.delete_prefix(&prefix).await;
}

// ---------- validation ----------

/// An object replaced behind the cache (by another tool, same size) is served new at once;
/// entries are keyed by ETag, so the old copy is never served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_changed_behind_the_cache_is_served_new() {
    let minio = Minio::from_env();
    let (v1, v2) = (pattern(3 << 20, 10), pattern(3 << 20, 11));
    let prefix = minio.stage("cachechg", &[("app.jar", &v1[..])]).await;
    let key = format!("{prefix}/app.jar");
    let dir = common::tempdir();
    let metrics = StorageMetrics::default();
    let store = cached(&minio, &prefix, &CacheOptions::in_dir(dir.path()), &metrics).await;
    let p = path("app.jar");
    read_and_compare(&store, &p, GetOptions::default(), &v1)
        .await
        .unwrap();
    settle(dir.path()).await;
    read_and_compare(&store, &p, GetOptions::default(), &v1)
        .await
        .unwrap();
    let c = counts(&metrics);
    assert_eq!((c.misses, c.hits), (1, 1), "fill, then hit");

    minio.put_raw(&key, v2.clone()).await;
    read_and_compare(&store, &p, GetOptions::default(), &v2)
        .await
        .expect("the new version");
    settle(dir.path()).await;
    let range = 1_000_000..1_000_100;
    let got = read_range(&store, &p, Some(range.clone())).await;
    assert_eq!(got, v2[1_000_000..1_000_100]);
    let head = store.head(&p).await.unwrap();
    let c = counts(&metrics);
    assert_eq!(c.misses, 2, "the change is a miss");
    assert_eq!(c.hits, 2, "the range read is a hit on the new entry");
    assert_eq!(c.backend_bytes, 6 << 20, "each version read once");

    // A read pinned to the old version fails instead of serving it.
    let stale = GetOptions {
        if_match: Some("\"not-the-etag\"".into()),
        ..Default::default()
    };
    let err = store.get(&p, stale).await.unwrap_err();
    assert_eq!(err.kind(), artifact_gateway::ErrorKind::PreconditionFailed);
    assert!(!head.etag.is_empty());

    // Deleted behind the cache: not found, although bytes are still on disk.
    minio
        .raw()
        .delete(&object_store::path::Path::from(key.as_str()))
        .await
        .unwrap();
    let err = store.get(&p, GetOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), artifact_gateway::ErrorKind::NotFound);
    minio.delete_prefix(&prefix).await;
}

use object_store::ObjectStoreExt;

/// Over HTTP: after a replace through the gateway or by another tool, a GET returns the new
/// bytes and the new ETag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_replaced_object_is_served_new() {
    let minio = Minio::from_env();
    let prefix = common::random_prefix("cachechghttp");
    let dir = common::tempdir();
    let cache_dir = dir.path().join("cache");
    let token = "cache-change-token";
    let gw = start_cached_gateway(&minio, &prefix, dir.path(), Some(token));
    let client = reqwest::Client::new();
    let url = gw.artifact(MOUNT, "lib/udf.jar");
    let get = |url: String| {
        let client = client.clone();
        async move {
            let r = client.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let etag = r.headers()["etag"].to_str().unwrap().to_string();
            (etag, r.bytes().await.unwrap().to_vec())
        }
    };
    let put = |body: Vec<u8>| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let r = client.put(&url).bearer_auth(token).body(body);
            assert!(r.send().await.unwrap().status().is_success());
        }
    };
    let v1 = pattern(1 << 20, 20);
    put(v1.clone()).await;
    let (e1, b1) = get(url.clone()).await;
    settle(&cache_dir).await;
    let (e1b, b1b) = get(url.clone()).await;
    assert_eq!((&b1, &b1b), (&v1, &v1));
    assert_eq!(e1, e1b);

    let v2 = pattern(1 << 20, 21);
    put(v2.clone()).await;
    let (e2, b2) = get(url.clone()).await;
    assert!(b2 == v2, "the gateway's own replace is served new");
    assert_ne!(e2, e1);

    let v3 = pattern(1 << 20, 22);
    minio
        .put_raw(&format!("{prefix}/lib/udf.jar"), v3.clone())
        .await;
    let (e3, b3) = get(url.clone()).await;
    assert!(b3 == v3, "another tool's replace is served new");
    assert_ne!(e3, e2);
    let hits = common::gateway_metric(&gw.url, "artifact_gateway_cache_hits_total", &[]).await;
    let misses = common::gateway_metric(&gw.url, "artifact_gateway_cache_misses_total", &[]).await;
    assert_eq!((hits, misses), (1.0, 3.0));
    minio.delete_prefix(&prefix).await;
}

/// A conditional GET answered `304 Not Modified` (or `412`) needs no body: on an object not
/// cached yet it starts no fill and reads no byte from the backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_a_304_on_a_cold_object_starts_no_fill() {
    let minio = Minio::from_env();
    let data = pattern(2 << 20, 23);
    let prefix = minio.stage("cache304", &[("cold.jar", &data[..])]).await;
    let dir = common::tempdir();
    let cache_dir = dir.path().join("cache");
    let gw = start_cached_gateway(&minio, &prefix, dir.path(), None);
    let client = reqwest::Client::new();
    let url = gw.artifact(MOUNT, "cold.jar");
    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    let etag = head.headers()["etag"].to_str().unwrap().to_string();
    let modified = head.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_string();

    let r = client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = client
        .get(&url)
        .header("if-modified-since", &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = client
        .get(&url)
        .header("if-match", "\"another-version\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);

    settle(&cache_dir).await;
    assert!(files_in(&cache_dir.join("data")).is_empty(), "no entry");
    let misses = common::gateway_metric(&gw.url, "artifact_gateway_cache_misses_total", &[]).await;
    let read = common::gateway_metric(
        &gw.url,
        "artifact_gateway_backend_read_bytes_total",
        &[("mount", MOUNT)],
    )
    .await;
    assert_eq!((misses, read), (0.0, 0.0), "no fill, no byte read");

    // A GET whose condition lets the body through fills as usual.
    let r = client
        .get(&url)
        .header("if-none-match", "\"another-version\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap() == data);
    minio.delete_prefix(&prefix).await;
}

/// A PUT or DELETE through the gateway drops the cached entry of the path at once (it could
/// never be served again, but would hold space until evicted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_put_and_delete_through_the_gateway_drop_the_entry() {
    let minio = Minio::from_env();
    let prefix = common::random_prefix("cachedrop");
    let dir = common::tempdir();
    let cache_dir = dir.path().join("cache");
    let token = "cache-drop-token";
    let gw = start_cached_gateway(&minio, &prefix, dir.path(), Some(token));
    let client = reqwest::Client::new();
    let url = gw.artifact(MOUNT, "lib/a.jar");
    let put = |body: Vec<u8>| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let r = client.put(&url).bearer_auth(token).body(body);
            assert!(r.send().await.unwrap().status().is_success());
        }
    };
    let get = |expect: Vec<u8>| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let r = client.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert!(r.bytes().await.unwrap() == expect);
        }
    };
    let entries = || files_in(&cache_dir.join("data"));
    let v1 = pattern(1 << 20, 40);
    put(v1.clone()).await;
    get(v1.clone()).await;
    settle(&cache_dir).await;
    assert_eq!(entries().len(), 1, "filled");

    let v2 = pattern(1 << 20, 41);
    put(v2.clone()).await;
    assert!(
        wait_empty(&cache_dir.join("data")).await.is_empty(),
        "the put dropped the entry"
    );
    get(v2.clone()).await;
    settle(&cache_dir).await;
    get(v2.clone()).await;
    assert_eq!(entries().len(), 1, "the new version is cached");

    let r = client.delete(&url).bearer_auth(token).send().await.unwrap();
    assert!(r.status().is_success());
    assert!(
        wait_empty(&cache_dir.join("data")).await.is_empty(),
        "the delete dropped the entry"
    );
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 404);
    minio.delete_prefix(&prefix).await;
}

// ---------- failures ----------

/// MinIO is killed while 8 HTTP clients stream one fill: every response is cut (a body error
/// or fewer bytes than Content-Length, never a complete-looking 200), no temporary file stays,
/// no entry is created, and later requests are errors, never bytes from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_killed_mid_fill_fails_every_waiter() {
    let private = PrivateMinio::start();
    let minio = private.minio.clone();
    let size: usize = 32 << 20;
    // 4 s for the whole object.
    let staged = minio
        .stage_behind_proxy("cachekill", &[("big.jar", &pattern(size, 30)[..])], 8 << 20)
        .await;
    let dir = common::tempdir();
    let cache_dir = dir.path().join("cache");
    let gw = start_cached_gateway(&staged.via, &staged.prefix, dir.path(), None);
    let url = gw.artifact(MOUNT, "big.jar");
    let client = reqwest::Client::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(8);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, tx) = (client.clone(), url.clone(), tx.clone());
            tokio::spawn(async move {
                let resp = client.get(&url).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                let declared = resp.content_length().unwrap();
                let mut body = common::BodyReader::new(resp, Duration::from_secs(30));
                let mut signalled = false;
                while body.next().await {
                    if !signalled && body.got > 0 {
                        signalled = true;
                        let _ = tx.send(()).await;
                    }
                }
                (declared, body.got, body.failed)
            })
        })
        .collect();
    drop(tx);
    for _ in 0..8 {
        rx.recv().await.expect("every client gets its first bytes");
    }
    private.kill();
    for t in tasks {
        let (declared, got, failed) = t.await.unwrap();
        assert_eq!(declared, size as u64);
        assert!(
            failed || got < declared,
            "a waiter saw a complete-looking body ({got} bytes)"
        );
        assert!(got < declared, "a waiter received all {got} bytes");
    }
    assert_eq!(
        wait_empty(&cache_dir.join("tmp")).await,
        Vec::<String>::new()
    );
    assert_eq!(files_in(&cache_dir.join("data")), Vec::<String>::new());
    let failures = common::gateway_metric(
        &gw.url,
        "artifact_gateway_cache_fill_failures_total",
        &[("reason", "backend")],
    )
    .await;
    assert_eq!(failures, 1.0);
    // The backend is gone: the cache has nothing to serve and says so.
    let resp = client.get(&url).send().await.unwrap();
    assert!(
        resp.status().is_server_error(),
        "after the backend died: {}",
        resp.status()
    );
}

/// The backend's connections are cut mid-fill (through the trait): every reader's body ends
/// with an error; once the backend is reachable again a read fills anew and serves the whole,
/// correct object, and the cache holds exactly that one entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_fill_leaves_nothing_and_the_next_read_fills_anew() {
    let minio = Minio::from_env();
    let size: usize = 16 << 20;
    let data = Arc::new(pattern(size, 40));
    let Staged { prefix, proxy, via } = minio
        .stage_behind_proxy("cachecut", &[("x.jar", &data[..])], 4 << 20)
        .await;
    let dir = common::tempdir();
    let metrics = StorageMetrics::default();
    // The S3 client resumes a broken body with a range request: with the backend down, its
    // one retry fails too.
    let s3 = S3Options {
        max_retries: Some(1),
        retry_timeout: Some(Duration::from_secs(2)),
        ..via.options()
    };
    let store = cached_with(
        &via,
        s3,
        &prefix,
        &CacheOptions::in_dir(dir.path()),
        &metrics,
    )
    .await;
    let p = path("x.jar");
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (store, p, data) = (store.clone(), p.clone(), data.clone());
            tokio::spawn(
                async move { read_and_compare(&store, &p, GetOptions::default(), &data).await },
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.down();
    for r in readers {
        let err = r
            .await
            .unwrap()
            .expect_err("a cut fill must fail its readers");
        assert!(err.contains("body error"), "{err}");
    }
    assert_eq!(fill_failures(&metrics, Reason::backend), 1);
    assert_eq!(
        wait_empty(&dir.path().join("tmp")).await,
        Vec::<String>::new()
    );
    assert_eq!(files_in(&dir.path().join("data")), Vec::<String>::new());

    proxy.up();
    proxy.set_rate(0);
    read_and_compare(&store, &p, GetOptions::default(), &data)
        .await
        .expect("a new fill serves the whole object");
    settle(dir.path()).await;
    assert_eq!(files_in(&dir.path().join("data")).len(), 1);
    assert_eq!(counts(&metrics).misses, 2);
    // And it is a complete entry now.
    read_and_compare(&store, &p, GetOptions::default(), &data)
        .await
        .unwrap();
    assert_eq!(counts(&metrics).hits, 1);
    minio.delete_prefix(&prefix).await;
}

/// A small tmpfs mounted for the test, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = common::tempdir();
        let (code, out, err) = common::run(std::process::Command::new("mount").args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            dir.path().to_str().unwrap(),
        ]));
        assert_eq!(
            code, 0,
            "the full-disk test mounts a {size} tmpfs and needs root (CAP_SYS_ADMIN): {out}{err}"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// The cache disk fills up (ENOSPC) in the middle of a fill: every reader still gets the whole
/// object (the rest comes from the backend), the half-written file is removed, and for the
/// back-off period reads go straight to the backend and succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cache_disk_degrades_to_pass_through() {
    let minio = Minio::from_env();
    let size: usize = 24 << 20;
    let data = Arc::new(pattern(size, 50));
    let small = pattern(1 << 20, 51);
    let prefix = minio
        .stage(
            "cachefull",
            &[("big.jar", &data[..]), ("small.jar", &small[..])],
        )
        .await;
    let disk = Tmpfs::mount("8m");
    let metrics = StorageMetrics::default();
    // The limit is larger than the disk: the disk fills before the limit is reached.
    let opts = CacheOptions {
        max_size: ByteSize::gib(1),
        ..CacheOptions::in_dir(disk.path().join("cache"))
    };
    let store = cached(&minio, &prefix, &opts, &metrics).await;
    let p = path("big.jar");
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (store, p, data) = (store.clone(), p.clone(), data.clone());
            tokio::spawn(
                async move { read_and_compare(&store, &p, GetOptions::default(), &data).await },
            )
        })
        .collect();
    for r in readers {
        r.await
            .unwrap()
            .expect("a full cache disk must not fail a read");
    }
    assert_eq!(fill_failures(&metrics, Reason::disk_full), 1);
    assert_eq!(
        wait_empty(&disk.path().join("cache/tmp")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        files_in(&disk.path().join("cache/data")),
        Vec::<String>::new()
    );
    let fell_back = bypassed(&metrics, Reason::disk_error);
    assert!(fell_back >= 1, "readers continued from the backend");

    // In the back-off period, reads (even of small objects) bypass the cache and succeed. (One of
    // the four readers above may itself have arrived after the failed fill and bypassed already.)
    let bypassed_before = bypassed(&metrics, Reason::disk_full);
    read_and_compare(&store, &path("small.jar"), GetOptions::default(), &small)
        .await
        .unwrap();
    read_and_compare(&store, &p, GetOptions::default(), &data)
        .await
        .unwrap();
    assert_eq!(bypassed(&metrics, Reason::disk_full) - bypassed_before, 2);
    assert_eq!(
        files_in(&disk.path().join("cache/data")),
        Vec::<String>::new()
    );
    minio.delete_prefix(&prefix).await;
}

// ---------- restarts ----------

/// Entries survive a restart of the binary and are served only after validation: a hit
/// without backend bytes when the object is unchanged, the new bytes when it changed while
/// the gateway was down. Leftovers of a crashed fill are removed at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_survive_a_restart_and_are_revalidated() {
    let minio = Minio::from_env();
    let v1 = pattern(2 << 20, 60);
    let prefix = minio.stage("cacherestart", &[("r.jar", &v1[..])]).await;
    let key = format!("{prefix}/r.jar");
    let dir = common::tempdir();
    let cache_dir = dir.path().join("cache");
    let client = reqwest::Client::new();
    let fetch = |url: String| {
        let client = client.clone();
        async move {
            let r = client.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap().to_vec()
        }
    };
    let gw = start_cached_gateway(&minio, &prefix, dir.path(), None);
    assert!(fetch(gw.artifact(MOUNT, "r.jar")).await == v1);
    settle(&cache_dir).await;
    drop(gw);
    assert_eq!(files_in(&cache_dir.join("data")).len(), 1);

    // What a crash mid-fill leaves behind, and a stray file.
    std::fs::write(cache_dir.join("tmp").join("0123.partial"), b"half").unwrap();
    std::fs::write(cache_dir.join("data").join("not-an-entry"), b"?").unwrap();

    let gw = start_cached_gateway(&minio, &prefix, dir.path(), None);
    assert_eq!(files_in(&cache_dir.join("tmp")), Vec::<String>::new());
    assert_eq!(files_in(&cache_dir.join("data")).len(), 1);
    assert!(fetch(gw.artifact(MOUNT, "r.jar")).await == v1);
    let m = |name: &'static str| {
        let url = gw.url.clone();
        async move { common::gateway_metric(&url, name, &[("mount", MOUNT)]).await }
    };
    assert_eq!(m("artifact_gateway_cache_hits_total").await, 1.0);
    assert_eq!(m("artifact_gateway_backend_read_bytes_total").await, 0.0);
    assert_eq!(m("artifact_gateway_cache_validations_total").await, 1.0);
    drop(gw);

    // Changed while the gateway was down.
    let v2 = pattern(2 << 20, 61);
    minio.put_raw(&key, v2.clone()).await;
    let gw = start_cached_gateway(&minio, &prefix, dir.path(), None);
    assert!(
        fetch(gw.artifact(MOUNT, "r.jar")).await == v2,
        "a restart never trusts an entry blindly"
    );
    assert_eq!(
        common::gateway_metric(&gw.url, "artifact_gateway_cache_misses_total", &[]).await,
        1.0
    );
    minio.delete_prefix(&prefix).await;
}

/// The gateway is killed (SIGKILL) in the middle of a fill: at the next start the partial file
/// is removed and the next read fills anew and serves the whole object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_fill_leaves_nothing_served() {
    let minio = Minio::from_env();
    let size: usize = 16 << 20;
    let data = pattern(size, 70);
    let Staged { prefix, proxy, via } = minio
        .stage_behind_proxy("cachecrash", &[("c.jar", &data[..])], 2 << 20)
        .await;
    let dir = common::tempdir();
    let cache_dir: PathBuf = dir.path().join("cache");
    let mut gw = start_cached_gateway(&via, &prefix, dir.path(), None);
    let client = reqwest::Client::new();
    let resp = client
        .get(gw.artifact(MOUNT, "c.jar"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let _ = body.next().await;
    assert_eq!(
        files_in(&cache_dir.join("tmp")).len(),
        1,
        "a fill is running"
    );
    gw.child.kill().unwrap();
    gw.child.wait().unwrap();
    drop(body);
    assert_eq!(
        files_in(&cache_dir.join("tmp")).len(),
        1,
        "the crash left it"
    );

    proxy.set_rate(0);
    let gw = start_cached_gateway(&via, &prefix, dir.path(), None);
    assert_eq!(files_in(&cache_dir.join("tmp")), Vec::<String>::new());
    assert_eq!(files_in(&cache_dir.join("data")), Vec::<String>::new());
    let got = client
        .get(gw.artifact(MOUNT, "c.jar"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(got[..] == data[..], "the whole object after the crash");
    minio.delete_prefix(&prefix).await;
}

// ---------- ranges ----------

/// A Range read of an uncached object does not wait for the fill: its first byte comes from
/// the backend (or from the growing file when the fill already has it) long before the fill
/// ends, and its bytes are right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_on_a_cold_object_does_not_wait_for_the_fill() {
    let minio = Minio::from_env();
    let size: usize = 32 << 20;
    let data = Arc::new(pattern(size, 80));
    // The fill takes about 4 s.
    let staged = minio
        .stage_behind_proxy("cacherange", &[("r.jar", &data[..])], 8 << 20)
        .await;
    let (via, prefix) = (&staged.via, &staged.prefix);
    let dir = common::tempdir();
    let metrics = StorageMetrics::default();
    let store = cached(via, prefix, &CacheOptions::in_dir(dir.path()), &metrics).await;
    let p = path("r.jar");
    let t0 = Instant::now();
    // The tail of the object, cold: nothing is cached or filling yet.
    let tail = (size - (1 << 20)) as u64..size as u64;
    let got = read_range(&store, &p, Some(tail.clone())).await;
    let tail_time = t0.elapsed();
    assert!(got[..] == data[tail.start as usize..]);
    assert!(
        tail_time < Duration::from_millis(2500),
        "the tail took {tail_time:?}; a whole fill takes about 4 s"
    );
    assert_eq!(bypassed(&metrics, Reason::range_ahead), 1);
    assert_eq!(counts(&metrics).misses, 1, "the range started a fill");
    // The head of the object, from the growing file.
    let head = 0u64..65536;
    let got = read_range(&store, &p, Some(head.clone())).await;
    assert!(got[..] == data[..65536]);
    assert!(
        t0.elapsed() < Duration::from_millis(3000),
        "the head of a growing file is served at once"
    );
    assert_eq!(counts(&metrics).coalesced, 1);
    // Once the fill ends the whole object is a hit.
    read_and_compare(&store, &p, GetOptions::default(), &data)
        .await
        .unwrap();
    let c = counts(&metrics);
    assert_eq!(
        c.backend_bytes,
        size as u64 + (1 << 20),
        "one fill plus the tail range"
    );
    minio.delete_prefix(prefix).await;
}

// ---------- pacing: a fill's only reader is served from memory ----------

/// While a fill has one reader, it stays within a few MiB of it (the bytes between are kept in
/// memory and reach the reader without a read-back from the file): a slow reader of a fast
/// backend finds the gateway's backend count close to its own position, not at the object's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_stays_close_to_its_only_reader() {
    let minio = Minio::from_env();
    let size: usize = 32 << 20;
    let data = Arc::new(pattern(size, 90));
    let prefix = minio.stage("cachepace", &[("p.jar", &data[..])]).await;
    let dir = common::tempdir();
    let metrics = StorageMetrics::default();
    let store = cached(&minio, &prefix, &CacheOptions::in_dir(dir.path()), &metrics).await;
    let p = path("p.jar");
    let mut body = store.get(&p, GetOptions::default()).await.unwrap().body;
    let (mut pos, mut widest) = (0usize, 0u64);
    while let Some(chunk) = body.next().await {
        let c = chunk.unwrap();
        assert!(c[..] == data[pos..pos + c.len()], "bytes at {pos}");
        pos += c.len();
        if pos < 12 << 20 {
            // A slow client for the first 12 MiB: an unpaced fill would be done long before.
            tokio::time::sleep(Duration::from_millis(5)).await;
            widest = widest.max(counts(&metrics).backend_bytes - pos as u64);
        }
    }
    assert_eq!(pos, size);
    println!("widest lead of the fill over its reader: {widest} bytes");
    assert!(
        widest <= 4 << 20,
        "the fill ran {widest} bytes ahead of its only reader"
    );
    settle(dir.path()).await;
    assert_eq!(counts(&metrics).backend_bytes, size as u64, "one fill");
    assert_eq!(
        files_in(&dir.path().join("data")).len(),
        1,
        "the entry is kept"
    );
    minio.delete_prefix(&prefix).await;
}

/// Pacing never lets one client hold back another: with a reader that took one chunk and
/// stopped, a second reader of the same fill gets the whole object; and a fill whose only
/// reader goes away mid-object completes on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_holds_back_no_other_and_an_abandoned_fill_completes() {
    let minio = Minio::from_env();
    let size: usize = 32 << 20;
    let data = Arc::new(pattern(size, 91));
    let prefix = minio
        .stage("cachestall", &[("s.jar", &data[..]), ("t.jar", &data[..])])
        .await;
    let dir = common::tempdir();
    let metrics = StorageMetrics::default();
    let store = cached(&minio, &prefix, &CacheOptions::in_dir(dir.path()), &metrics).await;

    let s = path("s.jar");
    let mut stalled = store.get(&s, GetOptions::default()).await.unwrap().body;
    let first = stalled.next().await.unwrap().unwrap();
    assert!(first[..] == data[..first.len()]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let paced = counts(&metrics).backend_bytes;
    assert!(
        paced < size as u64,
        "the fill waits for its only reader (it had read {paced} bytes)"
    );
    let second = tokio::time::timeout(
        Duration::from_secs(30),
        read_and_compare(&store, &s, GetOptions::default(), &data),
    )
    .await
    .expect("a second reader is not held back by a stalled one");
    second.unwrap();
    drop(stalled);
    settle(dir.path()).await;
    assert_eq!(counts(&metrics).backend_bytes, size as u64, "one fill");
    assert_eq!(counts(&metrics).misses, 1);

    let t = path("t.jar");
    let mut abandoned = store.get(&t, GetOptions::default()).await.unwrap().body;
    abandoned.next().await.unwrap().unwrap();
    drop(abandoned);
    settle(dir.path()).await;
    assert_eq!(
        counts(&metrics).backend_bytes,
        2 * size as u64,
        "the abandoned fill read the whole object"
    );
    assert_eq!(
        files_in(&dir.path().join("data")).len(),
        2,
        "both are entries"
    );
    read_and_compare(&store, &t, GetOptions::default(), &data)
        .await
        .unwrap();
    assert_eq!(
        counts(&metrics).hits,
        1,
        "the abandoned fill's entry is a hit"
    );
    minio.delete_prefix(&prefix).await;
}

// ---------- size limit ----------

/// Least recently used entries are evicted to stay within `max_size`; an entry being read is
/// never evicted (the read that needs room goes to the backend instead); an object larger
/// than the limit is never cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lru_eviction_keeps_the_limit_and_spares_entries_in_use() {
    let minio = Minio::from_env();
    let prefix = common::random_prefix("cachelru");
    let mb = 1usize << 20;
    let objs: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| (format!("o{i}.jar"), pattern(4 * mb, 90 + i)))
        .collect();
    for (name, bytes) in &objs {
        minio
            .put_raw(&format!("{prefix}/{name}"), bytes.clone())
            .await;
    }
    let huge = pattern(11 * mb, 99);
    minio
        .put_raw(&format!("{prefix}/huge.jar"), huge.clone())
        .await;
    let dir = common::tempdir();
    let metrics = StorageMetrics::default();
    let opts = CacheOptions {
        max_size: ByteSize::b(10 * mb as u64),
        ..CacheOptions::in_dir(dir.path())
    };
    let store = cached(&minio, &prefix, &opts, &metrics).await;
    let read = |i: usize| {
        let (store, p, data) = (store.clone(), path(&objs[i].0), objs[i].1.clone());
        let dir = dir.path().to_path_buf();
        async move {
            read_and_compare(&store, &p, GetOptions::default(), &data)
                .await
                .unwrap();
            settle(&dir).await;
        }
    };
    read(0).await;
    read(1).await;
    read(0).await; // 1 is now the least recently used
    read(2).await; // 12 MiB > 10: evicts 1
    let evictions = metrics.cache_evictions.get_or_create(&label(MOUNT)).get();
    assert_eq!(evictions, 1);
    let before = counts(&metrics);
    read(0).await;
    read(2).await;
    assert_eq!(counts(&metrics).hits, before.hits + 2, "0 and 2 stayed");
    read(1).await;
    assert_eq!(
        counts(&metrics).misses,
        before.misses + 1,
        "1 was evicted and fills again"
    );
    read(3).await;

    // Entries in use are never evicted: a fresh cache holding 0 and 1, both being read.
    let dir2 = common::tempdir();
    let metrics2 = StorageMetrics::default();
    let store2 = cached(
        &minio,
        &prefix,
        &CacheOptions {
            max_size: ByteSize::b(10 * mb as u64),
            ..CacheOptions::in_dir(dir2.path())
        },
        &metrics2,
    )
    .await;
    // Reads object `i` through the second cache.
    let read2 = |i: usize| {
        let (store, p, data) = (store2.clone(), path(&objs[i].0), objs[i].1.clone());
        async move { read_and_compare(&store, &p, GetOptions::default(), &data).await }
    };
    for i in [0, 1] {
        read2(i).await.unwrap();
        settle(dir2.path()).await;
    }
    let (p0, p1) = (path(&objs[0].0), path(&objs[1].0));
    let held0 = store2.get(&p0, GetOptions::default()).await.unwrap();
    let held1 = store2.get(&p1, GetOptions::default()).await.unwrap();
    read2(2).await.expect("no room: served from the backend");
    assert_eq!(bypassed(&metrics2, Reason::no_room), 1);
    assert_eq!(files_in(&dir2.path().join("data")).len(), 2);
    let got: Vec<u8> = held1.body.map(|c| c.unwrap().to_vec()).concat().await;
    assert!(got == objs[1].1, "a held entry is whole");
    // 1 is free again: the next fill evicts it, never 0, which is still held.
    read2(2).await.unwrap();
    settle(dir2.path()).await;
    assert_eq!(
        metrics2.cache_evictions.get_or_create(&label(MOUNT)).get(),
        1
    );
    let got: Vec<u8> = held0.body.map(|c| c.unwrap().to_vec()).concat().await;
    assert!(got == objs[0].1, "the held entry survived");
    read2(0).await.unwrap();
    assert_eq!(
        counts(&metrics2).hits,
        3,
        "0 (twice: held and now) and 1 hit"
    );
    assert!(
        metrics2
            .cache_stored_bytes
            .get_or_create(&label(MOUNT))
            .get()
            <= 10 * mb as i64,
        "within the limit"
    );

    // Larger than the whole cache: served, never cached.
    read_and_compare(&store, &path("huge.jar"), GetOptions::default(), &huge)
        .await
        .unwrap();
    assert_eq!(bypassed(&metrics, Reason::too_large), 1);
    let total: u64 = std::fs::read_dir(dir.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total <= 10 * mb as u64, "{total} bytes on disk");
    minio.delete_prefix(&prefix).await;
}
