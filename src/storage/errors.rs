//! The errors every backend reports in the same words, so clients see one vocabulary
//! whichever store is behind a mount: one constructor per refusal, each taking the path.

use super::ArtifactPath;
use crate::error::{Error, ErrorKind};

macro_rules! refusals {
    ($($(#[$doc:meta])* $name:ident => $kind:ident, $message:literal;)*) => {$(
        $(#[$doc])*
        pub fn $name(path: &ArtifactPath) -> Error {
            Error::new(ErrorKind::$kind, $message).with_path(path.as_str())
        }
    )*};
}

refusals! {
    /// Nothing at `path`.
    not_found => NotFound, "no artifact at this path";
    /// A read or delete of a name that is a directory.
    is_a_directory => NotFound, "no artifact at this path (it is a directory)";
    /// A create-only put found an artifact.
    exists => PreconditionFailed, "an artifact already exists at this path";
    /// An `If-Match` put found nothing to replace.
    nothing_to_replace => PreconditionFailed, "no artifact to replace";
    /// An `If-Match` put found another version.
    etag_mismatch => PreconditionFailed, "the artifact's ETag does not match If-Match";
    /// A put whose name is taken by a directory.
    directory_in_the_way => PreconditionFailed, "a directory exists at this path";
    /// A put below a name that is a file.
    file_in_the_way => PreconditionFailed, "a parent of this path is a file";
    /// A read pinned to one version found another.
    changed => PreconditionFailed, "the artifact changed while it was being read";
}

/// `err`, or the refusal `instead` when `err` is of `kind`: a store's generic answer put in
/// the vocabulary's words for what it means at that step.
pub fn reword(err: Error, kind: ErrorKind, instead: impl FnOnce() -> Error) -> Error {
    if err.kind() == kind {
        instead()
    } else {
        err
    }
}
