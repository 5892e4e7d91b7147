#!/usr/bin/env bash
# Soak benchmark (not a test): REQUESTS requests (default 1,000,000) at CONCURRENCY connections
# (default 256) against the release binary, over a mix of sizes and methods (GET of 1 KiB, 64 KiB
# and 1 MiB artifacts, ranged GETs, conditional GET answered 304, JSON listing, 4 KiB PUT,
# health check; see benches/soak.lua; no HEAD, which wrk cannot parse). Reports errors (must be 0: connect/read/write/timeouts and
# any status >= 400), p50/p99 latency, and the server's RSS after warm-up and at the end (must end
# at most 1.1x the start). Exits non-zero when either check fails.
#
#   benches/soak.sh                       # 1,000,000 requests at concurrency 256
#   benches/soak.sh 20000 64              # a quick smoke run
#   AG_BIN=target/debug/artifact-gateway benches/soak.sh 20000 64
#
# Needs wrk (Debian package `wrk`). Run it on an otherwise idle machine; the load generator and the
# server share the cores.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQUESTS=${1:-1000000}
CONCURRENCY=${2:-256}
THREADS=${THREADS:-$(nproc)}
WARMUP=${WARMUP:-10s}
command -v wrk >/dev/null || { echo "soak.sh: wrk is missing: apt-get install wrk" >&2; exit 2; }
BIN=${AG_BIN:-}
if [ -z "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --quiet)
  BIN="$ROOT/target/release/artifact-gateway"
fi
WORK=$(mktemp -d)
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/data/soak"
head -c 1024 /dev/urandom >"$WORK/data/soak/small.jar"
head -c 65536 /dev/urandom >"$WORK/data/soak/medium.jar"
head -c 1048576 /dev/urandom >"$WORK/data/soak/large.jar"
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ARTIFACT_GATEWAY_TOKEN=$TOKEN RUST_LOG=warn "$BIN" serve --data "$WORK/data" --listen "127.0.0.1:$PORT" \
  2>"$WORK/server.log" &
PID=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do curl -fs "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
ETAG=$(curl -fsI "$URL/artifacts/default/soak/small.jar" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
rss() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }

echo "soak: warm-up ($WARMUP at concurrency $CONCURRENCY), server pid $PID, RSS $(rss) KiB"
WARM=$(wrk -t "$THREADS" -c "$CONCURRENCY" -d "$WARMUP" -s "$ROOT/benches/soak.lua" "$URL" -- 0 "$TOKEN" "$ETAG")
RATE=$(echo "$WARM" | awk '/^Requests\/sec/ {print int($2)}')
[ "${RATE:-0}" -gt 0 ] || { echo "soak: the warm-up measured no throughput:"; echo "$WARM"; exit 1; }
# wrk runs for a duration; each thread stops sending at its share of REQUESTS, so the duration is
# set from the warm-up's rate with a margin (the idle tail does not change the latency figures).
DURATION=$(( REQUESTS * 115 / 100 / RATE + 5 ))
sleep 1
RSS_START=$(rss)
PER_THREAD=$(( (REQUESTS + THREADS - 1) / THREADS ))
echo "soak: $REQUESTS requests at concurrency $CONCURRENCY ($THREADS wrk threads, warm-up rate $RATE/s, at most ${DURATION}s), RSS after warm-up $RSS_START KiB"
OUT=$(wrk -t "$THREADS" -c "$CONCURRENCY" -d "${DURATION}s" --timeout 10s -s "$ROOT/benches/soak.lua" "$URL" -- "$PER_THREAD" "$TOKEN" "$ETAG")
sleep 1
RSS_END=$(rss)
echo "$OUT" | grep -E '^soak:'
ERRORS=$(echo "$OUT" | sed -nE 's/^soak: requests=[0-9]+ errors=([0-9]+).*/\1/p')
DONE=$(echo "$OUT" | sed -nE 's/^soak: requests=([0-9]+) .*/\1/p')
[ "$DONE" -ge "$REQUESTS" ] || echo "soak: only $DONE of $REQUESTS requests were sent in ${DURATION}s (slower than the warm-up); rerun with a longer WARMUP"
RATIO=$(awk -v a="$RSS_END" -v b="$RSS_START" 'BEGIN {printf "%.3f", a / b}')
echo "soak: RSS start $RSS_START KiB, end $RSS_END KiB (ratio $RATIO, must be <= 1.10); errors $ERRORS (must be 0)"
if grep -qiE 'panick|request failed' "$WORK/server.log"; then
  echo "soak: the server logged failures:"; grep -iE 'panick|request failed' "$WORK/server.log" | head -5
  exit 1
fi
awk -v r="$RATIO" 'BEGIN {exit !(r <= 1.10)}' && [ "$ERRORS" = 0 ]
