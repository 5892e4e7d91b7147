//! How opendal failures become [`ErrorKind`]s: by opendal's own error kind, its `temporary`
//! flag and the transport error inside (typed, never message text).

use ::opendal::ErrorKind as OdKind;

use crate::error::{Error, ErrorKind};

/// Maps an opendal error to the crate's kinds. `what` names the operation for the message.
pub fn map_error(service: &str, what: &str, e: ::opendal::Error) -> Error {
    let kind = match e.kind() {
        OdKind::NotFound | OdKind::IsADirectory | OdKind::NotADirectory => ErrorKind::NotFound,
        OdKind::ConditionNotMatch | OdKind::AlreadyExists | OdKind::Conflict => {
            ErrorKind::PreconditionFailed
        }
        OdKind::PermissionDenied => ErrorKind::BackendAuth,
        OdKind::RangeNotSatisfied => ErrorKind::RangeNotSatisfiable,
        OdKind::RateLimited => ErrorKind::BackendUnavailable,
        OdKind::Unsupported => ErrorKind::Unsupported,
        OdKind::ConfigInvalid => ErrorKind::InvalidInput,
        _ => transport_kind(&e).unwrap_or(if e.is_temporary() {
            ErrorKind::BackendUnavailable
        } else {
            ErrorKind::Internal
        }),
    };
    // A refused HEAD has no error body, so no message: say what the status means.
    let detail = if e.message().is_empty() {
        format!("{} (no error body)", e.kind())
    } else {
        e.message().to_string()
    };
    let message = match kind {
        ErrorKind::BackendAuth => {
            format!("{service} refused the gateway's credentials during {what}: {detail}")
        }
        ErrorKind::BackendUnavailable | ErrorKind::Timeout => format!(
            "{service} is unavailable during {what}: {}",
            source_text(&e)
        ),
        _ => format!("{service} {what} failed: {detail}"),
    };
    Error::new(kind, message).with_source(e)
}

/// Connection-level failures found in the error's sources.
fn transport_kind(e: &::opendal::Error) -> Option<ErrorKind> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<reqwest::Error>() {
            return Some(if r.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::BackendUnavailable
            });
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(if io.kind() == std::io::ErrorKind::TimedOut {
                ErrorKind::Timeout
            } else {
                ErrorKind::BackendUnavailable
            });
        }
        src = s.source();
    }
    None
}

/// The message plus its innermost cause (a connection error says more than "send http request").
fn source_text(e: &::opendal::Error) -> String {
    let mut last: Option<String> = None;
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        last = Some(s.to_string());
        src = s.source();
    }
    match last {
        Some(cause) => format!("{}: {cause}", e.message()),
        None => e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_map_precisely() {
        let cases = [
            (OdKind::NotFound, false, ErrorKind::NotFound),
            (
                OdKind::ConditionNotMatch,
                false,
                ErrorKind::PreconditionFailed,
            ),
            (OdKind::PermissionDenied, false, ErrorKind::BackendAuth),
            (OdKind::RateLimited, true, ErrorKind::BackendUnavailable),
            (OdKind::Unexpected, true, ErrorKind::BackendUnavailable),
            (OdKind::Unexpected, false, ErrorKind::Internal),
            (
                OdKind::RangeNotSatisfied,
                false,
                ErrorKind::RangeNotSatisfiable,
            ),
        ];
        for (od, temporary, want) in cases {
            let e = ::opendal::Error::new(od, "x").with_temporary(temporary);
            assert_eq!(map_error("OSS", "stat", e).kind(), want, "{od:?}");
        }
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = ::opendal::Error::new(OdKind::Unexpected, "send http request").set_source(io);
        let mapped = map_error("OSS", "stat", e);
        assert_eq!(mapped.kind(), ErrorKind::BackendUnavailable);
        assert!(mapped.message().contains("refused"), "{}", mapped.message());
    }
}
