//! Flink on a real Kubernetes: the gateway image built from `deploy/Dockerfile`, installed with its
//! Helm chart, the Flink Kubernetes Operator 1.7.0 reconciling the examples of `deploy/flink/`
//! applied as written, and pods pulling their artifacts from the gateway.
//!
//! The cluster comes from `tests/servers/k8s/start.sh` (`AG_TEST_K8S_*` in `k8s.env`); the first
//! test to run calls `tests/k8s/setup.sh` once (images, chart, artifacts, operator). The examples
//! are applied with only these substitutions, each forced by what runs here:
//! - `image: flink:1.20.1` → `flink:1.18.1`, `flink-python:1.20.1` → `flink-python:1.18.1` (and
//!   the Python driver jar's version) and `flinkVersion: v1_20` → `v1_18`: operator 1.7.0 (the
//!   newest on the reachable Maven Central) supports Flink up to 1.18;
//! - the Kafka SQL connector `3.3.0-1.20` → the release built for Flink 1.18 (`3.0.1-1.18`, the newest of those the reachable Maven serves), in
//!   the artifact path and file name alike.
//!
//! The Flink CDC and SeaTunnel examples are applied with no substitution at all: they are written
//! for the Flink their releases support (Flink CDC 3.1.0: 1.18; SeaTunnel 2.3.4's Flink starter:
//! 1.15–1.16, hence `flink:1.16.3`, built by `tests/k8s/seatunnel.sh`).
//!
//! Host names stay as written: the gateway is `artifact-gateway.flink.svc` inside the cluster.
//! The tests run one at a time (a lock): every Flink cluster takes 2 GiB and requests a whole CPU
//! (JobManager and TaskManager, 0.5 each, as the examples are written), and the node has two.
//!
//! Compiled only with the cargo feature `k8s-tests` (`tests/run.sh` sets it and starts the
//! cluster; its binary runs beside the other test targets); without it this file is empty, and
//! `tests/run.sh --no-k8s` reports it as not run.
#![cfg(feature = "k8s-tests")]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use common::{require_env, run};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The test cluster's settings (`k8s.env`), failing with what to run when absent.
struct Cluster {
    kubeconfig: String,
    bin: PathBuf,
    state: PathBuf,
}

fn cluster() -> &'static Cluster {
    static C: OnceLock<Cluster> = OnceLock::new();
    C.get_or_init(|| {
        let kubeconfig = std::env::var("AG_TEST_K8S_KUBECONFIG").unwrap_or_default();
        assert!(
            !kubeconfig.is_empty(),
            "AG_TEST_K8S_KUBECONFIG is not set: these tests need the single-node Kubernetes of \
             tests/servers/k8s (install it with tests/servers/k8s/install.sh; `tests/run.sh` starts it, \
             or `tests/servers/k8s/start.sh DIR` and source DIR/k8s.env)"
        );
        let bin = PathBuf::from(require_env("AG_TEST_K8S_BIN"));
        // k8s.env sits next to the cluster's state directory `k8s/`, which holds the kubeconfig.
        let state = Path::new(&kubeconfig)
            .parent()
            .and_then(Path::parent)
            .expect("kubeconfig under STATE/k8s/")
            .to_path_buf();
        Cluster {
            kubeconfig,
            bin,
            state,
        }
    })
}

/// Settings written by tests/k8s/setup.sh.
struct Stack {
    admin_token: String,
    ca_file: PathBuf,
    gateway_ip: String,
    artifacts: PathBuf,
    kafka_version: String,
}

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| {
        let c = cluster();
        let started = Instant::now();
        let (code, out, err) = run(Command::new("bash")
            .arg(root().join("tests/k8s/setup.sh"))
            .arg(&c.state)
            .arg(common::bin()));
        assert_eq!(
            code, 0,
            "tests/k8s/setup.sh failed (images, helm install, artifacts or operator):\n{out}\n{err}"
        );
        println!("flink_k8s: setup in {:.0?}\n{out}", started.elapsed());
        let env = std::fs::read_to_string(c.state.join("flink-k8s.env")).expect("flink-k8s.env");
        let get = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("{k} missing from flink-k8s.env"))
                .to_string()
        };
        Stack {
            admin_token: get("AG_K8S_ADMIN_TOKEN"),
            ca_file: PathBuf::from(get("AG_K8S_CA_FILE")),
            gateway_ip: get("AG_K8S_GATEWAY_IP"),
            artifacts: PathBuf::from(get("AG_K8S_ARTIFACTS")),
            kafka_version: get("AG_K8S_KAFKA_CONNECTOR_VERSION"),
        }
    })
}

/// One test at a time: each Flink cluster needs 2 GiB and the machine has a few cores.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn kubectl(args: &[&str]) -> (i32, String, String) {
    let c = cluster();
    run(Command::new(c.bin.join("kubectl"))
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(args))
}

fn kubectl_ok(args: &[&str]) -> String {
    let (code, out, err) = kubectl(args);
    assert_eq!(code, 0, "kubectl {}: {out}{err}", args.join(" "));
    out
}

fn kubectl_apply(yaml: &str) {
    let c = cluster();
    let mut child = Command::new(c.bin.join("kubectl"))
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl apply");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl apply failed: {}{}\n--- manifest ---\n{yaml}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An example of deploy/flink as written, with the documented substitutions only.
fn example(file: &str) -> String {
    let text = std::fs::read_to_string(root().join("deploy/flink").join(file))
        .unwrap_or_else(|e| panic!("deploy/flink/{file}: {e}"));
    substitute(&text)
}

fn substitute(text: &str) -> String {
    let kafka = &stack().kafka_version;
    text.replace("image: flink:1.20.1", "image: flink:1.18.1")
        .replace("flinkVersion: v1_20", "flinkVersion: v1_18")
        .replace("flink-python-1.20.1.jar", "flink-python-1.18.1.jar")
        .replace("flink-python/1.20.1/", "flink-python/1.18.1/")
        .replace("flink-python:1.20.1", "flink-python:1.18.1")
        .replace("3.3.0-1.20", kafka)
}

/// A field of a custom resource (jsonpath), empty when absent.
fn field(kind: &str, name: &str, path: &str) -> String {
    let (_, out, _) = kubectl(&[
        "-n",
        "flink",
        "get",
        kind,
        name,
        "-o",
        &format!("jsonpath={{{path}}}"),
    ]);
    out.trim().to_string()
}

/// Log lines of every pod of a Flink cluster (label app=<cluster>), accumulated over polls:
/// TaskManager pods go away after the job finishes, so the test keeps what it has seen.
struct PodLogs {
    cluster: String,
    lines: BTreeSet<String>,
}

impl PodLogs {
    fn new(cluster: &str) -> Self {
        PodLogs {
            cluster: cluster.to_string(),
            lines: BTreeSet::new(),
        }
    }

    fn poll(&mut self) {
        let (_, pods, _) = kubectl(&[
            "-n",
            "flink",
            "get",
            "pods",
            "-l",
            &format!("app={}", self.cluster),
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ]);
        for pod in pods.split_whitespace() {
            let (_, out, _) = kubectl(&["-n", "flink", "logs", pod, "-c", "flink-main-container"]);
            self.lines.extend(out.lines().map(str::to_string));
        }
    }

    fn contains(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.contains(needle))
    }
}

/// Waits until `state()` returns `want`, polling logs meanwhile; fails with the operator's view.
fn wait_state(
    what: &str,
    timeout: Duration,
    logs: &mut PodLogs,
    state: impl Fn() -> String,
    want: &str,
) {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        logs.poll();
        let s = state();
        if s == want {
            return;
        }
        // A job that failed does not come back (restart strategy none, stateless upgrades).
        let failed = s == "FAILED" && want != "FAILED";
        last = s;
        if failed || Instant::now() > deadline {
            let (_, pods, _) = kubectl(&["-n", "flink", "get", "pods", "-o", "wide"]);
            let (_, events, _) =
                kubectl(&["-n", "flink", "get", "events", "--sort-by=.lastTimestamp"]);
            let (_, op, _) = kubectl(&[
                "-n",
                "flink-operator",
                "logs",
                "deployment/flink-kubernetes-operator",
                "--tail=60",
            ]);
            let tail: Vec<&String> = logs.lines.iter().rev().take(40).collect();
            panic!(
                "{what}: state {last:?}, expected {want:?} within {timeout:?}\npods:\n{pods}\nevents:\n{events}\n\
                 operator log:\n{op}\nFlink pod log lines (last 40 of {}):\n{tail:#?}",
                logs.lines.len()
            );
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// Deletes a resource and waits until no pod of the cluster is left.
fn delete_and_wait(kind: &str, name: &str, cluster: &str) {
    kubectl(&[
        "-n",
        "flink",
        "delete",
        kind,
        name,
        "--ignore-not-found",
        "--wait=true",
        "--timeout=120s",
    ]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, pods, _) = kubectl(&[
            "-n",
            "flink",
            "get",
            "pods",
            "-l",
            &format!("app={cluster}"),
            "-o",
            "name",
        ]);
        if pods.trim().is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pods of {cluster} still there: {pods}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn job_state(kind: &'static str, name: &'static str) -> impl Fn() -> String {
    move || field(kind, name, ".status.jobStatus.state")
}

/// The words of WordCount's built-in lines, as its output shows them with the UDF jar on the
/// class path (application-jar.yaml: the UDF appends "~")...
const WORDCOUNT_LINES: &[&str] = &[
    "wordcount-result the~=6",
    "wordcount-result jar~=2",
    "wordcount-result gateway~=1",
    "wordcount-result job~=1",
];
/// ...and without it (session-job.yaml runs the job jar alone).
const WORDCOUNT_PLAIN_LINES: &[&str] = &[
    "wordcount-result the=6",
    "wordcount-result jar=2",
    "wordcount-result gateway=1",
    "wordcount-result job=1",
];

fn assert_lines(logs: &PodLogs, expected: &[&str], what: &str) {
    for line in expected {
        assert!(
            logs.contains(line),
            "{what}: no log line with {line:?} among {} lines of the Flink pods",
            logs.lines.len()
        );
    }
}

/// What the SQL cells print: the Kafka table's plan (needs the connector in /opt/flink/lib)
/// and the print sink's row.
const ORDERS_SQL_LINES: &[&str] = &[
    "sql-runner: plan",
    "orders_out",
    "+I[order-totals, all, 820]",
    "sql-runner: done",
];

/// Applies the example `file`, waits (at most `timeout`) until the job of `kind`/`name`
/// FINISHED, then until the logs of the pods of `cluster` hold every line of `expected`
/// (TaskManager output can arrive a poll later than the state), and asserts them.
fn run_to_finish(
    file: &str,
    (kind, name): (&'static str, &'static str),
    cluster: &str,
    timeout: Duration,
    expected: &[&str],
) {
    kubectl_apply(&example(file));
    let mut logs = PodLogs::new(cluster);
    let title = match kind {
        "flinkdeployment" => "FlinkDeployment",
        _ => "FlinkSessionJob",
    };
    wait_state(
        &format!("{title} {name} ({file})"),
        timeout,
        &mut logs,
        job_state(kind, name),
        "FINISHED",
    );
    for _ in 0..5 {
        logs.poll();
        if expected.iter().all(|l| logs.contains(l)) {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    assert_lines(&logs, expected, file);
}

/// One application-mode cell: applies `file` (FlinkDeployment `name`), waits for its job to
/// finish with the `expected` lines in its pods' logs, then deletes it.
fn application_cell(file: &str, name: &'static str, timeout_secs: u64, expected: &[&str]) {
    let _g = serial();
    stack();
    let timeout = Duration::from_secs(timeout_secs);
    run_to_finish(file, ("flinkdeployment", name), name, timeout, expected);
    delete_and_wait("flinkdeployment", name, name);
}

/// One session cell: applies `file` (FlinkSessionJob `job` on the session cluster `cluster`),
/// waits for the job to finish with the `expected` lines, then deletes the job and the cluster.
fn session_cell(
    file: &str,
    job: &'static str,
    cluster: &str,
    timeout_secs: u64,
    expected: &[&str],
) {
    let _g = serial();
    stack();
    let timeout = Duration::from_secs(timeout_secs);
    run_to_finish(file, ("flinksessionjob", job), cluster, timeout, expected);
    delete_session_job(job, cluster);
}

/// Deletes a session job, then its session cluster, and waits until its pods are gone.
fn delete_session_job(name: &str, cluster: &str) {
    kubectl(&[
        "-n",
        "flink",
        "delete",
        "flinksessionjob",
        name,
        "--wait=true",
        "--timeout=60s",
    ]);
    delete_and_wait("flinkdeployment", cluster, cluster);
}

#[test]
fn gateway_chart_runs_non_root_read_only_with_probes_passing() {
    let _g = serial();
    let s = stack();
    let pod = kubectl_ok(&[
        "-n",
        "flink",
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/name=artifact-gateway",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let ready = kubectl_ok(&[
        "-n",
        "flink",
        "get",
        "pod",
        &pod,
        "-o",
        "jsonpath={.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount}",
    ]);
    assert_eq!(ready.trim(), "true 0", "gateway pod ready, never restarted");
    // Non-root, read-only root filesystem: the running process says so itself.
    let id = kubectl_ok(&["-n", "flink", "exec", &pod, "--", "id", "-u"]);
    assert_eq!(id.trim(), "10001");
    let (code, _, err) = kubectl(&[
        "-n",
        "flink",
        "exec",
        &pod,
        "--",
        "touch",
        "/usr/local/probe",
    ]);
    assert_ne!(code, 0, "the root filesystem must be read-only");
    assert!(err.contains("Read-only file system"), "{err}");
    // The probes' endpoints over the Service with TLS, from outside the pod.
    for path in ["/healthz", "/readyz"] {
        let (code, out, err) =
            run(gateway_status(s).arg(format!("https://artifact-gateway.flink.svc{path}")));
        assert_eq!((code, out.as_str()), (0, "200"), "{path}: {err}");
    }
}

#[test]
fn application_jar_cell_runs_the_fetched_job_with_its_udf_jar() {
    application_cell("application-jar.yaml", "wordcount", 420, WORDCOUNT_LINES);
}

#[test]
fn application_sql_cell_runs_the_fetched_script_with_the_fetched_connector() {
    application_cell("application-sql.yaml", "orders-etl", 420, ORDERS_SQL_LINES);
}

#[test]
fn session_jar_cell_operator_fetches_the_jar_over_https_with_the_token() {
    session_cell(
        "session-job.yaml",
        "wordcount",
        "session-cluster",
        420,
        WORDCOUNT_PLAIN_LINES,
    );
}

/// `curl` aimed at the gateway's Service over https (its CA, its cluster IP for the Service name),
/// printing only the HTTP status.
fn gateway_status(s: &Stack) -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&s.ca_file)
        .args([
            "--resolve",
            &format!("artifact-gateway.flink.svc:443:{}", s.gateway_ip),
        ]);
    cmd
}

/// Uploads the test artifact `file` with one byte flipped to the gateway at `path` (below the
/// `artifacts` mount), as an administrator would by mistake: its digest no longer matches the pin.
fn put_corrupted_copy(s: &Stack, file: &str, path: &str) {
    let mut bytes = std::fs::read(s.artifacts.join(file)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let corrupt = s.artifacts.join(format!("corrupted-{file}"));
    std::fs::write(&corrupt, &bytes).unwrap();
    let (code, out, err) = run(gateway_status(s)
        .args([
            "-H",
            &format!("Authorization: Bearer {}", s.admin_token),
            "-T",
        ])
        .arg(&corrupt)
        .arg(format!(
            "https://artifact-gateway.flink.svc/artifacts/{path}"
        )));
    assert_eq!(code, 0, "{err}");
    assert!(
        out == "201" || out == "200",
        "PUT corrupted copy of {file}: {out}"
    );
}

/// Applies application-jar.yaml with one thing broken and expects the JobManager pod's init
/// container to fail with `code` and a message naming `why`.
fn broken_application(name: &str, edit: impl Fn(String) -> String, code: i32, why: &str) {
    broken_variant("application-jar.yaml", "wordcount", name, edit, code, why);
}

/// Applies an application-mode example (FlinkDeployment `original` with its manifest ConfigMap
/// `<original>-artifacts`) renamed to `name` and with one thing broken, and expects the
/// JobManager pod's init container to fail with `code` and a message naming `why`.
fn broken_variant(
    file: &str,
    original: &str,
    name: &str,
    edit: impl Fn(String) -> String,
    code: i32,
    why: &str,
) {
    let yaml = edit(example(file))
        .replace(&format!("name: {original}\n"), &format!("name: {name}\n"))
        .replace(
            &format!("name: {original}-artifacts"),
            &format!("name: {name}-artifacts"),
        );
    kubectl_apply(&yaml);
    let deadline = Instant::now() + Duration::from_secs(240);
    let (exit, log) = loop {
        let (_, out, _) = kubectl(&[
            "-n",
            "flink",
            "get",
            "pods",
            "-l",
            &format!("app={name},component=jobmanager"),
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.initContainerStatuses[0].state.terminated.exitCode} {.status.initContainerStatuses[0].lastState.terminated.exitCode}{\"\\n\"}{end}",
        ]);
        let found = out.lines().find_map(|l| {
            let mut it = l.split_whitespace();
            let pod = it.next()?.to_string();
            let exit: i32 = it.find_map(|c| c.parse().ok().filter(|c: &i32| *c != 0))?;
            Some((pod, exit))
        });
        if let Some((pod, exit)) = found {
            let (_, log, _) = kubectl(&["-n", "flink", "logs", &pod, "-c", "fetch-artifacts"]);
            let (_, prev, _) = kubectl(&[
                "-n",
                "flink",
                "logs",
                &pod,
                "-c",
                "fetch-artifacts",
                "--previous",
            ]);
            break (exit, format!("{log}{prev}"));
        }
        assert!(
            Instant::now() < deadline,
            "{name}: the init container did not fail within 240 s: {out}"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    assert_eq!(
        exit, code,
        "{name}: init container exit code; its log:\n{log}"
    );
    assert!(
        log.to_lowercase().contains(why),
        "{name}: the init container's log should say {why:?}:\n{log}"
    );
    delete_and_wait("flinkdeployment", name, name);
    kubectl(&[
        "-n",
        "flink",
        "delete",
        "configmap",
        &format!("{name}-artifacts"),
        "--ignore-not-found",
    ]);
}

#[test]
fn failures_wrong_token_missing_and_corrupted_artifacts_stop_the_pods_visibly() {
    let _g = serial();
    let s = stack();
    // A wrong token: a Secret of the same shape with another value.
    kubectl(&[
        "-n",
        "flink",
        "delete",
        "secret",
        "wrong-flink-token",
        "--ignore-not-found",
    ]);
    kubectl_ok(&[
        "-n",
        "flink",
        "create",
        "secret",
        "generic",
        "wrong-flink-token",
        "--from-literal=token=0123456789abcdef0123456789abcdef",
    ]);
    broken_application(
        "wc-wrong-token",
        |y| {
            y.replace(
                "secretName: artifact-gateway-flink-token",
                "secretName: wrong-flink-token",
            )
        },
        3,
        "401",
    );
    // A missing artifact: a version that was never published.
    broken_application(
        "wc-missing",
        |y| {
            y.replace(
                "wordcount/1.0.0/wordcount.jar",
                "wordcount/9.9.9/wordcount.jar",
            )
        },
        3,
        "404",
    );
    // A corrupted artifact: the bytes served differ from the pinned digest.
    let good = common::sha256_file(&s.artifacts.join("wordcount.jar"));
    put_corrupted_copy(s, "wordcount.jar", "jobs/wordcount/1.0.1/wordcount.jar");
    broken_application(
        "wc-corrupted",
        |y| {
            y.replace(
                "wordcount/1.0.0/wordcount.jar\n        name: wordcount.jar",
                &format!("wordcount/1.0.1/wordcount.jar\n        name: wordcount.jar\n        sha256: {good}"),
            )
        },
        4,
        "sha-256",
    );
}

#[test]
fn session_sql_cell_runner_jar_reads_its_script_from_the_gateway() {
    session_cell(
        "session-sql.yaml",
        "orders-etl-session",
        "sql-session",
        420,
        ORDERS_SQL_LINES,
    );
}

/// The effective Flink configuration the operator wrote for a deployment (ConfigMap
/// flink-config-<name>, key flink-conf.yaml), as `key: value` lines.
fn effective_conf(name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (code, out, _) = kubectl(&[
            "-n",
            "flink",
            "get",
            "configmap",
            &format!("flink-config-{name}"),
            "-o",
            "jsonpath={.data.flink-conf\\.yaml}",
        ]);
        if code == 0 && !out.trim().is_empty() {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "no ConfigMap flink-config-{name} within 120 s"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn conf_value(conf: &str, key: &str) -> Option<String> {
    conf.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
}

/// The two FlinkConfigBuilder traps, shown on the configuration the operator really writes: in
/// native mode pipeline.jars becomes the jarURI alone (why application-python.yaml mounts its
/// connector into /opt/flink/lib), in standalone mode pipeline.classpaths is replaced.
#[test]
fn operator_overwrites_pipeline_jars_in_native_and_classpaths_in_standalone_mode() {
    let _g = serial();
    stack();
    let native = example("application-jar.yaml")
        .replace("name: wordcount\n", "name: trap-native\n")
        .replace("name: wordcount-artifacts", "name: trap-native-artifacts")
        .replace(
            "    pipeline.classpaths: file:///opt/flink/artifacts/string-udfs.jar\n",
            "    pipeline.classpaths: file:///opt/flink/artifacts/string-udfs.jar\n    pipeline.jars: file:///opt/flink/artifacts/string-udfs.jar\n",
        );
    kubectl_apply(&native);
    let conf = effective_conf("trap-native");
    assert_eq!(
        conf_value(&conf, "pipeline.jars").as_deref(),
        Some("local:///opt/flink/artifacts/wordcount.jar"),
        "native mode: pipeline.jars is the jarURI alone, the extra jar is gone:\n{conf}"
    );
    assert_eq!(
        conf_value(&conf, "pipeline.classpaths").as_deref(),
        Some("file:///opt/flink/artifacts/string-udfs.jar"),
        "native mode keeps pipeline.classpaths:\n{conf}"
    );
    delete_and_wait("flinkdeployment", "trap-native", "trap-native");

    let standalone = example("application-jar.yaml")
        .replace("name: wordcount\n", "name: trap-standalone\n")
        .replace(
            "name: wordcount-artifacts",
            "name: trap-standalone-artifacts",
        )
        .replace(
            "  serviceAccount: flink\n",
            "  serviceAccount: flink\n  mode: standalone\n",
        );
    kubectl_apply(&standalone);
    let conf = effective_conf("trap-standalone");
    let classpaths = conf_value(&conf, "pipeline.classpaths").unwrap_or_default();
    assert!(
        !classpaths.contains("string-udfs.jar"),
        "standalone mode: pipeline.classpaths was expected to be replaced, got {classpaths:?}:\n{conf}"
    );
    kubectl(&[
        "-n",
        "flink",
        "delete",
        "flinkdeployment",
        "trap-standalone",
        "--wait=true",
        "--timeout=120s",
    ]);
    kubectl(&[
        "-n",
        "flink",
        "delete",
        "configmap",
        "trap-native-artifacts",
        "trap-standalone-artifacts",
        "--ignore-not-found",
    ]);
}

/// No GET of an artifact answers 3xx: the operator's fetcher saves a cross-scheme redirect's
/// body as a 0-byte jar. Asked in the cluster, through the Service, for the shapes of URL a
/// person might write.
#[test]
fn no_artifact_get_answers_a_redirect() {
    let _g = serial();
    let s = stack();
    let base = "https://artifact-gateway.flink.svc";
    for path in [
        "/artifacts/jobs/wordcount/1.0.0/wordcount.jar",
        "/artifacts/jobs/wordcount/1.0.0/wordcount.jar/",
        "/artifacts/jobs/wordcount/1.0.0",
        "/artifacts/jobs/wordcount/1.0.0/",
        "/artifacts/jobs",
        "/artifacts/jobs/",
        "/artifacts//jobs/wordcount/1.0.0/wordcount.jar",
        "/artifacts/jobs/wordcount/./1.0.0/wordcount.jar",
        "/artifacts/jobs/wordcount/9.9.9/wordcount.jar",
        "/artifacts/nope/x.jar",
        "/artifacts",
        "/",
    ] {
        for token in [Some(s.admin_token.as_str()), None] {
            let mut cmd = gateway_status(s);
            cmd.arg("--path-as-is");
            if let Some(t) = token {
                cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
            }
            let (code, out, err) = run(cmd.arg(format!("{base}{path}")));
            assert_eq!(code, 0, "{path}: {err}");
            let status: u16 = out.trim().parse().unwrap();
            assert!(
                !(300..400).contains(&status),
                "GET {path} (token: {}) answered {status}",
                token.is_some()
            );
        }
    }
}

const PYFLINK_LINES: &[&str] = &[
    "pyflink-job: plan",
    "clicks_out",
    "+I[clicks, HOME!, 3]",
    "+I[clicks, CART!, 1]",
];

#[test]
fn application_python_cell_runs_the_fetched_script_with_its_connector_in_lib() {
    application_cell("application-python.yaml", "clickstream", 480, PYFLINK_LINES);
}

#[test]
fn session_python_cell_operator_fetches_the_driver_jar_and_pods_the_script() {
    session_cell(
        "session-python.yaml",
        "clickstream-session",
        "python-session",
        480,
        PYFLINK_LINES,
    );
}

/// What Flink CDC's `values` sink prints for the SINGLE_SPLIT_SINGLE_TABLE event set of the
/// `values` source: the rows (and the delete and update) that the source produced.
const CDC_LINES: &[&str] = &[
    "DataChangeEvent{tableId=default_namespace.default_schema.table1, before=[], after=[1, 1], op=INSERT, meta=()}",
    "DataChangeEvent{tableId=default_namespace.default_schema.table1, before=[], after=[2, 2], op=INSERT, meta=()}",
    "DataChangeEvent{tableId=default_namespace.default_schema.table1, before=[], after=[3, 3], op=INSERT, meta=()}",
    "AddColumnEvent{tableId=default_namespace.default_schema.table1",
    "before=[1, 1], after=[], op=DELETE",
];

#[test]
fn application_flink_cdc_cell_runs_the_fetched_pipeline_with_the_fetched_cdc_jars() {
    application_cell("application-flink-cdc.yaml", "cdc-values", 420, CDC_LINES);
}

#[test]
fn session_flink_cdc_cell_runner_jar_reads_its_pipeline_from_the_gateway() {
    session_cell(
        "session-flink-cdc.yaml",
        "cdc-values-session",
        "cdc-session",
        420,
        CDC_LINES,
    );
}

/// The Flink CDC cell's artifact set is pinned as a whole: a corrupted pipeline connector (bytes
/// served differ from the manifest's SHA-256) or a missing pipeline stops the JobManager pod's
/// init container; Flink never starts.
#[test]
fn flink_cdc_cell_fails_visibly_on_a_corrupted_or_missing_artifact() {
    let _g = serial();
    let s = stack();
    let jar = "flink-cdc-pipeline-connector-values-3.1.0.jar";
    put_corrupted_copy(
        s,
        jar,
        &format!("jobs/connectors/flink-cdc-pipeline-connector-values/3.1.0-corrupted/{jar}"),
    );
    broken_variant(
        "application-flink-cdc.yaml",
        "cdc-values",
        "cdc-corrupted",
        |y| {
            y.replace(
                "flink-cdc-pipeline-connector-values/3.1.0/",
                "flink-cdc-pipeline-connector-values/3.1.0-corrupted/",
            )
        },
        4,
        "sha-256",
    );
    broken_variant(
        "application-flink-cdc.yaml",
        "cdc-values",
        "cdc-missing",
        |y| {
            y.replace(
                "cdc-values/1.0.0/pipeline.yaml",
                "cdc-values/9.9.9/pipeline.yaml",
            )
        },
        3,
        "404",
    );
}

/// What SeaTunnel's Console sink logs on the TaskManager for the three fixed rows of the
/// FakeSource in the SeaTunnel cells' job config (tests/k8s/jobs/seatunnel/fake-to-console.conf):
/// the rows reached the sink through the fetched starter, connector map and connector jars.
const SEATUNNEL_LINES: &[&str] = &[
    "SeaTunnelRow#kind=INSERT : 1, gateway, 100",
    "SeaTunnelRow#kind=INSERT : 2, seatunnel, 250",
    "SeaTunnelRow#kind=INSERT : 3, flink, 470",
];

#[test]
fn application_seatunnel_cell_runs_the_fetched_starter_with_its_fetched_connectors() {
    application_cell(
        "application-seatunnel.yaml",
        "seatunnel-fake",
        420,
        SEATUNNEL_LINES,
    );
}

#[test]
fn session_seatunnel_cell_operator_fetches_the_starter_into_the_seatunnel_home() {
    session_cell(
        "session-seatunnel.yaml",
        "seatunnel-fake-session",
        "seatunnel-session",
        420,
        SEATUNNEL_LINES,
    );
}

/// The SeaTunnel cell's artifact set is pinned as a whole: a corrupted connector jar (bytes served
/// differ from the manifest's SHA-256) or a job config that was never published stops the
/// JobManager pod's init container; Flink never starts.
#[test]
fn seatunnel_cell_fails_visibly_on_a_corrupted_connector_or_missing_config() {
    let _g = serial();
    let s = stack();
    let jar = "connector-console-2.3.4.jar";
    put_corrupted_copy(
        s,
        jar,
        &format!("jobs/seatunnel/connectors/connector-console/2.3.4-corrupted/{jar}"),
    );
    broken_variant(
        "application-seatunnel.yaml",
        "seatunnel-fake",
        "seatunnel-corrupted",
        |y| {
            y.replace(
                "connector-console/2.3.4/",
                "connector-console/2.3.4-corrupted/",
            )
        },
        4,
        "sha-256",
    );
    broken_variant(
        "application-seatunnel.yaml",
        "seatunnel-fake",
        "seatunnel-missing",
        |y| {
            y.replace(
                "fake-to-console/1.0.0/fake-to-console.conf",
                "fake-to-console/9.9.9/fake-to-console.conf",
            )
        },
        3,
        "404",
    );
}
