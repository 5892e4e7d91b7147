//! Decide, then render: handlers return an [`Outcome`], and [`render`] alone turns it into a
//! status, headers and body. Errors that leave a handler get theirs from [`error::status_of`],
//! the one mapping of an error kind to a status.

use std::ops::Range;

use http::{header, HeaderValue, Response, StatusCode};

use serde_json::json;

use super::body::{self, Body};
use super::conditional::quoted_etag;
use super::error;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::{ArtifactPath, ByteStream, Meta};

/// A handler's typed result.
pub enum Outcome {
    /// 200 with the whole artifact (`body` is `None` for HEAD).
    Full {
        meta: Meta,
        body: Option<ByteStream>,
    },
    /// 206 with one range.
    Partial {
        meta: Meta,
        range: Range<u64>,
        body: Option<ByteStream>,
    },
    /// 304.
    NotModified { meta: Meta },
    /// 416.
    Unsatisfiable { size: u64 },
    /// 201 or 200 after a put.
    Stored {
        meta: Meta,
        created: bool,
        location: String,
    },
    /// 204 after a delete.
    Deleted,
    /// 412: a condition of the request (If-Match, If-None-Match, If-Unmodified-Since) is false
    /// for the current version.
    PreconditionFailed { path: ArtifactPath },
    /// 405 with `Allow`.
    MethodNotAllowed { allow: &'static str },
    /// 200 with every mount ready, 503 naming the failing ones otherwise.
    Readiness(Vec<(String, Result<()>)>),
    /// 200 with a JSON document.
    Json(serde_json::Value),
    /// An HTML page (listings for browsers).
    Html(String),
    /// Prometheus text exposition.
    Metrics(String),
    /// A fixed document compiled into the binary (the OpenAPI description).
    Document {
        content_type: &'static str,
        body: &'static str,
    },
    /// A file of the web page, with its Content-Security-Policy.
    UiAsset(&'static super::ui::Asset),
    /// 308 to another path on this server.
    Redirect(&'static str),
}

pub fn render(outcome: Outcome) -> Response<Body> {
    match outcome {
        Outcome::Full { meta, body } => {
            let mut resp = artifact_response(StatusCode::OK, &meta, meta.size, body);
            set_static(&mut resp, header::ACCEPT_RANGES, "bytes");
            resp
        }
        Outcome::Partial { meta, range, body } => {
            let mut resp = artifact_response(
                StatusCode::PARTIAL_CONTENT,
                &meta,
                range.end - range.start,
                body,
            );
            set_static(&mut resp, header::ACCEPT_RANGES, "bytes");
            set(
                &mut resp,
                header::CONTENT_RANGE,
                &format!("bytes {}-{}/{}", range.start, range.end - 1, meta.size),
            );
            resp
        }
        Outcome::NotModified { meta } => {
            let mut resp = Response::new(body::empty());
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            validators(&mut resp, &meta);
            resp
        }
        Outcome::Unsatisfiable { size } => {
            let mut resp = error::render(&Error::new(
                ErrorKind::RangeNotSatisfiable,
                format!("the range is outside the artifact ({size} bytes)"),
            ));
            set(&mut resp, header::CONTENT_RANGE, &format!("bytes */{size}"));
            set(&mut resp, header::ACCEPT_RANGES, "bytes");
            resp
        }
        Outcome::Stored {
            meta,
            created,
            location,
        } => {
            let value = serde_json::json!({
                "path": meta.path.as_str(),
                "size": meta.size,
                "etag": meta.etag,
                "sha256": meta.sha256.map(|d| d.to_hex()),
                "content_type": meta.content_type,
                "created": created,
            });
            let mut resp = Response::new(body::json(&value));
            *resp.status_mut() = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            set(&mut resp, header::CONTENT_TYPE, "application/json");
            validators(&mut resp, &meta);
            if created {
                set(&mut resp, header::LOCATION, &location);
            }
            resp
        }
        Outcome::Deleted => {
            let mut resp = Response::new(body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            resp
        }
        Outcome::PreconditionFailed { path } => error::render(
            &Error::new(
                ErrorKind::PreconditionFailed,
                "a precondition (If-Match, If-None-Match, If-Unmodified-Since) failed",
            )
            .with_path(path.as_str()),
        ),
        Outcome::MethodNotAllowed { allow } => {
            let e = Error::new(
                ErrorKind::Unsupported,
                format!("method not allowed; use {allow}"),
            );
            let mut resp = error::render_as(StatusCode::METHOD_NOT_ALLOWED, &e);
            set(&mut resp, header::ALLOW, allow);
            resp
        }
        Outcome::Readiness(mounts) => readiness(mounts),
        Outcome::Json(value) => json(StatusCode::OK, &value),
        Outcome::Html(page) => {
            let mut resp = Response::new(body::full(page));
            set(&mut resp, header::CONTENT_TYPE, "text/html; charset=utf-8");
            set(&mut resp, header::CACHE_CONTROL, "no-store");
            resp
        }
        Outcome::UiAsset(asset) => {
            let mut resp = Response::new(body::full(asset.body));
            set(&mut resp, header::CONTENT_TYPE, asset.content_type);
            set(&mut resp, header::CONTENT_SECURITY_POLICY, super::ui::CSP);
            set(&mut resp, header::REFERRER_POLICY, "no-referrer");
            set(&mut resp, header::CACHE_CONTROL, "no-cache");
            resp
        }
        Outcome::Redirect(location) => {
            let mut resp = Response::new(body::empty());
            *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
            set(&mut resp, header::LOCATION, location);
            resp
        }
        Outcome::Metrics(text) => {
            let mut resp = Response::new(body::full(text));
            set(
                &mut resp,
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            );
            resp
        }
        Outcome::Document { content_type, body } => {
            let mut resp = Response::new(body::full(body));
            set(&mut resp, header::CONTENT_TYPE, content_type);
            set(&mut resp, header::CACHE_CONTROL, "no-cache");
            resp
        }
    }
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(body::json(value));
    *resp.status_mut() = status;
    set(&mut resp, header::CONTENT_TYPE, "application/json");
    set(&mut resp, header::CACHE_CONTROL, "no-store");
    resp
}

/// `{"status":"ready"|"not_ready","mounts":{NAME:{"ready":…}},"failing":[…]}`: 200 when every
/// mount is ready, 503 otherwise (so a Kubernetes readiness probe takes the pod out).
fn readiness(mounts: Vec<(String, Result<()>)>) -> Response<Body> {
    let mut detail = serde_json::Map::new();
    let mut failing = Vec::new();
    for (name, r) in mounts {
        let state = match r {
            Ok(()) => json!({ "ready": true }),
            Err(e) => {
                failing.push(name.clone());
                json!({ "ready": false, "code": e.kind().code(), "message": e.message() })
            }
        };
        detail.insert(name, state);
    }
    if failing.is_empty() {
        json(
            StatusCode::OK,
            &json!({ "status": "ready", "mounts": detail }),
        )
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "status": "not_ready", "mounts": detail, "failing": failing }),
        )
    }
}

fn artifact_response(
    status: StatusCode,
    meta: &Meta,
    len: u64,
    body: Option<ByteStream>,
) -> Response<Body> {
    let mut resp = Response::new(match body {
        Some(s) => body::stream(s, len),
        None => body::empty(),
    });
    // Room for every header an artifact response gets (here and in `http::handle`): the map
    // is allocated once instead of growing three times.
    *resp.headers_mut() = http::HeaderMap::with_capacity(ARTIFACT_HEADERS);
    *resp.status_mut() = status;
    let [content_type, length, etag, digest] = version_values(meta, len);
    let h = resp.headers_mut();
    if let Some(v) = content_type {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Some(v) = length {
        h.insert(header::CONTENT_LENGTH, v);
    }
    // Artifacts can be replaced under the same name: caches must revalidate (cheap with ETag).
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(v) = etag {
        h.insert(header::ETAG, v);
    }
    h.insert(header::LAST_MODIFIED, http_date(meta.last_modified));
    if let Some(v) = digest {
        h.insert(repr_digest(), v);
    }
    resp
}

fn repr_digest() -> header::HeaderName {
    header::HeaderName::from_static("repr-digest")
}

/// Content-Type, Content-Length, ETag and Repr-Digest of a response of `len` bytes of this
/// version. The values made last on each thread are reused while the same version is served
/// again (a fleet asks for one jar many times; making them was an allocation each a response).
fn version_values(meta: &Meta, len: u64) -> [Option<HeaderValue>; 4] {
    use std::cell::RefCell;
    struct Made {
        etag: String,
        content_type: Option<String>,
        sha256: Option<crate::storage::Sha256>,
        len: u64,
        values: [Option<HeaderValue>; 4],
    }
    thread_local! {
        static LAST: RefCell<Option<Made>> = const { RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| {
        if let Some(m) = last {
            if m.len == len
                && m.etag == meta.etag
                && m.content_type == meta.content_type
                && m.sha256 == meta.sha256
            {
                return m.values.clone();
            }
        }
        let ct = meta
            .content_type
            .as_deref()
            .unwrap_or("application/octet-stream");
        let values = [
            HeaderValue::from_str(ct).ok(),
            Some(HeaderValue::from(len)),
            HeaderValue::try_from(quoted_etag(meta)).ok(),
            meta.sha256
                .and_then(|d| HeaderValue::try_from(d.to_digest_field()).ok()),
        ];
        *last = Some(Made {
            etag: meta.etag.clone(),
            content_type: meta.content_type.clone(),
            sha256: meta.sha256,
            len,
            values: values.clone(),
        });
        values
    })
}

fn validators(resp: &mut Response<Body>, meta: &Meta) {
    set_owned(resp, header::ETAG, quoted_etag(meta));
    resp.headers_mut()
        .insert(header::LAST_MODIFIED, http_date(meta.last_modified));
    if let Some(d) = meta.sha256 {
        set_owned(resp, repr_digest(), d.to_digest_field());
    }
}

/// An HTTP date, formatted once per second of time asked for on each thread (the artifacts
/// in demand are few at a time, and formatting a date was a tenth of rendering a response).
fn http_date(t: std::time::SystemTime) -> HeaderValue {
    use std::cell::RefCell;
    use std::time::UNIX_EPOCH;
    thread_local! {
        static LAST: RefCell<Option<(u64, HeaderValue)>> = const { RefCell::new(None) };
    }
    let format = || {
        HeaderValue::try_from(httpdate::fmt_http_date(t))
            .expect("an HTTP date is a valid header value")
    };
    let Ok(since) = t.duration_since(UNIX_EPOCH) else {
        return format();
    };
    let secs = since.as_secs();
    LAST.with_borrow_mut(|last| match last {
        Some((s, v)) if *s == secs => v.clone(),
        _ => {
            let v = format();
            *last = Some((secs, v.clone()));
            v
        }
    })
}

/// Headers of an artifact response: type, length, cache-control, accept-ranges, ETag,
/// Last-Modified, Repr-Digest, Content-Range, and the request id and two hardening headers.
const ARTIFACT_HEADERS: usize = 12;

/// A header whose value is a constant (no copy, no check at run time).
fn set_static(resp: &mut Response<Body>, name: header::HeaderName, value: &'static str) {
    resp.headers_mut()
        .insert(name, HeaderValue::from_static(value));
}

/// A header whose value was just formatted (its bytes become the value without a copy).
fn set_owned(resp: &mut Response<Body>, name: header::HeaderName, value: String) {
    if let Ok(v) = HeaderValue::try_from(value) {
        resp.headers_mut().insert(name, v);
    }
}

fn set(resp: &mut Response<Body>, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}
