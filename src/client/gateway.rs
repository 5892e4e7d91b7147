//! The gateway's HTTP API as typed calls, for the admin commands: put, list (following
//! pagination), stat, delete, and the mounts.

use std::path::Path;

use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{header, status_error, HttpClient};
use crate::error::{Error, ErrorKind, Result};
use crate::storage::digest::hash_file;
use crate::storage::path::encode_url_segment;
use crate::storage::{ArtifactPath, Sha256};

/// `<base>/artifacts/<mount>/<path>` (with a trailing `/` for a directory).
pub fn artifact_url(base: &Url, t: &Target, dir: bool) -> Url {
    let mut path = base.path().trim_end_matches('/').to_string();
    path.push_str("/artifacts/");
    path.push_str(&encode_url_segment(&t.mount));
    path.push('/');
    path.push_str(&t.path.to_url_encoded());
    if dir && !t.path.is_root() {
        path.push('/');
    }
    let mut url = base.clone();
    url.set_path(&path);
    url.set_query(None);
    url
}

/// Entries asked for per listing page.
const PAGE: usize = 1000;

/// `MOUNT/PATH` as given on the command line, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub mount: String,
    pub path: ArtifactPath,
}

impl Target {
    /// Parses `MOUNT[/PATH]`. With `need_path`, an artifact path is required.
    pub fn parse(s: &str, need_path: bool) -> Result<Target> {
        let s = s.trim_start_matches('/');
        let (mount, path) = s.split_once('/').unwrap_or((s, ""));
        if mount.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{s:?}: expected MOUNT/PATH, e.g. default/jobs/wordcount.jar"),
            ));
        }
        let path = ArtifactPath::parse(path)?;
        if need_path && path.is_root() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{s:?}: expected MOUNT/PATH, not just a mount"),
            ));
        }
        Ok(Target {
            mount: mount.to_string(),
            path,
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_root() {
            write!(f, "{}/", self.mount)
        } else {
            write!(f, "{}/{}", self.mount, self.path)
        }
    }
}

/// What the server answers to a put.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutReceipt {
    pub path: String,
    pub size: u64,
    pub etag: String,
    pub sha256: Option<String>,
    pub content_type: Option<String>,
    pub created: bool,
}

/// One listing entry, as the server sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    pub name: String,
    pub is_dir: bool,
    pub size: Option<u64>,
    pub last_modified: Option<String>,
    pub etag: Option<String>,
    pub sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ListPageDoc {
    mount: String,
    path: String,
    entries: Vec<ListEntry>,
    next_after: Option<String>,
}

/// A whole directory listing (every page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing {
    pub mount: String,
    pub path: String,
    pub entries: Vec<ListEntry>,
}

/// One artifact's metadata, from a HEAD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stat {
    pub mount: String,
    pub path: String,
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_type: Option<String>,
    pub sha256: Option<String>,
}

/// One mount the caller may read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountInfo {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Deserialize)]
struct MountsDoc {
    mounts: Vec<MountInfo>,
}

/// How to put.
#[derive(Debug, Clone, Default)]
pub struct PutParams {
    /// Fail with 412 if the artifact exists (`If-None-Match: *`).
    pub no_overwrite: bool,
    pub content_type: Option<String>,
}

/// The gateway's API at one base URL.
#[derive(Debug, Clone)]
pub struct GatewayClient {
    http: HttpClient,
    base: Url,
}

impl GatewayClient {
    pub fn new(http: HttpClient, base: Url) -> Result<GatewayClient> {
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("--server {base}: use http://HOST:PORT or https://HOST:PORT"),
            ));
        }
        Ok(GatewayClient { http, base })
    }

    /// `<base>/artifacts/<mount>/<path>` (with a trailing `/` for a directory).
    pub fn url(&self, t: &Target, dir: bool) -> Url {
        artifact_url(&self.base, t, dir)
    }

    /// Asks the server for a signed URL reading `target` for `lifetime` (`POST /sign/…`); returns
    /// the absolute URL and its expiry (Unix seconds).
    pub async fn sign(&self, target: &Target, lifetime: std::time::Duration) -> Result<(Url, u64)> {
        let what = format!("sign {target}");
        let mut url = artifact_url(&self.base, target, false);
        let path = url.path().replacen("/artifacts/", "/sign/", 1);
        url.set_path(&path);
        url.set_query(Some(&format!("expires={}s", lifetime.as_secs())));
        let resp = self
            .http
            .send(self.http.request(Method::POST, url), &what)
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &what).await);
        }
        #[derive(Deserialize)]
        struct SignedDoc {
            url: String,
            expires: u64,
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| super::transport_error(&e, &what))?;
        let doc: SignedDoc = serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::BackendUnavailable,
                format!("{what}: the server's answer is not the expected JSON: {e}"),
            )
        })?;
        let full = self.base.join(&doc.url).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("{what}: the server answered an unusable URL: {e}"),
            )
        })?;
        Ok((full, doc.expires))
    }

    /// `METHOD` on one artifact, without a body.
    async fn send(&self, method: Method, target: &Target, what: &str) -> Result<reqwest::Response> {
        let req = self.http.request(method, self.url(target, false));
        self.http.send(req, what).await
    }

    /// Uploads a file: a first streaming pass computes its SHA-256, sent as
    /// `X-Checksum-Sha256`; the second pass streams the body (never read whole). The server
    /// refuses a body whose digest differs, so a file changing in between cannot be stored.
    pub async fn put_file(
        &self,
        file: &Path,
        target: &Target,
        params: &PutParams,
    ) -> Result<PutReceipt> {
        let md = tokio::fs::metadata(file)
            .await
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("{}: {e}", file.display())))?;
        if !md.is_file() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} is not a regular file", file.display()),
            ));
        }
        let (sha256, len) = hash_file(file, None).await?;
        let f = tokio::fs::File::open(file)
            .await
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("{}: {e}", file.display())))?;
        let body =
            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024));
        let what = format!("PUT {target}");
        let mut req = self
            .http
            .request(Method::PUT, self.url(target, false))
            .header(CONTENT_LENGTH, len)
            .header("x-checksum-sha256", sha256.to_hex())
            .header(ACCEPT, "application/json")
            .body(body);
        if params.no_overwrite {
            req = req.header(IF_NONE_MATCH, "*");
        }
        if let Some(ct) = &params.content_type {
            req = req.header(CONTENT_TYPE, ct.as_str());
        }
        let resp = self.http.send(req, &what).await?;
        if !resp.status().is_success() {
            let mut err = status_error(resp, &what).await;
            if err.kind() == ErrorKind::PreconditionFailed && params.no_overwrite {
                err = Error::new(
                    err.kind(),
                    format!(
                        "{} (it already exists and --no-overwrite was given)",
                        err.message()
                    ),
                );
            }
            return Err(err);
        }
        let receipt: PutReceipt = read_json(resp, &what).await?;
        if let Some(stored) = receipt.sha256.as_deref() {
            if Sha256::from_hex(stored).ok() != Some(sha256) {
                return Err(Error::new(
                    ErrorKind::DigestMismatch,
                    format!(
                        "{what}: the server recorded SHA-256 {stored}, the file hashes to {sha256}"
                    ),
                ));
            }
        }
        Ok(receipt)
    }

    /// Lists one directory level, following `next_after` to the end.
    pub async fn list(&self, target: &Target) -> Result<Listing> {
        let what = format!("list {target}");
        let mut out = Listing {
            mount: target.mount.clone(),
            path: target.path.as_dir_prefix(),
            entries: Vec::new(),
        };
        let mut after: Option<String> = None;
        loop {
            let mut url = self.url(target, true);
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("limit", &PAGE.to_string());
                if let Some(a) = &after {
                    q.append_pair("after", a);
                }
            }
            let req = self
                .http
                .request(Method::GET, url)
                .header(ACCEPT, "application/json");
            let resp = self.http.send(req, &what).await?;
            if !resp.status().is_success() {
                return Err(status_error(resp, &what).await);
            }
            let page: ListPageDoc = read_json(resp, &what).await?;
            out.mount = page.mount;
            out.path = page.path;
            out.entries.extend(page.entries);
            match page.next_after {
                Some(next) if Some(&next) != after.as_ref() => after = Some(next),
                _ => return Ok(out),
            }
        }
    }

    /// The mounts the caller may read.
    pub async fn mounts(&self) -> Result<Vec<MountInfo>> {
        let mut url = self.base.clone();
        url.set_path(&format!(
            "{}/artifacts/",
            self.base.path().trim_end_matches('/')
        ));
        let what = "list mounts";
        let resp = self
            .http
            .send(
                self.http
                    .request(Method::GET, url)
                    .header(ACCEPT, "application/json"),
                what,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(resp, what).await);
        }
        let doc: MountsDoc = read_json(resp, what).await?;
        Ok(doc.mounts)
    }

    /// One artifact's metadata (a HEAD).
    pub async fn stat(&self, target: &Target) -> Result<Stat> {
        let what = format!("stat {target}");
        let resp = self.send(Method::HEAD, target, &what).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{what}: HTTP 404: no such artifact"),
            ));
        }
        if !resp.status().is_success() {
            return Err(status_error(resp, &what).await);
        }
        let h = resp.headers();
        let sha256 = match header(h, "repr-digest") {
            Some(v) => Sha256::from_digest_field(v)
                .ok()
                .flatten()
                .map(|d| d.to_hex()),
            None => None,
        };
        let last_modified = header(h, LAST_MODIFIED.as_str())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .map(|t| humantime::format_rfc3339_seconds(t).to_string());
        Ok(Stat {
            mount: target.mount.clone(),
            path: target.path.to_string(),
            size: header(h, CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok()),
            etag: header(h, ETAG.as_str()).map(|e| e.trim_matches('"').to_string()),
            last_modified,
            content_type: header(h, CONTENT_TYPE.as_str()).map(str::to_string),
            sha256,
        })
    }

    /// Deletes an artifact. `Ok(false)` when it did not exist and `missing_ok` is set.
    pub async fn delete(&self, target: &Target, missing_ok: bool) -> Result<bool> {
        let what = format!("rm {target}");
        let resp = self.send(Method::DELETE, target, &what).await?;
        if resp.status().is_success() {
            return Ok(true);
        }
        let err = status_error(resp, &what).await;
        if missing_ok && err.kind() == ErrorKind::NotFound {
            return Ok(false);
        }
        Err(err)
    }
}

/// A successful response's JSON body.
async fn read_json<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
    what: &str,
) -> Result<T> {
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| super::transport_error(&e, what))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{what}: unexpected answer from the server: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_urls() {
        let t = Target::parse("default/jobs/a b+c.jar", true).unwrap();
        assert_eq!(
            (t.mount.as_str(), t.path.as_str()),
            ("default", "jobs/a b+c.jar")
        );
        assert!(Target::parse("default", true).is_err());
        assert!(Target::parse("default/../x", true).is_err());
        assert!(Target::parse("/x", false).unwrap().path.is_root());
        let http = HttpClient::new(&Default::default()).unwrap();
        let gw = GatewayClient::new(http, Url::parse("https://gw.example/base/").unwrap()).unwrap();
        assert_eq!(
            gw.url(&t, false).as_str(),
            "https://gw.example/base/artifacts/default/jobs/a%20b%2Bc.jar"
        );
        assert_eq!(
            gw.url(&Target::parse("m/d", false).unwrap(), true).as_str(),
            "https://gw.example/base/artifacts/m/d/"
        );
        assert_eq!(
            gw.url(&Target::parse("m", false).unwrap(), true).as_str(),
            "https://gw.example/base/artifacts/m/"
        );
    }
}
