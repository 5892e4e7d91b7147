//! Where `fetch` reads an artifact from: the [`Source`] trait, and [`StorageSource`], which reads
//! straight from a store (`file://`, `s3://`, `oss://`, `hdfs://`) through the same
//! [`registry`](crate::storage::registry) and [`Storage`] trait as the server.
//!
//! The gateway's own HTTP API is another `Source`, implemented beside the HTTP client in
//! `client::http_source`; this module never imports the client.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::registry::{self, BackendOptions, BackendSpec};
use crate::storage::{ArtifactPath, ByteStream, GetOptions, Meta, Sha256, Storage};

/// What a source says about the current version of an artifact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remote {
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// A strong validator, exactly as the source spells it (an HTTP source keeps the quotes).
    /// `None` when the source has none, or only a weak one: such downloads cannot resume.
    pub etag: Option<String>,
    /// The SHA-256 the source vouches for (`Repr-Digest`, or the digest a store recorded).
    pub sha256: Option<Sha256>,
    /// When the version was last modified: with `size`, the quick check (as `wget -N` does) that
    /// keeps a present file when no digest is pinned or served.
    pub last_modified: Option<std::time::SystemTime>,
}

/// Where an interrupted download stopped, and which version it was reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub offset: u64,
    pub etag: String,
}

/// An open read.
pub struct Opened {
    pub remote: Remote,
    /// The first byte `body` carries: the requested resume offset when the source still holds
    /// the same version, otherwise 0 (the artifact changed: start over).
    pub offset: u64,
    pub body: ByteStream,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("remote", &self.remote)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

/// One artifact that can be read, whole or from an offset.
///
/// Errors follow [`ErrorKind`]: `NotFound`, `Unauthenticated`, … are final; `BackendUnavailable`,
/// `Timeout` and `Aborted` are worth retrying; `RangeNotSatisfiable` means the resume offset is
/// not inside the current version (the caller starts over).
#[async_trait]
pub trait Source: Send + Sync + fmt::Debug {
    /// For messages: the URL without credentials.
    fn describe(&self) -> String;

    /// The current version's size, validator and digest, without the body.
    async fn head(&self) -> Result<Remote>;

    /// Opens the body, from `resume.offset` if `resume.etag` still names the current version.
    async fn open(&self, resume: Option<&Resume>) -> Result<Opened>;
}

/// An artifact read directly from a store.
#[derive(Debug)]
pub struct StorageSource {
    url: String,
    storage: Arc<dyn Storage>,
    path: ArtifactPath,
}

impl StorageSource {
    /// Opens the store that holds `url`'s parent directory, through the registry. Credentials
    /// come from each library's usual environment (`AWS_*`, `ALIBABA_CLOUD_*`/`OSS_*`,
    /// `HADOOP_USER_NAME`).
    pub async fn open(url: &Url) -> Result<StorageSource> {
        let name = last_segment(url)?;
        let path = ArtifactPath::parse(&name)?;
        let mut parent = url.clone();
        parent.set_query(None);
        parent.set_fragment(None);
        {
            let mut segments = parent
                .path_segments_mut()
                .map_err(|_| Error::new(ErrorKind::InvalidInput, format!("{url} has no path")))?;
            segments.pop();
        }
        let spec = BackendSpec::from_url(parent.as_str(), BackendOptions::default())?;
        let storage = registry::build(&spec).await?;
        Ok(StorageSource {
            url: url.to_string(),
            storage,
            path,
        })
    }

    /// A source over a ready-made store.
    pub fn new(storage: Arc<dyn Storage>, path: ArtifactPath) -> StorageSource {
        let url = format!("{}/{}", storage.describe(), path);
        StorageSource { url, storage, path }
    }
}

fn remote_of(meta: &Meta) -> Remote {
    Remote {
        size: Some(meta.size),
        etag: Some(meta.etag.clone()),
        sha256: meta.sha256,
        last_modified: Some(meta.last_modified),
    }
}

#[async_trait]
impl Source for StorageSource {
    fn describe(&self) -> String {
        self.url.clone()
    }

    async fn head(&self) -> Result<Remote> {
        Ok(remote_of(&self.storage.head(&self.path).await?))
    }

    async fn open(&self, resume: Option<&Resume>) -> Result<Opened> {
        if let Some(r) = resume.filter(|_| self.storage.capabilities().range_read) {
            let meta = self.storage.head(&self.path).await?;
            if meta.etag == r.etag {
                if r.offset >= meta.size {
                    return Err(Error::new(
                        ErrorKind::RangeNotSatisfiable,
                        "the partial download is not shorter than the artifact",
                    ));
                }
                let opts = GetOptions {
                    range: Some(r.offset..meta.size),
                    if_match: Some(meta.etag.clone()),
                };
                match self.storage.get(&self.path, opts).await {
                    Ok(res) => {
                        return Ok(Opened {
                            remote: remote_of(&res.meta),
                            offset: r.offset,
                            body: res.body,
                        })
                    }
                    // Replaced between head and get: read the new version whole.
                    Err(e) if e.kind() == ErrorKind::PreconditionFailed => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let res = self.storage.get(&self.path, GetOptions::default()).await?;
        Ok(Opened {
            remote: remote_of(&res.meta),
            offset: 0,
            body: res.body,
        })
    }
}

/// The decoded last segment of a URL's path: the default file name of what it points to.
pub fn last_segment(url: &Url) -> Result<String> {
    let raw = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    if raw.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{url} does not end in a file name; point at the artifact itself (or give it a name)"),
        ));
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("the last segment of {url} is not UTF-8 once decoded"),
            )
        })
}
