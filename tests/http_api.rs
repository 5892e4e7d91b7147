//! In-process tests of the HTTP API: the whole status/header matrix, auth, path safety and
//! error bodies, driving `http::handle` directly with a real local backend.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use artifact_gateway::config::{Scope, TokenConfig};
use artifact_gateway::http::{self, AppState};
use artifact_gateway::secret::Secret;
use artifact_gateway::service::{Authorizer, Gateway, Mount};
use artifact_gateway::storage::local::LocalStorage;
use artifact_gateway::storage::{
    ArtifactPath, ByteStream, Capabilities, GetOptions, GetResult, ListOptions, ListPage, Meta,
    PutOptions, PutResult, Sha256, Storage,
};
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

const ADMIN: &str = "admin-token";
const READER: &str = "reader-token";

/// Counts every storage call, so tests can prove bad requests never reach storage; with
/// `break_bodies`, every body fails after half its first chunk (a backend dying mid-stream).
#[derive(Debug)]
struct Counting {
    inner: LocalStorage,
    calls: Arc<AtomicUsize>,
    break_bodies: bool,
}

#[async_trait]
impl Storage for Counting {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn head(&self, p: &ArtifactPath) -> artifact_gateway::Result<Meta> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.head(p).await
    }
    async fn get(&self, p: &ArtifactPath, o: GetOptions) -> artifact_gateway::Result<GetResult> {
        use futures::StreamExt;
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut r = self.inner.get(p, o).await?;
        if self.break_bodies {
            let first = r.body.next().await.unwrap()?;
            let half = first.slice(..first.len() / 2);
            r.body = futures::stream::iter(vec![
                Ok(half),
                Err(artifact_gateway::Error::new(
                    artifact_gateway::ErrorKind::BackendUnavailable,
                    "backend died",
                )),
            ])
            .boxed();
        }
        Ok(r)
    }
    async fn put(
        &self,
        p: &ArtifactPath,
        b: ByteStream,
        o: PutOptions,
    ) -> artifact_gateway::Result<PutResult> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.put(p, b, o).await
    }
    async fn delete(&self, p: &ArtifactPath) -> artifact_gateway::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(p).await
    }
    async fn list(&self, p: &ArtifactPath, o: ListOptions) -> artifact_gateway::Result<ListPage> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.list(p, o).await
    }
    async fn ready(&self) -> artifact_gateway::Result<()> {
        self.inner.ready().await
    }
}

struct Env {
    state: Arc<AppState>,
    calls: Arc<AtomicUsize>,
    dir: tempfile::TempDir,
    private_dir: tempfile::TempDir,
}

fn env() -> Env {
    env_with(true)
}

fn env_with(write_token: bool) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let private_dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let public = Mount {
        name: "default".into(),
        storage: Arc::new(Counting {
            inner: LocalStorage::new(dir.path()).unwrap(),
            calls: calls.clone(),
            break_bodies: false,
        }),
        anonymous_read: true,
        max_upload_size: 1 << 20,
    };
    let private = Mount {
        name: "private".into(),
        storage: Arc::new(LocalStorage::new(private_dir.path()).unwrap()),
        anonymous_read: false,
        max_upload_size: 1 << 20,
    };
    let tokens = vec![TokenConfig {
        name: "reader".into(),
        secret: Secret::Value(READER.into()),
        scopes: vec![Scope::Read],
        mounts: vec!["*".into()],
    }];
    let auth = Authorizer::from_config(&tokens, write_token.then_some(ADMIN)).unwrap();
    let gw = Gateway::new(vec![public, private], auth, Duration::from_secs(5));
    Env {
        state: AppState::new(Arc::new(gw)),
        calls,
        dir,
        private_dir,
    }
}

struct Resp {
    status: u16,
    headers: ::http::HeaderMap,
    body: Bytes,
}

impl Resp {
    fn h(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&self.body)))
    }
    fn error_code(&self) -> String {
        assert_eq!(self.h("content-type"), Some("application/json"));
        self.json()["error"]["code"].as_str().unwrap().to_string()
    }
}

async fn send(e: &Env, method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut b = ::http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
    let resp = http::handle(e.state.clone(), req).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    assert!(
        headers.contains_key("x-request-id"),
        "every response carries a request id"
    );
    Resp {
        status,
        headers,
        body,
    }
}

async fn put_admin(e: &Env, path: &str, body: &[u8]) -> Resp {
    send(
        e,
        "PUT",
        &format!("/artifacts/default/{path}"),
        &[("authorization", &format!("Bearer {ADMIN}"))],
        body,
    )
    .await
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn get_and_head_carry_all_headers() {
    let e = env();
    let body = data(1000);
    let put = put_admin(&e, "jobs/wc/1.0/wc.jar", &body).await;
    assert_eq!(put.status, 201);
    let r = send(
        &e,
        "GET",
        "/artifacts/default/jobs/wc/1.0/wc.jar",
        &[("accept-encoding", "gzip, br")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.as_ref(), body.as_slice());
    assert_eq!(r.h("content-length"), Some("1000"));
    assert_eq!(r.h("content-type"), Some("application/java-archive"));
    assert_eq!(r.h("accept-ranges"), Some("bytes"));
    assert!(r.h("content-encoding").is_none(), "never compressed");
    let etag = r.h("etag").unwrap();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong ETag: {etag}"
    );
    assert!(httpdate::parse_http_date(r.h("last-modified").unwrap()).is_ok());
    assert_eq!(
        r.h("repr-digest").unwrap(),
        Sha256::of(&body).to_digest_field()
    );
    assert_eq!(put.h("etag"), Some(etag));
    let head = send(
        &e,
        "HEAD",
        "/artifacts/default/jobs/wc/1.0/wc.jar",
        &[],
        b"",
    )
    .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for h in [
        "content-length",
        "content-type",
        "etag",
        "last-modified",
        "repr-digest",
        "accept-ranges",
    ] {
        assert_eq!(head.h(h), r.h(h), "HEAD and GET agree on {h}");
    }
}

#[tokio::test]
async fn ranges() {
    let e = env();
    let body = data(1000);
    put_admin(&e, "r.bin", &body).await;
    let get = |range: &'static str| {
        let e = &e;
        async move {
            send(
                e,
                "GET",
                "/artifacts/default/r.bin",
                &[("range", range)],
                b"",
            )
            .await
        }
    };
    let r = get("bytes=10-19").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.h("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(r.h("content-length"), Some("10"));
    assert_eq!(r.body.as_ref(), &body[10..20]);
    assert!(
        r.h("repr-digest").is_some(),
        "Repr-Digest describes the whole representation, also on 206"
    );
    let r = get("bytes=-100").await;
    assert_eq!(
        (r.status, r.h("content-range")),
        (206, Some("bytes 900-999/1000"))
    );
    let r = get("bytes=990-").await;
    assert_eq!(r.body.as_ref(), &body[990..]);
    let r = get("bytes=1000-").await;
    assert_eq!(r.status, 416);
    assert_eq!(r.h("content-range"), Some("bytes */1000"));
    assert_eq!(r.error_code(), "range_not_satisfiable");
    let r = get("bytes=0-1,5-6").await;
    assert_eq!(
        (r.status, r.body.len()),
        (200, 1000),
        "several ranges: the whole body"
    );
    let r = get("bytes=abc").await;
    assert_eq!(
        (r.status, r.body.len()),
        (200, 1000),
        "a malformed Range is ignored"
    );
    let head = send(
        &e,
        "HEAD",
        "/artifacts/default/r.bin",
        &[("range", "bytes=0-9")],
        b"",
    )
    .await;
    assert_eq!((head.status, head.h("content-length")), (206, Some("10")));
}

#[tokio::test]
async fn conditional_requests() {
    let e = env();
    let put = put_admin(&e, "c.jar", b"hello").await;
    let etag = put.h("etag").unwrap().to_string();
    let lm = send(&e, "HEAD", "/artifacts/default/c.jar", &[], b"")
        .await
        .h("last-modified")
        .unwrap()
        .to_string();
    let future = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    let past = "Thu, 01 Jan 2015 00:00:00 GMT";
    let g = |h: Vec<(&'static str, String)>| {
        let e = &e;
        async move {
            let hs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(e, "GET", "/artifacts/default/c.jar", &hs, b"").await
        }
    };
    let r = g(vec![("if-none-match", etag.clone())]).await;
    assert_eq!(r.status, 304);
    assert_eq!(r.h("etag"), Some(etag.as_str()));
    assert!(r.body.is_empty());
    assert_eq!(
        g(vec![("if-none-match", format!("\"x\", W/{etag}"))])
            .await
            .status,
        304,
        "weak comparison"
    );
    assert_eq!(g(vec![("if-none-match", "*".into())]).await.status, 304);
    assert_eq!(
        g(vec![("if-none-match", "\"other\"".into())]).await.status,
        200
    );
    assert_eq!(g(vec![("if-modified-since", lm.clone())]).await.status, 304);
    assert_eq!(
        g(vec![("if-modified-since", past.into())]).await.status,
        200
    );
    assert_eq!(
        g(vec![
            ("if-none-match", "\"other\"".into()),
            ("if-modified-since", future.clone())
        ])
        .await
        .status,
        200,
        "If-None-Match wins"
    );
    let r = g(vec![("if-match", "\"other\"".into())]).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (412, "precondition_failed")
    );
    assert_eq!(g(vec![("if-match", etag.clone())]).await.status, 200);
    assert_eq!(
        g(vec![("if-match", format!("W/{etag}"))]).await.status,
        412,
        "If-Match compares strongly"
    );
    assert_eq!(
        g(vec![("if-unmodified-since", past.into())]).await.status,
        412
    );
    assert_eq!(
        g(vec![("if-unmodified-since", future.clone())])
            .await
            .status,
        200
    );
    assert_eq!(
        g(vec![
            ("if-match", etag.clone()),
            ("if-unmodified-since", past.into())
        ])
        .await
        .status,
        200,
        "If-Match wins"
    );
    let r = g(vec![
        ("range", "bytes=0-1".into()),
        ("if-range", etag.clone()),
    ])
    .await;
    assert_eq!((r.status, r.body.as_ref()), (206, &b"he"[..]));
    let r = g(vec![
        ("range", "bytes=0-1".into()),
        ("if-range", "\"stale\"".into()),
    ])
    .await;
    assert_eq!((r.status, r.body.as_ref()), (200, &b"hello"[..]));
    let r = g(vec![
        ("range", "bytes=0-1".into()),
        ("if-range", lm.clone()),
    ])
    .await;
    assert_eq!(r.status, 206);
}

#[tokio::test]
async fn uploads() {
    let e = env();
    let body = data(5000);
    let auth = format!("Bearer {ADMIN}");
    let sha = Sha256::of(&body);
    let r = send(
        &e,
        "PUT",
        "/artifacts/default/u/a.jar",
        &[
            ("authorization", &auth),
            ("x-checksum-sha256", &sha.to_hex()),
        ],
        &body,
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.h("location"), Some("/artifacts/default/u/a.jar"));
    assert_eq!(r.h("repr-digest"), Some(sha.to_digest_field().as_str()));
    let j = r.json();
    assert_eq!(
        (
            j["size"].as_u64(),
            j["sha256"].as_str(),
            j["created"].as_bool()
        ),
        (Some(5000), Some(sha.to_hex().as_str()), Some(true))
    );
    let etag = r.h("etag").unwrap().to_string();
    // Replace: 200.
    let r = send(
        &e,
        "PUT",
        "/artifacts/default/u/a.jar",
        &[
            ("authorization", &auth),
            ("content-digest", &sha.to_digest_field()),
        ],
        &body,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["created"], Value::Bool(false));
    let etag2 = r.h("etag").unwrap().to_string();
    // Digest mismatch in each header form: 400, nothing stored.
    let wrong = Sha256::of(b"nope");
    for (h, v) in [
        ("x-checksum-sha256", wrong.to_hex()),
        ("content-digest", wrong.to_digest_field()),
        ("repr-digest", wrong.to_digest_field()),
    ] {
        let r = send(
            &e,
            "PUT",
            "/artifacts/default/u/new.jar",
            &[("authorization", &auth), (h, &v)],
            &body,
        )
        .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "digest_mismatch"),
            "{h}"
        );
        assert_eq!(
            send(&e, "HEAD", "/artifacts/default/u/new.jar", &[], b"")
                .await
                .status,
            404
        );
    }
    for (h, v) in [
        ("x-checksum-sha256", "zz"),
        ("content-digest", "sha-256=:notbase64:"),
        ("repr-digest", "sha-256=abc"),
    ] {
        let r = send(
            &e,
            "PUT",
            "/artifacts/default/u/new.jar",
            &[("authorization", &auth), (h, v)],
            &body,
        )
        .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "invalid_input"),
            "{h}: {v}"
        );
    }
    let r = send(
        &e,
        "PUT",
        "/artifacts/default/u/new.jar",
        &[
            ("authorization", &auth),
            ("x-checksum-sha256", &sha.to_hex()),
            ("content-digest", &wrong.to_digest_field()),
        ],
        &body,
    )
    .await;
    assert_eq!(r.status, 400, "two disagreeing digests");
    // Create-only and guarded replace.
    let r = send(
        &e,
        "PUT",
        "/artifacts/default/u/a.jar",
        &[("authorization", &auth), ("if-none-match", "*")],
        b"x",
    )
    .await;
    assert_eq!(r.status, 412);
    let r = send(
        &e,
        "PUT",
        "/artifacts/default/u/b.jar",
        &[("authorization", &auth), ("if-none-match", "*")],
        b"x",
    )
    .await;
    assert_eq!(r.status, 201);
    let r = send(
        &e,
        "PUT",
        "/artifacts/default/u/a.jar",
        &[("authorization", &auth), ("if-match", &etag)],
        b"stale",
    )
    .await;
    assert_eq!(r.status, 412, "stale If-Match");
    let r = send(
        &e,
        "PUT",
        "/artifacts/default/u/a.jar",
        &[("authorization", &auth), ("if-match", &etag2)],
        b"fresh",
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        &e,
        "PUT",
        "/artifacts/default/u/missing.jar",
        &[("authorization", &auth), ("if-match", "*")],
        b"x",
    )
    .await;
    assert_eq!(r.status, 412, "If-Match: * needs an existing artifact");
    assert_eq!(
        send(&e, "GET", "/artifacts/default/u/a.jar", &[], b"")
            .await
            .body
            .as_ref(),
        b"fresh"
    );
    // Size limit: refused from Content-Length before storage is touched.
    let before = e.calls.load(Ordering::SeqCst);
    let big = vec![0u8; (1 << 20) + 1];
    let r = send(
        &e,
        "PUT",
        "/artifacts/default/u/big.jar",
        &[
            ("authorization", &auth),
            ("content-length", &big.len().to_string()),
        ],
        &big,
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (413, "too_large"));
    assert_eq!(e.calls.load(Ordering::SeqCst), before);
    // Without Content-Length the streamed limit still holds and nothing is stored.
    let r = send(
        &e,
        "PUT",
        "/artifacts/default/u/big.jar",
        &[("authorization", &auth)],
        &big,
    )
    .await;
    assert_eq!(r.status, 413);
    assert_eq!(
        send(&e, "HEAD", "/artifacts/default/u/big.jar", &[], b"")
            .await
            .status,
        404
    );
    // An explicit content type is kept; a form type from curl --data-binary is not.
    send(
        &e,
        "PUT",
        "/artifacts/default/u/q.sql",
        &[
            ("authorization", &auth),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        b"SELECT 1",
    )
    .await;
    assert_eq!(
        send(&e, "HEAD", "/artifacts/default/u/q.sql", &[], b"")
            .await
            .h("content-type"),
        Some("application/sql")
    );
    send(
        &e,
        "PUT",
        "/artifacts/default/u/notes",
        &[("authorization", &auth), ("content-type", "text/markdown")],
        b"# hi",
    )
    .await;
    assert_eq!(
        send(&e, "HEAD", "/artifacts/default/u/notes", &[], b"")
            .await
            .h("content-type"),
        Some("text/markdown")
    );
}

#[tokio::test]
async fn deletes() {
    let e = env();
    put_admin(&e, "d.jar", b"x").await;
    let auth = format!("Bearer {ADMIN}");
    let r = send(
        &e,
        "DELETE",
        "/artifacts/default/d.jar",
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        send(&e, "GET", "/artifacts/default/d.jar", &[], b"")
            .await
            .status,
        404
    );
    let r = send(
        &e,
        "DELETE",
        "/artifacts/default/d.jar",
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    let put = put_admin(&e, "d.jar", b"y").await;
    let r = send(
        &e,
        "DELETE",
        "/artifacts/default/d.jar",
        &[("authorization", &auth), ("if-match", "\"zzz\"")],
        b"",
    )
    .await;
    assert_eq!(r.status, 412);
    let r = send(
        &e,
        "DELETE",
        "/artifacts/default/d.jar",
        &[
            ("authorization", &auth),
            ("if-match", put.h("etag").unwrap()),
        ],
        b"",
    )
    .await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn listings() {
    let e = env();
    for p in ["l/b.jar", "l/a.jar", "l/sub/c.jar", "l/%3Cscript%3E.jar"] {
        let decoded = p.replace("%3C", "<").replace("%3E", ">");
        assert_eq!(put_admin(&e, p, decoded.as_bytes()).await.status, 201);
    }
    let r = send(
        &e,
        "GET",
        "/artifacts/default/l/",
        &[("accept", "application/json")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let j = r.json();
    let names: Vec<&str> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["<script>.jar", "a.jar", "b.jar", "sub"]);
    let a = &j["entries"][1];
    assert_eq!(a["size"], 7);
    assert_eq!(
        a["sha256"].as_str().unwrap(),
        Sha256::of(b"l/a.jar").to_hex()
    );
    assert_eq!(a["is_dir"], false);
    assert!(a["etag"].is_string() && a["last_modified"].is_string());
    assert_eq!(j["entries"][3]["is_dir"], true);
    // Pagination.
    let r = send(&e, "GET", "/artifacts/default/l/?limit=2", &[], b"")
        .await
        .json();
    assert_eq!(r["entries"].as_array().unwrap().len(), 2);
    let next = r["next_after"].as_str().unwrap().to_string();
    let uri = format!("/artifacts/default/l/?limit=2&after={}", url_encode(&next));
    let r2 = send(&e, "GET", &uri, &[], b"").await.json();
    let n2: Vec<&str> = r2["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(n2, ["b.jar", "sub"]);
    assert!(r2["next_after"].is_null());
    // HTML for browsers, escaped.
    let r = send(
        &e,
        "GET",
        "/artifacts/default/l/",
        &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
        b"",
    )
    .await;
    assert_eq!(r.h("content-type"), Some("text/html; charset=utf-8"));
    let html = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(
        html.contains("href=\"/artifacts/default/l/a.jar\""),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;.jar") && !html.contains("<script>"),
        "names are escaped"
    );
    // Missing directory, root, mounts.
    assert_eq!(
        send(&e, "GET", "/artifacts/default/nope/", &[], b"")
            .await
            .status,
        404
    );
    assert_eq!(
        send(&e, "GET", "/artifacts/default/", &[], b"")
            .await
            .status,
        200
    );
    let m = send(&e, "GET", "/artifacts/", &[], b"").await.json();
    let mounts: Vec<&str> = m["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        mounts,
        ["default"],
        "anonymous callers see only anonymous mounts"
    );
    let m = send(
        &e,
        "GET",
        "/artifacts/",
        &[("authorization", &format!("Bearer {READER}"))],
        b"",
    )
    .await
    .json();
    assert_eq!(m["mounts"].as_array().unwrap().len(), 2);
    assert_eq!(
        send(&e, "GET", "/artifacts/default/l/?limit=0", &[], b"")
            .await
            .status,
        400
    );
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn access_control() {
    let e = env();
    std::fs::write(e.private_dir.path().join("secret.jar"), b"s").unwrap();
    let reader = format!("Bearer {READER}");
    let admin_lower = format!("bearer {ADMIN}");
    let secret = "/artifacts/private/secret.jar";
    // (why, method, path, Authorization, status, error code)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        u16,
        Option<&'a str>,
    );
    let cases: &[Case] = &[
        (
            "no token",
            "GET",
            secret,
            None,
            401,
            Some("unauthenticated"),
        ),
        (
            "wrong token",
            "GET",
            secret,
            Some("Bearer wrong"),
            401,
            Some("unauthenticated"),
        ),
        (
            "another scheme",
            "GET",
            secret,
            Some("Basic dXNlcjpwYXNz"),
            401,
            Some("unauthenticated"),
        ),
        ("reader", "GET", secret, Some(&reader), 200, None),
        (
            "scheme is case-insensitive",
            "GET",
            secret,
            Some(&admin_lower),
            200,
            None,
        ),
        (
            "read scope cannot write",
            "PUT",
            "/artifacts/default/x.jar",
            Some(&reader),
            403,
            Some("permission_denied"),
        ),
        (
            "anonymous writes need a token",
            "PUT",
            "/artifacts/default/x.jar",
            None,
            401,
            Some("unauthenticated"),
        ),
        (
            "wrong token cannot delete",
            "DELETE",
            "/artifacts/default/x.jar",
            Some("Bearer wrong"),
            401,
            Some("unauthenticated"),
        ),
        // A wrong token on an anonymous-read mount is still refused (a client error worth seeing).
        (
            "wrong token, anonymous mount",
            "GET",
            "/artifacts/default/",
            Some("Bearer wrong"),
            401,
            Some("unauthenticated"),
        ),
        (
            "unknown mount",
            "GET",
            "/artifacts/nomount/x.jar",
            None,
            404,
            Some("not_found"),
        ),
    ];
    for (why, method, path, auth, status, code) in cases {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let r = send(&e, method, path, &headers, b"x").await;
        assert_eq!(r.status, *status, "{why}");
        match code {
            Some(code) => assert_eq!(r.error_code(), *code, "{why}"),
            None => assert_eq!(r.body.as_ref(), b"s", "{why}"),
        }
        if *status == 401 {
            assert!(
                r.h("www-authenticate").unwrap().starts_with("Bearer"),
                "{why}"
            );
        }
    }
}

#[tokio::test]
async fn writes_disabled_without_a_write_token() {
    let e = env_with(false);
    let r = send(&e, "PUT", "/artifacts/default/x.jar", &[], b"x").await;
    assert_eq!(r.status, 403);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("ARTIFACT_GATEWAY_TOKEN") && msg.contains("[[tokens]]"),
        "{msg}"
    );
    assert_eq!(e.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bad_paths_never_reach_storage() {
    let e = env();
    put_admin(&e, "ok.jar", b"x").await;
    let before = e.calls.load(Ordering::SeqCst);
    let auth = format!("Bearer {ADMIN}");
    let bad = [
        "/artifacts/default/../etc/passwd",
        "/artifacts/default/a/../../etc/passwd",
        "/artifacts/default/%2e%2e/etc/passwd",
        "/artifacts/default/%2E%2E%2Fetc%2Fpasswd",
        "/artifacts/default/a%2Fb.jar",
        "/artifacts/default/a%5Cb.jar",
        "/artifacts/default/a%5C..%5Cb.jar",
        "/artifacts/default/./ok.jar",
        "/artifacts/default//ok.jar",
        "/artifacts/default/a%00.jar",
        "/artifacts/default/a%0Ab.jar",
        "/artifacts/default/a%1Fb.jar",
        "/artifacts/default/%ff.jar",
        "/artifacts/default/.artifact-gateway/tmp/x",
    ];
    for method in ["GET", "HEAD", "PUT", "DELETE"] {
        for p in bad {
            let r = send(&e, method, p, &[("authorization", &auth)], b"x").await;
            assert_eq!(r.status, 400, "{method} {p}");
            if method != "HEAD" {
                assert_eq!(r.error_code(), "invalid_path", "{method} {p}");
            }
        }
    }
    assert_eq!(
        e.calls.load(Ordering::SeqCst),
        before,
        "no bad request reached storage"
    );
}

#[tokio::test]
async fn symlinks_cannot_leave_the_mount() {
    let e = env();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), b"outside").unwrap();
    std::os::unix::fs::symlink(outside.path(), e.dir.path().join("escape")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        e.dir.path().join("file-escape.txt"),
    )
    .unwrap();
    let r = send(&e, "GET", "/artifacts/default/escape/secret.txt", &[], b"").await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_path"));
    assert_eq!(
        send(&e, "GET", "/artifacts/default/file-escape.txt", &[], b"")
            .await
            .status,
        400
    );
    let r = put_admin(&e, "escape/planted.jar", b"x").await;
    assert_eq!(r.status, 400);
    assert!(
        !outside.path().join("planted.jar").exists(),
        "nothing written outside the mount"
    );
    // A symlink that stays inside the mount is fine.
    put_admin(&e, "real/in.jar", b"inside").await;
    std::os::unix::fs::symlink(e.dir.path().join("real"), e.dir.path().join("alias")).unwrap();
    assert_eq!(
        send(&e, "GET", "/artifacts/default/alias/in.jar", &[], b"")
            .await
            .body
            .as_ref(),
        b"inside"
    );
}

#[tokio::test]
async fn methods_health_ready_metrics() {
    let e = env();
    let r = send(&e, "POST", "/artifacts/default/x.jar", &[], b"").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.h("allow"), Some("GET, HEAD, PUT, DELETE"));
    assert_eq!(
        send(&e, "GET", "/nope", &[], b"").await.error_code(),
        "not_found"
    );
    assert_eq!(send(&e, "GET", "/healthz", &[], b"").await.status, 200);
    let r = send(&e, "GET", "/readyz", &[], b"").await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (200, Some("ready"))
    );
    put_admin(&e, "m.jar", b"metrics").await;
    let m = String::from_utf8(send(&e, "GET", "/metrics", &[], b"").await.body.to_vec()).unwrap();
    assert!(
        m.contains("artifact_gateway_http_requests_total{method=\"PUT\",status=\"201\"} 1"),
        "{m}"
    );
    // A mount whose storage is gone makes /readyz fail, naming it.
    std::fs::remove_dir_all(e.private_dir.path()).unwrap();
    let r = send(&e, "GET", "/readyz", &[], b"").await;
    assert_eq!(r.status, 503);
    let j = r.json();
    assert_eq!(j["failing"], serde_json::json!(["private"]));
    assert_eq!(j["mounts"]["private"]["ready"], false);
}

#[tokio::test]
async fn a_body_failing_midway_fails_the_response() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.jar"), vec![1u8; 100_000]).unwrap();
    let mount = Mount {
        name: "default".into(),
        storage: Arc::new(Counting {
            inner: LocalStorage::new(dir.path()).unwrap(),
            calls: Arc::new(AtomicUsize::new(0)),
            break_bodies: true,
        }),
        anonymous_read: true,
        max_upload_size: 1 << 20,
    };
    let gw = Gateway::new(vec![mount], Authorizer::default(), Duration::from_secs(5));
    let state = AppState::new(Arc::new(gw));
    let req = ::http::Request::builder()
        .uri("/artifacts/default/x.jar")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = http::handle(state.clone(), req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], "100000");
    let collected = resp.into_body().collect().await;
    assert!(
        collected.is_err(),
        "the body must end in an error, never a short success"
    );
    let m = state.metrics.encode();
    assert!(
        m.contains("artifact_gateway_http_aborted_responses_total 1"),
        "{m}"
    );
}

#[tokio::test]
async fn whoami_says_what_the_caller_may_do() {
    let e = env();
    let anon = send(&e, "GET", "/whoami", &[], b"").await;
    assert_eq!(anon.status, 200);
    let v = anon.json();
    assert_eq!(v["authenticated"], false);
    assert_eq!(v["token"], Value::Null);
    assert_eq!(v["mounts"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["mounts"][0]["name"], "default");
    assert_eq!(v["mounts"][0]["read"], true);
    assert_eq!(v["mounts"][0]["write"], false);
    assert_eq!(v["mounts"][0]["anonymous_read"], true);
    assert_eq!(v["mounts"][0]["max_upload_size"], 1 << 20);

    let reader = send(
        &e,
        "GET",
        "/whoami",
        &[("authorization", &format!("Bearer {READER}"))],
        b"",
    )
    .await
    .json();
    assert_eq!(reader["token"], "reader");
    let names: Vec<_> = reader["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["read"] == true,
                m["write"] == true,
                m["delete"] == true,
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("default", true, false, false),
            ("private", true, false, false)
        ]
    );

    let admin = send(
        &e,
        "GET",
        "/whoami",
        &[("authorization", &format!("Bearer {ADMIN}"))],
        b"",
    )
    .await
    .json();
    assert_eq!(admin["authenticated"], true);
    assert!(admin["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["read"] == true && m["write"] == true && m["delete"] == true));

    let wrong = send(
        &e,
        "GET",
        "/whoami",
        &[("authorization", "Bearer nope")],
        b"",
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.error_code(), "unauthenticated");
    assert_eq!(send(&e, "PUT", "/whoami", &[], b"").await.status, 405);
}

#[tokio::test]
async fn web_page_and_hardening_headers() {
    let e = env();
    let page = send(&e, "GET", "/ui/", &[], b"").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.h("content-type"), Some("text/html; charset=utf-8"));
    let csp = page.h("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.h("x-content-type-options"), Some("nosniff"));
    assert!(String::from_utf8_lossy(&page.body).contains("<script type=\"module\" src=\"app.js\">"));
    let js = send(&e, "GET", "/ui/sha256.js", &[], b"").await;
    assert_eq!(js.status, 200);
    assert_eq!(js.h("content-type"), Some("text/javascript; charset=utf-8"));
    let root = send(&e, "GET", "/ui", &[], b"").await;
    assert_eq!((root.status, root.h("location")), (308, Some("/ui/")));
    assert_eq!(
        send(&e, "GET", "/ui/missing.js", &[], b"")
            .await
            .error_code(),
        "not_found"
    );
    assert_eq!(send(&e, "POST", "/ui/", &[], b"").await.status, 405);

    // Artifacts (and every other response) are sandboxed and never sniffed.
    assert_eq!(
        put_admin(&e, "x/page.html", b"<script>1</script>")
            .await
            .status,
        201
    );
    let art = send(&e, "GET", "/artifacts/default/x/page.html", &[], b"").await;
    assert_eq!(art.h("content-security-policy"), Some("sandbox"));
    assert_eq!(art.h("x-content-type-options"), Some("nosniff"));

    // Browsers without JavaScript get an HTML index of the mounts.
    let mounts = send(&e, "GET", "/artifacts/", &[("accept", "text/html")], b"").await;
    assert_eq!(mounts.h("content-type"), Some("text/html; charset=utf-8"));
    let html = String::from_utf8_lossy(&mounts.body);
    assert!(
        html.contains("<a href=\"/artifacts/default/\">default/</a>"),
        "{html}"
    );
    assert!(!html.contains("private"), "{html}");
}
