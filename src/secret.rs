//! [`Secret`]: a credential read from an environment variable or a file, never from argv,
//! never printed. Used by config (tokens) and by backend options (cloud credentials). Also
//! [`redact_url`], the one way a URL that may carry credentials is shown in a message.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};

/// Where a secret comes from: `{ env = "NAME" }` or `{ file = "/run/secrets/x" }`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Secret {
    Env(String),
    File(PathBuf),
    /// A value already resolved (from `ARTIFACT_GATEWAY_TOKEN` or a test); not accepted in TOML.
    #[serde(skip)]
    Value(String),
}

impl Secret {
    /// Reads the secret. A file's trailing newline is dropped; an empty secret is an error.
    pub fn resolve(&self) -> Result<String> {
        let value = match self {
            Secret::Env(name) => std::env::var(name).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("environment variable {name} is not set (it holds a secret)"),
                )
            })?,
            Secret::File(path) => std::fs::read_to_string(path).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("cannot read secret file {}: {e}", path.display()),
                )
            })?,
            Secret::Value(v) => v.clone(),
        };
        let value = value.trim_end_matches(['\n', '\r']).to_string();
        if value.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("secret from {self:?} is empty"),
            ));
        }
        Ok(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Env(n) => write!(f, "env:{n}"),
            Secret::File(p) => write!(f, "file:{}", p.display()),
            Secret::Value(_) => f.write_str("<redacted>"),
        }
    }
}

/// A URL for messages: no user info, no query (it may carry a signature).
pub fn redact_url(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if u.query().is_some() {
        u.set_query(Some("…"));
    }
    u.to_string()
}
