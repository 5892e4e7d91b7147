//! The `fetch` use-case: download artifacts into a directory for an init container, so that
//! Flink only ever sees complete, verified files.
//!
//! Contracts (each has a test in `tests/cli_fetch.rs` or below):
//! - A file appears under its final name only complete, verified and fsynced (temporary name in
//!   the same directory, then `rename`): Flink never sees a partial jar.
//! - The SHA-256 is verified when pinned and whenever the source vouches for one (the gateway's
//!   `Repr-Digest`, or the digest a store recorded). A mismatch leaves no file behind.
//! - An existing file whose digest matches the pinned or served digest is kept, not downloaded
//!   again; one that does not match is replaced. With no digest pinned or served, a file with
//!   the source's size and modification time is kept (fetched files carry the source's mtime).
//! - An interrupted download resumes from its partial file when the source still holds the same
//!   version (`Range` + `If-Range`), and starts over when the artifact changed.
//! - Transient failures (network, timeouts, 5xx) are retried with exponential backoff until the
//!   total deadline; everything else fails at once.
//!
//! A layer beside `service`, on `storage`: it never touches the gateway's mounts or access
//! rules, and must never import `service`, `http` or `client` (the gateway's HTTP API reaches it
//! as one more [`Source`], implemented in `client::http_source`).
//!
//! Owns: the plan ([`plan`]), parallelism and reports (here), the per-artifact state machine
//! (`transfer`). Reads through the [`Source`] trait ([`source`]); the destination side lives
//! in [`disk`].

pub mod disk;
pub mod plan;
pub mod source;
mod transfer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::Sha256;

pub use plan::{Artifact, Manifest, ManifestEntry};
pub use source::{Opened, Remote, Resume, Source, StorageSource};

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Destination directory (created if missing).
    pub dest: PathBuf,
    /// Artifacts downloaded at the same time.
    pub parallel: usize,
    /// Everything, retries included, must finish within this.
    pub deadline: Duration,
    /// Longest wait for a source to answer a request (connect included).
    pub open_timeout: Duration,
    /// Longest wait for the next chunk of a body: a stalled transfer fails (and is retried).
    pub read_timeout: Duration,
    /// First wait between attempts; doubles up to [`MAX_BACKOFF`].
    pub initial_backoff: Duration,
}

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            dest: PathBuf::from("."),
            parallel: 4,
            deadline: Duration::from_secs(300),
            open_timeout: Duration::from_secs(40),
            read_timeout: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(250),
        }
    }
}

/// One artifact and where to read it.
#[derive(Debug, Clone)]
pub struct Job {
    pub artifact: Artifact,
    pub source: Arc<dyn Source>,
}

/// What happened to an artifact that succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Downloaded; `resumed_from` > 0 when an earlier partial download was continued.
    Downloaded { bytes: u64, resumed_from: u64 },
    /// The file in place already had the expected digest.
    UpToDate,
}

/// Which digest the file was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    Pinned,
    Served,
    /// Pinned, and the source served the same digest.
    Both,
    /// No digest was available: the file is complete, but nothing vouches for its content.
    Unverified,
    /// Kept without a digest: same size and modification time as the source's current version
    /// (the quick check `wget -N` and rsync make).
    SameVersion,
}

impl Verified {
    fn of(pinned: bool, served: bool) -> Verified {
        match (pinned, served) {
            (true, true) => Verified::Both,
            (true, false) => Verified::Pinned,
            (false, true) => Verified::Served,
            (false, false) => Verified::Unverified,
        }
    }
}

/// A successful artifact.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub action: Action,
    pub size: u64,
    pub sha256: Sha256,
    pub verified: Verified,
    pub attempts: u32,
    pub elapsed: Duration,
}

/// The outcome of one artifact.
#[derive(Debug)]
pub struct ItemReport {
    pub index: usize,
    pub name: String,
    pub source: String,
    pub result: Result<Fetched>,
}

/// Progress callbacks, called from the download tasks (keep them cheap).
pub trait Observer: Send + Sync {
    /// A transfer begins (`offset` > 0 when resuming); `total` is the whole artifact's size.
    fn started(&self, _index: usize, _name: &str, _total: Option<u64>, _offset: u64) {}
    /// `bytes` more arrived.
    fn advanced(&self, _index: usize, _bytes: u64) {}
    /// An attempt failed and another follows after `wait`.
    fn retrying(&self, _index: usize, _name: &str, _error: &Error, _wait: Duration) {}
    /// The artifact is done, one way or the other.
    fn finished(&self, _report: &ItemReport) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;
impl Observer for Quiet {}

/// Whether another attempt may succeed.
pub fn is_retryable(kind: ErrorKind) -> bool {
    kind.is_transient() || kind == ErrorKind::Aborted
}

/// Fetches every job into `opts.dest`, at most `opts.parallel` at a time, and reports each in
/// the order given. Never fails as a whole: per-artifact errors are in the reports (a
/// destination directory that cannot be created fails every artifact).
pub async fn fetch(
    jobs: Vec<Job>,
    opts: &FetchOptions,
    observer: Arc<dyn Observer>,
) -> Vec<ItemReport> {
    let deadline = Instant::now() + opts.deadline;
    if let Err(e) = disk::ensure_dir(&opts.dest).await {
        let fail = |(index, j): (usize, Job)| {
            let report = ItemReport {
                index,
                name: j.artifact.name,
                source: j.source.describe(),
                result: Err(Error::new(e.kind(), e.message().to_string())),
            };
            observer.finished(&report);
            report
        };
        return jobs.into_iter().enumerate().map(fail).collect();
    }
    let opts = Arc::new(opts.clone());
    let limit = Arc::new(tokio::sync::Semaphore::new(opts.parallel.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (index, job) in jobs.into_iter().enumerate() {
        let (opts, observer, limit) = (opts.clone(), observer.clone(), limit.clone());
        set.spawn(async move {
            let _permit = limit
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let name = job.artifact.name.clone();
            let source = job.source.describe();
            let run = transfer::fetch_one(index, &job, &opts, observer.as_ref(), deadline);
            let result = match tokio::time::timeout_at(deadline, run).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the deadline of {} passed before the download finished",
                        humantime::format_duration(opts.deadline)
                    ),
                )),
            };
            let report = ItemReport {
                index,
                name,
                source,
                result,
            };
            observer.finished(&report);
            report
        });
    }
    let mut reports = Vec::with_capacity(set.len());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(r) => reports.push(r),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    reports.sort_by_key(|r| r.index);
    reports
}

#[cfg(test)]
mod tests {
    //! The state machine over a real local store (the `file://` path of `fetch`); the HTTP path
    //! is covered against the real binary in `tests/cli_fetch.rs`.
    use super::disk::Slot;
    use super::*;
    use crate::storage::local::LocalStorage;
    use crate::storage::{ArtifactPath, Storage, Upload};

    struct Fixture {
        _store_dir: tempfile::TempDir,
        dest_dir: tempfile::TempDir,
        storage: Arc<dyn Storage>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let store_dir = tempfile::tempdir().unwrap();
            let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(store_dir.path()).unwrap());
            Fixture {
                _store_dir: store_dir,
                dest_dir: tempfile::tempdir().unwrap(),
                storage,
            }
        }

        async fn put(&self, path: &str, bytes: &[u8]) -> String {
            let body: crate::storage::ByteStream = Box::pin(futures::stream::iter(vec![Ok(
                bytes::Bytes::copy_from_slice(bytes),
            )]));
            let res = self
                .storage
                .put(&ArtifactPath::parse(path).unwrap(), Upload::new(body))
                .await
                .unwrap();
            res.meta.etag
        }

        fn job(&self, path: &str, name: &str, sha256: Option<Sha256>) -> Job {
            let source =
                StorageSource::new(self.storage.clone(), ArtifactPath::parse(path).unwrap());
            let artifact = Artifact {
                source: url::Url::parse("file:///unused").unwrap(),
                name: name.into(),
                sha256,
            };
            Job {
                artifact,
                source: Arc::new(source),
            }
        }

        fn opts(&self) -> FetchOptions {
            FetchOptions {
                dest: self.dest_dir.path().to_path_buf(),
                ..FetchOptions::default()
            }
        }

        async fn run(&self, jobs: Vec<Job>) -> Vec<ItemReport> {
            fetch(jobs, &self.opts(), Arc::new(Quiet)).await
        }
    }

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    #[tokio::test]
    async fn downloads_verifies_and_then_keeps() {
        let fx = Fixture::new();
        let a = data(300_000, 1);
        fx.put("a.jar", &a).await;
        let r = fx.run(vec![fx.job("a.jar", "a.jar", None)]).await;
        let f = r[0].result.as_ref().unwrap();
        assert_eq!(
            f.action,
            Action::Downloaded {
                bytes: a.len() as u64,
                resumed_from: 0
            }
        );
        assert_eq!(
            f.verified,
            Verified::Served,
            "the store recorded the digest at put"
        );
        assert_eq!(std::fs::read(fx.dest_dir.path().join("a.jar")).unwrap(), a);
        let r = fx
            .run(vec![fx.job("a.jar", "a.jar", Some(Sha256::of(&a)))])
            .await;
        assert_eq!(r[0].result.as_ref().unwrap().action, Action::UpToDate);
        assert_eq!(r[0].result.as_ref().unwrap().verified, Verified::Pinned);
    }

    #[tokio::test]
    async fn resumes_from_a_partial_file_when_the_version_is_the_same() {
        let fx = Fixture::new();
        let a = data(500_000, 2);
        let etag = fx.put("a.jar", &a).await;
        let slot = Slot::new(fx.dest_dir.path(), "a.jar");
        std::fs::write(&slot.part, &a[..123_456]).unwrap();
        std::fs::write(&slot.etag, &etag).unwrap();
        let r = fx.run(vec![fx.job("a.jar", "a.jar", None)]).await;
        let f = r[0].result.as_ref().unwrap();
        assert_eq!(
            f.action,
            Action::Downloaded {
                bytes: (a.len() - 123_456) as u64,
                resumed_from: 123_456
            }
        );
        assert_eq!(std::fs::read(&slot.dest).unwrap(), a);
        assert!(!slot.part.exists() && !slot.etag.exists());
    }

    #[tokio::test]
    async fn starts_over_when_the_version_changed_or_the_part_is_complete() {
        let fx = Fixture::new();
        let a = data(200_000, 3);
        fx.put("a.jar", &a).await;
        let slot = Slot::new(fx.dest_dir.path(), "a.jar");
        std::fs::write(&slot.part, &a[..1000]).unwrap();
        std::fs::write(&slot.etag, "some-older-version").unwrap();
        let r = fx.run(vec![fx.job("a.jar", "a.jar", None)]).await;
        assert_eq!(
            r[0].result.as_ref().unwrap().action,
            Action::Downloaded {
                bytes: a.len() as u64,
                resumed_from: 0
            }
        );
        assert_eq!(std::fs::read(&slot.dest).unwrap(), a);

        // A part file as long as the artifact (crash before the rename): fetched again whole.
        let etag = fx.put("b.jar", &a).await;
        let slot = Slot::new(fx.dest_dir.path(), "b.jar");
        std::fs::write(&slot.part, &a).unwrap();
        std::fs::write(&slot.etag, &etag).unwrap();
        let r = fx.run(vec![fx.job("b.jar", "b.jar", None)]).await;
        assert!(r[0].result.is_ok(), "{:?}", r[0].result);
        assert_eq!(std::fs::read(&slot.dest).unwrap(), a);
    }

    #[tokio::test]
    async fn a_pin_that_disagrees_with_the_served_digest_fails_before_downloading() {
        let fx = Fixture::new();
        fx.put("a.jar", b"real").await;
        let r = fx
            .run(vec![fx.job("a.jar", "a.jar", Some(Sha256::of(b"other")))])
            .await;
        let e = r[0].result.as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DigestMismatch);
        assert!(
            e.message().contains("a.jar") && e.message().contains("serves"),
            "{e}"
        );
        assert_eq!(std::fs::read_dir(fx.dest_dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn many_in_parallel_report_in_order_and_failures_stay_separate() {
        let fx = Fixture::new();
        let mut jobs = Vec::new();
        for i in 0..12 {
            fx.put(&format!("d/{i}.jar"), &data(10_000 + i, i as u8))
                .await;
            jobs.push(fx.job(&format!("d/{i}.jar"), &format!("{i}.jar"), None));
        }
        jobs.push(fx.job("d/missing.jar", "missing.jar", None));
        let opts = FetchOptions {
            parallel: 3,
            ..fx.opts()
        };
        let r = fetch(jobs, &opts, Arc::new(Quiet)).await;
        assert_eq!(r.len(), 13);
        for (i, rep) in r.iter().enumerate().take(12) {
            assert_eq!(rep.name, format!("{i}.jar"));
            assert!(rep.result.is_ok(), "{:?}", rep.result);
            assert_eq!(
                std::fs::read(fx.dest_dir.path().join(&rep.name)).unwrap(),
                data(10_000 + i, i as u8)
            );
        }
        assert_eq!(
            r[12].result.as_ref().unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}
