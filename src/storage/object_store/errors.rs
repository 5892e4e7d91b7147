//! How `object_store` failures become [`ErrorKind`]s, from typed data only, never from
//! error text:
//! 1. the library's variants, which carry the statuses that matter to it (404 `NotFound`, 412
//!    `Precondition`, 409 `AlreadyExists`, 304 `NotModified`, 401 `Unauthenticated`, 403
//!    `PermissionDenied`);
//! 2. the transport error inside (`HttpError` kind: connect/DNS/reset → unavailable, timeouts);
//! 3. the HTTP status of the last failed answer. `object_store` 0.14 keeps that status private
//!    inside `Generic` (a listing refused with 403, a 416 on a read), so a store whose HTTP
//!    client can watch answers (S3's, see `s3/completion.rs`) records it with
//!    [`record_status`] while an adapter call runs inside [`observing`]: 401/403 → the store
//!    refused our credentials, 416 → range not satisfiable, 507 → the store is out of room,
//!    anything else → unavailable.
//!
//! Failures with none of these (a malformed answer, a credential provider that cannot be
//! reached) are `BackendUnavailable`: worth a retry, and the message keeps the store's words.

use std::cell::Cell;
use std::future::Future;

use ::object_store::client::{HttpError, HttpErrorKind};
use http::StatusCode;

use crate::error::{Error, ErrorKind};
use crate::storage::ArtifactPath;

tokio::task_local! {
    static LAST_FAILED_STATUS: Cell<Option<StatusCode>>;
}

/// Runs one adapter call so that the statuses its requests end with can be recorded.
pub(crate) async fn observing<F: Future>(call: F) -> F::Output {
    LAST_FAILED_STATUS.scope(Cell::new(None), call).await
}

/// Called by a store's HTTP client for every answer: remembers a failed status, forgets it
/// when a later request succeeds. Outside [`observing`] (a part upload on its own task) it
/// does nothing.
pub fn record_status(status: StatusCode) {
    let failed = (!status.is_success()).then_some(status);
    let _ = LAST_FAILED_STATUS.try_with(|s| s.set(failed));
}

/// Maps an `object_store` error to a kind (see the module doc).
pub(crate) fn map_err(e: ::object_store::Error, path: &ArtifactPath) -> Error {
    use ::object_store::Error as OsError;
    let kind = match &e {
        OsError::NotFound { .. } => ErrorKind::NotFound,
        OsError::Precondition { .. }
        | OsError::AlreadyExists { .. }
        | OsError::NotModified { .. } => ErrorKind::PreconditionFailed,
        OsError::Unauthenticated { .. } | OsError::PermissionDenied { .. } => {
            ErrorKind::BackendAuth
        }
        OsError::NotSupported { .. } | OsError::NotImplemented { .. } => ErrorKind::Unsupported,
        OsError::InvalidPath { .. } => ErrorKind::InvalidPath,
        _ => classify(&e),
    };
    let message = match kind {
        ErrorKind::NotFound => "no artifact at this path".to_string(),
        ErrorKind::PreconditionFailed => {
            "the artifact's current version does not satisfy the precondition".to_string()
        }
        ErrorKind::BackendAuth => {
            format!("the object store refused the credentials: {}", short(&e))
        }
        ErrorKind::Timeout => format!("the object store did not answer in time: {}", short(&e)),
        ErrorKind::BackendUnavailable => format!("the object store is unavailable: {}", short(&e)),
        ErrorKind::InsufficientStorage => {
            format!("the object store has no room for the upload: {}", short(&e))
        }
        _ => format!("object store error: {}", short(&e)),
    };
    Error::new(kind, message)
        .with_path(path.as_str())
        .with_source(e)
}

fn classify(e: &(dyn std::error::Error + 'static)) -> ErrorKind {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<HttpError>() {
            return match h.kind() {
                HttpErrorKind::Timeout => ErrorKind::Timeout,
                _ => ErrorKind::BackendUnavailable,
            };
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return ErrorKind::Timeout;
            }
        }
        cur = err.source();
    }
    match LAST_FAILED_STATUS.try_with(Cell::get).ok().flatten() {
        Some(StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => ErrorKind::BackendAuth,
        Some(StatusCode::RANGE_NOT_SATISFIABLE) => ErrorKind::RangeNotSatisfiable,
        // MinIO's `XMinioStorageFull` and other stores out of room.
        Some(StatusCode::INSUFFICIENT_STORAGE) => ErrorKind::InsufficientStorage,
        _ => ErrorKind::BackendUnavailable,
    }
}

/// The error's text without credentials-bearing URLs' query strings, on one line, bounded.
fn short(e: &::object_store::Error) -> String {
    let s = e.to_string().replace('\n', " ");
    let mut out: String = s.chars().take(400).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_kinds() {
        use ::object_store::Error as E;
        use std::io::ErrorKind as Io;
        let p = ArtifactPath::parse("a.jar").unwrap();
        let src = |s: &str| -> Box<dyn std::error::Error + Send + Sync> { s.into() };
        let x = || "x".to_string();
        let transport = |kind: HttpErrorKind, io: Io| E::Generic {
            store: "S3",
            source: Box::new(HttpError::new(kind, std::io::Error::from(io))),
        };
        let generic = |text: &str| E::Generic {
            store: "S3",
            source: src(text),
        };
        let cases = [
            (
                E::NotFound {
                    path: x(),
                    source: src("gone"),
                },
                ErrorKind::NotFound,
            ),
            (
                E::Precondition {
                    path: x(),
                    source: src("412"),
                },
                ErrorKind::PreconditionFailed,
            ),
            (
                E::AlreadyExists {
                    path: x(),
                    source: src("409"),
                },
                ErrorKind::PreconditionFailed,
            ),
            (
                E::PermissionDenied {
                    path: x(),
                    source: src("403"),
                },
                ErrorKind::BackendAuth,
            ),
            (
                E::Unauthenticated {
                    path: x(),
                    source: src("<Code>SignatureDoesNotMatch</Code>"),
                },
                ErrorKind::BackendAuth,
            ),
            (
                transport(HttpErrorKind::Timeout, Io::TimedOut),
                ErrorKind::Timeout,
            ),
            (
                transport(HttpErrorKind::Connect, Io::ConnectionRefused),
                ErrorKind::BackendUnavailable,
            ),
            // Text is never classified: without a recorded status, words that look like a
            // credential problem stay a transient store failure.
            (
                generic("<Code>SignatureDoesNotMatch</Code> credential"),
                ErrorKind::BackendUnavailable,
            ),
            (
                generic("Server returned non-2xx status code: 503"),
                ErrorKind::BackendUnavailable,
            ),
        ];
        for (e, want) in cases {
            let shown = e.to_string();
            assert_eq!(map_err(e, &p).kind(), want, "{shown}");
        }
    }

    #[tokio::test]
    async fn a_recorded_status_classifies_a_generic_failure() {
        let p = ArtifactPath::parse("a.jar").unwrap();
        let generic = || ::object_store::Error::Generic {
            store: "S3",
            source: "Error performing list request".into(),
        };
        let cases = [
            (StatusCode::FORBIDDEN, ErrorKind::BackendAuth),
            (StatusCode::UNAUTHORIZED, ErrorKind::BackendAuth),
            (
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorKind::RangeNotSatisfiable,
            ),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::BackendUnavailable,
            ),
            (StatusCode::BAD_REQUEST, ErrorKind::BackendUnavailable),
        ];
        for (status, want) in cases {
            let kind = observing(async {
                record_status(status);
                map_err(generic(), &p).kind()
            })
            .await;
            assert_eq!(kind, want, "{status}");
        }
        // A later success forgets the failure; outside an observed call nothing is recorded.
        let kind = observing(async {
            record_status(StatusCode::FORBIDDEN);
            record_status(StatusCode::OK);
            map_err(generic(), &p).kind()
        })
        .await;
        assert_eq!(kind, ErrorKind::BackendUnavailable);
        record_status(StatusCode::FORBIDDEN);
        assert_eq!(map_err(generic(), &p).kind(), ErrorKind::BackendUnavailable);
    }
}
