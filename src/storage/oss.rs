//! The Aliyun OSS backend: a constructor that turns [`OssOptions`] into an opendal `Operator`
//! (service `oss`, OSS V1 signatures) and hands it to [`OpendalStorage`], which holds all the
//! behaviour.
//!
//! Owns: endpoint and addressing, credentials, the HTTP client's timeouts. Credentials come from
//! the options (each a `Secret`), else from `ALIBABA_CLOUD_ACCESS_KEY_ID` /
//! `ALIBABA_CLOUD_ACCESS_KEY_SECRET` / `ALIBABA_CLOUD_SECURITY_TOKEN`, else from
//! `OSS_ACCESS_KEY_ID` / `OSS_ACCESS_KEY_SECRET` / `OSS_SESSION_TOKEN`; with none of those, the
//! library's chain takes over (RRSA/OIDC via `ALIBABA_CLOUD_ROLE_ARN` +
//! `ALIBABA_CLOUD_OIDC_TOKEN_FILE`, then the ECS RAM role). Building makes no request, so a
//! gateway starts while OSS is unreachable and `/readyz` reports it.
//!
//! Failed uploads are aborted by the adapter; a gateway killed mid-upload leaves an invisible,
//! incomplete multipart upload behind, so give the bucket a lifecycle rule that aborts incomplete
//! multipart uploads after a day.
//!
//! No retries and no timeouts inside opendal: the service retries idempotent calls within its
//! deadline. The HTTP client connects within 5 s and fails a read that stalls for 60 s.

use std::time::Duration;

use ::opendal::services::Oss;
use ::opendal::{HttpTransporter, Operator};
use opendal_http_transport_reqwest::ReqwestTransport;
use serde::Deserialize;

use super::opendal::{OpendalStorage, DEFAULT_TUNING};
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of the Aliyun OSS backend (`[mounts.oss]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OssOptions {
    /// e.g. `https://oss-cn-hangzhou.aliyuncs.com`. Required.
    pub endpoint: Option<String>,
    /// Default: `ALIBABA_CLOUD_ACCESS_KEY_ID` / `OSS_ACCESS_KEY_ID`.
    pub access_key_id: Option<Secret>,
    /// Default: `ALIBABA_CLOUD_ACCESS_KEY_SECRET` / `OSS_ACCESS_KEY_SECRET`.
    pub access_key_secret: Option<Secret>,
    /// An STS security token (default: `ALIBABA_CLOUD_SECURITY_TOKEN` / `OSS_SESSION_TOKEN`,
    /// from the same family as the key pair).
    pub security_token: Option<Secret>,
    /// `virtual` (default, `https://bucket.endpoint/key`, what Aliyun OSS expects), `path`
    /// (`https://endpoint/bucket/key`, for test servers and proxies) or `cname` (the endpoint
    /// is a custom domain bound to the bucket).
    pub addressing_style: Option<String>,
}

/// Builds the storage of `oss://bucket/prefix`.
pub fn build(bucket: &str, prefix: &str, options: &OssOptions) -> Result<OpendalStorage> {
    let endpoint = options
        .endpoint
        .as_deref()
        .filter(|e| !e.trim().is_empty())
        .ok_or_else(|| {
            invalid(
                "endpoint is required, e.g. endpoint = \"https://oss-cn-hangzhou.aliyuncs.com\"",
            )
        })?;
    if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
        return Err(invalid(&format!(
            "endpoint {endpoint:?} must start with https:// (or http:// for a test server)"
        )));
    }
    let style = options.addressing_style.as_deref().unwrap_or("virtual");
    if !matches!(style, "virtual" | "path" | "cname") {
        return Err(invalid(&format!(
            "addressing_style {style:?} must be \"virtual\", \"path\" or \"cname\""
        )));
    }

    let mut builder = Oss::default()
        .bucket(bucket)
        .endpoint(endpoint)
        .root(&format!("/{prefix}"))
        .addressing_style(style);
    if let Some(creds) = credentials(options)? {
        builder = builder
            .access_key_id(&creds.id)
            .access_key_secret(&creds.secret);
        if let Some(token) = &creds.token {
            builder = builder.security_token(token);
        }
    }

    let op = Operator::new(builder).map_err(|e| invalid(&e.to_string()))?;
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(50))
        .tcp_keepalive(Duration::from_secs(30))
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot build the OSS HTTP client: {e}"),
            )
        })?;
    let ctx = op
        .base_context()
        .with_http_transport(HttpTransporter::new(ReqwestTransport::new(client)));
    let op = op.with_context(ctx);

    let describe = if prefix.is_empty() {
        format!("oss://{bucket}")
    } else {
        format!("oss://{bucket}/{prefix}")
    };
    Ok(OpendalStorage::new(op, "OSS", describe, DEFAULT_TUNING))
}

struct Credentials {
    id: String,
    secret: String,
    token: Option<String>,
}

/// The key pair (and STS token) from the options, else from one family of environment
/// variables; `None` leaves it to the library's credential chain.
fn credentials(options: &OssOptions) -> Result<Option<Credentials>> {
    let resolve = |s: &Option<Secret>, key: &str| -> Result<Option<String>> {
        s.as_ref()
            .map(|s| {
                s.resolve()
                    .map_err(|e| invalid(&format!("{key}: {}", e.message())))
            })
            .transpose()
    };
    let id = resolve(&options.access_key_id, "access_key_id")?;
    let secret = resolve(&options.access_key_secret, "access_key_secret")?;
    let token = resolve(&options.security_token, "security_token")?;
    match (id, secret) {
        (Some(id), Some(secret)) => return Ok(Some(Credentials { id, secret, token })),
        (Some(_), None) | (None, Some(_)) => {
            return Err(invalid(
                "access_key_id and access_key_secret must be given together",
            ));
        }
        (None, None) if token.is_some() => {
            return Err(invalid(
                "security_token needs access_key_id and access_key_secret",
            ));
        }
        (None, None) => {}
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    for (id_var, secret_var, token_var) in [
        (
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            "ALIBABA_CLOUD_SECURITY_TOKEN",
        ),
        (
            "OSS_ACCESS_KEY_ID",
            "OSS_ACCESS_KEY_SECRET",
            "OSS_SESSION_TOKEN",
        ),
    ] {
        if let (Some(id), Some(secret)) = (env(id_var), env(secret_var)) {
            return Ok(Some(Credentials {
                id,
                secret,
                token: env(token_var),
            }));
        }
    }
    Ok(None)
}

fn invalid(why: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("[oss] {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENDPOINT: &str = "https://oss-cn-hangzhou.aliyuncs.com";

    /// The message of the error `build` refuses `options` with.
    fn refusal(options: OssOptions) -> String {
        build("b", "p", &options).unwrap_err().message().to_string()
    }

    #[test]
    fn options_are_checked() {
        assert!(refusal(OssOptions::default()).contains("endpoint"));
        let at_endpoint = || OssOptions {
            endpoint: Some(ENDPOINT.into()),
            ..Default::default()
        };
        let bad_style = OssOptions {
            addressing_style: Some("sideways".into()),
            ..at_endpoint()
        };
        assert!(refusal(bad_style).contains("addressing_style"));
        let half = OssOptions {
            access_key_id: Some(Secret::Value("id".into())),
            ..at_endpoint()
        };
        assert!(refusal(half).contains("together"));
        let ok = OssOptions {
            endpoint: Some(ENDPOINT.into()),
            access_key_id: Some(Secret::Value("id".into())),
            access_key_secret: Some(Secret::Value("secret".into())),
            security_token: Some(Secret::Value("sts".into())),
            addressing_style: Some("path".into()),
        };
        let s = build("bkt", "flink/jobs", &ok).unwrap();
        use crate::storage::Storage;
        assert_eq!(s.describe(), "oss://bkt/flink/jobs");
        let caps = s.capabilities();
        assert!(
            caps.atomic_create && caps.pinned_read && !caps.atomic_update && caps.stores_digest
        );
    }
}
