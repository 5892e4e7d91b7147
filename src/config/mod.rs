//! Typed configuration: a TOML file (every key documented in `config/example.toml`), or the
//! embedded default when no file is given, then command-line flags and `ARTIFACT_GATEWAY_*`
//! environment variables on top (clap applies those; see `cli.rs`).
//!
//! Owns: parsing and validating configuration, resolving secrets at start-up, and the types of
//! the sections no backend owns (`[[tokens]]` with its [`Scope`]s, `[signing]`, `[limits]`). A
//! bad config stops start-up with one line naming the key. Secrets never appear in `Debug`
//! output. Imports `storage` (each backend owns its options type) and never `service`, which
//! reads the configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;
use crate::storage::cache::CacheOptions;
use crate::storage::hdfs::HdfsOptions;
use crate::storage::oss::OssOptions;
use crate::storage::registry::{BackendOptions, BackendSpec};
use crate::storage::s3::S3Options;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Serve HTTPS (HTTP/1.1 and HTTP/2 by ALPN) with these PEM files.
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub log: LogConfig,
    /// Named storage mounts, served under `/artifacts/<name>/`.
    #[serde(default)]
    pub mounts: Vec<MountConfig>,
    /// Bearer tokens and what they may do.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Keys for signed URLs (`artifact-gateway sign`); none: signed URLs are off.
    pub signing: Option<SigningConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// `[limits]`; a key left out takes its default from [`Limits::default`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request head (request line + headers). Default 16 KiB; over it: 431.
    pub max_header_bytes: ByteSize,
    /// Time a client gets to send a request head. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A connection with no bytes moving either way for this long is closed. Default 120 s.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// On SIGTERM/SIGINT, in-flight requests get this long to finish. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Deadline for one backend operation (with its retries) before the client gets 504.
    /// Bodies already streaming are not cut by it. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub backend_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: ByteSize::kib(16),
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(30),
            backend_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (colours on a TTY).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `artifact_gateway=debug`. Default `info`;
    /// `RUST_LOG` wins when set.
    pub level: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountConfig {
    /// URL path segment: `/artifacts/<name>/…`.
    pub name: String,
    /// `file:///abs/dir`, `s3://bucket/prefix`, `oss://bucket/prefix`, `hdfs://namenode:port/prefix`.
    pub url: String,
    /// Allow reads without a token. Default false.
    #[serde(default)]
    pub anonymous_read: bool,
    /// Serve reads only: PUT and DELETE answer `405` (code `read_only`). Default false; a
    /// local mount whose directory cannot be written (a read-only filesystem or permissions)
    /// is found at start-up and served read-only without it.
    #[serde(default)]
    pub read_only: bool,
    /// Largest accepted upload. Default 10 GiB.
    #[serde(default = "default_max_upload")]
    pub max_upload_size: ByteSize,
    pub s3: Option<S3Options>,
    pub oss: Option<OssOptions>,
    pub hdfs: Option<HdfsOptions>,
    /// A read-through disk cache in front of the backend (`[mounts.cache]`). Default: none.
    pub cache: Option<CacheOptions>,
}

impl MountConfig {
    pub fn backend(&self) -> Result<BackendSpec> {
        let options = BackendOptions {
            s3: self.s3.clone(),
            oss: self.oss.clone(),
            hdfs: self.hdfs.clone(),
        };
        BackendSpec::from_url(&self.url, options).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("mounts[{:?}].url: {}", self.name, e.message()),
            )
        })
    }
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Delete,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Delete => "delete",
        }
    }
}

/// One `[[tokens]]` entry of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// A label for logs (the token itself is never logged).
    pub name: String,
    /// `{ env = "VAR" }` or `{ file = "/run/secrets/token" }`.
    pub secret: Secret,
    /// Any of `read`, `write`, `delete`.
    pub scopes: Vec<Scope>,
    /// Mount names, or `["*"]` (the default) for all.
    #[serde(default = "all_mounts")]
    pub mounts: Vec<String>,
}

fn all_mounts() -> Vec<String> {
    vec!["*".into()]
}

/// `[signing]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// The first key signs; every key verifies (at most a few, for rotation).
    pub keys: Vec<SigningKeyConfig>,
    /// Longest lifetime a signed URL may be given. Default 7 days.
    #[serde(default = "default_max_expires", with = "humantime_serde")]
    pub max_expires: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConfig {
    /// Sent in the URL (`ag-key`) to say which key signed: letters, digits, `-`, `_`, `.`.
    pub id: String,
    /// `{ file = "/var/run/secrets/…" }` or `{ env = "VAR" }`; at least 32 bytes.
    pub secret: Secret,
}

impl Config {
    /// The embedded default: one mount `default` on `data_dir`, anonymous reads, no tokens.
    pub fn embedded(data_dir: &Path) -> Result<Config> {
        let abs = if data_dir.is_absolute() {
            data_dir.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| Error::io("cannot read the current directory", e))?
                .join(data_dir)
        };
        let url = url::Url::from_directory_path(&abs).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("--data {} is not a usable path", abs.display()),
            )
        })?;
        Ok(Config {
            listen: default_listen(),
            tls: None,
            limits: Limits::default(),
            log: LogConfig::default(),
            mounts: vec![MountConfig {
                name: "default".into(),
                url: url.to_string(),
                anonymous_read: true,
                read_only: false,
                max_upload_size: default_max_upload(),
                s3: None,
                oss: None,
                hdfs: None,
                cache: None,
            }],
            tokens: Vec::new(),
            signing: None,
        })
    }

    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("config file {}: {e}", path.display()),
            )
        })?;
        Self::from_toml(&text).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("config file {}: {}", path.display(), e.message()),
            )
        })
    }

    /// Parses and validates TOML text. Errors are one line: `line N: <what>`.
    pub fn from_toml(text: &str) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| {
            // A span covering the whole document (unknown top-level key) says nothing about the line.
            let line = e
                .span()
                .filter(|s| !(s.start == 0 && s.end >= text.len()))
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let msg = e.message().replace('\n', " ");
            let msg = match line {
                Some(l) => format!("line {l}: {msg}"),
                None => msg,
            };
            Error::new(ErrorKind::InvalidInput, msg)
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: unique mount names, valid URLs, tokens naming real mounts.
    pub fn validate(&self) -> Result<()> {
        let invalid = |m: String| Err(Error::new(ErrorKind::InvalidInput, m));
        if self.mounts.is_empty() {
            return invalid("mounts: at least one [[mounts]] entry is needed".into());
        }
        let mut seen = std::collections::HashSet::new();
        for m in &self.mounts {
            if m.name.is_empty()
                || m.name.starts_with('.')
                || !m
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return invalid(format!(
                    "mounts[{:?}].name: use letters, digits, `-`, `_` and `.` only",
                    m.name
                ));
            }
            if !seen.insert(m.name.as_str()) {
                return invalid(format!("mounts[{:?}].name: defined twice", m.name));
            }
            m.backend()?;
            if let Some(c) = &m.cache {
                if c.max_size.as_u64() == 0 {
                    return invalid(format!(
                        "mounts[{:?}].cache.max_size: must be more than 0",
                        m.name
                    ));
                }
                if let Some(other) = self.mounts.iter().find(|o| {
                    o.name != m.name && o.cache.as_ref().is_some_and(|oc| oc.dir == c.dir)
                }) {
                    return invalid(format!(
                        "mounts[{:?}].cache.dir: {} is also the cache of mount {:?}; give each mount its own",
                        m.name,
                        c.dir.display(),
                        other.name
                    ));
                }
            }
        }
        for t in &self.tokens {
            if t.scopes.is_empty() {
                return invalid(format!(
                    "tokens[{:?}].scopes: give at least one of read, write, delete",
                    t.name
                ));
            }
            for name in &t.mounts {
                if name != "*" && !seen.contains(name.as_str()) {
                    return invalid(format!(
                        "tokens[{:?}].mounts: no mount named {name:?}",
                        t.name
                    ));
                }
            }
        }
        Ok(())
    }
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:8080".parse().expect("valid")
}
fn default_max_upload() -> ByteSize {
    ByteSize::gib(10)
}
fn default_max_expires() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_has_one_anonymous_local_mount() {
        let c = Config::embedded(Path::new("/tmp/x")).unwrap();
        assert_eq!(c.mounts.len(), 1);
        assert!(c.mounts[0].anonymous_read);
        assert_eq!(
            c.mounts[0].backend().unwrap(),
            BackendSpec::Local {
                root: "/tmp/x".into()
            }
        );
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn full_file_parses() {
        let c = Config::from_toml(
            r#"
listen = "0.0.0.0:9443"
[tls]
cert_file = "/c.pem"
key_file = "/k.pem"
[limits]
max_header_bytes = "32 KiB"
shutdown_grace = "5s"
[[mounts]]
name = "jobs"
url = "s3://bkt/flink"
[mounts.s3]
endpoint = "http://127.0.0.1:9000"
secret_access_key = { env = "S3_SECRET" }
[[tokens]]
name = "ci"
secret = { file = "/run/secrets/t" }
scopes = ["read", "write"]
mounts = ["jobs"]
"#,
        )
        .unwrap();
        assert_eq!(c.limits.shutdown_grace, Duration::from_secs(5));
        assert_eq!(c.limits.max_header_bytes, ByteSize::kib(32));
        assert!(matches!(
            c.mounts[0].backend().unwrap(),
            BackendSpec::S3 { .. }
        ));
        assert_eq!(format!("{:?}", c.tokens[0].secret), "file:/run/secrets/t");
    }

    #[test]
    fn errors_are_one_line_naming_the_key() {
        let err = Config::from_toml(
            "listen = \"127.0.0.1:1\"\nbogus = 1\n[[mounts]]\nname=\"a\"\nurl=\"file:///x\"\n",
        )
        .unwrap_err();
        assert!(err.message().contains("bogus"), "{err}");
        assert!(!err.message().contains('\n'));
        let err = Config::from_toml("[[mounts]]\nname=\"a\"\nurl=\"gopher://x\"\n").unwrap_err();
        assert!(err.message().contains("mounts[\"a\"].url"), "{err}");
        let err = Config::from_toml("[[mounts]]\nname=\"a\"\nurl=\"file:///x\"\n[[tokens]]\nname=\"t\"\nsecret={env=\"X\"}\nscopes=[\"read\"]\nmounts=[\"b\"]\n").unwrap_err();
        assert!(err.message().contains("tokens[\"t\"].mounts"), "{err}");
        let err = Config::from_toml("[[mounts]]\nname=\"a\"\nurl=\"file:///x\"\n[[tokens]]\nname=\"t\"\nsecret=\"inline\"\nscopes=[\"read\"]\n").unwrap_err();
        assert!(err.message().contains("line"), "{err}");
    }
}
