//! The one error type of the crate: a small, `#[non_exhaustive]` [`ErrorKind`] plus context.
//!
//! Owns: classification of failures. Must never import `http` types: the mapping from
//! [`ErrorKind`] to an HTTP status lives in exactly one place, `http::error`.

use std::fmt;

/// What went wrong, as callers need to branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The artifact (or mount) does not exist.
    NotFound,
    /// A create-only write found an existing artifact, or a guarded write saw another version.
    PreconditionFailed,
    /// The request path is not an acceptable artifact path (traversal, control bytes, …).
    InvalidPath,
    /// Malformed input other than the path: a header, a digest, a config value.
    InvalidInput,
    /// The uploaded bytes do not match the digest the client declared.
    DigestMismatch,
    /// The requested byte range lies outside the artifact.
    RangeNotSatisfiable,
    /// The body is larger than the mount allows.
    TooLarge,
    /// The request's head (request line and headers) is larger than the server allows.
    HeaderTooLarge,
    /// No credential, or a wrong one.
    Unauthenticated,
    /// A valid credential without the needed scope, or writes disabled.
    PermissionDenied,
    /// A write to a mount that only serves reads (`read_only = true`, or a read-only
    /// directory found at start-up, or a filesystem that turned read-only).
    ReadOnly,
    /// The store has no room left for the write: a full disk (`ENOSPC`), a quota (`EDQUOT`,
    /// an HDFS space or name quota), or an object store answering `507`.
    InsufficientStorage,
    /// The backend does not support the operation (see `Capabilities`).
    Unsupported,
    /// The backend could not be reached or answered with a server error.
    BackendUnavailable,
    /// The backend refused our credentials.
    BackendAuth,
    /// The backend did not answer within the deadline.
    Timeout,
    /// The client went away or sent a broken body.
    Aborted,
    /// A bug or an unexpected local failure (permission on the data dir, …).
    Internal,
}

impl ErrorKind {
    /// A stable snake_case code, used in JSON error bodies and CLI messages.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::PreconditionFailed => "precondition_failed",
            ErrorKind::InvalidPath => "invalid_path",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::DigestMismatch => "digest_mismatch",
            ErrorKind::RangeNotSatisfiable => "range_not_satisfiable",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::HeaderTooLarge => "header_too_large",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::ReadOnly => "read_only",
            ErrorKind::InsufficientStorage => "insufficient_storage",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::BackendUnavailable => "backend_unavailable",
            ErrorKind::BackendAuth => "backend_auth",
            ErrorKind::Timeout => "backend_timeout",
            ErrorKind::Aborted => "aborted",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether retrying the same idempotent request may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::BackendUnavailable | ErrorKind::Timeout)
    }
}

/// An error: a kind, a human message, and where it happened.
pub struct Error {
    kind: ErrorKind,
    message: String,
    mount: Option<String>,
    path: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            mount: None,
            path: None,
            source: None,
        }
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn with_mount(mut self, mount: impl Into<String>) -> Self {
        if self.mount.is_none() {
            self.mount = Some(mount.into());
        }
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn mount(&self) -> Option<&str> {
        self.mount.as_deref()
    }

    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Maps an `std::io::Error` to a kind. Callers add the path.
    pub fn io(context: &str, err: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match err.kind() {
            Io::NotFound => ErrorKind::NotFound,
            Io::AlreadyExists => ErrorKind::PreconditionFailed,
            Io::TimedOut => ErrorKind::Timeout,
            Io::ConnectionRefused
            | Io::ConnectionReset
            | Io::ConnectionAborted
            | Io::BrokenPipe => ErrorKind::BackendUnavailable,
            Io::UnexpectedEof => ErrorKind::Aborted,
            Io::StorageFull | Io::QuotaExceeded | Io::FileTooLarge => {
                ErrorKind::InsufficientStorage
            }
            Io::ReadOnlyFilesystem => ErrorKind::ReadOnly,
            _ => ErrorKind::Internal,
        };
        Error::new(kind, format!("{context}: {err}")).with_source(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match (&self.mount, &self.path) {
            (Some(m), Some(p)) => write!(f, " (mount {m:?}, path {p:?})"),
            (Some(m), None) => write!(f, " (mount {m:?})"),
            (None, Some(p)) => write!(f, " (path {p:?})"),
            (None, None) => Ok(()),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(m) = &self.mount {
            d.field("mount", m);
        }
        if let Some(p) = &self.path {
            d.field("path", p);
        }
        if let Some(s) = &self.source {
            d.field("source", &s.to_string());
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
