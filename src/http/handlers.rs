//! Thin handlers on a mount the caller was authorized for (`super::dispatch` does that, once):
//! evaluate the request's conditions, call the service, return an [`Outcome`]. No status codes and no response headers here: they read
//! request headers only, and [`super::render`] decides every status.

use http::{header, HeaderMap, Method};
use serde_json::json;

use super::conditional::{self, Precondition, RangeDecision};
use super::listing;
use super::render::Outcome;
use crate::error::{Error, ErrorKind, Result};
use crate::service::{Gateway, Mount, Plan, Read, Scope};
use crate::storage::{
    ArtifactPath, ByteStream, GetOptions, ListOptions, PutMode, PutOptions, Sha256, Upload,
};

#[allow(clippy::too_many_arguments)]
pub async fn get(
    m: &Mount,
    gw: &Gateway,
    method: &Method,
    headers: &HeaderMap,
    path: &ArtifactPath,
    head: bool,
) -> Result<Outcome> {
    if !head && !headers.contains_key(header::RANGE) && !conditional::has_conditions(headers) {
        // The common case (the Flink operator's plain GET): one storage call. A conditional GET
        // takes the path below instead: its answer may need no body (304, 412), and opening one
        // would start a cache fill of an object nobody downloads.
        let res = gw.get(m, path, GetOptions::default()).await?;
        return Ok(Outcome::Full {
            meta: res.meta,
            body: Some(res.body),
        });
    }
    let read = gw
        .read_consistent(m, path, |meta| {
            match conditional::evaluate(method, headers, Some(&meta)) {
                Precondition::Proceed => {}
                Precondition::NotModified => return Plan::Answer(Outcome::NotModified { meta }),
                Precondition::Failed => return Plan::Answer(precondition_failed(path)),
            }
            match (conditional::range(headers, &meta), head) {
                (RangeDecision::Unsatisfiable, _) => {
                    Plan::Answer(Outcome::Unsatisfiable { size: meta.size })
                }
                (RangeDecision::Partial(range), true) => Plan::Answer(Outcome::Partial {
                    meta,
                    range,
                    body: None,
                }),
                (RangeDecision::Full, true) => Plan::Answer(Outcome::Full { meta, body: None }),
                (RangeDecision::Partial(range), false) => Plan::Read(Some(range)),
                (RangeDecision::Full, false) => Plan::Read(None),
            }
        })
        .await?;
    Ok(match read {
        Read::Answered(outcome) => outcome,
        Read::Body {
            result,
            ranged: true,
        } => Outcome::Partial {
            meta: result.meta,
            range: result.range,
            body: Some(result.body),
        },
        Read::Body {
            result,
            ranged: false,
        } => Outcome::Full {
            meta: result.meta,
            body: Some(result.body),
        },
    })
}

/// `POST /sign/<mount>/<path>`: the path and query of a signed URL, relative to the base URL.
pub fn sign(
    gw: &Gateway,
    cred: Option<&str>,
    mount: &str,
    path: &ArtifactPath,
    expires: Option<&str>,
) -> Result<Outcome> {
    // Who asks is checked before what they ask for (401/403 before 400).
    gw.authorize_signing(mount, cred)?;
    let lifetime = super::routes::sign_lifetime(expires)?;
    let signed = gw.sign(mount, path, lifetime, cred)?;
    let url = format!("{}?{}", listing::url_path(mount, path, false), signed.query);
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(signed.expires);
    Ok(Outcome::Json(json!({
        "url": url,
        "expires": signed.expires,
        "expires_at": humantime::format_rfc3339_seconds(at).to_string(),
    })))
}

pub async fn put(
    m: &Mount,
    gw: &Gateway,
    headers: &HeaderMap,
    path: &ArtifactPath,
    body: ByteStream,
) -> Result<Outcome> {
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
            .with_mount(&m.name));
        }
    }
    let Some(mode) = put_mode(gw, m, headers, path).await? else {
        return Ok(precondition_failed(path));
    };
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
    let res = gw.put(m, path, Upload::with(body, opts)).await?;
    let location = listing::url_path(&m.name, path, false);
    Ok(Outcome::Stored {
        meta: res.meta,
        created: res.created,
        location,
    })
}

pub async fn delete(
    m: &Mount,
    gw: &Gateway,
    headers: &HeaderMap,
    path: &ArtifactPath,
) -> Result<Outcome> {
    if headers.contains_key(header::IF_MATCH) || headers.contains_key(header::IF_UNMODIFIED_SINCE) {
        let meta = gw.head(m, path).await?;
        if conditional::evaluate(&Method::DELETE, headers, Some(&meta)) != Precondition::Proceed {
            return Ok(precondition_failed(path));
        }
    }
    gw.delete(m, path).await?;
    Ok(Outcome::Deleted)
}

pub async fn list(
    m: &Mount,
    gw: &Gateway,
    headers: &HeaderMap,
    dir: &ArtifactPath,
    limit: usize,
    after: Option<String>,
) -> Result<Outcome> {
    let mount = m.name.as_str();
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
    Ok(Outcome::Json(listing::json_page(mount, dir, &page)))
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
    Outcome::Json(json!({ "mounts": mounts }))
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
                "read_only": m.read_only,
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
    Ok(Outcome::Json(
        json!({ "authenticated": token.is_some(), "token": token, "mounts": mounts }),
    ))
}

/// Reads the bearer token. No header: `None`. Another scheme or a broken value: an
/// `Unauthenticated` error.
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
/// Several that disagree, or a malformed one, are `InvalidInput`.
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

/// How a PUT may replace what is there, from `If-None-Match` / `If-Match`; `None` when the
/// precondition already fails against the current version.
async fn put_mode(
    gw: &Gateway,
    m: &Mount,
    headers: &HeaderMap,
    path: &ArtifactPath,
) -> Result<Option<PutMode>> {
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
        return Ok(Some(PutMode::Create));
    }
    let Some(v) = header_str(headers, header::IF_MATCH)? else {
        return Ok(Some(PutMode::Overwrite));
    };
    let v = v.trim();
    let tags: Vec<&str> = v.split(',').map(str::trim).collect();
    if tags.len() == 1 && tags[0] != "*" {
        let tag = tags[0];
        let etag = conditional::unquote(tag).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                "If-Match must be `*` or a quoted strong entity tag",
            )
        })?;
        return Ok(Some(PutMode::Update {
            etag: etag.to_string(),
        }));
    }
    // `*` or a list: resolve against the current version, then guard on it.
    let current = match gw.head(m, path).await {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if conditional::evaluate(&Method::PUT, headers, Some(&current)) != Precondition::Proceed {
        return Ok(None);
    }
    Ok(Some(PutMode::Update { etag: current.etag }))
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

fn precondition_failed(path: &ArtifactPath) -> Outcome {
    Outcome::PreconditionFailed { path: path.clone() }
}
