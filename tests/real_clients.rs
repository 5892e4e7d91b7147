//! The real binary driven by real clients over a socket: curl, wget, Python `requests`, TLS with
//! a generated certificate (HTTP/1.1 and HTTP/2), a 1 GiB round trip, graceful shutdown, limits,
//! and start-up errors.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{require_program, run, Gateway, Site};

const TOKEN: &str = "real-client-token";

fn curl() -> Command {
    require_program("curl", "apt-get install curl");
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "300"]);
    c
}

/// `curl -T FILE` with the token and the file's SHA-256; `write_out` (`-w`) follows the body.
fn curl_put(
    file: &std::path::Path,
    sha: &str,
    url: &str,
    write_out: &str,
) -> (i32, String, String) {
    let auth = format!("Authorization: Bearer {TOKEN}");
    let digest = format!("X-Checksum-Sha256: {sha}");
    let file = file.to_str().unwrap();
    run(curl().args(["-w", write_out, "-T", file, "-H", &auth, "-H", &digest, url]))
}

#[test]
fn curl_upload_download_range_conditional() {
    let site = Site::start(TOKEN);
    let (work, gw) = (&site.work, &site.gw);
    let src = work.path().join("wc.jar");
    let sha = common::write_pattern_file(&src, 3 << 20);
    let url = gw.artifact("default", "jobs/wordcount/1.4.2/wordcount.jar");
    // Upload with the digest; 201 with JSON.
    let (code, out, err) = curl_put(&src, &sha, &url, "\n%{http_code}");
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("201"), "{out}");
    assert!(out.contains(&sha), "{out}");
    // Download: identical bytes, headers as expected.
    let dst = work.path().join("out.jar");
    let (code, headers, err) = run(curl().args(["-D", "-", "-o", dst.to_str().unwrap(), &url]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(common::sha256_file(&dst), sha);
    let headers = headers.to_ascii_lowercase();
    assert!(
        headers.contains("content-type: application/java-archive"),
        "{headers}"
    );
    assert!(headers.contains("accept-ranges: bytes"));
    assert!(headers.contains("repr-digest: sha-256=:"));
    assert!(headers.contains("x-request-id: "));
    // A range.
    let (code, out, _) =
        run(curl().args(["-r", "0-9", "-w", "%{http_code}", "-o", "/dev/null", &url]));
    assert_eq!((code, out.as_str()), (0, "206"));
    // Conditional: a second download with the ETag gets 304.
    let etag = headers.lines().find(|l| l.starts_with("etag:")).unwrap()[5..]
        .trim()
        .to_string();
    let (_, out, _) = run(curl().args([
        "-H",
        &format!("If-None-Match: {etag}"),
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        &url,
    ]));
    assert_eq!(out, "304");
    // Traversal sent as-is never reaches storage.
    let (_, out, _) = run(curl().args([
        "--path-as-is",
        "-w",
        "\n%{http_code}",
        &format!("{}/artifacts/default/../../etc/passwd", gw.url),
    ]));
    assert!(
        out.ends_with("400") && out.contains("invalid_path"),
        "{out}"
    );
    // HEAD.
    let (_, out, _) = run(curl().args(["-I", &url]));
    assert!(
        out.to_ascii_lowercase().contains("content-length: 3145728"),
        "{out}"
    );
    // Wrong token: 401 JSON.
    let (_, out, _) = run(curl().args([
        "-w",
        "\n%{http_code}",
        "-X",
        "DELETE",
        "-H",
        "Authorization: Bearer nope",
        &url,
    ]));
    assert!(
        out.ends_with("401") && out.contains("unauthenticated"),
        "{out}"
    );
    // Delete.
    let (_, out, _) = run(curl().args([
        "-w",
        "%{http_code}",
        "-X",
        "DELETE",
        "-H",
        &format!("Authorization: Bearer {TOKEN}"),
        &url,
    ]));
    assert_eq!(out, "204");
}

#[test]
fn wget_downloads_and_resumes() {
    require_program("wget", "apt-get install wget");
    let Site { data, work, gw } = Site::start(TOKEN);
    let src = data.path().join("big.jar");
    let sha = common::write_pattern_file(&src, 2 << 20);
    let url = gw.artifact("default", "big.jar");
    let dst = work.path().join("big.jar");
    let (code, _, err) = run(Command::new("wget").args(["-q", "-O", dst.to_str().unwrap(), &url]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(common::sha256_file(&dst), sha);
    // Resume: keep the first half, let wget --continue fetch the rest with a Range request.
    let bytes = std::fs::read(&dst).unwrap();
    std::fs::write(&dst, &bytes[..1 << 20]).unwrap();
    let (code, _, err) =
        run(Command::new("wget").args(["-q", "-c", "-O", dst.to_str().unwrap(), &url]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(common::sha256_file(&dst), sha, "resumed download is whole");
    // 404 is an error for wget.
    let (code, _, _) = run(Command::new("wget").args([
        "-q",
        "-O",
        "/dev/null",
        &gw.artifact("default", "missing.jar"),
    ]));
    assert_ne!(code, 0);
}

#[test]
fn python_requests_roundtrip() {
    let site = Site::start(TOKEN);
    let gw = &site.gw;
    let script = r#"
import hashlib, os, sys, requests
base, token = sys.argv[1], sys.argv[2]
url = base + "/artifacts/default/py/udf.jar"
payload = os.urandom(1 << 20)
r = requests.put(url, data=payload, headers={"Authorization": "Bearer " + token,
                 "Content-Digest": "sha-256=:" + __import__("base64").b64encode(hashlib.sha256(payload).digest()).decode() + ":"})
assert r.status_code == 201, (r.status_code, r.text)
assert r.json()["sha256"] == hashlib.sha256(payload).hexdigest()
g = requests.get(url, stream=True)
assert g.status_code == 200 and g.headers["Content-Type"] == "application/java-archive"
body = b"".join(g.iter_content(65536))
assert body == payload
l = requests.get(base + "/artifacts/default/py/", headers={"Accept": "application/json"}).json()
assert [e["name"] for e in l["entries"]] == ["udf.jar"], l
e = requests.get(base + "/artifacts/default/py/missing.jar")
assert e.status_code == 404 and e.json()["error"]["code"] == "not_found"
print("ok")
"#;
    let (code, out, err) = run(Command::new("python3").args(["-c", script, &gw.url, TOKEN]));
    assert_eq!((code, out.trim()), (0, "ok"), "{err}");
}

#[test]
fn tls_with_generated_certificate_http1_and_http2() {
    let (
        Site {
            data,
            work: _certs,
            gw,
        },
        cert,
    ) = Site::start_tls(&[]);
    std::fs::write(data.path().join("t.jar"), b"over tls").unwrap();
    let url = format!("https://localhost:{}/artifacts/default/t.jar", gw.port);
    let (code, out, err) =
        run(curl().args(["--cacert", cert.to_str().unwrap(), "--http1.1", &url]));
    assert_eq!((code, out.as_str()), (0, "over tls"), "{err}");
    let (code, out, err) = run(curl().args([
        "--cacert",
        cert.to_str().unwrap(),
        "--http2",
        "-w",
        "\n%{http_version}",
        &url,
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "over tls\n2", "HTTP/2 negotiated by ALPN");
    // Without trusting the certificate the client refuses.
    let (code, _, _) = run(curl().arg(&url));
    assert_ne!(code, 0);
    // Plain HTTP against the TLS port fails instead of leaking data.
    let (code, out, _) = run(curl().arg(format!(
        "http://127.0.0.1:{}/artifacts/default/t.jar",
        gw.port
    )));
    assert!(code != 0 || !out.contains("over tls"));
}

#[test]
fn one_gib_round_trip_keeps_sha256() {
    let site = Site::start(TOKEN);
    let src = site.work.path().join("huge.jar");
    let sha = common::write_pattern_file(&src, 1 << 30);
    let url = site.gw.artifact("default", "huge/huge.jar");
    let started = Instant::now();
    let (code, out, err) = curl_put(&src, &sha, &url, "\n%{http_code} %{speed_upload}");
    assert_eq!(code, 0, "{err}");
    let status_line = out.lines().last().unwrap();
    assert!(status_line.starts_with("201"), "{out}");
    let up = started.elapsed();
    std::fs::remove_file(&src).unwrap();
    let dst = site.work.path().join("back.jar");
    let started = Instant::now();
    let (code, out, err) = run(curl().args([
        "-w",
        "%{http_code} %{speed_download}",
        "-o",
        dst.to_str().unwrap(),
        &url,
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("200"));
    let down = started.elapsed();
    assert_eq!(common::sha256_file(&dst), sha);
    println!(
        "1 GiB over loopback (debug build, includes disk): upload {:.0} MB/s, download {:.0} MB/s",
        1024.0 / up.as_secs_f64() * 1.048576,
        1024.0 / down.as_secs_f64() * 1.048576
    );
}

#[test]
fn graceful_shutdown_lets_transfers_finish() {
    let data = common::tempdir();
    let work = common::tempdir();
    let sha = common::write_pattern_file(&data.path().join("slow.jar"), 4 << 20);
    let mut gw = Gateway::start(
        &[
            "--data",
            data.path().to_str().unwrap(),
            "--shutdown-grace",
            "30s",
        ],
        &[],
    );
    let dst = work.path().join("slow.jar");
    // About 4 s at 1 MB/s.
    let mut download = curl()
        .args([
            "--limit-rate",
            "1M",
            "-o",
            dst.to_str().unwrap(),
            &gw.artifact("default", "slow.jar"),
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let pid = gw.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(300));
    // New connections are refused while the old one finishes.
    let (code, _, _) = run(curl().args(["--max-time", "2", &format!("{}/healthz", gw.url)]));
    assert_ne!(code, 0, "no new connections after SIGTERM");
    let status = download.wait().unwrap();
    assert!(status.success(), "the in-flight download completed");
    assert_eq!(common::sha256_file(&dst), sha);
    let exit = gw.child.wait().unwrap();
    assert!(
        exit.success(),
        "the server exits cleanly after the grace period: {exit:?}"
    );
}

#[test]
fn oversized_headers_are_refused() {
    let site = Site::start(TOKEN);
    let gw = &site.gw;
    let big = "x".repeat(64 * 1024);
    let (_, out, _) = run(curl().args([
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("X-Big: {big}"),
        &format!("{}/healthz", gw.url),
    ]));
    assert_eq!(out, "431");
}

#[test]
fn json_logs_carry_one_line_per_request() {
    let Site {
        data: _data, gw, ..
    } = Site::serve(&["--log-format", "json"], &[]);
    let (_, headers, _) = run(curl().args([
        "-D",
        "-",
        "-o",
        "/dev/null",
        &gw.artifact("default", "nope.jar"),
    ]));
    let rid = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("x-request-id:"))
        .unwrap()[13..]
        .trim()
        .to_string();
    std::thread::sleep(Duration::from_millis(300));
    let lines = gw.drain_logs();
    let access = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["request_id"] == rid.as_str())
        .unwrap_or_else(|| panic!("no JSON access line for {rid} in {lines:?}"));
    assert_eq!(access["status"], 404);
    assert_eq!(access["method"], "GET");
    assert_eq!(access["path"], "/artifacts/default/nope.jar");
    assert!(access["duration_ms"].is_number() && access["bytes"].is_number());
}

#[test]
fn starts_with_no_config_and_stops_on_a_bad_one() {
    // No config file: the embedded default serves --data as mount `default`.
    let data = common::tempdir();
    let gw = Gateway::start(&["--data", data.path().to_str().unwrap()], &[]);
    let (_, out, _) = run(curl().arg(format!("{}/artifacts/", gw.url)));
    assert!(out.contains("\"default\""), "{out}");
    drop(gw);
    // A bad config stops start-up with one line naming the key, exit code 2.
    let cfg = data.path().join("bad.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\n[[mounts]]\nname = \"a\"\nurl = \"file:///tmp/x\"\nanonymous_reads = true\n").unwrap();
    let (code, _, err) =
        run(Command::new(common::bin()).args(["serve", "--config", cfg.to_str().unwrap()]));
    assert_eq!(code, 2, "serve exits 2 on a configuration error");
    assert!(
        err.contains("anonymous_reads") && err.lines().count() == 1,
        "{err}"
    );
    let (code, _, err) =
        run(Command::new(common::bin()).args(["serve", "--config", "/nonexistent.toml"]));
    assert_eq!(code, 2, "serve exits 2 on a configuration error");
    assert!(err.contains("/nonexistent.toml"), "{err}");
    std::fs::write(&cfg, "[[mounts]]\nname = \"a\"\nurl = \"s4://bucket\"\n").unwrap();
    let (code, _, err) =
        run(Command::new(common::bin()).args(["serve", "--config", cfg.to_str().unwrap()]));
    assert_eq!(code, 2, "serve exits 2 on a configuration error");
    assert!(err.contains("mounts[\"a\"].url"), "{err}");
    std::fs::write(&cfg, "[[mounts]]\nname = \"a\"\nurl = \"file:///tmp/x\"\n[[tokens]]\nname = \"t\"\nsecret = { env = \"AG_MISSING_SECRET_VAR\" }\nscopes = [\"read\"]\n").unwrap();
    let (code, _, err) =
        run(Command::new(common::bin()).args(["serve", "--config", cfg.to_str().unwrap()]));
    assert_eq!(code, 2, "serve exits 2 on a configuration error");
    assert!(
        err.contains("AG_MISSING_SECRET_VAR") && err.contains("tokens[\"t\"]"),
        "{err}"
    );
}
