//! Read-only sources and full disks, on real filesystems (a read-only bind mount, a 4 MiB
//! tmpfs; see `common::mounts`):
//! - `serve --data` on a read-only directory starts, says so, serves reads, and answers writes
//!   with `405` (`Allow: GET, HEAD`, code `read_only`); `read_only = true` does the same on a
//!   writable directory and writes nothing there;
//! - `fetch file://…` reads from a read-only directory without writing next to the source;
//! - a PUT that fills the disk is a `507 insufficient_storage` with nothing left behind, and the
//!   server keeps serving (and takes the next upload that fits);
//! - `fetch` onto a full disk exits 1 with one clear line and leaves nothing partial.

mod common;

use std::path::Path;
use std::process::Command;

use common::mounts::MountPoint;
use common::{cli, require_program, run, tempdir, write_pattern_file, Gateway};
use serde_json::Value;

const TOKEN: &str = "ro-and-full-test-token-0123456789";

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

/// Every path under `dir`, relative, sorted (dot files and directories included).
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fn error_code(resp: reqwest::blocking::Response) -> String {
    let v: Value = resp.json().expect("a JSON error body");
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

/// A write refused because the mount is read-only: 405, `Allow: GET, HEAD`, code `read_only`.
fn assert_read_only_refusal(resp: reqwest::blocking::Response) {
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, HEAD");
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(error_code(resp), "read_only");
}

#[test]
fn serve_data_on_a_read_only_directory_serves_reads_and_refuses_writes() {
    let src = tempdir();
    std::fs::create_dir_all(src.path().join("jobs")).unwrap();
    std::fs::write(src.path().join("app.jar"), b"PK\x03\x04 the app").unwrap();
    std::fs::write(src.path().join("jobs/wc.jar"), vec![9u8; 200_000]).unwrap();
    let before = tree(src.path());
    let ro = MountPoint::read_only(src.path());

    let gw = Gateway::start(
        &["--data", ro.path().to_str().unwrap()],
        &[("ARTIFACT_GATEWAY_TOKEN", TOKEN)],
    );
    let logs = gw.startup_lines.join("\n");
    assert!(
        logs.contains("serving it read-only"),
        "the start-up log says the mount is read-only:\n{logs}"
    );

    let c = client();
    let resp = c.get(gw.artifact("default", "app.jar")).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().unwrap().as_ref(), b"PK\x03\x04 the app");
    let resp = c
        .get(gw.artifact("default", "jobs/wc.jar"))
        .header("range", "bytes=100-199")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.bytes().unwrap().as_ref(), &[9u8; 100][..]);
    let resp = c.get(gw.artifact("default", "jobs/")).send().unwrap();
    assert_eq!(resp.status(), 200);
    let listing: Value = resp.json().unwrap();
    assert_eq!(listing["entries"][0]["name"], "wc.jar", "{listing}");

    // Writes, even with a token that may write, are refused before they touch the disk.
    let auth = format!("Bearer {TOKEN}");
    let put = c
        .put(gw.artifact("default", "new.jar"))
        .header("authorization", &auth)
        .body(vec![1u8; 10_000])
        .send()
        .unwrap();
    assert_read_only_refusal(put);
    let del = c
        .delete(gw.artifact("default", "app.jar"))
        .header("authorization", &auth)
        .send()
        .unwrap();
    assert_read_only_refusal(del);
    // Who asks is still checked first: no token is a 401, not a hint about the mount.
    let anon = c
        .put(gw.artifact("default", "new.jar"))
        .body("x")
        .send()
        .unwrap();
    assert_eq!(anon.status(), 401);

    // The web page learns it from /whoami: no write, no delete.
    let who: Value = c
        .get(format!("{}/whoami", gw.url))
        .header("authorization", &auth)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let m = &who["mounts"][0];
    assert_eq!(
        (&m["read_only"], &m["read"], &m["write"], &m["delete"]),
        (
            &Value::Bool(true),
            &Value::Bool(true),
            &Value::Bool(false),
            &Value::Bool(false)
        ),
        "{who}"
    );
    // Signing is a read grant, so it works on a read-only mount too (when configured); here
    // signing is off, which says so rather than "read-only".
    drop(gw);
    drop(ro);
    assert_eq!(tree(src.path()), before, "nothing was written");
}

#[test]
fn read_only_option_refuses_writes_and_writes_nothing() {
    let dir = tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.jar"), b"a").unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[[mounts]]\nname = \"nfs\"\nurl = \"file://{}\"\nanonymous_read = true\nread_only = true\n",
            data.display()
        ),
    )
    .unwrap();
    let gw = Gateway::start(
        &["--config", config.to_str().unwrap()],
        &[("ARTIFACT_GATEWAY_TOKEN", TOKEN)],
    );
    let logs = gw.startup_lines.join("\n");
    assert!(logs.contains("read_only = true"), "{logs}");
    let c = client();
    assert_eq!(
        c.get(gw.artifact("nfs", "a.jar"))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .as_ref(),
        b"a"
    );
    let put = c
        .put(gw.artifact("nfs", "b.jar"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body("b")
        .send()
        .unwrap();
    assert_read_only_refusal(put);
    drop(gw);
    // A read-only mount is never started: not even the staging directory is created.
    assert_eq!(tree(&data), vec!["a.jar".to_string()]);
}

#[test]
fn fetch_reads_a_file_url_from_a_read_only_directory() {
    let src = tempdir();
    let sha = write_pattern_file(&src.path().join("app.jar"), 3 << 20);
    let ro = MountPoint::read_only(src.path());
    let dest = tempdir();
    let url = url::Url::from_file_path(ro.path().join("app.jar")).unwrap();
    let (code, _, err) = run(cli().arg("fetch").arg("--dest").arg(dest.path()).args([
        "--sha256",
        &sha,
        url.as_str(),
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(common::sha256_file(&dest.path().join("app.jar")), sha);
    drop(ro);
    assert_eq!(tree(src.path()), vec!["app.jar".to_string()]);
}

fn curl_put(url: &str, file: &Path, body_out: &Path) -> (String, String) {
    require_program("curl", "apt-get install curl");
    let (code, stdout, stderr) = run(Command::new("curl")
        .args(["-sS", "--max-time", "60", "-o"])
        .arg(body_out)
        .args(["-w", "%{http_code}", "-H"])
        .arg(format!("authorization: Bearer {TOKEN}"))
        .arg("-T")
        .arg(file)
        .arg(url));
    // curl may see the early answer and then a reset of the rest of the upload: the status
    // it printed is what counts.
    let _ = code;
    (stdout, stderr)
}

#[test]
fn a_put_that_fills_the_disk_is_507_leaves_nothing_and_reads_go_on() {
    let disk = MountPoint::tmpfs("4m");
    let work = tempdir();
    let small = work.path().join("small.jar");
    let small_sha = write_pattern_file(&small, 1 << 20);
    let big = work.path().join("big.jar");
    write_pattern_file(&big, 6 << 20);

    let gw = Gateway::start(
        &["--data", disk.path().to_str().unwrap()],
        &[("ARTIFACT_GATEWAY_TOKEN", TOKEN)],
    );
    let out = work.path().join("body");
    let (status, err) = curl_put(&gw.artifact("default", "small.jar"), &small, &out);
    assert_eq!(status, "201", "{err}");

    let (status, err) = curl_put(&gw.artifact("default", "jobs/big.jar"), &big, &out);
    assert_eq!(status, "507", "{err}");
    let body: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "insufficient_storage", "{body}");
    assert_eq!(body["error"]["path"], "jobs/big.jar", "{body}");
    let logs = gw.drain_logs().join("\n");
    assert!(!logs.contains("panicked"), "{logs}");

    // Nothing of the failed upload is left: no final name, no staging file, no record.
    let left: Vec<String> = tree(disk.path())
        .into_iter()
        .filter(|p| !p.ends_with("/tmp") && !p.ends_with("/meta") && p != ".artifact-gateway")
        .collect();
    assert_eq!(
        left,
        vec![
            ".artifact-gateway/meta/small.jar.json".to_string(),
            "jobs".to_string(),
            "small.jar".to_string()
        ],
        "only the first upload (and the directory the second one made) remain"
    );

    // The server keeps serving reads, with the recorded digest.
    let c = client();
    let resp = c.get(gw.artifact("default", "small.jar")).send().unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().unwrap();
    assert_eq!(
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        small_sha
    );
    assert_eq!(
        c.get(gw.artifact("default", "jobs/big.jar"))
            .send()
            .unwrap()
            .status(),
        404
    );
    // And the disk, freed of the failed upload, takes the next one that fits.
    let (status, err) = curl_put(&gw.artifact("default", "again.jar"), &small, &out);
    assert_eq!(status, "201", "{err}");
}

#[test]
fn fetch_onto_a_full_disk_exits_1_and_leaves_nothing_partial() {
    let src = tempdir();
    write_pattern_file(&src.path().join("big.jar"), 6 << 20);
    let disk = MountPoint::tmpfs("4m");
    let dest = disk.path().join("usrlib");
    let url = url::Url::from_file_path(src.path().join("big.jar")).unwrap();
    let (code, _, err) =
        run(cli()
            .arg("fetch")
            .arg("--dest")
            .arg(&dest)
            .args(["--deadline", "20s", url.as_str()]));
    assert_eq!(code, 1, "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("big.jar") && l.contains("full"))
        .unwrap_or_else(|| panic!("one line names the artifact and the full disk:\n{err}"));
    assert!(line.contains("No space left on device"), "{line}");
    assert!(
        tree(&dest).is_empty(),
        "nothing partial is left: {:?}",
        tree(&dest)
    );
}
