//! What the backend tests (`backend_*.rs`) share beyond the suite itself: small bodies, puts
//! and listings by relative name, walking every page of a listing, the gateway's JSON answers,
//! and a private server of our own started with the project's `tests/servers/<name>/start.sh`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use artifact_gateway::storage::{
    ArtifactPath, ByteStream, ListOptions, PutResult, Sha256, Storage, Upload,
};
use artifact_gateway::ErrorKind;
use bytes::Bytes;
use futures::StreamExt;

/// A path from a literal.
pub fn at(rel: &str) -> ArtifactPath {
    ArtifactPath::parse(rel).unwrap()
}

/// `data` as a body of one chunk.
pub fn one_chunk(data: &[u8]) -> ByteStream {
    futures::stream::iter(vec![Ok(Bytes::copy_from_slice(data))]).boxed()
}

/// Puts each relative path with its own name as content.
pub async fn put_named(st: &dyn Storage, rels: &[&str]) {
    for rel in rels {
        st.put(&at(rel), Upload::new(one_chunk(rel.as_bytes())))
            .await
            .unwrap_or_else(|e| panic!("put {rel}: {e:?}"));
    }
}

/// Puts `data` at `path` through the gateway's storage and checks that a head reports its
/// digest (what another tool's write must then make disappear).
pub async fn put_recorded(st: &dyn Storage, path: &ArtifactPath, data: &[u8]) -> PutResult {
    let put = st.put(path, Upload::new(one_chunk(data))).await.unwrap();
    assert_eq!(st.head(path).await.unwrap().sha256, Some(Sha256::of(data)));
    put
}

/// The kind of error a plain put of `data` at `rel` fails with.
pub async fn put_refused(st: &dyn Storage, rel: &str, data: &[u8]) -> ErrorKind {
    match st.put(&at(rel), Upload::new(one_chunk(data))).await {
        Ok(r) => panic!("put {rel} succeeded: {r:?}"),
        Err(e) => e.kind(),
    }
}

/// Every name below `dir`, walked in pages of `limit`; checks each page's size and that the
/// walk ends within `bound` pages. Returns the names and the number of pages.
pub async fn walk_pages(
    st: &dyn Storage,
    dir: &ArtifactPath,
    limit: usize,
    bound: usize,
) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut after = None;
    for pages in 1..=bound {
        let page = st
            .list(
                dir,
                ListOptions {
                    limit,
                    after: after.clone(),
                },
            )
            .await
            .unwrap();
        assert!(page.entries.len() <= limit, "a page of {limit} is too long");
        seen.extend(page.entries.iter().map(|e| e.name.clone()));
        match page.next_after {
            Some(n) => after = Some(n),
            None => return (seen, pages),
        }
    }
    panic!("pagination does not end within {bound} pages of {limit}: {seen:?}");
}

/// The names of one listing page of `dir` with default options.
pub async fn names(st: &dyn Storage, dir: &ArtifactPath) -> Vec<String> {
    let page = st.list(dir, ListOptions::default()).await.unwrap();
    page.entries.into_iter().map(|e| e.name).collect()
}

/// A response's status and JSON body; panics naming the body when it is not JSON.
pub async fn json_of(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.text().await.unwrap();
    assert!(
        ct.starts_with("application/json"),
        "a JSON error, got {ct}: {text}"
    );
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    )
}

/// `GET /readyz` of a gateway: status and body.
pub async fn readyz(client: &reqwest::Client, base: &str) -> (u16, serde_json::Value) {
    json_of(client.get(format!("{base}/readyz")).send().await.unwrap()).await
}

/// A server of our own (MinIO, MiniDFS, the OSS stand-in) started into `state` with the
/// project's `start.sh`, which writes `<name>.pid` and `<name>.env`. Stopped on drop.
pub struct PrivateServer {
    pub pid: u32,
    env: BTreeMap<String, String>,
}

impl PrivateServer {
    pub fn start(name: &str, state: &Path) -> PrivateServer {
        let script: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/servers")
            .join(name)
            .join("start.sh");
        let (code, out, err) = crate::common::run(std::process::Command::new(&script).arg(state));
        assert_eq!(
            code,
            0,
            "{} failed (run tests/servers/{name}/install.sh):\n{out}\n{err}",
            script.display()
        );
        let pid = std::fs::read_to_string(state.join(format!("{name}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let env = std::fs::read_to_string(state.join(format!("{name}.env")))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PrivateServer { pid, env }
    }

    /// A variable of the server's env file.
    pub fn var(&self, key: &str) -> String {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from the server's env file"))
            .clone()
    }

    pub fn alive(&self) -> bool {
        alive(self.pid)
    }

    /// Stops the server: TERM (a supervisor stops its JVM), then KILL after 30 s.
    pub fn stop(&self) {
        stop(self.pid)
    }

    /// Kills the server at once (a crash, not a shutdown).
    pub fn kill(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if self.alive() {
            self.stop();
        }
    }
}

fn alive(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// TERM, wait up to 30 s, then KILL.
pub fn stop(pid: u32) {
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if alive(pid) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
}
