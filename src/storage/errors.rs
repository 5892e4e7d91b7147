//! The errors every backend reports in the same words, so clients see one vocabulary
//! whichever store is behind a mount.

use super::ArtifactPath;
use crate::error::{Error, ErrorKind};

/// Nothing (or a directory) at `path`.
pub fn not_found(path: &ArtifactPath) -> Error {
    Error::new(ErrorKind::NotFound, "no artifact at this path").with_path(path.as_str())
}

/// A create-only put found an artifact.
pub fn exists(path: &ArtifactPath) -> Error {
    Error::new(
        ErrorKind::PreconditionFailed,
        "an artifact already exists at this path",
    )
    .with_path(path.as_str())
}

/// A read pinned to one version found another.
pub fn changed(path: &ArtifactPath) -> Error {
    Error::new(
        ErrorKind::PreconditionFailed,
        "the artifact changed while it was being read",
    )
    .with_path(path.as_str())
}
