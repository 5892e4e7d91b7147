//! The HTTP client side: one configured `reqwest` client (rustls, system roots plus an optional
//! private CA, timeouts, a bearer token, a safe redirect policy), the gateway's API for the admin
//! commands ([`gateway`]), and the gateway as a `fetch` source ([`source`]).
//!
//! Owns: turning HTTP responses and transport failures into [`Error`] kinds, once. Sits beside
//! `http` (the server) as an entry point: it may use `service` and `storage` types, and nothing
//! below imports it.

pub mod gateway;
pub mod http_source;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;

/// Environment variable holding the bearer token (the server reads the same one).
pub const TOKEN_ENV: &str = "ARTIFACT_GATEWAY_TOKEN";

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

/// A bearer token; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// `--token-file` when given, else `ARTIFACT_GATEWAY_TOKEN` when set, else none.
    pub fn load(token_file: Option<&Path>) -> Result<Option<Token>> {
        if let Some(path) = token_file {
            return Secret::File(path.to_path_buf())
                .resolve()
                .map(|t| Some(Token(t)));
        }
        match std::env::var(TOKEN_ENV) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(Token(v.trim().to_string()))),
            _ => Ok(None),
        }
    }

    pub fn new(value: impl Into<String>) -> Token {
        Token(value.into())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// PEM file of extra trusted CA certificates (added to the system's roots).
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Longest wait for a response, and between two reads of a body.
    pub read_timeout: Duration,
    pub token: Option<Token>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            token: None,
        }
    }
}

/// A configured HTTP client; cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    token: Option<Arc<Token>>,
}

impl HttpClient {
    pub fn new(cfg: &ClientConfig) -> Result<HttpClient> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("artifact-gateway/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            .redirect(redirect_policy())
            // Bulk transfers: HTTP/1.1 over one connection per artifact. HTTP/2's per-stream
            // flow-control window (2 MiB in hyper) caps throughput at window/RTT on distant
            // servers, and measured slower here even on loopback.
            .http1_only();
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("--ca-file {}: {e}", path.display()),
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("--ca-file {}: not PEM certificates: {e}", path.display()),
                )
            })?;
            if certs.is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("--ca-file {}: no certificate in the file", path.display()),
                ));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let inner = builder.build().map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("cannot set up the HTTP client: {}", chain(&e)),
            )
        })?;
        Ok(HttpClient {
            inner,
            token: cfg.token.clone().map(Arc::new),
        })
    }

    /// A request carrying the bearer token, if any.
    pub fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let req = self.inner.request(method, url);
        match &self.token {
            Some(t) => req.bearer_auth(&t.0),
            None => req,
        }
    }

    /// Sends a request; transport failures become errors, HTTP statuses do not.
    pub async fn send(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<reqwest::Response> {
        req.send().await.map_err(|e| transport_error(&e, what))
    }
}

/// Follows up to five redirects, never from `https` down to `http` (the token and the integrity
/// of the channel would be lost). `reqwest` drops `Authorization` on cross-host redirects.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.url().scheme() == "http"
            && attempt.previous().iter().any(|u| u.scheme() == "https");
        if downgrade {
            attempt.error("refusing to follow a redirect from https to http")
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// Every error in a chain, joined: reqwest's own message alone rarely says what happened. The
/// generic wrappers (`error sending request for url (…)`, `client error (Connect)`) are
/// dropped when something more specific follows.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let msg = err.to_string();
        if !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        cur = err.source();
    }
    let generic =
        |p: &String| p.starts_with("error sending request") || p.starts_with("client error (");
    if parts.len() > 1 {
        let specific: Vec<String> = parts.iter().filter(|p| !generic(p)).cloned().collect();
        if !specific.is_empty() {
            parts = specific;
        }
    }
    parts.join(": ")
}

/// Maps a transport failure (no HTTP status) to an error kind.
pub fn transport_error(e: &reqwest::Error, what: &str) -> Error {
    let detail = chain(e);
    let lower = detail.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        let hint = if lower.contains("caasendentity") || lower.contains("caused") {
            "; the server presents a CA certificate (basicConstraints CA:TRUE) as its own: serve a \
             leaf certificate issued by the CA, or a self-signed one without CA:TRUE"
        } else if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
            "; pass the CA that issued it with --ca-file"
        } else {
            ""
        };
        return Error::new(
            ErrorKind::BackendAuth,
            format!("{what}: the server's TLS certificate is not accepted ({detail}){hint}"),
        );
    }
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_body() || e.is_decode() {
        ErrorKind::Aborted
    } else if e.is_redirect() {
        ErrorKind::InvalidInput
    } else {
        ErrorKind::BackendUnavailable
    };
    let what_failed = match kind {
        ErrorKind::Timeout => "timed out",
        ErrorKind::Aborted => "the transfer broke off",
        ErrorKind::BackendUnavailable if e.is_connect() => "cannot connect",
        _ => "request failed",
    };
    Error::new(kind, format!("{what}: {what_failed}: {detail}"))
}

/// Reads an error response: the kind from the status (5xx, 408 and 429 stay retryable) or the
/// server's JSON error code, and the server's own message.
pub async fn status_error(resp: reqwest::Response, what: &str) -> Error {
    let status = resp.status();
    let text: String = resp.text().await.unwrap_or_default();
    let parsed: Option<(String, String)> = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            Some((
                e.get("code")?.as_str()?.to_string(),
                e.get("message")?.as_str()?.to_string(),
            ))
        });
    let code_kind = parsed.as_ref().and_then(|(code, _)| kind_of_code(code));
    let kind = match (status.as_u16(), code_kind) {
        (408, _) => ErrorKind::Timeout,
        (429, _) => ErrorKind::BackendUnavailable,
        // The gateway's own credentials to its store were refused: retrying will not help.
        (_, Some(ErrorKind::BackendAuth)) => ErrorKind::BackendAuth,
        (400..=499, Some(k)) => k,
        (501, _) => ErrorKind::Unsupported,
        (504, _) => ErrorKind::Timeout,
        (500..=599, _) => ErrorKind::BackendUnavailable,
        (401, _) => ErrorKind::Unauthenticated,
        (403, _) => ErrorKind::PermissionDenied,
        (404 | 410, _) => ErrorKind::NotFound,
        (412, _) => ErrorKind::PreconditionFailed,
        (413, _) => ErrorKind::TooLarge,
        (416, _) => ErrorKind::RangeNotSatisfiable,
        _ => ErrorKind::InvalidInput,
    };
    let message = match parsed {
        Some((_, m)) => m,
        None => {
            let snippet: String = text.trim().chars().take(200).collect();
            if snippet.is_empty() || snippet.starts_with('<') {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                snippet
            }
        }
    };
    let hint = match status {
        StatusCode::UNAUTHORIZED => {
            " (give a valid token with --token-file or ARTIFACT_GATEWAY_TOKEN)"
        }
        StatusCode::FORBIDDEN => " (the token lacks the needed scope on this mount)",
        _ => "",
    };
    Error::new(
        kind,
        format!("{what}: HTTP {}: {message}{hint}", status.as_u16()),
    )
}

/// The kind behind a server's JSON error `code`.
fn kind_of_code(code: &str) -> Option<ErrorKind> {
    const KINDS: [ErrorKind; 15] = [
        ErrorKind::NotFound,
        ErrorKind::PreconditionFailed,
        ErrorKind::InvalidPath,
        ErrorKind::InvalidInput,
        ErrorKind::DigestMismatch,
        ErrorKind::RangeNotSatisfiable,
        ErrorKind::TooLarge,
        ErrorKind::Unauthenticated,
        ErrorKind::PermissionDenied,
        ErrorKind::Unsupported,
        ErrorKind::BackendUnavailable,
        ErrorKind::BackendAuth,
        ErrorKind::Timeout,
        ErrorKind::Aborted,
        ErrorKind::Internal,
    ];
    KINDS.into_iter().find(|k| k.code() == code)
}

/// A header as text, if present and visible ASCII.
fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_back_to_kinds() {
        assert_eq!(
            kind_of_code("digest_mismatch"),
            Some(ErrorKind::DigestMismatch)
        );
        assert_eq!(kind_of_code("backend_timeout"), Some(ErrorKind::Timeout));
        assert_eq!(kind_of_code("nope"), None);
    }

    #[test]
    fn tokens_never_print() {
        assert_eq!(format!("{:?}", Token::new("s3cret")), "<redacted>");
    }
}
