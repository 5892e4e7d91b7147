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
//!   by the part size: about `chunk * (concurrent + 1)` of body data (8 MiB parts, 2 in flight;
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

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use ::opendal::{Buffer, Capability, ErrorKind as OdKind, Operator};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::errors::{exists, not_found};
use super::path::RESERVED_SEGMENT;
use super::sidecar::{self, Record};
use super::{
    exact_length, guess_content_type, ArtifactPath, ByteStream, Capabilities, Entry, GetOptions,
    GetResult, HashingBody, ListOptions, ListPage, Meta, PutMode, PutOptions, PutResult, Storage,
};
use crate::error::{Error, ErrorKind, Result};

/// How uploads are cut and how many parts fly at once.
#[derive(Debug, Clone, Copy)]
pub struct WriteTuning {
    /// Part size of multipart uploads; bodies smaller than this are one PUT.
    pub chunk: usize,
    /// Parts uploaded concurrently.
    pub concurrent: usize,
}

impl Default for WriteTuning {
    fn default() -> Self {
        WriteTuning {
            chunk: 8 * 1024 * 1024,
            concurrent: 2,
        }
    }
}

/// `Storage` over an opendal operator whose root is the mount's prefix.
#[derive(Debug, Clone)]
pub struct OpendalStorage {
    op: Operator,
    describe: String,
    /// Name of the service in error messages (`OSS`).
    service: &'static str,
    cap: Capability,
    tuning: WriteTuning,
}

impl OpendalStorage {
    pub fn new(op: Operator, service: &'static str, describe: String, tuning: WriteTuning) -> Self {
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
        match (mode, &current) {
            (PutMode::Create, Some(_)) => Err(exists(path)),
            (PutMode::Update { .. }, None) => Err(Error::new(
                ErrorKind::PreconditionFailed,
                "no artifact to replace",
            )
            .with_path(path.as_str())),
            (PutMode::Update { etag }, Some(md))
                if md.etag().map(unquote) != Some(etag.as_str()) =>
            {
                Err(Error::new(
                    ErrorKind::PreconditionFailed,
                    "the artifact's ETag does not match If-Match",
                )
                .with_path(path.as_str()))
            }
            _ => Ok(current.is_some()),
        }
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

    /// Reads one page of at most `page` raw listing entries after `start_after` (a key relative
    /// to the root). Returns the entries and whether the listing ended.
    async fn list_page(
        &self,
        dir_key: &str,
        start_after: Option<&str>,
        page: usize,
    ) -> Result<(Vec<::opendal::Entry>, bool)> {
        let list_path = if dir_key.is_empty() { "/" } else { dir_key };
        let mut fut = self.op.lister_with(list_path).recursive(false).limit(page);
        if let Some(s) = start_after {
            fut = fut.start_after(s);
        }
        let mut lister = match fut.await {
            Ok(l) => l,
            Err(e) if e.kind() == OdKind::NotFound => return Ok((Vec::new(), true)),
            Err(e) => return Err(self.err("list", e, None)),
        };
        let mut out = Vec::with_capacity(page.min(1024));
        while out.len() < page {
            match lister.next().await {
                None => return Ok((out, true)),
                Some(Ok(entry)) => out.push(entry),
                Some(Err(e)) if e.kind() == OdKind::NotFound => return Ok((out, true)),
                Some(Err(e)) => return Err(self.err("list", e, None)),
            }
        }
        Ok((out, false))
    }

    /// Whether `dir_key` + `name` + `/` has anything under it (one `max-keys=1` list).
    async fn dir_exists(&self, dir_key: &str, name: &str) -> Result<bool> {
        let (entries, _) = self
            .list_page(&format!("{dir_key}{name}/"), None, 1)
            .await?;
        Ok(!entries.is_empty())
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
            let body: ByteStream = Box::pin(futures::stream::empty());
            return Ok(GetResult { meta, range, body });
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
        Ok(GetResult {
            body: exact_length(Box::pin(body), len, path),
            meta,
            range,
        })
    }

    async fn put(
        &self,
        path: &ArtifactPath,
        body: ByteStream,
        opts: PutOptions,
    ) -> Result<PutResult> {
        path.require_artifact()?;
        // Fail fast, before the body streams; repeated below right before completing.
        let existed = self.check_mode(path, &opts.mode).await?;
        let push_create = opts.mode == PutMode::Create && self.cap.write_with_if_not_exists;
        let content_type = opts
            .content_type
            .clone()
            .unwrap_or_else(|| guess_content_type(path));
        let writer = self
            .op
            .writer_with(path.as_str())
            .chunk(self.tuning.chunk)
            .concurrent(self.tuning.concurrent)
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
                return Err(
                    if opts.mode == PutMode::Create && err.kind() == ErrorKind::PreconditionFailed {
                        exists(path)
                    } else {
                        err
                    },
                );
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
        let dir_key = dir.as_dir_prefix();
        let limit = opts.limit.max(1);
        let after = opts.after.as_deref();
        // A few spare entries cover the names a page filters out (the reserved directory,
        // names that are not valid artifact names, a directory named `after` itself).
        let page = (limit + 8).min(1000);
        let mut known: BTreeMap<String, Entry> = BTreeMap::new();
        let mut cursor: Option<String> = after.map(|a| format!("{dir_key}{a}"));
        let mut last_raw: Option<String> = None;
        let mut exhausted = false;
        while known.len() <= limit {
            let (entries, ended) = self.list_page(&dir_key, cursor.as_deref(), page).await?;
            for e in &entries {
                let key = e.path().to_string();
                if last_raw.as_ref().is_none_or(|l| &key > l) {
                    last_raw = Some(key.clone());
                }
                if let Some(entry) = self.entry_of(dir, &dir_key, e, after) {
                    known.entry(entry.name.clone()).or_insert(entry);
                }
            }
            if ended {
                exhausted = true;
                break;
            }
            if last_raw == cursor {
                // No progress (a directory prefix repeated by the server): stop here.
                break;
            }
            cursor = last_raw.clone();
        }
        if !exhausted {
            if let Some(last) = &last_raw {
                self.probe_out_of_order_dirs(dir, &dir_key, last, after, limit, &mut known)
                    .await?;
            }
        }
        let more = known.len() > limit || !exhausted;
        let entries: Vec<Entry> = known.into_values().take(limit).collect();
        let next_after = if more {
            entries.last().map(|e| e.name.clone())
        } else {
            None
        };
        Ok(ListPage {
            entries,
            next_after,
        })
    }

    async fn ready(&self) -> Result<()> {
        // One real, signed request: list at most one key under the root.
        self.list_page("", None, 1).await.map(|_| ())
    }
}

impl OpendalStorage {
    /// The listing entry for a raw opendal entry, or `None` when it is hidden or filtered.
    fn entry_of(
        &self,
        dir: &ArtifactPath,
        dir_key: &str,
        e: &::opendal::Entry,
        after: Option<&str>,
    ) -> Option<Entry> {
        let rel = e.path().strip_prefix(dir_key)?;
        let is_dir = rel.ends_with('/');
        let name = rel.trim_end_matches('/');
        if name.is_empty()
            || name.contains('/')
            || name == RESERVED_SEGMENT
            || dir.child(name).is_err()
        {
            return None;
        }
        if after.is_some_and(|a| name <= a) {
            return None;
        }
        if is_dir {
            return Some(Entry {
                name: name.to_string(),
                is_dir: true,
                size: None,
                last_modified: None,
                etag: None,
                sha256: None,
            });
        }
        let md = e.metadata();
        Some(Entry {
            name: name.to_string(),
            is_dir: false,
            size: Some(md.content_length()),
            last_modified: md.last_modified().map(SystemTime::from),
            etag: md.etag().map(|t| unquote(t).to_string()),
            sha256: None,
        })
    }

    /// Directories whose key sorts after the last listed key but whose name sorts before some
    /// listed name are exactly the prefixes `d` of the last key's name followed by a character
    /// below `/`. Probes each one that could land on this page.
    async fn probe_out_of_order_dirs(
        &self,
        dir: &ArtifactPath,
        dir_key: &str,
        last_key: &str,
        after: Option<&str>,
        limit: usize,
        known: &mut BTreeMap<String, Entry>,
    ) -> Result<()> {
        let Some(rel) = last_key.strip_prefix(dir_key) else {
            return Ok(());
        };
        let last_name = rel.trim_end_matches('/');
        let cutoff = known.keys().nth(limit).cloned();
        for (i, b) in last_name.bytes().enumerate() {
            if i == 0 || b >= b'/' || !last_name.is_char_boundary(i) {
                continue;
            }
            let candidate = &last_name[..i];
            if after.is_some_and(|a| candidate <= a)
                || cutoff.as_deref().is_some_and(|c| candidate >= c)
                || known.get(candidate).is_some_and(|e| e.is_dir)
                || dir.child(candidate).is_err()
            {
                continue;
            }
            if self.dir_exists(dir_key, candidate).await? {
                known.insert(
                    candidate.to_string(),
                    Entry {
                        name: candidate.to_string(),
                        is_dir: true,
                        size: None,
                        last_modified: None,
                        etag: None,
                        sha256: None,
                    },
                );
            }
        }
        Ok(())
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

/// Maps an opendal error to the crate's kinds. `what` names the operation for the message.
pub fn map_error(service: &str, what: &str, e: ::opendal::Error) -> Error {
    let kind = match e.kind() {
        OdKind::NotFound | OdKind::IsADirectory | OdKind::NotADirectory => ErrorKind::NotFound,
        OdKind::ConditionNotMatch | OdKind::AlreadyExists | OdKind::Conflict => {
            ErrorKind::PreconditionFailed
        }
        OdKind::PermissionDenied => ErrorKind::BackendAuth,
        OdKind::RangeNotSatisfied => ErrorKind::RangeNotSatisfiable,
        OdKind::RateLimited => ErrorKind::BackendUnavailable,
        OdKind::Unsupported => ErrorKind::Unsupported,
        OdKind::ConfigInvalid => ErrorKind::InvalidInput,
        _ => transport_kind(&e).unwrap_or(if e.is_temporary() {
            ErrorKind::BackendUnavailable
        } else {
            ErrorKind::Internal
        }),
    };
    // A refused HEAD has no error body, so no message: say what the status means.
    let detail = if e.message().is_empty() {
        format!("{} (no error body)", e.kind())
    } else {
        e.message().to_string()
    };
    let message = match kind {
        ErrorKind::BackendAuth => {
            format!("{service} refused the gateway's credentials during {what}: {detail}")
        }
        ErrorKind::BackendUnavailable | ErrorKind::Timeout => format!(
            "{service} is unavailable during {what}: {}",
            source_text(&e)
        ),
        _ => format!("{service} {what} failed: {detail}"),
    };
    Error::new(kind, message).with_source(e)
}

/// Connection-level failures found in the error's sources.
fn transport_kind(e: &::opendal::Error) -> Option<ErrorKind> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<reqwest::Error>() {
            return Some(if r.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::BackendUnavailable
            });
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(if io.kind() == std::io::ErrorKind::TimedOut {
                ErrorKind::Timeout
            } else {
                ErrorKind::BackendUnavailable
            });
        }
        src = s.source();
    }
    None
}

/// The message plus its innermost cause (a connection error says more than "send http request").
fn source_text(e: &::opendal::Error) -> String {
    let mut last: Option<String> = None;
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        last = Some(s.to_string());
        src = s.source();
    }
    match last {
        Some(cause) => format!("{}: {cause}", e.message()),
        None => e.message().to_string(),
    }
}

fn unquote(tag: &str) -> &str {
    let t = tag.strip_prefix("W/").unwrap_or(tag);
    t.trim_matches('"')
}

fn quote(tag: &str) -> String {
    format!("\"{tag}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_lose_and_regain_quotes() {
        assert_eq!(unquote("\"ABC\""), "ABC");
        assert_eq!(unquote("W/\"ABC\""), "ABC");
        assert_eq!(unquote("ABC-2"), "ABC-2");
        assert_eq!(quote("ABC"), "\"ABC\"");
    }

    #[test]
    fn error_kinds_map_precisely() {
        let cases = [
            (OdKind::NotFound, false, ErrorKind::NotFound),
            (
                OdKind::ConditionNotMatch,
                false,
                ErrorKind::PreconditionFailed,
            ),
            (OdKind::PermissionDenied, false, ErrorKind::BackendAuth),
            (OdKind::RateLimited, true, ErrorKind::BackendUnavailable),
            (OdKind::Unexpected, true, ErrorKind::BackendUnavailable),
            (OdKind::Unexpected, false, ErrorKind::Internal),
            (
                OdKind::RangeNotSatisfied,
                false,
                ErrorKind::RangeNotSatisfiable,
            ),
        ];
        for (od, temporary, want) in cases {
            let e = ::opendal::Error::new(od, "x").with_temporary(temporary);
            assert_eq!(map_error("OSS", "stat", e).kind(), want, "{od:?}");
        }
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = ::opendal::Error::new(OdKind::Unexpected, "send http request").set_source(io);
        let mapped = map_error("OSS", "stat", e);
        assert_eq!(mapped.kind(), ErrorKind::BackendUnavailable);
        assert!(mapped.message().contains("refused"), "{}", mapped.message());
    }
}
