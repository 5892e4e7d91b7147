//! The HDFS backend: its own adapter over the `hdfs-native` crate (pure Rust, no JVM, no
//! libhdfs), plus the constructor from [`HdfsOptions`].
//!
//! Owns: the HDFS layout under the mount's root, the contracts of `storage/mod.rs` on HDFS, and
//! the mapping of Hadoop exceptions to error kinds. Must never import `service` or `http`.
//!
//! ## Why `hdfs-native` directly, not opendal's `hdfs-native` service
//! Checked against opendal-service-hdfs-native 0.59.5, each point a contract of the trait:
//! - **Atomic replace.** Its `rename` deletes the destination (or, when there is none, *creates
//!   an empty file there*) and then renames: readers can see a missing or an empty artifact.
//!   `hdfs-native`'s `rename(src, dst, overwrite = true)` is the NameNode's `rename2` with
//!   `OVERWRITE`: one namespace operation, no window. With `overwrite = false` it is an atomic
//!   create-only (`FileAlreadyExistsException` if the name exists).
//! - **Listing.** Its lister has no `limit`/`start_after` and yields the directory itself first.
//! - **Validator.** Both give size and modification time; neither exposes the inode id.
//! - **Errors.** It turns connection failures, checksum errors, safe mode, standby NameNodes and
//!   permission errors all into `Unexpected`, non-retryable; the service could neither retry a
//!   transient failure nor answer 502 for a refused user. Here each Hadoop exception class and
//!   I/O error maps to its own kind.
//! - **Abort.** Its writer cannot abort; here a failed upload's temporary file is deleted.
//! - **Reading at an offset** is the same in both (`read_range_stream` over the file's blocks).
//!
//! ## Layout under the root
//! - artifacts at their own paths;
//! - `.artifact-gateway/tmp/<uuid>`: uploads in progress, renamed into place once complete and
//!   verified; removed on failure, and leftovers older than an hour are removed in the
//!   background by [`Storage::start`] (opening the store makes no request);
//! - `.artifact-gateway/meta/<path>.json`: the sidecar of `sidecar.rs` (SHA-256, content type),
//!   written *before* the data is renamed into place and keyed by the data file's length and
//!   modification time, which a rename keeps. A file replaced by another tool shows no digest.
//!
//! ## Contracts and their limits on HDFS
//! - ETag (strong validator): `<mtime ms hex>-<length hex>`. Two writes of the same length that
//!   close within the same millisecond would share it (HDFS keeps mtime in milliseconds and the
//!   client does not expose the inode id).
//! - `PutMode::Create` is atomic (`rename` without overwrite). `PutMode::Update` is checked right
//!   before the rename and is not atomic against another writer (`atomic_update: false`).
//!   A create racing another create may overwrite the winner's sidecar: its digest then reads as
//!   unknown, never wrong.
//! - Reads: `head` is a `getFileInfo` plus the sidecar read, in parallel. `get` opens the file
//!   (block locations), checks its length against the head and, when a version is pinned,
//!   re-checks the ETag after opening; a replace in between is `PreconditionFailed` (the service
//!   retries). Not atomic in the store (`pinned_read: false`), but a body never mixes versions.
//! - Listing reads the whole directory (the client cannot start after a name; the NameNode
//!   answers 1000 entries per call) and keeps only the best `limit + 1` names, so memory stays
//!   bounded. HDFS orders names by *signed* bytes, not by UTF-8 order, so the page is sorted here.
//! - Memory: bodies stream through the client's 64 KiB packets in both directions; a 1 GiB
//!   upload through HTTP peaked at 29 MiB RSS for the whole gateway (release build).
//! - Retries: the client's own failover loop is bounded (see [`HdfsOptions::config`]) so a dead
//!   NameNode fails within seconds; the service retries reads within its deadline.

mod errors;
mod list;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use hdfs_native::client::FileStatus;
use hdfs_native::{Client, ClientBuilder, WriteOptions};
use serde::Deserialize;

use super::errors::{changed, directory_in_the_way, exists, file_in_the_way, not_found, reword};
use super::sidecar::{self, Record};
use super::{
    guess_content_type, ArtifactPath, ByteStream, Capabilities, GetOptions, GetResult, HashingBody,
    ListOptions, ListPage, Meta, PutMode, PutResult, Storage, Upload,
};
use crate::error::{Error, ErrorKind, Result};

use errors::is_not_found;
pub use errors::map_error;

/// Options of the HDFS backend (`[mounts.hdfs]`). The namenode (or an HA nameservice, resolved
/// through `dfs.ha.namenodes.<ns>` in `config` or in `$HADOOP_CONF_DIR`) and the root prefix
/// come from the URL: `hdfs://namenode:8020/prefix`, `hdfs://nameservice/prefix`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HdfsOptions {
    /// The user to act as; default `HADOOP_USER_NAME`, else the process user.
    pub user: Option<String>,
    /// Extra client configuration (`dfs.*`, e.g. an HA nameservice's namenodes). Overrides
    /// `$HADOOP_CONF_DIR`. Unless set here, the gateway bounds the client's own retries so
    /// failures surface within the service's deadline: `dfs.client.failover.max.attempts = 3`,
    /// `dfs.client.failover.sleep.base.millis = 100`, `dfs.client.failover.sleep.max.millis =
    /// 1000`, `dfs.client.socket-timeout = 20000`.
    #[serde(default)]
    pub config: std::collections::BTreeMap<String, String>,
}

/// Client settings the gateway sets unless the mount's `config` does.
const BOUNDED_RETRIES: [(&str, &str); 4] = [
    ("dfs.client.failover.max.attempts", "3"),
    ("dfs.client.failover.sleep.base.millis", "100"),
    ("dfs.client.failover.sleep.max.millis", "1000"),
    ("dfs.client.socket-timeout", "20000"),
];

const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// What HDFS keeps natively (see "Contracts and their limits" above): creates are atomic
/// (`rename` without overwrite); pinned reads and guarded updates are checked, not atomic.
const CAPABILITIES: Capabilities = Capabilities {
    pinned_read: false,
    atomic_update: false,
    ..Capabilities::ALL
};

/// Artifacts under a root directory of an HDFS namespace.
#[derive(Clone)]
pub struct HdfsStorage {
    client: Arc<Client>,
    /// Absolute root without a trailing slash (`""` for `/`).
    root: String,
    describe: String,
}

impl std::fmt::Debug for HdfsStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HdfsStorage")
            .field("describe", &self.describe)
            .finish_non_exhaustive()
    }
}

/// Builds the storage of `hdfs://authority/prefix`. Makes no request: the gateway starts while
/// the NameNode is unreachable and `/readyz` reports it.
pub fn build(url: &str, prefix: &str, options: &HdfsOptions) -> Result<HdfsStorage> {
    let mut config: std::collections::HashMap<String, String> = BOUNDED_RETRIES
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    config.extend(options.config.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut builder = ClientBuilder::new().with_url(url).with_config(config);
    if let Some(user) = options.user.as_deref().filter(|u| !u.is_empty()) {
        builder = builder.with_user(user);
    }
    let client = builder.build().map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("[hdfs] cannot set up a client for {url}: {e}"),
        )
    })?;
    let root = if prefix.is_empty() {
        String::new()
    } else {
        format!("/{prefix}")
    };
    let describe = if prefix.is_empty() {
        url.to_string()
    } else {
        format!("{url}/{prefix}")
    };
    Ok(HdfsStorage {
        client: Arc::new(client),
        root,
        describe,
    })
}

impl HdfsStorage {
    pub(super) fn abs(&self, rel: &str) -> String {
        if rel.is_empty() {
            if self.root.is_empty() {
                "/".to_string()
            } else {
                self.root.clone()
            }
        } else {
            format!("{}/{}", self.root, rel)
        }
    }

    fn tmp_path(&self, suffix: &str) -> String {
        self.abs(&format!(
            "{}/{}{suffix}",
            sidecar::tmp_dir(),
            uuid::Uuid::new_v4().simple()
        ))
    }

    /// `getFileInfo`; `None` when nothing (or a directory, with `files_only`) is there.
    async fn stat_opt(&self, abs: &str, path: &ArtifactPath) -> Result<Option<FileStatus>> {
        match self.client.get_file_info(abs).await {
            Ok(st) => Ok(Some(st)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(map_error("stat", e).with_path(path.as_str())),
        }
    }

    async fn stat_file(&self, path: &ArtifactPath) -> Result<Option<FileStatus>> {
        if path.is_root() {
            return Ok(None);
        }
        Ok(self
            .stat_opt(&self.abs(path.as_str()), path)
            .await?
            .filter(|s| !s.isdir))
    }

    /// A small file's bytes, `None` when it is missing or too large to be ours.
    async fn read_small(&self, abs: &str) -> Result<Option<Bytes>> {
        let reader = match self.client.read(abs).await {
            Ok(r) => r,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(map_error("read metadata sidecar", e)),
        };
        let len = reader.file_length();
        if len as u64 > sidecar::MAX_SIDECAR_BYTES {
            return Ok(None);
        }
        reader
            .read_range(0, len)
            .await
            .map(Some)
            .map_err(|e| map_error("read metadata sidecar", e))
    }

    async fn head_inner(&self, path: &ArtifactPath) -> Result<Meta> {
        let meta_abs = self.abs(&sidecar::meta_key(path));
        let (stat, side) = futures::join!(self.stat_file(path), self.read_small(&meta_abs));
        let st = stat?.ok_or_else(|| not_found(path))?;
        let side = side.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the metadata sidecar; serving without a digest");
            None
        });
        Ok(meta_of(path, &st, side.as_deref()))
    }

    /// Writes a small file atomically: temporary name, then rename over `abs`.
    async fn write_small(&self, abs: &str, bytes: Vec<u8>) -> Result<()> {
        let tmp = self.tmp_path(".meta");
        let mut w = self
            .client
            .create(&tmp, WriteOptions::default())
            .await
            .map_err(|e| map_error("write metadata", e))?;
        let written = async {
            w.write_bytes(Bytes::from(bytes)).await?;
            w.close().await
        }
        .await;
        if let Err(e) = written {
            let _ = self.client.delete(&tmp, false).await;
            return Err(map_error("write metadata", e));
        }
        let placed = async {
            self.client.mkdirs(parent_of(abs), 0o755, true).await?;
            self.client.rename(&tmp, abs, true).await
        }
        .await;
        if let Err(e) = placed {
            let _ = self.client.delete(&tmp, false).await;
            return Err(map_error("place metadata", e));
        }
        Ok(())
    }

    /// Checks the put mode against what is stored now. Returns the current file, if any.
    async fn check_mode(&self, path: &ArtifactPath, mode: &PutMode) -> Result<Option<FileStatus>> {
        let current = self.stat_opt(&self.abs(path.as_str()), path).await?;
        if current.as_ref().is_some_and(|s| s.isdir) {
            return Err(directory_in_the_way(path));
        }
        mode.check(path, current.as_ref().map(validator).as_deref())?;
        Ok(current)
    }

    /// Streams the body into a new temporary file and closes it.
    async fn stage(&self, tmp: &str, path: &ArtifactPath, body: &mut HashingBody) -> Result<()> {
        let mut w = self
            .client
            .create(tmp, WriteOptions::default())
            .await
            .map_err(|e| map_error("start upload", e))?;
        while let Some(chunk) = body
            .next_chunk()
            .await
            .map_err(|e| e.with_path(path.as_str()))?
        {
            w.write_bytes(chunk)
                .await
                .map_err(|e| map_error("upload", e).with_path(path.as_str()))?;
        }
        w.close()
            .await
            .map_err(|e| map_error("complete upload", e).with_path(path.as_str()))
    }

    /// Removes temporary files left by a crash, in the background, once.
    fn spawn_stale_temp_cleanup(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let client = self.client.clone();
        let dir = self.abs(&sidecar::tmp_dir());
        handle.spawn(async move {
            let Ok(entries) = client.list_status(&dir, false).await else { return };
            let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
            for st in entries {
                if !st.isdir && now.saturating_sub(st.modification_time) > STALE_TEMP_AGE.as_millis() as u64 {
                    match client.delete(&st.path, false).await {
                        Ok(_) => tracing::info!(path = %st.path, "removed a stale upload"),
                        Err(e) => tracing::debug!(path = %st.path, error = %e, "cannot remove a stale upload"),
                    }
                }
            }
        });
    }
}

#[async_trait]
impl Storage for HdfsStorage {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn head(&self, path: &ArtifactPath) -> Result<Meta> {
        self.head_inner(path).await
    }

    async fn get(&self, path: &ArtifactPath, opts: GetOptions) -> Result<GetResult> {
        let meta = self.head_inner(path).await?;
        opts.check(&meta)?;
        let range = opts.range.clone().unwrap_or(0..meta.size);
        let len = range.end - range.start;
        let reader = self
            .client
            .read(&self.abs(path.as_str()))
            .await
            .map_err(|e| {
                let err = map_error("open", e).with_path(path.as_str());
                reword(err, ErrorKind::NotFound, || changed(path))
            })?;
        if reader.file_length() as u64 != meta.size {
            return Err(changed(path));
        }
        if opts.if_match.is_some() {
            // The blocks are fixed now; make sure they belong to the version the caller pinned.
            let now = self.stat_file(path).await?;
            if now.as_ref().map(validator).as_deref() != Some(meta.etag.as_str()) {
                return Err(changed(path));
            }
        }
        let body: ByteStream = if len == 0 {
            Box::pin(futures::stream::empty())
        } else {
            let p = path.as_str().to_string();
            Box::pin(
                reader
                    .read_range_stream(range.start as usize, len as usize)
                    .map(move |r| r.map_err(|e| map_error("read", e).with_path(p.clone()))),
            )
        };
        Ok(GetResult::new(meta, range, body))
    }

    async fn put(&self, path: &ArtifactPath, upload: Upload) -> Result<PutResult> {
        let Upload { body, opts } = upload;
        path.require_artifact()?;
        let target = self.abs(path.as_str());
        let existed = self.check_mode(path, &opts.mode).await?.is_some();

        let tmp = self.tmp_path("");
        let guard = TempGuard {
            client: self.client.clone(),
            path: Some(tmp.clone()),
        };
        let mut hashing = HashingBody::new(body, opts.max_size);
        self.stage(&tmp, path, &mut hashing).await?;
        let (sha, len) = hashing.finish(opts.sha256, path)?;
        let staged = self.stat_opt(&tmp, path).await?.ok_or_else(|| {
            Error::new(ErrorKind::BackendUnavailable, "the staged upload vanished")
                .with_path(path.as_str())
        })?;
        if staged.length as u64 != len {
            return Err(Error::new(
                ErrorKind::BackendUnavailable,
                format!("HDFS stored {} bytes of a {len}-byte upload", staged.length),
            )
            .with_path(path.as_str()));
        }

        // Right before the rename: the parent directories, the mode again, the sidecar, the data.
        self.client
            .mkdirs(parent_of(&target), 0o755, true)
            .await
            .map_err(|e| {
                let err = map_error("create parent directories", e).with_path(path.as_str());
                reword(err, ErrorKind::PreconditionFailed, || file_in_the_way(path))
            })?;
        self.check_mode(path, &opts.mode).await?;
        let content_type = opts.content_type_for(path);
        let record = Record::new(sha, Some(content_type), len, validator(&staged));
        self.write_small(&self.abs(&sidecar::meta_key(path)), record.to_json())
            .await
            .map_err(|e| e.with_path(path.as_str()))?;
        let overwrite = opts.mode != PutMode::Create;
        self.client
            .rename(&tmp, &target, overwrite)
            .await
            .map_err(|e| {
                let err = map_error("place the upload", e).with_path(path.as_str());
                match opts.mode {
                    PutMode::Create => reword(err, ErrorKind::PreconditionFailed, || exists(path)),
                    _ => err,
                }
            })?;
        guard.disarm();

        let st = self.stat_file(path).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::BackendUnavailable,
                "the artifact vanished right after it was stored",
            )
            .with_path(path.as_str())
        })?;
        Ok(PutResult {
            meta: meta_of(path, &st, Some(&record.to_json())),
            created: !existed,
        })
    }

    async fn delete(&self, path: &ArtifactPath) -> Result<()> {
        if self.stat_file(path).await?.is_none() {
            return Err(not_found(path));
        }
        let deleted = self
            .client
            .delete(&self.abs(path.as_str()), false)
            .await
            .map_err(|e| map_error("delete", e).with_path(path.as_str()))?;
        if !deleted {
            return Err(not_found(path));
        }
        if let Err(e) = self
            .client
            .delete(&self.abs(&sidecar::meta_key(path)), false)
            .await
        {
            tracing::warn!(path = %path, error = %e, "cannot delete a metadata sidecar; it no longer matches anything");
        }
        Ok(())
    }

    async fn list(&self, dir: &ArtifactPath, opts: ListOptions) -> Result<ListPage> {
        self.list_page(dir, opts).await
    }

    async fn ready(&self) -> Result<()> {
        // One NameNode round trip; a root that does not exist yet is fine (puts create it).
        match self.client.get_file_info(&self.abs("")).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(map_error("readiness check", e)),
        }
    }

    async fn start(&self) -> Result<()> {
        self.spawn_stale_temp_cleanup();
        Ok(())
    }
}

/// Deletes a temporary file unless disarmed: on error paths and when the put future is dropped.
struct TempGuard {
    client: Arc<Client>,
    path: Option<String>,
}

impl TempGuard {
    fn disarm(mut self) {
        self.path = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        let Some(path) = self.path.take() else { return };
        let client = self.client.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = client.delete(&path, false).await {
                    tracing::warn!(path = %path, error = %e, "cannot remove a failed upload's temporary file");
                }
            });
        }
    }
}

fn meta_of(path: &ArtifactPath, st: &FileStatus, side: Option<&[u8]>) -> Meta {
    let etag = validator(st);
    let size = st.length as u64;
    let record = side.and_then(|b| Record::matching(b, size, &etag));
    let content_type = record
        .as_ref()
        .and_then(|r| r.content_type().map(str::to_string))
        .unwrap_or_else(|| guess_content_type(path));
    Meta {
        path: path.clone(),
        size,
        last_modified: mtime(st),
        sha256: record.as_ref().and_then(Record::sha256),
        etag,
        content_type: Some(content_type),
    }
}

/// The strong validator: modification time (ms) and length.
pub(super) fn validator(st: &FileStatus) -> String {
    format!("{:x}-{:x}", st.modification_time, st.length)
}

pub(super) fn mtime(st: &FileStatus) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(st.modification_time)
}

fn parent_of(abs: &str) -> &str {
    match abs.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &abs[..i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_validators() {
        assert_eq!(parent_of("/a/b/c.jar"), "/a/b");
        assert_eq!(parent_of("/c.jar"), "/");
        let s = build("hdfs://127.0.0.1:1", "flink/jobs", &HdfsOptions::default()).unwrap();
        assert_eq!(s.abs(""), "/flink/jobs");
        assert_eq!(s.abs("a/b.jar"), "/flink/jobs/a/b.jar");
        assert_eq!(s.describe(), "hdfs://127.0.0.1:1/flink/jobs");
        let s = build("hdfs://127.0.0.1:1", "", &HdfsOptions::default()).unwrap();
        assert_eq!(s.abs(""), "/");
        assert_eq!(s.abs("a"), "/a");
    }
}
