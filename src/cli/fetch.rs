//! `artifact-gateway fetch`: turns flags and a manifest into a plan, resolves each source (the
//! gateway over HTTP, or a store through the registry), runs `fetch`, and reports:
//! progress bars on a terminal, one line per artifact otherwise, then a summary line.

use std::collections::HashMap;
use std::io::{IsTerminal, Read};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytesize::ByteSize;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{exit_code, FetchArgs, ProgressMode, EXIT_OK, EXIT_USAGE};
use crate::client::http_source::HttpSource;
use crate::error::{Error, ErrorKind, Result};
use crate::fetch::{
    self, plan, Action, FetchOptions, ItemReport, Job, Manifest, ManifestEntry, Observer, Source,
    StorageSource, Verified,
};
use crate::secret::redact_url;

const PREFIX: &str = "artifact-gateway fetch";

pub async fn run(args: FetchArgs) -> i32 {
    let jobs = match prepare(&args).await {
        Ok(jobs) => jobs,
        Err(e) => {
            eprintln!("{PREFIX}: {e}");
            return EXIT_USAGE;
        }
    };
    let opts = FetchOptions {
        dest: args.dest.clone(),
        parallel: args.parallel as usize,
        deadline: args.deadline,
        open_timeout: args.conn.connect_timeout + args.conn.read_timeout,
        read_timeout: args.conn.read_timeout,
        ..FetchOptions::default()
    };
    let bars = args.progress == ProgressMode::Auto && std::io::stderr().is_terminal();
    let observer: Arc<dyn Observer> = if bars {
        Arc::new(Bars::new())
    } else {
        Arc::new(Lines)
    };
    let started = Instant::now();
    let count = jobs.len();
    let reports = fetch::fetch(jobs, &opts, observer).await;
    summarize(&reports, count, &opts, started.elapsed())
}

/// Everything that can be wrong before the first byte: flags, manifest, names, digests,
/// token, CA file, storage URLs.
async fn prepare(args: &FetchArgs) -> Result<Vec<Job>> {
    let mut entries: Vec<ManifestEntry> = args
        .sources
        .iter()
        .map(|s| ManifestEntry {
            source: s.clone(),
            name: args.name.clone(),
            sha256: args.sha256.clone(),
        })
        .collect();
    if (args.name.is_some() || args.sha256.is_some())
        && (args.sources.len() != 1 || args.manifest.is_some())
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "--name and --sha256 apply to exactly one SOURCE argument (use a manifest for several)",
        ));
    }
    if let Some(path) = &args.manifest {
        let (text, origin) = if path.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("cannot read the manifest from stdin: {e}"),
                )
            })?;
            (s, "<stdin>".to_string())
        } else {
            let s = std::fs::read_to_string(path).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("manifest {}: {e}", path.display()),
                )
            })?;
            (s, path.display().to_string())
        };
        entries.extend(Manifest::parse(&text, &origin)?.artifacts);
    }
    let artifacts = plan::plan(&entries)?;
    let needs_http = artifacts
        .iter()
        .any(|a| matches!(a.source.scheme(), "http" | "https"));
    let http = if needs_http {
        Some(args.conn.http_client()?)
    } else {
        None
    };
    let mut jobs = Vec::with_capacity(artifacts.len());
    for artifact in artifacts {
        let source: Arc<dyn Source> = match (artifact.source.scheme(), &http) {
            ("http" | "https", Some(client)) => {
                Arc::new(HttpSource::new(client.clone(), artifact.source.clone()))
            }
            _ => Arc::new(StorageSource::open(&artifact.source).await.map_err(|e| {
                Error::new(
                    e.kind(),
                    format!("source {}: {}", redact_url(&artifact.source), e),
                )
            })?),
        };
        jobs.push(Job { artifact, source });
    }
    Ok(jobs)
}

fn summarize(reports: &[ItemReport], count: usize, opts: &FetchOptions, elapsed: Duration) -> i32 {
    let mut downloaded = 0usize;
    let mut bytes = 0u64;
    let mut up_to_date = 0usize;
    let mut failed = 0usize;
    let mut code = EXIT_OK;
    for r in reports {
        match &r.result {
            Ok(f) => match f.action {
                Action::Downloaded { bytes: b, .. } => {
                    downloaded += 1;
                    bytes += b;
                }
                Action::UpToDate => up_to_date += 1,
            },
            Err(e) => {
                failed += 1;
                if code == EXIT_OK {
                    code = exit_code(e.kind());
                }
            }
        }
    }
    eprintln!(
        "{PREFIX}: {count} artifact{} into {} in {}: {downloaded} downloaded ({}), {up_to_date} up to date, {failed} failed{}",
        if count == 1 { "" } else { "s" },
        opts.dest.display(),
        secs(elapsed),
        ByteSize(bytes),
        if code == EXIT_OK { String::new() } else { format!(" (exit {code})") },
    );
    code
}

/// One line for a finished artifact.
fn finished_line(r: &ItemReport) -> String {
    match &r.result {
        Ok(f) => {
            let check = match f.verified {
                Verified::Both => "matches the pinned and the served digest",
                Verified::Pinned => "matches the pinned digest",
                Verified::Served => "matches the served digest",
                Verified::Unverified => "not verified: no digest pinned or served",
                Verified::SameVersion => {
                    "same size and modification time as the source; no digest pinned or served"
                }
            };
            match f.action {
                Action::UpToDate => format!(
                    "up to date {} ({}, sha256 {}, {check})",
                    r.name,
                    ByteSize(f.size),
                    f.sha256
                ),
                Action::Downloaded {
                    bytes,
                    resumed_from,
                } => {
                    let rate = bytes as f64 / f.elapsed.as_secs_f64().max(1e-3);
                    let resumed = if resumed_from > 0 {
                        format!(", resumed at {}", ByteSize(resumed_from))
                    } else {
                        String::new()
                    };
                    let attempts = if f.attempts > 1 {
                        format!(", {} attempts", f.attempts)
                    } else {
                        String::new()
                    };
                    format!(
                        "fetched {} ({} in {}, {}/s{resumed}{attempts}; sha256 {}, {check}) from {}",
                        r.name,
                        ByteSize(f.size),
                        secs(f.elapsed),
                        ByteSize(rate as u64),
                        f.sha256,
                        r.source
                    )
                }
            }
        }
        Err(e) if e.message().contains(&r.source) => format!("FAILED {}: {e}", r.name),
        Err(e) => format!("FAILED {} from {}: {e}", r.name, r.source),
    }
}

fn retry_line(name: &str, error: &Error, wait: Duration) -> String {
    if wait.is_zero() {
        format!("retrying {name} from the first byte: {error}")
    } else {
        format!("retrying {name} in {}: {error}", secs(wait))
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// One line per artifact on stderr (logs of a container).
struct Lines;

impl Observer for Lines {
    fn retrying(&self, _index: usize, name: &str, error: &Error, wait: Duration) {
        eprintln!("{PREFIX}: {}", retry_line(name, error, wait));
    }

    fn finished(&self, report: &ItemReport) {
        eprintln!("{PREFIX}: {}", finished_line(report));
    }
}

/// Progress bars on a terminal.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<usize, ProgressBar>>,
}

impl Bars {
    fn new() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, index: usize, name: &str) -> ProgressBar {
        let mut bars = self.bars.lock().expect("progress lock");
        bars.entry(index)
            .or_insert_with(|| {
                let pb = self.multi.add(ProgressBar::no_length());
                pb.set_style(
                    ProgressStyle::with_template(
                        "{prefix:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                pb.set_prefix(name.to_string());
                pb
            })
            .clone()
    }
}

impl Observer for Bars {
    fn started(&self, index: usize, name: &str, total: Option<u64>, offset: u64) {
        let pb = self.bar(index, name);
        match total {
            Some(t) => pb.set_length(t),
            None => pb.unset_length(),
        }
        pb.set_position(offset);
    }

    fn advanced(&self, index: usize, bytes: u64) {
        if let Some(pb) = self.bars.lock().expect("progress lock").get(&index) {
            pb.inc(bytes);
        }
    }

    fn retrying(&self, _index: usize, name: &str, error: &Error, wait: Duration) {
        let _ = self.multi.println(retry_line(name, error, wait));
    }

    fn finished(&self, report: &ItemReport) {
        let pb = self
            .bars
            .lock()
            .expect("progress lock")
            .remove(&report.index);
        if let Some(pb) = pb {
            pb.finish_and_clear();
            self.multi.remove(&pb);
        }
        let _ = self.multi.println(finished_line(report));
    }
}
