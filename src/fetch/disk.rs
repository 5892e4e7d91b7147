//! The destination side of `fetch`: partial files, their validators, hashing, and the atomic
//! commit.
//!
//! For an artifact saved as `NAME` in `DIR`:
//! - `DIR/.NAME.part` receives the bytes;
//! - `DIR/.NAME.part.etag` holds the source's validator of the version being downloaded, written
//!   before the first byte, so an interrupted download can resume with `If-Range`;
//! - when the bytes are complete and verified, the part file is fsynced and renamed to
//!   `DIR/NAME` and the directory is fsynced: readers see the old file or the whole new one.
//!
//! All file I/O runs on blocking threads; a download writes through a bounded channel so the
//! network, hashing and the disk overlap without holding more than a few MiB in memory.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::blocking::blocking;
use crate::storage::digest::Hasher;

const IO_BUF: usize = 1 << 20;
/// Chunks in flight between the network and the disk writer.
pub const WRITE_QUEUE: usize = 16;

/// Whether `path` has exactly this size and (to the second) this modification time.
pub async fn same_size_and_mtime(path: &Path, size: u64, modified: std::time::SystemTime) -> bool {
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .ok()
    };
    match tokio::fs::metadata(path).await {
        Ok(md) => md.len() == size && md.modified().ok().and_then(secs) == secs(modified),
        Err(_) => false,
    }
}

/// Stamps a fetched file with its source's modification time (best effort: a filesystem that
/// refuses only costs a download next time).
pub async fn set_mtime(path: &Path, modified: std::time::SystemTime) {
    let path = path.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || {
        File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(modified))
    })
    .await;
}

/// The files of one artifact in the destination directory.
#[derive(Debug, Clone)]
pub struct Slot {
    pub dir: PathBuf,
    pub dest: PathBuf,
    pub part: PathBuf,
    pub etag: PathBuf,
}

impl Slot {
    pub fn new(dir: &Path, name: &str) -> Slot {
        Slot {
            dir: dir.to_path_buf(),
            dest: dir.join(name),
            part: dir.join(format!(".{name}.part")),
            etag: dir.join(format!(".{name}.part.etag")),
        }
    }

    /// Whether a regular file already sits under the final name.
    pub async fn dest_exists(&self) -> Result<bool> {
        match tokio::fs::metadata(&self.dest).await {
            Ok(md) if md.is_file() => Ok(true),
            Ok(_) => Err(local(
                &format!("{} exists and is not a regular file", self.dest.display()),
                None,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(local(
                &format!("cannot inspect {}", self.dest.display()),
                Some(e),
            )),
        }
    }

    /// A resumable partial download: the part file's length and the stored validator.
    /// Anything incomplete (part without validator or the reverse, empty part) is discarded.
    pub async fn partial(&self) -> Result<Option<(u64, String)>> {
        let len = match tokio::fs::metadata(&self.part).await {
            Ok(md) if md.is_file() => md.len(),
            Ok(_) => {
                return Err(local(
                    &format!("{} is not a regular file", self.part.display()),
                    None,
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                return Err(local(
                    &format!("cannot inspect {}", self.part.display()),
                    Some(e),
                ))
            }
        };
        let etag = match tokio::fs::read_to_string(&self.etag).await {
            Ok(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(local(
                    &format!("cannot read {}", self.etag.display()),
                    Some(e),
                ))
            }
        };
        match etag {
            Some(etag) if len > 0 => Ok(Some((len, etag))),
            _ => {
                self.discard().await?;
                Ok(None)
            }
        }
    }

    /// Records the validator of the version about to be written (or forgets it).
    pub async fn store_etag(&self, etag: Option<&str>) -> Result<()> {
        match etag {
            Some(e) => tokio::fs::write(&self.etag, format!("{e}\n"))
                .await
                .map_err(|err| local(&format!("cannot write {}", self.etag.display()), Some(err))),
            None => remove_if_present(&self.etag).await,
        }
    }

    /// Removes the part file and its validator.
    pub async fn discard(&self) -> Result<()> {
        remove_if_present(&self.part).await?;
        remove_if_present(&self.etag).await
    }

    /// Makes the verified part file the artifact: fsync, rename, fsync the directory.
    pub async fn commit(&self) -> Result<()> {
        let slot = self.clone();
        blocking(move || {
            File::open(&slot.part)
                .and_then(|f| f.sync_all())
                .map_err(|e| local(&format!("cannot sync {}", slot.part.display()), Some(e)))?;
            fs::rename(&slot.part, &slot.dest).map_err(|e| {
                local(
                    &format!("cannot rename {} into place", slot.part.display()),
                    Some(e),
                )
            })?;
            File::open(&slot.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| {
                    local(
                        &format!("cannot sync directory {}", slot.dir.display()),
                        Some(e),
                    )
                })?;
            match fs::remove_file(&slot.etag) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(local(
                    &format!("cannot remove {}", slot.etag.display()),
                    Some(e),
                )),
                _ => Ok(()),
            }
        })
        .await
    }
}

/// A running writer: send chunks, then [`PartWriter::finish`].
pub struct PartWriter {
    tx: Option<mpsc::Sender<Bytes>>,
    task: tokio::task::JoinHandle<Result<(Hasher, u64)>>,
}

impl PartWriter {
    /// Starts writing at `offset` into the part file: appending to an existing prefix (whose
    /// bytes are hashed first) or truncating when `offset` is 0.
    pub fn start(part: &Path, offset: u64) -> PartWriter {
        let (tx, mut rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
        let part = part.to_path_buf();
        let task = tokio::task::spawn_blocking(move || -> Result<(Hasher, u64)> {
            let ctx = |what: &str| format!("cannot {what} {}", part.display());
            let mut hasher = Hasher::new();
            let file = if offset > 0 {
                let mut f = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .open(&part)
                    .map_err(|e| local(&ctx("open"), Some(e)))?;
                let kept = hasher
                    .update_from((&mut f).take(offset))
                    .map_err(|e| local(&ctx("read"), Some(e)))?;
                if kept < offset {
                    return Err(local(
                        &format!("{} is shorter than expected", part.display()),
                        None,
                    ));
                }
                f
            } else {
                File::create(&part).map_err(|e| local(&ctx("create"), Some(e)))?
            };
            let mut out = BufWriter::with_capacity(IO_BUF, file);
            let mut written = 0u64;
            while let Some(chunk) = rx.blocking_recv() {
                hasher.update(&chunk);
                out.write_all(&chunk)
                    .map_err(|e| local(&ctx("write"), Some(e)))?;
                written += chunk.len() as u64;
            }
            out.flush().map_err(|e| local(&ctx("write"), Some(e)))?;
            Ok((hasher, written))
        });
        PartWriter { tx: Some(tx), task }
    }

    /// Queues a chunk. An error means the writer stopped; [`PartWriter::finish`] says why.
    pub async fn write(&mut self, chunk: Bytes) -> std::result::Result<(), ()> {
        match &self.tx {
            Some(tx) => tx.send(chunk).await.map_err(|_| ()),
            None => Err(()),
        }
    }

    /// Flushes everything queued; returns the hasher over the whole part file (prefix
    /// included) and the bytes written by this writer.
    pub async fn finish(mut self) -> Result<(Hasher, u64)> {
        self.tx.take();
        self.task
            .await
            .map_err(|e| Error::new(ErrorKind::Internal, format!("the disk writer failed: {e}")))?
    }
}

/// Creates the destination directory.
pub async fn ensure_dir(dir: &Path) -> Result<()> {
    tokio::fs::create_dir_all(dir).await.map_err(|e| {
        local(
            &format!("cannot create destination directory {}", dir.display()),
            Some(e),
        )
    })
}

async fn remove_if_present(path: &Path) -> Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(local(&format!("cannot remove {}", path.display()), Some(e)))
        }
        _ => Ok(()),
    }
}

/// A local file-system failure: `InsufficientStorage` for a full disk or a quota, `Internal`
/// for the rest. A missing or read-only destination is the machine's problem, never "artifact
/// not found".
fn local(context: &str, err: Option<std::io::Error>) -> Error {
    match err {
        Some(e) => {
            let full = matches!(
                e.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            );
            let (kind, context) = if full {
                (
                    ErrorKind::InsufficientStorage,
                    format!("the destination is full: {context}"),
                )
            } else {
                (ErrorKind::Internal, context.to_string())
            };
            Error::new(kind, format!("{context}: {e}")).with_source(e)
        }
        None => Error::new(ErrorKind::Internal, context.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::digest::hash_file;
    use crate::storage::Sha256;

    #[tokio::test]
    async fn writes_resumes_and_commits() {
        let dir = tempfile::tempdir().unwrap();
        let slot = Slot::new(dir.path(), "a.jar");
        assert!(slot.partial().await.unwrap().is_none());

        let mut w = PartWriter::start(&slot.part, 0);
        w.write(Bytes::from_static(b"hel")).await.unwrap();
        let (_, n) = w.finish().await.unwrap();
        assert_eq!(n, 3);
        // A part without a validator is not resumable and is cleaned up.
        assert!(slot.partial().await.unwrap().is_none());
        assert!(!slot.part.exists());

        let mut w = PartWriter::start(&slot.part, 0);
        w.write(Bytes::from_static(b"hel")).await.unwrap();
        w.finish().await.unwrap();
        slot.store_etag(Some("\"v1\"")).await.unwrap();
        assert_eq!(
            slot.partial().await.unwrap(),
            Some((3, "\"v1\"".to_string()))
        );

        let mut w = PartWriter::start(&slot.part, 3);
        w.write(Bytes::from_static(b"lo")).await.unwrap();
        let (h, n) = w.finish().await.unwrap();
        assert_eq!(n, 2);
        assert_eq!(h.finish(), (Sha256::of(b"hello"), 5));

        slot.commit().await.unwrap();
        assert_eq!(std::fs::read(&slot.dest).unwrap(), b"hello");
        assert!(!slot.part.exists() && !slot.etag.exists());
        assert_eq!(
            hash_file(&slot.dest, None).await.unwrap(),
            (Sha256::of(b"hello"), 5)
        );
        assert_eq!(
            hash_file(&slot.dest, Some(3)).await.unwrap(),
            (Sha256::of(b"hel"), 3)
        );
    }
}
