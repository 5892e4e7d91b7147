//! The S3 backend: a constructor that turns [`S3Options`] into an `object_store` `AmazonS3` and
//! hands it to the one adapter, [`ObjectStoreStorage`]. No behaviour lives here.
//!
//! Credentials: explicit keys from the options when given; otherwise the library's own chain,
//! as the AWS SDKs do it: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, web
//! identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, i.e. IRSA on EKS), the ECS/EKS
//! container credential endpoints, then the EC2 instance metadata service. Other `AWS_*`
//! variables (`AWS_REGION`, `AWS_ENDPOINT`, …) are read too; options in the config win.
//!
//! Timeouts and retries: connect 5 s, a 20 s stall detector on reads, no limit on a whole
//! transfer (a 10 GiB download may take minutes); up to 3 retries with backoff from 100 ms, none
//! started after 10 s, so one call ends well inside the service's 30 s backend deadline.

mod completion;

use std::sync::Arc;
use std::time::Duration;

use ::object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use ::object_store::{BackoffConfig, ClientOptions, RetryConfig};
use serde::Deserialize;

use self::completion::{CompletionConditions, ConditionalCompletionConnector};
use super::object_store::{ObjectStoreStorage, DEFAULT_TUNING};
use super::UploadTuning;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(20);
const DEFAULT_MAX_RETRIES: usize = 3;
const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of the S3 backend (`[mounts.s3]`). Anything unset falls back to the library's own
/// credential chain: `AWS_*` environment variables, web identity (IRSA), instance metadata.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3Options {
    /// Region; default `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Endpoint of an S3-compatible store (MinIO, OSS's S3 endpoint, …); default AWS.
    pub endpoint: Option<String>,
    /// `true`: `https://bucket.endpoint/key`; `false` (default when `endpoint` is set): path style.
    pub virtual_hosted_style: Option<bool>,
    /// Allow a plain-http endpoint. Default: true when `endpoint` starts with `http://`.
    pub allow_http: Option<bool>,
    /// Access key id (`{ env = "…" }` or `{ file = "…" }`); set together with
    /// `secret_access_key`. Unset: the credential chain above.
    pub access_key_id: Option<Secret>,
    /// Secret access key; set together with `access_key_id`.
    pub secret_access_key: Option<Secret>,
    /// Session token of temporary credentials (optional, with the two keys above).
    pub session_token: Option<Secret>,
    /// Part size of multipart uploads (bytes, at least 5 MiB); default 16 MiB. Bodies up to
    /// this size are one PUT. Memory per upload is about `part_size * (upload_concurrency + 1)`.
    pub part_size: Option<u64>,
    /// Parts in flight per upload; default 4.
    pub upload_concurrency: Option<usize>,
    /// Time to establish a connection (TCP + TLS); default 5 s.
    #[serde(default, with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    /// Longest wait for the next bytes of a response (a stall detector, not a limit on a
    /// whole transfer); default 20 s.
    #[serde(default, with = "humantime_serde")]
    pub read_timeout: Option<Duration>,
    /// Retries of one request on connection errors and 5xx answers; default 3.
    pub max_retries: Option<usize>,
    /// No retry starts after this long from the first attempt; default 10 s, so a request and
    /// its retries end well inside the gateway's backend deadline (`limits.backend_timeout`).
    #[serde(default, with = "humantime_serde")]
    pub retry_timeout: Option<Duration>,
}

/// Builds the storage for `s3://bucket/prefix`.
pub fn build(bucket: &str, prefix: &str, options: &S3Options) -> Result<ObjectStoreStorage> {
    // Lets multipart completions carry If-None-Match / If-Match (see `completion.rs`).
    let conditions = Arc::new(CompletionConditions::default());
    let connector = ConditionalCompletionConnector::new(conditions.clone());
    let store = builder(bucket, options)?
        .with_http_connector(connector)
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("S3 bucket {bucket:?}: {e}"),
            )
            .with_source(e)
        })?;
    let defaults = DEFAULT_TUNING;
    let tuning = UploadTuning {
        part_size: match options.part_size {
            Some(n) => usize::try_from(n).map_err(|_| invalid("part_size is too large"))?,
            None => defaults.part_size,
        },
        concurrency: options.upload_concurrency.unwrap_or(defaults.concurrency),
    };
    let label = if prefix.is_empty() {
        format!("s3://{bucket}")
    } else {
        format!("s3://{bucket}/{prefix}")
    };
    ObjectStoreStorage::new(Arc::new(store), prefix, label, tuning, Some(conditions))
}

fn builder(bucket: &str, options: &S3Options) -> Result<AmazonS3Builder> {
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        // Conditional PUT with If-None-Match / If-Match, which S3 and MinIO support.
        .with_conditional_put(S3ConditionalPut::ETagMatch);
    if let Some(region) = &options.region {
        b = b.with_region(region);
    } else if std::env::var_os("AWS_REGION").is_none()
        && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        b = b.with_region("us-east-1");
    }
    if let Some(endpoint) = &options.endpoint {
        url::Url::parse(endpoint)
            .map_err(|e| invalid(&format!("endpoint {endpoint:?} is not a URL ({e})")))?;
        b = b.with_endpoint(endpoint.trim_end_matches('/'));
        b = b.with_virtual_hosted_style_request(options.virtual_hosted_style.unwrap_or(false));
    } else if let Some(v) = options.virtual_hosted_style {
        b = b.with_virtual_hosted_style_request(v);
    }
    // Without options (e.g. `fetch s3://…`), object_store takes the endpoint and
    // AWS_ALLOW_HTTP from the environment; the client options set below replace the latter, so
    // the same defaults are derived from the environment here.
    let env_endpoint = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
    let env_allow_http = std::env::var("AWS_ALLOW_HTTP")
        .ok()
        .map(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let allow_http = options.allow_http.or(env_allow_http).unwrap_or_else(|| {
        options
            .endpoint
            .as_deref()
            .or(env_endpoint.as_deref())
            .is_some_and(|e| e.starts_with("http://"))
    });
    if options
        .endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"))
        && !allow_http
    {
        return Err(invalid(
            "the endpoint is plain http:// but allow_http is false",
        ));
    }
    match (&options.access_key_id, &options.secret_access_key) {
        (Some(id), Some(secret)) => {
            b = b
                .with_access_key_id(id.resolve()?)
                .with_secret_access_key(secret.resolve()?);
            if let Some(token) = &options.session_token {
                b = b.with_token(token.resolve()?);
            }
        }
        (None, None) => {
            if options.session_token.is_some() {
                return Err(invalid(
                    "session_token needs access_key_id and secret_access_key",
                ));
            }
        }
        _ => {
            return Err(invalid(
                "set both access_key_id and secret_access_key, or neither",
            ))
        }
    }
    let client = ClientOptions::new()
        .with_allow_http(allow_http)
        .with_connect_timeout(options.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
        .with_timeout_disabled()
        .with_read_timeout(options.read_timeout.unwrap_or(DEFAULT_READ_TIMEOUT));
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: options.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
        retry_timeout: options.retry_timeout.unwrap_or(DEFAULT_RETRY_TIMEOUT),
    };
    Ok(b.with_client_options(client).with_retry(retry))
}

fn invalid(why: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("[s3] options: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    /// Options with a complete key pair.
    fn keyed() -> S3Options {
        S3Options {
            access_key_id: Some(Secret::Value("id".into())),
            secret_access_key: Some(Secret::Value("secret".into())),
            ..Default::default()
        }
    }

    #[test]
    fn half_a_key_pair_is_refused() {
        let opts = S3Options {
            access_key_id: Some(Secret::Value("id".into())),
            ..Default::default()
        };
        let err = build("b", "p", &opts).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("both"), "{err}");
    }

    #[test]
    fn plain_http_endpoint_needs_allow_http() {
        let opts = S3Options {
            endpoint: Some("http://127.0.0.1:9".into()),
            allow_http: Some(false),
            ..keyed()
        };
        assert_eq!(
            build("b", "", &opts).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let ok = S3Options {
            allow_http: None,
            ..opts
        };
        let storage = build("b", "some/prefix", &ok).unwrap();
        use crate::storage::Storage;
        assert_eq!(storage.describe(), "s3://b/some/prefix");
    }

    #[test]
    fn options_parse_from_toml() {
        let opts: S3Options = toml::from_str(
            r#"
            region = "eu-central-1"
            endpoint = "http://127.0.0.1:9000"
            access_key_id = { env = "S3_KEY" }
            secret_access_key = { file = "/run/secrets/s3" }
            part_size = 8388608
            upload_concurrency = 2
            connect_timeout = "2s"
            read_timeout = "15s"
            max_retries = 1
            retry_timeout = "4s"
            "#,
        )
        .unwrap();
        assert_eq!(opts.read_timeout, Some(Duration::from_secs(15)));
        assert_eq!(opts.retry_timeout, Some(Duration::from_secs(4)));
        assert_eq!(opts.access_key_id, Some(Secret::Env("S3_KEY".into())));
        assert!(
            toml::from_str::<S3Options>("bucket = \"x\"").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn tiny_parts_are_refused() {
        let opts = S3Options {
            part_size: Some(1024),
            ..keyed()
        };
        assert_eq!(
            build("b", "", &opts).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
