#!/usr/bin/env bash
# Download throughput: the gateway's S3 mount vs the same object straight from the S3 server
# (a presigned URL), measured with curl in one run, alternating, so the noisy machine treats
# both alike.
#
# Usage: benches/s3_download.sh [SIZE_MIB] [ROUNDS]
#   needs AG_TEST_S3_* (tests/servers/minio/start.sh writes them), Python boto3, curl, and a
#   release build: cargo build --release --bin artifact-gateway
set -euo pipefail

size_mib="${1:-256}"
rounds="${2:-3}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
bin="${AG_BENCH_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/artifact-gateway}"
for v in AG_TEST_S3_ENDPOINT AG_TEST_S3_ACCESS_KEY AG_TEST_S3_SECRET_KEY AG_TEST_S3_BUCKET; do
    [[ -n "${!v:-}" ]] || { echo "$v is not set: start MinIO with tests/servers/minio/start.sh" >&2; exit 1; }
done
[[ -x "$bin" ]] || { echo "$bin missing: cargo build --release --bin artifact-gateway" >&2; exit 1; }

work="$(mktemp -d)"
gw_pid=""
cleanup() { [[ -n "$gw_pid" ]] && kill "$gw_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

prefix="ag-bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cat >"$work/gw.toml" <<EOF
[[mounts]]
name = "s3"
url = "s3://$AG_TEST_S3_BUCKET/$prefix"
[mounts.s3]
endpoint = "$AG_TEST_S3_ENDPOINT"
region = "${AG_TEST_S3_REGION:-us-east-1}"
access_key_id = { env = "AG_TEST_S3_ACCESS_KEY" }
secret_access_key = { env = "AG_TEST_S3_SECRET_KEY" }
EOF
token="bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ARTIFACT_GATEWAY_TOKEN="$token" RUST_LOG=info "$bin" serve --config "$work/gw.toml" --listen 127.0.0.1:0 \
    2>"$work/gw.log" &
gw_pid=$!
url=""
for _ in $(seq 1 100); do
    url="$(grep -o 'listening on [^ ]*' "$work/gw.log" | head -1 | cut -d' ' -f3 || true)"
    [[ -n "$url" ]] && break
    sleep 0.1
done
[[ -n "$url" ]] || { echo "the gateway did not start:" >&2; cat "$work/gw.log" >&2; exit 1; }

head -c "$((size_mib << 20))" /dev/urandom >"$work/blob"
curl -sf -T "$work/blob" -H "Authorization: Bearer $token" \
    "$url/artifacts/s3/bench.bin" >/dev/null
presigned="$(python3 - "$prefix/bench.bin" <<'EOF'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AG_TEST_S3_ENDPOINT"],
                  aws_access_key_id=os.environ["AG_TEST_S3_ACCESS_KEY"],
                  aws_secret_access_key=os.environ["AG_TEST_S3_SECRET_KEY"],
                  region_name=os.environ.get("AG_TEST_S3_REGION", "us-east-1"))
print(s3.generate_presigned_url("get_object", Params={"Bucket": os.environ["AG_TEST_S3_BUCKET"], "Key": sys.argv[1]}, ExpiresIn=600))
EOF
)"

speed() { curl -sf -o /dev/null -w '%{speed_download}' "$@"; }
echo "size ${size_mib} MiB, ${rounds} rounds (MB/s = 10^6 bytes/s)"
for r in $(seq 1 "$rounds"); do
    direct="$(speed "$presigned")"
    via="$(speed -H "Authorization: Bearer $token" "$url/artifacts/s3/bench.bin")"
    awk -v r="$r" -v d="$direct" -v g="$via" \
        'BEGIN { printf "round %d: direct %.0f MB/s, gateway %.0f MB/s, ratio %.2f\n", r, d/1e6, g/1e6, g/d }'
done
curl -sf -X DELETE -H "Authorization: Bearer $token" "$url/artifacts/s3/bench.bin" >/dev/null
