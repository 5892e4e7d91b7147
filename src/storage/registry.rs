//! The registry: the one place that matches on the backend kind.
//!
//! A mount is configured by URL (`file:///srv/a`, `s3://bucket/prefix`, `oss://bucket/prefix`,
//! `hdfs://namenode:8020/prefix`) plus an optional options table for that kind. [`BackendSpec`]
//! is the typed result; [`build`] turns it into a [`Storage`].

use std::path::PathBuf;
use std::sync::Arc;

use url::Url;

pub use super::hdfs::HdfsOptions;
use super::local::LocalStorage;
pub use super::oss::OssOptions;
pub use super::s3::S3Options;
use super::{hdfs, oss, s3, Storage};
use crate::error::{Error, ErrorKind, Result};

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
        storage = Arc::new(super::cache::CachedStorage::new(
            storage,
            opts,
            mount,
            metrics.clone(),
        ));
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
