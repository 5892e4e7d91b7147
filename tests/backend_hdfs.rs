//! The HDFS backend against a real MiniDFSCluster (tests/servers/hdfs).
//!
//! - the conformance suite through the trait and through the HTTP API of the real binary, and
//!   no staging litter afterwards;
//! - a file replaced by another HDFS client keeps a strong validator and loses its digest;
//! - HDFS orders names by signed bytes; listings are still sorted by name;
//! - a private MiniDFS killed during a 96 MiB download: the client gets an error, never a
//!   complete-looking 200; `/readyz` then names the mount.

mod common;
mod conformance;

use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_gateway::storage::registry;
use artifact_gateway::storage::{ArtifactPath, PutMode, PutOptions, Storage, Upload};
use artifact_gateway::ErrorKind;
use bytes::Bytes;
use common::config::Config;
use conformance::backend::{
    at, names, one_chunk, put_named, put_recorded, put_refused, walk_pages, PrivateServer,
};

async fn storage(url: &str, prefix: &str) -> Arc<dyn Storage> {
    registry::build(&common::hdfs_spec(url, prefix))
        .await
        .unwrap()
}

fn client(url: &str) -> hdfs_native::Client {
    hdfs_native::ClientBuilder::new()
        .with_url(url)
        .build()
        .unwrap()
}

/// A config mounting `url/prefix` as `mount` (anonymous reads, 10 s socket timeout).
fn config(mount: &str, url: &str, prefix: &str) -> Config {
    Config::new()
        .mount(mount, &format!("{url}/{prefix}"))
        .anonymous_read()
        .hdfs(r#""dfs.client.socket-timeout" = "10000""#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_hdfs_trait() {
    let url = common::hdfs_url();
    let prefix = common::random_prefix("hdfs");
    let st = storage(&url, &prefix).await;
    conformance::run_on_trait("hdfs", st).await;
    // No staging litter once the suite is done (failed uploads are removed in the background).
    let c = client(&url);
    let tmp = format!("/{prefix}/.artifact-gateway/tmp");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = c
            .list_status(&tmp, false)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.path)
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "staging litter: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_hdfs_http() {
    let url = common::hdfs_url();
    let prefix = common::random_prefix("hdfs-http");
    let dir = common::tempdir();
    let token = "hdfs-conformance-token";
    let gw = config("hdfs", &url, &prefix).start(dir.path(), Some(token));
    let caps = storage(&url, &prefix).await.capabilities();
    conformance::run_over_http("hdfs-http", &gw.url, "hdfs", token, caps).await;
}

#[tokio::test]
async fn file_replaced_by_another_client_has_no_digest() {
    let url = common::hdfs_url();
    let prefix = common::random_prefix("hdfs-foreign");
    let st = storage(&url, &prefix).await;
    let path = at("lib/udf.jar");
    let put = put_recorded(&*st, &path, b"written by the gateway").await;

    // Another HDFS client overwrites the file in place.
    let c = client(&url);
    let mut w = c
        .create(
            &format!("/{prefix}/lib/udf.jar"),
            hdfs_native::WriteOptions::default().overwrite(true),
        )
        .await
        .unwrap();
    w.write_bytes(Bytes::from_static(b"replaced by another client"))
        .await
        .unwrap();
    w.close().await.unwrap();

    let meta = st.head(&path).await.unwrap();
    assert_eq!(meta.size, 26);
    assert_ne!(meta.etag, put.meta.etag);
    assert_eq!(meta.sha256, None, "a stale digest must never be served");
    // Guarded updates see the new version.
    let stale = PutOptions {
        mode: PutMode::Update {
            etag: put.meta.etag.clone(),
        },
        ..Default::default()
    };
    let err = st
        .put(&path, Upload::with(one_chunk(b"x"), stale))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed);
}

#[tokio::test]
async fn listing_sorts_names_hdfs_orders_differently() {
    let url = common::hdfs_url();
    let st = storage(&url, &common::random_prefix("hdfs-order")).await;
    // HDFS compares names as signed bytes: "é" (0xC3…) sorts before "a" there.
    put_named(&*st, &["é.jar", "a.jar", "z.jar", "名.jar", "b/x.jar"]).await;
    let want = ["a.jar", "b", "z.jar", "é.jar", "名.jar"];
    assert_eq!(names(&*st, &ArtifactPath::root()).await, want);
    let (seen, _) = walk_pages(&*st, &ArtifactPath::root(), 2, want.len() + 1).await;
    assert_eq!(seen, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdfs_dying_mid_download_is_an_error_not_a_short_200() {
    let state = common::tempdir();
    let hdfs = PrivateServer::start("hdfs", state.path());
    let dir = common::tempdir();
    let token = "hdfs-kill-token";
    let gw = config("hdfs", &hdfs.var("AG_TEST_HDFS_URL"), "dl").start(dir.path(), Some(token));
    let http = reqwest::Client::new();

    let len: usize = 96 << 20;
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1])
        .collect();
    let url = gw.artifact("hdfs", "big/job.jar");
    let r = http
        .put(&url)
        .bearer_auth(token)
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    let mut resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(len as u64));
    let mut got = 0usize;
    while got < (4 << 20) {
        got += resp
            .chunk()
            .await
            .unwrap()
            .expect("the body ended early")
            .len();
    }
    let killed_at = Instant::now();
    // Stops the NameNode and DataNode (TERM to the supervisor, which stops the JVM).
    let pid = hdfs.pid;
    tokio::task::spawn_blocking(move || conformance::backend::stop(pid))
        .await
        .unwrap();
    let outcome = loop {
        match tokio::time::timeout(Duration::from_secs(60), resp.chunk()).await {
            Err(_) => panic!("the download neither finished nor failed within 60 s of the kill"),
            Ok(Ok(Some(c))) => got += c.len(),
            Ok(Ok(None)) => break Ok(got),
            Ok(Err(e)) => break Err(e),
        }
    };
    match outcome {
        Err(e) => println!(
            "download failed as it must, after {got} of {len} bytes, {:?} after the kill: {e}",
            killed_at.elapsed()
        ),
        Ok(n) => panic!(
            "the client saw a complete-looking 200 of {n} bytes (of {len}) although HDFS died"
        ),
    }
    assert!(got < len, "all {len} bytes arrived although HDFS died");

    // Readiness now names the mount.
    let (status, v) = conformance::backend::readyz(&http, &gw.url).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["failing"], serde_json::json!(["hdfs"]), "{v}");
}

#[tokio::test]
async fn a_file_as_parent_or_a_directory_as_target_is_refused() {
    let url = common::hdfs_url();
    let st = storage(&url, &common::random_prefix("hdfs-shape")).await;
    put_named(&*st, &["a.jar", "d/x.jar"]).await;
    // A file as a parent, then a directory as the target.
    assert_eq!(
        put_refused(&*st, "a.jar/b.jar", b"y").await,
        ErrorKind::PreconditionFailed
    );
    assert_eq!(
        put_refused(&*st, "d", b"w").await,
        ErrorKind::PreconditionFailed
    );
    let size = st
        .get(&at("a.jar"), Default::default())
        .await
        .unwrap()
        .meta
        .size;
    assert_eq!(size, "a.jar".len() as u64);
}
