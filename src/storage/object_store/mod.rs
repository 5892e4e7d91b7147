//! One adapter over the `object_store` crate: [`ObjectStoreStorage`] implements [`Storage`] for any
//! store that also offers paginated listing (S3 and S3-compatible stores today). Backends are
//! constructors that build the store (see `s3.rs`); all behaviour lives here.
//!
//! Owns: the key layout under a bucket prefix, the put strategy, metadata and listing pages.
//! Must never import `service` or `http`. Split by job: this file is the [`Storage`] adapter;
//! `multipart.rs` the upload engine (one PUT or a bounded multipart upload); `list.rs` listing
//! pages; `errors.rs` the mapping of `object_store` errors to [`ErrorKind`].
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
//!   a backend whose HTTP client can add headers hands the adapter a
//!   [`CompletionPreconditions`] (S3's is in `s3/completion.rs`), which adds the
//!   `If-None-Match: *` / `If-Match` to that upload's completion request. A store built without
//!   one falls back to a HEAD just before completion (not atomic), and its [`Capabilities`] say
//!   so. One corner stays: if a completion succeeds
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

mod errors;
mod list;
mod multipart;

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use ::object_store::list::{PaginatedListOptions, PaginatedListStore};
use ::object_store::multipart::MultipartStore;
use ::object_store::path::Path as Key;
use ::object_store::{
    Attribute, AttributeValue, Attributes, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutPayload,
};
use async_trait::async_trait;
use futures::StreamExt;

use super::errors::not_found;
use super::etag::{quote, unquote};
use super::path::RESERVED_SEGMENT;
use super::sidecar;
use super::{
    guess_content_type, ArtifactPath, Capabilities, GetOptions, GetResult, HashingBody,
    ListOptions, ListPage, Meta, PutMode, PutResult, Sha256, Storage, Upload, UploadTuning,
};
use crate::error::{Error, ErrorKind, Result};

pub use errors::record_status;
pub(crate) use errors::{map_err, observing};
pub use multipart::{CompletionGuard, CompletionPreconditions, DEFAULT_TUNING, MIN_PART_SIZE};

pub(crate) const SHA256_METADATA: &str = "sha256";

/// A [`Storage`] over an `object_store` store and a key prefix.
#[derive(Clone)]
pub struct ObjectStoreStorage {
    store: Arc<dyn ObjectStore>,
    lister: Arc<dyn PaginatedListStore>,
    multipart: Arc<dyn MultipartStore>,
    /// Where multipart completions get their preconditions; `None`: check-then-complete.
    conditions: Option<Arc<dyn CompletionPreconditions>>,
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
    /// is what [`Storage::describe`] shows (`s3://bucket/prefix`). `conditions` makes the
    /// store's HTTP client add `If-None-Match`/`If-Match` to multipart completions; without it
    /// they are checked just before.
    pub fn new<S>(
        store: Arc<S>,
        prefix: &str,
        label: impl Into<String>,
        tuning: UploadTuning,
        conditions: Option<Arc<dyn CompletionPreconditions>>,
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
        mode.check(
            path,
            existing.as_ref().map(|(om, _)| etag_of(om)).as_deref(),
        )?;
        Ok(existing.is_none())
    }
}

#[async_trait]
impl Storage for ObjectStoreStorage {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn capabilities(&self) -> Capabilities {
        // Single PUTs always carry the precondition; multipart completions only when the
        // store's client has the completion hook. See the module doc.
        let conditional_completion = self.conditions.is_some();
        Capabilities {
            atomic_create: conditional_completion,
            atomic_update: conditional_completion,
            ..Capabilities::ALL
        }
    }

    async fn head(&self, path: &ArtifactPath) -> Result<Meta> {
        observing(self.head_now(path)).await
    }

    async fn get(&self, path: &ArtifactPath, opts: GetOptions) -> Result<GetResult> {
        observing(self.get_now(path, opts)).await
    }

    /// Every call runs [`observing`] the statuses its requests end with (see `errors.rs`).
    async fn put(&self, path: &ArtifactPath, upload: Upload) -> Result<PutResult> {
        observing(self.put_now(path, upload)).await
    }

    async fn delete(&self, path: &ArtifactPath) -> Result<()> {
        observing(self.delete_now(path)).await
    }

    async fn list(&self, dir: &ArtifactPath, opts: ListOptions) -> Result<ListPage> {
        observing(self.list_page(dir, opts)).await
    }

    async fn ready(&self) -> Result<()> {
        observing(self.ready_now()).await
    }
}

/// The calls of the trait, each run inside [`observing`] by the trait's implementation.
impl ObjectStoreStorage {
    async fn head_now(&self, path: &ArtifactPath) -> Result<Meta> {
        let key = self.key(path)?;
        match self.head_raw(&key, path).await? {
            Some((om, attrs)) => Ok(self.meta_of(path, &om, &attrs).await),
            None => Err(not_found(path)),
        }
    }

    async fn get_now(&self, path: &ArtifactPath, opts: GetOptions) -> Result<GetResult> {
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
                return Ok(GetResult::empty(meta, r.clone()));
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
        Ok(GetResult::new(meta, range, Box::pin(stream)))
    }

    async fn put_now(&self, path: &ArtifactPath, upload: Upload) -> Result<PutResult> {
        let Upload { body, opts } = upload;
        path.require_artifact()?;
        let key = self.key(path)?;
        // Fail early (before any byte moves) when the mode cannot succeed; learns `created`.
        let created = self.check_mode(&key, path, &opts.mode).await?;
        let content_type = opts.content_type_for(path);
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

    async fn delete_now(&self, path: &ArtifactPath) -> Result<()> {
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

    async fn ready_now(&self) -> Result<()> {
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

fn etag_of(om: &ObjectMeta) -> String {
    match &om.e_tag {
        Some(t) => unquote(t).to_string(),
        // Stores without ETags: size and modification time stand in.
        None => format!(
            "{:x}-{:x}",
            om.size,
            om.last_modified.timestamp_nanos_opt().unwrap_or_default()
        ),
    }
}
