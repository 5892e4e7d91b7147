//! The S3 backend against a real MinIO: the conformance suite through the trait and through the
//! HTTP API of the real binary, plus what is specific to S3 — digest sidecars of multipart
//! uploads, objects written by other tools, a backend dying mid-download, wrong credentials, a
//! backend that is down, and the gateway's memory during a 1 GiB upload.
//!
//! Needs `AG_TEST_S3_*` (tests/servers/minio/start.sh writes them). Every test works under its
//! own random prefix of the shared bucket and never wipes it; the test that kills MinIO starts a
//! private instance of its own.

mod common;
mod conformance;

use std::time::{Duration, Instant};

use artifact_gateway::storage::{
    ArtifactPath, ByteStream, GetOptions, ListOptions, PutMode, PutOptions, Sha256, Storage, Upload,
};
use artifact_gateway::{Error, ErrorKind};
use bytes::Bytes;
use common::config::Config;
use common::minio::{Minio, PrivateMinio};
use conformance::backend::{json_of, readyz, walk_pages};
use futures::StreamExt;
use object_store::ObjectStoreExt;

/// The bearer token of the gateways these tests start.
const TOKEN: &str = "s3-test-token";

/// The binary with one mount `name` on `s3://bucket/prefix` (backend deadline 6 s), signed with
/// `secret`, its config in a fresh directory. The pair drops in order: the process stops first.
fn start_gateway(
    minio: &Minio,
    name: &str,
    prefix: &str,
    secret: &str,
) -> (common::Gateway, tempfile::TempDir) {
    let dir = common::tempdir();
    let gw = Config::new()
        .backend_timeout("6s")
        .mount(name, &format!("s3://{}/{prefix}", minio.bucket))
        .s3(minio, &minio.endpoint, secret)
        .start(dir.path(), Some(TOKEN));
    (gw, dir)
}

fn path(s: &str) -> ArtifactPath {
    ArtifactPath::parse(s).unwrap()
}

/// `len` bytes of a pattern, as a stream of 1 MiB chunks; returns its digest too.
fn pattern_body(len: u64, seed: u8) -> (ByteStream, Sha256) {
    let chunk = move |i: u64, n: usize| -> Bytes {
        Bytes::from(
            (0..n)
                .map(|j| ((i as usize * 131 + j * 7 + seed as usize) % 251) as u8)
                .collect::<Vec<u8>>(),
        )
    };
    let mut h = artifact_gateway::storage::digest::Hasher::new();
    let n = len.div_ceil(1 << 20);
    let size = move |i: u64| (len - i * (1 << 20)).min(1 << 20) as usize;
    for i in 0..n {
        h.update(&chunk(i, size(i)));
    }
    let body = futures::stream::iter(0..n)
        .map(move |i| Ok::<_, Error>(chunk(i, size(i))))
        .boxed();
    (body, h.finish().0)
}

async fn read_all(s: &dyn Storage, p: &ArtifactPath) -> Vec<u8> {
    let res = s.get(p, GetOptions::default()).await.unwrap();
    let mut out = Vec::new();
    let mut body = res.body;
    while let Some(c) = body.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

// ---------- conformance ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_s3_trait() {
    let minio = Minio::from_env();
    let storage = minio.storage(&common::random_prefix("s3-trait"));
    assert!(storage
        .describe()
        .starts_with(&format!("s3://{}/ag-test-", minio.bucket)));
    conformance::run_on_trait("s3", storage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_s3_http() {
    let minio = Minio::from_env();
    let prefix = common::random_prefix("s3-http");
    let (gw, _dir) = start_gateway(&minio, "s3", &prefix, &minio.secret_key);
    let caps = minio.storage(&prefix).capabilities();
    conformance::run_over_http("s3-http", &gw.url, "s3", TOKEN, caps).await;
}

// ---------- digests and metadata specific to S3 ----------

/// A multipart upload without a declared digest records it in a sidecar that follows the
/// object's ETag: another tool replacing the object makes the digest disappear, never lie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_digest_sidecar_follows_the_etag() {
    let minio = Minio::from_env();
    let prefix = common::random_prefix("s3-sidecar");
    let storage = minio.storage(&prefix);
    let p = path("jobs/big.jar");
    let (body, digest) = pattern_body(40 << 20, 5);
    let res = storage.put(&p, Upload::new(body)).await.unwrap();
    assert!(
        res.meta.etag.contains('-'),
        "40 MiB with 16 MiB parts is a multipart upload: {}",
        res.meta.etag
    );
    assert_eq!(res.meta.sha256, Some(digest));
    let head = storage.head(&p).await.unwrap();
    assert_eq!(
        (head.sha256, head.etag.as_str(), head.size),
        (Some(digest), res.meta.etag.as_str(), 40 << 20)
    );
    assert_eq!(
        head.content_type.as_deref(),
        Some("application/java-archive")
    );
    let got = storage.get(&p, GetOptions::default()).await.unwrap();
    assert_eq!(got.meta.sha256, Some(digest), "get carries the digest too");
    drop(got);

    // The sidecar is not an artifact: listings of the mount's root never show it.
    let root = storage
        .list(&ArtifactPath::root(), ListOptions::default())
        .await
        .unwrap();
    let names: Vec<&str> = root.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["jobs"], "{names:?}");

    // Another tool overwrites the object with its own multipart upload (an ETag that looks
    // multipart, so the sidecar is consulted) of the same size: the ETag no longer matches.
    let raw = minio.raw();
    let key = object_store::path::Path::parse(format!("{prefix}/jobs/big.jar")).unwrap();
    let mut upload = raw.put_multipart(&key).await.unwrap();
    for _ in 0..4 {
        upload.put_part(vec![1u8; 10 << 20].into()).await.unwrap();
    }
    let foreign = upload.complete().await.unwrap();
    let head = storage.head(&p).await.unwrap();
    assert_eq!(Some(format!("\"{}\"", head.etag)), foreign.e_tag);
    assert!(head.etag.contains('-'), "{}", head.etag);
    assert_eq!(head.size, 40 << 20, "same size as the gateway's upload");
    assert_eq!(
        head.sha256, None,
        "a stale sidecar must not vouch for new content"
    );

    // And with a plain PUT: same key, no gateway metadata.
    raw.put(
        &key,
        object_store::PutPayload::from_static(b"replaced by another tool"),
    )
    .await
    .unwrap();
    let head = storage.head(&p).await.unwrap();
    assert_eq!(head.size, 24);
    assert_eq!(
        head.sha256, None,
        "a stale sidecar must not vouch for new content"
    );
    assert_eq!(read_all(&*storage, &p).await, b"replaced by another tool");
}

/// The kind of error a put of `body` with `opts` fails with.
async fn refused(
    storage: &dyn Storage,
    p: &ArtifactPath,
    body: ByteStream,
    opts: PutOptions,
) -> ErrorKind {
    let res = storage.put(p, Upload::with(body, opts)).await;
    res.expect_err("the put must be refused").kind()
}

/// With a declared digest the multipart object carries it as metadata itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_with_declared_digest_and_modes() {
    let minio = Minio::from_env();
    let storage = minio.storage(&common::random_prefix("s3-declared"));
    let p = path("a/declared.jar");
    let (body, digest) = pattern_body(20 << 20, 9);
    let opts = PutOptions {
        sha256: Some(digest),
        mode: PutMode::Create,
        ..Default::default()
    };
    let res = storage.put(&p, Upload::with(body, opts)).await.unwrap();
    assert!(res.created);
    assert_eq!(storage.head(&p).await.unwrap().sha256, Some(digest));

    // Create over an existing artifact fails before any byte is uploaded.
    let (body, _) = pattern_body(20 << 20, 10);
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    assert_eq!(
        refused(&*storage, &p, body, opts).await,
        ErrorKind::PreconditionFailed
    );

    // A guarded multipart replace with the right ETag succeeds, with a stale one fails.
    let update = || PutOptions {
        mode: PutMode::Update {
            etag: res.meta.etag.clone(),
        },
        ..Default::default()
    };
    let (body, d2) = pattern_body(20 << 20, 11);
    let v2 = storage.put(&p, Upload::with(body, update())).await.unwrap();
    assert!(!v2.created);
    assert_eq!(storage.head(&p).await.unwrap().sha256, Some(d2));
    let (body, _) = pattern_body(20 << 20, 12);
    let opts = update();
    assert_eq!(
        refused(&*storage, &p, body, opts).await,
        ErrorKind::PreconditionFailed
    );
    assert_eq!(storage.head(&p).await.unwrap().etag, v2.meta.etag);

    // A multipart body whose digest does not match is aborted: the old version stays.
    let (body, _) = pattern_body(20 << 20, 13);
    let opts = PutOptions {
        sha256: Some(digest),
        ..Default::default()
    };
    assert_eq!(
        refused(&*storage, &p, body, opts).await,
        ErrorKind::DigestMismatch
    );
    assert_eq!(storage.head(&p).await.unwrap().etag, v2.meta.etag);
}

/// Objects written by other tools are served with their S3 ETag and no digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_objects_have_etag_but_no_digest() {
    let minio = Minio::from_env();
    let prefix = common::random_prefix("s3-foreign");
    let storage = minio.storage(&prefix);
    let key = format!("{prefix}/lib/udf.jar");
    let put = minio.put_raw(&key, b"written elsewhere".to_vec()).await;
    let meta = storage.head(&path("lib/udf.jar")).await.unwrap();
    assert_eq!(
        Some(format!("\"{}\"", meta.etag)),
        put.e_tag,
        "the S3 ETag, without quotes"
    );
    assert_eq!(meta.sha256, None);
    assert_eq!(meta.size, 17);
    let listed = storage
        .list(&path("lib"), ListOptions::default())
        .await
        .unwrap();
    assert_eq!(listed.entries.len(), 1);
    assert_eq!(listed.entries[0].etag.as_deref(), Some(meta.etag.as_str()));
    // Pinned reads push If-Match down.
    let stale = GetOptions {
        if_match: Some("0123456789abcdef0123456789abcdef".into()),
        ..Default::default()
    };
    assert_eq!(
        storage
            .get(&path("lib/udf.jar"), stale)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::PreconditionFailed
    );
}

/// Listing pages come from the store one at a time: a directory with more entries than a page
/// is walked with `after` and each page asks for only what it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_through_a_large_directory() {
    let minio = Minio::from_env();
    let storage = minio.storage(&common::random_prefix("s3-list"));
    let dir = path("many");
    let mut expected = Vec::new();
    let puts = (0..120).map(|i| {
        let storage = storage.clone();
        let name = format!("f{i:03}.jar");
        async move {
            let (body, _) = pattern_body(10, i as u8);
            storage
                .put(&path(&format!("many/{name}")), Upload::new(body))
                .await
                .unwrap();
        }
    });
    futures::stream::iter(puts)
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for i in 0..120 {
        expected.push(format!("f{i:03}.jar"));
    }
    for d in ["d1", "d2"] {
        let (body, _) = pattern_body(10, 1);
        storage
            .put(&path(&format!("many/{d}/x.jar")), Upload::new(body))
            .await
            .unwrap();
    }
    expected.extend(["d1".to_string(), "d2".to_string()]);
    expected.sort();
    let (seen, pages) = walk_pages(&*storage, &dir, 25, 19).await;
    assert_eq!(seen, expected);
    assert_eq!(pages, 5);
}

// ---------- failures ----------

/// MinIO dies while the gateway streams a download: the client must see a failed transfer
/// (a body error or fewer bytes than Content-Length), never a complete-looking 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_dying_mid_download_fails_the_transfer() {
    let private = PrivateMinio::start();
    let minio = private.minio.clone();
    let (gw, _dir) = start_gateway(&minio, "s3", "dying", &minio.secret_key);
    let client = reqwest::Client::new();
    let size: u64 = 96 << 20;
    let url = gw.artifact("s3", "big/artifact.jar");
    let (body, _) = pattern_body(size, 3);
    let resp = client
        .put(&url)
        .bearer_auth(TOKEN)
        .header("content-length", size)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "upload: {}", resp.status());

    let resp = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let declared = resp.content_length().expect("Content-Length");
    assert_eq!(declared, size);
    let mut body = common::BodyReader::new(resp, Duration::from_secs(60));
    let mut killed = false;
    let started = Instant::now();
    while body.next().await {
        if !killed && body.got >= 4 << 20 {
            private.kill();
            killed = true;
            // Let the gateway notice before reading on.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    assert!(killed, "the download finished before MinIO could be killed");
    let (got, failed) = (body.got, body.failed);
    println!(
        "mid-download kill: received {got} of {declared} bytes, body error: {failed}, after {:?}",
        started.elapsed()
    );
    assert!(
        failed || got < declared,
        "a download cut by a dead backend looked complete ({got} bytes)"
    );
    assert!(
        got < declared,
        "all {declared} bytes arrived although MinIO died after {}",
        4 << 20
    );
}

/// `GET` of `mount/path` with the token: the status, the JSON body, and how long the answer
/// took.
async fn timed_get(
    client: &reqwest::Client,
    gw: &common::Gateway,
    mount: &str,
    path: &str,
) -> (u16, serde_json::Value, Duration) {
    let started = Instant::now();
    let request = client.get(gw.artifact(mount, path)).bearer_auth(TOKEN);
    let resp = request.send().await.unwrap();
    let took = started.elapsed();
    let (status, body) = json_of(resp).await;
    (status, body, took)
}

/// Wrong credentials: artifacts answer 502 naming the mount, `/readyz` 503 naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_a_502_and_not_ready() {
    let minio = Minio::from_env();
    let (gw, _dir) = start_gateway(&minio, "s3-badcreds", "anything", "not-the-secret");
    let client = reqwest::Client::new();

    let (status, body, took) = timed_get(&client, &gw, "s3-badcreds", "some/file.jar").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "backend_auth", "{body}");
    assert_eq!(body["error"]["mount"], "s3-badcreds", "{body}");
    assert!(
        took < Duration::from_secs(5),
        "auth failures are not retried: {took:?}"
    );

    let resp = client
        .put(gw.artifact("s3-badcreds", "x.jar"))
        .bearer_auth(TOKEN)
        .body("data")
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(
        (status, body["error"]["mount"].as_str()),
        (502, Some("s3-badcreds")),
        "{body}"
    );

    let (status, body) = readyz(&client, &gw.url).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["mounts"]["s3-badcreds"]["ready"], false, "{body}");
    assert_eq!(
        body["mounts"]["s3-badcreds"]["code"], "backend_auth",
        "{body}"
    );
    assert!(
        body["failing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "s3-badcreds"),
        "{body}"
    );
}

/// MinIO down (nothing listens on the endpoint): 503/504 JSON naming the mount, within the
/// backend deadline, no hang; `/readyz` says not ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_down_is_a_prompt_503() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let minio = Minio {
        endpoint: format!("http://127.0.0.1:{dead}"),
        ..Minio::from_env()
    };
    let (gw, _dir) = start_gateway(&minio, "s3-down", "p", &minio.secret_key);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    let (status, body, took) = timed_get(&client, &gw, "s3-down", "a.jar").await;
    assert!(status == 503 || status == 504, "{status} {body}");
    assert_eq!(body["error"]["mount"], "s3-down", "{body}");
    // The config's backend deadline is 6 s; allow for the last attempt in flight.
    assert!(took < Duration::from_secs(15), "answered after {took:?}");
    println!("backend down: {status} after {took:?}");

    let started = Instant::now();
    let (status, body) = readyz(&client, &gw.url).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["mounts"]["s3-down"]["ready"], false, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "readyz took {:?}",
        started.elapsed()
    );
}

// ---------- resources ----------

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// A 1 GiB upload through HTTP keeps the gateway's memory bounded by the part buffers, not the
/// body: peak RSS (VmHWM) is printed and must stay far below the body's size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_upload_keeps_gateway_memory_bounded() {
    let minio = Minio::from_env();
    let prefix = common::random_prefix("s3-rss");
    let (gw, _dir) = start_gateway(&minio, "s3", &prefix, &minio.secret_key);
    let pid = gw.child.id();
    let before = vm_hwm_kib(pid);
    let size: u64 = std::env::var("AG_TEST_RSS_UPLOAD_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30);
    // A cheap pattern so the client, not the gateway, is never the bottleneck.
    let block = Bytes::from(
        (0..(1usize << 20))
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let n = size >> 20;
    let mut h = artifact_gateway::storage::digest::Hasher::new();
    for _ in 0..n {
        h.update(&block);
    }
    let digest = h.finish().0;
    let body = futures::stream::iter(0..n).map(move |_| Ok::<_, std::io::Error>(block.clone()));
    let started = Instant::now();
    let resp = reqwest::Client::new()
        .put(gw.artifact("s3", "huge.bin"))
        .bearer_auth(TOKEN)
        .header("content-length", size)
        .header("x-checksum-sha256", digest.to_hex())
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        resp.status().is_success(),
        "upload: {} {}",
        resp.status(),
        resp.text().await.unwrap_or_default()
    );
    let peak = vm_hwm_kib(pid);
    println!(
        "1 GiB upload through the gateway to S3: {:.1} s ({:.0} MB/s); gateway VmHWM {} MiB (at start {} MiB)",
        took.as_secs_f64(),
        size as f64 / 1e6 / took.as_secs_f64(),
        peak / 1024,
        before / 1024
    );
    assert!(
        peak < 400 * 1024,
        "peak RSS {} MiB during a {} MiB upload",
        peak / 1024,
        size >> 20
    );
    let storage = minio.storage(&prefix);
    let meta = storage.head(&path("huge.bin")).await.unwrap();
    assert_eq!((meta.size, meta.sha256), (size, Some(digest)));
    storage.delete(&path("huge.bin")).await.unwrap();
}

/// A multipart `Create`/`Update` whose target changes while its parts upload fails at
/// completion (the precondition travels with `CompleteMultipartUpload`); the other writer's
/// object stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_modes_lose_to_a_concurrent_writer() {
    let minio = Minio::from_env();
    let prefix = common::random_prefix("s3-race");
    let storage = minio.storage(&prefix);
    assert!(storage.capabilities().atomic_create && storage.capabilities().atomic_update);

    for mode in ["create", "update"] {
        let p = path(&format!("race/{mode}.jar"));
        let key = object_store::path::Path::parse(format!("{prefix}/race/{mode}.jar")).unwrap();
        let put_mode = if mode == "create" {
            PutMode::Create
        } else {
            let v1 = storage
                .put(&p, Upload::new(pattern_body(100, 1).0))
                .await
                .unwrap();
            PutMode::Update { etag: v1.meta.etag }
        };
        // A 24 MiB body whose last MiB waits until the other writer has struck.
        let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
        let (head, _) = pattern_body(23 << 20, 2);
        let tail = futures::stream::once(async move {
            let _ = gate_rx.await;
            Ok::<_, Error>(Bytes::from(vec![9u8; 1 << 20]))
        });
        let body: ByteStream = head.chain(tail).boxed();
        let storage2 = storage.clone();
        let p2 = p.clone();
        let upload = tokio::spawn(async move {
            storage2
                .put(
                    &p2,
                    Upload::with(
                        body,
                        PutOptions {
                            mode: put_mode,
                            ..Default::default()
                        },
                    ),
                )
                .await
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let other = minio
            .put_raw(key.as_ref(), b"the other writer".to_vec())
            .await;
        gate_tx.send(()).unwrap();
        let err = upload.await.unwrap().expect_err("the upload must lose");
        assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{mode}: {err:?}");
        let meta = storage.head(&p).await.unwrap();
        assert_eq!(
            Some(format!("\"{}\"", meta.etag)),
            other.e_tag,
            "{mode}: the other writer's object stays"
        );
        assert_eq!(read_all(&*storage, &p).await, b"the other writer");
    }
}
