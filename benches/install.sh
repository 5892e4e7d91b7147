#!/usr/bin/env bash
# Installs what benches/bench.sh compares against: nginx, rclone and wrk (Debian packages), curl,
# openssl, and MinIO with boto3 (tests/servers/minio/install.sh: built from the Go module proxy).
# Idempotent; a warm run takes seconds. benches/bench.sh never installs anything itself.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

need=()
have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]]; }
for pair in nginx:nginx rclone:rclone wrk:wrk curl:curl openssl:openssl; do
    have "${pair%%:*}" || need+=("${pair##*:}")
done
if ((${#need[@]})); then
    echo "benches/install.sh: apt-get install ${need[*]}"
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}"
fi
# The S3 scenarios need a MinIO server and boto3 (for the presigned URL).
"$here/../tests/servers/minio/install.sh"
echo "benches/install.sh: nginx, rclone, wrk, curl, openssl and MinIO are installed"
