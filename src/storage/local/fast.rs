//! The inline read path of the local backend: a read whose name, metadata and (for a small
//! body) bytes are all in the kernel's caches is served on the calling task, without a trip to
//! the blocking pool. Anything else falls back to the blocking path in `mod.rs`, which is the
//! reference behaviour: this path only ever answers when it can give the same answer.
//!
//! Owns: the open root directory, the in-memory [`Meta`] of each file version, and the calls
//! that can only succeed without waiting for a disk:
//! - `openat2(root, path, RESOLVE_BENEATH | RESOLVE_CACHED)`: the kernel resolves the path
//!   below the root (refusing `..` and symlinks that leave it, so no `canonicalize` and its
//!   system call per segment) and fails with `EAGAIN` instead of reading a directory from disk;
//! - `fstat` of the open file (no I/O: the inode is in memory once open);
//! - `preadv2(RWF_NOWAIT)` of a small body: fails (or reads short) instead of waiting for a
//!   page that is not cached.
//!
//! Every refusal (`EAGAIN`, a short read, a symlink the kernel will not follow beneath the
//! root, a file version whose metadata is not remembered yet, any other error) sends the read
//! down the blocking path, which answers it (and remembers the metadata for the next one).
//! Kernels without `openat2` or `RESOLVE_CACHED` (before Linux 5.12) turn this path off once.
//!
//! Why: the blocking-pool trip was most of the cost of a small file (measured with callgrind
//! and `strace -c` on 4 KiB GETs: seven futex calls and four `readlink`s per request, over
//! a hundred pool threads under 32 connections). nginx reads cached files on its event loop
//! the same way; `RESOLVE_CACHED` and `RWF_NOWAIT` make sure this never waits for a disk.
//!
//! Never stale: a remembered [`Meta`] is used only for the exact file version it was computed
//! for (device, inode, size, modification and change times, from the `fstat` of the very file
//! descriptor the body is read from), so a file replaced, rewritten or touched since is
//! described afresh by the blocking path.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;

use crate::error::Result;
use crate::storage::{ArtifactPath, GetOptions, Meta};

/// Metadata of this many file versions are remembered (the map is emptied when full).
const REMEMBERED: usize = 8192;

/// One version of a data file, as `fstat` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Version {
    fn of(md: &std::fs::Metadata) -> Version {
        Version {
            dev: md.dev(),
            ino: md.ino(),
            size: md.len(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
        }
    }
}

/// What an inline read found.
pub(super) enum Found {
    /// A small body, read whole.
    Bytes(Bytes),
    /// An open file positioned at the range's start (a large body streams from it).
    File(File),
}

/// The inline path of one local store.
#[derive(Debug)]
pub(super) struct Fast {
    root: std::path::PathBuf,
    /// The root, opened once it exists.
    dir: OnceLock<std::os::fd::OwnedFd>,
    metas: Mutex<HashMap<ArtifactPath, (Version, Meta)>>,
}

/// Set when the kernel lacks what this path needs: then it is never tried again.
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

impl Fast {
    pub(super) fn new(root: &Path) -> Fast {
        Fast {
            root: root.to_path_buf(),
            dir: OnceLock::new(),
            metas: Mutex::new(HashMap::new()),
        }
    }

    /// Remembers the metadata the blocking path computed for the file version `md` describes.
    pub(super) fn remember(&self, md: &std::fs::Metadata, meta: &Meta) {
        let mut metas = self.metas.lock().unwrap_or_else(|p| p.into_inner());
        if metas.len() >= REMEMBERED && !metas.contains_key(&meta.path) {
            metas.clear();
        }
        metas.insert(meta.path.clone(), (Version::of(md), meta.clone()));
    }

    /// Forgets a deleted artifact.
    pub(super) fn forget(&self, path: &ArtifactPath) {
        self.metas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(path);
    }

    /// The metadata of `path`, when it can be had without waiting; `None`: ask the blocking path.
    pub(super) fn head(&self, path: &ArtifactPath) -> Option<Meta> {
        let file = self.open(path, true)?;
        let md = file.metadata().ok()?;
        self.meta_of(path, &md)
    }

    /// A read of `path` when everything it needs is cached: the metadata, and for a body of at
    /// most `small` bytes the body itself. `Some(Err)` is the answer (a failed precondition or
    /// an unsatisfiable range); `None`: ask the blocking path.
    pub(super) fn get(
        &self,
        path: &ArtifactPath,
        opts: &GetOptions,
        small: u64,
    ) -> Option<Result<(Meta, Found, Range<u64>)>> {
        let file = self.open(path, false)?;
        let md = file.metadata().ok()?;
        let meta = self.meta_of(path, &md)?;
        if let Err(e) = opts.check(&meta) {
            return Some(Err(e));
        }
        let range = opts.range.clone().unwrap_or(0..meta.size);
        let len = range.end - range.start;
        let found = if len <= small {
            Found::Bytes(read_cached(&file, range.start, len as usize)?)
        } else {
            if range.start > 0 {
                use std::io::Seek;
                let mut f = &file;
                f.seek(std::io::SeekFrom::Start(range.start)).ok()?;
            }
            Found::File(file)
        };
        Some(Ok((meta, found, range)))
    }

    fn meta_of(&self, path: &ArtifactPath, md: &std::fs::Metadata) -> Option<Meta> {
        if !md.is_file() {
            return None;
        }
        let version = Version::of(md);
        let metas = self.metas.lock().unwrap_or_else(|p| p.into_inner());
        match metas.get(path) {
            Some((v, meta)) if *v == version => Some(meta.clone()),
            _ => None,
        }
    }

    /// Opens `path` below the root if the kernel can resolve it from its caches alone
    /// (`path_only`: an `O_PATH` descriptor, enough for `fstat`).
    fn open(&self, path: &ArtifactPath, path_only: bool) -> Option<File> {
        use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
        use rustix::io::Errno;
        if UNSUPPORTED.load(Ordering::Relaxed) || path.is_root() {
            return None;
        }
        let dir = self.dir()?;
        // O_NONBLOCK: opening a FIFO placed under the root must not wait for a writer.
        let flags = if path_only {
            OFlags::PATH | OFlags::CLOEXEC
        } else {
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY
        };
        let resolve = ResolveFlags::BENEATH | ResolveFlags::CACHED | ResolveFlags::NO_MAGICLINKS;
        match openat2(dir, path.as_str(), flags, Mode::empty(), resolve) {
            Ok(fd) => Some(File::from(fd)),
            // No openat2 (ENOSYS), or no RESOLVE_CACHED (EINVAL), or a filter refusing it.
            Err(Errno::NOSYS) | Err(Errno::INVAL) | Err(Errno::PERM) => {
                if !UNSUPPORTED.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        "openat2 with RESOLVE_CACHED is not available: local reads all go through the blocking pool"
                    );
                }
                None
            }
            Err(_) => None,
        }
    }

    fn dir(&self) -> Option<&std::os::fd::OwnedFd> {
        if let Some(fd) = self.dir.get() {
            return Some(fd);
        }
        use rustix::fs::{open, Mode, OFlags};
        // A root that does not exist yet is opened once it does (Storage::start creates it).
        let fd = open(
            &self.root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let _ = self.dir.set(fd);
        self.dir.get()
    }
}

/// `len` bytes at `offset`, only if every page is in the page cache.
fn read_cached(file: &File, offset: u64, len: usize) -> Option<Bytes> {
    use rustix::io::{preadv2, ReadWriteFlags};
    if len == 0 {
        return Some(Bytes::new());
    }
    let mut buf = vec![0u8; len];
    let n = preadv2(
        file,
        &mut [std::io::IoSliceMut::new(&mut buf)],
        offset,
        ReadWriteFlags::NOWAIT,
    )
    .ok()?;
    // Short: part of the range is not cached, or the file shrank; the blocking path decides.
    (n == len).then(|| Bytes::from(buf))
}
