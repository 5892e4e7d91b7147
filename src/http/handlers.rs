//! Thin handlers: authorize through the service, evaluate conditions, call storage, return an
//! [`Outcome`]. No status codes or header formatting here beyond reading request headers.

use http::{header, HeaderMap, Method, StatusCode};
use serde_json::json;

use super::conditional::{self, Precondition, RangeDecision};
use super::listing;
use super::render::Outcome;
use crate::config::Scope;
use crate::error::{Error, ErrorKind, Result};
use crate::service::Gateway;
use crate::storage::{
    ArtifactPath, ByteStream, GetOptions, ListOptions, PutMode, PutOptions, Sha256,
};

/// Attempts at a consistent read when the artifact changes between HEAD and GET.
const READ_ATTEMPTS: usize = 3;

pub async fn get(
    gw: &Gateway,
    cred: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
    mount: &str,
    path: &ArtifactPath,
    head: bool,
) -> Result<Outcome> {
    let (m, _who) = gw.authorize(mount, Scope::Read, cred)?;
    if !head && !headers.contains_key(header::RANGE) {
        // The common case (the Flink operator's plain GET): one storage call; the conditions are
        // evaluated on the metadata of the very stream being served.
        let res = gw.get(m, path, GetOptions::default()).await?;
        return match conditional::evaluate(method, headers, Some(&res.meta)) {
            Precondition::Proceed => Ok(Outcome::Full {
                meta: res.meta,
                body: Some(res.body),
            }),
            Precondition::NotModified => Ok(Outcome::NotModified { meta: res.meta }),
            Precondition::Failed => Err(precondition_failed(path)),
        };
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let meta = gw.head(m, path).await?;
        match conditional::evaluate(method, headers, Some(&meta)) {
            Precondition::Proceed => {}
            Precondition::NotModified => return Ok(Outcome::NotModified { meta }),
            Precondition::Failed => return Err(precondition_failed(path)),
        }
        let decision = conditional::range(headers, &meta);
        let range = match decision {
            RangeDecision::Unsatisfiable => return Ok(Outcome::Unsatisfiable { size: meta.size }),
            RangeDecision::Partial(r) => Some(r),
            RangeDecision::Full => None,
        };
        if head {
            return Ok(match range {
                Some(range) => Outcome::Partial {
                    meta,
                    range,
                    body: None,
                },
                None => Outcome::Full { meta, body: None },
            });
        }
        // Pin the version whose headers we computed: a concurrent replace is retried, never mixed.
        let opts = GetOptions {
            range: range.clone(),
            if_match: Some(meta.etag.clone()),
        };
        match gw.get(m, path, opts).await {
            Ok(res) => {
                return Ok(match range {
                    Some(_) => Outcome::Partial {
                        meta: res.meta,
                        range: res.range,
                        body: Some(res.body),
                    },
                    None => Outcome::Full {
                        meta: res.meta,
                        body: Some(res.body),
                    },
                })
            }
            Err(e) if e.kind() == ErrorKind::PreconditionFailed && attempt < READ_ATTEMPTS => {
                continue
            }
            Err(e) => return Err(e),
        }
    }
}

pub async fn put(
    gw: &Gateway,
    cred: Option<&str>,
    headers: &HeaderMap,
    mount: &str,
    path: &ArtifactPath,
    body: ByteStream,
) -> Result<Outcome> {
    let (m, _who) = gw.authorize(mount, Scope::Write, cred)?;
    let declared = declared_digest(headers)?;
    if let Some(len) = content_length(headers)? {
        if len > m.max_upload_size {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "Content-Length {len} is over the mount's limit of {} bytes",
                    m.max_upload_size
                ),
            )
            .with_mount(mount));
        }
    }
    let mode = put_mode(gw, m, headers, path).await?;
    let content_type = header_str(headers, header::CONTENT_TYPE)?
        .map(|s| s.trim().to_string())
        .filter(|ct| {
            // curl --data-binary sends a form type by default; octet-stream says nothing.
            !ct.is_empty()
                && !ct.starts_with("application/x-www-form-urlencoded")
                && !ct.starts_with("application/octet-stream")
        });
    let opts = PutOptions {
        mode,
        content_type,
        sha256: declared,
        max_size: None,
    };
    let res = gw.put(m, path, body, opts).await?;
    let location = listing::url_path(mount, path, false);
    Ok(Outcome::Stored {
        meta: res.meta,
        created: res.created,
        location,
    })
}

pub async fn delete(
    gw: &Gateway,
    cred: Option<&str>,
    headers: &HeaderMap,
    mount: &str,
    path: &ArtifactPath,
) -> Result<Outcome> {
    let (m, _who) = gw.authorize(mount, Scope::Delete, cred)?;
    if headers.contains_key(header::IF_MATCH) || headers.contains_key(header::IF_UNMODIFIED_SINCE) {
        let meta = gw.head(m, path).await?;
        if conditional::evaluate(&Method::DELETE, headers, Some(&meta)) != Precondition::Proceed {
            return Err(precondition_failed(path));
        }
    }
    gw.delete(m, path).await?;
    Ok(Outcome::Deleted)
}

pub async fn list(
    gw: &Gateway,
    cred: Option<&str>,
    headers: &HeaderMap,
    mount: &str,
    dir: &ArtifactPath,
    limit: usize,
    after: Option<String>,
) -> Result<Outcome> {
    let (m, _who) = gw.authorize(mount, Scope::Read, cred)?;
    let first_page = after.is_none();
    let page = gw.list(m, dir, ListOptions { limit, after }).await?;
    if page.entries.is_empty() && first_page && !dir.is_root() {
        return Err(Error::new(ErrorKind::NotFound, "no such directory")
            .with_mount(mount)
            .with_path(dir.as_str()));
    }
    if wants_html(headers) {
        return Ok(Outcome::Html(listing::html_page(mount, dir, &page, limit)));
    }
    Ok(Outcome::Json {
        status: StatusCode::OK,
        value: listing::json_page(mount, dir, &page),
    })
}

pub fn mounts(gw: &Gateway, cred: Option<&str>, headers: &HeaderMap) -> Outcome {
    let readable = gw.readable_mounts(cred);
    if wants_html(headers) {
        let names: Vec<&str> = readable.iter().map(|m| m.name.as_str()).collect();
        return Outcome::Html(listing::html_mounts(&names));
    }
    let mounts: Vec<_> = readable
        .into_iter()
        .map(|m| json!({ "name": m.name, "url": listing::url_path(&m.name, &ArtifactPath::root(), true) }))
        .collect();
    Outcome::Json {
        status: StatusCode::OK,
        value: json!({ "mounts": mounts }),
    }
}

/// Who the caller is and what it may do on each mount it may use (the web page shows what the
/// token may not do as disabled). A token that matches none is a 401, like everywhere else.
pub fn whoami(gw: &Gateway, cred: Option<&str>) -> Result<Outcome> {
    let (who, mounts) = gw.capabilities(cred)?;
    let mounts: Vec<_> = mounts
        .into_iter()
        .map(|(m, scopes)| {
            json!({
                "name": m.name,
                "url": listing::url_path(&m.name, &ArtifactPath::root(), true),
                "anonymous_read": m.anonymous_read,
                "max_upload_size": m.max_upload_size,
                "read": scopes.contains(&Scope::Read),
                "write": scopes.contains(&Scope::Write),
                "delete": scopes.contains(&Scope::Delete),
            })
        })
        .collect();
    let token = match who {
        crate::service::Principal::Anonymous => None,
        crate::service::Principal::Token(name) => Some(name),
    };
    Ok(Outcome::Json {
        status: StatusCode::OK,
        value: json!({ "authenticated": token.is_some(), "token": token, "mounts": mounts }),
    })
}

pub async fn readyz(gw: &Gateway) -> Outcome {
    let results = gw.readiness().await;
    let mut all_ok = true;
    let mut detail = serde_json::Map::new();
    for (name, r) in results {
        match r {
            Ok(()) => {
                detail.insert(name, json!({ "ready": true }));
            }
            Err(e) => {
                all_ok = false;
                detail.insert(
                    name,
                    json!({ "ready": false, "code": e.kind().code(), "message": e.message() }),
                );
            }
        }
    }
    let failing: Vec<String> = detail
        .iter()
        .filter(|(_, v)| v["ready"] == json!(false))
        .map(|(k, _)| k.clone())
        .collect();
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut value =
        json!({ "status": if all_ok { "ready" } else { "not_ready" }, "mounts": detail });
    if !all_ok {
        value["failing"] = json!(failing);
    }
    Outcome::Json { status, value }
}

/// Reads the bearer token. No header: `None`. Another scheme or a broken value: 401.
pub fn bearer(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| {
        Error::new(
            ErrorKind::Unauthenticated,
            "the Authorization header is not ASCII",
        )
    })?;
    let (scheme, token) = s.trim().split_once(' ').unwrap_or((s, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Error::new(
            ErrorKind::Unauthenticated,
            "the Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(Some(token.trim().to_string()))
}

/// The SHA-256 a client declared, from `Content-Digest`, `Repr-Digest` or `X-Checksum-Sha256`.
/// Several that disagree, or a malformed one, are a 400.
pub fn declared_digest(headers: &HeaderMap) -> Result<Option<Sha256>> {
    let mut found: Option<Sha256> = None;
    let mut add = |d: Sha256| -> Result<()> {
        match found {
            Some(prev) if prev != d => Err(Error::new(
                ErrorKind::InvalidInput,
                "the request declares two different SHA-256 digests",
            )),
            _ => {
                found = Some(d);
                Ok(())
            }
        }
    };
    for name in ["content-digest", "repr-digest"] {
        if let Some(v) = header_str(headers, header::HeaderName::from_static(name))? {
            if let Some(d) = Sha256::from_digest_field(v).map_err(|e| prefix(e, name))? {
                add(d)?;
            }
        }
    }
    if let Some(v) = header_str(
        headers,
        header::HeaderName::from_static("x-checksum-sha256"),
    )? {
        add(Sha256::from_hex(v).map_err(|e| prefix(e, "x-checksum-sha256"))?)?;
    }
    Ok(found)
}

async fn put_mode(
    gw: &Gateway,
    m: &crate::service::Mount,
    headers: &HeaderMap,
    path: &ArtifactPath,
) -> Result<PutMode> {
    if let Some(v) = header_str(headers, header::IF_NONE_MATCH)? {
        if v.trim() != "*" {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "on PUT, If-None-Match supports only `*` (create-only)",
            ));
        }
        if headers.contains_key(header::IF_MATCH) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "If-Match and If-None-Match cannot be combined",
            ));
        }
        return Ok(PutMode::Create);
    }
    let Some(v) = header_str(headers, header::IF_MATCH)? else {
        return Ok(PutMode::Overwrite);
    };
    let v = v.trim();
    let tags: Vec<&str> = v.split(',').map(str::trim).collect();
    if tags.len() == 1 && tags[0] != "*" {
        let tag = tags[0];
        let etag = tag
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "If-Match must be `*` or a quoted strong entity tag",
                )
            })?;
        return Ok(PutMode::Update {
            etag: etag.to_string(),
        });
    }
    // `*` or a list: resolve against the current version, then guard on it.
    let current = match gw.head(m, path).await {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(precondition_failed(path)),
        Err(e) => return Err(e),
    };
    if conditional::evaluate(&Method::PUT, headers, Some(&current)) != Precondition::Proceed {
        return Err(precondition_failed(path));
    }
    Ok(PutMode::Update { etag: current.etag })
}

fn content_length(headers: &HeaderMap) -> Result<Option<u64>> {
    match header_str(headers, header::CONTENT_LENGTH)? {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::new(ErrorKind::InvalidInput, "Content-Length is not a number")),
    }
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html") && !a.contains("application/json"))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>> {
    match headers.get(&name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("the {name} header is not visible ASCII"),
            )
        }),
    }
}

fn prefix(e: Error, header: &str) -> Error {
    Error::new(e.kind(), format!("{header}: {}", e.message()))
}

fn precondition_failed(path: &ArtifactPath) -> Error {
    Error::new(
        ErrorKind::PreconditionFailed,
        "a precondition (If-Match, If-None-Match, If-Unmodified-Since) failed",
    )
    .with_path(path.as_str())
}
