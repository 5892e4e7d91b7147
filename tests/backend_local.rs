//! The conformance suite on the local backend, through the trait and through the HTTP API of
//! the real binary.

mod common;
mod conformance;

use std::sync::Arc;

use artifact_gateway::storage::local::LocalStorage;
use artifact_gateway::storage::Storage;
use conformance::http_storage::HttpStorage;
use conformance::Suite;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_local_trait() {
    let dir = common::tempdir();
    let storage = Arc::new(LocalStorage::new(dir.path()).unwrap());
    Suite::new("local", storage, false).run().await;
    // Nothing left in the staging area after the whole suite (interrupted uploads cleaned up).
    let tmp = dir.path().join(".artifact-gateway/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "staging litter: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_local_http() {
    let dir = common::tempdir();
    let token = "conformance-token";
    let gw = common::Gateway::start(
        &["--data", dir.path().to_str().unwrap()],
        &[("ARTIFACT_GATEWAY_TOKEN", token)],
    );
    let caps = LocalStorage::new(dir.path()).unwrap().capabilities();
    let storage = Arc::new(HttpStorage::new(&gw.url, "default", Some(token), caps));
    Suite::new("local-http", storage, true).run().await;
}
