//! The artifact service: mounts, access decisions, and the server's use-cases (head, get, put,
//! delete, list, readiness), with backend deadlines and retries. The init-container download
//! lives beside it in `crate::fetch`, on the same storage layer.
//!
//! Owns: which mount a request goes to, whether the caller may do it, and how long a backend
//! may take. Must never import `http`: it speaks in [`crate::error::Error`] kinds.

pub mod auth;
pub mod signing;

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{within, Backoff};
use crate::storage::metrics::StorageMetrics;
use crate::storage::{
    registry, ArtifactPath, GetOptions, GetResult, ListOptions, ListPage, Meta, PutResult, Storage,
    Upload,
};

pub use auth::{Authorizer, Principal, Scope};
pub use signing::{Signed, SignedQuery, Signer};

/// Who a late answer is blamed on.
const BACKEND: &str = "the backend";

/// Attempts at a consistent read when the artifact changes between its metadata and its body.
pub const READ_ATTEMPTS: usize = 3;

/// What a [`Gateway::read_consistent`] caller decides from an artifact's metadata.
pub enum Plan<T> {
    /// No body is needed: this is the answer.
    Answer(T),
    /// Read the body of this version: all of it (`None`) or one range.
    Read(Option<Range<u64>>),
}

/// The result of [`Gateway::read_consistent`].
pub enum Read<T> {
    /// The caller answered from the metadata.
    Answered(T),
    /// The body of the version the caller decided on; `ranged` when a range was asked for.
    Body { result: GetResult, ranged: bool },
}

/// One mount: a name, its storage, and its policy.
#[derive(Debug, Clone)]
pub struct Mount {
    pub name: String,
    pub storage: Arc<dyn Storage>,
    pub anonymous_read: bool,
    pub max_upload_size: u64,
    /// Reads only: writes are refused with [`ErrorKind::ReadOnly`] before they reach storage.
    /// Set by `read_only = true`, or by [`Gateway::start`] for a store that cannot be written.
    pub read_only: bool,
}

impl Mount {
    /// `Ok` when the mount takes writes; the `read_only` refusal otherwise.
    pub fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::new(
                ErrorKind::ReadOnly,
                format!(
                    "mount {:?} is read-only: it serves GET and HEAD only",
                    self.name
                ),
            )
            .with_mount(&self.name));
        }
        Ok(())
    }
}

/// A mount and the scopes the caller holds on it.
pub type MountAccess<'a> = (&'a Mount, Vec<Scope>);

/// The gateway's mounts and policies.
#[derive(Debug)]
pub struct Gateway {
    mounts: BTreeMap<String, Mount>,
    auth: Authorizer,
    backend_timeout: Duration,
    storage_metrics: StorageMetrics,
    signer: Option<Signer>,
}

impl Gateway {
    /// Builds every mount's storage and resolves every secret; any failure stops start-up.
    pub async fn from_config(config: &Config, env_token: Option<&str>) -> Result<Gateway> {
        let mut mounts = BTreeMap::new();
        let storage_metrics = StorageMetrics::default();
        for m in &config.mounts {
            let spec = m.backend()?;
            let storage = registry::build_mount(&spec, &m.name, m.cache.as_ref(), &storage_metrics)
                .await
                .map_err(|e| {
                    Error::new(e.kind(), format!("mounts[{:?}]: {}", m.name, e.message()))
                })?;
            mounts.insert(
                m.name.clone(),
                Mount {
                    name: m.name.clone(),
                    storage,
                    anonymous_read: m.anonymous_read,
                    max_upload_size: m.max_upload_size.as_u64(),
                    read_only: m.read_only,
                },
            );
        }
        let auth = Authorizer::from_config(&config.tokens, env_token)?;
        let signer = config
            .signing
            .as_ref()
            .map(Signer::from_config)
            .transpose()?;
        Ok(Gateway {
            mounts,
            auth,
            backend_timeout: config.limits.backend_timeout,
            storage_metrics,
            signer,
        })
    }

    /// A gateway over ready-made storages (tests, embedding).
    pub fn new(mounts: Vec<Mount>, auth: Authorizer, backend_timeout: Duration) -> Gateway {
        Gateway {
            mounts: mounts.into_iter().map(|m| (m.name.clone(), m)).collect(),
            auth,
            backend_timeout,
            storage_metrics: StorageMetrics::default(),
            signer: None,
        }
    }

    /// Turns on signed URLs with these keys.
    pub fn with_signer(mut self, signer: Signer) -> Gateway {
        self.signer = Some(signer);
        self
    }

    /// A gateway over ready-made storages that report to `metrics` (tests, embedding).
    pub fn with_metrics(mut self, metrics: StorageMetrics) -> Gateway {
        self.storage_metrics = metrics;
        self
    }

    /// The storage layer's counters (backend bytes, cache), for `/metrics`.
    pub fn storage_metrics(&self) -> &StorageMetrics {
        &self.storage_metrics
    }

    pub fn mounts(&self) -> impl Iterator<Item = &Mount> {
        self.mounts.values()
    }

    /// The server's start-up, once per mount: the store's housekeeping ([`Storage::start`]),
    /// then a probe whether it can be written. A store that can only be read (a read-only
    /// directory) makes its mount read-only, which is logged. A mount configured read-only is
    /// neither started nor probed: nothing is written to it, ever.
    pub async fn start(&mut self) -> Result<()> {
        for m in self.mounts.values_mut() {
            if m.read_only {
                tracing::info!(mount = %m.name, "read-only mount (read_only = true): writes answer 405");
                continue;
            }
            m.storage.start().await.map_err(|e| {
                Error::new(e.kind(), format!("mounts[{:?}]: {}", m.name, e.message()))
            })?;
            match m.storage.check_writable().await {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::ReadOnly => {
                    tracing::warn!(mount = %m.name, reason = %e, "the mount's store cannot be written: serving it read-only (writes answer 405)");
                    m.read_only = true;
                }
                // Not a reason to refuse writes (a full disk may be emptied); they will say.
                Err(e) => {
                    tracing::warn!(mount = %m.name, error = %e, "the write probe failed")
                }
            }
        }
        Ok(())
    }

    /// Finds the mount and checks the caller may use `scope` on it.
    pub fn authorize(
        &self,
        mount: &str,
        scope: Scope,
        credential: Option<&str>,
    ) -> Result<(&Mount, Principal)> {
        let m = self.mounts.get(mount).ok_or_else(|| {
            Error::new(ErrorKind::NotFound, format!("no mount named {mount:?}")).with_mount(mount)
        })?;
        let who = self
            .auth
            .check(mount, m.anonymous_read, scope, credential)
            .map_err(|e| e.with_mount(mount))?;
        if scope != Scope::Read {
            m.writable()?;
        }
        Ok((m, who))
    }

    /// Finds the mount and checks a signed URL for a read of `path` on it. A wrong, foreign or
    /// expired signature is refused here, before any storage call.
    pub fn authorize_signed(
        &self,
        mount: &str,
        path: &ArtifactPath,
        signed: &SignedQuery,
    ) -> Result<&Mount> {
        let m = self.mount(mount)?;
        let signer = self.signer.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unauthenticated,
                "invalid signed URL: signed URLs are not enabled on this server",
            )
        })?;
        signer
            .verify(mount, path, signed, std::time::SystemTime::now())
            .map_err(|e| e.with_mount(mount).with_path(path.as_str()))?;
        Ok(m)
    }

    /// Checks that the caller may sign reads on `mount`: a bearer token with the read scope on it
    /// (anonymous callers cannot sign, even on an anonymously readable mount).
    pub fn authorize_signing(&self, mount: &str, credential: Option<&str>) -> Result<()> {
        if credential.is_none() {
            return Err(Error::new(
                ErrorKind::Unauthenticated,
                "signing a URL needs a bearer token with the read scope on the mount",
            )
            .with_mount(mount));
        }
        let (_, who) = self.authorize(mount, Scope::Read, credential)?;
        if who == Principal::Anonymous {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "the token lacks the `read` scope on mount {mount:?}, so it cannot sign for it"
                ),
            )
            .with_mount(mount));
        }
        Ok(())
    }

    /// Signs a read of `mount`/`path` for `lifetime`, for a caller [`Gateway::authorize_signing`]
    /// accepts.
    pub fn sign(
        &self,
        mount: &str,
        path: &ArtifactPath,
        lifetime: Duration,
        credential: Option<&str>,
    ) -> Result<Signed> {
        self.authorize_signing(mount, credential)?;
        let signer = self.signer.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                "signed URLs are not configured on this server: add a [signing] section with a key",
            )
        })?;
        signer.sign(mount, path, lifetime, std::time::SystemTime::now())
    }

    fn mount(&self, mount: &str) -> Result<&Mount> {
        self.mounts.get(mount).ok_or_else(|| {
            Error::new(ErrorKind::NotFound, format!("no mount named {mount:?}")).with_mount(mount)
        })
    }

    /// Lists the mounts the caller may read.
    pub fn readable_mounts(&self, credential: Option<&str>) -> Vec<&Mount> {
        self.mounts
            .values()
            .filter(|m| {
                self.auth
                    .check(&m.name, m.anonymous_read, Scope::Read, credential)
                    .is_ok()
            })
            .collect()
    }

    /// Who the caller is and, for every mount it may use at all, the scopes it holds there
    /// (mounts it may not touch are left out). A token that matches none is `Unauthenticated`.
    pub fn capabilities(
        &self,
        credential: Option<&str>,
    ) -> Result<(Principal, Vec<MountAccess<'_>>)> {
        let who = self.auth.identify(credential)?;
        let mounts = self
            .mounts
            .values()
            .map(|m| {
                let scopes = [Scope::Read, Scope::Write, Scope::Delete]
                    .into_iter()
                    .filter(|s| *s == Scope::Read || !m.read_only)
                    .filter(|s| {
                        self.auth
                            .check(&m.name, m.anonymous_read, *s, credential)
                            .is_ok()
                    })
                    .collect::<Vec<_>>();
                (m, scopes)
            })
            .filter(|(_, scopes)| !scopes.is_empty())
            .collect();
        Ok((who, mounts))
    }

    pub async fn head(&self, mount: &Mount, path: &ArtifactPath) -> Result<Meta> {
        self.idempotent(mount, || mount.storage.head(path)).await
    }

    /// Opens a read. The deadline covers opening; the body then streams without one.
    pub async fn get(&self, m: &Mount, path: &ArtifactPath, opts: GetOptions) -> Result<GetResult> {
        self.idempotent(m, || m.storage.get(path, opts.clone()))
            .await
    }

    /// Reads one consistent version of an artifact. `decide` sees the current metadata and
    /// either answers without the body ([`Plan::Answer`]) or asks for the body, whole or one
    /// range ([`Plan::Read`]); the read is then pinned to that version (`If-Match` on its ETag),
    /// so headers computed from the metadata always describe the bytes served. A version
    /// replaced between the two calls is read again, up to [`READ_ATTEMPTS`] times.
    pub async fn read_consistent<T>(
        &self,
        mount: &Mount,
        path: &ArtifactPath,
        mut decide: impl FnMut(Meta) -> Plan<T>,
    ) -> Result<Read<T>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let meta = self.head(mount, path).await?;
            let etag = meta.etag.clone();
            let range = match decide(meta) {
                Plan::Answer(answer) => return Ok(Read::Answered(answer)),
                Plan::Read(range) => range,
            };
            let ranged = range.is_some();
            let opts = GetOptions {
                range,
                if_match: Some(etag),
            };
            match self.get(mount, path, opts).await {
                Ok(result) => return Ok(Read::Body { result, ranged }),
                Err(e) if e.kind() == ErrorKind::PreconditionFailed && attempt < READ_ATTEMPTS => {}
                Err(e) => return Err(e),
            }
        }
    }

    pub async fn list(&self, m: &Mount, dir: &ArtifactPath, opts: ListOptions) -> Result<ListPage> {
        self.idempotent(m, || m.storage.list(dir, opts.clone()))
            .await
    }

    /// Stores a body. Not retried (the body is consumed) and not under the backend deadline:
    /// a large upload takes as long as the client needs; the idle timeout catches stalls.
    pub async fn put(
        &self,
        mount: &Mount,
        path: &ArtifactPath,
        mut upload: Upload,
    ) -> Result<PutResult> {
        mount.writable()?;
        let limit = mount.max_upload_size;
        upload.opts.max_size = Some(upload.opts.max_size.map_or(limit, |m| m.min(limit)));
        mount
            .storage
            .put(path, upload)
            .await
            .map_err(|e| e.with_mount(&mount.name))
    }

    pub async fn delete(&self, mount: &Mount, path: &ArtifactPath) -> Result<()> {
        mount.writable()?;
        within(self.backend_timeout, BACKEND, mount.storage.delete(path))
            .await
            .map_err(|e| e.with_mount(&mount.name))
    }

    /// Every mount's readiness, in name order.
    pub async fn readiness(&self) -> Vec<(String, Result<()>)> {
        let checks = self.mounts.values().map(|m| async move {
            let limit = self.backend_timeout.min(Duration::from_secs(5));
            let r = within(limit, BACKEND, m.storage.ready()).await;
            (m.name.clone(), r.map_err(|e| e.with_mount(&m.name)))
        });
        futures::future::join_all(checks).await
    }

    /// Runs an idempotent backend call with retries on transient errors ([`Backoff`] from
    /// 100 ms, at most 5 s apart) until it succeeds, fails for good, or the deadline passes.
    async fn idempotent<T, F, Fut>(&self, mount: &Mount, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let deadline = tokio::time::Instant::now() + self.backend_timeout;
        let mut backoff = Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(5),
            deadline,
            ErrorKind::is_transient,
        );
        loop {
            let e = match within(backoff.remaining(), BACKEND, op()).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            match backoff.after(e) {
                Ok((wait, e)) => {
                    tracing::warn!(mount = %mount.name, error = %e, retry_in = ?wait, "transient backend error, retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e.with_mount(&mount.name)),
            }
        }
    }
}
