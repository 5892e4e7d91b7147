#!/usr/bin/env bash
# Builds the images the Kubernetes tests run, with podman (runc) from locally made base images
# (tests/servers/k8s/base-images.sh), and imports them into the test cluster's containerd.
#
#   registry.example.com/platform/artifact-gateway:0.1.0
#       deploy/Dockerfile as shipped, with --build-arg BINARY_STAGE=prebuilt: the binary is the one
#       the test run already compiled (given as BINARY, stripped), not a second build
#   flink:1.18.1
#       JRE 17 + Flink 1.18.1 (flink-dist and lib/ from PyPI apache-flink-libraries, the bin/
#       scripts from PyPI apache-flink), laid out like the official image (/opt/flink,
#       /docker-entrypoint.sh, uid 9999)
#   registry.example.com/platform/flink-python:1.18.1
#       the Flink image + Python 3.9 + PyFlink 1.18.1 (pip, offline from a wheelhouse made with the
#       image's own Python), as application-python.yaml describes
#   flink-kubernetes-operator:1.7.0
#       JRE 17 + the Flink Kubernetes Operator 1.7.0 and its runtime dependencies from Maven Central
#       (tests/k8s/operator/pom.xml)
#   eclipse-temurin:17-jre
#       the local JRE 17 base image under the name deploy/flink/operator-values.yaml uses
#
# usage: tests/k8s/images.sh BINARY [CONTAINERD_SOCKET]
#        tests/k8s/images.sh --prebuild
#   BINARY             the artifact-gateway executable to put into the gateway image
#   CONTAINERD_SOCKET  when given, every image is imported there (namespace k8s.io)
#   --prebuild         every image but the gateway's (which needs the compiled binary), nothing
#                      imported: tests/servers/k8s/install.sh builds them while the tests compile
# Sizes are printed at the end. Images whose inputs did not change are not rebuilt.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../servers/k8s/versions.env
source "$ROOT/tests/servers/k8s/versions.env"
die() { echo "tests/k8s/images.sh: $*" >&2; exit 1; }
[[ $# -ge 1 && $# -le 2 ]] || die "usage: images.sh BINARY [CONTAINERD_SOCKET] | images.sh --prebuild"
BINARY="$1"
SOCK="${2:-}"
PREBUILD=0
if [[ "$BINARY" == --prebuild ]]; then
    PREBUILD=1
    [[ -z "$SOCK" ]] || die "--prebuild imports nothing"
else
    [[ -x "$BINARY" ]] || die "$BINARY is not an executable (build it: cargo build)"
fi
CACHE="$(go env GOPATH)/artifact-gateway-test/k8s-$K8S_VERSION"
export CONTAINERS_CONF="$CACHE/containers.conf"
[[ -f "$CONTAINERS_CONF" ]] || die "run tests/servers/k8s/install.sh first"
WORK="$ROOT/target/test-servers/cache/k8s"
# Downloads that do not depend on the checkout (Flink's sdists, the PyFlink wheelhouse).
DOWNLOADS="$CACHE/downloads"
mkdir -p "$WORK" "$DOWNLOADS"

GATEWAY_IMAGE=registry.example.com/platform/artifact-gateway:0.1.0
FLINK_IMAGE=docker.io/library/flink:$FLINK_IMAGE_VERSION
PYFLINK_IMAGE=registry.example.com/platform/flink-python:$FLINK_IMAGE_VERSION
OPERATOR_IMAGE=docker.io/library/flink-kubernetes-operator:$FLINK_OPERATOR_VERSION
JRE_IMAGE=docker.io/library/eclipse-temurin:17-jre

"$ROOT/tests/servers/k8s/base-images.sh"

label_of() { podman image inspect --format '{{index .Labels "ag.inputs"}}' "$1" 2>/dev/null || true; }
id_of() { podman image inspect --format '{{.Id}}' "$1"; }
# What an image is made of: its files and the base image it builds on.
hash_of() { { cat "$@"; echo "$BASE_IDS"; } | sha256sum | cut -c1-16; }
BASE_IDS="$(id_of debian:trixie-slim) $(id_of ag-jre:17)"

# ---- the gateway image: deploy/Dockerfile, binary from the test build ------------------------
if [[ $PREBUILD == 0 ]]; then
ctx="$WORK/gateway-context"
rm -rf "$ctx"
mkdir -p "$ctx/prebuilt" "$ctx/config"
cp "$BINARY" "$ctx/prebuilt/artifact-gateway"
strip "$ctx/prebuilt/artifact-gateway" 2>/dev/null || true
cp "$ROOT"/config/*.toml "$ctx/config/"
inputs="$(hash_of "$ROOT/deploy/Dockerfile" "$ctx/prebuilt/artifact-gateway" "$ctx"/config/*.toml)"
if [[ "$(label_of "$GATEWAY_IMAGE")" == "$inputs" ]]; then
    echo "image $GATEWAY_IMAGE: up to date"
else
    echo "image $GATEWAY_IMAGE: building deploy/Dockerfile (BINARY_STAGE=prebuilt)..."
    # --network host: the runtime stage installs its two Debian packages from the mirror.
    podman build --pull=never --network host --layers -f "$ROOT/deploy/Dockerfile" \
        --build-arg BINARY_STAGE=prebuilt --label "ag.inputs=$inputs" -t "$GATEWAY_IMAGE" "$ctx" \
        >"$WORK/gateway-build.log" 2>&1 || { tail -n 30 "$WORK/gateway-build.log" >&2; die "podman build of deploy/Dockerfile failed"; }
fi
fi

# ---- Flink ---------------------------------------------------------------------------------------
sdists="$DOWNLOADS/flink-sdist"
mkdir -p "$sdists"
for pkg in apache-flink-libraries apache-flink; do
    f="$sdists/$pkg-$FLINK_IMAGE_VERSION.tar.gz"
    if [[ ! -s "$f" ]] || ! gzip -t "$f" 2>/dev/null; then
        rm -f "$f"
        echo "downloading $pkg==$FLINK_IMAGE_VERSION (source distribution) from PyPI..."
        python3 -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$sdists" "$pkg==$FLINK_IMAGE_VERSION" \
            >"$sdists/pip-$pkg.log" 2>&1 || python3 -m pip download -q --no-deps --no-binary :all: -d "$sdists" "$pkg==$FLINK_IMAGE_VERSION" \
            >>"$sdists/pip-$pkg.log" 2>&1 || { tail -n 20 "$sdists/pip-$pkg.log" >&2; die "pip download $pkg==$FLINK_IMAGE_VERSION failed"; }
        [[ -s "$f" ]] || die "pip did not leave $f"
    fi
done
inputs="$(hash_of "$HERE/flink/Containerfile" "$HERE/flink/docker-entrypoint.sh" "$HERE/flink/log4j-console.properties" "${BASH_SOURCE[0]}" "$sdists"/*.tar.gz)"
if [[ "$(label_of "$FLINK_IMAGE")" == "$inputs" ]]; then
    echo "image $FLINK_IMAGE: up to date"
else
    echo "image $FLINK_IMAGE: building..."
    ctx="$WORK/flink-context"
    rm -rf "$ctx"
    mkdir -p "$ctx/x" "$ctx/flink/conf" "$ctx/flink/log"
    tar --no-same-owner -xzf "$sdists/apache-flink-libraries-$FLINK_IMAGE_VERSION.tar.gz" -C "$ctx/x" \
        "apache-flink-libraries-$FLINK_IMAGE_VERSION/deps"
    tar --no-same-owner -xzf "$sdists/apache-flink-$FLINK_IMAGE_VERSION.tar.gz" -C "$ctx/x" \
        "apache-flink-$FLINK_IMAGE_VERSION/deps/bin"
    libs="$ctx/x/apache-flink-libraries-$FLINK_IMAGE_VERSION/deps"
    mv "$libs/lib" "$libs/opt" "$libs/plugins" "$ctx/flink/"
    mkdir -p "$ctx/flink/bin"
    mv "$libs/bin/bash-java-utils.jar" "$ctx/x/apache-flink-$FLINK_IMAGE_VERSION/deps/bin/"* "$ctx/flink/bin/"
    rm -f "$ctx/flink/bin/"*.bat
    chmod +x "$ctx/flink/bin/"*.sh "$ctx/flink/bin/flink"
    rm -rf "$ctx/x"
    cp "$HERE/flink/log4j-console.properties" "$ctx/flink/conf/"
    printf 'jobmanager.rpc.address: localhost\nrest.port: 8081\ntaskmanager.numberOfTaskSlots: 1\n' >"$ctx/flink/conf/flink-conf.yaml"
    cp "$HERE/flink/Containerfile" "$HERE/flink/docker-entrypoint.sh" "$ctx/"
    podman build --pull=never --network none --layers -f "$ctx/Containerfile" --label "ag.inputs=$inputs" \
        -t "$FLINK_IMAGE" "$ctx" >"$WORK/flink-build.log" 2>&1 \
        || { tail -n 30 "$WORK/flink-build.log" >&2; die "podman build of the Flink image failed"; }
    rm -rf "$ctx"
fi

# ---- PyFlink: the Flink image + Python 3.9 + apache-flink ---------------------------------------
# The image build itself runs offline (--network none) from a wheelhouse made beforehand:
#  - apache-flink-libraries (the Flink jars; PyPI has only its source distribution) is built into a
#    wheel on the host from the sdist downloaded above;
#  - everything else by `pip wheel` of the image's own Python 3.9 (a throw-away container of the
#    base image), so the wheels match its interpreter and sdist-only dependencies (avro-python3,
#    crcmod, dill, docopt) are built the way that interpreter builds them. That pip reaches PyPI
#    with the host's network settings and the CA bundle the host's pip is configured with (a host
#    behind a TLS-inspecting proxy trusts a CA the base image does not know), and downloads into the
#    host's pip cache, so a second machine-local build downloads nothing.
# The wheelhouse is kept next to the Kubernetes binaries (shared by every checkout on the machine).
host_pip_ca() {
    local ca
    ca="$(python3 -m pip config list 2>/dev/null | sed -n "s/^[^.]*\.cert='\(.*\)'$/\1/p" | tail -n 1)"
    [[ -n "$ca" ]] || ca="${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-}}}"
    [[ -n "$ca" ]] || ca=/etc/ssl/certs/ca-certificates.crt
    [[ -f "$ca" ]] || die "no CA bundle for pip found (pip config list names none and $ca does not exist)"
    echo "$ca"
}
build_pyflink() {
wheels="$DOWNLOADS/pyflink-$FLINK_IMAGE_VERSION-cp39-wheels"
if [[ ! -f "$wheels/.complete" ]]; then
    rm -rf "$wheels"
    mkdir -p "$wheels"
    echo "PyFlink $FLINK_IMAGE_VERSION wheelhouse for Python 3.9 (pip of ag-jre:17)..."
    python3 -m pip wheel -q --no-deps -w "$wheels" "$sdists/apache-flink-libraries-$FLINK_IMAGE_VERSION.tar.gz" \
        >"$WORK/pyflink-wheels.log" 2>&1 || { tail -n 20 "$WORK/pyflink-wheels.log" >&2; die "could not build the apache-flink-libraries wheel"; }
    pip_cache="$(python3 -m pip cache dir 2>/dev/null || echo "$HOME/.cache/pip")"
    mkdir -p "$pip_cache"
    podman run --rm --network host -e HTTPS_PROXY -e HTTP_PROXY -e NO_PROXY -e https_proxy -e http_proxy -e no_proxy \
        -e PIP_CERT=/etc/host-ca.crt -v "$(host_pip_ca):/etc/host-ca.crt:ro" -v "$pip_cache:/pip-cache" -v "$wheels:/wheels" ag-jre:17 \
        python3 -m pip wheel --disable-pip-version-check --cache-dir /pip-cache \
            --find-links /wheels -w /wheels "apache-flink==$FLINK_IMAGE_VERSION" \
        >>"$WORK/pyflink-wheels.log" 2>&1 || { tail -n 30 "$WORK/pyflink-wheels.log" >&2; die "pip wheel apache-flink==$FLINK_IMAGE_VERSION (Python 3.9) failed"; }
    touch "$wheels/.complete"
fi
inputs="$(hash_of "$HERE/flink-python/Containerfile" <(ls "$wheels") <(label_of "$FLINK_IMAGE"))"
if [[ "$(label_of "$PYFLINK_IMAGE")" == "$inputs" ]]; then
    echo "image $PYFLINK_IMAGE: up to date"
else
    echo "image $PYFLINK_IMAGE: building (pip install apache-flink==$FLINK_IMAGE_VERSION from the wheelhouse, offline)..."
    podman build --pull=never --network none --layers -f "$HERE/flink-python/Containerfile" \
        --build-arg "FLINK_VERSION=$FLINK_IMAGE_VERSION" --label "ag.inputs=$inputs" \
        -t "$PYFLINK_IMAGE" "$wheels" >"$WORK/flink-python-build.log" 2>&1 \
        || { tail -n 30 "$WORK/flink-python-build.log" >&2; die "podman build of the PyFlink image failed"; }
fi
}
build_pyflink

# ---- the Flink Kubernetes Operator -------------------------------------------------------------
oplib="$WORK/operator-lib"
stamp="$oplib/.pom-hash"
want="$(hash_of "$HERE/operator/pom.xml")"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "resolving flink-kubernetes-operator $FLINK_OPERATOR_VERSION with Maven..."
    rm -rf "$oplib"
    mkdir -p "$oplib"
    mvn -q -B -f "$HERE/operator/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$oplib" >"$WORK/operator-mvn.log" 2>&1 \
        || { tail -n 30 "$WORK/operator-mvn.log" >&2; die "Maven could not resolve flink-kubernetes-operator $FLINK_OPERATOR_VERSION"; }
    echo "$want" >"$stamp"
fi
inputs="$(hash_of "$HERE/operator/Containerfile" "$HERE/operator/entrypoint.sh" "$stamp" "${BASH_SOURCE[0]}")"
if [[ "$(label_of "$OPERATOR_IMAGE")" == "$inputs" ]]; then
    echo "image $OPERATOR_IMAGE: up to date"
else
    echo "image $OPERATOR_IMAGE: building..."
    ctx="$WORK/operator-context"
    rm -rf "$ctx"
    mkdir -p "$ctx/lib"
    cp "$oplib"/*.jar "$ctx/lib/"
    cp "$HERE/operator/Containerfile" "$HERE/operator/entrypoint.sh" "$ctx/"
    podman build --pull=never --network none --layers -f "$ctx/Containerfile" --label "ag.inputs=$inputs" \
        -t "$OPERATOR_IMAGE" "$ctx" >"$WORK/operator-build.log" 2>&1 \
        || { tail -n 30 "$WORK/operator-build.log" >&2; die "podman build of the operator image failed"; }
    rm -rf "$ctx"
fi
# The JRE base under the name operator-values.yaml's init container uses (it runs keytool with
# $JAVA_HOME/lib/security/cacerts, as in the image it names).
jre_base="$(podman image inspect --format '{{.Id}}' ag-jre:17)"
if [[ "$(label_of "$JRE_IMAGE")" != "$jre_base" ]]; then
    printf 'FROM ag-jre:17\nENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64\n' \
        | podman build --pull=never --network none -q --label "ag.inputs=$jre_base" -t "$JRE_IMAGE" - >/dev/null \
        || die "podman build $JRE_IMAGE failed"
fi

# ---- sizes and import ------------------------------------------------------------------------------
images=("$FLINK_IMAGE" "$PYFLINK_IMAGE" "$OPERATOR_IMAGE" "$JRE_IMAGE")
[[ $PREBUILD == 1 ]] || images=("$GATEWAY_IMAGE" "${images[@]}")
for img in "${images[@]}"; do
    printf 'image %-60s %s\n' "$img" "$(podman image inspect --format '{{.Size}}' "$img" | awk '{printf "%.0f MB", $1/1e6}')"
done
if [[ -n "$SOCK" ]]; then
    # The cluster's image store outlives a run: import only what it does not hold yet.
    for img in "${images[@]}"; do
        id="$(id_of "$img")"
        have="$(ctr -a "$SOCK" -n k8s.io images ls "name==$img" 2>/dev/null | awk 'NR > 1 {print $NF}' | grep -o 'ag.podman-id=[^,]*' || true)"
        if [[ "$have" == "ag.podman-id=$id" ]]; then
            continue
        fi
        # Streamed: no archive on disk (the image would be stored three times meanwhile).
        podman save --format docker-archive "$img" 2>"$WORK/save.err" \
            | ctr -a "$SOCK" -n k8s.io images import - >/dev/null \
            || die "podman save $img | ctr images import failed: $(cat "$WORK/save.err")"
        ctr -a "$SOCK" -n k8s.io images label "$img" "ag.podman-id=$id" >/dev/null || die "ctr images label $img failed"
        echo "imported $img"
    done
    echo "imported into $SOCK"
fi
