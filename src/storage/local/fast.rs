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
//!
//! Small bodies kept in memory: a whole file of at most `small` bytes whose last change is
//! older than [`SETTLED`] is kept with its metadata ([`KEPT_BYTES`] in all; all are let go when
//! that is exceeded). A later read of it costs one `fstatat` of its path instead of `openat2`,
//! `fstat`, `preadv2` and `close`: measured on a bare hyper server answering 4 KiB GETs, those
//! four calls cost a third of its throughput, one `fstatat` a sixth. The body is served only
//! when the `fstatat` finds the same version it was read from, and "settled" makes that exact:
//! a change after the read moves the change time (which no caller can set) to a time that is
//! at least [`SETTLED`] later than the kept one, however coarse the filesystem's clock. (The
//! one change that may not move it is a write through a shared memory map into a page already
//! dirty; such a file is served as its times last said until the kernel writes that page back.
//! Artifacts are written by uploads, which replace the file.)
//!
//! `fstatat` resolves the path without `RESOLVE_BENEATH` and `RESOLVE_CACHED`. Beneath: only
//! the version is compared, so a path that now leads elsewhere serves nothing it was not
//! already serving (the same inode, unchanged). Cached: a kept body is used only while it was
//! served in the last [`WARM`]; past that the read takes the `openat2` path again, which never
//! waits for a disk, so a path whose directory entries may have left the kernel's caches is
//! never resolved on the event loop.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::error::Result;
use crate::storage::{ArtifactPath, GetOptions, Meta};

/// Metadata of this many file versions are remembered (the map is emptied when full).
const REMEMBERED: usize = 8192;
/// Bytes of small bodies kept in memory, in all.
const KEPT_BYTES: usize = 8 << 20;
/// A body is kept only if its file's last change was at least this long before the read.
const SETTLED: Duration = Duration::from_secs(2);
/// A kept body answers a read only if it answered one within this long.
const WARM: Duration = Duration::from_secs(10);

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

    fn of_stat(st: &rustix::fs::Stat) -> Version {
        Version {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime: (st.st_mtime, st.st_mtime_nsec as i64),
            ctime: (st.st_ctime, st.st_ctime_nsec as i64),
        }
    }

    /// Whether the file last changed at least `SETTLED` before `now`.
    fn settled(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        let (secs, nanos) = self.ctime;
        let (Ok(secs), Ok(nanos)) = (u64::try_from(secs), u32::try_from(nanos)) else {
            return false;
        };
        Duration::new(secs, nanos.min(999_999_999)) + SETTLED <= now
    }
}

/// What is remembered of one file version.
#[derive(Debug)]
struct Remembered {
    version: Version,
    meta: Meta,
    /// The whole body, for a small settled file; and when it last answered a read.
    body: Option<(Bytes, Instant)>,
}

#[derive(Debug, Default)]
struct Memory {
    files: HashMap<ArtifactPath, Remembered>,
    /// Bytes of the kept bodies.
    kept: usize,
}

impl Memory {
    fn insert(&mut self, path: ArtifactPath, r: Remembered) {
        if self.files.len() >= REMEMBERED && !self.files.contains_key(&path) {
            self.files.clear();
            self.kept = 0;
        }
        if let Some(old) = self.files.insert(path, r) {
            self.kept -= old.body.map_or(0, |(b, _)| b.len());
        }
    }

    fn remove(&mut self, path: &ArtifactPath) {
        if let Some(old) = self.files.remove(path) {
            self.kept -= old.body.map_or(0, |(b, _)| b.len());
        }
    }

    /// Keeps `body` as the whole of `path`'s remembered version `version` (or, when it is kept
    /// already, marks it as used now: the read that found it gone cold resolved the path from
    /// the kernel's caches).
    fn keep(&mut self, path: &ArtifactPath, version: &Version, body: &Bytes) {
        if let Some(r) = self.files.get_mut(path) {
            if let (true, Some((_, used))) = (r.version == *version, r.body.as_mut()) {
                *used = Instant::now();
                return;
            }
        }
        if body.len() > KEPT_BYTES {
            return;
        }
        if self.kept + body.len() > KEPT_BYTES {
            for r in self.files.values_mut() {
                r.body = None;
            }
            self.kept = 0;
        }
        if let Some(r) = self.files.get_mut(path) {
            if r.version == *version && r.body.is_none() {
                r.body = Some((body.clone(), Instant::now()));
                self.kept += body.len();
            }
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
    memory: Mutex<Memory>,
}

/// Set when the kernel lacks what this path needs: then it is never tried again.
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

impl Fast {
    pub(super) fn new(root: &Path) -> Fast {
        Fast {
            root: root.to_path_buf(),
            dir: OnceLock::new(),
            memory: Mutex::new(Memory::default()),
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers the metadata the blocking path computed for the file version `md` describes.
    pub(super) fn remember(&self, md: &std::fs::Metadata, meta: &Meta) {
        let r = Remembered {
            version: Version::of(md),
            meta: meta.clone(),
            body: None,
        };
        self.memory().insert(meta.path.clone(), r);
    }

    /// Forgets a deleted artifact.
    pub(super) fn forget(&self, path: &ArtifactPath) {
        self.memory().remove(path);
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
        if let Some(kept) = self.kept(path, opts) {
            return Some(kept);
        }
        let file = self.open(path, false)?;
        let md = file.metadata().ok()?;
        let meta = self.meta_of(path, &md)?;
        if let Err(e) = opts.check(&meta) {
            return Some(Err(e));
        }
        let range = opts.range.clone().unwrap_or(0..meta.size);
        let len = range.end - range.start;
        let found = if len <= small {
            let bytes = read_cached(&file, range.start, len as usize)?;
            let version = Version::of(&md);
            if range == (0..meta.size) && version.settled(SystemTime::now()) {
                self.memory().keep(path, &version, &bytes);
            }
            Found::Bytes(bytes)
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
        match self.memory().files.get(path) {
            Some(r) if r.version == version => Some(r.meta.clone()),
            _ => None,
        }
    }

    /// A read answered from a kept body, if `path` has one that answered a read lately and the
    /// path's file is still the version it was read from (see the module doc).
    fn kept(
        &self,
        path: &ArtifactPath,
        opts: &GetOptions,
    ) -> Option<Result<(Meta, Found, Range<u64>)>> {
        let (version, meta, body) = {
            let mut memory = self.memory();
            let r = memory.files.get_mut(path)?;
            let (body, used) = r.body.as_mut()?;
            let now = Instant::now();
            if now.duration_since(*used) > WARM {
                return None;
            }
            *used = now;
            (r.version, r.meta.clone(), body.clone())
        };
        let dir = self.dir()?;
        let st =
            rustix::fs::statat(dir, path.as_str(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW).ok()?;
        if Version::of_stat(&st) != version {
            return None;
        }
        if let Err(e) = opts.check(&meta) {
            return Some(Err(e));
        }
        let range = opts.range.clone().unwrap_or(0..meta.size);
        let found = Found::Bytes(body.slice(range.start as usize..range.end as usize));
        Some(Ok((meta, found, range)))
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

/// `len` bytes at `offset`, only if every page is in the page cache (short: part of the range
/// is not cached, or the file shrank; the blocking path decides).
fn read_cached(file: &File, offset: u64, len: usize) -> Option<Bytes> {
    if len == 0 {
        return Some(Bytes::new());
    }
    let mut buf = vec![0u8; len];
    crate::storage::file_io::pread_cached(file, &mut buf, offset).then(|| Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::local::LocalStorage;
    use crate::storage::Storage;
    use futures::StreamExt;

    async fn read(store: &LocalStorage, path: &ArtifactPath) -> Vec<u8> {
        let res = store.get(path, GetOptions::default()).await.unwrap();
        res.body.map(|c| c.unwrap().to_vec()).concat().await
    }

    fn kept(store: &LocalStorage, path: &ArtifactPath) -> Option<Bytes> {
        let memory = store.inner.fast.memory();
        memory
            .files
            .get(path)?
            .body
            .as_ref()
            .map(|(b, _)| b.clone())
    }

    #[test]
    fn both_stats_describe_a_file_alike() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let std_md = std::fs::metadata(&file).unwrap();
        let st = rustix::fs::stat(&file).unwrap();
        assert_eq!(Version::of(&std_md), Version::of_stat(&st));
    }

    /// A settled small file is kept after a read and answers the next reads; one that changed
    /// in the last `SETTLED` is not kept; a kept body whose file changed is not used.
    #[tokio::test]
    async fn small_settled_bodies_are_kept_and_dropped_when_their_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStorage::new(dir.path()).unwrap();
        store.start().await.unwrap();
        let p = ArtifactPath::parse("a/small.jar").unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/small.jar"), b"first").unwrap();
        // Fresh: read (the blocking path remembers the metadata), read (the inline path), not kept.
        assert_eq!(read(&store, &p).await, b"first");
        assert_eq!(read(&store, &p).await, b"first");
        assert!(
            kept(&store, &p).is_none(),
            "a file changed just now is not kept"
        );
        tokio::time::sleep(SETTLED + Duration::from_millis(100)).await;
        assert_eq!(read(&store, &p).await, b"first");
        assert_eq!(kept(&store, &p).as_deref(), Some(&b"first"[..]));
        let opts = GetOptions::default();
        let Some(Ok((_, Found::Bytes(b), _))) = store.inner.fast.kept(&p, &opts) else {
            panic!("the kept body answers");
        };
        assert_eq!(&b[..], b"first");
        // A range, and a pinned read, answered from the kept body like from the file.
        let ranged = GetOptions {
            range: Some(1..4),
            ..Default::default()
        };
        let Some(Ok((_, Found::Bytes(b), r))) = store.inner.fast.kept(&p, &ranged) else {
            panic!("the kept body answers a range");
        };
        assert_eq!((&b[..], r), (&b"irs"[..], 1..4));
        let outside = GetOptions {
            range: Some(3..9),
            ..Default::default()
        };
        assert!(
            matches!(store.inner.fast.kept(&p, &outside), Some(Err(_))),
            "a range past the end is refused"
        );
        let pinned = GetOptions {
            if_match: Some("\"other\"".into()),
            ..Default::default()
        };
        assert!(
            matches!(store.inner.fast.kept(&p, &pinned), Some(Err(_))),
            "another version is refused"
        );
        // Gone cold (not used for WARM): not answered from memory until a read resolves the path
        // from the kernel's caches again; then it is.
        if let Some((_, used)) = store
            .inner
            .fast
            .memory()
            .files
            .get_mut(&p)
            .unwrap()
            .body
            .as_mut()
        {
            *used = Instant::now()
                .checked_sub(WARM + Duration::from_secs(1))
                .unwrap();
        }
        assert!(
            store.inner.fast.kept(&p, &opts).is_none(),
            "a cold kept body is not used"
        );
        assert_eq!(read(&store, &p).await, b"first");
        assert!(
            store.inner.fast.kept(&p, &opts).is_some(),
            "a read warms it again"
        );
        // Rewritten in place, same size, modification time put back: the change time moved.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("a/small.jar"))
            .unwrap();
        let mtime = file.metadata().unwrap().modified().unwrap();
        use std::io::Write;
        (&file).write_all(b"again").unwrap();
        file.set_modified(mtime).unwrap();
        assert!(
            store.inner.fast.kept(&p, &opts).is_none(),
            "a changed file's kept body is not used"
        );
        assert_eq!(read(&store, &p).await, b"again");
    }
}
