//! Gateway configuration files for the tests that mount a real backend: `[limits]`, the
//! `[[mounts]]` entries with their backend tables, the environment variables their credentials
//! are read from (a secret never stands in the file), and starting the real binary on the
//! result. A test states only what differs: a timeout, a part size, a wrong secret.
//!
//! ```ignore
//! let gw = Config::new()
//!     .backend_timeout("4s")
//!     .mount("m", &format!("s3://{}/{prefix}", minio.bucket))
//!     .s3(&minio, &minio.endpoint, &minio.secret_key)
//!     .raw("part_size = 5242880\n")
//!     .start(dir.path(), Some(TOKEN));
//! ```

use std::path::{Path, PathBuf};

use super::minio::Minio;
use super::Gateway;

/// The text of a gateway config and the environment its secrets come from.
#[derive(Default)]
pub struct Config {
    toml: String,
    envs: Vec<(String, String)>,
}

impl Config {
    pub fn new() -> Config {
        Config::default()
    }

    /// TOML text as it is; keys land in the table opened last.
    pub fn raw(mut self, text: &str) -> Config {
        self.toml.push_str(text);
        self
    }

    /// `[limits] backend_timeout` (a duration such as `"4s"`).
    pub fn backend_timeout(self, timeout: &str) -> Config {
        self.raw(&format!("\n[limits]\nbackend_timeout = \"{timeout}\"\n"))
    }

    /// A `[[mounts]]` entry `name` at `url`.
    pub fn mount(self, name: &str, url: &str) -> Config {
        self.raw(&format!(
            "\n[[mounts]]\nname = \"{name}\"\nurl = \"{url}\"\n"
        ))
    }

    /// The mount's anonymous reads allowed.
    pub fn anonymous_read(self) -> Config {
        self.raw("anonymous_read = true\n")
    }

    /// The mount's `[mounts.s3]` table: `endpoint` (MinIO's, or a proxy's in front of it),
    /// MinIO's region and key id, and `secret` (MinIO's, or a wrong one).
    pub fn s3(self, minio: &Minio, endpoint: &str, secret: &str) -> Config {
        let table = format!(
            "\n[mounts.s3]\nendpoint = \"{endpoint}\"\nregion = \"{}\"\n",
            minio.region
        );
        self.raw(&table).credentials(
            "access_key_id",
            &minio.access_key,
            "secret_access_key",
            secret,
        )
    }

    /// The mount's `[mounts.oss]` table, path-style addressing at `endpoint`.
    pub fn oss(self, endpoint: &str, key_id: &str, secret: &str) -> Config {
        let table =
            format!("\n[mounts.oss]\nendpoint = \"{endpoint}\"\naddressing_style = \"path\"\n");
        self.raw(&table)
            .credentials("access_key_id", key_id, "access_key_secret", secret)
    }

    /// The mount's `[mounts.hdfs]` table with these client settings (`"dfs.client.socket-timeout"
    /// = "5000"`).
    pub fn hdfs(self, client_config: &str) -> Config {
        self.raw(&format!(
            "\n[mounts.hdfs]\nconfig = {{ {client_config} }}\n"
        ))
    }

    /// Two keys of the table opened last read from environment variables that this config
    /// sets, named apart for each mount.
    fn credentials(mut self, id_key: &str, id: &str, secret_key: &str, secret: &str) -> Config {
        let n = self.envs.len() / 2;
        let (id_var, secret_var) = (
            format!("AG_TEST_CONFIG_KEY_{n}"),
            format!("AG_TEST_CONFIG_SECRET_{n}"),
        );
        self.toml.push_str(&format!(
            "{id_key} = {{ env = \"{id_var}\" }}\n{secret_key} = {{ env = \"{secret_var}\" }}\n"
        ));
        self.envs.push((id_var, id.to_string()));
        self.envs.push((secret_var, secret.to_string()));
        self
    }

    pub fn text(&self) -> &str {
        &self.toml
    }

    /// Writes the config to `dir/gateway.toml`.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("gateway.toml");
        std::fs::write(&path, &self.toml).unwrap();
        path
    }

    /// Writes the config into `dir` and starts the binary on it, with its credentials and, when
    /// given, `token` as the bearer token for every scope.
    pub fn start(&self, dir: &Path, token: Option<&str>) -> Gateway {
        let path = self.write(dir);
        let mut envs: Vec<(&str, &str)> = self
            .envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(token) = token {
            envs.push(("ARTIFACT_GATEWAY_TOKEN", token));
        }
        Gateway::start(&["--config", path.to_str().unwrap()], &envs)
    }
}
