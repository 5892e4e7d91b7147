//! deploy/ checked offline, as part of `cargo test`:
//! - `tests/deploy/validate.sh` (helm lint/template, kubernetes-validate --strict, the Flink CRD
//!   schemas, the wiring between chart and Flink examples, and a set of deliberately broken
//!   examples the validator must reject) must pass;
//! - every config.toml the chart renders parses with the gateway's own config parser;
//! - the Dockerfile copies only paths that exist and that `.dockerignore` keeps, and runs the
//!   binary as a non-root user with the documented entrypoint and command.
//!
//! No Docker engine exists here, so the image itself is not built (deploy/README.md says so).

mod common;

use std::path::Path;
use std::process::Command;

use artifact_gateway::config::Config;
use artifact_gateway::storage::registry::BackendSpec;

/// Runs validate.sh into `out`; fails with its output, or with an install hint when a tool is
/// missing.
fn run_validate(out: &Path) -> String {
    let script = common::root().join("tests/deploy/validate.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    match output.status.code() {
        Some(0) => text,
        Some(3) => panic!(
            "a tool the deploy/ validation needs is missing. Install helm, kubernetes-validate, jsonschema and the Flink \
             CRDs with `tests/deploy/install.sh` (tests/run.sh runs it).\n{text}"
        ),
        code => panic!("tests/deploy/validate.sh failed (exit {code:?}):\n{text}"),
    }
}

#[test]
fn chart_and_flink_examples_validate_offline_and_chart_configs_parse() {
    let out = tempfile::tempdir().expect("tempdir");
    let log = run_validate(out.path());
    assert!(
        log.contains("deploy/ is valid"),
        "validate.sh finished without its summary:\n{log}"
    );
    assert!(
        log.contains("broken variants were rejected"),
        "the validator self-check did not run:\n{log}"
    );

    // Each chart render left its config.toml behind; the real parser must accept all of them.
    let mut parsed = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(render) = name
            .strip_prefix("config-")
            .and_then(|n| n.strip_suffix(".toml"))
        {
            let text = std::fs::read_to_string(&path).unwrap();
            let config = Config::from_toml(&text).unwrap_or_else(|e| {
                panic!("the chart's config.toml for `{render}` does not parse: {e}\n{text}")
            });
            parsed.insert(render.to_string(), config);
        }
    }
    let names: Vec<&str> = parsed.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["default", "existing-tls", "s3-plain-http"],
        "renders found in {}",
        out.path().display()
    );

    let default = &parsed["default"];
    assert_eq!(default.listen.to_string(), "0.0.0.0:8443");
    let tls = default.tls.as_ref().expect("TLS is on by default");
    assert_eq!(
        tls.cert_file,
        Path::new("/etc/artifact-gateway/tls/tls.crt")
    );
    assert_eq!(default.mounts.len(), 1);
    assert_eq!(
        default.mounts[0].backend().unwrap(),
        BackendSpec::Local {
            root: "/var/lib/artifact-gateway/jobs".into()
        }
    );
    assert_eq!(
        default
            .tokens
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["admin", "flink"]
    );

    let s3 = &parsed["s3-plain-http"];
    assert_eq!(s3.listen.to_string(), "0.0.0.0:8080");
    assert!(s3.tls.is_none());
    let kinds = common::backend_kinds(s3);
    assert_eq!(kinds, ["s3", "s3", "oss", "hdfs"]);
    let minio = s3.mounts.iter().find(|m| m.name == "minio").unwrap();
    let opts = minio.s3.as_ref().unwrap();
    assert_eq!(
        (opts.allow_http, opts.virtual_hosted_style),
        (Some(true), Some(false))
    );
    assert!(minio.anonymous_read);
    assert_eq!(minio.max_upload_size, bytesize::ByteSize::gib(2));
    assert_eq!(
        s3.mounts[0].s3.as_ref().unwrap().part_size,
        Some(32 * 1024 * 1024),
        "numbers survive Helm's float64 values"
    );
    let hdfs = s3.mounts.iter().find_map(|m| m.hdfs.as_ref()).unwrap();
    assert_eq!(
        hdfs.config
            .get("dfs.ha.namenodes.mycluster")
            .map(String::as_str),
        Some("nn1,nn2")
    );
    assert_eq!(s3.log.level.as_deref(), Some("artifact_gateway=debug,info"));
    assert!(default.signing.is_none(), "signed URLs are off by default");

    // Signing keys from a Secret, two at once (a rotation: the first signs, both verify), each a
    // file of the `signing` volume (validate.sh checks the file is mounted from that Secret key);
    // and a read-only mount on a volume that is not the data volume.
    let tls = &parsed["existing-tls"];
    let signing = tls.signing.as_ref().expect("signing keys rendered");
    let keys: Vec<(String, String)> = signing
        .keys
        .iter()
        .map(|k| (k.id.clone(), format!("{:?}", k.secret)))
        .collect();
    assert_eq!(
        keys,
        [
            (
                "k2".to_string(),
                "file:/etc/artifact-gateway/signing/k2".to_string()
            ),
            (
                "k1".to_string(),
                "file:/etc/artifact-gateway/signing/k1".to_string()
            )
        ]
    );
    assert_eq!(
        signing.max_expires,
        std::time::Duration::from_secs(24 * 3600)
    );
    let rendered = std::fs::read_to_string(out.path().join("rendered-existing-tls.yaml")).unwrap();
    for (item_key, path) in [("key-2026-12", "k2"), ("key-2026-06", "k1")] {
        assert!(
            rendered.contains(&format!(
                "- key: {item_key}\n                      path: {path}"
            )),
            "the signing volume maps Secret key {item_key} to file {path}:\n{rendered}"
        );
    }
    let shared = tls.mounts.iter().find(|m| m.name == "shared").unwrap();
    assert!(shared.read_only);
    assert!(
        !tls.mounts
            .iter()
            .find(|m| m.name == "jobs")
            .unwrap()
            .read_only
    );
}

/// The instructions of a Dockerfile, continuation lines joined, comments dropped.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (word, rest) = current
            .split_once(char::is_whitespace)
            .unwrap_or((current.as_str(), ""));
        out.push((word.to_ascii_uppercase(), rest.trim().to_string()));
        current.clear();
    }
    out
}

fn dockerignore_patterns() -> Vec<String> {
    std::fs::read_to_string(common::root().join(".dockerignore"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn dockerfile_references_existing_paths_and_runs_non_root() {
    let text = std::fs::read_to_string(common::root().join("deploy/Dockerfile"))
        .expect("deploy/Dockerfile");
    let instructions = dockerfile_instructions(&text);
    let ignored = dockerignore_patterns();
    let mut copied = Vec::new();
    let mut stages = 0;
    let mut stage_name = String::new();
    let mut prebuilt_copies = 0;
    for (word, rest) in &instructions {
        match word.as_str() {
            "FROM" => {
                stages += 1;
                let parts: Vec<&str> = rest.split_whitespace().collect();
                stage_name = match parts.as_slice() {
                    [_, kw, name] if kw.eq_ignore_ascii_case("as") => name.to_string(),
                    _ => String::new(),
                };
            }
            // The `prebuilt` stage (--build-arg BINARY_STAGE=prebuilt) copies a binary the
            // caller puts into the build context; it is not part of the repository.
            "COPY" if stage_name == "prebuilt" => {
                let args: Vec<&str> = rest.split_whitespace().collect();
                assert_eq!(
                    args,
                    ["prebuilt/artifact-gateway", "/out/artifact-gateway"],
                    "the prebuilt stage copies exactly the caller's binary"
                );
                assert!(
                    !ignored.iter().any(|p| p == "prebuilt"),
                    ".dockerignore must keep prebuilt/ in the build context"
                );
                prebuilt_copies += 1;
            }
            "COPY" | "ADD" => {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                if parts.iter().any(|p| p.starts_with("--from=")) {
                    continue;
                }
                let args: Vec<&str> = parts.into_iter().filter(|p| !p.starts_with("--")).collect();
                let (sources, _dest) = args.split_at(args.len() - 1);
                for src in sources {
                    let path = common::root().join(src);
                    assert!(
                        path.exists(),
                        "deploy/Dockerfile copies {src}, which does not exist in the repository"
                    );
                    let top = src.trim_start_matches("./").split('/').next().unwrap();
                    assert!(
                        !ignored.iter().any(|p| p == top || p == src.trim_end_matches('/')),
                        "deploy/Dockerfile copies {src}, but .dockerignore leaves it out of the build context"
                    );
                    copied.push(src.trim_end_matches('/').to_string());
                }
            }
            _ => {}
        }
    }
    assert!(
        stages >= 2,
        "a multi-stage build is expected, found {stages} FROM lines"
    );
    assert_eq!(
        prebuilt_copies, 1,
        "a `prebuilt` stage copying prebuilt/artifact-gateway"
    );
    // The binary stage is chosen by a build argument whose default compiles from source.
    assert!(
        instructions
            .iter()
            .any(|(w, r)| w == "ARG" && r == "BINARY_STAGE=builder"),
        "ARG BINARY_STAGE=builder: the default build compiles from source"
    );
    assert!(
        instructions
            .iter()
            .any(|(w, r)| w == "FROM" && r == "${BINARY_STAGE} AS binary"),
        "FROM ${{BINARY_STAGE}} AS binary"
    );

    // Everything Cargo needs to build: the manifests and every target's directory.
    for needed in ["Cargo.toml", "Cargo.lock", "src", "benches"] {
        assert!(
            copied.iter().any(|c| c == needed),
            "deploy/Dockerfile never copies {needed}; cargo needs it"
        );
    }
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(common::root().join("Cargo.toml")).unwrap())
            .unwrap();
    for section in ["bin", "bench", "test", "example"] {
        for target in manifest
            .get(section)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(path) = target.get("path").and_then(|p| p.as_str()) {
                let top = path.split('/').next().unwrap();
                assert!(
                    copied.iter().any(|c| c == top),
                    "Cargo.toml's [[{section}]] {path} is outside what the image copies"
                );
            }
        }
    }
    for bench in manifest
        .get("bench")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let name = bench["name"].as_str().unwrap();
        assert!(
            common::root()
                .join("benches")
                .join(format!("{name}.rs"))
                .exists()
                || bench.get("path").is_some()
        );
    }

    // The builder's Rust is at least the crate's rust-version.
    let rust_version = manifest["package"]["rust-version"].as_str().unwrap();
    let arg = instructions
        .iter()
        .find_map(|(w, r)| {
            (w == "ARG" && r.starts_with("RUST_VERSION="))
                .then(|| r["RUST_VERSION=".len()..].to_string())
        })
        .expect("ARG RUST_VERSION=…");
    let parse = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    assert!(
        parse(&arg) >= parse(rust_version),
        "builder Rust {arg} is older than rust-version {rust_version}"
    );

    // The runtime stage: non-root numeric user, the documented entrypoint and command.
    let last = |word: &str| {
        instructions
            .iter()
            .rev()
            .find(|(w, _)| w == word)
            .map(|(_, r)| r.clone())
    };
    let user = last("USER").expect("a USER line");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric USER, so runAsNonRoot can check it");
    assert_ne!(uid, 0, "the image must not run as root");
    assert_eq!(
        last("ENTRYPOINT").as_deref(),
        Some(r#"["artifact-gateway"]"#)
    );
    assert_eq!(
        last("CMD").as_deref(),
        Some(r#"["serve", "--config", "/etc/artifact-gateway/config.toml"]"#)
    );

    // The baked-in config is the one in config/, parses, and serves from the image's volume on
    // an exposed port reachable from outside the container.
    let baked = instructions
        .iter()
        .find_map(|(w, r)| {
            (w == "COPY" && r.ends_with("/etc/artifact-gateway/config.toml"))
                .then(|| r.split_whitespace().next().unwrap().to_string())
        })
        .expect("the image installs /etc/artifact-gateway/config.toml");
    let config = Config::from_file(&common::root().join(&baked)).unwrap();
    assert!(
        config.listen.ip().is_unspecified(),
        "{baked} must listen on all interfaces inside a container"
    );
    let expose = last("EXPOSE").unwrap_or_default();
    assert!(
        expose
            .split_whitespace()
            .any(|p| p == config.listen.port().to_string()),
        "EXPOSE {expose} lacks {}",
        config.listen
    );
    let volume = last("VOLUME").expect("a VOLUME for the data directory");
    for m in &config.mounts {
        if let BackendSpec::Local { root } = m.backend().unwrap() {
            let dir = volume.trim_matches(|c| c == '[' || c == ']' || c == '"');
            assert!(
                root.starts_with(dir),
                "mount {} at {} is not on the image's VOLUME {dir}",
                m.name,
                root.display()
            );
        }
    }
}

#[test]
fn chart_app_version_is_the_crate_version() {
    let chart =
        std::fs::read_to_string(common::root().join("deploy/helm/artifact-gateway/Chart.yaml"))
            .unwrap();
    let chart: serde_yaml_ng::Value = serde_yaml_ng::from_str(&chart).unwrap();
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "Chart.yaml appVersion"
    );
}
