//! How `object_store` failures become [`ErrorKind`]s. Status-bearing variants map directly; the
//! rest are classified by the transport error inside (connect/DNS/reset → unavailable,
//! timeouts) and by S3's error codes in the message.

use ::object_store::client::{HttpError, HttpErrorKind};

use crate::error::{Error, ErrorKind};
use crate::storage::ArtifactPath;

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
        _ => format!("object store error: {}", short(&e)),
    };
    Error::new(kind, message)
        .with_path(path.as_str())
        .with_source(e)
}

fn classify(e: &(dyn std::error::Error + 'static)) -> ErrorKind {
    let mut text = String::new();
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
        text.push_str(&err.to_string());
        text.push('\n');
        cur = err.source();
    }
    const AUTH_CODES: [&str; 6] = [
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AccessDenied",
        "ExpiredToken",
        "InvalidToken",
        "credential",
    ];
    if AUTH_CODES.iter().any(|c| text.contains(c)) {
        return ErrorKind::BackendAuth;
    }
    if text.contains("timed out") || text.contains("RequestTimeout") {
        return ErrorKind::Timeout;
    }
    if text.contains("status code: 5")
        || text.contains("SlowDown")
        || text.contains("InternalError")
        || text.contains("ServiceUnavailable")
        || text.contains("NoSuchBucket")
    {
        return ErrorKind::BackendUnavailable;
    }
    if text.contains("InvalidRange") || text.contains("status code: 416") {
        return ErrorKind::RangeNotSatisfiable;
    }
    ErrorKind::BackendUnavailable
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
            // A 403 on a listing reaches us as `Generic`, its S3 code in the text.
            (
                generic("<Code>SignatureDoesNotMatch</Code>"),
                ErrorKind::BackendAuth,
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
}
