//! A `Storage` that talks to a running gateway over HTTP, so the conformance suite exercises the
//! HTTP API (routes, headers, status codes, streaming) exactly as it exercises a backend.
//! Statuses map back to the error kinds they stand for, one for one: a 404 listing stays
//! `NotFound` (it is not turned into an empty page).

use std::time::SystemTime;

use artifact_gateway::storage::{
    ArtifactPath, ByteStream, Capabilities, Entry, GetOptions, GetResult, ListOptions, ListPage,
    Meta, PutMode, PutResult, Sha256, Storage, Upload,
};
use artifact_gateway::{Error, ErrorKind, Result};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use reqwest::header;

#[derive(Debug)]
pub struct HttpStorage {
    pub base: String,
    pub mount: String,
    pub token: Option<String>,
    pub caps: Capabilities,
    client: reqwest::Client,
}

impl HttpStorage {
    pub fn new(base: &str, mount: &str, token: Option<&str>, caps: Capabilities) -> HttpStorage {
        HttpStorage {
            base: base.trim_end_matches('/').to_string(),
            mount: mount.to_string(),
            token: token.map(str::to_string),
            caps,
            client: reqwest::Client::builder().no_gzip().build().unwrap(),
        }
    }

    fn url(&self, path: &ArtifactPath, dir: bool) -> String {
        let segs: Vec<String> = path
            .segments()
            .map(|s| percent_encoding::utf8_percent_encode(s, SEG).to_string())
            .collect();
        let mut u = format!("{}/artifacts/{}/{}", self.base, self.mount, segs.join("/"));
        if dir && !path.is_root() {
            u.push('/');
        }
        u
    }

    fn req(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let r = self.client.request(method, url);
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends a bodiless request for an artifact and turns an error status into its kind.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &ArtifactPath,
    ) -> Result<reqwest::Response> {
        check(
            self.req(method, &self.url(path, false))
                .send()
                .await
                .map_err(net)?,
        )
        .await
    }
}

const SEG: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

async fn check(resp: reqwest::Response) -> Result<reqwest::Response> {
    let status = resp.status();
    if status.is_success() || status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(resp);
    }
    let kind = match status.as_u16() {
        404 => ErrorKind::NotFound,
        412 => ErrorKind::PreconditionFailed,
        416 => ErrorKind::RangeNotSatisfiable,
        413 => ErrorKind::TooLarge,
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::PermissionDenied,
        502 => ErrorKind::BackendAuth,
        503 => ErrorKind::BackendUnavailable,
        504 => ErrorKind::Timeout,
        400 => ErrorKind::InvalidInput,
        _ => ErrorKind::Internal,
    };
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let code = body["error"]["code"].as_str().unwrap_or("");
    let kind = match code {
        "digest_mismatch" => ErrorKind::DigestMismatch,
        "invalid_path" => ErrorKind::InvalidPath,
        "aborted" => ErrorKind::Aborted,
        _ => kind,
    };
    Err(Error::new(kind, format!("HTTP {status}: {body}")))
}

fn meta_from(path: &ArtifactPath, h: &header::HeaderMap, size: u64) -> Meta {
    let s = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    Meta {
        path: path.clone(),
        size,
        last_modified: s("last-modified")
            .and_then(|v| httpdate::parse_http_date(&v).ok())
            .unwrap_or(SystemTime::UNIX_EPOCH),
        etag: s("etag")
            .map(|e| e.trim_matches('"').to_string())
            .unwrap_or_default(),
        sha256: s("repr-digest").and_then(|v| Sha256::from_digest_field(&v).ok().flatten()),
        content_type: s("content-type"),
    }
}

fn net(e: reqwest::Error) -> Error {
    Error::new(ErrorKind::BackendUnavailable, format!("HTTP client: {e}"))
}

#[async_trait]
impl Storage for HttpStorage {
    fn describe(&self) -> String {
        format!("http:{}/artifacts/{}", self.base, self.mount)
    }

    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    async fn head(&self, path: &ArtifactPath) -> Result<Meta> {
        let resp = self.send(reqwest::Method::HEAD, path).await?;
        let len = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert_eq!(
            resp.headers()
                .get(header::ACCEPT_RANGES)
                .map(|v| v.to_str().unwrap()),
            Some("bytes")
        );
        Ok(meta_from(path, resp.headers(), len))
    }

    async fn get(&self, path: &ArtifactPath, opts: GetOptions) -> Result<GetResult> {
        let mut req = self.req(reqwest::Method::GET, &self.url(path, false));
        if let Some(r) = &opts.range {
            if r.start >= r.end {
                return Err(Error::new(ErrorKind::RangeNotSatisfiable, "empty range"));
            }
            req = req.header(header::RANGE, format!("bytes={}-{}", r.start, r.end - 1));
        }
        if let Some(e) = &opts.if_match {
            req = req.header(header::IF_MATCH, format!("\"{e}\""));
        }
        let resp = check(req.send().await.map_err(net)?).await?;
        let h = resp.headers().clone();
        let body_len: u64 = h
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (range, size) = match h.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()) {
            Some(cr) => {
                // bytes a-b/size
                let rest = cr.trim_start_matches("bytes ");
                let (ab, size) = rest.split_once('/').unwrap();
                let (a, b) = ab.split_once('-').unwrap();
                (
                    a.parse::<u64>().unwrap()..b.parse::<u64>().unwrap() + 1,
                    size.parse::<u64>().unwrap(),
                )
            }
            None => (0..body_len, body_len),
        };
        if opts.range.is_some() {
            assert_eq!(resp.status(), reqwest::StatusCode::PARTIAL_CONTENT);
        }
        let meta = meta_from(path, &h, size);
        let body: ByteStream = resp.bytes_stream().map_err(net).boxed();
        Ok(GetResult { meta, range, body })
    }

    async fn put(&self, path: &ArtifactPath, upload: Upload) -> Result<PutResult> {
        let Upload { body, opts } = upload;
        let mut req = self.req(reqwest::Method::PUT, &self.url(path, false));
        if let Some(d) = opts.sha256 {
            req = req.header("x-checksum-sha256", d.to_hex());
        }
        if let Some(ct) = &opts.content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        match &opts.mode {
            PutMode::Overwrite => {}
            PutMode::Create => req = req.header(header::IF_NONE_MATCH, "*"),
            PutMode::Update { etag } => req = req.header(header::IF_MATCH, format!("\"{etag}\"")),
        }
        let stream = body.map_err(|e| std::io::Error::other(e.to_string()));
        let resp = match req.body(reqwest::Body::wrap_stream(stream)).send().await {
            Ok(r) => r,
            // The body failed on our side: the request was aborted, as a vanished client would.
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Aborted,
                    format!("upload aborted: {e}"),
                ))
            }
        };
        let resp = check(resp).await?;
        let created = resp.status() == reqwest::StatusCode::CREATED;
        let h = resp.headers().clone();
        let v: serde_json::Value = resp.json().await.map_err(net)?;
        assert_eq!(
            v["created"].as_bool(),
            Some(created),
            "status and body agree on created"
        );
        let mut meta = meta_from(path, &h, v["size"].as_u64().unwrap());
        meta.sha256 = v["sha256"].as_str().map(|s| Sha256::from_hex(s).unwrap());
        meta.content_type = v["content_type"].as_str().map(str::to_string);
        Ok(PutResult { meta, created })
    }

    async fn delete(&self, path: &ArtifactPath) -> Result<()> {
        let resp = self.send(reqwest::Method::DELETE, path).await?;
        assert_eq!(resp.status(), reqwest::StatusCode::NO_CONTENT);
        Ok(())
    }

    async fn list(&self, dir: &ArtifactPath, opts: ListOptions) -> Result<ListPage> {
        let mut req = self
            .req(reqwest::Method::GET, &self.url(dir, true))
            .header(header::ACCEPT, "application/json");
        let mut q = vec![("limit", opts.limit.to_string())];
        if let Some(a) = &opts.after {
            q.push(("after", a.clone()));
        }
        req = req.query(&q);
        let resp = check(req.send().await.map_err(net)?).await?;
        let v: serde_json::Value = resp.json().await.map_err(net)?;
        let entries = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| Entry {
                name: e["name"].as_str().unwrap().to_string(),
                is_dir: e["is_dir"].as_bool().unwrap(),
                size: e["size"].as_u64(),
                last_modified: e["last_modified"]
                    .as_str()
                    .map(|t| humantime::parse_rfc3339(t).unwrap()),
                etag: e["etag"].as_str().map(str::to_string),
                sha256: e["sha256"].as_str().map(|s| Sha256::from_hex(s).unwrap()),
            })
            .collect();
        Ok(ListPage {
            entries,
            next_after: v["next_after"].as_str().map(str::to_string),
        })
    }

    async fn ready(&self) -> Result<()> {
        let resp = self
            .client
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .map_err(net)?;
        check(resp).await.map(|_| ())
    }
}
