//! A [`Storage`] wrapper that counts what a mount asks of its backend: calls by operation and
//! the body bytes its reads receive (`artifact_gateway_backend_read_bytes_total{mount}`).
//!
//! It sits directly on the backend, below the read-through cache, so its byte counter is what
//! the backend really sent: a cache hit adds nothing, a fill adds the object's size once.
//! Must never import `service` or `http`.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;

use super::metrics::{MountLabel, MountOp, Op, StorageMetrics};
use super::{
    ArtifactPath, ByteStream, Capabilities, GetOptions, GetResult, ListOptions, ListPage, Meta,
    PutResult, Storage, Upload,
};
use crate::error::Result;

/// Counts the calls and read bytes of `inner` under the mount's name.
pub struct Metered {
    inner: Arc<dyn Storage>,
    mount: String,
    metrics: StorageMetrics,
}

impl Metered {
    pub fn new(inner: Arc<dyn Storage>, mount: &str, metrics: StorageMetrics) -> Metered {
        Metered {
            inner,
            mount: mount.to_string(),
            metrics,
        }
    }

    fn count(&self, op: Op) {
        self.metrics
            .backend_requests
            .get_or_create(&MountOp {
                mount: self.mount.clone(),
                op,
            })
            .inc();
    }
}

impl std::fmt::Debug for Metered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered")
            .field("mount", &self.mount)
            .field("inner", &self.inner)
            .finish()
    }
}

#[async_trait]
impl Storage for Metered {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn head(&self, path: &ArtifactPath) -> Result<Meta> {
        self.count(Op::head);
        self.inner.head(path).await
    }

    async fn get(&self, path: &ArtifactPath, opts: GetOptions) -> Result<GetResult> {
        self.count(Op::get);
        let mut res = self.inner.get(path, opts).await?;
        let counter = self
            .metrics
            .backend_read_bytes
            .get_or_create(&MountLabel {
                mount: self.mount.clone(),
            })
            .clone();
        let body: ByteStream = Box::pin(res.body.inspect(move |chunk| {
            if let Ok(c) = chunk {
                counter.inc_by(c.len() as u64);
            }
        }));
        res.body = body;
        Ok(res)
    }

    async fn put(&self, path: &ArtifactPath, upload: Upload) -> Result<PutResult> {
        self.count(Op::put);
        self.inner.put(path, upload).await
    }

    async fn delete(&self, path: &ArtifactPath) -> Result<()> {
        self.count(Op::delete);
        self.inner.delete(path).await
    }

    async fn list(&self, dir: &ArtifactPath, opts: ListOptions) -> Result<ListPage> {
        self.count(Op::list);
        self.inner.list(dir, opts).await
    }

    async fn ready(&self) -> Result<()> {
        self.inner.ready().await
    }

    async fn start(&self) -> Result<()> {
        self.inner.start().await
    }

    async fn check_writable(&self) -> Result<()> {
        self.inner.check_writable().await
    }
}
