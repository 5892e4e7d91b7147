#!/usr/bin/env bash
# Self-check of the real-Flink test harness, end to end, with a plain local HTTP server standing
# in for the gateway: install both pieces, start a session cluster in a temporary STATE_DIR,
# build the job jar, fetch it over HTTP with the operator's HttpArtifactFetcher (OperatorFetch),
# submit the fetched file (upload + run, wait for FINISHED), then stop the cluster through its pid
# file and check that no process of it is left. Prints the time of each step.
#
# usage: tests/flink/smoke.sh
set -euo pipefail

die() { echo "tests/flink/smoke.sh: $*" >&2; exit 1; }

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="$ROOT/target/test-servers/cache/flink"
STATE="$(mktemp -d "${TMPDIR:-/tmp}/ag-flink-smoke.XXXXXX")"
HTTP_PID=""

cleanup() {
    local rc=$?
    [[ -n "$HTTP_PID" ]] && kill "$HTTP_PID" 2>/dev/null || true
    if [[ -f "$STATE/flink.pid" ]]; then
        kill "$(cat "$STATE/flink.pid")" 2>/dev/null || true
    fi
    if [[ $rc -eq 0 ]]; then rm -rf "$STATE"; else echo "state kept in $STATE" >&2; fi
}
trap cleanup EXIT

step() { # NAME CMD...
    local name="$1" start
    shift
    start="$(date +%s.%N)"
    "$@"
    printf 'smoke: %-22s %6.1fs\n' "$name" "$(echo "$(date +%s.%N) - $start" | bc)"
}

step "flink install" "$ROOT/tests/servers/flink/install.sh"
step "operator-fetch install" "$HERE/install.sh"
step "cluster start" "$ROOT/tests/servers/flink/start.sh" "$STATE"
# shellcheck disable=SC1091
source "$STATE/flink.env"
build() { "$HERE/build-job.sh" "$STATE/srv/jobs/wordcount/1.0.0/wordcount.jar" >/dev/null; }
step "job build" build

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$STATE/srv" >"$STATE/http.log" 2>&1 &
HTTP_PID=$!
for _ in $(seq 1 50); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
    sleep 0.1
done

fetched=""
fetch() {
    fetched="$("$CACHE/operator-fetch.sh" "http://127.0.0.1:$port/jobs/wordcount/1.0.0/wordcount.jar" \
        "$STATE/fetched" "Authorization:Bearer smoke-token")"
}
step "operator fetch" fetch
[[ "$fetched" == "$STATE/fetched/wordcount.jar" ]] || die "OperatorFetch saved to '$fetched'"
cmp -s "$fetched" "$STATE/srv/jobs/wordcount/1.0.0/wordcount.jar" || die "fetched jar differs"

result=""
submit() { result="$(python3 "$HERE/submit.py" "$AG_TEST_FLINK_REST" "$fetched")"; }
step "submit to FINISHED" submit
[[ "$result" == *" FINISHED" ]] || die "job did not finish: $result"
grep -q '^(the,6)$' "$STATE/flink.log" || die "word count output not found in $STATE/flink.log"

stop() {
    local pid
    pid="$(cat "$STATE/flink.pid")"
    kill "$pid"
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && die "supervisor $pid still running 30s after SIGTERM"
    for p in $(cat "$STATE/flink.jvm.pids"); do
        kill -0 "$p" 2>/dev/null && die "JVM $p still running after the supervisor exited"
    done
    rm -f "$STATE/flink.pid"
}
step "cluster stop" stop
echo "smoke: OK (job $result)"
