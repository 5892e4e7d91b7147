//! The adapter over an `opendal::Operator`: one `Storage` implementation for every opendal
//! service the gateway builds (today Aliyun OSS, see `oss.rs`). Constructors build the operator
//! and hand it over; behaviour lives here and is chosen from the operator's declared
//! `Capability`, never from the service's name.
//!
//! Owns: how the trait's contracts are kept on an object store reached through opendal. Must
//! never import `service` or `http`.
//!
//! - **Atomic put.** The body streams into an opendal writer (multipart for large bodies, one PUT
//!   for small ones). Nothing is visible under the name until `close` completes the upload; a
//!   body that fails midway, a digest mismatch and the size limit all `abort` the upload first.
//!   A put future dropped midway (client gone) aborts from a guard. Memory per upload is bounded
//!   by the part size: about `part_size * (concurrency + 1)` of body data (8 MiB parts, 2 in flight;
//!   a 1 GiB upload to the OSS test server peaked at 67 MiB RSS for the whole gateway).
//! - **Create and guarded update.** `PutMode::Create` is pushed down when the service can refuse
//!   to overwrite (OSS `x-oss-forbid-overwrite`); otherwise it is check-then-write. opendal's OSS
//!   service cannot send `If-Match` on a write, so `PutMode::Update` is checked before the body
//!   streams and again right before the upload completes; a writer racing in between wins
//!   silently. [`Capabilities`] says so (`atomic_update: false`).
//! - **Digest and content type.** The content type travels with the object (`Content-Type`).
//!   The SHA-256 lives in the sidecar of `sidecar.rs`, keyed by the object's ETag and size, and
//!   is written right after the upload completes: a reader racing a put may briefly see the new
//!   object without a digest, never with a wrong one. Listings carry no digests (one extra read
//!   per entry would be needed).
//! - **Reads.** `head` is a HEAD plus the sidecar read, in parallel. `get` pins the version: the
//!   GET carries `If-Match` with the ETag the HEAD returned (pushed down when the service can),
//!   ranges are pushed down, and the first chunk is awaited before returning so a refused
//!   precondition is an error, not a broken body. Bodies go through [`exact_length`].
//! - **Listing** is one level (delimiter `/`), starts after `after` on the server
//!   (`start-after`), reads one page of about `limit` keys and never walks the bucket. Key order
//!   is not name order for a directory `d` next to names like `d-1.jar` (`d-1.jar` < `d/` as keys,
//!   `d` < `d-1.jar` as names); the few directories that can be out of order are probed
//!   (one `max-keys=1` list each) so pages are exactly name-sorted. Assumes the service fills a
//!   truncated page up to `max-keys`, as OSS does.
//! - **Errors.** opendal's kinds map one to one where they can; `Unexpected` errors that are
//!   temporary (5xx, connection failures) become `BackendUnavailable` so the service retries
//!   reads. The operator has no retry or timeout layer: the service owns retries and deadlines.

mod errors;
mod list;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use ::opendal::{Buffer, Capability, ErrorKind as OdKind, Operator};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::errors::{exists, not_found, reword};
use super::etag::{quote, unquote};
use super::sidecar::{self, Record};
use super::{
    guess_content_type, ArtifactPath, Capabilities, GetOptions, GetResult, HashingBody,
    ListOptions, ListPage, Meta, PutMode, PutResult, Storage, Upload, UploadTuning,
};
use crate::error::{Error, ErrorKind, Result};

pub use errors::map_error;

/// Parts of 8 MiB, 2 in flight, unless the backend says otherwise.
pub const DEFAULT_TUNING: UploadTuning = UploadTuning {
    part_size: 8 * 1024 * 1024,
    concurrency: 2,
};

/// `Storage` over an opendal operator whose root is the mount's prefix.
#[derive(Debug, Clone)]
pub struct OpendalStorage {
    op: Operator,
    describe: String,
    /// Name of the service in error messages (`OSS`).
    service: &'static str,
    cap: Capability,
    tuning: UploadTuning,
}

impl OpendalStorage {
    pub fn new(
        op: Operator,
        service: &'static str,
        describe: String,
        tuning: UploadTuning,
    ) -> Self {
        let cap = op.info().capability();
        OpendalStorage {
            op,
            describe,
            service,
            cap,
            tuning,
        }
    }

    fn err(&self, what: &str, e: ::opendal::Error, path: Option<&ArtifactPath>) -> Error {
        let err = map_error(self.service, what, e);
        match path {
            Some(p) => err.with_path(p.as_str()),
            None => err,
        }
    }

    /// Stats an artifact. `Ok(None)` when nothing is there (or only a "directory").
    async fn stat_opt(
        &self,
        path: &ArtifactPath,
        if_match: Option<&str>,
    ) -> Result<Option<::opendal::Metadata>> {
        let mut fut = self.op.stat_with(path.as_str());
        if let Some(tag) = if_match {
            fut = fut.if_match(&quote(tag));
        }
        match fut.await {
            Ok(md) if md.is_dir() => Ok(None),
            Ok(md) => Ok(Some(md)),
            Err(e) if matches!(e.kind(), OdKind::NotFound | OdKind::IsADirectory) => Ok(None),
            Err(e) => Err(self.err("stat", e, Some(path))),
        }
    }

    /// The sidecar's bytes, `None` when there is none (or it is not ours).
    async fn read_sidecar(&self, path: &ArtifactPath) -> Result<Option<Buffer>> {
        let key = sidecar::meta_key(path);
        match self.op.read(&key).await {
            Ok(buf) if buf.len() as u64 <= sidecar::MAX_SIDECAR_BYTES => Ok(Some(buf)),
            Ok(_) => Ok(None),
            Err(e) if matches!(e.kind(), OdKind::NotFound | OdKind::IsADirectory) => Ok(None),
            Err(e) => Err(self.err("read metadata sidecar", e, Some(path))),
        }
    }

    /// HEAD and sidecar in parallel; `NotFound` when there is no file.
    async fn head_inner(&self, path: &ArtifactPath, if_match: Option<&str>) -> Result<Meta> {
        if path.is_root() {
            return Err(not_found(path));
        }
        let push_down = if_match.filter(|_| self.cap.stat_with_if_match);
        let (stat, side) = futures::join!(self.stat_opt(path, push_down), self.read_sidecar(path));
        let md = stat?.ok_or_else(|| not_found(path))?;
        // A failed sidecar read only costs the digest.
        let side = side.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the metadata sidecar; serving without a digest");
            None
        });
        Ok(self.meta_of(path, &md, side.map(|b| b.to_bytes())))
    }

    fn meta_of(&self, path: &ArtifactPath, md: &::opendal::Metadata, side: Option<Bytes>) -> Meta {
        let etag = md.etag().map(unquote).unwrap_or_default().to_string();
        let size = md.content_length();
        let record = side.and_then(|b| Record::matching(&b, size, &etag));
        let content_type = record
            .as_ref()
            .and_then(|r| r.content_type().map(str::to_string))
            .or_else(|| md.content_type().map(str::to_string))
            .unwrap_or_else(|| guess_content_type(path));
        Meta {
            path: path.clone(),
            size,
            last_modified: md
                .last_modified()
                .map(SystemTime::from)
                .unwrap_or(SystemTime::UNIX_EPOCH),
            etag,
            sha256: record.as_ref().and_then(Record::sha256),
            content_type: Some(content_type),
        }
    }

    /// Checks the put mode against what is stored now. Returns whether something exists.
    async fn check_mode(&self, path: &ArtifactPath, mode: &PutMode) -> Result<bool> {
        let current = self.stat_opt(path, None).await?;
        let etag = current
            .as_ref()
            .map(|md| md.etag().map(unquote).unwrap_or_default());
        mode.check(path, etag)?;
        Ok(current.is_some())
    }

    /// Streams the body into an open writer; the caller aborts on error.
    async fn stream_body(
        &self,
        path: &ArtifactPath,
        writer: &mut ::opendal::Writer,
        body: &mut HashingBody,
    ) -> Result<()> {
        while let Some(chunk) = body
            .next_chunk()
            .await
            .map_err(|e| e.with_path(path.as_str()))?
        {
            writer
                .write(chunk)
                .await
                .map_err(|e| self.err("upload", e, Some(path)))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Storage for OpendalStorage {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            range_read: self.cap.read,
            pinned_read: self.cap.read_with_if_match,
            atomic_create: self.cap.write_with_if_not_exists,
            atomic_update: self.cap.write_with_if_match,
            stores_digest: true,
        }
    }

    async fn head(&self, path: &ArtifactPath) -> Result<Meta> {
        self.head_inner(path, None).await
    }

    async fn get(&self, path: &ArtifactPath, opts: GetOptions) -> Result<GetResult> {
        let meta = self.head_inner(path, opts.if_match.as_deref()).await?;
        opts.check(&meta)?;
        let range = opts.range.clone().unwrap_or(0..meta.size);
        let len = range.end - range.start;
        if len == 0 {
            return Ok(GetResult::empty(meta, range));
        }
        let mut fut = self.op.reader_with(path.as_str());
        if self.cap.read_with_if_match && !meta.etag.is_empty() {
            // Pin the version the headers describe: a replace in between is a 412, not a mix.
            fut = fut.if_match(&quote(&meta.etag));
        }
        let reader = fut.await.map_err(|e| self.err("read", e, Some(path)))?;
        let mut stream = reader
            .into_stream(range.clone())
            .await
            .map_err(|e| self.err("read", e, Some(path)))?;
        // Await the first chunk so a refused precondition or a vanished object is an error now.
        let first = match stream.next().await {
            Some(Ok(buf)) => buf,
            Some(Err(e)) => return Err(self.err("read", e, Some(path))),
            None => Buffer::new(),
        };
        let service = self.service;
        let rest = stream.map(move |r| r.map_err(|e| map_error(service, "read", e)));
        let chunks = futures::stream::once(async move { Ok(first) }).chain(rest);
        let body = BufferBytes {
            inner: Box::pin(chunks),
            current: None,
        };
        Ok(GetResult::new(meta, range, Box::pin(body)))
    }

    async fn put(&self, path: &ArtifactPath, upload: Upload) -> Result<PutResult> {
        let Upload { body, opts } = upload;
        path.require_artifact()?;
        // Fail fast, before the body streams; repeated below right before completing.
        let existed = self.check_mode(path, &opts.mode).await?;
        let push_create = opts.mode == PutMode::Create && self.cap.write_with_if_not_exists;
        let content_type = opts.content_type_for(path);
        let writer = self
            .op
            .writer_with(path.as_str())
            .chunk(self.tuning.part_size)
            .concurrent(self.tuning.concurrency)
            .content_type(&content_type)
            .if_not_exists(push_create)
            .await
            .map_err(|e| self.err("start upload", e, Some(path)))?;
        let mut guard = AbortGuard(Some(writer));
        let mut hashing = HashingBody::new(body, opts.max_size);

        let streamed = self.stream_body(path, guard.writer(), &mut hashing).await;
        if let Err(e) = streamed {
            guard.abort().await;
            return Err(e);
        }
        let (sha, len) = match hashing.finish(opts.sha256, path) {
            Ok(v) => v,
            Err(e) => {
                guard.abort().await;
                return Err(e);
            }
        };
        if !push_create && opts.mode != PutMode::Overwrite {
            if let Err(e) = self.check_mode(path, &opts.mode).await {
                guard.abort().await;
                return Err(e);
            }
        }
        let closed = guard.writer().close().await;
        let written = match closed {
            Ok(md) => {
                guard.disarm();
                md
            }
            Err(e) => {
                let err = self.err("complete upload", e, Some(path));
                guard.abort().await;
                return Err(match opts.mode {
                    PutMode::Create => reword(err, ErrorKind::PreconditionFailed, || exists(path)),
                    _ => err,
                });
            }
        };

        // The object is visible now; record its digest, keyed by its ETag.
        let etag = match written.etag() {
            Some(t) => unquote(t).to_string(),
            None => self
                .stat_opt(path, None)
                .await?
                .and_then(|m| m.etag().map(|t| unquote(t).to_string()))
                .unwrap_or_default(),
        };
        let record = Record::new(sha, Some(content_type), len, etag);
        self.op.write(&sidecar::meta_key(path), record.to_json()).await.map_err(|e| {
            Error::new(
                ErrorKind::BackendUnavailable,
                format!("the artifact was stored but its digest record could not be written ({e}); upload it again"),
            )
            .with_path(path.as_str())
        })?;
        let md = self.stat_opt(path, None).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::BackendUnavailable,
                "the artifact vanished right after it was stored",
            )
            .with_path(path.as_str())
        })?;
        let meta = self.meta_of(path, &md, Some(Bytes::from(record.to_json())));
        Ok(PutResult {
            meta,
            created: !existed,
        })
    }

    async fn delete(&self, path: &ArtifactPath) -> Result<()> {
        if path.is_root() || self.stat_opt(path, None).await?.is_none() {
            return Err(not_found(path));
        }
        self.op
            .delete(path.as_str())
            .await
            .map_err(|e| self.err("delete", e, Some(path)))?;
        if let Err(e) = self.op.delete(&sidecar::meta_key(path)).await {
            tracing::warn!(path = %path, error = %e, "cannot delete a metadata sidecar; it no longer matches anything");
        }
        Ok(())
    }

    async fn list(&self, dir: &ArtifactPath, opts: ListOptions) -> Result<ListPage> {
        self.list_entries(dir, opts).await
    }

    async fn ready(&self) -> Result<()> {
        // One real, signed request: list at most one key under the root.
        self.list_page("", None, 1).await.map(|_| ())
    }
}

/// Aborts an unfinished upload: explicitly on error paths, from a spawned task when the put
/// future is dropped midway.
struct AbortGuard(Option<::opendal::Writer>);

impl AbortGuard {
    fn writer(&mut self) -> &mut ::opendal::Writer {
        self.0
            .as_mut()
            .expect("the writer is present until completed or aborted")
    }

    fn disarm(&mut self) {
        self.0 = None;
    }

    async fn abort(&mut self) {
        if let Some(mut w) = self.0.take() {
            if let Err(e) = w.abort().await {
                tracing::warn!(error = %e, "cannot abort an unfinished upload; it stays invisible until the store expires it");
            }
        }
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if let Some(mut w) = self.0.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if let Err(e) = w.abort().await {
                        tracing::warn!(error = %e, "cannot abort an abandoned upload");
                    }
                });
            }
        }
    }
}

/// Flattens a stream of opendal `Buffer`s into `Bytes` without copying.
struct BufferBytes {
    inner: Pin<Box<dyn Stream<Item = Result<Buffer>> + Send>>,
    current: Option<Buffer>,
}

impl Stream for BufferBytes {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(buf) = self.current.as_mut() {
                if let Some(b) = Iterator::next(buf) {
                    if !b.is_empty() {
                        return Poll::Ready(Some(Ok(b)));
                    }
                    continue;
                }
                self.current = None;
            }
            match self.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(buf))) => self.current = Some(buf),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
