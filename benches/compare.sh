#!/usr/bin/env bash
# End-to-end benchmark: artifact-gateway vs nginx vs `rclone serve http`, serving the same files
# from the same directory over loopback, measured in ONE run (this machine is noisy: compare the
# ratios, not the absolute numbers). Also reports the gateway's peak RSS while serving 16
# concurrent 256 MiB downloads.
#
#   benches/compare.sh            # needs nginx, rclone, wrk, curl (installed with apt-get if missing)
#   SMALL_SECONDS=10 benches/compare.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SMALL_SECONDS=${SMALL_SECONDS:-5}
CONCURRENT=${CONCURRENT:-16}

missing=()
for p in nginx:nginx rclone:rclone wrk:wrk curl:curl; do
  command -v "${p%%:*}" >/dev/null 2>&1 || command -v "/usr/sbin/${p%%:*}" >/dev/null 2>&1 || missing+=("${p##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release -q
BIN="$ROOT/target/release/artifact-gateway"
WORK=$(mktemp -d /tmp/ag-bench.XXXXXX)
DATA="$WORK/data"
mkdir -p "$DATA"
chmod 755 "$WORK"   # nginx workers run as an unprivileged user
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() {
  for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "no answer from $1; logs:" >&2; tail -n 20 "$WORK"/*.log >&2 || true; return 1
}

echo "preparing files in $DATA"
head -c 4096 /dev/urandom > "$DATA/small.jar"
head -c $((1 << 30)) /dev/urandom > "$DATA/big.jar"
head -c $((256 << 20)) /dev/urandom > "$DATA/mid.jar"

GW_PORT=$(free_port); NG_PORT=$(free_port); RC_PORT=$(free_port)
"$BIN" serve --data "$DATA" --listen "127.0.0.1:$GW_PORT" 2>"$WORK/gw.log" &
GW_PID=$!; pids+=("$GW_PID")
cat > "$WORK/nginx.conf" <<NGX
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on;
  types { application/java-archive jar; }
  client_body_temp_path $WORK/ngx-body; proxy_temp_path $WORK/ngx-proxy; fastcgi_temp_path $WORK/ngx-fcgi;
  uwsgi_temp_path $WORK/ngx-uwsgi; scgi_temp_path $WORK/ngx-scgi;
  server { listen 127.0.0.1:$NG_PORT; location /artifacts/default/ { alias $DATA/; } }
}
NGX
"$NGINX" -c "$WORK/nginx.conf" -g 'daemon off;' &
pids+=("$!")
rclone serve http "$DATA" --addr "127.0.0.1:$RC_PORT" --baseurl /artifacts/default -q 2>"$WORK/rclone.log" &
pids+=("$!")
for port in $GW_PORT $NG_PORT $RC_PORT; do wait_http "http://127.0.0.1:$port/artifacts/default/small.jar"; done

declare -A small big
echo
echo "== small artifact (4 KiB), wrk -t2 -c32 -d${SMALL_SECONDS}s, requests/s"
for name in gateway:$GW_PORT nginx:$NG_PORT rclone:$RC_PORT; do
  n=${name%%:*}; port=${name##*:}
  rps=$(wrk -t2 -c32 -d"${SMALL_SECONDS}s" "http://127.0.0.1:$port/artifacts/default/small.jar" | awk '/Requests\/sec/ {print $2}')
  small[$n]=$rps
  printf '  %-8s %10s req/s\n' "$n" "$rps"
done

echo
echo "== large artifact (1 GiB), one curl download to /dev/null, MB/s"
for name in gateway:$GW_PORT nginx:$NG_PORT rclone:$RC_PORT; do
  n=${name%%:*}; port=${name##*:}
  bps=$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$port/artifacts/default/big.jar")
  mbs=$(python3 -c "print(round($bps/1e6))")
  big[$n]=$mbs
  printf '  %-8s %6s MB/s\n' "$n" "$mbs"
done

echo
echo "== gateway upload of 1 GiB (PUT, digest verified), MB/s"
TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true
ARTIFACT_GATEWAY_TOKEN=$TOKEN "$BIN" serve --data "$DATA" --listen "127.0.0.1:$GW_PORT" 2>"$WORK/gw.log" &
GW_PID=$!; pids+=("$GW_PID")
wait_http "http://127.0.0.1:$GW_PORT/healthz"
SHA=$(sha256sum "$DATA/big.jar" | cut -d' ' -f1)
bps=$(curl -s -o /dev/null -w '%{speed_upload}' -T "$DATA/big.jar" -H "Authorization: Bearer $TOKEN" -H "X-Checksum-Sha256: $SHA" \
  "http://127.0.0.1:$GW_PORT/artifacts/default/upload/big.jar")
echo "  gateway  $(python3 -c "print(round($bps/1e6))") MB/s (server hashes, fsyncs and renames; the file lands on the same disk)"

echo
echo "== $CONCURRENT concurrent 256 MiB downloads: wall time and gateway peak RSS"
echo 5 > "/proc/$GW_PID/clear_refs" 2>/dev/null || true   # reset VmHWM so the figure is this test's peak
for name in gateway:$GW_PORT nginx:$NG_PORT rclone:$RC_PORT; do
  n=${name%%:*}; port=${name##*:}
  start=$(date +%s.%N)
  cpids=()
  for _ in $(seq 1 "$CONCURRENT"); do curl -s -o /dev/null "http://127.0.0.1:$port/artifacts/default/mid.jar" & cpids+=("$!"); done
  for p in "${cpids[@]}"; do wait "$p"; done
  secs=$(python3 -c "import time; print(round(time.time() - $start, 2))")
  printf '  %-8s %6ss  (%s MB/s aggregate)\n' "$n" "$secs" "$(python3 -c "print(round($CONCURRENT*256*1.048576/$secs))")"
done
echo "  gateway peak RSS during the concurrent downloads (VmHWM): $(awk '/VmHWM/ {print $2, $3}' /proc/$GW_PID/status)"

echo
echo "== ratios (gateway / nginx, gateway / rclone), same run"
python3 - "${small[gateway]}" "${small[nginx]}" "${small[rclone]}" "${big[gateway]}" "${big[nginx]}" "${big[rclone]}" <<'PY'
import sys
sg, sn, sr, bg, bn, br = map(float, sys.argv[1:])
print(f"  small req/s: {sg/sn:.2f}x nginx, {sg/sr:.2f}x rclone")
print(f"  1 GiB MB/s:  {bg/bn:.2f}x nginx, {bg/br:.2f}x rclone")
PY
