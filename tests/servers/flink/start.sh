#!/usr/bin/env bash
# Starts a real Flink standalone session cluster for the tests: one JobManager
# (StandaloneSessionClusterEntrypoint) and one TaskManager (TaskManagerRunner, 2 slots), both bound
# to 127.0.0.1 on free ports, supervised by supervise.sh. See tests/servers/CONTRACT.md.
#
# usage: tests/servers/flink/start.sh STATE_DIR
# writes: STATE_DIR/flink.env   AG_TEST_FLINK_REST=http://127.0.0.1:PORT
#         STATE_DIR/flink.pid   the supervisor; `kill $(cat flink.pid)` stops both JVMs
#                               (it is also the process-group leader: `kill -- -PID` works too)
#         STATE_DIR/flink.log   supervisor and JVM output
# Ready means GET /overview reports one registered TaskManager.
set -euo pipefail

FLINK_VERSION="1.20.4"
READY_TIMEOUT_SECONDS="${AG_FLINK_START_TIMEOUT:-120}"

die() { echo "tests/servers/flink/start.sh: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: start.sh STATE_DIR"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
FLINK_HOME="$ROOT/target/test-servers/cache/flink/flink-${FLINK_VERSION}"
DIST_JAR="$FLINK_HOME/lib/flink-dist-${FLINK_VERSION}.jar"
[[ -f "$FLINK_HOME/.installed" && -f "$DIST_JAR" ]] \
    || die "Flink ${FLINK_VERSION} is not installed in $FLINK_HOME; run tests/servers/flink/install.sh"

JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
command -v "$JAVA" >/dev/null || die "java not found (JDK 17 needed)"
command -v curl >/dev/null || die "curl not found"
command -v python3 >/dev/null || die "python3 not found (used to pick free ports)"

mkdir -p "$1"
STATE="$(cd "$1" && pwd)"
LOG="$STATE/flink.log"
PID_FILE="$STATE/flink.pid"
ENV_FILE="$STATE/flink.env"

if [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    die "a cluster from $PID_FILE (pid $(cat "$PID_FILE")) is still running; stop it first"
fi
rm -f "$PID_FILE" "$ENV_FILE"
RUN="$STATE/flink-run"
rm -rf "$RUN"
mkdir -p "$RUN/conf" "$RUN/tmp" "$RUN/web-upload" "$RUN/web-tmp" "$RUN/blob"
echo "==== start.sh $(date "+%F %T"): starting a new cluster ====" >>"$LOG"

# Two distinct free ports on 127.0.0.1 (both sockets are held open while the numbers are read).
read -r REST_PORT RPC_PORT < <(python3 - <<'PY'
import socket
socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
)
[[ -n "${REST_PORT:-}" && -n "${RPC_PORT:-}" ]] || die "could not pick free ports"

# Flink >= 1.19 reads conf/config.yaml (standard YAML; flat dotted keys are accepted).
cat >"$RUN/conf/config.yaml" <<YAML
jobmanager.rpc.address: 127.0.0.1
jobmanager.rpc.port: ${RPC_PORT}
jobmanager.bind-host: 127.0.0.1
jobmanager.memory.process.size: 1024m
jobmanager.execution.failover-strategy: region
taskmanager.host: 127.0.0.1
taskmanager.bind-host: 127.0.0.1
taskmanager.memory.process.size: 1280m
taskmanager.numberOfTaskSlots: 2
parallelism.default: 1
restart-strategy.type: none
# The TaskManager starts alongside the JobManager and its first registration attempts fail;
# retry quickly instead of after the default 10 s.
cluster.registration.error-delay: 500ms
cluster.registration.refused-registration-delay: 500ms
cluster.registration.max-timeout: 5s
rest.address: 127.0.0.1
rest.bind-address: 127.0.0.1
rest.port: ${REST_PORT}
web.submit.enable: true
web.upload.dir: ${RUN}/web-upload
web.tmpdir: ${RUN}/web-tmp
io.tmp.dirs: ${RUN}/tmp
blob.storage.directory: ${RUN}/blob
YAML

# Let Flink's own calculator turn the process sizes into JVM flags and dynamic properties, the
# way bin/jobmanager.sh and bin/taskmanager.sh do. Both run at once to save a second.
resource_params() { # CMD OUT_PREFIX
    local out rc=0
    out="$("$JAVA" -cp "$FLINK_HOME/bin/bash-java-utils.jar:$DIST_JAR" \
        org.apache.flink.runtime.util.bash.BashJavaUtils "$1" --configDir "$RUN/conf" 2>&1)" || rc=$?
    if [[ $rc -ne 0 ]]; then
        printf '%s\n' "$out" >"$2.err"
        return 1
    fi
    printf '%s\n' "$out" | { grep '^BASH_JAVA_UTILS_EXEC_RESULT:' || true; } \
        | sed 's/^BASH_JAVA_UTILS_EXEC_RESULT://' >"$2.all"
    if [[ "$(wc -l <"$2.all")" -ne 2 ]]; then
        printf '%s\n' "$out" >"$2.err"
        return 1
    fi
    head -n 1 "$2.all" >"$2.jvm"
    tail -n 1 "$2.all" >"$2.dyn"
}
resource_params GET_JM_RESOURCE_PARAMS "$RUN/jobmanager" & jm_calc=$!
resource_params GET_TM_RESOURCE_PARAMS "$RUN/taskmanager" & tm_calc=$!
calc_ok=1
wait "$jm_calc" || calc_ok=0
wait "$tm_calc" || calc_ok=0
if [[ $calc_ok -ne 1 ]]; then
    cat "$RUN"/*.err >&2 2>/dev/null || true
    die "Flink's BashJavaUtils could not compute the memory settings from $RUN/conf/config.yaml"
fi

# Start the supervisor in its own session (so it leads a process group) and detach it.
setsid "$HERE/supervise.sh" "$STATE" "$FLINK_HOME" >>"$LOG" 2>&1 </dev/null &
SUPERVISOR=$!
echo "$SUPERVISOR" >"$PID_FILE"

fail() {
    echo "tests/servers/flink/start.sh: $*" >&2
    if kill -0 "$SUPERVISOR" 2>/dev/null; then
        kill "$SUPERVISOR" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$SUPERVISOR" 2>/dev/null || break; sleep 0.5; done
    fi
    echo "---- last lines of $LOG ----" >&2
    tail -n 60 "$LOG" >&2 || true
    rm -f "$PID_FILE"
    exit 1
}

REST="http://127.0.0.1:${REST_PORT}"
deadline=$((SECONDS + READY_TIMEOUT_SECONDS))
while :; do
    if ! kill -0 "$SUPERVISOR" 2>/dev/null; then
        fail "the Flink cluster exited during start-up"
    fi
    overview="$(curl -fsS --max-time 2 "$REST/overview" 2>/dev/null || true)"
    if [[ "$overview" =~ \"taskmanagers\":([0-9]+) ]] && [[ "${BASH_REMATCH[1]}" -ge 1 ]]; then
        break
    fi
    if [[ $SECONDS -ge $deadline ]]; then
        fail "no TaskManager registered at $REST/overview within ${READY_TIMEOUT_SECONDS}s"
    fi
    sleep 0.5
done

printf 'AG_TEST_FLINK_REST=%s\n' "$REST" >"$ENV_FILE.tmp"
mv "$ENV_FILE.tmp" "$ENV_FILE"
echo "flink: session cluster ready at $REST (pid $SUPERVISOR, log $LOG)"
