//! In-process tests of the HTTP API: the whole status/header matrix, auth, path safety and
//! error bodies, driving `http::handle` directly with a real local backend.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use artifact_gateway::config::{SigningConfig, SigningKeyConfig, TokenConfig};
use artifact_gateway::http::{self, AppState};
use artifact_gateway::secret::Secret;
use artifact_gateway::service::auth::Scope;
use artifact_gateway::service::{Authorizer, Gateway, Mount, Signer};
use artifact_gateway::storage::local::LocalStorage;
use artifact_gateway::storage::{
    ArtifactPath, Capabilities, GetOptions, GetResult, ListOptions, ListPage, Meta, PutResult,
    Sha256, Storage, Upload,
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
    async fn put(&self, p: &ArtifactPath, u: Upload) -> artifact_gateway::Result<PutResult> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.put(p, u).await
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

/// Signing keys of the signed-URL tests: `k2` signs, `k1` (the previous key) still verifies.
const KEY1: &str = "k1-0123456789abcdef0123456789abcdef";
const KEY2: &str = "k2-fedcba9876543210fedcba9876543210";

fn signer(keys: &[(&str, &str)]) -> Signer {
    Signer::from_config(&SigningConfig {
        keys: keys
            .iter()
            .map(|(id, k)| SigningKeyConfig {
                id: id.to_string(),
                secret: Secret::Value(k.to_string()),
            })
            .collect(),
        max_expires: Duration::from_secs(7 * 24 * 3600),
    })
    .unwrap()
}

fn env_with(write_token: bool) -> Env {
    env_opts(write_token, None)
}

fn env_opts(write_token: bool, signing: Option<Signer>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let private_dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    // Both mounts count their storage calls in `calls`.
    let mount = |name: &str, root: &std::path::Path, anonymous_read: bool| Mount {
        name: name.into(),
        storage: Arc::new(Counting {
            inner: LocalStorage::new(root).unwrap(),
            calls: calls.clone(),
            break_bodies: false,
        }),
        anonymous_read,
        max_upload_size: 1 << 20,
        read_only: false,
    };
    let public = mount("default", dir.path(), true);
    let private = mount("private", private_dir.path(), false);
    let tokens = vec![TokenConfig {
        name: "reader".into(),
        secret: Secret::Value(READER.into()),
        scopes: vec![Scope::Read],
        mounts: vec!["*".into()],
    }];
    let auth = Authorizer::from_config(&tokens, write_token.then_some(ADMIN)).unwrap();
    let mut gw = Gateway::new(vec![public, private], auth, Duration::from_secs(5));
    if let Some(s) = signing {
        gw = gw.with_signer(s);
    }
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

/// A request being built: `e.on("GET", "x.jar").header("range", "bytes=0-9").send().await`.
struct Req<'a> {
    e: &'a Env,
    method: &'static str,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req<'_> {
    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    fn auth(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    fn body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }

    async fn send(self) -> Resp {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        send(self.e, self.method, &self.uri, &headers, &self.body).await
    }

    /// Sends, and asserts the status (`why` names the case).
    async fn expect(self, status: u16, why: &str) -> Resp {
        let r = self.send().await;
        assert_eq!(r.status, status, "{why}");
        r
    }
}

impl Env {
    /// `METHOD URI`, anonymous, no body.
    fn req(&self, method: &'static str, uri: &str) -> Req<'_> {
        Req {
            e: self,
            method,
            uri: uri.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `METHOD /artifacts/default/PATH`, anonymous, no body.
    fn on(&self, method: &'static str, path: &str) -> Req<'_> {
        self.req(method, &format!("/artifacts/default/{path}"))
    }

    /// `PUT /artifacts/default/PATH` with the admin token.
    fn put(&self, path: &str, body: &[u8]) -> Req<'_> {
        self.on("PUT", path).auth(ADMIN).body(body)
    }
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn get_and_head_carry_all_headers() {
    let e = env();
    let body = data(1000);
    let put = e.put("jobs/wc/1.0/wc.jar", &body).expect(201, "PUT").await;
    let r = e
        .on("GET", "jobs/wc/1.0/wc.jar")
        .header("accept-encoding", "gzip, br")
        .expect(200, "GET")
        .await;
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
    let head = e.on("HEAD", "jobs/wc/1.0/wc.jar").expect(200, "HEAD").await;
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
    e.put("r.bin", &body).expect(201, "PUT").await;
    let get = |range: &str| e.on("GET", "r.bin").header("range", range).send();
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
    let head = e
        .on("HEAD", "r.bin")
        .header("range", "bytes=0-9")
        .send()
        .await;
    assert_eq!((head.status, head.h("content-length")), (206, Some("10")));
}

#[tokio::test]
async fn conditional_requests() {
    let e = env();
    let put = e.put("c.jar", b"hello").expect(201, "PUT").await;
    let etag = put.h("etag").unwrap().to_string();
    let head = e.on("HEAD", "c.jar").expect(200, "HEAD").await;
    let lm = head.h("last-modified").unwrap().to_string();
    let future = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    let past = "Thu, 01 Jan 2015 00:00:00 GMT".to_string();
    let other = "\"other\"".to_string();
    // (why, conditions, status): RFC 9110 §13.2.2 precedence included.
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, u16);
    let cases: Vec<Case> = vec![
        (
            "the current ETag",
            vec![("if-none-match", etag.clone())],
            304,
        ),
        (
            "weak comparison",
            vec![("if-none-match", format!("\"x\", W/{etag}"))],
            304,
        ),
        ("any version", vec![("if-none-match", "*".into())], 304),
        ("another ETag", vec![("if-none-match", other.clone())], 200),
        ("not modified", vec![("if-modified-since", lm.clone())], 304),
        (
            "modified since",
            vec![("if-modified-since", past.clone())],
            200,
        ),
        (
            "If-None-Match wins",
            vec![
                ("if-none-match", other.clone()),
                ("if-modified-since", future.clone()),
            ],
            200,
        ),
        ("If-Match another", vec![("if-match", other.clone())], 412),
        ("If-Match current", vec![("if-match", etag.clone())], 200),
        (
            "If-Match compares strongly",
            vec![("if-match", format!("W/{etag}"))],
            412,
        ),
        ("modified", vec![("if-unmodified-since", past.clone())], 412),
        (
            "unmodified",
            vec![("if-unmodified-since", future.clone())],
            200,
        ),
        (
            "If-Match wins",
            vec![("if-match", etag.clone()), ("if-unmodified-since", past)],
            200,
        ),
    ];
    for (why, conditions, status) in cases {
        let mut req = e.on("GET", "c.jar");
        for (name, value) in conditions {
            req = req.header(name, value);
        }
        let r = req.expect(status, why).await;
        match status {
            304 => {
                assert_eq!(r.h("etag"), Some(etag.as_str()), "{why}");
                assert!(r.body.is_empty(), "{why}");
            }
            412 => {
                assert_eq!(r.error_code(), "precondition_failed", "{why}");
                assert_eq!(r.json()["error"]["path"], "c.jar", "{why}");
            }
            _ => assert_eq!(r.body.as_ref(), b"hello", "{why}"),
        }
    }
    for (if_range, status, body) in [
        (etag.as_str(), 206, &b"he"[..]),
        ("\"stale\"", 200, &b"hello"[..]),
        (lm.as_str(), 206, &b"he"[..]),
    ] {
        let r = e
            .on("GET", "c.jar")
            .header("range", "bytes=0-1")
            .header("if-range", if_range)
            .send()
            .await;
        assert_eq!((r.status, r.body.as_ref()), (status, body), "{if_range}");
    }
}

#[tokio::test]
async fn uploads() {
    let e = env();
    let body = data(5000);
    let sha = Sha256::of(&body);
    let r = e
        .put("u/a.jar", &body)
        .header("x-checksum-sha256", sha.to_hex())
        .expect(201, "created")
        .await;
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
    let r = e
        .put("u/a.jar", &body)
        .header("content-digest", sha.to_digest_field())
        .expect(200, "replaced")
        .await;
    assert_eq!(r.json()["created"], Value::Bool(false));
    let etag2 = r.h("etag").unwrap().to_string();
    // Digest mismatch in each header form: 400, nothing stored.
    let wrong = Sha256::of(b"nope");
    for (h, v) in [
        ("x-checksum-sha256", wrong.to_hex()),
        ("content-digest", wrong.to_digest_field()),
        ("repr-digest", wrong.to_digest_field()),
    ] {
        let r = e.put("u/new.jar", &body).header(h, v).expect(400, h).await;
        assert_eq!(r.error_code(), "digest_mismatch", "{h}");
        e.on("HEAD", "u/new.jar").expect(404, h).await;
    }
    for (h, v) in [
        ("x-checksum-sha256", "zz"),
        ("content-digest", "sha-256=:notbase64:"),
        ("repr-digest", "sha-256=abc"),
    ] {
        let r = e.put("u/new.jar", &body).header(h, v).expect(400, v).await;
        assert_eq!(r.error_code(), "invalid_input", "{h}: {v}");
    }
    e.put("u/new.jar", &body)
        .header("x-checksum-sha256", sha.to_hex())
        .header("content-digest", wrong.to_digest_field())
        .expect(400, "two disagreeing digests")
        .await;
    // Create-only and guarded replace: (why, path, condition, body, status).
    for (why, path, (name, value), content, status) in [
        ("exists", "u/a.jar", ("if-none-match", "*"), &b"x"[..], 412),
        (
            "create-only",
            "u/b.jar",
            ("if-none-match", "*"),
            &b"x"[..],
            201,
        ),
        (
            "stale If-Match",
            "u/a.jar",
            ("if-match", etag.as_str()),
            &b"stale"[..],
            412,
        ),
        (
            "current If-Match",
            "u/a.jar",
            ("if-match", etag2.as_str()),
            &b"fresh"[..],
            200,
        ),
        (
            "If-Match: * needs an existing artifact",
            "u/missing.jar",
            ("if-match", "*"),
            &b"x"[..],
            412,
        ),
    ] {
        e.put(path, content)
            .header(name, value)
            .expect(status, why)
            .await;
    }
    assert_eq!(e.on("GET", "u/a.jar").send().await.body.as_ref(), b"fresh");
    // Size limit: refused from Content-Length before storage is touched.
    let before = e.calls.load(Ordering::SeqCst);
    let big = vec![0u8; (1 << 20) + 1];
    let r = e
        .put("u/big.jar", &big)
        .header("content-length", big.len().to_string())
        .expect(413, "declared too large")
        .await;
    assert_eq!(r.error_code(), "too_large");
    assert_eq!(e.calls.load(Ordering::SeqCst), before);
    // Without Content-Length the streamed limit still holds and nothing is stored.
    e.put("u/big.jar", &big)
        .expect(413, "streamed too large")
        .await;
    e.on("HEAD", "u/big.jar")
        .expect(404, "nothing stored")
        .await;
    // An explicit content type is kept; a form type from curl --data-binary is not.
    for (path, content, sent, kept) in [
        (
            "u/q.sql",
            &b"SELECT 1"[..],
            "application/x-www-form-urlencoded",
            "application/sql",
        ),
        ("u/notes", &b"# hi"[..], "text/markdown", "text/markdown"),
    ] {
        e.put(path, content)
            .header("content-type", sent)
            .expect(201, sent)
            .await;
        let r = e.on("HEAD", path).expect(200, path).await;
        assert_eq!(r.h("content-type"), Some(kept), "{sent}");
    }
}

#[tokio::test]
async fn deletes() {
    let e = env();
    e.put("d.jar", b"x").expect(201, "PUT").await;
    let delete = || e.on("DELETE", "d.jar").auth(ADMIN);
    delete().expect(204, "deleted").await;
    e.on("GET", "d.jar").expect(404, "gone").await;
    let r = delete().expect(404, "deleting a missing artifact").await;
    assert_eq!(r.error_code(), "not_found");
    let put = e.put("d.jar", b"y").expect(201, "PUT again").await;
    let r = delete()
        .header("if-match", "\"zzz\"")
        .expect(412, "stale If-Match")
        .await;
    assert_eq!(r.error_code(), "precondition_failed");
    delete()
        .header("if-match", put.h("etag").unwrap())
        .expect(204, "current If-Match")
        .await;
}

#[tokio::test]
async fn listings() {
    let e = env();
    for p in ["l/b.jar", "l/a.jar", "l/sub/c.jar", "l/%3Cscript%3E.jar"] {
        let decoded = p.replace("%3C", "<").replace("%3E", ">");
        e.put(p, decoded.as_bytes()).expect(201, p).await;
    }
    let r = e
        .on("GET", "l/")
        .header("accept", "application/json")
        .expect(200, "JSON listing")
        .await;
    let j = r.json();
    assert_eq!(
        names(&j["entries"]),
        ["<script>.jar", "a.jar", "b.jar", "sub"]
    );
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
    let r = e.on("GET", "l/?limit=2").send().await.json();
    assert_eq!(r["entries"].as_array().unwrap().len(), 2);
    let next = r["next_after"].as_str().unwrap().to_string();
    let r2 = e
        .on("GET", &format!("l/?limit=2&after={}", url_encode(&next)))
        .send()
        .await
        .json();
    let n2 = names(&r2["entries"]);
    assert_eq!(n2, ["b.jar", "sub"]);
    assert!(r2["next_after"].is_null());
    // HTML for browsers, escaped.
    let r = e
        .on("GET", "l/")
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
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
    e.on("GET", "nope/").expect(404, "missing directory").await;
    e.on("GET", "").expect(200, "the mount's root").await;
    let m = e.req("GET", "/artifacts/").send().await.json();
    let mounts = names(&m["mounts"]);
    assert_eq!(
        mounts,
        ["default"],
        "anonymous callers see only anonymous mounts"
    );
    let m = e.req("GET", "/artifacts/").auth(READER).send().await.json();
    assert_eq!(m["mounts"].as_array().unwrap().len(), 2);
    e.on("GET", "l/?limit=0").expect(400, "limit=0").await;
}

/// The `name` of every object in a JSON array.
fn names(list: &Value) -> Vec<&str> {
    let list = list.as_array().expect("an array");
    list.iter().map(|x| x["name"].as_str().unwrap()).collect()
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
    let r = e
        .on("PUT", "x.jar")
        .body(b"x")
        .expect(403, "no write token")
        .await;
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
    e.put("ok.jar", b"x").expect(201, "PUT").await;
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
    let r = e
        .on("GET", "escape/secret.txt")
        .expect(400, "dir link")
        .await;
    assert_eq!(r.error_code(), "invalid_path");
    e.on("GET", "file-escape.txt")
        .expect(400, "file link")
        .await;
    e.put("escape/planted.jar", b"x").expect(400, "PUT").await;
    assert!(
        !outside.path().join("planted.jar").exists(),
        "nothing written outside the mount"
    );
    // A symlink that stays inside the mount is fine.
    e.put("real/in.jar", b"inside").expect(201, "PUT").await;
    std::os::unix::fs::symlink(e.dir.path().join("real"), e.dir.path().join("alias")).unwrap();
    let r = e.on("GET", "alias/in.jar").expect(200, "inner link").await;
    assert_eq!(r.body.as_ref(), b"inside");
}

#[tokio::test]
async fn methods_health_ready_metrics() {
    let e = env();
    for (method, uri, allow) in [
        ("POST", "/artifacts/default/x.jar", "GET, HEAD, PUT, DELETE"),
        ("PUT", "/artifacts/default/dir/", "GET, HEAD"),
        ("DELETE", "/healthz", "GET, HEAD"),
    ] {
        let r = e.req(method, uri).expect(405, uri).await;
        assert_eq!(r.h("allow"), Some(allow), "{method} {uri}");
        assert_eq!(r.error_code(), "unsupported", "{method} {uri}");
    }
    let r = e.req("GET", "/nope").expect(404, "no such endpoint").await;
    assert_eq!(r.error_code(), "not_found");
    e.req("GET", "/healthz").expect(200, "healthz").await;
    let r = e.req("GET", "/readyz").expect(200, "ready").await;
    assert_eq!(r.json()["status"], "ready");
    assert!(r.json().get("failing").is_none(), "nothing failing");
    e.put("m.jar", b"metrics").expect(201, "PUT").await;
    let m = e.req("GET", "/metrics").send().await;
    let m = String::from_utf8(m.body.to_vec()).unwrap();
    assert!(
        m.contains("artifact_gateway_http_requests_total{method=\"PUT\",status=\"201\"} 1"),
        "{m}"
    );
    // A mount whose storage is gone makes /readyz fail, naming it.
    std::fs::remove_dir_all(e.private_dir.path()).unwrap();
    let r = e.req("GET", "/readyz").expect(503, "not ready").await;
    let j = r.json();
    assert_eq!(j["status"], "not_ready");
    assert_eq!(j["mounts"]["default"]["ready"], true);
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
        read_only: false,
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
async fn signed_urls_read_one_artifact_until_they_expire() {
    let e = env_opts(true, Some(signer(&[("k2", KEY2), ("k1", KEY1)])));
    let jar = data(3000);
    e.req("PUT", "/artifacts/private/jobs/app.jar")
        .auth(ADMIN)
        .body(&jar)
        .expect(201, "PUT")
        .await;
    e.req("PUT", "/artifacts/private/jobs/other.jar")
        .auth(ADMIN)
        .body(b"other")
        .expect(201, "PUT")
        .await;

    // A reader signs through the API; the URL alone then reads that artifact, GET and HEAD.
    let r = e
        .req("POST", "/sign/private/jobs/app.jar?expires=2h")
        .auth(READER)
        .expect(200, "sign")
        .await;
    let doc = r.json();
    let url = doc["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("/artifacts/private/jobs/app.jar?ag-expires="),
        "{url}"
    );
    assert!(url.contains("ag-key=k2&ag-signature="), "{url}");
    let expires = doc["expires"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((now + 7190..=now + 7210).contains(&expires), "{expires}");
    let got = e.req("GET", &url).expect(200, "signed GET").await;
    assert_eq!(got.body, jar);
    e.req("HEAD", &url).expect(200, "signed HEAD").await;
    e.req("GET", &url)
        .header("range", "bytes=0-9")
        .expect(206, "signed ranged GET")
        .await;

    // A signature for private/jobs/app.jar by `key`, valid for `secs` from `ago` seconds ago.
    let app_signed = |key: (&str, &str), secs: u64, ago: u64| {
        let at = std::time::SystemTime::now() - Duration::from_secs(ago);
        let app = ArtifactPath::parse("jobs/app.jar").unwrap();
        let lifetime = Duration::from_secs(secs);
        signer(&[key]).sign("private", &app, lifetime, at).unwrap()
    };
    // A URL signed with the previous key still works (rotation).
    let old = app_signed(("k1", KEY1), 600, 0);
    e.req(
        "GET",
        &format!("/artifacts/private/jobs/app.jar?{}", old.query),
    )
    .expect(200, "previous key")
    .await;

    // Everything below is refused before any storage call.
    let before = e.calls.load(Ordering::SeqCst);
    let query = url.split_once('?').unwrap().1.to_string();
    let sig = query.rsplit_once('=').unwrap().1.to_string();
    let flipped = {
        let mut c: Vec<char> = sig.chars().collect();
        c[0] = if c[0] == 'A' { 'B' } else { 'A' };
        c.into_iter().collect::<String>()
    };
    let expired = app_signed(("k2", KEY2), 3600, 7200);
    let unknown_key = app_signed(("k9", KEY1), 600, 0);
    let refused_401 = [
        (
            format!("/artifacts/private/jobs/other.jar?{query}"),
            "another artifact",
        ),
        (
            format!("/artifacts/default/jobs/app.jar?{query}"),
            "another mount",
        ),
        (
            format!(
                "/artifacts/private/jobs/app.jar?{}",
                query.replace(&sig, &flipped)
            ),
            "a flipped signature",
        ),
        (
            format!(
                "/artifacts/private/jobs/app.jar?{}",
                query.replace(
                    &format!("ag-expires={expires}"),
                    &format!("ag-expires={}", expires + 86400)
                )
            ),
            "a later expiry",
        ),
        (
            format!("/artifacts/private/jobs/app.jar?{}", expired.query),
            "an expired URL",
        ),
        (
            format!("/artifacts/private/jobs/app.jar?{}", unknown_key.query),
            "an unknown key",
        ),
        (
            format!("/artifacts/private/jobs/app.jar?ag-expires={expires}&ag-key=k2"),
            "a missing signature",
        ),
    ];
    for (uri, why) in &refused_401 {
        for method in ["GET", "HEAD"] {
            let r = e.req(method, uri).expect(401, why).await;
            if method == "GET" {
                assert_eq!(r.error_code(), "unauthenticated", "{why}");
                assert!(r.h("www-authenticate").is_some(), "{why}");
            }
        }
    }
    let r = e
        .req(
            "GET",
            &format!("/artifacts/private/jobs/app.jar?{}", expired.query),
        )
        .send()
        .await;
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{:?}",
        r.json()
    );
    // A valid signature for another method or for a listing: 403.
    for (method, uri) in [
        ("PUT", url.clone()),
        ("DELETE", url.clone()),
        ("GET", format!("/artifacts/private/jobs/?{query}")),
    ] {
        let r = e
            .req(method, &uri)
            .auth(ADMIN)
            .body(b"x")
            .expect(403, method)
            .await;
        assert_eq!(r.error_code(), "permission_denied");
    }
    // Signing needs a token that may read the mount.
    e.req("POST", "/sign/private/jobs/app.jar")
        .expect(401, "anonymous sign")
        .await;
    e.req("POST", "/sign/private/jobs/app.jar")
        .auth("wrong")
        .expect(401, "bad token")
        .await;
    e.req("POST", "/sign/private/jobs/app.jar?expires=30d")
        .auth(READER)
        .expect(400, "over max_expires")
        .await;
    e.req("GET", "/sign/private/jobs/app.jar")
        .expect(405, "GET on /sign")
        .await;
    assert_eq!(
        e.calls.load(Ordering::SeqCst),
        before,
        "no refused signed request reached storage"
    );

    // Without signing keys: signing is 501 and any signed URL is 401.
    let plain = env();
    plain
        .req("POST", "/sign/default/app.jar")
        .auth(READER)
        .expect(501, "signing not configured")
        .await;
    plain
        .req("GET", &format!("/artifacts/default/app.jar?{query}"))
        .expect(401, "signed URL on a server without keys")
        .await;
}

#[tokio::test]
async fn request_heads_over_the_limit_get_a_json_431() {
    let e = env();
    e.put("a.jar", b"x").expect(201, "PUT").await;
    let big = "x".repeat(20 * 1024);
    let r = e
        .on("GET", "a.jar")
        .header("x-padding", big)
        .expect(431, "a 20 KiB head over the 16 KiB default")
        .await;
    assert_eq!(r.error_code(), "header_too_large");
    e.on("GET", "a.jar")
        .header("x-padding", "x".repeat(8 * 1024))
        .expect(200, "an 8 KiB head")
        .await;
}

#[tokio::test]
async fn whoami_says_what_the_caller_may_do() {
    let e = env();
    let whoami = |token: Option<&str>| {
        let req = e.req("GET", "/whoami");
        match token {
            Some(t) => req.auth(t),
            None => req,
        }
    };
    let v = whoami(None).expect(200, "anonymous").await.json();
    assert_eq!(v["authenticated"], false);
    assert_eq!(v["token"], Value::Null);
    assert_eq!(v["mounts"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["mounts"][0]["name"], "default");
    assert_eq!(v["mounts"][0]["read"], true);
    assert_eq!(v["mounts"][0]["write"], false);
    assert_eq!(v["mounts"][0]["anonymous_read"], true);
    assert_eq!(v["mounts"][0]["max_upload_size"], 1 << 20);

    let reader = whoami(Some(READER)).expect(200, "reader").await.json();
    assert_eq!(reader["token"], "reader");
    let access: Vec<_> = reader["mounts"]
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
        access,
        vec![
            ("default", true, false, false),
            ("private", true, false, false)
        ]
    );

    let admin = whoami(Some(ADMIN)).expect(200, "admin").await.json();
    assert_eq!(admin["authenticated"], true);
    assert!(admin["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["read"] == true && m["write"] == true && m["delete"] == true));

    let wrong = whoami(Some("nope"))
        .expect(401, "a token that matches none")
        .await;
    assert_eq!(wrong.error_code(), "unauthenticated");
    e.req("PUT", "/whoami").expect(405, "PUT /whoami").await;
}

#[tokio::test]
async fn web_page_and_hardening_headers() {
    let e = env();
    let page = e.req("GET", "/ui/").expect(200, "the page").await;
    assert_eq!(page.h("content-type"), Some("text/html; charset=utf-8"));
    let csp = page.h("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.h("x-content-type-options"), Some("nosniff"));
    assert!(String::from_utf8_lossy(&page.body).contains("<script type=\"module\" src=\"app.js\">"));
    let js = e.req("GET", "/ui/sha256.js").expect(200, "a module").await;
    assert_eq!(js.h("content-type"), Some("text/javascript; charset=utf-8"));
    let root = e.req("GET", "/ui").expect(308, "/ui redirects").await;
    assert_eq!(root.h("location"), Some("/ui/"));
    let missing = e
        .req("GET", "/ui/missing.js")
        .expect(404, "unknown asset")
        .await;
    assert_eq!(missing.error_code(), "not_found");
    e.req("POST", "/ui/").expect(405, "POST /ui/").await;

    // Artifacts (and every other response) are sandboxed and never sniffed.
    e.put("x/page.html", b"<script>1</script>")
        .expect(201, "an HTML artifact")
        .await;
    let art = e.on("GET", "x/page.html").expect(200, "served").await;
    assert_eq!(art.h("content-security-policy"), Some("sandbox"));
    assert_eq!(art.h("x-content-type-options"), Some("nosniff"));

    // Browsers without JavaScript get an HTML index of the mounts.
    let mounts = e
        .req("GET", "/artifacts/")
        .header("accept", "text/html")
        .expect(200, "HTML mounts")
        .await;
    assert_eq!(mounts.h("content-type"), Some("text/html; charset=utf-8"));
    let html = String::from_utf8_lossy(&mounts.body);
    assert!(
        html.contains("<a href=\"/artifacts/default/\">default/</a>"),
        "{html}"
    );
    assert!(!html.contains("private"), "{html}");
}
