//! The registry: the one place that matches on the backend kind.
//!
//! A mount is configured by URL (`file:///srv/a`, `s3://bucket/prefix`, `oss://bucket/prefix`,
//! `hdfs://namenode:8020/prefix`) plus an optional options table for that kind. [`BackendSpec`]
//! is the typed result; [`build`] turns it into a [`Storage`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::local::LocalStorage;
use super::{hdfs, oss, s3, Storage};
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;

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

/// Options of the HDFS backend (`[mounts.hdfs]`). The namenode (or an HA nameservice, resolved
/// through `dfs.ha.namenodes.<ns>` in `config` or in `$HADOOP_CONF_DIR`) and the root prefix
/// come from the URL: `hdfs://namenode:8020/prefix`, `hdfs://nameservice/prefix`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HdfsOptions {
    /// The user to act as; default `HADOOP_USER_NAME`, else the process user.
    pub user: Option<String>,
    /// Extra client configuration (`dfs.*`, e.g. an HA nameservice's namenodes). Overrides
    /// `$HADOOP_CONF_DIR`. Unless set here, the gateway bounds the client's own retries so
    /// failures surface within the service's deadline: `dfs.client.failover.max.attempts = 3`,
    /// `dfs.client.failover.sleep.base.millis = 100`, `dfs.client.failover.sleep.max.millis =
    /// 1000`, `dfs.client.socket-timeout = 20000`.
    #[serde(default)]
    pub config: std::collections::BTreeMap<String, String>,
}

/// A fully resolved backend description.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendSpec {
    Local {
        root: PathBuf,
    },
    S3 {
        bucket: String,
        prefix: String,
        options: S3Options,
    },
    Oss {
        bucket: String,
        prefix: String,
        options: OssOptions,
    },
    /// `url` is `hdfs://authority` (a namenode or an HA nameservice).
    Hdfs {
        url: String,
        prefix: String,
        options: HdfsOptions,
    },
}

/// The per-kind option tables a mount may carry.
#[derive(Debug, Clone, Default)]
pub struct BackendOptions {
    pub s3: Option<S3Options>,
    pub oss: Option<OssOptions>,
    pub hdfs: Option<HdfsOptions>,
}

impl BackendSpec {
    /// Parses a backend URL and attaches the options table of its kind. A table of another
    /// kind is an error (it would be silently ignored otherwise).
    pub fn from_url(raw: &str, options: BackendOptions) -> Result<Self> {
        let url = Url::parse(raw).map_err(|e| bad(raw, &format!("not a URL ({e})")))?;
        let prefix = url.path().trim_matches('/').to_string();
        let host = url.host_str().unwrap_or("").to_string();
        let scheme = url.scheme();
        let foreign = |kind: &str| {
            let present = [
                ("s3", options.s3.is_some()),
                ("oss", options.oss.is_some()),
                ("hdfs", options.hdfs.is_some()),
            ];
            present
                .iter()
                .find(|(k, p)| *p && *k != kind)
                .map(|(k, _)| *k)
        };
        if let Some(other) = foreign(scheme) {
            return Err(bad(
                raw,
                &format!("has a [{other}] options table but is a {scheme}:// URL"),
            ));
        }
        match scheme {
            "file" => {
                if !host.is_empty() {
                    return Err(bad(
                        raw,
                        "file URLs take no host: use file:///absolute/path",
                    ));
                }
                let root = url
                    .to_file_path()
                    .map_err(|_| bad(raw, "not a local path"))?;
                Ok(BackendSpec::Local { root })
            }
            "s3" | "oss" => {
                if host.is_empty() {
                    return Err(bad(raw, "the bucket is missing: use s3://bucket/prefix"));
                }
                if scheme == "s3" {
                    Ok(BackendSpec::S3 {
                        bucket: host,
                        prefix,
                        options: options.s3.unwrap_or_default(),
                    })
                } else {
                    Ok(BackendSpec::Oss {
                        bucket: host,
                        prefix,
                        options: options.oss.unwrap_or_default(),
                    })
                }
            }
            "hdfs" | "viewfs" => {
                if host.is_empty() {
                    return Err(bad(
                        raw,
                        "the namenode is missing: use hdfs://namenode:8020/prefix",
                    ));
                }
                let authority = match url.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host,
                };
                Ok(BackendSpec::Hdfs {
                    url: format!("{scheme}://{authority}"),
                    prefix,
                    options: options.hdfs.unwrap_or_default(),
                })
            }
            other => Err(bad(
                raw,
                &format!("unknown scheme {other:?} (use file, s3, oss or hdfs)"),
            )),
        }
    }
}

/// Builds the storage for a spec.
pub async fn build(spec: &BackendSpec) -> Result<Arc<dyn Storage>> {
    match spec {
        BackendSpec::Local { root } => Ok(Arc::new(LocalStorage::new(root)?)),
        BackendSpec::S3 {
            bucket,
            prefix,
            options,
        } => Ok(Arc::new(s3::build(bucket, prefix, options)?)),
        BackendSpec::Oss {
            bucket,
            prefix,
            options,
        } => Ok(Arc::new(oss::build(bucket, prefix, options)?)),
        BackendSpec::Hdfs {
            url,
            prefix,
            options,
        } => Ok(Arc::new(hdfs::build(url, prefix, options)?)),
    }
}

/// Builds a mount's storage with its layers: a [`Metered`](super::metered::Metered) counter of
/// backend calls and read bytes on every remote backend, and the read-through cache when the
/// mount configures one.
pub async fn build_mount(
    spec: &BackendSpec,
    mount: &str,
    cache: Option<&super::cache::CacheOptions>,
    metrics: &super::metrics::StorageMetrics,
) -> Result<Arc<dyn Storage>> {
    let mut storage = build(spec).await?;
    if !matches!(spec, BackendSpec::Local { .. }) || cache.is_some() {
        storage = Arc::new(super::metered::Metered::new(
            storage,
            mount,
            metrics.clone(),
        ));
    }
    if let Some(opts) = cache {
        storage = Arc::new(
            super::cache::CachedStorage::open(storage, opts, mount, metrics.clone()).await?,
        );
    }
    Ok(storage)
}

fn bad(raw: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("backend URL {raw:?} {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            BackendSpec::from_url("file:///srv/a", BackendOptions::default()).unwrap(),
            BackendSpec::Local {
                root: "/srv/a".into()
            }
        );
        match BackendSpec::from_url("s3://bkt/some/prefix/", BackendOptions::default()).unwrap() {
            BackendSpec::S3 { bucket, prefix, .. } => {
                assert_eq!((bucket.as_str(), prefix.as_str()), ("bkt", "some/prefix"))
            }
            other => panic!("{other:?}"),
        }
        match BackendSpec::from_url("hdfs://nn:8020/flink", BackendOptions::default()).unwrap() {
            BackendSpec::Hdfs { url, prefix, .. } => {
                assert_eq!((url.as_str(), prefix.as_str()), ("hdfs://nn:8020", "flink"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            BackendSpec::from_url("oss://b", BackendOptions::default()).unwrap(),
            BackendSpec::Oss { .. }
        ));
    }

    #[test]
    fn rejects_bad_urls_and_foreign_options() {
        for bad in [
            "nope",
            "ftp://x/y",
            "s3:///prefix",
            "file://host/x",
            "hdfs:///x",
        ] {
            assert!(
                BackendSpec::from_url(bad, BackendOptions::default()).is_err(),
                "{bad}"
            );
        }
        let opts = BackendOptions {
            oss: Some(OssOptions::default()),
            ..Default::default()
        };
        let err = BackendSpec::from_url("s3://b/p", opts).unwrap_err();
        assert!(err.message().contains("[oss]"), "{err}");
    }
}
