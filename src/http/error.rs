//! The one place an [`ErrorKind`] becomes an HTTP status, and the JSON error body.

use http::{header, HeaderValue, StatusCode};
use serde_json::json;

use super::body::{self, Body};
use crate::error::{Error, ErrorKind};

/// The status for an error kind.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ErrorKind::InvalidPath
        | ErrorKind::InvalidInput
        | ErrorKind::DigestMismatch
        | ErrorKind::Aborted => StatusCode::BAD_REQUEST,
        ErrorKind::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::ReadOnly => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::BackendUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::BackendAuth => StatusCode::BAD_GATEWAY,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `{"error":{"code":"…","message":"…","mount":…,"path":…}}` with the matching status. A
/// write to a read-only mount is a `405` whose `Allow` names the methods the mount takes.
pub fn render(err: &Error) -> http::Response<Body> {
    let mut resp = render_as(status_of(err.kind()), err);
    if err.kind() == ErrorKind::ReadOnly {
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(READ_ONLY_ALLOW));
    }
    resp
}

/// The methods an artifact of a read-only mount takes.
pub const READ_ONLY_ALLOW: &str = "GET, HEAD";

/// The error body under a status the request decided rather than the error's kind (405).
pub fn render_as(status: StatusCode, err: &Error) -> http::Response<Body> {
    let mut detail = json!({ "code": err.kind().code(), "message": err.message() });
    if let Some(m) = err.mount() {
        detail["mount"] = json!(m);
    }
    if let Some(p) = err.path() {
        detail["path"] = json!(p);
    }
    let mut resp = http::Response::new(body::json(&json!({ "error": detail })));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"artifact-gateway\""),
        );
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    resp
}
