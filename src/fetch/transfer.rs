//! One artifact, start to finish: keep a file that is already right, otherwise download it
//! (resuming a partial file when the source still holds the same version), verify it, commit
//! it, and retry transient failures until the deadline.

use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use super::disk::{self, PartWriter, Slot};
use super::{
    is_retryable, Action, FetchOptions, Fetched, Job, Observer, Opened, Remote, Resume, Verified,
    MAX_BACKOFF,
};
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{within, Backoff};
use crate::storage::digest::hash_file;
use crate::storage::Sha256;

/// Who a late answer is blamed on.
const SOURCE: &str = "the source";

pub(super) async fn fetch_one(
    index: usize,
    job: &Job,
    opts: &FetchOptions,
    observer: &dyn Observer,
    deadline: Instant,
) -> Result<Fetched> {
    let started = Instant::now();
    let name = job.artifact.name.as_str();
    let pinned = job.artifact.sha256;
    let slot = Slot::new(&opts.dest, name);
    let mut backoff = Backoff::new(opts.initial_backoff, MAX_BACKOFF, deadline, is_retryable);

    // 1. Keep a file that is already right.
    if slot.dest_exists().await? {
        let remote = match pinned {
            Some(_) => None,
            None => loop {
                match within(opts.open_timeout, SOURCE, job.source.head()).await {
                    Ok(remote) => break Some(remote),
                    // A server without HEAD (405/501): nothing to compare, download.
                    Err(e)
                        if matches!(e.kind(), ErrorKind::Unsupported | ErrorKind::InvalidInput) =>
                    {
                        break None
                    }
                    Err(e) => {
                        let (wait, e) = backoff.after(e)?;
                        observer.retrying(index, name, &e, wait);
                        tokio::time::sleep(wait).await;
                    }
                }
            },
        };
        let want = match (pinned, &remote) {
            (Some(p), _) => Some((p, Verified::Pinned)),
            (None, Some(r)) => r.sha256.map(|d| (d, Verified::Served)),
            (None, None) => None,
        };
        let unchanged = match (&want, &remote) {
            (
                None,
                Some(Remote {
                    size: Some(size),
                    last_modified: Some(t),
                    ..
                }),
            ) => disk::same_size_and_mtime(&slot.dest, *size, *t).await,
            _ => false,
        };
        if want.is_some() || unchanged {
            let (have, size) = hash_file(&slot.dest, None).await?;
            let verified = match want {
                Some((want, verified)) if have == want => Some(verified),
                Some(_) => None,
                None => Some(Verified::SameVersion),
            };
            if let Some(verified) = verified {
                slot.discard().await?;
                return Ok(Fetched {
                    action: Action::UpToDate,
                    size,
                    sha256: have,
                    verified,
                    attempts: backoff.failures() + 1,
                    elapsed: started.elapsed(),
                });
            }
        }
    }

    // 2. Download, resuming when possible.
    let mut from_scratch = false; // the next attempt ignores any partial file
    let mut restarted = false; // a resumed download already failed its digest once
    loop {
        let attempt = download(index, job, &slot, opts, observer, !from_scratch).await;
        from_scratch = false;
        match attempt {
            Ok((action, size, sha256, verified)) => {
                return Ok(Fetched {
                    action,
                    size,
                    sha256,
                    verified,
                    attempts: backoff.failures() + 1,
                    elapsed: started.elapsed(),
                })
            }
            Err(Failed {
                error,
                resumed: true,
            }) if error.kind() == ErrorKind::DigestMismatch && !restarted => {
                // The kept prefix may be what is wrong: once, start over from the first byte.
                observer.retrying(index, name, &error, Duration::ZERO);
                restarted = true;
                from_scratch = true;
            }
            Err(Failed { error, .. }) if error.kind() == ErrorKind::InsufficientStorage => {
                // No room for the part file: keep none of it (a retry would only fill the disk
                // again, and a partial file is no use to anyone).
                let _ = slot.discard().await;
                return Err(error);
            }
            Err(Failed { error, .. }) => {
                let (wait, error) = backoff.after(error)?;
                observer.retrying(index, name, &error, wait);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// A failed attempt, and whether it had resumed a partial download.
struct Failed {
    error: Error,
    resumed: bool,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Failed {
            error,
            resumed: false,
        }
    }
}

async fn download(
    index: usize,
    job: &Job,
    slot: &Slot,
    opts: &FetchOptions,
    observer: &dyn Observer,
    allow_resume: bool,
) -> std::result::Result<(Action, u64, Sha256, Verified), Failed> {
    let name = job.artifact.name.as_str();
    let pinned = job.artifact.sha256;
    let resume = if allow_resume {
        slot.partial()
            .await?
            .map(|(offset, etag)| Resume { offset, etag })
    } else {
        slot.discard().await?;
        None
    };
    let opened = match within(opts.open_timeout, SOURCE, job.source.open(resume.as_ref())).await {
        // The partial file is not shorter than the current version: it cannot be continued.
        Err(e) if e.kind() == ErrorKind::RangeNotSatisfiable && resume.is_some() => {
            slot.discard().await?;
            within(opts.open_timeout, SOURCE, job.source.open(None)).await?
        }
        other => other?,
    };
    let Opened {
        remote,
        offset,
        mut body,
    } = opened;
    let resumed = offset > 0;
    if let (Some(p), Some(s)) = (pinned, remote.sha256) {
        if p != s {
            slot.discard().await?;
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!("SHA-256 mismatch for {name}: pinned {p}, but the source serves {s}"),
            )
            .into());
        }
    }
    if offset == 0 {
        slot.store_etag(remote.etag.as_deref()).await?;
    }
    observer.started(index, name, remote.size, offset);

    let mut writer = PartWriter::start(&slot.part, offset);
    let mut received = 0u64;
    let streamed: Result<()> = loop {
        match tokio::time::timeout(opts.read_timeout, body.next()).await {
            Err(_) => {
                break Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "no data for {} (--read-timeout)",
                        humantime::format_duration(opts.read_timeout)
                    ),
                ))
            }
            Ok(None) => break Ok(()),
            Ok(Some(Err(e))) => break Err(e),
            Ok(Some(Ok(chunk))) => {
                let n = chunk.len() as u64;
                if writer.write(chunk).await.is_err() {
                    break Ok(()); // the writer stopped; finish() says why
                }
                received += n;
                observer.advanced(index, n);
            }
        }
    };
    drop(body);
    let (hasher, _) = writer
        .finish()
        .await
        .map_err(|error| Failed { error, resumed })?;
    streamed.map_err(|error| Failed { error, resumed })?;
    let (actual, total) = hasher.finish();
    if let Some(size) = remote.size {
        if total != size {
            if total > size {
                slot.discard().await?;
            }
            return Err(Failed {
                error: Error::new(
                    ErrorKind::Aborted,
                    format!("received {total} bytes of {name}, expected {size}"),
                ),
                resumed,
            });
        }
    }
    if let Some(expected) = pinned.or(remote.sha256) {
        if expected != actual {
            slot.discard().await?;
            let whose = if pinned.is_some() {
                "pinned"
            } else {
                "served by the source"
            };
            return Err(Failed {
                error: Error::new(
                    ErrorKind::DigestMismatch,
                    format!("SHA-256 mismatch for {name}: expected {expected} ({whose}), the downloaded bytes hash to {actual}"),
                ),
                resumed,
            });
        }
    }
    slot.commit().await?;
    if let Some(t) = remote.last_modified {
        disk::set_mtime(&slot.dest, t).await;
    }
    let verified = Verified::of(pinned.is_some(), remote.sha256.is_some());
    Ok((
        Action::Downloaded {
            bytes: received,
            resumed_from: offset,
        },
        total,
        actual,
        verified,
    ))
}
