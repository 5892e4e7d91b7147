//! `artifact-gateway fetch`, the real binary, against a real gateway process (and, for direct
//! storage sources, against files through `file://`). What the gateway's JSON access log says
//! was sent is the evidence for "not downloaded again" and "only the rest was requested".

mod common;

use std::os::unix::fs::MetadataExt;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{cli, run, Gateway, Site};
use serde_json::Value;

const TOKEN: &str = "fetch-test-token";

/// A gateway with JSON logs, a data dir and a work dir.
struct Env {
    gw: Gateway,
    data: tempfile::TempDir,
    work: tempfile::TempDir,
    log: RefCell<Vec<Value>>,
}

impl Env {
    fn start() -> Env {
        let Site { data, work, gw } = Site::serve(
            &["--log-format", "json"],
            &[("ARTIFACT_GATEWAY_TOKEN", TOKEN)],
        );
        Env {
            gw,
            data,
            work,
            log: RefCell::new(Vec::new()),
        }
    }

    fn url(&self, path: &str) -> String {
        self.gw.artifact("default", path)
    }

    /// A gateway holding one artifact, `bytes` at `path`.
    fn serving(path: &str, bytes: &[u8]) -> Env {
        let env = Env::start();
        env.put(path, bytes);
        env
    }

    fn dest(&self) -> PathBuf {
        self.work.path().join("usrlib")
    }

    /// Fetches `path` into `dest`, which must succeed; returns the fetch's stderr.
    fn fetch_ok(&self, dest: &Path, path: &str) -> String {
        let (code, _, err) = fetch(dest, &[&self.url(path)]);
        assert_eq!(code, 0, "{err}");
        err
    }

    /// The destination directory holding what an earlier, interrupted fetch of `name` left:
    /// its partial file `.NAME.part` and the ETag that part belongs to.
    fn dest_with_part(&self, name: &str, part: &[u8], etag: &str) -> PathBuf {
        let dest = self.dest();
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::write(dest.join(format!(".{name}.part")), part).unwrap();
        std::fs::write(dest.join(format!(".{name}.part.etag")), etag).unwrap();
        dest
    }

    /// Uploads through the HTTP API (so the gateway records the SHA-256); returns the quoted ETag.
    fn put(&self, path: &str, bytes: &[u8]) -> String {
        let resp = reqwest::blocking::Client::new()
            .put(self.url(path))
            .bearer_auth(TOKEN)
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert!(resp.status().is_success(), "PUT {path}: {}", resp.status());
        resp.headers()["etag"].to_str().unwrap().to_string()
    }

    /// Access-log entries for `path` so far, waiting until `want` holds (or 5 s pass).
    fn access(&self, path: &str, want: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let url_path = format!("/artifacts/default/{path}");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            for line in self.gw.drain_logs() {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v.get("status").is_some() && v.get("method").is_some() {
                        self.log.borrow_mut().push(v);
                    }
                }
            }
            let hits: Vec<Value> = self
                .log
                .borrow()
                .iter()
                .filter(|v| v["path"] == url_path.as_str())
                .cloned()
                .collect();
            if want(&hits) || Instant::now() > deadline {
                return hits;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Forgets the access log so far.
    fn clear_access(&self) {
        let _ = self.access("", |_| true);
        self.log.borrow_mut().clear();
    }
}

fn fetch(dest: &Path, args: &[&str]) -> (i32, String, String) {
    run(cli().arg("fetch").arg("--dest").arg(dest).args(args))
}

/// [`fetch`] timed: its exit code, its stderr, and how long it took.
fn fetch_timed(dest: &Path, args: &[&str]) -> (i32, String, Duration) {
    let started = Instant::now();
    let (code, _, err) = fetch(dest, args);
    (code, err, started.elapsed())
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed)
        .collect()
}

fn sha_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Names in a directory, sorted (dot-files included).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The one GET among a fetch's recorded requests.
fn the_get(hits: &[Value]) -> &Value {
    hits.iter().find(|v| v["method"] == "GET").unwrap()
}

fn count(hits: &[Value], method: &str) -> usize {
    hits.iter().filter(|v| v["method"] == method).count()
}

#[test]
fn fetches_several_artifacts_byte_identical_into_a_new_directory() {
    let env = Env::start();
    let jar = pattern(3 << 20, 1);
    let sql = b"SELECT 1;\n".to_vec();
    let udf = pattern(70_001, 2);
    env.put("jobs/wordcount/1.4.2/wordcount.jar", &jar);
    env.put("sql/run.sql", &sql);
    env.put("udfs/with space+plus.jar", &udf);
    let dest = env.work.path().join("a/b/usrlib");
    let (code, _, err) = fetch(
        &dest,
        &[
            "--parallel",
            "2",
            &env.url("jobs/wordcount/1.4.2/wordcount.jar"),
            &env.url("sql/run.sql"),
            &env.url("udfs/with%20space%2Bplus.jar"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(dest.join("wordcount.jar")).unwrap(), jar);
    assert_eq!(std::fs::read(dest.join("run.sql")).unwrap(), sql);
    assert_eq!(
        std::fs::read(dest.join("with space+plus.jar")).unwrap(),
        udf
    );
    assert_eq!(
        listing(&dest),
        ["run.sql", "with space+plus.jar", "wordcount.jar"],
        "no temporary files left"
    );
    assert_eq!(err.matches("matches the served digest").count(), 3, "{err}");
    assert!(
        err.contains("3 artifacts") && err.contains("3 downloaded") && err.contains("0 failed"),
        "{err}"
    );
}

#[test]
fn manifests_in_yaml_and_json_with_names_and_pins() {
    let env = Env::start();
    let a = pattern(1 << 20, 3);
    let b = pattern(12_345, 4);
    env.put("jobs/a.jar", &a);
    env.put("jobs/b.jar", &b);
    let yaml = format!(
        "# as a ConfigMap carries it\nartifacts:\n  - source: {}\n    sha256: {}\n  - source: {}\n    name: renamed.jar\n",
        env.url("jobs/a.jar"),
        sha_hex(&a),
        env.url("jobs/b.jar")
    );
    let json = serde_json::json!({ "artifacts": [
        { "source": env.url("jobs/a.jar"), "sha256": sha_hex(&a).to_uppercase() },
        { "source": env.url("jobs/b.jar"), "name": "renamed.jar", "sha256": sha_hex(&b) },
    ]})
    .to_string();
    let yaml_file = env.work.path().join("artifacts.yaml");
    let json_file = env.work.path().join("artifacts.json");
    std::fs::write(&yaml_file, yaml).unwrap();
    std::fs::write(&json_file, json).unwrap();
    for (manifest, dir) in [(&yaml_file, "from-yaml"), (&json_file, "from-json")] {
        let dest = env.work.path().join(dir);
        let (code, _, err) = fetch(&dest, &["--manifest", manifest.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(std::fs::read(dest.join("a.jar")).unwrap(), a);
        assert_eq!(std::fs::read(dest.join("renamed.jar")).unwrap(), b);
        assert_eq!(listing(&dest), ["a.jar", "renamed.jar"]);
        assert!(
            err.contains("matches the pinned and the served digest"),
            "{err}"
        );
    }
    // The manifest can also come on stdin.
    let dest = env.work.path().join("from-stdin");
    let out = cli()
        .arg("fetch")
        .args(["--manifest", "-", "--dest", dest.to_str().unwrap()])
        .stdin(std::fs::File::open(&yaml_file).unwrap())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(dest.join("renamed.jar")).unwrap(), b);
}

#[test]
fn pinned_digest_mismatch_fails_and_leaves_no_file() {
    let env = Env::start();
    let good = pattern(500_000, 5);
    env.put("jobs/good.jar", &good);
    env.put("jobs/bad.jar", b"the real content");
    let wrong = sha_hex(b"what the user expected");
    let dest = env.dest();
    let (code, _, err) = fetch(&dest, &["--sha256", &wrong, &env.url("jobs/bad.jar")]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("bad.jar") && err.contains("mismatch"), "{err}");
    assert!(
        listing(&dest).is_empty(),
        "nothing left behind: {:?}",
        listing(&dest)
    );

    // Same for a file written behind the gateway's back (no served digest): the body is
    // downloaded, hashed, and thrown away.
    std::fs::write(
        env.data.path().join("plain.jar"),
        b"written by another tool",
    )
    .unwrap();
    let (code, _, err) = fetch(&dest, &["--sha256", &wrong, &env.url("plain.jar")]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("plain.jar") && err.contains("hash to"),
        "{err}"
    );
    assert!(listing(&dest).is_empty(), "{:?}", listing(&dest));

    // In a manifest, the good artifact still lands; the bad one does not; the exit code says so.
    let manifest = env.work.path().join("m.yaml");
    std::fs::write(
        &manifest,
        format!(
            "artifacts:\n- source: {}\n  sha256: {}\n- source: {}\n  sha256: {wrong}\n",
            env.url("jobs/good.jar"),
            sha_hex(&good),
            env.url("jobs/bad.jar")
        ),
    )
    .unwrap();
    let (code, _, err) = fetch(&dest, &["--manifest", manifest.to_str().unwrap()]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("FAILED bad.jar"), "{err}");
    assert_eq!(listing(&dest), ["good.jar"]);
}

#[test]
fn a_present_file_with_the_right_digest_is_not_downloaded_again() {
    let jar = pattern(2 << 20, 6);
    let env = Env::serving("jobs/keep.jar", &jar);
    let dest = env.dest();
    let url = env.url("jobs/keep.jar");
    let (code, _, err) = fetch(&dest, &[&url]);
    assert_eq!(code, 0, "{err}");
    let mtime = std::fs::metadata(dest.join("keep.jar"))
        .unwrap()
        .modified()
        .unwrap();
    let hits = env.access("jobs/keep.jar", |h| count(h, "GET") == 1);
    assert_eq!(count(&hits, "GET"), 1);
    let get = the_get(&hits);
    assert_eq!(get["principal"], "anonymous", "no token was sent: {get}");
    env.clear_access();

    std::thread::sleep(Duration::from_millis(20));
    let (code, _, err) = fetch(&dest, &[&url]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("up to date keep.jar") && err.contains("matches the served digest"),
        "{err}"
    );
    let hits = env.access("jobs/keep.jar", |h| count(h, "HEAD") == 1);
    assert_eq!(
        (count(&hits, "HEAD"), count(&hits, "GET")),
        (1, 0),
        "only a HEAD: {hits:?}"
    );
    assert_eq!(
        std::fs::metadata(dest.join("keep.jar"))
            .unwrap()
            .modified()
            .unwrap(),
        mtime,
        "the file was not rewritten"
    );

    // With a pinned digest the source is not even asked.
    env.clear_access();
    let (code, _, err) = fetch(&dest, &["--sha256", &sha_hex(&jar), &url]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("matches the pinned digest"), "{err}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        env.access("jobs/keep.jar", |_| false).is_empty(),
        "no request at all"
    );
}

#[test]
fn a_present_file_with_the_wrong_content_is_replaced() {
    let jar = pattern(1 << 20, 7);
    let env = Env::serving("jobs/fix.jar", &jar);
    let dest = env.dest();
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("fix.jar"), b"stale or corrupt").unwrap();
    let err = env.fetch_ok(&dest, "jobs/fix.jar");
    assert!(err.contains("fetched fix.jar"), "{err}");
    assert_eq!(std::fs::read(dest.join("fix.jar")).unwrap(), jar);
    let hits = env.access("jobs/fix.jar", |h| count(h, "GET") == 1);
    assert_eq!(
        (count(&hits, "HEAD"), count(&hits, "GET")),
        (1, 1),
        "{hits:?}"
    );
}

#[test]
fn an_interrupted_download_resumes_with_range_and_if_range() {
    let env = Env::start();
    let jar = pattern(4 << 20, 8);
    let etag = env.put("jobs/big.jar", &jar);
    let prefix = (1 << 20) + 12_345;
    let dest = env.dest_with_part("big.jar", &jar[..prefix], &format!("{etag}\n"));

    let err = env.fetch_ok(&dest, "jobs/big.jar");
    assert!(err.contains("resumed at"), "{err}");
    assert_eq!(
        std::fs::read(dest.join("big.jar")).unwrap(),
        jar,
        "whole and identical"
    );
    assert_eq!(listing(&dest), ["big.jar"], "part and etag files are gone");
    let hits = env.access("jobs/big.jar", |h| count(h, "GET") == 1);
    let get = the_get(&hits);
    assert_eq!(get["status"], 206, "{get}");
    assert_eq!(
        get["bytes"].as_u64().unwrap(),
        (jar.len() - prefix) as u64,
        "only the rest was sent: {get}"
    );
}

#[test]
fn a_changed_artifact_restarts_from_zero() {
    let env = Env::start();
    let (old, new) = (pattern(2 << 20, 9), pattern(3 << 20, 10));
    let old_etag = env.put("jobs/moving.jar", &old);
    let new_etag = env.put("jobs/moving.jar", &new);
    assert_ne!(old_etag, new_etag);
    let dest = env.dest_with_part("moving.jar", &old[..1 << 20], &old_etag);
    env.clear_access();

    env.fetch_ok(&dest, "jobs/moving.jar");
    assert_eq!(std::fs::read(dest.join("moving.jar")).unwrap(), new);
    let hits = env.access("jobs/moving.jar", |h| count(h, "GET") == 1);
    let get = the_get(&hits);
    assert_eq!(
        get["status"], 200,
        "If-Range failed, so the whole new version came: {get}"
    );
    assert_eq!(get["bytes"].as_u64().unwrap(), new.len() as u64);
    assert_eq!(listing(&dest), ["moving.jar"]);
}

#[test]
fn a_corrupt_partial_file_is_caught_by_the_digest_and_fetched_again() {
    let env = Env::start();
    let jar = pattern(2 << 20, 11);
    let etag = env.put("jobs/c.jar", &jar);
    let mut prefix = jar[..1 << 20].to_vec();
    prefix[1000] ^= 0xff; // a flipped byte in the kept prefix
    let dest = env.dest_with_part("c.jar", &prefix, &etag);
    let err = env.fetch_ok(&dest, "jobs/c.jar");
    assert!(err.contains("from the first byte"), "{err}");
    assert_eq!(std::fs::read(dest.join("c.jar")).unwrap(), jar);
    let hits = env.access("jobs/c.jar", |h| count(h, "GET") == 2);
    let statuses: Vec<_> = hits
        .iter()
        .filter(|v| v["method"] == "GET")
        .map(|v| v["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [206, 200], "{hits:?}");
}

#[test]
fn a_wrong_token_fails_with_a_clear_message_and_a_token_file_is_used() {
    let env = Env::start();
    env.put("jobs/t.jar", b"token test");
    let dest = env.dest();
    let url = env.url("jobs/t.jar");
    let started = Instant::now();
    let (code, _, err) = run(cli().env("ARTIFACT_GATEWAY_TOKEN", "wrong").args([
        "fetch",
        "--dest",
        dest.to_str().unwrap(),
        &url,
    ]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("401")
            && err.contains("bearer token is not valid")
            && err.contains("--token-file"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a 401 is not retried"
    );
    assert!(!dest.join("t.jar").exists());

    let token_file = env.work.path().join("token");
    std::fs::write(&token_file, "also-wrong\n").unwrap();
    let (code, _, err) = fetch(&dest, &["--token-file", token_file.to_str().unwrap(), &url]);
    assert_eq!(code, 3, "{err}");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let (code, _, err) = fetch(&dest, &["--token-file", token_file.to_str().unwrap(), &url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(dest.join("t.jar")).unwrap(), b"token test");

    // The access log names who asked: the token (by its name) once it was accepted, nobody
    // for the refused attempts.
    let hits = env.access("jobs/t.jar", |h| h.iter().any(|v| v["status"] == 200));
    assert!(hits.iter().any(|v| v["status"] == 401), "{hits:?}");
    for v in &hits {
        let who = (v["status"] != 401).then_some("token:ARTIFACT_GATEWAY_TOKEN");
        assert_eq!(v["principal"].as_str(), who, "{v}");
    }
}

#[test]
fn not_found_fails_at_once_with_exit_3() {
    let env = Env::start();
    let started = Instant::now();
    let (code, _, err) = fetch(&env.dest(), &[&env.url("jobs/missing.jar")]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("missing.jar") && err.contains("404"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn an_unreachable_server_fails_within_the_deadline_with_exit_5() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dest = common::tempdir();
    let (code, err, took) = fetch_timed(
        dest.path(),
        &[
            "--deadline",
            "3s",
            &format!("http://127.0.0.1:{port}/artifacts/default/x.jar"),
        ],
    );
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("cannot connect") && err.contains("retrying x.jar"),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(8),
        "took {took:?}"
    );
}

/// A hung artifact host: it accepts, sends headers and part of the body, then goes silent.
/// (A fault to inject, not a stand-in for the gateway: no real server can be told to stall.)
#[test]
fn a_stalled_body_times_out_and_never_shows_a_partial_file() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nETag: \"v1\"\r\n\r\n");
            let _ = s.write_all(&[7u8; 1000]);
            held.push(s); // keep it open, silent
        }
    });
    let dest = common::tempdir();
    let (code, err, took) = fetch_timed(
        dest.path(),
        &[
            "--read-timeout",
            "1s",
            "--deadline",
            "4s",
            &format!("http://127.0.0.1:{port}/artifacts/default/slow.jar"),
        ],
    );
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("slow.jar") && (err.contains("timed out") || err.contains("no data")),
        "{err}"
    );
    assert!(took < Duration::from_secs(9), "took {took:?}");
    let names = listing(dest.path());
    assert!(
        !names.contains(&"slow.jar".to_string()),
        "never a partial file under the final name: {names:?}"
    );
    assert!(
        names.contains(&".slow.jar.part".to_string()),
        "the partial download is kept for a resume: {names:?}"
    );
}

#[test]
fn direct_file_sources_use_the_storage_layer() {
    let work = common::tempdir();
    let src_dir = work.path().join("store");
    std::fs::create_dir_all(&src_dir).unwrap();
    let jar = pattern(300_000, 12);
    let sql = b"INSERT INTO sink SELECT * FROM src;\n".to_vec();
    std::fs::write(src_dir.join("plain.jar"), &jar).unwrap();
    std::fs::write(src_dir.join("job.sql"), &sql).unwrap();
    let jar_url = url::Url::from_file_path(src_dir.join("plain.jar")).unwrap();
    let sql_url = url::Url::from_file_path(src_dir.join("job.sql")).unwrap();

    let dest = work.path().join("usrlib");
    let (code, _, err) = fetch(&dest, &[jar_url.as_str(), sql_url.as_str()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(dest.join("plain.jar")).unwrap(), jar);
    assert_eq!(std::fs::read(dest.join("job.sql")).unwrap(), sql);
    assert!(
        err.contains("not verified"),
        "plain files carry no digest: {err}"
    );

    // Without a digest, a restart keeps a file with the source's size and modification time
    // (the quick check `wget -N` makes) instead of downloading it again...
    let before = std::fs::metadata(dest.join("plain.jar")).unwrap();
    let (code, _, err) = fetch(&dest, &[jar_url.as_str()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("up to date plain.jar") && err.contains("same size and modification time"),
        "{err}"
    );
    let after = std::fs::metadata(dest.join("plain.jar")).unwrap();
    assert_eq!(
        (before.ino(), before.modified().unwrap()),
        (after.ino(), after.modified().unwrap()),
        "not rewritten"
    );
    // ...and a source that changed (same size, new content, later mtime) is downloaded again.
    let changed = pattern(300_000, 99);
    std::fs::write(src_dir.join("plain.jar"), &changed).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(src_dir.join("plain.jar"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    let (code, _, err) = fetch(&dest, &[jar_url.as_str()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("fetched plain.jar"), "{err}");
    assert_eq!(std::fs::read(dest.join("plain.jar")).unwrap(), changed);
    std::fs::write(src_dir.join("plain.jar"), &jar).unwrap();
    let (code, _, err) = fetch(&dest, &[jar_url.as_str()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(dest.join("plain.jar")).unwrap(), jar);

    // Pins work for direct sources: a match is verified (and kept on the next run), a
    // mismatch is exit 4 with nothing left; a missing file is exit 3.
    let (code, _, err) = fetch(&dest, &["--sha256", &sha_hex(&jar), jar_url.as_str()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("up to date plain.jar") && err.contains("matches the pinned digest"),
        "{err}"
    );
    let other = work.path().join("d2");
    let (code, _, err) = fetch(&other, &["--sha256", &sha_hex(b"nope"), jar_url.as_str()]);
    assert_eq!(code, 4, "{err}");
    assert!(listing(&other).is_empty());
    let missing = url::Url::from_file_path(src_dir.join("missing.jar")).unwrap();
    let (code, _, err) = fetch(&work.path().join("d3"), &[missing.as_str()]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("missing.jar"), "{err}");
}

#[test]
fn usage_errors_exit_2_before_any_download() {
    let dest = common::tempdir();
    let d = dest.path();
    let sha = sha_hex(b"x");
    for (args, needle) in [
        (
            vec!["--sha256", sha.as_str(), "http://h/a.jar", "http://h/b.jar"],
            "exactly one",
        ),
        (
            vec!["http://h/a.jar", "https://h2/x/a.jar"],
            "two artifacts would be saved as \"a.jar\"",
        ),
        (
            vec!["--name", "../evil.jar", "http://h/a.jar"],
            "single file name",
        ),
        (vec!["http://h/artifacts/m/"], "does not end in a file name"),
        (vec!["ftp://h/a.jar"], "unsupported scheme"),
        (vec!["--sha256", "abc", "http://h/a.jar"], "sha256"),
        (
            vec![
                "--manifest",
                "/nonexistent.yaml",
                "--name",
                "x.jar",
                "http://h/a.jar",
            ],
            "exactly one",
        ),
        (
            vec!["--ca-file", "/nonexistent.pem", "http://h/a.jar"],
            "--ca-file",
        ),
        (vec!["--manifest", "/nonexistent.yaml"], "manifest"),
        (vec![], "nothing to fetch"),
    ] {
        let (code, _, err) = fetch(d, &args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in {err}"
        );
    }
    let bad = d.join("bad.yaml");
    std::fs::write(
        &bad,
        "artifacts:\n  - source: http://h/a.jar\n    shaa256: x\n",
    )
    .unwrap();
    let (code, _, err) = fetch(&d.join("out"), &["--manifest", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("shaa256"), "unknown keys are named: {err}");
    assert!(!d.join("out").exists());
}

#[test]
fn tls_with_a_private_certificate_needs_ca_file() {
    let (site, cert) = Site::start_tls(&[("ARTIFACT_GATEWAY_TOKEN", TOKEN)]);
    let (gw, work) = (&site.gw, &site.work);
    let jar = pattern(1 << 20, 14);
    let local = work.path().join("tls.jar");
    std::fs::write(&local, &jar).unwrap();
    let server = format!("https://localhost:{}", gw.port);
    // Upload with the admin CLI, trusting the certificate.
    let (code, _, err) = run(cli().env("ARTIFACT_GATEWAY_TOKEN", TOKEN).args([
        "put",
        "--server",
        &server,
        "--ca-file",
        cert.to_str().unwrap(),
        local.to_str().unwrap(),
        "default/jobs/tls.jar",
    ]));
    assert_eq!(code, 0, "{err}");

    let url = format!("{server}/artifacts/default/jobs/tls.jar");
    let dest = work.path().join("out");
    let (code, _, err) = fetch(&dest, &["--ca-file", cert.to_str().unwrap(), &url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(dest.join("tls.jar")).unwrap(), jar);
    assert!(err.contains("matches the served digest"), "{err}");

    let dest2 = work.path().join("out2");
    let started = Instant::now();
    let (code, _, err) = fetch(&dest2, &[&url]);
    assert_eq!(
        code, 3,
        "an untrusted certificate is refused, not retried: {err}"
    );
    assert!(
        err.contains("certificate") && err.contains("--ca-file"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!dest2.join("tls.jar").exists());
}

#[test]
fn a_destination_that_cannot_be_created_is_a_local_failure_exit_1() {
    let env = Env::start();
    env.put("jobs/a.jar", b"a");
    let blocker = env.work.path().join("not-a-dir");
    std::fs::write(&blocker, b"a file where a directory should be").unwrap();
    let (code, _, err) = fetch(&blocker.join("usrlib"), &[&env.url("jobs/a.jar")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot create destination directory"), "{err}");
}

/// Stores `files` through the registry (the same path as a gateway mount, so digests are
/// recorded) under `base_url`, e.g. `s3://bucket/prefix`; returns each file's ETag as the
/// store reports it.
fn store_through_registry(
    base_url: &str,
    options: artifact_gateway::storage::registry::BackendOptions,
    files: &[(&str, &[u8])],
) -> Vec<String> {
    use artifact_gateway::storage::registry::{self, BackendSpec};
    use artifact_gateway::storage::{ArtifactPath, ByteStream, Upload};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let spec = BackendSpec::from_url(base_url, options).unwrap();
        let storage = registry::build(&spec).await.unwrap();
        let mut etags = Vec::new();
        for (path, bytes) in files {
            let body: ByteStream = Box::pin(futures::stream::iter(vec![Ok(
                bytes::Bytes::copy_from_slice(bytes),
            )]));
            let res = storage
                .put(&ArtifactPath::parse(path).unwrap(), Upload::new(body))
                .await
                .unwrap();
            etags.push(res.meta.etag);
        }
        etags
    })
}

/// Direct `s3://` sources against a real MinIO, configured only by the environment a pod
/// would have (`AWS_*`).
#[test]
fn direct_s3_source_with_environment_credentials() {
    use artifact_gateway::secret::Secret;
    use artifact_gateway::storage::registry::{BackendOptions, S3Options};
    let endpoint = common::require_env("AG_TEST_S3_ENDPOINT");
    let access = common::require_env("AG_TEST_S3_ACCESS_KEY");
    let secret = common::require_env("AG_TEST_S3_SECRET_KEY");
    let bucket = common::require_env("AG_TEST_S3_BUCKET");
    let region = std::env::var("AG_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".into());
    let prefix = common::random_prefix("fetch-s3");
    let jar = pattern(3 << 20, 21);
    let sql = b"SELECT 42;\n".to_vec();
    let options = BackendOptions {
        s3: Some(S3Options {
            region: Some(region.clone()),
            endpoint: Some(endpoint.clone()),
            access_key_id: Some(Secret::Value(access.clone())),
            secret_access_key: Some(Secret::Value(secret.clone())),
            ..Default::default()
        }),
        ..Default::default()
    };
    let etags = store_through_registry(
        &format!("s3://{bucket}/{prefix}"),
        options,
        &[("udfs/u.jar", &jar), ("sql/q.sql", &sql)],
    );
    let s3 = |path: &str| format!("s3://{bucket}/{prefix}/{path}");
    let with_env = |secret: &str| {
        let mut c = cli();
        c.env("AWS_ACCESS_KEY_ID", &access)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_ENDPOINT", &endpoint)
            .env("AWS_REGION", &region)
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ALLOW_HTTP")
            .env_remove("AWS_PROFILE");
        c
    };
    let work = common::tempdir();
    let dest = work.path().join("usrlib");
    let (code, _, err) = run(with_env(&secret)
        .arg("fetch")
        .arg("--dest")
        .arg(&dest)
        .args([s3("udfs/u.jar"), s3("sql/q.sql")]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(dest.join("u.jar")).unwrap(), jar);
    assert_eq!(std::fs::read(dest.join("q.sql")).unwrap(), sql);
    assert_eq!(
        err.matches("matches the served digest").count(),
        2,
        "digests recorded at put are checked: {err}"
    );

    // Resume against S3: a ranged read of the same version (the store's own ETag).
    let dest2 = work.path().join("resume");
    std::fs::create_dir_all(&dest2).unwrap();
    std::fs::write(dest2.join(".u.jar.part"), &jar[..1 << 20]).unwrap();
    std::fs::write(dest2.join(".u.jar.part.etag"), &etags[0]).unwrap();
    let (code, _, err) = run(with_env(&secret)
        .arg("fetch")
        .arg("--dest")
        .arg(&dest2)
        .arg(s3("udfs/u.jar")));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("resumed at 1.0 MiB"), "{err}");
    assert_eq!(std::fs::read(dest2.join("u.jar")).unwrap(), jar);

    // A missing key is refused at once; wrong credentials are refused, not retried.
    let started = Instant::now();
    let (code, _, err) = run(with_env(&secret)
        .arg("fetch")
        .arg("--dest")
        .arg(work.path().join("m"))
        .arg(s3("udfs/missing.jar")));
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = run(with_env("wrong-secret")
        .args(["fetch", "--deadline", "20s", "--dest"])
        .arg(work.path().join("w"))
        .arg(s3("udfs/u.jar")));
    assert_eq!(code, 3, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

/// Direct `hdfs://` sources against a real MiniDFSCluster.
#[test]
fn direct_hdfs_source() {
    use artifact_gateway::storage::registry::{BackendOptions, HdfsOptions};
    let hdfs = common::require_env("AG_TEST_HDFS_URL");
    let prefix = common::random_prefix("fetch-hdfs");
    let jar = pattern(2 << 20, 22);
    let options = BackendOptions {
        hdfs: Some(HdfsOptions::default()),
        ..Default::default()
    };
    let etags = store_through_registry(
        &format!("{hdfs}/{prefix}"),
        options,
        &[("jobs/wc/1.0/wc.jar", &jar)],
    );
    let url = format!("{hdfs}/{prefix}/jobs/wc/1.0/wc.jar");
    let work = common::tempdir();
    let dest = work.path().join("usrlib");
    let (code, _, err) = fetch(&dest, &["--sha256", &sha_hex(&jar), &url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(dest.join("wc.jar")).unwrap(), jar);
    // The digest a gateway mount recorded sits in a sidecar relative to the mount's root,
    // which a bare URL does not name: for HDFS (and file://) sources, the pin is what verifies.
    assert!(err.contains("matches the pinned digest"), "{err}");

    std::fs::write(dest.join(".again.jar.part"), &jar[..777_777]).unwrap();
    std::fs::write(dest.join(".again.jar.part.etag"), &etags[0]).unwrap();
    let (code, _, err) = fetch(&dest, &["--name", "again.jar", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("resumed at"), "{err}");
    assert_eq!(std::fs::read(dest.join("again.jar")).unwrap(), jar);
}
