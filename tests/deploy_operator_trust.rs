//! The FlinkSessionJob path of deploy/ run for real, minus Kubernetes: the certificate the Helm
//! chart generates, served by the real gateway, fetched by the Flink Kubernetes Operator's own
//! `HttpArtifactFetcher` in a JVM configured exactly as `deploy/flink/operator-values.yaml` says
//! (truststore built by its init-container script, its JVM flags, its `http.header` line).
//!
//! The Service name `artifact-gateway.flink.svc` is mapped to 127.0.0.1 for the JVM with
//! `-Djdk.net.hosts.file` and for curl with `--resolve`, so certificate names are checked as in
//! the cluster. Needs helm (tests/deploy/install.sh), curl, a JDK and the operator fetcher
//! (tests/flink/install.sh); a missing one fails the test with the command to run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use common::{require_program, run, sha256_file, write_pattern_file, Gateway};
use serde::Deserialize;

const HOST: &str = "artifact-gateway.flink.svc";
const ARTIFACT: &str = "jobs/wordcount/1.0.0/wordcount.jar";
const ADMIN_TOKEN: &str = "admin-token-for-the-trust-test";
const FLINK_TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn helm() -> PathBuf {
    let on_path = Command::new("sh")
        .args(["-c", "command -v helm"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(o) = on_path {
        return PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    }
    let gopath = Command::new("go")
        .args(["env", "GOPATH"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| format!("{}/go", std::env::var("HOME").unwrap_or_default()));
    let candidate = PathBuf::from(gopath).join("bin/helm");
    assert!(
        candidate.exists(),
        "helm is not installed: run tests/deploy/install.sh"
    );
    candidate
}

fn java_home() -> PathBuf {
    if let Ok(home) = std::env::var("JAVA_HOME") {
        if Path::new(&home).join("bin/keytool").exists() {
            return PathBuf::from(home);
        }
    }
    require_program(
        "java",
        "install a JDK 17 (apt-get install openjdk-17-jdk-headless)",
    );
    let (_, java, _) = run(Command::new("sh").args(["-c", "command -v java"]));
    let real = std::fs::canonicalize(java.trim()).expect("resolve java");
    let home = real
        .parent()
        .and_then(Path::parent)
        .expect("JAVA_HOME above bin/java")
        .to_path_buf();
    assert!(
        home.join("bin/keytool").exists(),
        "no keytool next to {}",
        real.display()
    );
    home
}

/// The chart's TLS Secret and CA ConfigMap from `helm template` with default values:
/// (tls.crt, tls.key, ca.crt of the Secret, ca.crt of the ConfigMap).
fn chart_certificate() -> (String, String, String, String) {
    let chart = common::root().join("deploy/helm/artifact-gateway");
    let (code, out, err) = run(Command::new(helm())
        .args(["template", "artifact-gateway"])
        .arg(&chart)
        .args(["--namespace", "flink", "--show-only", "templates/tls.yaml"]));
    assert_eq!(code, 0, "helm template failed: {err}");
    let mut secret = None;
    let mut ca_map = None;
    for doc in serde_yaml_ng::Deserializer::from_str(&out) {
        let v = serde_yaml_ng::Value::deserialize(doc).unwrap();
        match v["kind"].as_str() {
            Some("Secret") => secret = Some(v),
            Some("ConfigMap") => ca_map = Some(v),
            _ => {}
        }
    }
    let secret = secret.expect("the chart renders a TLS Secret by default");
    let decode = |key: &str| {
        let b64 = secret["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("Secret has no {key}"));
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    };
    let ca_map = ca_map.expect("the chart publishes the CA in a ConfigMap by default");
    let published = ca_map["data"]["ca.crt"].as_str().unwrap().to_string();
    (
        decode("tls.crt"),
        decode("tls.key"),
        decode("ca.crt"),
        published,
    )
}

/// What operator-values.yaml configures: (truststore script, JVM flags, header value).
fn operator_values() -> (String, Vec<String>, String) {
    let text =
        std::fs::read_to_string(common::root().join("deploy/flink/operator-values.yaml")).unwrap();
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let init = &v["operatorPod"]["initContainers"][0];
    assert_eq!(init["name"].as_str(), Some("gateway-truststore"));
    let script = init["args"][0]
        .as_str()
        .expect("the truststore script")
        .to_string();
    let jvm = v["jvmArgs"]["operator"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    let conf = v["defaultConfiguration"]["flink-conf.yaml"]
        .as_str()
        .unwrap();
    let header = conf
        .lines()
        .find_map(|l| l.strip_prefix("kubernetes.operator.user.artifacts.http.header: "))
        .expect("operator-values.yaml sets kubernetes.operator.user.artifacts.http.header")
        .to_string();
    (script, jvm, header)
}

#[test]
fn operator_fetches_from_the_chart_certificate_as_operator_values_configure_it() {
    require_program("curl", "apt-get install curl");
    let fetcher = common::operator_fetcher();
    let java_home = java_home();
    let dir = common::tempdir();
    let d = dir.path();

    // 1. The chart's generated certificate, served by the real gateway.
    let (crt, key, ca, published_ca) = chart_certificate();
    assert_eq!(
        ca.trim(),
        published_ca.trim(),
        "the CA ConfigMap must hold the CA of the generated certificate"
    );
    for (name, body) in [("tls.crt", &crt), ("tls.key", &key), ("ca/ca.crt", &ca)] {
        let path = d.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    std::fs::write(d.join("flink-token"), format!("{FLINK_TOKEN}\n")).unwrap();
    let config = format!(
        "[tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n\n[[mounts]]\nname = \"jobs\"\nurl = \"file://{data}\"\n\n\
         [[tokens]]\nname = \"flink\"\nsecret = {{ file = {token:?} }}\nscopes = [\"read\"]\nmounts = [\"jobs\"]\n",
        cert = d.join("tls.crt"),
        key = d.join("tls.key"),
        data = d.join("data").display(),
        token = d.join("flink-token"),
    );
    std::fs::write(d.join("config.toml"), config).unwrap();
    let config_path = d.join("config.toml");
    let gw = Gateway::start(
        &["--config", config_path.to_str().unwrap()],
        &[("ARTIFACT_GATEWAY_TOKEN", ADMIN_TOKEN)],
    );
    assert!(
        gw.url.starts_with("https://"),
        "the gateway should serve TLS: {}",
        gw.url
    );
    let url = format!("https://{HOST}:{}/artifacts/{ARTIFACT}", gw.port);

    // 2. Upload with curl, which verifies the chart's certificate for the Service name.
    let jar = d.join("wordcount.jar");
    let digest = write_pattern_file(&jar, 3 * 1024 * 1024 + 17);
    let resolve = format!("{HOST}:{}:127.0.0.1", gw.port);
    let (code, out, err) = run(Command::new("curl")
        .args(["--silent", "--show-error", "--fail-with-body", "--cacert"])
        .arg(d.join("ca/ca.crt"))
        .args([
            "--resolve",
            &resolve,
            "-H",
            &format!("Authorization: Bearer {ADMIN_TOKEN}"),
            "-T",
        ])
        .arg(&jar)
        .arg(&url));
    assert_eq!(
        code, 0,
        "curl upload with the chart's CA failed: {out}{err}"
    );

    // 3. The truststore, built by operator-values.yaml's init-container script.
    let (script, jvm_flags, header) = operator_values();
    let truststore_dir = d.join("truststore");
    std::fs::create_dir_all(&truststore_dir).unwrap();
    let local_script = script
        .replace("/opt/flink/truststore", truststore_dir.to_str().unwrap())
        .replace("/etc/artifact-gateway-ca", d.join("ca").to_str().unwrap());
    let path = format!(
        "{}/bin:{}",
        java_home.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (code, out, err) = run(Command::new("sh")
        .args(["-ec", &local_script])
        .env("JAVA_HOME", &java_home)
        .env("PATH", &path));
    assert_eq!(
        code, 0,
        "the truststore script of operator-values.yaml failed:\n{out}{err}"
    );
    assert!(truststore_dir.join("truststore.p12").exists());

    // 4. The operator's JVM flags and header, with the local paths and the real token.
    let jvm: Vec<String> = jvm_flags
        .iter()
        .map(|f| f.replace("/opt/flink/truststore", truststore_dir.to_str().unwrap()))
        .collect();
    assert!(
        jvm.iter()
            .any(|f| f.starts_with("-Djavax.net.ssl.trustStore=")),
        "{jvm:?}"
    );
    std::fs::write(d.join("hosts"), format!("127.0.0.1 {HOST}\n")).unwrap();
    let hosts_flag = format!("-Djdk.net.hosts.file={}", d.join("hosts").display());
    assert!(
        header.contains("REPLACE-WITH-THE-FLINK-TOKEN"),
        "the header placeholder changed: {header}"
    );
    let header = header.replace("REPLACE-WITH-THE-FLINK-TOKEN", FLINK_TOKEN);

    let fetch = |flags: &[String], header: &str, into: &Path| {
        let mut cmd = Command::new("bash");
        cmd.arg(&fetcher)
            .args(flags)
            .arg(&hosts_flag)
            .arg(&url)
            .arg(into);
        if !header.is_empty() {
            cmd.arg(header);
        }
        run(&mut cmd)
    };

    let target = d.join("fetched");
    let (code, out, err) = fetch(&jvm, &header, &target);
    assert_eq!(code, 0, "the operator's HttpArtifactFetcher failed with operator-values.yaml's settings:\n{out}{err}");
    let saved = PathBuf::from(out.trim());
    assert_eq!(
        saved.file_name().unwrap(),
        "wordcount.jar",
        "saved as {}",
        saved.display()
    );
    assert_eq!(
        sha256_file(&saved),
        digest,
        "the operator got different bytes"
    );

    // Each piece is necessary: without the truststore the JVM rejects the certificate …
    let (code, _, err) = fetch(&[], &header, &d.join("no-trust"));
    assert_ne!(code, 0, "without the truststore the fetch must fail");
    assert!(
        err.contains("SSLHandshakeException") || err.contains("PKIX"),
        "unexpected failure without truststore:\n{err}"
    );
    // … and without the header the gateway answers 401.
    let (code, _, err) = fetch(&jvm, "", &d.join("no-header"));
    assert_ne!(code, 0, "without the bearer header the fetch must fail");
    assert!(
        err.contains("401"),
        "unexpected failure without header:\n{err}"
    );
}
