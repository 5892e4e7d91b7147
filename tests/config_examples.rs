//! The example configurations in `config/` parse with the real parser, so they cannot rot:
//! every `*.toml` there, once as written and once with every commented-out `key = value` and
//! `[table]` line switched on (commented keys are documentation too). The values that
//! `config/example.toml` calls defaults are compared with the parser's real defaults.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use artifact_gateway::config::{Config, LogFormat};
use artifact_gateway::secret::Secret;
use artifact_gateway::service::auth::Scope;
use bytesize::ByteSize;

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// Every `config/*.toml`, sorted.
fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(config_dir())
        .expect("config/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn parse(path: &Path, text: &str) -> Config {
    Config::from_toml(text).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

/// Turns `# key = value` and `# [table]` lines into live ones; prose comments stay comments.
fn uncomment_keys(text: &str) -> String {
    text.lines()
        .map(|line| {
            let Some(rest) = line.strip_prefix("# ") else {
                return line.to_string();
            };
            let is_table = rest.starts_with('[') && rest.ends_with(']') && !rest.contains(' ');
            let is_key = rest.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
            });
            if is_table || is_key {
                rest.to_string()
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The environment variables the examples' `{ env = … }` secrets name.
fn set_secret_env() {
    for (k, v) in [
        ("ARTIFACT_GATEWAY_CI_TOKEN", "ci-token-for-tests"),
        ("S3_ACCESS_KEY_ID", "test-access-key"),
        ("OSS_ACCESS_KEY_ID", "test-oss-key"),
        ("OSS_ACCESS_KEY_SECRET", "test-oss-secret"),
        ("AWS_SESSION_TOKEN", "test-session-token"),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", "test-sts-token"),
    ] {
        std::env::set_var(k, v);
    }
}

/// Every `{ env = … }` secret in a config resolves (so the names in the examples are real ones
/// the test sets, not typos like `{ env = "" }`).
fn resolve_env_secrets(path: &Path, config: &Config) {
    let mut secrets: Vec<&Secret> = config.tokens.iter().map(|t| &t.secret).collect();
    for m in &config.mounts {
        if let Some(s3) = &m.s3 {
            secrets.extend(
                [&s3.access_key_id, &s3.secret_access_key, &s3.session_token]
                    .into_iter()
                    .flatten(),
            );
        }
        if let Some(oss) = &m.oss {
            secrets.extend(
                [
                    &oss.access_key_id,
                    &oss.access_key_secret,
                    &oss.security_token,
                ]
                .into_iter()
                .flatten(),
            );
        }
    }
    for s in secrets {
        if matches!(s, Secret::Env(_)) {
            s.resolve()
                .unwrap_or_else(|e| panic!("{}: secret {s:?}: {e}", path.display()));
        }
    }
}

#[test]
fn every_example_parses_as_written_and_with_commented_keys_enabled() {
    set_secret_env();
    let files = example_files();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"example.toml".into()) && names.contains(&"minimal.toml".into()),
        "config/ holds {names:?}"
    );
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let config = parse(path, &text);
        resolve_env_secrets(path, &config);
        let enabled = uncomment_keys(&text);
        let full = parse(path, &enabled);
        resolve_env_secrets(path, &full);
    }
}

#[test]
fn the_uncommenting_helper_only_touches_keys_and_tables() {
    let text =
        "# prose: a = b here\n# key = 1\n# [tls]\n# [[mounts]] — prose\n#   indented = 2\nlive = 3";
    assert_eq!(
        uncomment_keys(text),
        "# prose: a = b here\nkey = 1\n[tls]\n# [[mounts]] — prose\n#   indented = 2\nlive = 3"
    );
}

#[test]
fn example_documents_the_real_defaults() {
    let minimal_path = config_dir().join("minimal.toml");
    let minimal = parse(
        &minimal_path,
        &std::fs::read_to_string(&minimal_path).unwrap(),
    );
    // minimal.toml sets no [limits] or [log]: what it gets are the parser's defaults.
    let d = &minimal.limits;
    assert_eq!(d.max_header_bytes, ByteSize::kib(16));
    assert_eq!(d.header_read_timeout, Duration::from_secs(30));
    assert_eq!(d.idle_timeout, Duration::from_secs(120));
    assert_eq!(d.shutdown_grace, Duration::from_secs(30));
    assert_eq!(d.backend_timeout, Duration::from_secs(30));
    assert_eq!(minimal.log.format, LogFormat::Text);
    assert_eq!(minimal.log.level, None);
    assert!(minimal.tls.is_none());
    assert!(minimal.tokens.is_empty());
    let m = &minimal.mounts[0];
    assert!(!m.anonymous_read);
    assert_eq!(m.max_upload_size, ByteSize::gib(10));

    let example_path = config_dir().join("example.toml");
    let example = parse(
        &example_path,
        &std::fs::read_to_string(&example_path).unwrap(),
    );
    // example.toml writes every default out; they must equal the real ones.
    assert_eq!(
        example.listen.to_string(),
        "127.0.0.1:8080",
        "the documented default listen address"
    );
    let e = &example.limits;
    assert_eq!(
        (
            e.max_header_bytes,
            e.header_read_timeout,
            e.idle_timeout,
            e.shutdown_grace,
            e.backend_timeout
        ),
        (
            d.max_header_bytes,
            d.header_read_timeout,
            d.idle_timeout,
            d.shutdown_grace,
            d.backend_timeout
        ),
        "config/example.toml's [limits] must show the defaults"
    );
    assert_eq!(example.log.format, minimal.log.format);
    let mounts = &example.mounts;
    let jobs = mounts
        .iter()
        .find(|m| m.name == "jobs")
        .expect("a `jobs` mount");
    assert_eq!(
        (jobs.anonymous_read, jobs.read_only, jobs.max_upload_size),
        (m.anonymous_read, m.read_only, m.max_upload_size)
    );
    assert!(
        mounts.iter().any(|m| m.read_only),
        "config/example.toml shows a read-only mount"
    );
    let s3 = mounts
        .iter()
        .find_map(|m| m.s3.as_ref())
        .expect("an s3 mount");
    assert_eq!(
        (s3.part_size, s3.upload_concurrency),
        (Some(16 * 1024 * 1024), Some(4))
    );
    // [mounts.cache]: the example's values are the parser's defaults.
    let with_cache = Config::from_toml(
        "[[mounts]]\nname = \"a\"\nurl = \"s3://b/p\"\n[mounts.cache]\ndir = \"/c\"\n",
    )
    .unwrap();
    let d = with_cache.mounts[0].cache.as_ref().unwrap();
    let e = mounts.iter().find_map(|m| m.cache.as_ref());
    let e = e.expect("a mount with [mounts.cache]");
    assert_eq!(
        (e.max_size, e.disk_full_backoff),
        (d.max_size, d.disk_full_backoff),
        "config/example.toml's [mounts.cache] must show the defaults"
    );
    assert_eq!(d.max_size, ByteSize::gib(10));
    assert_eq!(d.disk_full_backoff, Duration::from_secs(30));
}

#[test]
fn example_shows_every_backend_and_every_scope() {
    let path = config_dir().join("example.toml");
    let config = parse(&path, &std::fs::read_to_string(&path).unwrap());
    let kinds = common::backend_kinds(&config);
    for kind in ["local", "s3", "oss", "hdfs"] {
        assert!(
            kinds.contains(&kind),
            "config/example.toml has no {kind} mount: {kinds:?}"
        );
    }
    let hdfs = config.mounts.iter().find_map(|m| m.hdfs.as_ref()).unwrap();
    assert_eq!(
        hdfs.config.get("dfs.nameservices").map(String::as_str),
        Some("mycluster")
    );
    for scope in [Scope::Read, Scope::Write, Scope::Delete] {
        assert!(
            config.tokens.iter().any(|t| t.scopes.contains(&scope)),
            "no token shows scope {scope:?}"
        );
    }
    assert!(config
        .tokens
        .iter()
        .any(|t| matches!(t.secret, Secret::File(_))));
    assert!(config
        .tokens
        .iter()
        .any(|t| matches!(t.secret, Secret::Env(_))));
}

#[test]
fn example_with_commented_keys_enabled_turns_on_tls() {
    let path = config_dir().join("example.toml");
    let full = parse(
        &path,
        &uncomment_keys(&std::fs::read_to_string(&path).unwrap()),
    );
    let tls = full
        .tls
        .expect("[tls] is documented in config/example.toml");
    assert_eq!(
        tls.cert_file,
        PathBuf::from("/etc/artifact-gateway/tls/tls.crt")
    );
    assert_eq!(full.log.level.as_deref(), Some("info"));
}
