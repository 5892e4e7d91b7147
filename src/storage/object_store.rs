//! One adapter over the `object_store` crate: [`ObjectStoreStorage`] implements [`Storage`] for any
//! store that also offers paginated listing (S3 and S3-compatible stores today). Backends are
//! constructors that build the store (see `s3.rs`); all behaviour lives here.
//!
//! Owns: the key layout under a bucket prefix, the put strategy, metadata, listing pages and the
//! mapping of `object_store` errors to [`ErrorKind`]. Must never import `service` or `http`.
//!
//! Layout under `<prefix>/`:
//! - artifacts at `<prefix>/<path>`;
//! - `<prefix>/.artifact-gateway/meta/<path>.json`: a metadata sidecar (the format of `sidecar.rs`,
//!   its validator being the object's ETag), written only for uploads
//!   whose SHA-256 was not known when the upload started (see below). `.artifact-gateway` is
//!   never a valid artifact segment, so no artifact can collide with it, and listings hide it.
//!
//! How a put stays atomic and verified:
//! - The body is hashed while it streams ([`HashingBody`]). Up to `part_size` bytes are buffered;
//!   a body that ends within that is stored with ONE `PUT` after its digest was checked, carrying
//!   its SHA-256 (`x-amz-meta-sha256`) and content type as object metadata. Modes are pushed
//!   down: `Create` → `If-None-Match: *`, `Update` → `If-Match`, so they are atomic.
//! - A longer body becomes a multipart upload with at most `upload_concurrency` parts in flight,
//!   so memory stays near `part_size × (upload_concurrency + 1)` whatever the body's size. The
//!   object appears only at `CompleteMultipartUpload`; a broken body, the size limit or a digest
//!   mismatch aborts the upload instead, so nothing becomes visible. `Create`/`Update` are
//!   checked (HEAD) before the upload starts, to fail before moving any byte, and enforced
//!   atomically at completion: `object_store` has no option for a conditional completion, so
//!   the store's HTTP client is built with [`ConditionalCompletionConnector`], which adds the
//!   `If-None-Match: *` / `If-Match` registered in [`CompletionConditions`] to that upload's
//!   completion request. A store built without it falls back to a HEAD just before completion
//!   (not atomic), and its [`Capabilities`] say so. One corner stays: if a completion succeeds
//!   but its answer is lost, the library's retry meets its own object and reports a failed
//!   precondition although the artifact was stored.
//! - Digest of a multipart upload: when the client declared the SHA-256, it is stored as object
//!   metadata at the start and verified before completion. Otherwise it is only known at the end,
//!   when object metadata can no longer change; the adapter then writes the sidecar. A sidecar
//!   is believed only while the object's current ETag and size are the ones it names, so an
//!   object replaced by another tool shows no digest rather than a wrong one. A crash between
//!   completion and the sidecar write leaves a valid object without a digest. Only objects whose
//!   ETag looks multipart (`…-<parts>`) are looked up, so a single-part object costs no extra
//!   request. Uploads abandoned by a crash are never visible; a bucket lifecycle rule
//!   (`AbortIncompleteMultipartUpload`) reclaims their parts.
//!
//! Objects written by other tools: the S3 ETag (without quotes) is the strong validator, the
//! stored content type is served, and the digest is `None`.
//!
//! Listings ask the store for ONE page of one level (delimiter `/`, `start-after`, `max-keys`),
//! never the whole bucket. Entries come in the store's key order, where a directory `d` sorts as
//! `d/`; that is name order except around names with bytes below `/` (`d!x` precedes `d/`),
//! and it is the order that lets `after` page without losing or repeating entries.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use ::object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use ::object_store::list::{PaginatedListOptions, PaginatedListStore};
use ::object_store::multipart::{MultipartStore, PartId};
use ::object_store::path::Path as Key;
use ::object_store::{
    Attribute, AttributeValue, Attributes, ClientOptions, GetRange, MultipartId, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMultipartOptions, PutPayload, UpdateVersion,
};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::task::JoinSet;

use super::errors::{exists, not_found};
use super::path::RESERVED_SEGMENT;
use super::sidecar;
use super::{
    exact_length, guess_content_type, ArtifactPath, ByteStream, Capabilities, Entry, GetOptions,
    GetResult, HashingBody, ListOptions, ListPage, Meta, PutMode, PutOptions, PutResult, Sha256,
    Storage,
};
use crate::error::{Error, ErrorKind, Result};

/// The object metadata key holding the hex SHA-256 (`x-amz-meta-sha256` on S3).
const SHA256_METADATA: &str = "sha256";
/// Smallest part S3 accepts (all but the last part).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// How large uploads are cut into parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadTuning {
    /// Bytes per part; bodies up to this size are one `PUT`.
    pub part_size: usize,
    /// Parts in flight per upload.
    pub concurrency: usize,
}

impl Default for UploadTuning {
    fn default() -> Self {
        UploadTuning {
            part_size: 16 * 1024 * 1024,
            concurrency: 4,
        }
    }
}

/// A [`Storage`] over an `object_store` store and a key prefix.
#[derive(Clone)]
pub struct ObjectStoreStorage {
    store: Arc<dyn ObjectStore>,
    lister: Arc<dyn PaginatedListStore>,
    multipart: Arc<dyn MultipartStore>,
    /// Where multipart completions get their preconditions; `None`: check-then-complete.
    conditions: Option<Arc<CompletionConditions>>,
    /// Key prefix without leading or trailing `/`; empty for the bucket's root.
    prefix: String,
    label: String,
    tuning: UploadTuning,
}

impl fmt::Debug for ObjectStoreStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreStorage")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .field("label", &self.label)
            .field("tuning", &self.tuning)
            .field("conditional_completion", &self.conditions.is_some())
            .finish()
    }
}

impl ObjectStoreStorage {
    /// Wraps `store`. `prefix` is the key prefix inside the bucket (`a/b`, or empty); `label`
    /// is what [`Storage::describe`] shows (`s3://bucket/prefix`). `conditions` is the registry
    /// the store's HTTP client consults ([`ConditionalCompletionConnector`]) so multipart
    /// completions carry `If-None-Match`/`If-Match`; without it they are checked just before.
    pub fn new<S>(
        store: Arc<S>,
        prefix: &str,
        label: impl Into<String>,
        tuning: UploadTuning,
        conditions: Option<Arc<CompletionConditions>>,
    ) -> Result<Self>
    where
        S: ObjectStore + PaginatedListStore + MultipartStore,
    {
        let prefix = prefix.trim_matches('/').to_string();
        if !prefix.is_empty() {
            Key::parse(&prefix).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("the key prefix {prefix:?} is not usable: {e}"),
                )
            })?;
            if prefix.split('/').any(|s| s == RESERVED_SEGMENT) {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("the key prefix may not contain {RESERVED_SEGMENT}"),
                ));
            }
        }
        if tuning.part_size < MIN_PART_SIZE {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("part_size must be at least {MIN_PART_SIZE} bytes"),
            ));
        }
        if tuning.concurrency == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "upload_concurrency must be at least 1",
            ));
        }
        let lister: Arc<dyn PaginatedListStore> = store.clone();
        let multipart: Arc<dyn MultipartStore> = store.clone();
        let store: Arc<dyn ObjectStore> = store;
        Ok(ObjectStoreStorage {
            store,
            lister,
            multipart,
            conditions,
            prefix,
            label: label.into(),
            tuning,
        })
    }

    /// `<prefix>/<rest>` as a key string (no leading `/`).
    fn raw_key(&self, rest: &str) -> String {
        match (self.prefix.is_empty(), rest.is_empty()) {
            (true, _) => rest.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{}", self.prefix, rest),
        }
    }

    fn key(&self, path: &ArtifactPath) -> Result<Key> {
        Key::parse(self.raw_key(path.as_str())).map_err(|e| {
            Error::new(
                ErrorKind::InvalidPath,
                format!("not a usable object key: {e}"),
            )
            .with_path(path.as_str())
        })
    }

    fn sidecar_key(&self, path: &ArtifactPath) -> Result<Key> {
        Key::parse(self.raw_key(&sidecar::meta_key(path))).map_err(|e| {
            Error::new(
                ErrorKind::InvalidPath,
                format!("not a usable object key: {e}"),
            )
            .with_path(path.as_str())
        })
    }

    /// The listing prefix of a directory: `<prefix>/<dir>/`, or empty for the bucket root.
    fn dir_prefix(&self, dir: &ArtifactPath) -> String {
        let base = self.raw_key(dir.as_str());
        if base.is_empty() {
            base
        } else {
            format!("{base}/")
        }
    }

    /// HEAD of the data object with its attributes; `Ok(None)` when it does not exist.
    async fn head_raw(
        &self,
        key: &Key,
        path: &ArtifactPath,
    ) -> Result<Option<(ObjectMeta, Attributes)>> {
        let opts = ::object_store::GetOptions {
            head: true,
            ..Default::default()
        };
        match self.store.get_opts(key, opts).await {
            Ok(r) => Ok(Some((r.meta, r.attributes))),
            Err(::object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(map_err(e, path)),
        }
    }

    /// Builds [`Meta`], consulting the sidecar only when the object carries no digest itself.
    async fn meta_of(&self, path: &ArtifactPath, om: &ObjectMeta, attrs: &Attributes) -> Meta {
        let etag = etag_of(om);
        let mut sha256 = attrs
            .get(&Attribute::Metadata(Cow::Borrowed(SHA256_METADATA)))
            .and_then(|v| Sha256::from_hex(v).ok());
        let mut content_type = attrs
            .get(&Attribute::ContentType)
            .map(|v| v.to_string())
            .filter(|s| !s.is_empty());
        // Sidecars are written only for multipart uploads, whose S3 ETags end in `-<parts>`:
        // other objects cost no extra request.
        if sha256.is_none() && etag.contains('-') {
            if let Some(side) = self.read_sidecar(path, &etag, om.size).await {
                sha256 = side.sha256();
                if content_type.is_none() {
                    content_type = side.content_type().map(str::to_string);
                }
            }
        }
        Meta {
            path: path.clone(),
            size: om.size,
            last_modified: SystemTime::from(om.last_modified),
            etag,
            sha256,
            content_type: Some(content_type.unwrap_or_else(|| guess_content_type(path))),
        }
    }

    /// The sidecar, if there is one that still describes the object with `etag` and `size`.
    async fn read_sidecar(
        &self,
        path: &ArtifactPath,
        etag: &str,
        size: u64,
    ) -> Option<sidecar::Record> {
        let key = self.sidecar_key(path).ok()?;
        let bytes = match self.store.get_opts(&key, Default::default()).await {
            Ok(r) if r.meta.size > sidecar::MAX_SIDECAR_BYTES => return None,
            Ok(r) => r.bytes().await.ok()?,
            Err(::object_store::Error::NotFound { .. }) => return None,
            Err(e) => {
                tracing::debug!(path = %path, error = %e, "cannot read the metadata sidecar; serving no digest");
                return None;
            }
        };
        sidecar::Record::matching(&bytes, size, etag)
    }

    async fn write_sidecar(&self, path: &ArtifactPath, side: &sidecar::Record) -> Result<()> {
        let key = self.sidecar_key(path)?;
        let json = side.to_json();
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::ContentType,
            AttributeValue::from("application/json"),
        );
        let opts = ::object_store::PutOptions {
            attributes,
            ..Default::default()
        };
        self.store
            .put_opts(&key, PutPayload::from(json), opts)
            .await
            .map_err(|e| map_err(e, path))?;
        Ok(())
    }

    /// Checks `mode` against what exists now; returns whether nothing existed.
    async fn check_mode(&self, key: &Key, path: &ArtifactPath, mode: &PutMode) -> Result<bool> {
        let existing = self.head_raw(key, path).await?;
        match (mode, &existing) {
            (PutMode::Overwrite, _) => {}
            (PutMode::Create, Some(_)) => return Err(exists(path)),
            (PutMode::Create, None) => {}
            (PutMode::Update { .. }, None) => {
                return Err(
                    Error::new(ErrorKind::PreconditionFailed, "no artifact to replace")
                        .with_path(path.as_str()),
                )
            }
            (PutMode::Update { etag }, Some((om, _))) => {
                if &etag_of(om) != etag {
                    return Err(Error::new(
                        ErrorKind::PreconditionFailed,
                        "the artifact's ETag does not match If-Match",
                    )
                    .with_path(path.as_str()));
                }
            }
        }
        Ok(existing.is_none())
    }

    async fn put_single(
        &self,
        key: &Key,
        path: &ArtifactPath,
        chunks: Vec<Bytes>,
        mode: &PutMode,
        mut attributes: Attributes,
        sha: Sha256,
    ) -> Result<Option<String>> {
        attributes.insert(
            Attribute::Metadata(Cow::Borrowed(SHA256_METADATA)),
            AttributeValue::from(sha.to_hex()),
        );
        let mode = match mode {
            PutMode::Overwrite => ::object_store::PutMode::Overwrite,
            PutMode::Create => ::object_store::PutMode::Create,
            PutMode::Update { etag } => ::object_store::PutMode::Update(UpdateVersion {
                e_tag: Some(quote(etag)),
                version: None,
            }),
        };
        let opts = ::object_store::PutOptions {
            mode,
            attributes,
            ..Default::default()
        };
        let payload: PutPayload = chunks.into_iter().collect();
        let res = self
            .store
            .put_opts(key, payload, opts)
            .await
            .map_err(|e| map_err(e, path))?;
        Ok(res.e_tag.map(|t| unquote(&t)))
    }

    /// Streams the rest of `body` as a multipart upload; aborts it on any failure.
    async fn put_multipart(
        &self,
        key: &Key,
        path: &ArtifactPath,
        first: Vec<Bytes>,
        body: HashingBody,
        opts: &PutOptions,
        mut attributes: Attributes,
    ) -> Result<(Option<String>, Sha256, u64)> {
        if let Some(declared) = opts.sha256 {
            attributes.insert(
                Attribute::Metadata(Cow::Borrowed(SHA256_METADATA)),
                AttributeValue::from(declared.to_hex()),
            );
        }
        let mp_opts = PutMultipartOptions {
            attributes,
            ..Default::default()
        };
        let id = self
            .multipart
            .create_multipart_opts(key, mp_opts)
            .await
            .map_err(|e| map_err(e, path))?;
        let result = self
            .upload_and_complete(key, path, &id, first, body, opts)
            .await;
        if result.is_err() {
            if let Err(e) = self.multipart.abort_multipart(key, &id).await {
                tracing::warn!(path = %path, error = %e, "could not abort a multipart upload; its parts stay invisible until a lifecycle rule removes them");
            }
        }
        result
    }

    /// Uploads parts with at most `concurrency` in flight, checks the digest, then completes
    /// (conditionally when the mode asks for it).
    async fn upload_and_complete(
        &self,
        key: &Key,
        path: &ArtifactPath,
        id: &MultipartId,
        first: Vec<Bytes>,
        mut body: HashingBody,
        opts: &PutOptions,
    ) -> Result<(Option<String>, Sha256, u64)> {
        let mut tasks: JoinSet<(usize, std::result::Result<PartId, ::object_store::Error>)> =
            JoinSet::new();
        let mut parts: Vec<Option<PartId>> = Vec::new();
        let mut current: Vec<Bytes> = Vec::new();
        let mut current_len = 0usize;
        let mut pending = first.into_iter();
        let outcome: Result<()> = async {
            loop {
                let next = match pending.next() {
                    Some(chunk) => Some(chunk),
                    None => body
                        .next_chunk()
                        .await
                        .map_err(|e| e.with_path(path.as_str()))?,
                };
                let ended = next.is_none();
                if let Some(chunk) = next {
                    current_len += chunk.len();
                    current.push(chunk);
                }
                if current_len >= self.tuning.part_size || (ended && current_len > 0) {
                    while tasks.len() >= self.tuning.concurrency {
                        collect_part(&mut tasks, &mut parts, path).await?;
                    }
                    let idx = parts.len();
                    parts.push(None);
                    let payload: PutPayload = std::mem::take(&mut current).into_iter().collect();
                    current_len = 0;
                    let (store, key, id) = (self.multipart.clone(), key.clone(), id.clone());
                    tasks
                        .spawn(async move { (idx, store.put_part(&key, &id, idx, payload).await) });
                }
                if ended {
                    break;
                }
            }
            while !tasks.is_empty() {
                collect_part(&mut tasks, &mut parts, path).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            tasks.shutdown().await;
            return Err(e);
        }
        let (sha, len) = body.finish(opts.sha256, path)?;
        let parts: Vec<PartId> = parts
            .into_iter()
            .map(|p| p.expect("every part finished"))
            .collect();

        let _condition = match (&opts.mode, &self.conditions) {
            (PutMode::Overwrite, _) => None,
            (PutMode::Create, Some(c)) => Some(c.require(id, http::header::IF_NONE_MATCH, "*")?),
            (PutMode::Update { etag }, Some(c)) => {
                Some(c.require(id, http::header::IF_MATCH, &quote(etag))?)
            }
            (_, None) => {
                // No way to attach the precondition to the completion: check just before it.
                self.check_mode(key, path, &opts.mode).await?;
                None
            }
        };
        let res = match self.multipart.complete_multipart(key, id, parts).await {
            Ok(r) => r,
            // S3 answers If-Match on a missing key with 404: for a guarded write that is a failed precondition.
            Err(::object_store::Error::NotFound { .. })
                if matches!(opts.mode, PutMode::Update { .. }) =>
            {
                return Err(
                    Error::new(ErrorKind::PreconditionFailed, "no artifact to replace")
                        .with_path(path.as_str()),
                )
            }
            Err(e) => return Err(map_err(e, path)),
        };
        Ok((res.e_tag.map(|t| unquote(&t)), sha, len))
    }
}

async fn collect_part(
    tasks: &mut JoinSet<(usize, std::result::Result<PartId, ::object_store::Error>)>,
    parts: &mut [Option<PartId>],
    path: &ArtifactPath,
) -> Result<()> {
    match tasks.join_next().await {
        Some(Ok((idx, Ok(part)))) => {
            parts[idx] = Some(part);
            Ok(())
        }
        Some(Ok((_, Err(e)))) => Err(map_err(e, path)),
        Some(Err(join)) => Err(Error::new(
            ErrorKind::Internal,
            format!("a part upload task failed: {join}"),
        )),
        None => Ok(()),
    }
}

#[async_trait]
impl Storage for ObjectStoreStorage {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            range_read: true,
            pinned_read: true,
            // Single PUTs always carry the precondition; multipart completions only when the
            // store's client has the completion hook. See the module doc.
            atomic_create: self.conditions.is_some(),
            atomic_update: self.conditions.is_some(),
            stores_digest: true,
        }
    }

    async fn head(&self, path: &ArtifactPath) -> Result<Meta> {
        let key = self.key(path)?;
        match self.head_raw(&key, path).await? {
            Some((om, attrs)) => Ok(self.meta_of(path, &om, &attrs).await),
            None => Err(not_found(path)),
        }
    }

    async fn get(&self, path: &ArtifactPath, opts: GetOptions) -> Result<GetResult> {
        let key = self.key(path)?;
        let mut req = ::object_store::GetOptions {
            if_match: opts.if_match.as_deref().map(quote),
            ..Default::default()
        };
        if let Some(r) = &opts.range {
            if r.start >= r.end {
                // S3 cannot express an empty range: check the version and send no bytes.
                let Some((om, attrs)) = self.head_raw(&key, path).await? else {
                    return Err(not_found(path));
                };
                let meta = self.meta_of(path, &om, &attrs).await;
                opts.check(&meta)?;
                let body: ByteStream = Box::pin(futures::stream::empty());
                return Ok(GetResult {
                    meta,
                    range: r.clone(),
                    body,
                });
            }
            req.range = Some(GetRange::Bounded(r.clone()));
        }
        let res = self
            .store
            .get_opts(&key, req)
            .await
            .map_err(|e| map_err(e, path))?;
        let meta = self.meta_of(path, &res.meta, &res.attributes).await;
        let range: Range<u64> = res.range.clone();
        if let Some(want) = &opts.range {
            if want != &range {
                opts.check(&meta)?;
                return Err(Error::new(
                    ErrorKind::RangeNotSatisfiable,
                    format!(
                        "range {}-{} is outside an artifact of {} bytes",
                        want.start, want.end, meta.size
                    ),
                )
                .with_path(path.as_str()));
            }
        }
        let p = path.clone();
        let stream = res
            .into_stream()
            .map(move |r| r.map_err(|e| map_err(e, &p)));
        let len = range.end - range.start;
        Ok(GetResult {
            body: exact_length(Box::pin(stream), len, path),
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
        let key = self.key(path)?;
        // Fail early (before any byte moves) when the mode cannot succeed; learns `created`.
        let created = self.check_mode(&key, path, &opts.mode).await?;
        let content_type = opts
            .content_type
            .clone()
            .unwrap_or_else(|| guess_content_type(path));
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::ContentType,
            AttributeValue::from(content_type.clone()),
        );

        let mut body = HashingBody::new(body, opts.max_size);
        let mut first = Vec::new();
        let mut buffered = 0usize;
        let mut ended = false;
        while buffered <= self.tuning.part_size {
            match body
                .next_chunk()
                .await
                .map_err(|e| e.with_path(path.as_str()))?
            {
                Some(chunk) => {
                    buffered += chunk.len();
                    first.push(chunk);
                }
                None => {
                    ended = true;
                    break;
                }
            }
        }

        let (etag, sha, len) = if ended {
            let (sha, len) = body.finish(opts.sha256, path)?;
            let etag = self
                .put_single(&key, path, first, &opts.mode, attributes, sha)
                .await?;
            (etag, sha, len)
        } else {
            let (etag, sha, len) = self
                .put_multipart(&key, path, first, body, &opts, attributes)
                .await?;
            if opts.sha256.is_none() {
                let validator = etag.clone().unwrap_or_default();
                let side = sidecar::Record::new(sha, Some(content_type.clone()), len, validator);
                if let Err(e) = self.write_sidecar(path, &side).await {
                    tracing::warn!(path = %path, error = %e, "stored the artifact but not its digest sidecar; it will be served without a digest");
                }
            }
            (etag, sha, len)
        };
        let etag = match etag {
            Some(t) => t,
            None => self.head(path).await?.etag,
        };
        let meta = Meta {
            path: path.clone(),
            size: len,
            last_modified: SystemTime::now(),
            etag,
            sha256: Some(sha),
            content_type: Some(content_type),
        };
        Ok(PutResult { meta, created })
    }

    async fn delete(&self, path: &ArtifactPath) -> Result<()> {
        let key = self.key(path)?;
        // S3 deletes a missing key silently: look first so a missing artifact is NotFound.
        if self.head_raw(&key, path).await?.is_none() {
            return Err(not_found(path));
        }
        self.store
            .delete(&key)
            .await
            .map_err(|e| map_err(e, path))?;
        if let Ok(side) = self.sidecar_key(path) {
            if let Err(e) = self.store.delete(&side).await {
                tracing::debug!(path = %path, error = %e, "could not remove the metadata sidecar");
            }
        }
        Ok(())
    }

    async fn list(&self, dir: &ArtifactPath, opts: ListOptions) -> Result<ListPage> {
        let base = self.dir_prefix(dir);
        let limit = opts.limit.max(1);
        let after = opts.after.clone();
        let mut entries: Vec<(String, Entry)> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = PaginatedListOptions {
                offset: if token.is_none() {
                    after.as_ref().map(|a| format!("{base}{a}"))
                } else {
                    None
                },
                delimiter: Some(Cow::Borrowed("/")),
                // One more than asked to learn whether a next page exists, plus room for the
                // `after` entry itself coming back as a directory.
                max_keys: Some((limit + 2).min(1000)),
                page_token: token.take(),
                ..Default::default()
            };
            let prefix_arg = if base.is_empty() {
                None
            } else {
                Some(base.as_str())
            };
            let page = self
                .lister
                .list_paginated(prefix_arg, req)
                .await
                .map_err(|e| map_err(e, dir))?;
            for p in &page.result.common_prefixes {
                let Some(name) = child_name(p.as_ref(), &base) else {
                    continue;
                };
                if after.as_deref() == Some(name) || dir.child(name).is_err() {
                    continue;
                }
                let entry = Entry {
                    name: name.to_string(),
                    is_dir: true,
                    size: None,
                    last_modified: None,
                    etag: None,
                    sha256: None,
                };
                entries.push((format!("{name}/"), entry));
            }
            for o in &page.result.objects {
                let Some(name) = child_name(o.location.as_ref(), &base) else {
                    continue;
                };
                if after.as_deref() == Some(name) || dir.child(name).is_err() {
                    continue;
                }
                let entry = Entry {
                    name: name.to_string(),
                    is_dir: false,
                    size: Some(o.size),
                    last_modified: Some(SystemTime::from(o.last_modified)),
                    etag: Some(etag_of(o)),
                    // A listing carries no object metadata; a digest would cost a HEAD per entry.
                    sha256: None,
                };
                entries.push((name.to_string(), entry));
            }
            match page.page_token {
                Some(t) if entries.len() <= limit => token = Some(t),
                Some(_) => break,
                None => break,
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        let truncated = entries.len() > limit;
        entries.truncate(limit);
        let entries: Vec<Entry> = entries.into_iter().map(|(_, e)| e).collect();
        let next_after = if truncated {
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
        let base = self.dir_prefix(&ArtifactPath::root());
        let req = PaginatedListOptions {
            delimiter: Some(Cow::Borrowed("/")),
            max_keys: Some(1),
            ..Default::default()
        };
        let prefix_arg = if base.is_empty() {
            None
        } else {
            Some(base.as_str())
        };
        match self.lister.list_paginated(prefix_arg, req).await {
            Ok(_) => Ok(()),
            Err(::object_store::Error::NotFound { .. }) => Err(Error::new(
                ErrorKind::BackendUnavailable,
                format!("{}: the bucket does not exist", self.label),
            )),
            Err(e) => Err(map_err(e, &ArtifactPath::root())),
        }
    }
}

/// The single segment of `key` below `base`, if it is one.
fn child_name<'a>(key: &'a str, base: &str) -> Option<&'a str> {
    let name = key.strip_prefix(base)?.trim_end_matches('/');
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

fn etag_of(om: &ObjectMeta) -> String {
    match &om.e_tag {
        Some(t) => unquote(t),
        // Stores without ETags: size and modification time stand in.
        None => format!(
            "{:x}-{:x}",
            om.size,
            om.last_modified.timestamp_nanos_opt().unwrap_or_default()
        ),
    }
}

fn unquote(etag: &str) -> String {
    let t = etag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.trim_matches('"').to_string()
}

fn quote(etag: &str) -> String {
    format!("\"{}\"", etag.trim_matches('"'))
}

/// Maps an `object_store` error to a kind. Status-bearing variants map directly; the rest are
/// classified by the transport error inside (connect/DNS/reset → unavailable, timeouts) and by
/// S3's error codes in the message.
pub(crate) fn map_err(e: ::object_store::Error, path: &ArtifactPath) -> Error {
    use ::object_store::Error as OsError;
    let kind = match &e {
        OsError::NotFound { .. } => ErrorKind::NotFound,
        OsError::Precondition { .. }
        | OsError::AlreadyExists { .. }
        | OsError::NotModified { .. } => ErrorKind::PreconditionFailed,
        OsError::Unauthenticated { .. } | OsError::PermissionDenied { .. } => {
            ErrorKind::BackendAuth
        }
        OsError::NotSupported { .. } | OsError::NotImplemented { .. } => ErrorKind::Unsupported,
        OsError::InvalidPath { .. } => ErrorKind::InvalidPath,
        _ => classify(&e),
    };
    let message = match kind {
        ErrorKind::NotFound => "no artifact at this path".to_string(),
        ErrorKind::PreconditionFailed => {
            "the artifact's current version does not satisfy the precondition".to_string()
        }
        ErrorKind::BackendAuth => {
            format!("the object store refused the credentials: {}", short(&e))
        }
        ErrorKind::Timeout => format!("the object store did not answer in time: {}", short(&e)),
        ErrorKind::BackendUnavailable => format!("the object store is unavailable: {}", short(&e)),
        _ => format!("object store error: {}", short(&e)),
    };
    Error::new(kind, message)
        .with_path(path.as_str())
        .with_source(e)
}

fn classify(e: &(dyn std::error::Error + 'static)) -> ErrorKind {
    use ::object_store::client::{HttpError, HttpErrorKind};
    let mut text = String::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<HttpError>() {
            return match h.kind() {
                HttpErrorKind::Timeout => ErrorKind::Timeout,
                _ => ErrorKind::BackendUnavailable,
            };
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return ErrorKind::Timeout;
            }
        }
        text.push_str(&err.to_string());
        text.push('\n');
        cur = err.source();
    }
    const AUTH_CODES: [&str; 6] = [
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AccessDenied",
        "ExpiredToken",
        "InvalidToken",
        "credential",
    ];
    if AUTH_CODES.iter().any(|c| text.contains(c)) {
        return ErrorKind::BackendAuth;
    }
    if text.contains("timed out") || text.contains("RequestTimeout") {
        return ErrorKind::Timeout;
    }
    if text.contains("status code: 5")
        || text.contains("SlowDown")
        || text.contains("InternalError")
        || text.contains("ServiceUnavailable")
        || text.contains("NoSuchBucket")
    {
        return ErrorKind::BackendUnavailable;
    }
    if text.contains("InvalidRange") || text.contains("status code: 416") {
        return ErrorKind::RangeNotSatisfiable;
    }
    ErrorKind::BackendUnavailable
}

/// The error's text without credentials-bearing URLs' query strings, on one line, bounded.
fn short(e: &::object_store::Error) -> String {
    let s = e.to_string().replace('\n', " ");
    let mut out: String = s.chars().take(400).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_below_a_base() {
        assert_eq!(child_name("p/a/b.jar", "p/a/"), Some("b.jar"));
        assert_eq!(child_name("p/a/d/", "p/a/"), Some("d"));
        assert_eq!(child_name("p/a/", "p/a/"), None);
        assert_eq!(child_name("p/a/d/e", "p/a/"), None);
        assert_eq!(child_name("q/a", "p/"), None);
        assert_eq!(child_name("top.jar", ""), Some("top.jar"));
    }

    #[test]
    fn etags_lose_quotes_and_gain_them_back() {
        assert_eq!(unquote("\"abc-3\""), "abc-3");
        assert_eq!(unquote("W/\"abc\""), "abc");
        assert_eq!(quote("abc"), "\"abc\"");
        assert_eq!(quote("\"abc\""), "\"abc\"");
    }

    #[test]
    fn completion_conditions_touch_only_their_completion() {
        use ::object_store::client::HttpRequestBody;
        let conditions = Arc::new(CompletionConditions::default());
        let req = |method: http::Method, uri: &str| {
            http::Request::builder()
                .method(method)
                .uri(uri)
                .body(HttpRequestBody::empty())
                .unwrap()
        };
        let guard = conditions
            .require("id+1/=", http::header::IF_NONE_MATCH, "*")
            .unwrap();
        let mut complete = req(http::Method::POST, "http://h/b/k?uploadId=id%2B1%2F%3D");
        conditions.apply(&mut complete);
        assert_eq!(complete.headers().get("if-none-match").unwrap(), "*");
        let mut part = req(
            http::Method::PUT,
            "http://h/b/k?partNumber=1&uploadId=id%2B1%2F%3D",
        );
        conditions.apply(&mut part);
        assert!(part.headers().get("if-none-match").is_none());
        let mut other = req(http::Method::POST, "http://h/b/k?uploadId=another");
        conditions.apply(&mut other);
        assert!(other.headers().get("if-none-match").is_none());
        drop(guard);
        let mut later = req(http::Method::POST, "http://h/b/k?uploadId=id%2B1%2F%3D");
        conditions.apply(&mut later);
        assert!(
            later.headers().get("if-none-match").is_none(),
            "the guard removes the condition"
        );
    }

    #[test]
    fn errors_map_to_kinds() {
        let p = ArtifactPath::parse("a.jar").unwrap();
        let nf = ::object_store::Error::NotFound {
            path: "x".into(),
            source: "gone".into(),
        };
        assert_eq!(map_err(nf, &p).kind(), ErrorKind::NotFound);
        let pre = ::object_store::Error::Precondition {
            path: "x".into(),
            source: "412".into(),
        };
        assert_eq!(map_err(pre, &p).kind(), ErrorKind::PreconditionFailed);
        let auth = ::object_store::Error::PermissionDenied {
            path: "x".into(),
            source: "403".into(),
        };
        assert_eq!(map_err(auth, &p).kind(), ErrorKind::BackendAuth);
        let sig = ::object_store::Error::Generic {
            store: "S3",
            source: "<Code>SignatureDoesNotMatch</Code>".into(),
        };
        assert_eq!(map_err(sig, &p).kind(), ErrorKind::BackendAuth);
        let busy = ::object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 503".into(),
        };
        assert_eq!(map_err(busy, &p).kind(), ErrorKind::BackendUnavailable);
    }
}

/// Preconditions that multipart completions must carry, by upload id. The adapter registers one
/// just before completing an upload in `Create`/`Update` mode and removes it afterwards; the
/// store's HTTP client ([`ConditionalCompletionConnector`]) adds it to that upload's
/// `POST …?uploadId=` request, retries included. (`object_store` has no option for it.)
#[derive(Debug, Default)]
pub struct CompletionConditions {
    by_upload:
        std::sync::Mutex<std::collections::HashMap<String, (http::HeaderName, http::HeaderValue)>>,
}

/// Removes a registered precondition when dropped.
struct ConditionGuard {
    conditions: Arc<CompletionConditions>,
    upload_id: String,
}

impl Drop for ConditionGuard {
    fn drop(&mut self) {
        self.conditions
            .by_upload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.upload_id);
    }
}

impl CompletionConditions {
    fn require(
        self: &Arc<Self>,
        upload_id: &str,
        name: http::HeaderName,
        value: &str,
    ) -> Result<ConditionGuard> {
        let value = http::HeaderValue::from_str(value).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                "the ETag has characters a header cannot carry",
            )
        })?;
        self.by_upload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(upload_id.to_string(), (name, value));
        Ok(ConditionGuard {
            conditions: self.clone(),
            upload_id: upload_id.to_string(),
        })
    }

    /// Adds the precondition registered for the upload this request completes, if any.
    fn apply(&self, req: &mut HttpRequest) {
        if req.method() != http::Method::POST {
            return;
        }
        let Some(query) = req.uri().query() else {
            return;
        };
        let mut upload_id = None;
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "uploadId" => {
                    upload_id = Some(
                        percent_encoding::percent_decode_str(v)
                            .decode_utf8_lossy()
                            .into_owned(),
                    )
                }
                "partNumber" => return,
                _ => {}
            }
        }
        let Some(upload_id) = upload_id else { return };
        let found = self
            .by_upload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&upload_id)
            .cloned();
        if let Some((name, value)) = found {
            req.headers_mut().insert(name, value);
        }
    }
}

/// An `object_store` HTTP connector (reqwest underneath) whose client applies
/// [`CompletionConditions`] to multipart completion requests. The header is added after
/// signing, which SigV4 allows: only `x-amz-*` headers must be signed.
#[derive(Debug)]
pub struct ConditionalCompletionConnector {
    conditions: Arc<CompletionConditions>,
}

impl ConditionalCompletionConnector {
    pub fn new(conditions: Arc<CompletionConditions>) -> Self {
        ConditionalCompletionConnector { conditions }
    }
}

impl HttpConnector for ConditionalCompletionConnector {
    fn connect(&self, options: &ClientOptions) -> ::object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(ConditionalCompletionService {
            inner,
            conditions: self.conditions.clone(),
        }))
    }
}

#[derive(Debug)]
struct ConditionalCompletionService {
    inner: HttpClient,
    conditions: Arc<CompletionConditions>,
}

#[async_trait]
impl HttpService for ConditionalCompletionService {
    async fn call(&self, mut req: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        self.conditions.apply(&mut req);
        self.inner.execute(req).await
    }
}
