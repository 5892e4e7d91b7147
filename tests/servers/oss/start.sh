#!/usr/bin/env bash
# Starts one OSS test server (tests/servers/oss/oss_server.py) bound to
# 127.0.0.1 on a free port, daemonized, and waits until it answers.
# Writes STATE_DIR/oss.env, STATE_DIR/oss.pid; logs to STATE_DIR/oss.log.
# Objects live in STATE_DIR/oss-data; the same STATE_DIR keeps objects and keys
# across a restart.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 STATE_DIR" >&2
    exit 2
fi
mkdir -p "$1"
STATE_DIR=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-python3}
BUCKET=${AG_TEST_OSS_BUCKET_NAME:-ag-test}
LOG="$STATE_DIR/oss.log"
READY="$STATE_DIR/oss.ready"
CREDS="$STATE_DIR/oss-credentials.json"
WAIT_SECONDS=${OSS_START_TIMEOUT:-120}

fail() {
    echo "oss/start.sh: $1" >&2
    if [ -f "$LOG" ]; then
        echo "---- last lines of $LOG ----" >&2
        tail -n 40 "$LOG" >&2 || true
    fi
    exit 1
}

if [ -f "$STATE_DIR/oss.pid" ]; then
    old=$(cat "$STATE_DIR/oss.pid" 2>/dev/null || true)
    if [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then
        fail "an OSS test server (pid $old) already runs for $STATE_DIR; kill it first"
    fi
fi
rm -f "$STATE_DIR/oss.env" "$STATE_DIR/oss.pid" "$READY"

"$PY" -c 'import oss2' 2>/dev/null || fail "oss2 is not importable by $PY; run tests/servers/oss/install.sh"

# One key pair per state directory, random, kept across restarts.
if [ ! -s "$CREDS" ]; then
    "$PY" - "$CREDS" <<'PYEOF'
import json, os, secrets, string, sys
alphabet = string.ascii_letters + string.digits
key_id = "LTAI5t" + "".join(secrets.choice(alphabet) for _ in range(18))
secret = "".join(secrets.choice(alphabet) for _ in range(30))
path = sys.argv[1]
fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump({key_id: secret}, f)
os.replace(path + ".tmp", path)
PYEOF
fi

launcher=()
if command -v setsid >/dev/null 2>&1; then
    launcher=(setsid)  # own session: a Ctrl-C in the test terminal does not reach it
fi
echo "==== $(date -u +%FT%TZ) start.sh: starting OSS test server" >>"$LOG"
nohup "${launcher[@]}" "$PY" -u "$HERE/oss_server.py" \
    --state-dir "$STATE_DIR" --bucket "$BUCKET" --credentials "$CREDS" \
    >>"$LOG" 2>&1 </dev/null &
launched=$!

deadline=$((SECONDS + WAIT_SECONDS))
while [ ! -s "$READY" ]; do
    if ! kill -0 "$launched" 2>/dev/null; then
        fail "the server exited before it was ready"
    fi
    if [ $SECONDS -ge $deadline ]; then
        kill "$launched" 2>/dev/null || true
        fail "the server was not ready after ${WAIT_SECONDS}s"
    fi
    sleep 0.1
done

read -r PORT PID < <("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["port"], d["pid"])' "$READY")

# Really ready: it must answer HTTP on the port (an unsigned request gets 403).
"$PY" - "$PORT" "$WAIT_SECONDS" <<'PYEOF' || { kill "$PID" 2>/dev/null || true; fail "the server does not answer HTTP on 127.0.0.1:$PORT"; }
import http.client, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
deadline = time.time() + limit
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/")
        status = c.getresponse().status
        sys.exit(0 if status == 403 else 1)
    except OSError:
        if time.time() > deadline:
            sys.exit(1)
        time.sleep(0.1)
PYEOF

"$PY" - "$CREDS" "$STATE_DIR/oss.env" "$PORT" "$BUCKET" <<'PYEOF'
import json, os, sys
creds, env_path, port, bucket = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
key_id, secret = next(iter(json.load(open(creds)).items()))
lines = [
    f"AG_TEST_OSS_ENDPOINT=http://127.0.0.1:{port}",
    f"AG_TEST_OSS_ACCESS_KEY_ID={key_id}",
    f"AG_TEST_OSS_ACCESS_KEY_SECRET={secret}",
    f"AG_TEST_OSS_BUCKET={bucket}",
]
with open(env_path + ".tmp", "w") as f:
    f.write("\n".join(lines) + "\n")
os.replace(env_path + ".tmp", env_path)
PYEOF
echo "$PID" >"$STATE_DIR/oss.pid"
echo "oss: ready on http://127.0.0.1:$PORT (bucket $BUCKET, pid $PID)"
