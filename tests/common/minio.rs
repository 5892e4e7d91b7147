//! MinIO for tests: the shared instance (from `AG_TEST_S3_*`) or a private one started with
//! `tests/servers/minio/start.sh` into its own directory (killed on drop), a plain client that
//! writes as another tool would, and MinIO's own count of bytes it sent.

use std::path::Path;
use std::sync::Arc;

use artifact_gateway::secret::Secret;
use artifact_gateway::storage::registry::S3Options;
use artifact_gateway::storage::{s3, Storage};
use object_store::ObjectStoreExt;

use super::proxy::Proxy;

/// Connection settings of one MinIO.
#[derive(Clone, Debug)]
pub struct Minio {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    pub region: String,
}

impl Minio {
    pub fn from_env() -> Minio {
        Minio {
            endpoint: super::require_env("AG_TEST_S3_ENDPOINT"),
            access_key: super::require_env("AG_TEST_S3_ACCESS_KEY"),
            secret_key: super::require_env("AG_TEST_S3_SECRET_KEY"),
            bucket: super::require_env("AG_TEST_S3_BUCKET"),
            region: std::env::var("AG_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".into()),
        }
    }

    /// The same MinIO reached through another endpoint (a proxy in front of it).
    pub fn via(&self, endpoint: &str) -> Minio {
        Minio {
            endpoint: endpoint.to_string(),
            ..self.clone()
        }
    }

    pub fn options(&self) -> S3Options {
        S3Options {
            region: Some(self.region.clone()),
            endpoint: Some(self.endpoint.clone()),
            access_key_id: Some(Secret::Value(self.access_key.clone())),
            secret_access_key: Some(Secret::Value(self.secret_key.clone())),
            ..Default::default()
        }
    }

    pub fn storage(&self, prefix: &str) -> Arc<dyn Storage> {
        Arc::new(s3::build(&self.bucket, prefix, &self.options()).expect("build the S3 storage"))
    }

    /// A plain client, as another tool writing to the bucket would use.
    pub fn raw(&self) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region(&self.region)
            .with_bucket_name(&self.bucket)
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .build()
            .unwrap()
    }

    /// Writes `bytes` at `key` (a full key, prefix included) with the plain client, as another
    /// tool would.
    pub async fn put_raw(&self, key: &str, bytes: Vec<u8>) -> object_store::PutResult {
        self.raw()
            .put(&object_store::path::Path::from(key), bytes.into())
            .await
            .unwrap_or_else(|e| panic!("raw put of {key}: {e}"))
    }

    /// Writes `objects` (a key below the prefix, its bytes) under a fresh prefix tagged `tag`,
    /// with the plain client; returns the prefix.
    pub async fn stage(&self, tag: &str, objects: &[(&str, &[u8])]) -> String {
        let prefix = super::random_prefix(tag);
        for (key, bytes) in objects {
            self.put_raw(&format!("{prefix}/{key}"), bytes.to_vec())
                .await;
        }
        prefix
    }

    /// [`Minio::stage`], with a counting proxy in front of this MinIO that sends at most
    /// `rate` bytes per second (0: no limit).
    pub async fn stage_behind_proxy(
        &self,
        tag: &str,
        objects: &[(&str, &[u8])],
        rate: u64,
    ) -> Staged {
        let prefix = self.stage(tag, objects).await;
        let proxy = Proxy::in_front_of(&self.endpoint).await;
        proxy.set_rate(rate);
        let via = self.via(&proxy.url());
        Staged { prefix, proxy, via }
    }

    /// Deletes every object under `prefix` (a test's own random prefix, never the bucket).
    pub async fn delete_prefix(&self, prefix: &str) {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        let raw = self.raw();
        let p = object_store::path::Path::from(prefix);
        let keys: Vec<_> = raw
            .list(Some(&p))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .unwrap();
        for k in keys {
            raw.delete(&k).await.unwrap();
        }
    }

    /// MinIO's own count of bytes it sent in answers to S3 requests (its Prometheus metric
    /// `minio_s3_traffic_sent_bytes`; needs a server started with public metrics, see
    /// [`PrivateMinio::start`]).
    pub async fn sent_bytes(&self) -> f64 {
        let url = format!("{}/minio/v2/metrics/cluster", self.endpoint);
        let text = reqwest::get(&url)
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("MinIO metrics at {url}: {e}"))
            .text()
            .await
            .unwrap();
        super::metric_sum(&text, "minio_s3_traffic_sent_bytes", &[])
            .unwrap_or_else(|| panic!("no minio_s3_traffic_sent_bytes in MinIO's metrics:\n{text}"))
    }

    /// [`Minio::sent_bytes`] once it has caught up: MinIO refreshes its metrics every few
    /// seconds, so wait until the count reaches `at_least`, then for one more refresh.
    pub async fn sent_bytes_settled(&self, at_least: f64) -> f64 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.sent_bytes().await < at_least && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        self.sent_bytes().await
    }
}

/// Objects under a fresh prefix, and a counting proxy in front of the MinIO that holds them.
pub struct Staged {
    pub prefix: String,
    pub proxy: Proxy,
    /// The same MinIO, reached through the proxy.
    pub via: Minio,
}

/// A private MinIO (started into its own directory, with public Prometheus metrics) that is
/// killed on drop.
pub struct PrivateMinio {
    pub minio: Minio,
    pub pid: u32,
    _dir: tempfile::TempDir,
}

impl PrivateMinio {
    pub fn start() -> PrivateMinio {
        let dir = super::tempdir();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/minio/start.sh");
        let (code, out, err) = super::run(
            std::process::Command::new(&script)
                .arg(dir.path())
                .env("MINIO_PROMETHEUS_AUTH_TYPE", "public"),
        );
        assert_eq!(
            code, 0,
            "could not start a private MinIO (run tests/servers/minio/install.sh):\n{out}\n{err}"
        );
        let env = std::fs::read_to_string(dir.path().join("minio.env")).unwrap();
        let get = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("{k} missing from minio.env"))
                .to_string()
        };
        let pid: u32 = std::fs::read_to_string(dir.path().join("minio.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let minio = Minio {
            endpoint: get("AG_TEST_S3_ENDPOINT"),
            access_key: get("AG_TEST_S3_ACCESS_KEY"),
            secret_key: get("AG_TEST_S3_SECRET_KEY"),
            bucket: get("AG_TEST_S3_BUCKET"),
            region: get("AG_TEST_S3_REGION"),
        };
        PrivateMinio {
            minio,
            pid,
            _dir: dir,
        }
    }

    pub fn kill(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

impl Drop for PrivateMinio {
    fn drop(&mut self) {
        self.kill();
    }
}
