//! Command-line interface (clap derive). Every flag that configures the server also reads an
//! `ARTIFACT_GATEWAY_*` environment variable; flags and variables override the config file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, LogFormat, TlsConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::http::AppState;
use crate::server::Server;
use crate::service::Gateway;

#[derive(Debug, Parser)]
#[command(name = "artifact-gateway", version, about = "Serve and fetch Flink job artifacts over HTTP(S)")]
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
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// TOML config file. Without one, the embedded default serves `--data` as mount `default`.
    #[arg(long, short, env = "ARTIFACT_GATEWAY_CONFIG")]
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
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::embedded(&self.data)?,
        };
        if let Some(l) = self.listen {
            config.listen = l;
        }
        if let (Some(cert_file), Some(key_file)) = (&self.tls_cert, &self.tls_key) {
            config.tls = Some(TlsConfig { cert_file: cert_file.clone(), key_file: key_file.clone() });
        }
        if let Some(g) = self.shutdown_grace {
            config.limits.shutdown_grace = g;
        }
        Ok(config)
    }
}

/// Runs a parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Serve(args) => serve(args, cli.log_format).await,
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("artifact-gateway: {e}");
            1
        }
    }
}

async fn serve(args: ServeArgs, log_format: Option<LogFormat>) -> Result<()> {
    let config = args.config()?;
    crate::telemetry::init(log_format.unwrap_or(config.log.format), config.log.level.as_deref());
    let env_token = std::env::var("ARTIFACT_GATEWAY_TOKEN").ok();
    let gateway = Arc::new(Gateway::from_config(&config, env_token.as_deref()).await?);
    let state = AppState::new(gateway.clone());
    let server = Server::bind(config.listen, config.tls.as_ref(), config.limits.clone(), state).await?;
    let scheme = if server.is_tls() { "https" } else { "http" };
    for m in gateway.mounts() {
        tracing::info!(mount = %m.name, backend = %m.storage.describe(), anonymous_read = m.anonymous_read, "mount ready");
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

/// For errors that are the user's to fix at the command line.
pub fn usage(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, msg)
}
