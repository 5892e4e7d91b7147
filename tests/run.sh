#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, starts every real server
# (MinIO, a MiniDFSCluster, the OSS stand-in, a Flink session cluster, a single-node Kubernetes),
# runs `cargo test` (every test target, even after one fails), and stops the servers whether the
# tests pass or fail. Extra arguments go to `cargo test`.
#
#   tests/run.sh                    # everything (root needed for the Kubernetes part)
#   tests/run.sh --test http_api    # one test target, servers still started
#   tests/run.sh --no-k8s [...]     # without Flink on Kubernetes (tests/flink_k8s.rs), which it then
#                                   # names as NOT RUN: for quick runs while working on other parts
#
# Flink on Kubernetes (tests/k8s/README.md): the k8s server is the cluster; the cargo feature
# `k8s-tests` builds tests/flink_k8s.rs, whose binary runs beside the other test targets (its cells
# mostly wait on pods). Measured from empty caches on the 2-core test machine: 29 min in all.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SERVERS=(minio hdfs oss flink)
FEATURES=()
K8S=1
if [ "${1:-}" = "--no-k8s" ]; then
  shift
  K8S=0
else
  SERVERS+=(k8s)
  FEATURES=(--features k8s-tests)
fi
STATE="$ROOT/target/test-servers/run"
LOGS="$STATE/logs"
started_at=$(date +%s)

say() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - started_at ))"; }

stop_servers() {
  # The Kubernetes cluster (if one was started here): its stop.sh kills every daemon and container
  # and removes its mounts, iptables rules and bridge before anything is deleted.
  if [ -d "$STATE/k8s" ]; then tests/servers/k8s/stop.sh "$STATE" || true; fi
  for name in "${SERVERS[@]}"; do
    pidfile="$STATE/$name.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
  done
  for name in "${SERVERS[@]}"; do
    pidfile="$STATE/$name.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}
trap stop_servers EXIT

# A previous run that was killed may have left servers behind.
if [ -d "$STATE" ]; then stop_servers; rm -rf "$STATE"; fi
mkdir -p "$LOGS"

say "installing clients and test servers (cached after the first run)"
echo "  disk free where the build goes: $(df -h --output=avail "$ROOT" | tail -1 | tr -d ' ')"
tests/install.sh
pids=()
for name in "${SERVERS[@]}"; do
  "tests/servers/$name/install.sh" >"$LOGS/install-$name.log" 2>&1 &
  pids+=("$!")
done
extra_installs=()
for script in tests/flink/install.sh tests/deploy/install.sh tests/ui/install.sh tests/contract/install.sh; do
  if [ -x "$script" ]; then
    log="$LOGS/install-$(basename "$(dirname "$script")").log"
    "$script" >"$log" 2>&1 &
    pids+=("$!"); extra_installs+=("$script")
  fi
done
# Compile the tests while the servers install.
cargo test --no-run --all-targets "${FEATURES[@]}" >"$LOGS/cargo-build.log" 2>&1 &
build_pid=$!
failed=0
i=0
for name in "${SERVERS[@]}" "${extra_installs[@]}"; do
  if ! wait "${pids[$i]}"; then
    base=$(basename "$name"); [ "$base" = install.sh ] && base=$(basename "$(dirname "$name")")
    echo "FAILED to install $name; the end of its log:" >&2
    tail -n 30 "$LOGS/install-$base.log" >&2 || true
    failed=1
  fi
  i=$((i + 1))
done
if ! wait "$build_pid"; then
  echo "FAILED to compile the tests (disk free now: $(df -h --output=avail "$ROOT" | tail -1 | tr -d ' ')):" >&2
  tail -n 60 "$LOGS/cargo-build.log" >&2
  exit 1
fi
[ "$failed" = 0 ] || { echo "a test server could not be installed: see above" >&2; exit 1; }

say "starting test servers"
pids=()
for name in "${SERVERS[@]}"; do
  "tests/servers/$name/start.sh" "$STATE" >"$LOGS/start-$name.log" 2>&1 &
  pids+=("$!")
done
i=0
for name in "${SERVERS[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "FAILED to start $name; its output:" >&2
    tail -n 40 "$LOGS/start-$name.log" >&2 || true
    tail -n 40 "$STATE/$name.log" >&2 2>/dev/null || true
    failed=1
  fi
  i=$((i + 1))
done
[ "$failed" = 0 ] || { echo "a test server did not start: see above" >&2; exit 1; }
set -a
for name in "${SERVERS[@]}"; do
  # shellcheck disable=SC1090
  . "$STATE/$name.env"
done
set +a
for name in "${SERVERS[@]}"; do echo "  $name: $(tr '\n' ' ' < "$STATE/$name.env" | sed -E 's/(SECRET[A-Z_]*|PASSWORD)=[^ ]*/\1=***/g')"; done

say "running cargo test"
status=0
quiet() { grep -v -E '^(   Compiling|    Finished|     Running|   Doc-tests)'; }
targets=(--all-targets)
k8s_pid=
if [ "$K8S" = 1 ] && [ $# = 0 ]; then
  # The Kubernetes cells spend most of their time waiting on pods: they run beside the other
  # test targets (their binary alone, started first; its output is printed after the others').
  cargo test --no-fail-fast "${FEATURES[@]}" --test flink_k8s -- --show-output >"$LOGS/cargo-test-k8s.log" 2>&1 &
  k8s_pid=$!
  targets=(--lib --bins --benches --examples)
  for f in tests/*.rs; do
    t=$(basename "$f" .rs)
    [ "$t" = flink_k8s ] || targets+=(--test "$t")
  done
fi
cargo test --no-fail-fast "${targets[@]}" "${FEATURES[@]}" "$@" -- --show-output 2>&1 | tee "$LOGS/cargo-test.log" | quiet || status=${PIPESTATUS[0]}
if [ -n "$k8s_pid" ]; then
  say "waiting for the Flink on Kubernetes tests"
  k8s_status=0
  wait "$k8s_pid" || k8s_status=$?
  quiet <"$LOGS/cargo-test-k8s.log"
  cat "$LOGS/cargo-test-k8s.log" >>"$LOGS/cargo-test.log"
  [ "$k8s_status" = 0 ] || status=$k8s_status
fi
[ "$status" = 0 ] || { echo "cargo test failed (exit $status)" >&2; }

passed=$(grep -E '^test result:' "$LOGS/cargo-test.log" | sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/' | awk '{p+=$1; f+=$2} END {print p+0, f+0}')
say "done"
grep -E 'conformance\[[^]]+\]: [0-9]+ cases passed' "$LOGS/cargo-test.log" | sed 's/^/  /' || true
grep -E '^schemathesis summary:' "$LOGS/cargo-test.log" | sed 's/^/  /' || true
grep -E '^ui cases: ' "$LOGS/cargo-test.log" | sed 's/^/  browser /' || true
# Tests that cannot run here by design (a real cloud bucket) say so; repeat it where it is seen.
grep -E '^NOT RUN:' "$LOGS/cargo-test.log" | sort -u | sed 's/^/  /' || true
[ "$K8S" = 1 ] || echo "  NOT RUN: Flink on Kubernetes (tests/flink_k8s.rs): left out by --no-k8s"
read -r p f <<<"$passed"
if [ "$f" != 0 ]; then
  # Each failed test's own last lines (its panic message), here at the end where a truncated CI log
  # still shows them: cargo prints them between a binary's first "failures:" line and its list.
  echo "  the failed tests' last output lines:"
  awk '
    function flush() { if (name != "") { s = n > 30 ? n - 29 : 1; for (i = s; i <= n; i++) print "      " buf[i] } name = ""; n = 0 }
    /^failures:$/ { flush(); section = !section; next }
    /^test result:/ { flush(); section = 0; next }
    section && /^---- .* stdout ----$/ { flush(); name = $2; print "    FAILED " name ":"; next }
    section && name != "" && NF { buf[++n] = $0 }
    END { flush() }' "$LOGS/cargo-test.log"
fi
echo "  disk free at the end: $(df -h --output=avail "$ROOT" | tail -1 | tr -d ' ')"
echo "tests: $p passed, $f failed"
exit "$status"
