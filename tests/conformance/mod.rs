//! One conformance suite for every backend (local, S3, OSS, HDFS), run through the `Storage`
//! trait and, via [`http_storage::HttpStorage`], through the gateway's HTTP API.
//!
//! Each run works under its own random prefix and never wipes a bucket. Cases select on the
//! backend's declared `Capabilities`; a case that does not apply returns
//! [`Outcome::Skipped`] with its reason, printed as `skipped` (never as `ok`), and the summary
//! line counts passed and skipped cases apart.
#![allow(dead_code)]

pub mod backend;
pub mod http_storage;

use std::sync::Arc;
use std::time::Duration;

use artifact_gateway::storage::{
    ArtifactPath, ByteStream, GetOptions, ListOptions, PutMode, PutOptions, Sha256, Storage, Upload,
};
use artifact_gateway::{Error, ErrorKind};
use bytes::Bytes;
use futures::StreamExt;

/// Where a suite runs.
pub struct Suite {
    pub label: String,
    pub storage: Arc<dyn Storage>,
    /// Root of this run, e.g. `ag-test-s3-<uuid>`.
    pub root: ArtifactPath,
    /// True when `storage` is the HTTP API (some trait-only knobs don't exist there).
    pub over_http: bool,
    /// Size of the large streamed round trip.
    pub large_bytes: u64,
}

/// What a case did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every assertion of the case ran and held.
    Passed,
    /// The case does not apply to this storage; the reason is printed.
    Skipped(&'static str),
}

type CaseFn = for<'a> fn(&'a Suite, ArtifactPath) -> futures::future::BoxFuture<'a, Outcome>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        const CASES: &[(&str, CaseFn)] = &[$((stringify!($name), |s, d| Box::pin($name(s, d)))),*];
    };
}

cases!(
    put_get_head_roundtrip,
    put_reports_created_then_replaced,
    empty_artifact,
    odd_names_and_deep_paths,
    range_reads,
    pinned_read_detects_change,
    create_only_put,
    guarded_update,
    digest_mismatch_stores_nothing,
    interrupted_upload_leaves_nothing,
    size_limit_stores_nothing,
    delete_semantics,
    list_one_level_sorted_paginated,
    list_of_missing_dir_is_empty,
    head_of_directory_is_not_found,
    readers_never_see_partial_replace,
    large_streamed_roundtrip,
    ready_check,
);

/// The whole suite through the trait of a backend: every case applies.
pub async fn run_on_trait(label: &str, storage: Arc<dyn Storage>) {
    Suite::new(label, storage, false)
        .run_expecting(ALL_APPLY)
        .await;
}

/// The whole suite over the HTTP API of the running gateway at `base`: mount `mount`, written
/// with `token`, with the capabilities `caps` of the backend behind it. Only [`HTTP_SKIPS`]
/// are skipped.
pub async fn run_over_http(
    label: &str,
    base: &str,
    mount: &str,
    token: &str,
    caps: artifact_gateway::storage::Capabilities,
) {
    let storage = Arc::new(http_storage::HttpStorage::new(
        base,
        mount,
        Some(token),
        caps,
    ));
    Suite::new(label, storage, true)
        .run_expecting(HTTP_SKIPS)
        .await;
}

/// Every case applies to a backend used through the trait.
pub const ALL_APPLY: &[&str] = &[];
/// Over HTTP a request cannot lower the mount's upload limit.
pub const HTTP_SKIPS: &[&str] = &["size_limit_stores_nothing"];

impl Suite {
    pub fn new(label: &str, storage: Arc<dyn Storage>, over_http: bool) -> Suite {
        let root = ArtifactPath::parse(&format!(
            "ag-test-{}-{}",
            label.replace(['/', ' '], "-"),
            uuid::Uuid::new_v4().simple()
        ))
        .unwrap();
        let large_bytes = std::env::var("AG_TEST_LARGE_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256 << 20);
        Suite {
            label: label.to_string(),
            storage,
            root,
            over_http,
            large_bytes,
        }
    }

    /// Runs every case; panics (naming the case) on the first failure. Returns the names of
    /// the skipped cases.
    pub async fn run(&self) -> Vec<&'static str> {
        let mut passed = 0;
        let mut skipped = Vec::new();
        for (name, case) in CASES {
            let dir = self.root.child(name).unwrap();
            let started = std::time::Instant::now();
            let outcome = case(self, dir).await;
            let took = started.elapsed().as_secs_f64();
            match outcome {
                Outcome::Passed => {
                    println!("conformance[{}]: {name} ok ({took:.2}s)", self.label);
                    passed += 1;
                }
                Outcome::Skipped(why) => {
                    println!("conformance[{}]: {name} SKIPPED: {why}", self.label);
                    skipped.push(*name);
                }
            }
        }
        println!(
            "conformance[{}]: {passed} cases passed, {} skipped {skipped:?}",
            self.label,
            skipped.len()
        );
        assert_eq!(passed + skipped.len(), CASES.len());
        skipped
    }

    /// Runs every case and asserts that exactly the cases named in `skips` were skipped:
    /// [`ALL_APPLY`] for a backend through the trait, [`HTTP_SKIPS`] over HTTP.
    pub async fn run_expecting(&self, skips: &[&str]) {
        let skipped = self.run().await;
        assert_eq!(skipped, skips, "conformance[{}]: skipped cases", self.label);
    }

    fn caps(&self) -> artifact_gateway::storage::Capabilities {
        self.storage.capabilities()
    }
}

// ---------- helpers ----------

pub fn p(dir: &ArtifactPath, rel: &str) -> ArtifactPath {
    let mut out = dir.clone();
    for seg in rel.split('/') {
        out = out.child(seg).unwrap();
    }
    out
}

pub fn body_of(bytes: impl Into<Bytes>) -> ByteStream {
    let b: Bytes = bytes.into();
    // Several chunks, so backends see a real stream.
    let chunks: Vec<Result<Bytes, Error>> = b
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let chunks = if chunks.is_empty() { vec![] } else { chunks };
    futures::stream::iter(chunks).boxed()
}

pub async fn put(
    s: &Suite,
    path: &ArtifactPath,
    data: &[u8],
) -> artifact_gateway::storage::PutResult {
    s.storage
        .put(path, Upload::new(body_of(data.to_vec())))
        .await
        .unwrap_or_else(|e| panic!("put {path}: {e:?}"))
}

/// [`put`] with options, which must succeed.
pub async fn put_with(
    s: &Suite,
    path: &ArtifactPath,
    data: &[u8],
    opts: PutOptions,
) -> artifact_gateway::storage::PutResult {
    s.storage
        .put(path, Upload::with(body_of(data.to_vec()), opts))
        .await
        .unwrap_or_else(|e| panic!("put {path}: {e:?}"))
}

/// `path` reads back as `bytes`, and a backend that stores digests has the one of `bytes`.
async fn assert_reads_back(s: &Suite, path: &ArtifactPath, bytes: &[u8]) {
    let got = read_all(s, path, GetOptions::default()).await.unwrap();
    assert_eq!(got, bytes);
    if s.caps().stores_digest {
        let head = s.storage.head(path).await.unwrap();
        assert_eq!(head.sha256, Some(Sha256::of(bytes)));
    }
}

pub async fn read_all(s: &Suite, path: &ArtifactPath, opts: GetOptions) -> Result<Vec<u8>, Error> {
    read_from(&*s.storage, path, opts).await
}

/// A whole read from `storage`, or the error that refused or cut it.
async fn read_from(
    storage: &dyn Storage,
    path: &ArtifactPath,
    opts: GetOptions,
) -> Result<Vec<u8>, Error> {
    let res = storage.get(path, opts).await?;
    let mut out = Vec::new();
    let mut body = res.body;
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

fn kind<T: std::fmt::Debug>(r: Result<T, Error>) -> ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.kind(),
    }
}

fn ranged(range: std::ops::Range<u64>) -> GetOptions {
    GetOptions {
        range: Some(range),
        ..Default::default()
    }
}

fn pinned(etag: &str) -> GetOptions {
    GetOptions {
        if_match: Some(etag.to_string()),
        ..Default::default()
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

// ---------- cases ----------

async fn put_get_head_roundtrip(s: &Suite, dir: ArtifactPath) -> Outcome {
    let path = p(&dir, "job.jar");
    let data = pattern(300_000, 1);
    let res = put(s, &path, &data).await;
    assert!(res.created);
    assert_eq!(res.meta.size, data.len() as u64);
    assert_eq!(
        res.meta.sha256,
        Some(Sha256::of(&data)),
        "put reports the digest it computed"
    );
    let meta = s.storage.head(&path).await.unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(meta.etag, res.meta.etag, "head and put agree on the ETag");
    assert!(!meta.etag.is_empty());
    assert_eq!(
        meta.content_type.as_deref(),
        Some("application/java-archive")
    );
    if s.caps().stores_digest {
        assert_eq!(
            meta.sha256,
            Some(Sha256::of(&data)),
            "digest survives to head"
        );
    }
    assert_eq!(
        read_all(s, &path, GetOptions::default()).await.unwrap(),
        data
    );
    let got = s.storage.get(&path, GetOptions::default()).await.unwrap();
    assert_eq!(got.range, 0..data.len() as u64);
    if s.caps().stores_digest {
        assert_eq!(
            got.meta.sha256,
            Some(Sha256::of(&data)),
            "digest survives to get"
        );
    }
    // An explicit content type wins over the guess.
    let sql = p(&dir, "query.sql");
    let opts = PutOptions {
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    put_with(s, &sql, b"SELECT 1;", opts).await;
    assert_eq!(
        s.storage.head(&sql).await.unwrap().content_type.as_deref(),
        Some("text/plain")
    );
    Outcome::Passed
}

async fn put_reports_created_then_replaced(s: &Suite, dir: ArtifactPath) -> Outcome {
    let path = p(&dir, "a.bin");
    let first = put(s, &path, b"one").await;
    let second = put(s, &path, b"two-two").await;
    assert!(first.created && !second.created);
    assert_ne!(
        first.meta.etag, second.meta.etag,
        "a replace changes the ETag"
    );
    assert_eq!(
        read_all(s, &path, GetOptions::default()).await.unwrap(),
        b"two-two"
    );
    assert_eq!(s.storage.head(&path).await.unwrap().size, 7);
    Outcome::Passed
}

async fn empty_artifact(s: &Suite, dir: ArtifactPath) -> Outcome {
    let path = p(&dir, "empty.txt");
    let res = put(s, &path, b"").await;
    assert_eq!(res.meta.size, 0);
    assert_eq!(s.storage.head(&path).await.unwrap().size, 0);
    assert_reads_back(s, &path, b"").await;
    Outcome::Passed
}

async fn odd_names_and_deep_paths(s: &Suite, dir: ArtifactPath) -> Outcome {
    let names = [
        "with space.jar",
        "plus+sign.jar",
        "per%cent.jar",
        "ünïcødé-名前.jar",
        "a=b&c;d.jar",
        "a/b/c/d/e/f/g/deep.jar",
    ];
    for (i, name) in names.iter().enumerate() {
        let path = p(&dir, name);
        let data = format!("content of {name} #{i}");
        put(s, &path, data.as_bytes()).await;
        assert_eq!(
            read_all(s, &path, GetOptions::default()).await.unwrap(),
            data.as_bytes(),
            "{name}"
        );
    }
    let page = s.storage.list(&dir, ListOptions::default()).await.unwrap();
    let listed: Vec<&str> = page.entries.iter().map(|e| e.name.as_str()).collect();
    for name in names.iter().filter(|n| !n.contains('/')) {
        assert!(listed.contains(name), "{name} missing from {listed:?}");
    }
    assert!(
        page.entries.iter().any(|e| e.name == "a" && e.is_dir),
        "{listed:?}"
    );
    Outcome::Passed
}

async fn range_reads(s: &Suite, dir: ArtifactPath) -> Outcome {
    if !s.caps().range_read {
        return Outcome::Skipped("the backend declares no range reads");
    }
    let path = p(&dir, "r.bin");
    let data = pattern(100_000, 7);
    put(s, &path, &data).await;
    for (a, b) in [
        (0u64, 1u64),
        (10, 20),
        (99_999, 100_000),
        (50_000, 100_000),
        (0, 100_000),
    ] {
        let got = read_all(s, &path, ranged(a..b)).await.unwrap();
        assert_eq!(got, &data[a as usize..b as usize], "range {a}..{b}");
    }
    let res = s.storage.get(&path, ranged(10..20)).await.unwrap();
    assert_eq!(res.range, 10..20);
    assert_eq!(res.meta.size, 100_000);
    let err = kind(
        s.storage
            .get(&path, ranged(100_000..100_010))
            .await
            .map(|r| r.meta),
    );
    assert_eq!(err, ErrorKind::RangeNotSatisfiable);
    Outcome::Passed
}

async fn pinned_read_detects_change(s: &Suite, dir: ArtifactPath) -> Outcome {
    let path = p(&dir, "pin.bin");
    let first = put(s, &path, b"version one").await;
    let ok = read_all(s, &path, pinned(&first.meta.etag)).await.unwrap();
    assert_eq!(ok, b"version one");
    put(s, &path, b"version two!").await;
    let err = kind(read_all(s, &path, pinned(&first.meta.etag)).await);
    assert_eq!(
        err,
        ErrorKind::PreconditionFailed,
        "a read pinned to an old version must not return the new one"
    );
    Outcome::Passed
}

async fn create_only_put(s: &Suite, dir: ArtifactPath) -> Outcome {
    let path = p(&dir, "once.jar");
    let opts = || PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    let res = put_with(s, &path, b"first", opts()).await;
    assert!(res.created);
    let err = kind(
        s.storage
            .put(&path, Upload::with(body_of(&b"second"[..]), opts()))
            .await,
    );
    assert_eq!(err, ErrorKind::PreconditionFailed);
    assert_eq!(
        read_all(s, &path, GetOptions::default()).await.unwrap(),
        b"first"
    );
    Outcome::Passed
}

async fn guarded_update(s: &Suite, dir: ArtifactPath) -> Outcome {
    let path = p(&dir, "guarded.jar");
    let v1 = put(s, &path, b"v1").await;
    let upd = |etag: String| PutOptions {
        mode: PutMode::Update { etag },
        ..Default::default()
    };
    let v2 = s
        .storage
        .put(
            &path,
            Upload::with(body_of(&b"v2"[..]), upd(v1.meta.etag.clone())),
        )
        .await
        .unwrap();
    assert!(!v2.created);
    let err = kind(
        s.storage
            .put(
                &path,
                Upload::with(body_of(&b"v3"[..]), upd(v1.meta.etag.clone())),
            )
            .await,
    );
    assert_eq!(
        err,
        ErrorKind::PreconditionFailed,
        "a stale ETag must not replace"
    );
    assert_eq!(
        read_all(s, &path, GetOptions::default()).await.unwrap(),
        b"v2"
    );
    let missing = p(&dir, "missing.jar");
    let err = kind(
        s.storage
            .put(
                &missing,
                Upload::with(body_of(&b"x"[..]), upd("nope".into())),
            )
            .await,
    );
    assert_eq!(
        err,
        ErrorKind::PreconditionFailed,
        "If-Match on a missing artifact fails"
    );
    assert_eq!(kind(s.storage.head(&missing).await), ErrorKind::NotFound);
    Outcome::Passed
}

async fn digest_mismatch_stores_nothing(s: &Suite, dir: ArtifactPath) -> Outcome {
    let path = p(&dir, "bad.jar");
    let wrong = Sha256::of(b"something else");
    let opts = PutOptions {
        sha256: Some(wrong),
        ..Default::default()
    };
    let err = kind(
        s.storage
            .put(&path, Upload::with(body_of(pattern(200_000, 3)), opts))
            .await,
    );
    assert_eq!(err, ErrorKind::DigestMismatch);
    assert_eq!(
        kind(s.storage.head(&path).await),
        ErrorKind::NotFound,
        "nothing stored after a mismatch"
    );
    // Over an existing artifact, the old content stays.
    put(s, &path, b"good").await;
    let opts = PutOptions {
        sha256: Some(wrong),
        ..Default::default()
    };
    assert_eq!(
        kind(
            s.storage
                .put(&path, Upload::with(body_of(&b"evil"[..]), opts))
                .await
        ),
        ErrorKind::DigestMismatch
    );
    assert_eq!(
        read_all(s, &path, GetOptions::default()).await.unwrap(),
        b"good"
    );
    // The right digest is accepted.
    let opts = PutOptions {
        sha256: Some(Sha256::of(b"better")),
        ..Default::default()
    };
    put_with(s, &path, b"better", opts).await;
    assert_eq!(
        read_all(s, &path, GetOptions::default()).await.unwrap(),
        b"better"
    );
    Outcome::Passed
}

fn failing_body(good_bytes: usize) -> ByteStream {
    let chunk = Bytes::from(vec![7u8; 64 * 1024]);
    let n = good_bytes / chunk.len();
    let mut items: Vec<Result<Bytes, Error>> = (0..n).map(|_| Ok(chunk.clone())).collect();
    items.push(Err(Error::new(ErrorKind::Aborted, "client went away")));
    futures::stream::iter(items)
        .then(|x| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            x
        })
        .boxed()
}

async fn interrupted_upload_leaves_nothing(s: &Suite, dir: ArtifactPath) -> Outcome {
    // A neighbour, so the directory exists and its listing must succeed everywhere (over HTTP
    // an empty directory is a 404, which would prove nothing).
    put(s, &p(&dir, "neighbour.jar"), b"n").await;
    let path = p(&dir, "half.jar");
    let err = s
        .storage
        .put(&path, Upload::new(failing_body(20 << 20)))
        .await;
    assert!(err.is_err(), "a broken body must fail the put");
    assert_eq!(
        kind(s.storage.head(&path).await),
        ErrorKind::NotFound,
        "no artifact after an interrupted upload"
    );
    let page = s.storage.list(&dir, ListOptions::default()).await.unwrap();
    let names: Vec<&str> = page.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["neighbour.jar"],
        "no litter visible under any name: {:?}",
        page.entries
    );
    // An interrupted replace keeps the old artifact whole.
    put(s, &path, b"old and whole").await;
    assert!(s
        .storage
        .put(&path, Upload::new(failing_body(1 << 20)))
        .await
        .is_err());
    assert_eq!(
        read_all(s, &path, GetOptions::default()).await.unwrap(),
        b"old and whole"
    );
    Outcome::Passed
}

async fn size_limit_stores_nothing(s: &Suite, dir: ArtifactPath) -> Outcome {
    if s.over_http {
        // The mount's limit is tested by the HTTP tests; a request cannot lower it.
        return Outcome::Skipped("a request cannot lower the mount's upload limit");
    }
    let path = p(&dir, "big.jar");
    let opts = PutOptions {
        max_size: Some(1000),
        ..Default::default()
    };
    assert_eq!(
        kind(
            s.storage
                .put(&path, Upload::with(body_of(pattern(5000, 1)), opts))
                .await
        ),
        ErrorKind::TooLarge
    );
    assert_eq!(kind(s.storage.head(&path).await), ErrorKind::NotFound);
    Outcome::Passed
}

async fn delete_semantics(s: &Suite, dir: ArtifactPath) -> Outcome {
    let path = p(&dir, "gone.jar");
    put(s, &path, b"bye").await;
    s.storage.delete(&path).await.unwrap();
    assert_eq!(kind(s.storage.head(&path).await), ErrorKind::NotFound);
    assert_eq!(
        kind(read_all(s, &path, GetOptions::default()).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(s.storage.delete(&path).await),
        ErrorKind::NotFound,
        "deleting a missing artifact is NotFound"
    );
    // Re-creating after delete works and carries no stale digest.
    put(s, &path, b"again").await;
    assert_reads_back(s, &path, b"again").await;
    Outcome::Passed
}

async fn list_one_level_sorted_paginated(s: &Suite, dir: ArtifactPath) -> Outcome {
    for rel in [
        "b.jar",
        "a.jar",
        "sub/x.jar",
        "sub/deeper/y.jar",
        "sub2/z.jar",
        "c.sql",
    ] {
        put(s, &p(&dir, rel), rel.as_bytes()).await;
    }
    let all = s.storage.list(&dir, ListOptions::default()).await.unwrap();
    let names: Vec<(String, bool)> = all
        .entries
        .iter()
        .map(|e| (e.name.clone(), e.is_dir))
        .collect();
    let expected: Vec<(String, bool)> = [
        ("a.jar", false),
        ("b.jar", false),
        ("c.sql", false),
        ("sub", true),
        ("sub2", true),
    ]
    .iter()
    .map(|(n, d)| (n.to_string(), *d))
    .collect();
    assert_eq!(names, expected, "one level, sorted, directories as entries");
    assert!(all.next_after.is_none());
    let a = all.entries.iter().find(|e| e.name == "a.jar").unwrap();
    assert_eq!(a.size, Some(5));
    assert!(a.etag.is_some() && a.last_modified.is_some());
    if let Some(d) = a.sha256 {
        // Listings may omit digests (one request per entry would be needed); never a wrong one.
        assert_eq!(d, Sha256::of(b"a.jar"));
    }
    // Pagination: pages of 2 cover everything exactly once.
    let mut seen = Vec::new();
    let mut after = None;
    for _ in 0..10 {
        let page = s
            .storage
            .list(
                &dir,
                ListOptions {
                    limit: 2,
                    after: after.clone(),
                },
            )
            .await
            .unwrap();
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries.iter().map(|e| e.name.clone()));
        match page.next_after {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(
        seen,
        expected.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
    );
    let sub = s
        .storage
        .list(&p(&dir, "sub"), ListOptions::default())
        .await
        .unwrap();
    let sub_names: Vec<&str> = sub.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(sub_names, ["deeper", "x.jar"]);
    Outcome::Passed
}

async fn list_of_missing_dir_is_empty(s: &Suite, dir: ArtifactPath) -> Outcome {
    let listed = s
        .storage
        .list(&p(&dir, "nothing/here"), ListOptions::default())
        .await;
    if s.over_http {
        // The HTTP API answers a listing of a missing directory with 404.
        assert_eq!(kind(listed), ErrorKind::NotFound);
    } else {
        assert!(listed.unwrap().entries.is_empty());
    }
    Outcome::Passed
}

async fn head_of_directory_is_not_found(s: &Suite, dir: ArtifactPath) -> Outcome {
    put(s, &p(&dir, "d/file.jar"), b"x").await;
    assert_eq!(
        kind(s.storage.head(&p(&dir, "d")).await),
        ErrorKind::NotFound
    );
    Outcome::Passed
}

async fn readers_never_see_partial_replace(s: &Suite, dir: ArtifactPath) -> Outcome {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let path = p(&dir, "swap.bin");
    let size = 4 << 20;
    let a = vec![b'a'; size];
    let b = vec![b'b'; size];
    put(s, &path, &a).await;
    let storage = s.storage.clone();
    let reader_path = path.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let (stop2, reads2) = (stop.clone(), reads.clone());
    let reader = tokio::spawn(async move {
        // Reads that fail loudly are allowed (a pinned read refused after a replace); the last
        // such error is kept for the message below. A short or mixed read is not allowed.
        let mut refused = 0usize;
        let mut last_error = None;
        while !stop2.load(Ordering::Relaxed) {
            let buf = match read_from(&*storage, &reader_path, GetOptions::default()).await {
                Ok(buf) => buf,
                Err(e) => {
                    refused += 1;
                    last_error = Some(e.to_string());
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            };
            assert_eq!(buf.len(), size, "a reader saw a partial artifact");
            assert!(
                buf.iter().all(|&x| x == buf[0]),
                "a reader saw a mix of two versions"
            );
            reads2.fetch_add(1, Ordering::Relaxed);
        }
        (refused, last_error)
    });
    // At least four replaces, and on until the reader has finished two whole reads beside
    // them: on a loaded machine four replaces can end before any read does, which would prove
    // nothing.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut replaces = 0;
    while replaces < 4
        || (reads.load(Ordering::Relaxed) < 2 && std::time::Instant::now() < deadline)
    {
        put(s, &path, if replaces % 2 == 0 { &b } else { &a }).await;
        replaces += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let (refused, last_error) = reader.await.unwrap();
    let reads = reads.load(Ordering::Relaxed);
    assert!(
        reads > 0,
        "the reader completed no read during {replaces} replaces; {refused} reads failed, the last with {last_error:?}"
    );
    Outcome::Passed
}

async fn large_streamed_roundtrip(s: &Suite, dir: ArtifactPath) -> Outcome {
    let path = p(&dir, "large.jar");
    let total = s.large_bytes;
    let chunk = 1 << 20;
    // Generated on the fly: never held whole in memory.
    let make = move |i: u64| {
        let mut v = vec![0u8; chunk];
        for (j, x) in v.iter_mut().enumerate() {
            *x = ((i as usize * 131 + j * 7) % 251) as u8;
        }
        Bytes::from(v)
    };
    let mut expected = artifact_gateway::storage::digest::Hasher::new();
    let n = total / chunk as u64;
    for i in 0..n {
        expected.update(&make(i));
    }
    let (expected, len) = expected.finish();
    let body = futures::stream::iter(0..n)
        .map(move |i| Ok::<_, Error>(make(i)))
        .boxed();
    let opts = PutOptions {
        sha256: Some(expected),
        ..Default::default()
    };
    let res = s
        .storage
        .put(&path, Upload::with(body, opts))
        .await
        .unwrap();
    assert_eq!(res.meta.size, len);
    let got = s.storage.get(&path, GetOptions::default()).await.unwrap();
    let mut h = artifact_gateway::storage::digest::Hasher::new();
    let mut body = got.body;
    while let Some(c) = body.next().await {
        h.update(&c.unwrap());
    }
    assert_eq!(
        h.finish(),
        (expected, len),
        "large artifact round-trips byte for byte"
    );
    s.storage.delete(&path).await.unwrap();
    Outcome::Passed
}

async fn ready_check(s: &Suite, _dir: ArtifactPath) -> Outcome {
    s.storage.ready().await.unwrap();
    Outcome::Passed
}
