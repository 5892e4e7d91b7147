//! Flink end to end, with real processes only: the real gateway binary, MinIO, a MiniDFSCluster,
//! a Flink 1.20 session cluster (`AG_TEST_FLINK_REST`), a Flink application cluster started here,
//! and the Flink Kubernetes Operator's own `HttpArtifactFetcher`.
//!
//! About the operator version: FLINK.md describes operator 1.15.0, but the reachable Maven Central
//! serves nothing newer than `flink-kubernetes-operator` 1.7.0, so the fetcher under test is
//! 1.7.0's `HttpArtifactFetcher.INSTANCE.fetch(uri, conf, targetDir)` (built by
//! tests/flink/install.sh). Its download path is the one FLINK.md describes: one plain
//! `HttpURLConnection` GET carrying the `kubernetes.operator.user.artifacts.http.header` pairs,
//! the file named by `FilenameUtils.getName(url.getPath())`, the body copied into it. What 1.15
//! adds on top (https-only schemes, restricted hosts) is configuration in front of that call and
//! is not exercised here.
//!
//! Three paths:
//! 1. `operator_fetcher_over_http_reads_a_private_local_mount`: names, status codes and headers as
//!    the operator's client sees them (the JVM's own `HttpURLConnection` debug log records the
//!    request it sent and the response headers it got).
//! 2. `session_job_from_s3_over_https_finishes_on_the_session_cluster`: FlinkSessionJob as the
//!    operator runs it: jar in S3 behind the gateway, fetched over https with a truststore and the
//!    token header, uploaded to the session cluster (`/jars/upload` → `/jars/<id>/run`), FINISHED.
//! 3. `application_mode_runs_a_jar_fetched_from_hdfs`: FlinkDeployment's init-container path:
//!    `artifact-gateway fetch` from HDFS directly and through the gateway with a manifest, twice
//!    (the second run downloads nothing), then a Flink application cluster
//!    (`StandaloneApplicationClusterEntryPoint --jars local:///…/usrlib/wordcount.jar`, the same
//!    `local://` jarURI a FlinkDeployment names) plus one TaskManager runs the fetched jar until
//!    the application completes.
//!
//! Needs `AG_TEST_FLINK_REST`, `AG_TEST_S3_*`, `AG_TEST_HDFS_URL` (tests/run.sh starts the
//! servers), a JDK 17 with keytool, python3, tests/servers/flink/install.sh and
//! tests/flink/install.sh. Anything missing fails the test with the command to run.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::minio::Minio;
use common::{cli, require_env, require_program, run, sha256_file, Gateway};

const ADMIN_TOKEN: &str = "flink-e2e-admin-token";
const READER_TOKEN: &str = "flink-e2e-reader-3c1f9a0d7e5b4c2a";
/// The artifact layout FLINK.md asks for: version in the path, file name last.
const JAR_PATH: &str = "jobs/wordcount/1.4.2/wordcount.jar";
const FLINK_VERSION: &str = "1.20.4";

fn flink_cache() -> PathBuf {
    common::root().join("target/test-servers/cache/flink")
}

/// A gateway started from `config` (written to `DIR/gateway.toml`), with the admin token.
fn gateway_with(dir: &Path, config: &str) -> Gateway {
    let file = dir.join("gateway.toml");
    std::fs::write(&file, config).unwrap();
    let envs = [("ARTIFACT_GATEWAY_TOKEN", ADMIN_TOKEN)];
    Gateway::start(&["--config", file.to_str().unwrap()], &envs)
}

fn flink_home() -> PathBuf {
    let home = flink_cache().join(format!("flink-{FLINK_VERSION}"));
    assert!(
        home.join(format!("lib/flink-dist-{FLINK_VERSION}.jar"))
            .exists(),
        "Flink {FLINK_VERSION} is not installed in {}: run tests/servers/flink/install.sh",
        home.display()
    );
    home
}

/// The JDK's bin directory (java, keytool).
fn jdk_bin() -> PathBuf {
    if let Ok(home) = std::env::var("JAVA_HOME") {
        let bin = Path::new(&home).join("bin");
        if bin.join("keytool").exists() && bin.join("java").exists() {
            return bin;
        }
    }
    require_program(
        "java",
        "install a JDK 17 (apt-get install openjdk-17-jdk-headless)",
    );
    let (_, java, _) = run(Command::new("sh").args(["-c", "command -v java"]));
    let real = std::fs::canonicalize(java.trim()).expect("resolve java");
    let bin = real.parent().expect("bin/java").to_path_buf();
    assert!(
        bin.join("keytool").exists(),
        "no keytool next to {}: install a full JDK 17 (apt-get install openjdk-17-jdk-headless)",
        real.display()
    );
    bin
}

/// The test job jar (tests/flink/job/WordCountJob.java), built once per test process; the
/// build itself is cached under target/ by tests/flink/build-job.sh.
fn job_jar() -> &'static Path {
    static JAR: OnceLock<PathBuf> = OnceLock::new();
    JAR.get_or_init(|| {
        flink_home();
        require_program(
            "javac",
            "install a JDK 17 (apt-get install openjdk-17-jdk-headless)",
        );
        let out = flink_cache().join("job/e2e/wordcount.jar");
        let (code, stdout, stderr) = run(Command::new("bash")
            .arg(common::root().join("tests/flink/build-job.sh"))
            .arg(&out));
        assert_eq!(
            code, 0,
            "tests/flink/build-job.sh failed:\n{stdout}{stderr}"
        );
        out
    })
}

/// `artifact-gateway put FILE MOUNT/PATH` with the admin token, as a CI pipeline publishes.
fn admin_put(gw: &Gateway, file: &Path, target: &str, ca_file: Option<&Path>) {
    let mut cmd = cli();
    cmd.arg("put")
        .arg(file)
        .arg(target)
        .args(["--server", &gw.url])
        .env("ARTIFACT_GATEWAY_TOKEN", ADMIN_TOKEN);
    if let Some(ca) = ca_file {
        cmd.arg("--ca-file").arg(ca);
    }
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "artifact-gateway put {target} failed:\n{out}{err}");
}

/// Writes the read-only token file and returns the `[[tokens]]` table that uses it.
fn reader_token(dir: &Path, mount: &str) -> String {
    let file = dir.join("flink-token");
    std::fs::write(&file, format!("{READER_TOKEN}\n")).unwrap();
    format!(
        "[[tokens]]\nname = \"flink\"\nsecret = {{ file = {file:?} }}\nscopes = [\"read\"]\nmounts = [\"{mount}\"]\n",
        file = file.display().to_string()
    )
}

/// The operator's fetcher: `(exit code, stdout, stderr)`.
fn operator_fetch(
    jvm_flags: &[String],
    url: &str,
    into: &Path,
    header: Option<&str>,
) -> (i32, String, String) {
    let mut cmd = Command::new("bash");
    cmd.arg(common::operator_fetcher())
        .args(jvm_flags)
        .arg(url)
        .arg(into);
    if let Some(h) = header {
        cmd.arg(h);
    }
    run(&mut cmd)
}

/// The `kubernetes.operator.user.artifacts.http.header` value carrying a bearer token.
fn bearer_header(token: &str) -> String {
    format!("Authorization:Bearer {token}")
}

/// The JDK's `HttpURLConnection` logs, at FINE, the request head it writes and the response
/// head it reads (`… pairs: {GET /path HTTP/1.1: null}{Header: value}…`). Returns the JVM flag
/// that turns this on, writing the logging config into `dir`.
fn http_debug_flag(dir: &Path) -> String {
    let props = dir.join("http-debug.properties");
    std::fs::write(
        &props,
        "handlers = java.util.logging.ConsoleHandler\n\
         java.util.logging.ConsoleHandler.level = ALL\n\
         sun.net.www.protocol.http.HttpURLConnection.level = ALL\n",
    )
    .unwrap();
    format!("-Djava.util.logging.config.file={}", props.display())
}

/// From the JDK's debug log: (request head, response head) of the exchange for `path`.
fn logged_exchange(stderr: &str, path: &str) -> (String, String) {
    let request = stderr
        .lines()
        .find(|l| l.contains("pairs: {GET ") && l.contains(path))
        .unwrap_or_else(|| panic!("the JDK logged no request for {path}:\n{stderr}"))
        .to_string();
    let response = stderr
        .lines()
        .find(|l| l.contains("pairs: {null: HTTP/"))
        .unwrap_or_else(|| panic!("the JDK logged no response head:\n{stderr}"))
        .to_string();
    (request, response)
}

/// One raw HTTP/1.1 GET with exactly the given headers: (status line + headers, body).
fn raw_get(port: u16, path: &str, headers: &[(&str, &str)]) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    (
        String::from_utf8_lossy(&all[..split]).into_owned(),
        all[split + 4..].to_vec(),
    )
}

/// Signed URLs with the operator's own fetcher: no `http.header` token at all, the query carries
/// the signature, the file is named after the last path segment; the URL is made both by
/// `artifact-gateway sign --config` (offline, the server's key) and by the API (`sign` with a
/// reader token); a tampered one fails the fetch; the signature never reaches the access log.
#[test]
fn operator_fetcher_reads_a_signed_url_without_a_token() {
    let dir = common::tempdir();
    let d = dir.path();
    // Any bytes do: the job is not run here.
    let jar_file = d.join("wordcount.jar");
    common::write_pattern_file(&jar_file, 1 << 20);
    let jar = jar_file.as_path();
    let jar_bytes = std::fs::read(jar).unwrap();
    let key = d.join("signing-key");
    std::fs::write(&key, "signing-key-0123456789abcdef0123456789abcdef\n").unwrap();
    let config = format!(
        "[[mounts]]\nname = \"default\"\nurl = \"file://{data}\"\nanonymous_read = false\n\n{tokens}\n\
         [signing]\nkeys = [{{ id = \"2026-11\", secret = {{ file = {key:?} }} }}]\n",
        data = d.join("data").display(),
        tokens = reader_token(d, "default"),
        key = key.display().to_string(),
    );
    let config_file = d.join("gateway.toml");
    std::fs::write(&config_file, config).unwrap();
    let gw = Gateway::start(
        &["--config", config_file.to_str().unwrap()],
        &[("ARTIFACT_GATEWAY_TOKEN", ADMIN_TOKEN)],
    );
    admin_put(&gw, jar, &format!("default/{JAR_PATH}"), None);

    // Offline, with the server's own config (the key file), and through the API with a token.
    let (code, offline, err) = run(cli()
        .args(["sign", &format!("default/{JAR_PATH}"), "--expires", "24h"])
        .args(["--server", &gw.url, "--config"])
        .arg(&config_file));
    assert_eq!(code, 0, "sign --config failed: {err}");
    let (code, online, err) = run(cli()
        .args(["sign", &format!("default/{JAR_PATH}"), "--expires", "10m"])
        .args(["--server", &gw.url])
        .env("ARTIFACT_GATEWAY_TOKEN", READER_TOKEN));
    assert_eq!(code, 0, "sign through the API failed: {err}");
    let mut signatures = Vec::new();
    for url in [offline.trim(), online.trim()] {
        assert!(
            url.starts_with(&format!(
                "{}/artifacts/default/{JAR_PATH}?ag-expires=",
                gw.url
            )),
            "{url}"
        );
        signatures.push(url.rsplit_once("ag-signature=").unwrap().1.to_string());
        let target = d.join(format!("operator-{}", signatures.len()));
        let (code, out, err) = operator_fetch(&[], url, &target, None);
        assert_eq!(
            code, 0,
            "the operator's fetcher failed on {url}:\n{out}{err}"
        );
        let saved = PathBuf::from(out.trim());
        assert_eq!(
            saved,
            target.join("wordcount.jar"),
            "the saved file is named after the last URL segment, not the query"
        );
        assert_eq!(std::fs::read(&saved).unwrap(), jar_bytes);
    }

    // A tampered URL (another artifact with the same query) fails the operator's fetch.
    let tampered = offline.trim().replace(
        "wordcount/1.4.2/wordcount.jar",
        "wordcount/1.4.3/wordcount.jar",
    );
    let (code, out, err) = operator_fetch(&[], &tampered, &d.join("tampered"), None);
    assert_ne!(code, 0, "a tampered URL must fail:\n{out}{err}");
    let (head, body) = raw_get(gw.port, tampered.trim_start_matches(&gw.url), &[]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(
        String::from_utf8_lossy(&body).contains("\"unauthenticated\""),
        "{head}"
    );

    // The access log shows the requests, never a signature.
    std::thread::sleep(Duration::from_millis(300));
    let logs = gw.drain_logs().join("\n");
    assert!(logs.contains(JAR_PATH), "no access log lines:\n{logs}");
    for sig in &signatures {
        assert!(
            !logs.contains(sig.as_str()),
            "a signature reached the log:\n{logs}"
        );
    }
    assert!(!logs.contains("ag-signature"), "{logs}");
}

#[test]
fn operator_fetcher_over_http_reads_a_private_local_mount() {
    let started = Instant::now();
    let jar = job_jar();
    let jar_bytes = std::fs::read(jar).unwrap();
    let dir = common::tempdir();
    let d = dir.path();
    let config = format!(
        "[[mounts]]\nname = \"default\"\nurl = \"file://{data}\"\nanonymous_read = false\n\n{tokens}",
        data = d.join("data").display(),
        tokens = reader_token(d, "default"),
    );
    let gw = gateway_with(d, &config);
    admin_put(&gw, jar, &format!("default/{JAR_PATH}"), None);
    admin_put(
        &gw,
        jar,
        "default/jobs/wordcount/1.4.2/word count.jar",
        None,
    );
    let url = gw.artifact("default", JAR_PATH);
    let header = bearer_header(READER_TOKEN);

    // Anonymous reads are off: without the header there is nothing to read.
    let (head, _) = raw_get(gw.port, &format!("/artifacts/default/{JAR_PATH}"), &[]);
    assert!(
        head.starts_with("HTTP/1.1 401"),
        "an anonymous GET must be refused:\n{head}"
    );

    // The operator's fetch, with the JDK logging what went over the wire.
    let debug = http_debug_flag(d);
    let target = d.join("operator");
    let (code, out, err) =
        operator_fetch(std::slice::from_ref(&debug), &url, &target, Some(&header));
    assert_eq!(code, 0, "the operator's fetcher failed:\n{out}{err}");
    let saved = PathBuf::from(out.trim());
    assert_eq!(
        saved,
        target.join("wordcount.jar"),
        "the saved file is named after the last URL segment"
    );
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        jar_bytes,
        "the operator saved different bytes"
    );

    // What the client sent: the token from http.header, no Accept-Encoding, no Range …
    let (request, response) = logged_exchange(&err, &format!("/artifacts/default/{JAR_PATH}"));
    assert!(
        request.contains(&format!("{{Authorization: Bearer {READER_TOKEN}}}")),
        "{request}"
    );
    assert!(request.contains("{User-Agent: Java/"), "{request}");
    let lower = request.to_ascii_lowercase();
    assert!(
        !lower.contains("accept-encoding"),
        "the operator is expected to send no Accept-Encoding: {request}"
    );
    assert!(
        !lower.contains("{range:"),
        "the operator is expected to send no Range: {request}"
    );
    // … and what it got: a plain 200, never a Content-Encoding.
    assert!(response.contains("{null: HTTP/1.1 200 OK}"), "{response}");
    assert!(
        !response.to_ascii_lowercase().contains("content-encoding"),
        "{response}"
    );
    assert!(
        response.contains(&format!("{{content-length: {}}}", jar_bytes.len())),
        "{response}"
    );

    // Never gzip, even for a client that would accept it: the operator's request replayed with
    // an Accept-Encoding added still gets the identity body.
    let (head, body) = raw_get(
        gw.port,
        &format!("/artifacts/default/{JAR_PATH}"),
        &[
            ("Authorization", &format!("Bearer {READER_TOKEN}")),
            ("User-Agent", "Java/17"),
            ("Accept", "text/html, image/gif, image/jpeg, */*; q=0.2"),
            ("Accept-Encoding", "gzip, deflate, br"),
        ],
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("content-encoding"),
        "the gateway must never compress:\n{head}"
    );
    assert_eq!(body, jar_bytes);

    // A wrong token: the fetcher fails with the status code in an IOException, leaving no file.
    let wrong = d.join("wrong-token");
    let (code, _, err) = operator_fetch(&[], &url, &wrong, Some(&bearer_header("not-the-token")));
    assert_ne!(code, 0, "a wrong token must fail the fetch");
    assert!(
        err.contains("java.io.IOException") && err.contains("401"),
        "expected an IOException naming 401:\n{err}"
    );
    assert!(
        !wrong.join("wordcount.jar").exists(),
        "a refused fetch must leave no jar"
    );

    // A missing artifact: the JDK maps 404 to FileNotFoundException.
    let missing = d.join("missing");
    let missing_url = gw.artifact("default", "jobs/wordcount/9.9.9/wordcount.jar");
    let (code, _, err) = operator_fetch(&[], &missing_url, &missing, Some(&header));
    assert_ne!(code, 0, "a missing artifact must fail the fetch");
    assert!(
        err.contains("java.io.FileNotFoundException"),
        "expected FileNotFoundException:\n{err}"
    );
    assert!(!missing.join("wordcount.jar").exists());

    // `%20`: the gateway decodes the path (the artifact is `word count.jar`), while the fetcher
    // names the file after the raw path (`URL.getPath()` does not decode), so it is saved as
    // `word%20count.jar`. The query string is not part of the name.
    let spaced = d.join("spaced");
    let spaced_url = format!(
        "{}/artifacts/default/jobs/wordcount/1.4.2/word%20count.jar?v=1",
        gw.url
    );
    let (code, out, err) = operator_fetch(&[], &spaced_url, &spaced, Some(&header));
    assert_eq!(code, 0, "fetching {spaced_url}:\n{out}{err}");
    let saved = PathBuf::from(out.trim());
    assert_eq!(
        saved,
        spaced.join("word%20count.jar"),
        "the %20 is kept literally, the query dropped"
    );
    assert_eq!(std::fs::read(&saved).unwrap(), jar_bytes);

    eprintln!(
        "operator fetcher over http: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// The object's size as S3 itself reports it (a client other than the gateway).
fn s3_object_size(minio: &Minio, key: &str) -> u64 {
    use object_store::ObjectStoreExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let meta = rt
        .block_on(minio.raw().head(&object_store::path::Path::from(key)))
        .unwrap_or_else(|e| panic!("s3://{}/{key} is not in MinIO: {e}", minio.bucket));
    meta.size
}

#[test]
fn session_job_from_s3_over_https_finishes_on_the_session_cluster() {
    let started = Instant::now();
    let minio = Minio::from_env();
    let rest = require_env("AG_TEST_FLINK_REST");
    require_program("python3", "apt-get install python3");
    let bin = jdk_bin();
    let jar = job_jar();
    let digest = sha256_file(jar);
    let dir = common::tempdir();
    let d = dir.path();
    let prefix = common::random_prefix("flink-s3");

    // A private certificate for 127.0.0.1, as a cluster-internal CA would issue.
    let (cert_file, key_file) = common::self_signed(d);

    let config = format!(
        "[tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n\n\
         [[mounts]]\nname = \"jobs\"\nurl = \"s3://{bucket}/{prefix}\"\n\n\
         [mounts.s3]\nendpoint = \"{endpoint}\"\nregion = \"{region}\"\n\
         access_key_id = {{ env = \"AG_FLINK_E2E_S3_KEY\" }}\nsecret_access_key = {{ env = \"AG_FLINK_E2E_S3_SECRET\" }}\n\n{tokens}",
        cert = cert_file.display().to_string(),
        key = key_file.display().to_string(),
        bucket = minio.bucket,
        endpoint = minio.endpoint,
        region = minio.region,
        tokens = reader_token(d, "jobs"),
    );
    std::fs::write(d.join("gateway.toml"), config).unwrap();
    let gw = Gateway::start(
        &["--config", d.join("gateway.toml").to_str().unwrap()],
        &[
            ("ARTIFACT_GATEWAY_TOKEN", ADMIN_TOKEN),
            ("AG_FLINK_E2E_S3_KEY", &minio.access_key),
            ("AG_FLINK_E2E_S3_SECRET", &minio.secret_key),
        ],
    );
    assert!(gw.url.starts_with("https://"), "{}", gw.url);

    // Published with the admin CLI; the object really lands in the bucket under the prefix.
    let artifact = "wordcount/1.4.2/wordcount.jar";
    admin_put(&gw, jar, &format!("jobs/{artifact}"), Some(&cert_file));
    assert_eq!(
        s3_object_size(&minio, &format!("{prefix}/{artifact}")),
        std::fs::metadata(jar).unwrap().len()
    );

    // The operator JVM trusts the certificate through a PKCS12 truststore built by keytool.
    let truststore = d.join("truststore.p12");
    let (code, out, err) = run(Command::new(bin.join("keytool"))
        .args([
            "-importcert",
            "-noprompt",
            "-alias",
            "artifact-gateway",
            "-storetype",
            "PKCS12",
        ])
        .args(["-storepass", "changeit", "-file"])
        .arg(&cert_file)
        .arg("-keystore")
        .arg(&truststore));
    assert_eq!(code, 0, "keytool -importcert failed:\n{out}{err}");
    let trust = vec![
        format!("-Djavax.net.ssl.trustStore={}", truststore.display()),
        "-Djavax.net.ssl.trustStorePassword=changeit".to_string(),
        "-Djavax.net.ssl.trustStoreType=PKCS12".to_string(),
    ];

    let url = gw.artifact("jobs", artifact);
    let target = d.join("operator");
    let (code, out, err) =
        operator_fetch(&trust, &url, &target, Some(&bearer_header(READER_TOKEN)));
    assert_eq!(
        code, 0,
        "the operator's fetcher failed over https:\n{out}{err}"
    );
    let saved = PathBuf::from(out.trim());
    assert_eq!(saved, target.join("wordcount.jar"));
    assert_eq!(
        sha256_file(&saved),
        digest,
        "the fetched jar differs from the one published"
    );

    // Then what the operator does with it: upload to the session cluster, run, wait.
    let (code, out, err) = run(Command::new("python3")
        .arg(common::root().join("tests/flink/submit.py"))
        .args(["--timeout", "120"])
        .arg(&rest)
        .arg(&saved));
    assert_eq!(code, 0, "the job did not finish on {rest}:\n{out}{err}");
    assert!(out.trim().ends_with(" FINISHED"), "submit.py: {out}");

    eprintln!(
        "session job from S3 over https: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// Modification time and inode: both change when a file is written again (fetch writes a new
/// file and renames it into place).
fn identity(path: &Path) -> (std::time::SystemTime, u64) {
    let m = std::fs::metadata(path).unwrap();
    (m.modified().unwrap(), m.ino())
}

/// The flags Flink's own config.yaml passes to every JVM on JDK 17.
const JDK17_OPTS: &[&str] = &[
    "-XX:+IgnoreUnrecognizedVMOptions",
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.text=ALL-UNNAMED",
    "--add-opens=java.base/java.time=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED",
];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Flink application cluster: a JobManager (`StandaloneApplicationClusterEntryPoint`) that runs
/// the job of one jar, and one TaskManager. Both JVMs are killed on drop.
struct ApplicationCluster {
    jobmanager: Child,
    taskmanager: Child,
    jm_log: PathBuf,
    tm_log: PathBuf,
}

impl ApplicationCluster {
    /// Starts both JVMs; `jar_uri` is what a FlinkDeployment's `jarURI` says (`local:///…`).
    fn start(work: &Path, jar_uri: &str) -> ApplicationCluster {
        let home = flink_home();
        let java = jdk_bin().join("java");
        let conf = work.join("conf");
        let tmp = work.join("tmp");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        // TaskManagerRunner insists on every memory component being set (Flink's scripts compute
        // them with BashJavaUtils; fixed small values do the same here).
        let config = format!(
            "jobmanager.rpc.address: 127.0.0.1\n\
             jobmanager.rpc.port: {rpc}\n\
             jobmanager.bind-host: 127.0.0.1\n\
             jobmanager.memory.process.size: 1024m\n\
             taskmanager.host: 127.0.0.1\n\
             taskmanager.bind-host: 127.0.0.1\n\
             taskmanager.numberOfTaskSlots: 1\n\
             taskmanager.cpu.cores: 1.0\n\
             taskmanager.memory.framework.heap.size: 128m\n\
             taskmanager.memory.task.heap.size: 256m\n\
             taskmanager.memory.framework.off-heap.size: 128m\n\
             taskmanager.memory.task.off-heap.size: 0m\n\
             taskmanager.memory.network.min: 64m\n\
             taskmanager.memory.network.max: 64m\n\
             taskmanager.memory.managed.size: 128m\n\
             taskmanager.memory.jvm-metaspace.size: 256m\n\
             taskmanager.memory.jvm-overhead.min: 192m\n\
             taskmanager.memory.jvm-overhead.max: 192m\n\
             parallelism.default: 1\n\
             restart-strategy.type: none\n\
             slot.request.timeout: 60s\n\
             cluster.registration.error-delay: 500ms\n\
             cluster.registration.refused-registration-delay: 500ms\n\
             cluster.registration.max-timeout: 5s\n\
             rest.address: 127.0.0.1\n\
             rest.bind-address: 127.0.0.1\n\
             rest.port: {rest}\n\
             io.tmp.dirs: {tmp}\n\
             blob.storage.directory: {tmp}\n",
            rpc = free_port(),
            rest = free_port(),
            tmp = tmp.display(),
        );
        std::fs::write(conf.join("config.yaml"), config).unwrap();
        let lib = home.join("lib");
        let mut jars: Vec<PathBuf> = std::fs::read_dir(&lib)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jar"))
            .collect();
        // Flink's scripts: lib jars by name, flink-dist last.
        jars.sort_by_key(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name.starts_with("flink-dist-"), name)
        });
        let classpath = std::env::join_paths(&jars).unwrap();
        let spawn =
            |component: &str, heap: &[&str], main: &str, args: &[&str], log: &Path| -> Child {
                let mut cmd = Command::new(&java);
                cmd.args(JDK17_OPTS)
                    .args(heap)
                    .arg(format!("-Djava.io.tmpdir={}", tmp.display()))
                    .arg(format!(
                        "-Dlog4j.configurationFile=file:{}",
                        home.join("conf/log4j2.properties").display()
                    ))
                    .arg("-Dlog4j2.formatMsgNoLookups=true")
                    .arg(format!("-Dflink.component={component}"))
                    .arg("-cp")
                    .arg(&classpath)
                    .arg(main)
                    .arg("--configDir")
                    .arg(&conf)
                    .args(args)
                    // No FLINK_HOME: the job jar comes from --jars, not from a usrlib directory.
                    .env_remove("FLINK_HOME")
                    .env_remove("FLINK_CONF_DIR")
                    .current_dir(work)
                    .stdin(Stdio::null())
                    .stdout(std::fs::File::create(log).unwrap())
                    .stderr(std::fs::File::create(log.with_extension("err")).unwrap());
                cmd.spawn()
                    .unwrap_or_else(|e| panic!("cannot start the Flink {component}: {e}"))
            };
        let jm_log = work.join("jobmanager.log");
        let tm_log = work.join("taskmanager.log");
        let jobmanager = spawn(
            "jobmanager",
            &["-Xmx512m", "-Xms512m"],
            "org.apache.flink.container.entrypoint.StandaloneApplicationClusterEntryPoint",
            &["--jars", jar_uri],
            &jm_log,
        );
        let taskmanager = spawn(
            "taskmanager",
            &[
                "-Xmx384m",
                "-Xms384m",
                "-XX:MaxDirectMemorySize=192m",
                "-XX:MaxMetaspaceSize=256m",
            ],
            "org.apache.flink.runtime.taskexecutor.TaskManagerRunner",
            &[],
            &tm_log,
        );
        ApplicationCluster {
            jobmanager,
            taskmanager,
            jm_log,
            tm_log,
        }
    }

    fn logs(&self) -> (String, String) {
        let read = |p: &Path| {
            let mut s = std::fs::read_to_string(p).unwrap_or_default();
            s.push_str(&std::fs::read_to_string(p.with_extension("err")).unwrap_or_default());
            s
        };
        (read(&self.jm_log), read(&self.tm_log))
    }

    /// Waits for the JobManager to exit (an application cluster shuts down once its job is done):
    /// its exit code and both logs.
    fn wait(&mut self, timeout: Duration) -> (i32, String, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.jobmanager.try_wait().unwrap() {
                let (jm, tm) = self.logs();
                return (status.code().unwrap_or(-1), jm, tm);
            }
            if Instant::now() > deadline {
                let (jm, tm) = self.logs();
                panic!(
                    "the application cluster did not finish within {timeout:?}\n--- jobmanager (tail) ---\n{}\n--- taskmanager (tail) ---\n{}",
                    tail(&jm, 40),
                    tail(&tm, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for ApplicationCluster {
    fn drop(&mut self) {
        for child in [&mut self.jobmanager, &mut self.taskmanager] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn application_mode_runs_a_jar_fetched_from_hdfs() {
    let started = Instant::now();
    let hdfs = require_env("AG_TEST_HDFS_URL");
    let jar = job_jar();
    let digest = sha256_file(jar);
    let dir = common::tempdir();
    let d = dir.path();
    let prefix = common::random_prefix("flink-hdfs");

    // The jar is published into HDFS through a gateway mount (the gateway records its digest).
    let config = format!(
        "[[mounts]]\nname = \"hdfs\"\nurl = \"{hdfs}/{prefix}\"\n\n[mounts.hdfs]\n\n{tokens}",
        tokens = reader_token(d, "hdfs"),
    );
    let gw = gateway_with(d, &config);
    admin_put(&gw, jar, &format!("hdfs/{JAR_PATH}"), None);

    // a. Straight from HDFS, no gateway involved, pinned to the published digest.
    let direct_dest = d.join("direct");
    let direct_source = format!("{hdfs}/{prefix}/{JAR_PATH}");
    let fetch_direct = || {
        run(cli().arg("fetch").arg("--dest").arg(&direct_dest).args([
            "--sha256",
            &digest,
            &direct_source,
        ]))
    };
    let (code, out, err) = fetch_direct();
    assert_eq!(code, 0, "fetch {direct_source} failed:\n{out}{err}");
    let direct = direct_dest.join("wordcount.jar");
    assert_eq!(sha256_file(&direct), digest);

    // b. Through the gateway, from a manifest (the ConfigMap form) with the token from a file.
    let usrlib = d.join("usrlib");
    let manifest = d.join("artifacts.yaml");
    std::fs::write(
        &manifest,
        format!(
            "artifacts:\n  - source: {}\n",
            gw.artifact("hdfs", JAR_PATH)
        ),
    )
    .unwrap();
    let fetch_manifest = || {
        run(cli()
            .arg("fetch")
            .arg("--dest")
            .arg(&usrlib)
            .arg("--manifest")
            .arg(&manifest)
            .arg("--token-file")
            .arg(d.join("flink-token")))
    };
    let (code, out, err) = fetch_manifest();
    assert_eq!(code, 0, "fetch --manifest failed:\n{out}{err}");
    let fetched = usrlib.join("wordcount.jar");
    assert_eq!(sha256_file(&fetched), digest);
    assert!(
        err.contains("matches the served digest"),
        "the gateway serves the digest recorded at put time:\n{err}"
    );

    // c. A restarted pod runs the same init container again: nothing is downloaded twice.
    let before = (identity(&direct), identity(&fetched));
    for (what, (code, out, err)) in [("direct", fetch_direct()), ("manifest", fetch_manifest())] {
        assert_eq!(code, 0, "second {what} fetch failed:\n{out}{err}");
        assert!(
            err.contains("up to date wordcount.jar"),
            "second {what} fetch:\n{err}"
        );
        assert!(err.contains("0 downloaded"), "second {what} fetch:\n{err}");
    }
    assert_eq!(
        (identity(&direct), identity(&fetched)),
        before,
        "a second fetch must not rewrite the jar"
    );

    // d. Flink runs the fetched jar in application mode from its local path.
    let jar_uri = format!("local://{}", fetched.display());
    let mut cluster = ApplicationCluster::start(&d.join("flink"), &jar_uri);
    let (code, jm, tm) = cluster.wait(Duration::from_secs(150));
    let context = format!(
        "--- jobmanager (tail) ---\n{}\n--- taskmanager (tail) ---\n{}",
        tail(&jm, 40),
        tail(&tm, 40)
    );
    assert!(
        jm.contains(&jar_uri),
        "the JobManager was started on {jar_uri}\n{context}"
    );
    assert!(
        jm.contains("reached terminal state FINISHED"),
        "the job did not finish\n{context}"
    );
    assert!(
        jm.contains("Application completed SUCCESSFULLY"),
        "{context}"
    );
    assert_eq!(
        code, 0,
        "the application cluster exited with {code}\n{context}"
    );
    assert!(
        tm.contains("(the,6)"),
        "the word counts of the job are missing from the TaskManager's output\n{context}"
    );

    eprintln!(
        "application mode from HDFS: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
