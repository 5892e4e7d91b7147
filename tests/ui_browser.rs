//! The `/ui/` page in a real browser: `node tests/ui/e2e.mjs` (Playwright driving Debian's
//! headless Chromium) against the real binary, serving two local mounts — `private` (tokens only)
//! and `public` (anonymous read). Each browser case prints its own `ui case … ok` line; screenshots
//! land in `target/ui-screenshots/`. Needs Node.js, /usr/bin/chromium and playwright-core:
//! `tests/ui/install.sh` installs them (tests/run.sh calls it).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ADMIN: &str = "ui-admin-token-0123456789";
const READER: &str = "ui-reader-token-9876543210";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails with what to install when the browser tooling is missing.
fn require_tooling() -> PathBuf {
    let hint = "run tests/ui/install.sh (installs Node.js, Debian's chromium and playwright-core from npm); \
                tests/run.sh does it for you";
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is not installed: {hint}"
    );
    let chromium = std::env::var("AG_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: {hint}"
    );
    let ui = root().join("tests/ui");
    assert!(
        ui.join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is not installed in tests/ui/node_modules: {hint}"
    );
    ui
}

#[test]
fn ui_in_headless_chromium() {
    let ui = require_tooling();
    let dir = common::tempdir();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"[[mounts]]
name = "private"
url = "file://{private}"

[[mounts]]
name = "public"
url = "file://{public}"
anonymous_read = true

[[tokens]]
name = "admin"
secret = {{ env = "AG_UI_ADMIN" }}
scopes = ["read", "write", "delete"]

[[tokens]]
name = "reader"
secret = {{ env = "AG_UI_READER" }}
scopes = ["read"]
mounts = ["private"]
"#,
            private = dir.path().join("private").display(),
            public = dir.path().join("public").display(),
        ),
    )
    .unwrap();
    for m in ["private", "public"] {
        std::fs::create_dir_all(dir.path().join(m)).unwrap();
    }
    let gw = common::Gateway::start(
        &["--config", config.to_str().unwrap()],
        &[("AG_UI_ADMIN", ADMIN), ("AG_UI_READER", READER)],
    );
    let shots = root().join("target/ui-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let mut child = Command::new("node")
        .arg(ui.join("e2e.mjs"))
        .current_dir(&ui)
        .env("AG_URL", &gw.url)
        .env("AG_ADMIN", ADMIN)
        .env("AG_READER", READER)
        .env("AG_SHOTS", &shots)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let mut passed = 0;
    let mut failed: Vec<String> = Vec::new();
    let mut in_failure = false;
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        println!("{line}");
        if let Some(rest) = line.strip_prefix("ui case ") {
            in_failure = !rest.contains(" ... ok");
            if in_failure {
                failed.push(rest.to_string());
            } else {
                passed += 1;
            }
        } else if in_failure && line.starts_with("    ") {
            // The first lines of the failure say what went wrong; keep them in the panic message.
            let last = failed.last_mut().expect("a failed case");
            if last.lines().count() < 6 {
                last.push('\n');
                last.push_str(&line);
            }
        }
    }
    let status = child.wait().unwrap();
    assert!(
        failed.is_empty() && status.success(),
        "browser cases failed ({passed} passed):\n{}\nnode exited {status}; screenshots in {}",
        failed.join("\n"),
        shots.display()
    );
    assert!(passed >= 14, "only {passed} browser cases ran");
}
