#!/usr/bin/env bash
# Installs the S3 test server: a MinIO binary built from the Go module proxy
# (pinned pseudo-version, cached in $(go env GOBIN) or $(go env GOPATH)/bin),
# plus Python boto3, which start.sh uses to create the test bucket.
# Idempotent: a warm run only checks the binary's embedded module version.
set -euo pipefail

MINIO_MODULE="github.com/minio/minio"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
# How long to wait for a build of the same version that another process started.
OTHER_BUILD_WAIT="${AG_TEST_MINIO_BUILD_WAIT:-1800}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../../.." && pwd)"
cache="$repo_root/target/test-servers/cache/minio"

die() { echo "minio/install.sh: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 \
    || die "'go' not found on PATH; install Go 1.24+ (https://go.dev/dl or Debian: apt-get install golang)"
command -v python3 >/dev/null 2>&1 \
    || die "'python3' not found on PATH; install Python 3 (Debian: apt-get install python3 python3-pip)"

gobin="$(go env GOBIN)"
[[ -n "$gobin" ]] || gobin="$(go env GOPATH)/bin"
minio_bin="$gobin/minio"

# True when $minio_bin exists and was built from the pinned module version.
minio_current() {
    [[ -x "$minio_bin" ]] || return 1
    go version -m "$minio_bin" 2>/dev/null \
        | awk -v m="$MINIO_MODULE" -v v="$MINIO_VERSION" '$1=="mod" && $2==m && $3==v {ok=1} END {exit !ok}'
}

other_build_running() {
    pgrep -f "go install ${MINIO_MODULE}@${MINIO_VERSION}" >/dev/null 2>&1
}

if ! minio_current; then
    mkdir -p "$cache"
    # Serialise our own installs; a build started some other way is detected with pgrep.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$cache/install.lock"
        flock 9
    fi
    if ! minio_current && other_build_running; then
        echo "minio: a 'go install ${MINIO_MODULE}@${MINIO_VERSION}' is already running; waiting for it (up to ${OTHER_BUILD_WAIT}s)..."
        deadline=$((SECONDS + OTHER_BUILD_WAIT))
        while other_build_running && (( SECONDS < deadline )); do sleep 5; done
    fi
    if ! minio_current; then
        echo "minio: building ${MINIO_MODULE}@${MINIO_VERSION} (first build takes 5-15 min on 2 cores)..."
        if ! go install "${MINIO_MODULE}@${MINIO_VERSION}"; then
            die "'go install ${MINIO_MODULE}@${MINIO_VERSION}' failed (needs the Go module proxy and Go 1.24+)"
        fi
        minio_current || die "go install finished but $minio_bin is not ${MINIO_VERSION}"
    fi
    echo "minio: installed $minio_bin"
else
    echo "minio: up to date ($minio_bin)"
fi

if ! python3 -c 'import boto3' >/dev/null 2>&1; then
    echo "minio: installing Python boto3 (used by start.sh to create the bucket)..."
    python3 -m pip install --quiet boto3 \
        || die "could not install boto3 for $(command -v python3); install it (pip install boto3, or Debian: apt-get install python3-boto3)"
    python3 -c 'import boto3' >/dev/null 2>&1 || die "boto3 installed but not importable by $(command -v python3)"
fi
