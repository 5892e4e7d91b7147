//! Fills and readers.
//!
//! A *fill* is the one backend read of an object that is not cached yet: a task that writes the
//! backend's bytes into a temporary file and publishes how far it got. Every read of that
//! object, the one that started it and all that join later, *follows* the file: it reads what
//! is written and waits for more, so bytes reach every client as they arrive from the backend.
//! When the last byte is written the file is fsynced and renamed into the data directory under
//! its key; only then does it become an entry. A fill that fails (backend error, object changed)
//! fails every follower and leaves nothing behind. A fill that fails for a local reason (disk
//! full, I/O error) sends its followers to the backend for the rest of their range, so those
//! requests still succeed.
//!
//! The fill also keeps the backend's most recent chunks in memory (the same buffers it hands to
//! its disk writer, up to [`RECENT`] bytes): a reader keeping pace with the backend, as the one
//! that started the fill and those that joined it usually do, takes its bytes from there and
//! never reads them back from the file. Measured on a cold 1 GiB S3 read before this: reading
//! the file back was a tenth of the gateway's CPU, plus a blocking-pool trip per chunk.
//!
//! While a fill has exactly one reader it stays at most half of [`RECENT`] ahead of it, so that
//! reader never falls out of the kept bytes (a backend even slightly faster than the client
//! would otherwise leave it behind for good, reading everything back). With no reader, or two
//! and more, the fill goes at the backend's pace: one slow or stalled client never holds back
//! the others, and a fill whose readers went away still completes. A single stalled reader holds
//! its fill until its connection's idle timeout closes it (or a second reader arrives).
//!
//! A reader that falls behind the kept bytes reads positioned chunks from the file into pooled
//! buffers: beside other transfers on the calling task when the page cache holds them
//! (`file_io::read_inline`), else on the blocking pool one chunk ahead of the one being sent
//! (`file_io::read_at`); they count among
//! `file_io`'s running transfers, so chunks shrink as more readers run and the buffers of every
//! reader of a local file, a cache entry or a fill together stay near `file_io::READ_BUDGET`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{mpsc, watch, Notify};

use super::super::{errors, file_io, ArtifactPath, ByteStream, GetOptions, Meta, Storage};
use super::index::{Key, Pin};
use crate::error::{Error, ErrorKind, Result};

/// Backend chunks queued between the network and the disk writer.
const WRITE_QUEUE: usize = 16;
/// At most this many bytes are written between two progress notifications.
const WRITE_BATCH: usize = 1024 * 1024;
/// The backend's most recent bytes a fill keeps in memory for its readers (at least its last
/// chunk, whatever its size).
const RECENT: usize = 4 * 1024 * 1024;

/// Why a fill stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
    /// A failure of the cache disk rather than of the backend.
    pub local: bool,
    /// ENOSPC or a quota.
    pub disk_full: bool,
}

impl Failure {
    pub fn backend(e: &Error) -> Failure {
        Failure {
            kind: e.kind(),
            message: e.message().to_string(),
            local: false,
            disk_full: false,
        }
    }

    pub fn local(context: &str, e: &std::io::Error) -> Failure {
        Failure {
            kind: ErrorKind::Internal,
            message: format!("cache: {context}: {e}"),
            local: true,
            disk_full: is_disk_full(e),
        }
    }

    fn error(&self, path: &ArtifactPath) -> Error {
        Error::new(self.kind, self.message.clone()).with_path(path.as_str())
    }
}

pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(28) | Some(122))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Creating the temporary file and opening the backend read.
    Opening,
    Streaming,
    /// Every byte is written (the entry may or may not have been kept).
    Done,
    Failed(Failure),
}

#[derive(Debug, Clone)]
pub struct Progress {
    /// Bytes in the file (readable with `pread`).
    pub written: u64,
    /// Bytes received from the backend: the ones past `written` are only in the fill's memory.
    pub received: u64,
    pub phase: Phase,
}

/// The backend's last chunks: `chunks` hold the bytes from offset `start` on, `len` of them.
#[derive(Debug, Default)]
struct Recent {
    start: u64,
    len: usize,
    chunks: VecDeque<Bytes>,
}

/// One backend read in progress, shared by every reader of the object.
pub struct Fill {
    pub key: Key,
    pub path: ArtifactPath,
    pub meta: Meta,
    pub tmp_path: PathBuf,
    /// Set before the phase leaves `Opening`.
    pub file: OnceLock<Arc<File>>,
    pub progress: watch::Sender<Progress>,
    /// Held by every follower; moves into the entry when the fill completes.
    pub pin: Pin,
    pub started: Instant,
    recent: Mutex<Recent>,
    /// Readers following the fill, and where the last one to move stands (see the module doc).
    readers: AtomicUsize,
    reader_pos: AtomicU64,
    reader_moved: Notify,
}

impl Fill {
    pub fn new(key: Key, path: ArtifactPath, meta: Meta, tmp_path: PathBuf) -> Fill {
        Fill {
            key,
            path,
            meta,
            tmp_path,
            file: OnceLock::new(),
            progress: watch::Sender::new(Progress {
                written: 0,
                received: 0,
                phase: Phase::Opening,
            }),
            pin: Arc::new(()),
            started: Instant::now(),
            recent: Mutex::new(Recent::default()),
            readers: AtomicUsize::new(0),
            reader_pos: AtomicU64::new(0),
            reader_moved: Notify::new(),
        }
    }

    /// Waits while the fill's only reader is more than half of [`RECENT`] behind `received`.
    async fn pace(&self, received: u64) {
        loop {
            let moved = self.reader_moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            if self.readers.load(Ordering::Acquire) != 1
                || received.saturating_sub(self.reader_pos.load(Ordering::Acquire))
                    <= (RECENT / 2) as u64
            {
                return;
            }
            moved.await;
        }
    }

    fn reader_at(&self, pos: u64) {
        self.reader_pos.store(pos, Ordering::Release);
        self.reader_moved.notify_one();
    }

    /// Keeps `chunk`, the backend's bytes from `at` on, for readers, then tells them.
    fn receive(&self, at: u64, chunk: Bytes) {
        let received = at + chunk.len() as u64;
        {
            let mut r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if r.chunks.is_empty() {
                r.start = at;
            }
            debug_assert_eq!(r.start + r.len as u64, at, "chunks arrive in order");
            r.len += chunk.len();
            r.chunks.push_back(chunk);
            while r.len > RECENT && r.chunks.len() > 1 {
                let old = r.chunks.pop_front().expect("more than one chunk");
                r.start += old.len() as u64;
                r.len -= old.len();
            }
        }
        self.progress.send_modify(|p| p.received = received);
    }

    /// The kept bytes from `pos` on (at most up to `end`, at most one backend chunk), if `pos`
    /// is among them.
    fn recent(&self, pos: u64, end: u64) -> Option<Bytes> {
        let r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if pos < r.start {
            return None;
        }
        let mut at = r.start;
        for chunk in &r.chunks {
            let next = at + chunk.len() as u64;
            if pos < next {
                let from = (pos - at) as usize;
                let to = (end.min(next) - at) as usize;
                return (to > from).then(|| chunk.slice(from..to));
            }
            at = next;
        }
        None
    }

    /// Lets the kept bytes go (every byte is in the file, or the fill failed).
    fn forget_recent(&self) {
        let mut r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        r.chunks = VecDeque::new();
        r.len = 0;
    }

    pub fn set_phase(&self, phase: Phase) {
        self.progress.send_modify(|p| p.phase = phase);
    }

    /// Waits until the fill has opened its backend read (or failed).
    pub async fn opened(&self) -> std::result::Result<u64, Failure> {
        let mut rx = self.progress.subscribe();
        let p = rx
            .wait_for(|p| p.phase != Phase::Opening)
            .await
            .map(|p| p.clone());
        match p {
            Ok(Progress {
                phase: Phase::Failed(f),
                ..
            }) => Err(f),
            Ok(p) => Ok(p.written),
            Err(_) => Err(Failure {
                kind: ErrorKind::Internal,
                message: "cache: the fill ended without a result".into(),
                local: true,
                disk_full: false,
            }),
        }
    }
}

/// Streams the backend body into the fill's file. Returns the bytes written, or why it stopped.
/// The caller has opened the backend read and set the file.
pub async fn copy_body(
    fill: &Arc<Fill>,
    mut body: ByteStream,
) -> std::result::Result<u64, Failure> {
    let file = fill.file.get().expect("the fill's file is set").clone();
    let (tx, mut rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let writer_fill = fill.clone();
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let mut written = 0u64;
        let mut f: &File = &file;
        while let Some(first) = rx.blocking_recv() {
            // Write what has arrived (up to WRITE_BATCH) before waking the readers once.
            let mut n = first.len();
            f.write_all(&first)?;
            while n < WRITE_BATCH {
                let Ok(more) = rx.try_recv() else { break };
                f.write_all(&more)?;
                n += more.len();
            }
            written += n as u64;
            writer_fill.progress.send_modify(|p| p.written = written);
        }
        f.sync_all()?;
        Ok(written)
    });
    let mut backend_err = None;
    let mut received = 0u64;
    loop {
        fill.pace(received).await;
        let Some(chunk) = body.next().await else {
            break;
        };
        match chunk {
            Ok(c) if c.is_empty() => {}
            Ok(c) => {
                let len = c.len() as u64;
                fill.receive(received, c.clone());
                received += len;
                if tx.send(c).await.is_err() {
                    break; // the writer failed; its error is reported below
                }
            }
            Err(e) => {
                backend_err = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let written = writer.await;
    fill.forget_recent();
    let written = match written {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => return Err(Failure::local("writing the cache file", &e)),
        Err(e) => {
            return Err(Failure {
                kind: ErrorKind::Internal,
                message: format!("cache: the writer task failed: {e}"),
                local: true,
                disk_full: false,
            })
        }
    };
    if let Some(e) = backend_err {
        return Err(Failure::backend(&e));
    }
    Ok(written)
}

/// Where a reader gets its bytes.
pub enum Source {
    /// A fill in progress (or just finished), counted as followed from the moment the read
    /// was planned. Complete entries are served by `hit.rs`.
    Fill(Following),
}

/// How a reader continues when the cache disk fails under it: the rest of its range from the
/// backend, pinned to the version it serves.
#[derive(Clone)]
pub struct Fallback {
    pub backend: Arc<dyn Storage>,
    pub etag: String,
    /// Counts reads sent past the cache this way.
    pub bypassed: Counter,
}

/// Counters a reader updates.
pub struct ReaderMetrics {
    pub served_bytes: Counter<u64, std::sync::atomic::AtomicU64>,
    pub first_byte: Histogram,
    pub started: Instant,
}

impl ReaderMetrics {
    /// Records one chunk handed to the client: the first one's latency once (`first_seen` keeps
    /// track), and its bytes as served from the cache unless the read is a pass-through.
    pub fn chunk(&self, first_seen: &mut bool, len: usize, from_cache: bool) {
        if !*first_seen {
            *first_seen = true;
            self.first_byte
                .observe(self.started.elapsed().as_secs_f64());
        }
        if from_cache {
            self.served_bytes.inc_by(len as u64);
        }
    }
}

struct Reader {
    path: ArtifactPath,
    file: Option<Arc<File>>,
    fill: Option<(Arc<Fill>, watch::Receiver<Progress>)>,
    _pin: Pin,
    pos: u64,
    end: u64,
    fallback: Fallback,
    passthrough: Option<ByteStream>,
    metrics: ReaderMetrics,
    first_seen: bool,
    done: bool,
    /// The next chunk, being read on the blocking pool: (its offset, the read).
    ahead: Option<(u64, ReadTask)>,
    following: Option<Following>,
    _active: file_io::Active,
}

type ReadTask = tokio::task::JoinHandle<std::io::Result<Bytes>>;

/// Counts a reader among its fill's while it lives. Taken when the read is planned, under the
/// cache's lock and before a new fill's task is spawned: a fill never runs unpaced in the time
/// its first reader takes to open (a loaded machine once let it run 4 MiB ahead in that gap).
pub struct Following(Arc<Fill>);

impl Following {
    pub fn new(fill: Arc<Fill>, pos: u64) -> Following {
        fill.readers.fetch_add(1, Ordering::AcqRel);
        fill.reader_at(pos);
        Following(fill)
    }

    pub fn fill(&self) -> &Arc<Fill> {
        &self.0
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        self.0.readers.fetch_sub(1, Ordering::AcqRel);
        self.0.reader_moved.notify_one();
    }
}

/// Reads the chunk at `pos` (at most up to `limit`) on the blocking pool.
fn spawn_read(file: Arc<File>, pos: u64, limit: u64) -> ReadTask {
    file_io::read_at(file, pos, limit - pos)
}

/// A body of the bytes `range` of the object, read from the cache file as it fills.
pub fn read(
    source: Source,
    path: ArtifactPath,
    range: Range<u64>,
    fallback: Fallback,
    metrics: ReaderMetrics,
) -> ByteStream {
    let (file, fill, pin, following) = match source {
        Source::Fill(following) => {
            let f = following.fill().clone();
            let rx = f.progress.subscribe();
            let pin = f.pin.clone();
            (f.file.get().cloned(), Some((f, rx)), pin, Some(following))
        }
    };
    let reader = Reader {
        path,
        file,
        fill,
        _pin: pin,
        pos: range.start,
        end: range.end,
        fallback,
        passthrough: None,
        metrics,
        first_seen: false,
        done: false,
        ahead: None,
        following,
        _active: file_io::Active::begin(),
    };
    Box::pin(futures::stream::unfold(reader, |mut r| async move {
        if r.done {
            return None;
        }
        let item = r.next().await;
        match &item {
            None => None,
            Some(Err(_)) => {
                r.done = true;
                item.map(|i| (i, r))
            }
            Some(Ok(chunk)) => {
                if let Some(f) = &r.following {
                    f.0.reader_at(r.pos);
                }
                let from_cache = r.passthrough.is_none();
                r.metrics.chunk(&mut r.first_seen, chunk.len(), from_cache);
                item.map(|i| (i, r))
            }
        }
    }))
}

impl Reader {
    async fn next(&mut self) -> Option<Result<Bytes>> {
        loop {
            if let Some(s) = &mut self.passthrough {
                return s.next().await;
            }
            if self.pos >= self.end {
                // Done: no longer a reader the fill waits for, even if the body lingers.
                self.following = None;
                return None;
            }
            let ahead_here = matches!(&self.ahead, Some((at, _)) if *at == self.pos);
            // How far the file and the fill's memory go.
            let (available, received) = match &mut self.fill {
                None => (self.end, 0),
                Some((_, rx)) => {
                    let p = rx.borrow_and_update().clone();
                    let available = match p.phase {
                        Phase::Done => self.end,
                        Phase::Failed(f) if f.local => {
                            if let Err(e) = self.fall_back(&f.message).await {
                                return Some(Err(e));
                            }
                            continue;
                        }
                        Phase::Failed(f) => return Some(Err(f.error(&self.path))),
                        Phase::Opening | Phase::Streaming => p.written,
                    };
                    (available, p.received)
                }
            };
            // The bytes just received, unless this chunk is already being read from the file.
            if !ahead_here && received > self.pos {
                if let Some(bytes) = self
                    .fill
                    .as_ref()
                    .and_then(|(f, _)| f.recent(self.pos, self.end))
                {
                    self.ahead = None;
                    self.pos += bytes.len() as u64;
                    return Some(Ok(bytes));
                }
            }
            if available > self.pos {
                let file = match &self.file {
                    Some(f) => f.clone(),
                    None => match self.fill.as_ref().and_then(|(f, _)| f.file.get()) {
                        Some(f) => {
                            self.file = Some(f.clone());
                            f.clone()
                        }
                        None => return Some(Err(internal(&self.path, "no cache file"))),
                    },
                };
                let limit = available.min(self.end);
                // The chunk read ahead while the previous one was being sent, if it is this one.
                let pending = match self.ahead.take() {
                    Some((at, handle)) if at == self.pos => handle,
                    _ => {
                        if let Some(bytes) = file_io::read_inline(&file, self.pos, limit - self.pos)
                        {
                            self.pos += bytes.len() as u64;
                            return Some(Ok(bytes));
                        }
                        spawn_read(file.clone(), self.pos, limit)
                    }
                };
                match pending.await {
                    Ok(Ok(bytes)) => {
                        self.pos += bytes.len() as u64;
                        if self.pos < limit && !file_io::reads_inline() {
                            self.ahead = Some((self.pos, spawn_read(file, self.pos, limit)));
                        }
                        return Some(Ok(bytes));
                    }
                    Ok(Err(e)) => {
                        let why = format!("reading the cache file: {e}");
                        if let Err(e) = self.fall_back(&why).await {
                            return Some(Err(e));
                        }
                        continue;
                    }
                    Err(e) => return Some(Err(internal(&self.path, &e.to_string()))),
                }
            }
            // Wait for the fill to write more (or finish, or fail).
            let Some((_, rx)) = &mut self.fill else {
                return Some(Err(internal(&self.path, "the cache file is short")));
            };
            if rx.changed().await.is_err() {
                // The fill is gone; its last state tells what happened.
                let p = rx.borrow().clone();
                if p.phase != Phase::Done && p.written <= self.pos {
                    return Some(Err(internal(&self.path, "the fill ended without a result")));
                }
            }
        }
    }

    /// Continues from the backend after a local failure.
    async fn fall_back(&mut self, why: &str) -> Result<()> {
        tracing::warn!(path = %self.path.as_str(), reason = %why, offset = self.pos, "cache disk failed under a reader; continuing from the backend");
        self.fallback.bypassed.inc();
        let opts = GetOptions {
            range: Some(self.pos..self.end),
            if_match: Some(self.fallback.etag.clone()),
        };
        let res = self.fallback.backend.get(&self.path, opts).await?;
        self.passthrough = Some(res.body);
        self.fill = None;
        self.following = None;
        self.ahead = None;
        Ok(())
    }
}

fn internal(path: &ArtifactPath, why: &str) -> Error {
    Error::new(ErrorKind::Internal, format!("cache: {why}")).with_path(path.as_str())
}

/// The error a follower sees when the fill could not open its backend read.
pub fn open_error(f: &Failure, path: &ArtifactPath) -> Error {
    if f.kind == ErrorKind::PreconditionFailed {
        return errors::changed(path);
    }
    f.error(path)
}
