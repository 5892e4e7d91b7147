//! Shared test support: start the real `artifact-gateway` binary on a free port, read
//! test-server settings from the environment (failing loudly when a server is missing), and
//! give every test its own random prefix.
#![allow(dead_code)]

pub mod cache;
pub mod config;
pub mod minio;
pub mod mounts;
pub mod proxy;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Path of the binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_artifact-gateway"))
}

/// Reads a test-server variable; a missing one fails the test with what to run.
pub fn require_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: this test needs a real server. Run the whole suite with `tests/run.sh`, which installs \
             and starts MinIO, a MiniDFSCluster, the OSS stand-in and a Flink cluster (see tests/servers/CONTRACT.md)"
        ),
    }
}

/// The HDFS test server (`AG_TEST_HDFS_URL`, written by tests/servers/hdfs/start.sh).
pub fn hdfs_url() -> String {
    require_env("AG_TEST_HDFS_URL")
}

/// The backend spec of `prefix` on the HDFS server at `url`, with default options.
pub fn hdfs_spec(url: &str, prefix: &str) -> artifact_gateway::storage::registry::BackendSpec {
    use artifact_gateway::storage::registry::{BackendOptions, BackendSpec, HdfsOptions};
    let options = BackendOptions {
        hdfs: Some(HdfsOptions::default()),
        ..Default::default()
    };
    BackendSpec::from_url(&format!("{url}/{prefix}"), options).expect("an HDFS spec")
}

/// A fresh random prefix, so runs never see each other's objects.
pub fn random_prefix(tag: &str) -> String {
    format!("ag-test-{tag}-{}", uuid::Uuid::new_v4().simple())
}

/// A gateway over a fresh data directory (with one token for every scope), and a scratch
/// directory beside it. Fields drop in order: the process stops before its directory goes.
pub struct Site {
    pub gw: Gateway,
    pub data: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl Site {
    pub fn start(token: &str) -> Site {
        Site::serve(&[], &[("ARTIFACT_GATEWAY_TOKEN", token)])
    }

    /// `serve --data DATA ARGS` with these environment variables.
    pub fn serve(args: &[&str], envs: &[(&str, &str)]) -> Site {
        Site::serve_in(tempdir(), args, envs)
    }

    /// HTTPS with a fresh self-signed certificate for `localhost` (made in `work`); returns the
    /// certificate's PEM file too.
    pub fn start_tls(envs: &[(&str, &str)]) -> (Site, PathBuf) {
        let work = tempdir();
        let (cert, key) = self_signed(work.path());
        let (c, k) = (cert.to_str().unwrap(), key.to_str().unwrap());
        let site = Site::serve_in(work, &["--tls-cert", c, "--tls-key", k], envs);
        assert!(site.gw.url.starts_with("https://"), "{}", site.gw.url);
        (site, cert)
    }

    fn serve_in(work: tempfile::TempDir, args: &[&str], envs: &[(&str, &str)]) -> Site {
        let data = tempdir();
        let mut all = vec!["--data", data.path().to_str().unwrap()];
        all.extend_from_slice(args);
        let gw = Gateway::start(&all, envs);
        Site { gw, data, work }
    }
}

/// A running gateway process; killed on drop.
pub struct Gateway {
    pub child: Child,
    /// `http://127.0.0.1:PORT` (or https).
    pub url: String,
    pub port: u16,
    pub stderr_lines: mpsc::Receiver<String>,
    /// The stderr lines before the listening line (start-up messages).
    pub startup_lines: Vec<String>,
}

impl Gateway {
    /// Starts `artifact-gateway serve <args> --listen 127.0.0.1:0` and waits for its listening line.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Gateway {
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"]);
        cmd.env_remove("ARTIFACT_GATEWAY_TOKEN")
            .env_remove("ARTIFACT_GATEWAY_CONFIG")
            .env("RUST_LOG", "info");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn artifact-gateway");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(idx) = line.find("listening on ") {
                        let url: String = line[idx + "listening on ".len()..]
                            .chars()
                            .take_while(|c| !c.is_whitespace() && *c != '"')
                            .collect();
                        let port = url
                            .rsplit(':')
                            .next()
                            .unwrap()
                            .trim_end_matches('/')
                            .parse()
                            .unwrap();
                        return Gateway {
                            child,
                            url,
                            port,
                            stderr_lines: rx,
                            startup_lines: seen,
                        };
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "the gateway did not start listening; its stderr:\n{}",
                        seen.join("\n")
                    );
                }
            }
        }
    }

    /// The URL of an artifact: `<url>/artifacts/<mount>/<path>`.
    pub fn artifact(&self, mount: &str, path: &str) -> String {
        format!("{}/artifacts/{}/{}", self.url, mount, path)
    }

    /// Every stderr line so far.
    pub fn drain_logs(&self) -> Vec<String> {
        self.stderr_lines.try_iter().collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, written to `dir/cert.pem` and
/// `dir/key.pem`; returns (certificate, key) paths.
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let cert = rcgen::generate_simple_self_signed(names).expect("generate a certificate");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// A temporary directory that lives as long as the value.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Writes `len` bytes of a deterministic pattern to `path` and returns their SHA-256 hex.
pub fn write_pattern_file(path: &Path, len: u64) -> String {
    use sha2::Digest;
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut written = 0u64;
    let mut seed = 0x9E3779B97F4A7C15u64;
    while written < len {
        for chunk in buf.chunks_mut(8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let bytes = seed.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        let n = ((len - written) as usize).min(buf.len());
        f.write_all(&buf[..n]).unwrap();
        h.update(&buf[..n]);
        written += n as u64;
    }
    f.flush().unwrap();
    hex::encode(h.finalize())
}

/// SHA-256 hex of a file.
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

/// The binary with a clean environment (no inherited gateway variables).
pub fn cli() -> Command {
    let mut c = Command::new(bin());
    for var in [
        "ARTIFACT_GATEWAY_TOKEN",
        "ARTIFACT_GATEWAY_TOKEN_FILE",
        "ARTIFACT_GATEWAY_CA_FILE",
        "ARTIFACT_GATEWAY_SERVER",
        "ARTIFACT_GATEWAY_DEST",
        "ARTIFACT_GATEWAY_MANIFEST",
    ] {
        c.env_remove(var);
    }
    c
}

/// Each mount's backend kind, in order: `local`, `s3`, `oss` or `hdfs`.
pub fn backend_kinds(config: &artifact_gateway::config::Config) -> Vec<&'static str> {
    use artifact_gateway::storage::registry::BackendSpec;
    let kind = |m: &artifact_gateway::config::MountConfig| match m.backend().unwrap() {
        BackendSpec::Local { .. } => "local",
        BackendSpec::S3 { .. } => "s3",
        BackendSpec::Oss { .. } => "oss",
        BackendSpec::Hdfs { .. } => "hdfs",
    };
    config.mounts.iter().map(kind).collect()
}

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `operator-fetch.sh [-D… JVM flags] <uri> <dir> [headers]`: the Flink Kubernetes Operator's
/// own `HttpArtifactFetcher`, built by tests/flink/install.sh.
pub fn operator_fetcher() -> PathBuf {
    let runner = root().join("target/test-servers/cache/flink/operator-fetch.sh");
    assert!(
        runner.exists(),
        "{} is missing: run tests/flink/install.sh (it builds the Flink operator's HttpArtifactFetcher helper)",
        runner.display()
    );
    runner
}

/// Runs a command, returning (status code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fails with an install hint when a client program is missing.
pub fn require_program(name: &str, install_hint: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is not installed: {install_hint} (tests/run.sh installs it)"
    );
}

/// The sum of every series of metric `name` (OpenMetrics text) whose labels include all of
/// `labels`; `None` when no such series exists.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        if !labels
            .iter()
            .all(|(k, v)| label_text.split(',').any(|kv| kv == format!("{k}=\"{v}\"")))
        {
            continue;
        }
        let v: f64 = value.parse().ok()?;
        *found.get_or_insert(0.0) += v;
    }
    found
}

/// A metric of a running gateway (see [`metric_sum`]); 0 when the series does not exist yet.
pub async fn gateway_metric(base_url: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = reqwest::get(format!("{base_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metric_sum(&text, name, labels).unwrap_or(0.0)
}

/// A response body read chunk by chunk (each within `patience`, else the test fails), counting
/// the bytes and noting whether it broke: for tests that cut a download and check that the
/// client saw the cut.
pub struct BodyReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    patience: Duration,
    /// The bytes read so far.
    pub got: u64,
    /// The body ended with an error (rather than at its end).
    pub failed: bool,
}

impl BodyReader {
    pub fn new(resp: reqwest::Response, patience: Duration) -> BodyReader {
        use futures::StreamExt;
        BodyReader {
            stream: resp.bytes_stream().boxed(),
            patience,
            got: 0,
            failed: false,
        }
    }

    /// Reads the next chunk: false once the body has ended or broken.
    pub async fn next(&mut self) -> bool {
        use futures::StreamExt;
        let next = tokio::time::timeout(self.patience, self.stream.next())
            .await
            .unwrap_or_else(|_| panic!("the download hung for {:?}", self.patience));
        match next {
            Some(Ok(c)) => {
                self.got += c.len() as u64;
                true
            }
            Some(Err(_)) => {
                self.failed = true;
                false
            }
            None => false,
        }
    }
}
