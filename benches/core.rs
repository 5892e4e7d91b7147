//! Micro-benchmarks of the request hot path: path validation, conditional/range decisions,
//! hashing, and a whole in-process GET of a 1 MiB artifact from the local backend.
//! Run: `cargo bench --bench core`.

use std::sync::Arc;
use std::time::Duration;

use artifact_gateway::http::{self, conditional, AppState};
use artifact_gateway::service::{Authorizer, Gateway, Mount};
use artifact_gateway::storage::local::LocalStorage;
use artifact_gateway::storage::{ArtifactPath, Meta, Sha256};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use http_body_util::{BodyExt, Full};

fn paths(c: &mut Criterion) {
    let raw = "jobs/wordcount/1.4.2/with%20space/wordcount-shaded-all.jar";
    c.bench_function("ArtifactPath::from_url_path", |b| {
        b.iter(|| ArtifactPath::from_url_path(std::hint::black_box(raw)).unwrap())
    });
}

fn conditions(c: &mut Criterion) {
    let meta = Meta {
        path: ArtifactPath::parse("a.jar").unwrap(),
        size: 1 << 30,
        last_modified: std::time::SystemTime::now(),
        etag: "2a3f-18c2b7e4a1f00000-40000000".into(),
        sha256: None,
        content_type: None,
    };
    let mut h = ::http::HeaderMap::new();
    h.insert(
        "if-none-match",
        "\"x\", \"2a3f-18c2b7e4a1f00000-40000000\"".parse().unwrap(),
    );
    h.insert("range", "bytes=1048576-2097151".parse().unwrap());
    c.bench_function("conditional::evaluate+range", |b| {
        b.iter(|| {
            let p = conditional::evaluate(&::http::Method::GET, &h, Some(&meta));
            let r = conditional::range(&h, &meta);
            (p, r)
        })
    });
}

fn hashing(c: &mut Criterion) {
    let data = vec![7u8; 1 << 20];
    let mut g = c.benchmark_group("sha256");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("1MiB", |b| {
        b.iter(|| Sha256::of(std::hint::black_box(&data)))
    });
    g.finish();
}

fn in_process_get(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("in_process_get");
    for size in [4 << 10, 1 << 20] {
        std::fs::write(dir.path().join(format!("a{size}.jar")), vec![1u8; size]).unwrap();
        let mount = Mount {
            name: "default".into(),
            storage: Arc::new(LocalStorage::new(dir.path()).unwrap()),
            anonymous_read: true,
            max_upload_size: u64::MAX,
            read_only: false,
        };
        let state = AppState::new(Arc::new(Gateway::new(
            vec![mount],
            Authorizer::default(),
            Duration::from_secs(5),
        )));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.to_async(&rt).iter(|| {
                let state = state.clone();
                async move {
                    let req = ::http::Request::get(format!("/artifacts/default/a{size}.jar"))
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    let resp = http::handle(state, req).await;
                    let body = resp.into_body().collect().await.unwrap().to_bytes();
                    assert_eq!(body.len(), size);
                }
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = paths, conditions, hashing, in_process_get
}
criterion_main!(benches);
