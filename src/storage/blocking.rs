//! [`blocking`]: runs file-system work on tokio's blocking pool and brings its result back, so
//! that async code never blocks a runtime thread on a disk. Used by the local backend, digest
//! helpers and `fetch`'s disk side.

use crate::error::{Error, ErrorKind, Result};

/// Runs `f` on the blocking pool. A task that panics or is cancelled is an `Internal` error.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("a blocking task failed: {e}")))?
}
