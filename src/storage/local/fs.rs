//! Filesystem helpers of the local backend: resolving the root, the data file's validator,
//! temporary files and their cleanup, and the io-error → kind mapping.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, ErrorKind, Result};
use crate::storage::errors::not_found;
use crate::storage::sidecar::MAX_SIDECAR_BYTES;
use crate::storage::ArtifactPath;

/// Removes a temporary file on drop unless [`TempGuard::keep`] was called.
pub(super) struct TempGuard(pub(super) Option<PathBuf>);

impl TempGuard {
    pub(super) fn keep(mut self) -> PathBuf {
        self.0.take().expect("kept once")
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The root made absolute and free of symlinks. A root that does not exist yet is resolved
/// through its deepest existing ancestor, which is what it will resolve to once created.
pub(super) fn resolve_root(root: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(root)
        .map_err(|e| Error::io(&format!("cannot resolve {}", root.display()), e))?;
    let mut existing = abs.as_path();
    let mut missing = Vec::new();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(real) => return Ok(missing.iter().rev().fold(real, |p, seg| p.join(seg))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Err(Error::io(&format!("cannot resolve {}", root.display()), e));
                };
                missing.push(name.to_os_string());
                existing = parent;
            }
            Err(e) => return Err(Error::io(&format!("cannot resolve {}", root.display()), e)),
        }
    }
}

/// A sidecar's bytes; `None` when missing or too large to be one of ours.
pub(super) fn read_small(file: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .ok()?
        .take(MAX_SIDECAR_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    (bytes.len() as u64 <= MAX_SIDECAR_BYTES).then_some(bytes)
}

pub(super) fn etag_of(md: &std::fs::Metadata) -> String {
    format!("{:x}-{:x}-{:x}", md.ino(), mtime_ns(md), md.len())
}

pub(super) fn mtime_ns(md: &std::fs::Metadata) -> i128 {
    md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128
}

pub(super) fn not_found_or_io(e: std::io::Error, path: &ArtifactPath) -> Error {
    if matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    ) {
        not_found(path)
    } else {
        Error::io("filesystem error", e).with_path(path.as_str())
    }
}

pub(super) fn escape(path: &ArtifactPath) -> Error {
    Error::new(
        ErrorKind::InvalidPath,
        "the path leaves the mount's root through a symlink",
    )
    .with_path(path.as_str())
}

pub(super) async fn sync_dir(dir: &Path) {
    let dir = dir.to_path_buf();
    let _ =
        tokio::task::spawn_blocking(move || std::fs::File::open(dir).and_then(|f| f.sync_all()))
            .await;
}

pub(super) fn remove_stale_temp_files(tmp: &Path, older_than: Duration) {
    let Ok(rd) = std::fs::read_dir(tmp) else {
        return;
    };
    let now = SystemTime::now();
    for entry in rd.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .map(|m| now.duration_since(m).unwrap_or_default() > older_than)
            .unwrap_or(false);
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
