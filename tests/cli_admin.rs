//! The admin commands (`put`, `ls`, `stat`, `rm`), the real binary against a real gateway
//! process: human and `--json` output, the server's error messages, and exit codes.

mod common;

use std::path::Path;
use std::process::Command;

use common::{run, Gateway, Site};
use serde_json::Value;

const TOKEN: &str = "admin-test-token";
/// The artifact of the round-trip test.
const WC: &str = "default/jobs/wordcount/1.4.2/wordcount.jar";

/// `artifact-gateway <args> --server <gw>` with the right token in the environment.
fn admin(gw: &Gateway, args: &[&str]) -> (i32, String, String) {
    admin_with(gw, Some(TOKEN), args)
}

fn admin_with(gw: &Gateway, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(common::bin());
    for var in [
        "ARTIFACT_GATEWAY_TOKEN",
        "ARTIFACT_GATEWAY_TOKEN_FILE",
        "ARTIFACT_GATEWAY_CA_FILE",
    ] {
        c.env_remove(var);
    }
    c.env("ARTIFACT_GATEWAY_SERVER", &gw.url);
    if let Some(t) = token {
        c.env("ARTIFACT_GATEWAY_TOKEN", t);
    }
    run(c.args(args))
}

/// `put [FLAGS] FILE TARGET`.
fn put(gw: &Gateway, flags: &[&str], file: &Path, target: &str) -> (i32, String, String) {
    let file = file.to_str().unwrap();
    admin(gw, &[&["put"], flags, &[file, target]].concat())
}

fn json(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

#[test]
fn put_ls_stat_rm_round_trip() {
    let Site { data, work, gw } = Site::start(TOKEN);
    let file = work.path().join("wordcount.jar");
    let sha = common::write_pattern_file(&file, 3 << 20);

    let (code, out, err) = put(&gw, &[], &file, WC);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("created default/jobs/wordcount/1.4.2/wordcount.jar") && out.contains(&sha),
        "{out}"
    );
    assert_eq!(
        common::sha256_file(&data.path().join("jobs/wordcount/1.4.2/wordcount.jar")),
        sha
    );

    let (code, out, err) = admin(&gw, &["stat", WC]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&sha) && out.contains("3145728") && out.contains("application/java-archive"),
        "{out}"
    );
    let (code, out, err) = admin(&gw, &["stat", "--json", WC]);
    assert_eq!(code, 0, "{err}");
    let st = json(&out);
    assert_eq!(st["size"], 3 << 20);
    assert_eq!(st["sha256"], sha.as_str());
    assert_eq!(st["mount"], "default");
    assert_eq!(st["path"], "jobs/wordcount/1.4.2/wordcount.jar");
    assert!(
        st["etag"]
            .as_str()
            .is_some_and(|e| !e.is_empty() && !e.contains('"')),
        "{st}"
    );
    assert!(
        st["last_modified"]
            .as_str()
            .is_some_and(|d| d.ends_with('Z')),
        "{st}"
    );

    let (code, out, err) = admin(&gw, &["ls", "default/jobs/wordcount/1.4.2"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("wordcount.jar") && out.contains("3.0 MiB") && out.contains(&sha),
        "{out}"
    );
    let (code, out, _) = admin(&gw, &["ls", "default/jobs"]);
    assert_eq!((code, out.trim()), (0, "wordcount/  -  -  -"));
    let (code, out, err) = admin(&gw, &["ls", "--json", "default/jobs/wordcount/1.4.2/"]);
    assert_eq!(code, 0, "{err}");
    let listing = json(&out);
    assert_eq!(listing["mount"], "default");
    assert_eq!(listing["path"], "jobs/wordcount/1.4.2/");
    assert_eq!(listing["entries"][0]["name"], "wordcount.jar");
    assert_eq!(listing["entries"][0]["sha256"], sha.as_str());
    assert_eq!(listing["entries"][0]["is_dir"], false);
    let (code, out, _) = admin(&gw, &["ls", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json(&out)["mounts"][0]["name"], "default");

    let (code, out, err) = admin(&gw, &["rm", WC]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "deleted default/jobs/wordcount/1.4.2/wordcount.jar"
    );
    let (code, _, err) = admin(&gw, &["stat", WC]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("404"), "{err}");
    let (code, _, err) = admin(&gw, &["rm", WC]);
    assert_eq!(code, 3, "deleting a missing artifact is an error: {err}");
    let (code, out, err) = admin(&gw, &["rm", "--force", "--json", WC]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["deleted"], false);
    let (code, _, err) = admin(&gw, &["ls", "default/jobs/wordcount/1.4.2"]);
    assert_eq!(code, 3, "{err}");
}

#[test]
fn put_json_replace_and_no_overwrite() {
    let Site { data, work, gw } = Site::start(TOKEN);
    let v1 = work.path().join("v1.sql");
    let v2 = work.path().join("v2.sql");
    std::fs::write(&v1, "SELECT 1;\n").unwrap();
    std::fs::write(&v2, "SELECT 2;\n").unwrap();

    let (code, out, err) = put(&gw, &["--json"], &v1, "default/sql/q.sql");
    assert_eq!(code, 0, "{err}");
    let r = json(&out);
    assert_eq!(r["created"], true);
    assert_eq!(r["path"], "sql/q.sql");
    assert_eq!(r["size"], 10);
    assert_eq!(r["sha256"], common::sha256_file(&v1).as_str());
    assert_eq!(r["content_type"], "application/sql");

    let (code, out, err) = put(&gw, &["--json"], &v2, "default/sql/q.sql");
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["created"], false);
    let (code, out, _) = admin(&gw, &["put", v1.to_str().unwrap(), "default/sql/q.sql"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("replaced default/sql/q.sql"), "{out}");

    let (code, out, err) = put(&gw, &["--no-overwrite"], &v2, "default/sql/q.sql");
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("412") && err.contains("--no-overwrite"),
        "{err}"
    );
    assert!(out.is_empty());
    assert_eq!(
        std::fs::read_to_string(data.path().join("sql/q.sql")).unwrap(),
        "SELECT 1;\n",
        "unchanged"
    );
    let (code, out, _) = put(&gw, &["--json", "--no-overwrite"], &v2, "default/sql/q.sql");
    assert_eq!(code, 3);
    assert_eq!(json(&out)["error"]["code"], "precondition_failed");
    // --no-overwrite on a new path creates it.
    let (code, _, err) = put(&gw, &["--no-overwrite"], &v2, "default/sql/new.sql");
    assert_eq!(code, 0, "{err}");

    // --content-type is recorded; odd names survive URL encoding.
    let (code, _, err) = put(
        &gw,
        &["--content-type", "text/x-flink-sql"],
        &v2,
        "default/sql/with space+plus%.sql",
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = admin(&gw, &["stat", "--json", "default/sql/with space+plus%.sql"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["content_type"], "text/x-flink-sql");
    assert!(data.path().join("sql/with space+plus%.sql").is_file());
}

#[test]
fn errors_carry_the_servers_message_and_exit_codes() {
    let site = Site::start(TOKEN);
    let (work, gw) = (&site.work, &site.gw);
    let file = work.path().join("a.jar");
    std::fs::write(&file, b"jar").unwrap();

    // Wrong token: the server's message, a hint, exit 3; --json puts the error on stdout.
    let (code, out, err) = admin_with(
        gw,
        Some("wrong"),
        &["put", file.to_str().unwrap(), "default/a.jar"],
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("HTTP 401") && err.contains("the bearer token is not valid"),
        "{err}"
    );
    assert!(out.is_empty());
    let (code, out, _) = admin_with(gw, Some("wrong"), &["rm", "--json", "default/a.jar"]);
    assert_eq!(code, 3);
    assert_eq!(json(&out)["error"]["code"], "unauthenticated");
    // No token at all: writes need one.
    let (code, _, err) = admin_with(gw, None, &["put", file.to_str().unwrap(), "default/a.jar"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("401"), "{err}");
    // A token file is read (and trailing newlines dropped).
    let token_file = work.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let (code, _, err) = admin_with(
        gw,
        None,
        &[
            "put",
            "--token-file",
            token_file.to_str().unwrap(),
            file.to_str().unwrap(),
            "default/a.jar",
        ],
    );
    assert_eq!(code, 0, "{err}");

    // Usage errors: exit 2, nothing sent.
    for args in [
        vec!["put", file.to_str().unwrap(), "default"],
        vec!["put", file.to_str().unwrap(), "default/../x.jar"],
        vec!["put", "/nonexistent/file.jar", "default/x.jar"],
        vec!["stat", "default/"],
        vec![
            "put",
            "--token-file",
            "/nonexistent/token",
            file.to_str().unwrap(),
            "default/x.jar",
        ],
    ] {
        let (code, _, err) = admin(gw, &args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    // A missing mount is a 404 with the server's message.
    let (code, _, err) = admin(gw, &["ls", "nomount"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no mount named"), "{err}");

    // Nothing listening: exit 5.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = run(Command::new(common::bin()).args([
        "stat",
        "--server",
        &format!("http://127.0.0.1:{port}"),
        "default/a.jar",
    ]));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn ls_follows_pagination() {
    let Site { data, gw, .. } = Site::start(TOKEN);
    let dir = data.path().join("many");
    std::fs::create_dir_all(&dir).unwrap();
    let n = 2345;
    for i in 0..n {
        std::fs::write(dir.join(format!("f{i:05}.jar")), b"x").unwrap();
    }
    let (code, out, err) = admin(&gw, &["ls", "--json", "default/many"]);
    assert_eq!(code, 0, "{err}");
    let names: Vec<String> = json(&out)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..n).map(|i| format!("f{i:05}.jar")).collect();
    assert_eq!(names, expected, "every page, in order, once");
    let (code, out, _) = admin(&gw, &["ls", "default/many"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), n);
}

/// `serve` exits as its `--help` says: 2 for a configuration error, 1 for a failure to start.
#[test]
fn serve_exit_codes_match_its_help() {
    let serve = |args: &[&str]| {
        let mut c = Command::new(common::bin());
        c.env_remove("ARTIFACT_GATEWAY_TOKEN");
        run(c.arg("serve").args(args))
    };
    for help in [vec!["--help"], vec!["serve", "--help"]] {
        let (code, out, err) = run(Command::new(common::bin()).args(&help));
        assert_eq!(code, 0, "{help:?}: {err}");
        for want in [
            "Exit codes of serve:",
            "1  failed to start",
            "2  configuration error",
        ] {
            assert!(out.contains(want), "{help:?} lacks {want:?}: {out}");
        }
    }

    let work = common::tempdir();
    let (code, _, err) = serve(&["--config", "/nonexistent/gateway.toml"]);
    assert_eq!(
        code, 2,
        "a missing config file is a configuration error: {err}"
    );
    assert!(err.contains("/nonexistent/gateway.toml"), "{err}");

    let bad = work.path().join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:0\"\nno_such_key = 1\n").unwrap();
    let (code, _, err) = serve(&["--config", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "an unknown key is a configuration error: {err}");
    assert!(err.contains("no_such_key"), "{err}");

    // The port is taken: not a configuration error, exit 1.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = work.path().join("data");
    let (code, _, err) = serve(&["--data", data.to_str().unwrap(), "--listen", &addr]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot listen on"), "{err}");
}

/// `ARTIFACT_GATEWAY_TOKEN_FILE=` (set but empty, as env templating often leaves it) and an empty
/// `ARTIFACT_GATEWAY_CA_FILE` mean "not set": the token then comes from `ARTIFACT_GATEWAY_TOKEN`.
#[test]
fn empty_token_file_and_ca_file_variables_mean_not_set() {
    let Site { data, gw, .. } = Site::start(TOKEN);
    std::fs::write(data.path().join("a.jar"), b"a").unwrap();
    let mut c = Command::new(common::bin());
    c.env("ARTIFACT_GATEWAY_SERVER", &gw.url)
        .env("ARTIFACT_GATEWAY_TOKEN_FILE", "")
        .env("ARTIFACT_GATEWAY_CA_FILE", "")
        .env("ARTIFACT_GATEWAY_TOKEN", TOKEN);
    let (code, out, err) = run(c.args(["rm", "default/a.jar"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!data.path().join("a.jar").exists());
    // And with no token at all, an anonymous read works and a write is refused by the server
    // (exit 3), not a usage error (exit 2).
    let anonymous = |args: &[&str]| {
        let mut c = Command::new(common::bin());
        c.env("ARTIFACT_GATEWAY_SERVER", &gw.url)
            .env("ARTIFACT_GATEWAY_TOKEN_FILE", "")
            .env_remove("ARTIFACT_GATEWAY_TOKEN")
            .env_remove("ARTIFACT_GATEWAY_CA_FILE");
        run(c.args(args))
    };
    let (code, out, err) = anonymous(&["ls", "default"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = anonymous(&["rm", "default/b.jar"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("401") || err.contains("token"), "{err}");
}
