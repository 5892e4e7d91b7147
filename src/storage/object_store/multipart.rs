//! The upload engine of the `object_store` adapter: a body that fits in one part is one `PUT`
//! carrying its digest; a longer one is a multipart upload with a bounded number of parts in
//! flight, aborted on any failure and completed only once the digest checked out. See the
//! adapter's module doc for the contracts.

use std::borrow::Cow;
use std::fmt;

use ::object_store::multipart::PartId;
use ::object_store::path::Path as Key;
use ::object_store::{
    Attribute, AttributeValue, Attributes, MultipartId, PutMultipartOptions, PutPayload,
    UpdateVersion,
};
use bytes::Bytes;
use tokio::task::JoinSet;

use super::{map_err, ObjectStoreStorage, SHA256_METADATA};
use crate::error::{Error, ErrorKind, Result};
use crate::storage::errors::nothing_to_replace;
use crate::storage::etag::{quote, unquote};
use crate::storage::{ArtifactPath, HashingBody, PutMode, PutOptions, Sha256, UploadTuning};

/// Smallest part S3 accepts (all but the last part).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// The adapter's part size and parallelism unless the backend's options say otherwise.
pub const DEFAULT_TUNING: UploadTuning = UploadTuning {
    part_size: 16 * 1024 * 1024,
    concurrency: 4,
};

/// Keeps a completion precondition registered until dropped.
pub type CompletionGuard = Box<dyn Send + Sync>;

/// Makes multipart completions conditional. `object_store` has no option for it, so a backend
/// whose HTTP client can add headers to requests hands the adapter one of these (S3's is in
/// `s3/completion.rs`).
pub trait CompletionPreconditions: Send + Sync + fmt::Debug {
    /// Adds `name: value` to the completion request of `upload_id` (retries included) until
    /// the returned guard is dropped.
    fn require(
        &self,
        upload_id: &str,
        name: http::HeaderName,
        value: &str,
    ) -> Result<CompletionGuard>;
}

impl ObjectStoreStorage {
    pub(super) async fn put_single(
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
        Ok(res.e_tag.map(|t| unquote(&t).to_string()))
    }

    /// Streams the rest of `body` as a multipart upload; aborts it on any failure.
    pub(super) async fn put_multipart(
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
                return Err(nothing_to_replace(path))
            }
            Err(e) => return Err(map_err(e, path)),
        };
        Ok((res.e_tag.map(|t| unquote(&t).to_string()), sha, len))
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
