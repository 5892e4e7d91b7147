#!/usr/bin/env bash
# The SeaTunnel cells' image and artifacts (deploy/flink/application-seatunnel.yaml,
# session-seatunnel.yaml):
#
#   flink:1.16.3   ag-jre:17 (its Debian OpenJDK 11 JRE as JAVA_HOME) + Flink 1.16.3 (PyPI apache-flink-libraries:
#                  lib/ and plugins/; apache-flink: bin/), laid out like the Flink 1.18 image.
#                  SeaTunnel 2.3.4's seatunnel-flink-15-starter (the only starter release the
#                  reachable Maven Central serves) supports Flink 1.15–1.16; Flink 1.16 wants Java 11.
#                  opt/ (flink-python, sql-client) is left out: no SeaTunnel cell uses it.
#   OUT_DIR/       seatunnel-flink-15-starter-2.3.4.jar, connector-fake-2.3.4.jar,
#                  connector-console-2.3.4.jar (Maven Central), seatunnel-plugin-mapping.properties
#                  and seatunnel-fake-to-console.conf (tests/k8s/jobs/seatunnel/)
#
# A script of its own rather than part of tests/k8s/images.sh: each of images.sh's images is
# rebuilt when images.sh changes (its text is part of their cache key), and this image needs
# nothing from them but the shared JRE base.
#
# usage: tests/k8s/seatunnel.sh --prebuild              image and downloads, nothing imported
#        tests/k8s/seatunnel.sh OUT_DIR CONTAINERD_SOCKET  also the artifacts into OUT_DIR and the
#                                                          image into the cluster (namespace k8s.io)
# Nothing is rebuilt or downloaded again when its inputs did not change.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$HERE/../lib.sh" tests/k8s/seatunnel.sh
# shellcheck source=../servers/k8s/versions.env
source "$ROOT/tests/servers/k8s/versions.env"
OUT=""
SOCK=""
if [[ $# -eq 1 && "$1" == --prebuild ]]; then
    :
elif [[ $# -eq 2 ]]; then
    OUT="$1"
    SOCK="$2"
else
    die "usage: seatunnel.sh --prebuild | seatunnel.sh OUT_DIR CONTAINERD_SOCKET"
fi
CACHE="$(go env GOPATH)/artifact-gateway-test/k8s-$K8S_VERSION"
export CONTAINERS_CONF="$CACHE/containers.conf"
[[ -f "$CONTAINERS_CONF" ]] || die "run tests/servers/k8s/install.sh first"
WORK="$ROOT/target/test-servers/cache/k8s"
DOWNLOADS="$CACHE/downloads"
V="$SEATUNNEL_FLINK_VERSION"
IMAGE="docker.io/library/flink:$V"
mkdir -p "$WORK" "$DOWNLOADS"

"$ROOT/tests/servers/k8s/base-images.sh" >/dev/null

label_of() { podman image inspect --format '{{index .Labels "ag.inputs"}}' "$1" 2>/dev/null || true; }
id_of() { podman image inspect --format '{{.Id}}' "$1"; }

# ---- Flink 1.16 ------------------------------------------------------------------------------------
sdists="$DOWNLOADS/flink-sdist-$V"
mkdir -p "$sdists"
for pkg in apache-flink-libraries apache-flink; do
    f="$sdists/$pkg-$V.tar.gz"
    if [[ ! -s "$f" ]] || ! gzip -t "$f" 2>/dev/null; then
        rm -f "$f"
        echo "downloading $pkg==$V (source distribution) from PyPI..."
        python3 -m pip download -q --no-deps --no-binary :all: -d "$sdists" "$pkg==$V" >"$sdists/pip-$pkg.log" 2>&1 \
            || { tail -n 20 "$sdists/pip-$pkg.log" >&2; die "pip download $pkg==$V failed"; }
        [[ -s "$f" ]] || die "pip did not leave $f"
    fi
done
inputs="$({ cat "$HERE/flink-1.16/Containerfile" "$HERE/flink/docker-entrypoint.sh" "$HERE/flink/log4j-console.properties" \
    "${BASH_SOURCE[0]}" "$sdists/apache-flink-libraries-$V.tar.gz" "$sdists/apache-flink-$V.tar.gz"; id_of ag-jre:17; } \
    | sha256sum | cut -c1-16)"
if [[ "$(label_of "$IMAGE")" == "$inputs" ]]; then
    echo "image $IMAGE: up to date"
else
    echo "image $IMAGE: building (Java 11 + Flink $V)..."
    ctx="$WORK/flink-$V-context"
    rm -rf "$ctx"
    mkdir -p "$ctx/x" "$ctx/flink/conf" "$ctx/flink/log" "$ctx/flink/bin"
    tar --no-same-owner -xzf "$sdists/apache-flink-libraries-$V.tar.gz" -C "$ctx/x" \
        "apache-flink-libraries-$V/deps/lib" "apache-flink-libraries-$V/deps/plugins" \
        "apache-flink-libraries-$V/deps/bin"
    tar --no-same-owner -xzf "$sdists/apache-flink-$V.tar.gz" -C "$ctx/x" "apache-flink-$V/deps/bin"
    libs="$ctx/x/apache-flink-libraries-$V/deps"
    mv "$libs/lib" "$libs/plugins" "$ctx/flink/"
    mv "$libs/bin/bash-java-utils.jar" "$ctx/x/apache-flink-$V/deps/bin/"* "$ctx/flink/bin/"
    rm -f "$ctx/flink/bin/"*.bat
    chmod +x "$ctx/flink/bin/"*.sh "$ctx/flink/bin/flink"
    rm -rf "$ctx/x"
    cp "$HERE/flink/log4j-console.properties" "$ctx/flink/conf/"
    printf 'jobmanager.rpc.address: localhost\nrest.port: 8081\ntaskmanager.numberOfTaskSlots: 1\n' >"$ctx/flink/conf/flink-conf.yaml"
    cp "$HERE/flink-1.16/Containerfile" "$HERE/flink/docker-entrypoint.sh" "$ctx/"
    podman build --pull=never --network none --layers -f "$ctx/Containerfile" --label "ag.inputs=$inputs" \
        -t "$IMAGE" "$ctx" >"$WORK/flink-$V-build.log" 2>&1 \
        || { tail -n 30 "$WORK/flink-$V-build.log" >&2; die "podman build of the Flink $V image failed"; }
    rm -rf "$ctx"
fi
printf 'image %-60s %s\n' "$IMAGE" "$(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"

# ---- SeaTunnel's starter and connectors (Maven Central) ---------------------------------------------
st="$WORK/seatunnel-$SEATUNNEL_VERSION"
if [[ ! -f "$st/.done" ]]; then
    rm -rf "$st"
    mkdir -p "$st"
    for a in seatunnel-flink-15-starter connector-fake connector-console; do
        mvn -q -B dependency:copy -Dartifact="org.apache.seatunnel:$a:$SEATUNNEL_VERSION" -DoutputDirectory="$st" \
            >>"$st/mvn.log" 2>&1 || { tail -n 20 "$st/mvn.log" >&2; die "Maven could not download org.apache.seatunnel:$a:$SEATUNNEL_VERSION"; }
    done
    touch "$st/.done"
fi

[[ -n "$OUT" ]] || exit 0
mkdir -p "$OUT"
cp "$st"/*.jar "$OUT/"
cp "$HERE/jobs/seatunnel/plugin-mapping.properties" "$OUT/seatunnel-plugin-mapping.properties"
cp "$HERE/jobs/seatunnel/fake-to-console.conf" "$OUT/seatunnel-fake-to-console.conf"

# ---- import (only when the cluster's store does not hold this build yet) -----------------------------
id="$(id_of "$IMAGE")"
have="$(ctr -a "$SOCK" -n k8s.io images ls "name==$IMAGE" 2>/dev/null | awk 'NR > 1 {print $NF}' | grep -o 'ag.podman-id=[^,]*' || true)"
if [[ "$have" != "ag.podman-id=$id" ]]; then
    podman save --format docker-archive "$IMAGE" 2>"$WORK/save.err" \
        | ctr -a "$SOCK" -n k8s.io images import - >/dev/null \
        || die "podman save $IMAGE | ctr images import failed: $(cat "$WORK/save.err")"
    ctr -a "$SOCK" -n k8s.io images label "$IMAGE" "ag.podman-id=$id" >/dev/null || die "ctr images label $IMAGE failed"
    echo "imported $IMAGE"
fi
