//! The fault matrix: faults injected into real servers while the real binary works, each test
//! checking that the client *sees* the failure (an error status with a JSON body, or a broken
//! connection — never a success, never a complete-looking short body) and that nothing partial
//! is visible on the backend afterwards.
//!
//! | fault | here | elsewhere |
//! |---|---|---|
//! | gateway SIGKILLed mid-upload | local, S3 (multipart), HDFS, OSS (multipart) | |
//! | backend gone mid-upload, then back | S3, OSS (a proxy cuts and refuses connections) | |
//! | backend killed mid-upload | HDFS (the MiniDFSCluster is stopped) | |
//! | backend gone mid-download | OSS (proxy) | S3 `backend_s3.rs`, HDFS `backend_hdfs.rs` |
//! | slow backend (answers stall) | S3 (before the headers and mid-body), OSS (before the headers) | |
//! | client cut mid-upload | | every backend: `conformance::interrupted_upload_leaves_nothing` |
//! | disk full | | local: `read_only_and_full_disk.rs`; cache disk: `cache_s3.rs` |
//! | wrong credentials | | S3 `backend_s3.rs`, OSS `backend_oss.rs` |
//! | backend down from the start | | S3 `backend_s3.rs`, OSS `backend_oss.rs` |
//!
//! Needs the servers of `tests/run.sh` (`AG_TEST_S3_*`, `AG_TEST_HDFS_URL`); the OSS stand-in
//! and, for the HDFS kill, a MiniDFSCluster are started privately so that their state can be
//! inspected (and killed) by the test.

mod common;
mod conformance;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use common::config::Config;
use common::minio::Minio;
use common::proxy::Proxy;
use common::Gateway;
use conformance::backend::{json_of, readyz, PrivateServer};
use futures::StreamExt;

const TOKEN: &str = "faults-test-token-0123456789";
const MIB: u64 = 1 << 20;

// ---------- configurations ----------

/// The configurations the faults run under: one mount `m`, short timeouts.
struct Setup;

impl Setup {
    fn local(root: &Path) -> Config {
        Config::new().mount("m", &format!("file://{}", root.display()))
    }

    /// S3 at `endpoint` (MinIO or a proxy in front of it), 5 MiB parts, short timeouts.
    fn s3(minio: &Minio, endpoint: &str, prefix: &str) -> Config {
        Config::new()
            .backend_timeout("4s")
            .mount("m", &format!("s3://{}/{prefix}", minio.bucket))
            .s3(minio, endpoint, &minio.secret_key)
            .raw("part_size = 5242880\nconnect_timeout = \"1s\"\nread_timeout = \"1s\"\n")
            .raw("max_retries = 1\nretry_timeout = \"2s\"\n")
    }

    fn oss(oss: &PrivateServer, endpoint: &str, prefix: &str) -> Config {
        Config::new()
            .backend_timeout("4s")
            .mount(
                "m",
                &format!("oss://{}/{prefix}", oss.var("AG_TEST_OSS_BUCKET")),
            )
            .oss(
                endpoint,
                &oss.var("AG_TEST_OSS_ACCESS_KEY_ID"),
                &oss.var("AG_TEST_OSS_ACCESS_KEY_SECRET"),
            )
    }

    fn hdfs(url: &str, prefix: &str) -> Config {
        Config::new()
            .backend_timeout("6s")
            .mount("m", &format!("{url}/{prefix}"))
            .hdfs(r#""dfs.client.socket-timeout" = "5000""#)
    }
}

// ---------- clients ----------

/// A body of `len` bytes sent 1 MiB at a time, 20 ms apart; `sent` counts what was handed over.
fn trickle(len: u64, sent: Arc<AtomicU64>) -> reqwest::Body {
    let chunk = Bytes::from(vec![0x5a; MIB as usize]);
    let body = futures::stream::iter(0..len / MIB).then(move |_| {
        let (c, sent) = (chunk.clone(), sent.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            sent.fetch_add(c.len() as u64, Ordering::SeqCst);
            Ok::<_, std::io::Error>(c)
        }
    });
    reqwest::Body::wrap_stream(body)
}

/// What a client saw of a request that must fail.
#[derive(Debug)]
enum Seen {
    /// The connection broke (reset, closed) before an answer.
    Broken(String),
    /// An error status with a JSON body: status and `error.code`.
    Error(u16, String),
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seen::Broken(e) => write!(f, "connection broken ({e})"),
            Seen::Error(s, c) => write!(f, "{s} {c}"),
        }
    }
}

/// Starts a 64 MiB upload to `url`, runs `fault` once 24 MiB have left the client (several
/// parts of a multipart upload are then stored), and returns what the client saw; a success
/// fails the test.
async fn upload_with_fault(url: &str, fault: impl FnOnce()) -> Seen {
    let sent = Arc::new(AtomicU64::new(0));
    let len = 64 * MIB;
    let request = reqwest::Client::new()
        .put(url)
        .bearer_auth(TOKEN)
        .header("content-length", len)
        .body(trickle(len, sent.clone()))
        .send();
    let task = tokio::spawn(request);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sent.load(Ordering::SeqCst) < 24 * MIB {
        assert!(!task.is_finished(), "the upload ended before the fault");
        assert!(Instant::now() < deadline, "the upload did not progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fault();
    let outcome = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the client hung after the fault")
        .unwrap();
    match outcome {
        Err(e) => Seen::Broken(error_chain(&e)),
        Ok(resp) => {
            let status = resp.status().as_u16();
            assert!(
                status >= 400,
                "the client got {status} for an upload cut by a fault"
            );
            let (_, body) = json_of(resp).await;
            Seen::Error(status, body["error"]["code"].as_str().unwrap_or("").into())
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// Sends SIGKILL to the gateway and waits for it to be gone.
fn sigkill(gw: &mut Gateway) {
    gw.child.kill().unwrap();
    gw.child.wait().unwrap();
}

/// `GET` of `m/path` with the token.
async fn get(gw: &Gateway, path: &str) -> reqwest::Response {
    let url = gw.artifact("m", path);
    reqwest::Client::new()
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
}

/// Nothing is visible under the artifact's name, nor in its directory's listing.
async fn assert_nothing_visible(gw: &Gateway, dir: &str, name: &str) {
    let resp = get(gw, &format!("{dir}/{name}")).await;
    assert_eq!(resp.status(), 404, "a partial upload is visible");
    let resp = get(gw, &format!("{dir}/")).await;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    if status == 200 {
        let names: Vec<&str> = body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["name"].as_str())
            .collect();
        assert!(!names.contains(&name), "listed after the fault: {names:?}");
    } else {
        assert_eq!(status, 404, "{body}");
    }
}

/// A small upload and its read-back work: the gateway (again) reaches its backend.
async fn assert_round_trip(gw: &Gateway, path: &str) {
    let client = reqwest::Client::new();
    let url = gw.artifact("m", path);
    let resp = client
        .put(&url)
        .bearer_auth(TOKEN)
        .body(vec![7u8; 100_000])
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "upload: {}", resp.status());
    let resp = get(gw, path).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &[7u8; 100_000][..]);
}

/// Incomplete multipart uploads of object `key` in MinIO, listed with boto3 (the gateway's
/// client library cannot list them; MinIO lists the uploads of one key only); `abort` aborts
/// them after counting.
fn s3_incomplete_uploads(minio: &Minio, key: &str, abort: bool) -> usize {
    let script = r#"
import sys, boto3
endpoint, key_id, secret, region, bucket, key, abort = sys.argv[1:8]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key_id,
                  aws_secret_access_key=secret, region_name=region)
ups = s3.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
for u in ups:
    if abort == "1":
        s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
print(len(ups))
"#;
    let (code, out, err) = common::run(
        std::process::Command::new("python3")
            .args(["-c", script])
            .args([
                minio.endpoint.as_str(),
                &minio.access_key,
                &minio.secret_key,
                &minio.region,
                &minio.bucket,
                key,
                if abort { "1" } else { "0" },
            ]),
    );
    assert_eq!(
        code, 0,
        "listing multipart uploads with boto3 failed (tests/servers/minio/install.sh installs it): {err}"
    );
    out.trim().parse().unwrap()
}

/// Waits (up to 20 s) until `/readyz` answers 200 again: the backend is back and the same
/// process noticed without a restart.
async fn ready_again(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while readyz(client, url).await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A private instance of test server `kind` (`oss`, `hdfs`) and its state directory (which
/// also takes the gateway's config). The pair drops in order: the server stops first.
fn private(kind: &str) -> (PrivateServer, tempfile::TempDir) {
    let state = common::tempdir();
    (PrivateServer::start(kind, state.path()), state)
}

/// Incomplete multipart uploads the OSS stand-in under `state` holds (one directory each).
fn oss_incomplete_uploads(state: &Path) -> usize {
    std::fs::read_dir(state.join("oss-data/uploads"))
        .unwrap()
        .count()
}

/// The files (not directories) in the HDFS directory `dir`.
async fn hdfs_files(
    client: &hdfs_native::Client,
    dir: &str,
) -> Vec<hdfs_native::client::FileStatus> {
    let all = client.list_status(dir, false).await.unwrap();
    all.into_iter().filter(|s| !s.isdir).collect()
}

/// Files (not directories) below `dir`, recursively.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A gateway on one mount `m` that reaches its backend through a proxy the test can cut,
/// stall or take down. Fields drop in order: the gateway stops before the rest goes.
struct Proxied {
    gw: Gateway,
    proxy: Proxy,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Proxied {
    async fn s3(minio: &Minio, prefix: &str) -> Proxied {
        let proxy = Proxy::in_front_of(&minio.endpoint).await;
        let dir = common::tempdir();
        let gw = Setup::s3(minio, &proxy.url(), prefix).start(dir.path(), Some(TOKEN));
        Proxied::new(gw, proxy, dir)
    }

    async fn oss(oss: &PrivateServer, prefix: &str) -> Proxied {
        let proxy = Proxy::in_front_of(&oss.var("AG_TEST_OSS_ENDPOINT")).await;
        let dir = common::tempdir();
        let gw = Setup::oss(oss, &proxy.url(), prefix).start(dir.path(), Some(TOKEN));
        Proxied::new(gw, proxy, dir)
    }

    fn new(gw: Gateway, proxy: Proxy, dir: tempfile::TempDir) -> Proxied {
        let client = reqwest::Client::new();
        Proxied {
            gw,
            proxy,
            client,
            _dir: dir,
        }
    }

    /// Stores `body` as `m/path` (the backend reachable) and returns the artifact's URL.
    async fn put(&self, path: &str, body: Vec<u8>) -> String {
        let url = self.gw.artifact("m", path);
        let resp = self
            .client
            .put(&url)
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "upload: {}", resp.status());
        url
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.client
            .get(url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// A `GET` of `url` while the backend stalls: its status and JSON body, answered within
    /// 10 s (how long it took is returned). The proxy flows again afterwards and its stalled
    /// connections are cut.
    async fn get_stalled(&self, url: &str) -> (u16, serde_json::Value, Duration) {
        self.proxy.stall(true);
        let started = Instant::now();
        let resp = self.get(url).await;
        let took = started.elapsed();
        let (status, body) = json_of(resp).await;
        assert!(took < Duration::from_secs(10), "answered after {took:?}");
        self.proxy.stall(false);
        self.proxy.cut();
        (status, body, took)
    }
}

/// Reads `resp`'s body on after `got` bytes, each chunk within `patience`: the byte count when
/// it ended, or the error that broke it.
async fn read_to_the_end(
    resp: &mut reqwest::Response,
    got: &mut usize,
    patience: Duration,
) -> Result<usize, String> {
    loop {
        match tokio::time::timeout(patience, resp.chunk()).await {
            Err(_) => panic!("the download neither finished nor failed in {patience:?}"),
            Ok(Ok(Some(c))) => *got += c.len(),
            Ok(Ok(None)) => return Ok(*got),
            Ok(Err(e)) => return Err(error_chain(&e)),
        }
    }
}

// ---------- the gateway killed mid-upload ----------

/// Uploads to `m/jobs/big.jar` and SIGKILLs the gateway midway; returns what the client saw,
/// after checking it is a broken connection (a dead server answers nothing).
async fn kill_gateway_mid_upload(gw: &mut Gateway) -> Seen {
    let url = gw.artifact("m", "jobs/big.jar");
    let seen = upload_with_fault(&url, || sigkill(gw)).await;
    assert!(matches!(seen, Seen::Broken(_)), "{seen}");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_upload_local_leaves_nothing_and_the_next_start_cleans_up() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    let setup = Setup::local(&data);
    let mut gw = setup.start(dir.path(), Some(TOKEN));
    let seen = kill_gateway_mid_upload(&mut gw).await;

    // The partial upload is a staging file, never under its name.
    let staging = data.join(".artifact-gateway/tmp");
    let left = files_below(&staging);
    assert_eq!(left.len(), 1, "one staging file: {left:?}");
    assert!(!data.join("jobs/big.jar").exists());
    let gw = setup.start(dir.path(), Some(TOKEN));
    assert_nothing_visible(&gw, "jobs", "big.jar").await;
    drop(gw);
    // Staging files are removed by the next start once they are an hour old (younger ones may
    // belong to another process writing the same directory).
    let old = SystemTime::now() - Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&left[0])
        .unwrap()
        .set_modified(old)
        .unwrap();
    let gw = setup.start(dir.path(), Some(TOKEN));
    assert!(
        files_below(&staging).is_empty(),
        "the stale staging file is removed at start: {:?}",
        files_below(&staging)
    );
    assert_round_trip(&gw, "jobs/after.jar").await;
    println!("fault matrix: local | gateway SIGKILLed mid-upload | client: {seen} | backend: one staging file, invisible, removed by the next start once an hour old");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_upload_s3_leaves_no_visible_object() {
    let minio = Minio::from_env();
    let prefix = common::random_prefix("faults-kill");
    let dir = common::tempdir();
    let setup = Setup::s3(&minio, &minio.endpoint, &prefix);
    let mut gw = setup.start(dir.path(), Some(TOKEN));
    let seen = kill_gateway_mid_upload(&mut gw).await;

    let gw = setup.start(dir.path(), Some(TOKEN));
    assert_nothing_visible(&gw, "jobs", "big.jar").await;
    let raw = minio.storage(&prefix);
    let path = artifact_gateway::storage::ArtifactPath::parse("jobs/big.jar").unwrap();
    assert_eq!(
        raw.head(&path).await.unwrap_err().kind(),
        artifact_gateway::ErrorKind::NotFound
    );
    let incomplete = s3_incomplete_uploads(&minio, &format!("{prefix}/jobs/big.jar"), true);
    assert_eq!(
        incomplete, 1,
        "the killed upload is one incomplete multipart upload"
    );
    assert_round_trip(&gw, "jobs/after.jar").await;
    println!("fault matrix: s3 | gateway SIGKILLed mid-upload | client: {seen} | backend: no object; {incomplete} incomplete multipart upload (invisible; the bucket's AbortIncompleteMultipartUpload rule removes it)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_upload_oss_leaves_no_visible_object() {
    let (oss, state) = private("oss");
    let setup = Setup::oss(&oss, &oss.var("AG_TEST_OSS_ENDPOINT"), "kill");
    let mut gw = setup.start(state.path(), Some(TOKEN));
    let seen = kill_gateway_mid_upload(&mut gw).await;

    let gw = setup.start(state.path(), Some(TOKEN));
    assert_nothing_visible(&gw, "jobs", "big.jar").await;
    let uploads = oss_incomplete_uploads(state.path());
    assert_eq!(
        uploads, 1,
        "the killed upload is one incomplete multipart upload"
    );
    assert_round_trip(&gw, "jobs/after.jar").await;
    println!("fault matrix: oss | gateway SIGKILLed mid-upload | client: {seen} | backend: no object; {uploads} incomplete multipart upload (invisible; a lifecycle rule removes it)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_upload_hdfs_leaves_nothing_and_the_next_start_cleans_up() {
    let url = common::require_env("AG_TEST_HDFS_URL");
    let prefix = common::random_prefix("faults-kill");
    let dir = common::tempdir();
    let setup = Setup::hdfs(&url, &prefix);
    let mut gw = setup.start(dir.path(), Some(TOKEN));
    let seen = kill_gateway_mid_upload(&mut gw).await;

    let client = hdfs_native::ClientBuilder::new()
        .with_url(&url)
        .build()
        .unwrap();
    let staging = format!("/{prefix}/.artifact-gateway/tmp");
    let left = hdfs_files(&client, &staging).await;
    assert_eq!(left.len(), 1, "one staging file");
    let gw = setup.start(dir.path(), Some(TOKEN));
    assert_nothing_visible(&gw, "jobs", "big.jar").await;
    drop(gw);
    // As on local disks: the next start removes staging files older than an hour.
    let old = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 2 * 3600 * 1000;
    client.set_times(&left[0].path, old, old).await.unwrap();
    let gw = setup.start(dir.path(), Some(TOKEN));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if hdfs_files(&client, &staging).await.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stale staging file is still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_round_trip(&gw, "jobs/after.jar").await;
    let _ = client.delete(&format!("/{prefix}"), true).await;
    println!("fault matrix: hdfs | gateway SIGKILLed mid-upload | client: {seen} | backend: one staging file, invisible, removed by the next start once an hour old");
}

// ---------- the backend gone mid-upload, then back ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_gone_mid_upload_fails_it_and_the_gateway_recovers_without_a_restart() {
    let minio = Minio::from_env();
    let prefix = common::random_prefix("faults-gone");
    let Proxied {
        gw, proxy, client, ..
    } = &Proxied::s3(&minio, &prefix).await;

    let seen = upload_with_fault(&gw.artifact("m", "jobs/big.jar"), || proxy.down()).await;
    let (status, body) = readyz(client, &gw.url).await;
    assert_eq!(status, 503, "{body}");
    let started = Instant::now();
    let (status, body) = json_of(get(gw, "jobs/other.jar").await).await;
    assert!(status == 503 || status == 504, "{status} {body}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // The backend comes back: the same process serves again.
    proxy.up();
    ready_again(client, &gw.url).await;
    assert_nothing_visible(gw, "jobs", "big.jar").await;
    assert_round_trip(gw, "jobs/after.jar").await;
    let incomplete = s3_incomplete_uploads(&minio, &format!("{prefix}/jobs/big.jar"), true);
    println!("fault matrix: s3 | backend gone mid-upload, then back | client: {seen}; meanwhile GET {status}, /readyz 503 | backend: no object; {incomplete} incomplete multipart upload (the abort could not reach the store) | recovered without a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oss_gone_mid_upload_fails_it_and_the_gateway_recovers_without_a_restart() {
    let (oss, state) = private("oss");
    let Proxied {
        gw, proxy, client, ..
    } = &Proxied::oss(&oss, "gone").await;

    let seen = upload_with_fault(&gw.artifact("m", "jobs/big.jar"), || proxy.down()).await;
    let (status, body) = readyz(client, &gw.url).await;
    assert_eq!(status, 503, "{body}");
    proxy.up();
    ready_again(client, &gw.url).await;
    assert_nothing_visible(gw, "jobs", "big.jar").await;
    assert_round_trip(gw, "jobs/after.jar").await;
    let uploads = oss_incomplete_uploads(state.path());
    println!("fault matrix: oss | backend gone mid-upload, then back | client: {seen}; /readyz 503 | backend: no object; {uploads} incomplete multipart upload | recovered without a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oss_gone_mid_download_is_a_broken_transfer_not_a_short_200() {
    let (oss, _state) = private("oss");
    let site = Proxied::oss(&oss, "dl").await;
    let len = 48 * MIB as usize;
    let url = site.put("big.jar", vec![3u8; len]).await;
    let mut resp = site.get(&url).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(len as u64));
    let mut got = 0usize;
    while got < 4 << 20 {
        got += resp.chunk().await.unwrap().expect("ended early").len();
    }
    site.proxy.down();
    let outcome = read_to_the_end(&mut resp, &mut got, Duration::from_secs(90)).await;
    let seen = match outcome {
        Err(e) => e,
        Ok(n) => panic!("a complete-looking 200 of {n} of {len} bytes although the backend died"),
    };
    assert!(got < len);
    println!("fault matrix: oss | backend gone mid-download | client: 200 then a broken body after {got} of {len} bytes ({seen}) | backend: unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdfs_killed_mid_upload_fails_it_visibly() {
    let (hdfs, state) = private("hdfs");
    let gw = Setup::hdfs(&hdfs.var("AG_TEST_HDFS_URL"), "up").start(state.path(), Some(TOKEN));
    let pid = hdfs.pid;
    let seen = upload_with_fault(&gw.artifact("m", "jobs/big.jar"), || {
        conformance::backend::stop(pid)
    })
    .await;
    let client = reqwest::Client::new();
    let (status, body) = readyz(&client, &gw.url).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing"], serde_json::json!(["m"]), "{body}");
    println!("fault matrix: hdfs | backend killed mid-upload | client: {seen}; /readyz 503 naming the mount | backend: gone (the MiniDFSCluster keeps no state across restarts)");
}

// ---------- a slow backend ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_stalling_is_a_504_before_the_headers_and_a_reset_after() {
    let minio = Minio::from_env();
    let prefix = common::random_prefix("faults-slow");
    let site = Proxied::s3(&minio, &prefix).await;
    let proxy = &site.proxy;
    let len = 24 * MIB as usize;
    let url = site.put("slow.jar", vec![1u8; len]).await;

    // 1. Stalled before any answer: the backend deadline (4 s) gives a 504.
    let (status, body, took) = site.get_stalled(&url).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "backend_timeout", "{body}");

    // 2. Stalled mid-body: the store's read timeout (1 s) breaks the transfer.
    let mut resp = site.get(&url).await;
    assert_eq!(resp.status(), 200);
    let mut got = 0usize;
    while got < 2 << 20 {
        got += resp.chunk().await.unwrap().expect("ended early").len();
    }
    proxy.stall(true);
    let stalled_at = Instant::now();
    let outcome = read_to_the_end(&mut resp, &mut got, Duration::from_secs(30)).await;
    let broke_after = stalled_at.elapsed();
    let seen = match outcome {
        Err(e) => e,
        Ok(n) => panic!("a complete-looking 200 of {n} bytes from a stalled backend"),
    };
    assert!(got < len);
    proxy.stall(false);
    // 3. The backend answers again: so does the gateway.
    let resp = site.get(&url).await;
    assert_eq!(resp.bytes().await.unwrap().len(), len);
    println!("fault matrix: s3 | slow backend (stalls) | client: before the headers 504 backend_timeout after {took:?}; mid-body a broken transfer after {got} of {len} bytes, {broke_after:?} into the stall ({seen}) | backend: unchanged | recovered without a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oss_stalling_before_the_headers_is_a_504() {
    let (oss, _state) = private("oss");
    let site = Proxied::oss(&oss, "slow").await;
    let url = site.put("slow.jar", vec![1u8; 1000]).await;
    let (status, body, took) = site.get_stalled(&url).await;
    assert_eq!(status, 504, "{body}");
    let resp = site.get(&url).await;
    assert_eq!(resp.bytes().await.unwrap().len(), 1000);
    println!("fault matrix: oss | slow backend (stalls before the headers) | client: 504 {} after {took:?} | backend: unchanged | recovered without a restart", body["error"]["code"]);
}
