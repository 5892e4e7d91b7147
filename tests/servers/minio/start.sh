#!/usr/bin/env bash
# Starts one MinIO (S3) test server on free 127.0.0.1 ports with fresh
# credentials and an empty bucket, and waits until it serves requests.
#
# Usage: tests/servers/minio/start.sh STATE_DIR
#   optional env: AG_TEST_S3_BUCKET (default ag-test), AG_TEST_MINIO_START_TIMEOUT (default 120)
# Writes STATE_DIR/minio.env (AG_TEST_S3_* and AG_TEST_MINIO_DATA),
#        STATE_DIR/minio.pid (the minio process; kill it to stop),
#        STATE_DIR/minio.log.
# Needs tests/servers/minio/install.sh to have run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../lib.sh
source "$here/../../lib.sh" minio/start.sh
bucket="${AG_TEST_S3_BUCKET:-ag-test}"
region="us-east-1"
ready_timeout="${AG_TEST_MINIO_START_TIMEOUT:-120}"

args_or_usage 1 "$0 STATE_DIR" "$@"
need go "'go' not found; install Go and run tests/servers/minio/install.sh"
need curl "'curl' not found; install it (Debian: apt-get install curl)"
need python3 "'python3' not found; install Python 3"
gobin="$(go env GOBIN)"
[[ -n "$gobin" ]] || gobin="$(go env GOPATH)/bin"
minio_bin="$gobin/minio"
[[ -x "$minio_bin" ]] || die "$minio_bin not found; run tests/servers/minio/install.sh first"
python3 -c 'import boto3' 2>/dev/null || die "Python boto3 missing; run tests/servers/minio/install.sh first"

mkdir -p "$1"
state_dir="$(cd "$1" && pwd)"
log="$state_dir/minio.log"
pid_file="$state_dir/minio.pid"
env_file="$state_dir/minio.env"
data_dir="$state_dir/minio-data"
certs_dir="$state_dir/minio-certs"   # keeps MinIO away from ~/.minio

if [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    die "a MinIO server from $pid_file is still running (pid $(cat "$pid_file")); kill it or use another STATE_DIR"
fi
rm -f "$env_file" "$pid_file"
: >"$log"
mkdir -p "$data_dir" "$certs_dir"

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
access_key="ag$(random_hex 8)"
secret_key="$(random_hex 20)"

# Two distinct free ports, held open together while the kernel picks them.
free_ports() {
    python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
'
}

minio_pid=""
fail() {
    echo "minio/start.sh: $*" >&2
    stop_pid "$minio_pid"
    rm -f "$pid_file"
    show_log "$log"
    exit 1
}

deadline=$((SECONDS + ready_timeout))
endpoint=""
# A port picked above can be taken by someone else before MinIO binds it; retry with new ports.
for attempt in 1 2 3; do
    read -r api_port console_port < <(free_ports)
    echo "start.sh: attempt $attempt, api 127.0.0.1:$api_port console 127.0.0.1:$console_port" >>"$log"
    (
        cd "$state_dir"
        export MINIO_ROOT_USER="$access_key" MINIO_ROOT_PASSWORD="$secret_key"
        export MINIO_SITE_REGION="$region"
        export MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off
        exec setsid "$minio_bin" server --anonymous \
            --address "127.0.0.1:$api_port" --console-address "127.0.0.1:$console_port" \
            --certs-dir "$certs_dir" "$data_dir"
    ) </dev/null >>"$log" 2>&1 &
    minio_pid=$!
    echo "$minio_pid" >"$pid_file"

    while (( SECONDS < deadline )); do
        if ! kill -0 "$minio_pid" 2>/dev/null; then
            minio_pid=""
            break
        fi
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
            "http://127.0.0.1:$api_port/minio/health/live" || true)"
        if [[ "$code" == "200" ]]; then
            endpoint="http://127.0.0.1:$api_port"
            break
        fi
        sleep 0.25
    done
    [[ -n "$endpoint" ]] && break
    [[ -n "$minio_pid" ]] && fail "MinIO not live after ${ready_timeout}s"
    grep -qi 'address already in use' "$log" || fail "MinIO exited before it was ready"
done
[[ -n "$endpoint" ]] || fail "MinIO could not bind a free port after 3 attempts"

export AG_TEST_S3_ENDPOINT="$endpoint" AG_TEST_S3_ACCESS_KEY="$access_key" \
    AG_TEST_S3_SECRET_KEY="$secret_key" AG_TEST_S3_BUCKET="$bucket" AG_TEST_S3_REGION="$region"
remaining=$((deadline - SECONDS))
(( remaining > 5 )) || remaining=5
python3 "$here/create_bucket.py" "$remaining" >>"$log" 2>&1 || fail "could not create bucket '$bucket'"

write_env "$env_file" "AG_TEST_S3_ENDPOINT=$endpoint" "AG_TEST_S3_ACCESS_KEY=$access_key" \
    "AG_TEST_S3_SECRET_KEY=$secret_key" "AG_TEST_S3_BUCKET=$bucket" "AG_TEST_S3_REGION=$region" \
    "AG_TEST_MINIO_DATA=$data_dir"
echo "minio: ready at $endpoint, bucket $bucket (pid $minio_pid, state $state_dir)"
