//! The storage abstraction: one narrow async trait, its option structs, and the backends.
//!
//! Owns: [`Storage`], [`ArtifactPath`], metadata and listing types, capabilities, digest helpers.
//! Must never import `service` or `http`. Only [`registry`] matches on the backend kind; every
//! backend is a constructor feeding one adapter per library (local files, `object_store`,
//! `opendal`).
//!
//! Contracts every backend keeps (each has a case in `tests/conformance`):
//! - `put` is atomic: readers see the old artifact or the whole new one, never a prefix; a body
//!   that fails midway (client gone, digest mismatch, size limit) leaves nothing under any name.
//! - `put` hashes the body while streaming it; a declared SHA-256 that does not match is
//!   [`ErrorKind::DigestMismatch`] and nothing is stored.
//! - `head`/`get` return the SHA-256 and content type recorded at `put`, or `None` for objects
//!   written by other tools: never a wrong digest.
//! - `get` bodies yield exactly the promised bytes or end with an error.
//! - `delete` of a missing artifact is [`ErrorKind::NotFound`].
//! - `list` returns one level, sorted by name, paginated with `after`.

pub mod blocking;
pub mod cache;
pub mod digest;
pub mod errors;
pub mod etag;
pub mod file_io;
pub mod hdfs;
pub mod local;
pub mod metered;
pub mod metrics;
pub mod object_store;
pub mod opendal;
pub mod oss;
pub mod path;
pub mod registry;
pub mod s3;
pub mod sidecar;

use std::fmt;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, Stream};

pub use digest::Sha256;
pub use path::ArtifactPath;

use crate::error::{Error, ErrorKind, Result};

/// A stream of body chunks. Errors end the stream.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// What a backend knows about one artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub path: ArtifactPath,
    pub size: u64,
    pub last_modified: SystemTime,
    /// A strong validator, without quotes: it changes whenever the content may have changed.
    pub etag: String,
    /// The SHA-256 recorded when the gateway stored it; `None` when unknown.
    pub sha256: Option<Sha256>,
    pub content_type: Option<String>,
}

/// Options for [`Storage::get`].
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// Bytes `[start, end)`, already resolved against the size by the caller.
    pub range: Option<Range<u64>>,
    /// Serve only the version with this ETag; otherwise [`ErrorKind::PreconditionFailed`].
    /// Callers pin the version whose headers they already computed.
    pub if_match: Option<String>,
}

impl GetOptions {
    /// The one precondition check for backends that cannot push `if_match` down.
    pub fn check(&self, meta: &Meta) -> Result<()> {
        if let Some(want) = &self.if_match {
            if want != &meta.etag {
                return Err(errors::changed(&meta.path));
            }
        }
        if let Some(r) = &self.range {
            if r.start > r.end || r.end > meta.size {
                return Err(Error::new(
                    ErrorKind::RangeNotSatisfiable,
                    format!(
                        "range {}-{} is outside an artifact of {} bytes",
                        r.start, r.end, meta.size
                    ),
                )
                .with_path(meta.path.as_str()));
            }
        }
        Ok(())
    }
}

/// The result of [`Storage::get`].
pub struct GetResult {
    pub meta: Meta,
    /// The bytes the body carries.
    pub range: Range<u64>,
    pub body: ByteStream,
}

impl GetResult {
    /// A result whose body yields exactly the bytes of `range` (see [`exact_length`]); an
    /// empty range needs no body at all.
    pub fn new(meta: Meta, range: Range<u64>, body: ByteStream) -> GetResult {
        let len = range.end.saturating_sub(range.start);
        let body = if len == 0 {
            Box::pin(futures::stream::empty())
        } else {
            exact_length(body, len, &meta.path)
        };
        GetResult { meta, range, body }
    }

    /// A result whose bytes were read whole: one chunk, with no length check left to do when
    /// it is exactly the range (otherwise it fails like any body of the wrong length).
    pub fn whole(meta: Meta, range: Range<u64>, bytes: Bytes) -> GetResult {
        let exact =
            !bytes.is_empty() && bytes.len() as u64 == range.end.saturating_sub(range.start);
        let once: ByteStream = Box::pin(futures::stream::once(std::future::ready(Ok(bytes))));
        if exact {
            GetResult::exact(meta, range, once)
        } else {
            GetResult::new(meta, range, once)
        }
    }

    /// A result whose body already checks that it yields exactly the bytes of `range` (a
    /// stream built with [`exact_length`], or bytes of the range's length).
    pub fn exact(meta: Meta, range: Range<u64>, body: ByteStream) -> GetResult {
        GetResult { meta, range, body }
    }

    /// The empty read of an empty range: no request for bytes is needed.
    pub fn empty(meta: Meta, range: Range<u64>) -> GetResult {
        GetResult::new(meta, range, Box::pin(futures::stream::empty()))
    }
}

impl fmt::Debug for GetResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetResult")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// How a put treats an existing artifact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PutMode {
    /// Replace whatever is there.
    #[default]
    Overwrite,
    /// Fail with [`ErrorKind::PreconditionFailed`] if the artifact exists (`If-None-Match: *`).
    Create,
    /// Replace only the version with this ETag (`If-Match`).
    Update { etag: String },
}

impl PutMode {
    /// The one put precondition, shared by every backend (the counterpart of
    /// [`GetOptions::check`]): `current` is the ETag of the stored artifact, `None` when there
    /// is none. Backends that can push the condition down to the store still call it first, so
    /// the refusal reads the same everywhere.
    pub fn check(&self, path: &ArtifactPath, current: Option<&str>) -> Result<()> {
        match (self, current) {
            (PutMode::Overwrite, _) | (PutMode::Create, None) => Ok(()),
            (PutMode::Create, Some(_)) => Err(errors::exists(path)),
            (PutMode::Update { .. }, None) => Err(errors::nothing_to_replace(path)),
            (PutMode::Update { etag }, Some(now)) if now != etag => {
                Err(errors::etag_mismatch(path))
            }
            (PutMode::Update { .. }, Some(_)) => Ok(()),
        }
    }
}

/// Options for [`Storage::put`].
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub mode: PutMode,
    pub content_type: Option<String>,
    /// The digest the client declared; checked before the artifact becomes visible.
    pub sha256: Option<Sha256>,
    /// Refuse (with [`ErrorKind::TooLarge`]) bodies longer than this.
    pub max_size: Option<u64>,
}

impl PutOptions {
    /// The content type to record: the declared one, or a guess from the file name.
    pub fn content_type_for(&self, path: &ArtifactPath) -> String {
        self.content_type
            .clone()
            .unwrap_or_else(|| guess_content_type(path))
    }
}

/// What [`Storage::put`] stores: the body, and how to store it.
pub struct Upload {
    pub body: ByteStream,
    pub opts: PutOptions,
}

impl Upload {
    /// `body` stored with the default options: overwrite, content type guessed from the name,
    /// no declared digest, no size limit.
    pub fn new(body: ByteStream) -> Upload {
        Upload::with(body, PutOptions::default())
    }

    /// `body` stored as `opts` say.
    pub fn with(body: ByteStream, opts: PutOptions) -> Upload {
        Upload { body, opts }
    }
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upload")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// The result of [`Storage::put`].
#[derive(Debug, Clone)]
pub struct PutResult {
    pub meta: Meta,
    /// `true` when nothing existed under the path before.
    pub created: bool,
}

/// How an adapter cuts a large upload into parts: memory per upload is about
/// `part_size * (concurrency + 1)`, whatever the body's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadTuning {
    /// Bytes per part; bodies up to this size are one request.
    pub part_size: usize,
    /// Parts in flight per upload.
    pub concurrency: usize,
}

/// Options for [`Storage::list`].
#[derive(Debug, Clone)]
pub struct ListOptions {
    /// At most this many entries (directories count).
    pub limit: usize,
    /// Start strictly after this entry name.
    pub after: Option<String>,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            limit: 1000,
            after: None,
        }
    }
}

/// One entry of a listing: a file or a directory (a common prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The last segment only.
    pub name: String,
    pub is_dir: bool,
    pub size: Option<u64>,
    pub last_modified: Option<SystemTime>,
    pub etag: Option<String>,
    pub sha256: Option<Sha256>,
}

impl Entry {
    /// A directory (a common prefix): a name and nothing else.
    pub fn dir(name: impl Into<String>) -> Entry {
        Entry {
            name: name.into(),
            is_dir: true,
            size: None,
            last_modified: None,
            etag: None,
            sha256: None,
        }
    }

    /// An artifact. Listings of stores that keep the digest apart from the object pass `None`
    /// rather than pay a request per entry.
    pub fn file(
        name: impl Into<String>,
        size: u64,
        last_modified: Option<SystemTime>,
        etag: Option<String>,
        sha256: Option<Sha256>,
    ) -> Entry {
        Entry {
            name: name.into(),
            is_dir: false,
            size: Some(size),
            last_modified,
            etag,
            sha256,
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub entries: Vec<Entry>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next_after: Option<String>,
}

impl ListPage {
    /// A page of `entries`; when `more` follow, the next page starts after the last of them.
    pub fn new(entries: Vec<Entry>, more: bool) -> ListPage {
        let next_after = more
            .then(|| entries.last().map(|e| e.name.clone()))
            .flatten();
        ListPage {
            entries,
            next_after,
        }
    }
}

/// What a backend supports; tests select on it and unsupported calls fail with
/// [`ErrorKind::Unsupported`] instead of being emulated unsafely.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Reads of a byte range without reading the prefix.
    pub range_read: bool,
    /// `GetOptions::if_match` is enforced atomically by the store.
    pub pinned_read: bool,
    /// `PutMode::Create` is atomic against concurrent writers (otherwise check-then-write).
    pub atomic_create: bool,
    /// `PutMode::Update` is atomic against concurrent writers (otherwise check-then-write).
    pub atomic_update: bool,
    /// The SHA-256 and content type recorded at put come back on head/get.
    pub stores_digest: bool,
}

impl Capabilities {
    /// Everything, natively (the local backend); others name what they lack.
    pub const ALL: Capabilities = Capabilities {
        range_read: true,
        pinned_read: true,
        atomic_create: true,
        atomic_update: true,
        stores_digest: true,
    };
}

/// The storage trait every backend implements.
#[async_trait]
pub trait Storage: Send + Sync + fmt::Debug + 'static {
    /// A short description for logs and `/readyz`: `local:/srv/artifacts`, `s3://bucket/prefix`.
    fn describe(&self) -> String;

    fn capabilities(&self) -> Capabilities;

    async fn head(&self, path: &ArtifactPath) -> Result<Meta>;

    async fn get(&self, path: &ArtifactPath, opts: GetOptions) -> Result<GetResult>;

    async fn put(&self, path: &ArtifactPath, upload: Upload) -> Result<PutResult>;

    async fn delete(&self, path: &ArtifactPath) -> Result<()>;

    /// One level below `dir`, sorted by name.
    async fn list(&self, dir: &ArtifactPath, opts: ListOptions) -> Result<ListPage>;

    /// A cheap check that the backend is reachable and usable.
    async fn ready(&self) -> Result<()>;

    /// Housekeeping a server runs once at start-up (removing uploads a crash left behind,
    /// creating a missing data directory). Opening a store never writes: a store that is only
    /// read (`fetch`, a read-only mount) is never started, and works without it.
    async fn start(&self) -> Result<()> {
        Ok(())
    }

    /// The server's start-up probe whether writes can succeed: [`ErrorKind::ReadOnly`] when the
    /// store can only be read (a directory on a read-only filesystem, or one this process may
    /// not write), so the mount serves reads and refuses writes up front. Other errors are
    /// reported but do not make the mount read-only. Stores that cannot tell cheaply say `Ok`.
    async fn check_writable(&self) -> Result<()> {
        Ok(())
    }
}

/// Wraps a body so it yields exactly `expected` bytes: a short or long stream ends with an
/// error instead of looking complete. Every backend's `get` goes through it.
pub fn exact_length(inner: ByteStream, expected: u64, path: &ArtifactPath) -> ByteStream {
    Box::pin(ExactLength {
        inner,
        remaining: expected,
        path: path.as_str().to_string(),
        done: false,
    })
}

struct ExactLength {
    inner: ByteStream,
    remaining: u64,
    path: String,
    done: bool,
}

impl Stream for ExactLength {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                let n = chunk.len() as u64;
                if n > self.remaining {
                    self.done = true;
                    let err = Error::new(
                        ErrorKind::BackendUnavailable,
                        "the backend sent more bytes than the artifact's size",
                    )
                    .with_path(self.path.clone());
                    return Poll::Ready(Some(Err(err)));
                }
                self.remaining -= n;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.done = true;
                if self.remaining == 0 {
                    Poll::Ready(None)
                } else {
                    let err = Error::new(
                        ErrorKind::BackendUnavailable,
                        format!("the backend stream ended {} bytes early", self.remaining),
                    )
                    .with_path(self.path.clone());
                    Poll::Ready(Some(Err(err)))
                }
            }
        }
    }
}

/// Wraps an upload body: hashes and counts it, and fails with [`ErrorKind::TooLarge`] once it
/// passes `max_size`. Backends call [`HashingBody::finish`] after the last chunk and before
/// making the artifact visible.
pub struct HashingBody {
    inner: ByteStream,
    hasher: digest::Hasher,
    max_size: Option<u64>,
}

impl HashingBody {
    pub fn new(inner: ByteStream, max_size: Option<u64>) -> Self {
        HashingBody {
            inner,
            hasher: digest::Hasher::new(),
            max_size,
        }
    }

    /// The next chunk, hashed; `Ok(None)` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        use futures::StreamExt;
        match self.inner.next().await {
            None => Ok(None),
            Some(Err(e)) => Err(e),
            Some(Ok(chunk)) => {
                self.hasher.update(&chunk);
                if let Some(max) = self.max_size {
                    if self.hasher.len() > max {
                        return Err(Error::new(
                            ErrorKind::TooLarge,
                            format!("the body is larger than the limit of {max} bytes"),
                        ));
                    }
                }
                Ok(Some(chunk))
            }
        }
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    /// The digest and length; checks the declared digest.
    pub fn finish(self, expected: Option<Sha256>, path: &ArtifactPath) -> Result<(Sha256, u64)> {
        let (actual, len) = self.hasher.finish();
        digest::verify(expected, actual, path.as_str()).map_err(|e| e.with_path(path.as_str()))?;
        Ok((actual, len))
    }
}

/// A content type guessed from the file name (`.jar` → `application/java-archive`).
pub fn guess_content_type(path: &ArtifactPath) -> String {
    let name = path.file_name();
    let lower = name.to_ascii_lowercase();
    // The guesses mime_guess lacks or gets wrong for Flink artifacts.
    let special = [
        (".jar", "application/java-archive"),
        (".sql", "application/sql"),
        (".py", "text/x-python"),
        (".yaml", "application/yaml"),
        (".yml", "application/yaml"),
    ];
    for (ext, ty) in special {
        if lower.ends_with(ext) {
            return ty.to_string();
        }
    }
    mime_guess::from_path(name)
        .first_or_octet_stream()
        .essence_str()
        .to_string()
}
