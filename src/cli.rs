//! Command-line interface (clap derive): `serve`, the init-container `fetch`, and the admin
//! commands `put`, `ls`, `stat`, `rm`. Every flag that configures the server also reads an
//! `ARTIFACT_GATEWAY_*` environment variable; flags and variables override the config file.
//!
//! Owns: argument parsing, output, and the one mapping from error kinds to exit codes
//! ([`exit_code`]). The work itself lives in `fetch` and `client`.

mod admin;
mod fetch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use url::Url;

use crate::config::{Config, LogFormat, TlsConfig};
use crate::error::{ErrorKind, Result};
use crate::http::AppState;
use crate::server::Server;
use crate::service::Gateway;

/// The exit codes of the client commands, shown in their `--help` and the top-level one.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  local failure: the destination cannot be written (permissions, disk full, ...)
  2  usage or configuration error: bad flags, manifest, artifact name, URL, --ca-file or token file
  3  refused, retrying will not help: not found (404), bad token (401), forbidden (403),
     exists with --no-overwrite (412), any other 4xx, untrusted TLS certificate
  4  integrity: SHA-256 mismatch against the pinned or served digest; no file is left behind
  5  unavailable: network error, timeout, stalled transfer or 5xx, still failing at the deadline
     (fetch retries these with exponential backoff until --deadline)";

/// The exit codes of `serve`, shown in its `--help` and the top-level one.
pub const SERVE_EXIT_CODES_HELP: &str = "\
Exit codes of serve:
  0  stopped cleanly (SIGTERM or SIGINT, after the shutdown grace period)
  1  failed to start or to serve: address in use, a backend refused at start-up, ...
  2  configuration error: unreadable or invalid config file, unknown key, bad mount URL,
     missing secret, unreadable TLS certificate";

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: a local failure (destination not writable, disk full, …).
pub const EXIT_LOCAL: i32 = 1;
/// Exit code: usage or configuration error.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the server or store refused (4xx, untrusted certificate).
pub const EXIT_REFUSED: i32 = 3;
/// Exit code: SHA-256 mismatch.
pub const EXIT_INTEGRITY: i32 = 4;
/// Exit code: network, timeout or 5xx after retries.
pub const EXIT_UNAVAILABLE: i32 = 5;

/// The exit code for an error met while working (usage errors are found before and exit
/// with [`EXIT_USAGE`]).
pub fn exit_code(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::DigestMismatch => EXIT_INTEGRITY,
        ErrorKind::BackendUnavailable | ErrorKind::Timeout | ErrorKind::Aborted => EXIT_UNAVAILABLE,
        ErrorKind::Internal | ErrorKind::InsufficientStorage => EXIT_LOCAL,
        _ => EXIT_REFUSED,
    }
}

/// The exit code of a `serve` that failed: configuration errors are told apart from failures
/// to start or serve (see [`SERVE_EXIT_CODES_HELP`]).
pub fn serve_exit_code(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::InvalidInput | ErrorKind::InvalidPath => EXIT_USAGE,
        _ => EXIT_LOCAL,
    }
}

#[derive(Debug, Parser)]
#[command(name = "artifact-gateway", version, about = "Serve and fetch Flink job artifacts over HTTP(S)", after_help = format!("{EXIT_CODES_HELP}\n\n{SERVE_EXIT_CODES_HELP}"))]
pub struct Cli {
    /// Log format: text (default) or json.
    #[arg(long, global = true, env = "ARTIFACT_GATEWAY_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP artifact server.
    #[command(after_help = SERVE_EXIT_CODES_HELP)]
    Serve(ServeArgs),
    /// Download artifacts into a directory, verified and atomically (the init-container command).
    #[command(after_help = EXIT_CODES_HELP)]
    Fetch(FetchArgs),
    /// Upload a file: `put FILE MOUNT/PATH`.
    #[command(after_help = EXIT_CODES_HELP)]
    Put(PutArgs),
    /// List a directory of a mount (`ls MOUNT[/DIR]`), or the mounts (`ls`).
    #[command(after_help = EXIT_CODES_HELP)]
    Ls(LsArgs),
    /// Show one artifact's size, ETag, SHA-256, type and date: `stat MOUNT/PATH`.
    #[command(after_help = EXIT_CODES_HELP)]
    Stat(StatArgs),
    /// Delete an artifact: `rm MOUNT/PATH`.
    #[command(after_help = EXIT_CODES_HELP)]
    Rm(RmArgs),
    /// Make an expiring URL that lets anyone holding it GET/HEAD one artifact:
    /// `sign MOUNT/PATH --expires 24h`.
    #[command(after_help = EXIT_CODES_HELP)]
    Sign(SignArgs),
}

/// How client commands connect and authenticate.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// PEM file of extra CA certificates to trust (a private CA), on top of the system's roots.
    #[arg(long, env = "ARTIFACT_GATEWAY_CA_FILE", value_name = "PEM", value_parser = path_or_empty)]
    pub ca_file: Option<PathBuf>,
    /// File holding the bearer token (e.g. a mounted Secret). Default: the ARTIFACT_GATEWAY_TOKEN
    /// environment variable. There is deliberately no flag taking the token itself.
    #[arg(long, env = "ARTIFACT_GATEWAY_TOKEN_FILE", value_name = "FILE", value_parser = path_or_empty)]
    pub token_file: Option<PathBuf>,
    /// Longest wait to establish a connection (TCP + TLS).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,
    /// Longest wait for a response, and for the next bytes of a body: a stalled transfer fails.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub read_timeout: Duration,
}

impl ConnectionArgs {
    /// The HTTP client these flags describe (token from --token-file or the environment).
    pub fn http_client(&self) -> Result<crate::client::HttpClient> {
        let token = crate::client::Token::load(set(&self.token_file))?;
        crate::client::HttpClient::new(&crate::client::ClientConfig {
            ca_file: set(&self.ca_file).map(Path::to_path_buf),
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
            token,
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct FetchArgs {
    /// Artifact URLs: gateway `http(s)://…/artifacts/MOUNT/PATH`, or storage URLs `file:///…`,
    /// `s3://bucket/key`, `oss://bucket/key`, `hdfs://namenode:port/path` (read directly, with
    /// the store's usual environment credentials).
    #[arg(value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// YAML or JSON manifest `{artifacts: [{source, name?, sha256?}]}` (e.g. from a ConfigMap);
    /// `-` reads standard input. Combines with SOURCE arguments.
    #[arg(long, short, env = "ARTIFACT_GATEWAY_MANIFEST", value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Destination directory, created if missing. Each file lands atomically (`.NAME.part`,
    /// fsync, rename).
    #[arg(long, short, env = "ARTIFACT_GATEWAY_DEST", value_name = "DIR")]
    pub dest: PathBuf,
    /// File name for the single SOURCE (default: the source's last path segment).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Expected SHA-256 (64 hex digits) of the single SOURCE.
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// Artifacts downloaded at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256), value_name = "N")]
    pub parallel: u16,
    /// Total time for everything, retries included; transient failures are retried with
    /// exponential backoff until then.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub deadline: Duration,
    /// Progress display: `auto` (bars when stderr is a terminal, one line per artifact otherwise)
    /// or `lines` (always one line per artifact).
    #[arg(long, default_value = "auto", value_enum)]
    pub progress: ProgressMode,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    Auto,
    Lines,
}

/// Where the gateway is, and how to print.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// The gateway's base URL.
    #[arg(
        long,
        env = "ARTIFACT_GATEWAY_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub server: Url,
    /// Print JSON on stdout (errors too, as `{"error":{"code","message"}}`).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

#[derive(Debug, Clone, Args)]
pub struct PutArgs {
    /// The local file to upload (streamed; hashed first in a separate streaming pass).
    pub file: PathBuf,
    /// Where: MOUNT/PATH, e.g. `default/jobs/wordcount/1.4.2/wordcount.jar`.
    pub target: String,
    /// Fail (exit 3, HTTP 412) if the artifact already exists.
    #[arg(long)]
    pub no_overwrite: bool,
    /// Content type to record (default: guessed by the server from the name).
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// MOUNT or MOUNT/DIR; without it, the mounts.
    pub target: Option<String>,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Debug, Clone, Args)]
pub struct StatArgs {
    /// MOUNT/PATH.
    pub target: String,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// MOUNT/PATH.
    pub target: String,
    /// Succeed when the artifact does not exist.
    #[arg(long, short)]
    pub force: bool,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// MOUNT/PATH of the one artifact the URL may read.
    pub target: String,
    /// How long the URL stays valid, e.g. `30m`, `24h`, `7d` (at most the server's
    /// `signing.max_expires`, default 7 days).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub expires: Duration,
    /// Sign here, with the first key of this server config's `[signing]` section, instead of
    /// asking the server (which needs a token with the `read` scope on the mount).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// TOML config file. Without one, the embedded default serves `--data` as mount `default`.
    #[arg(long, short, env = "ARTIFACT_GATEWAY_CONFIG", value_parser = path_or_empty)]
    pub config: Option<PathBuf>,
    /// Data directory of the embedded default (ignored with --config).
    #[arg(long, env = "ARTIFACT_GATEWAY_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// Listen address (overrides the config's `listen`).
    #[arg(long, env = "ARTIFACT_GATEWAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain; with --tls-key, serve HTTPS (overrides `[tls]`).
    #[arg(long, env = "ARTIFACT_GATEWAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, env = "ARTIFACT_GATEWAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Grace period for in-flight requests on SIGTERM/SIGINT, e.g. `30s` (overrides `limits.shutdown_grace`).
    #[arg(long, env = "ARTIFACT_GATEWAY_SHUTDOWN_GRACE", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Option<Duration>,
}

impl ServeArgs {
    /// The effective configuration: file or embedded default, then flags/env on top.
    pub fn config(&self) -> Result<Config> {
        let mut config = match set(&self.config) {
            Some(path) => Config::from_file(path)?,
            None => Config::embedded(&self.data)?,
        };
        if let Some(l) = self.listen {
            config.listen = l;
        }
        if let (Some(cert_file), Some(key_file)) = (&self.tls_cert, &self.tls_key) {
            config.tls = Some(TlsConfig {
                cert_file: cert_file.clone(),
                key_file: key_file.clone(),
            });
        }
        if let Some(g) = self.shutdown_grace {
            config.limits.shutdown_grace = g;
        }
        Ok(config)
    }
}

/// Accepts an empty value (see [`set`]) where clap's path parser would refuse it.
fn path_or_empty(s: &str) -> std::result::Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(s))
}

/// A path from a flag or an environment variable; an empty one (`VAR=`, as templating often
/// leaves a variable) means "not set".
fn set(path: &Option<PathBuf>) -> Option<&Path> {
    path.as_deref().filter(|p| !p.as_os_str().is_empty())
}

/// Runs a parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Serve(args) => match serve(args, cli.log_format).await {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("artifact-gateway: {e}");
                serve_exit_code(e.kind())
            }
        },
        Command::Fetch(args) => fetch::run(args).await,
        Command::Put(args) => admin::put(args).await,
        Command::Ls(args) => admin::ls(args).await,
        Command::Stat(args) => admin::stat(args).await,
        Command::Rm(args) => admin::rm(args).await,
        Command::Sign(args) => admin::sign(args).await,
    }
}

async fn serve(args: ServeArgs, log_format: Option<LogFormat>) -> Result<()> {
    let config = args.config()?;
    crate::telemetry::init(
        log_format.unwrap_or(config.log.format),
        config.log.level.as_deref(),
    );
    // Set but empty (as env templating leaves it) means not set, as for every other variable.
    let env_token = std::env::var("ARTIFACT_GATEWAY_TOKEN")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let mut gateway = Gateway::from_config(&config, env_token.as_deref()).await?;
    // Opening a store writes nothing; the server's housekeeping (and the write probe that
    // finds read-only directories) runs once, here.
    gateway.start().await?;
    let gateway = Arc::new(gateway);
    let state = AppState::with_max_header_bytes(
        gateway.clone(),
        config.limits.max_header_bytes.as_u64() as usize,
    );
    let server = Server::bind(
        config.listen,
        config.tls.as_ref(),
        config.limits.clone(),
        state,
    )
    .await?;
    let scheme = if server.is_tls() { "https" } else { "http" };
    for m in gateway.mounts() {
        tracing::info!(mount = %m.name, backend = %m.storage.describe(), anonymous_read = m.anonymous_read, read_only = m.read_only, "mount ready");
    }
    tracing::info!(address = %server.local_addr(), "listening on {scheme}://{}", server.local_addr());
    server.serve(shutdown_signal()).await
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
