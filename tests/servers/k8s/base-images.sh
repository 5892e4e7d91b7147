#!/usr/bin/env bash
# Makes the base images the test images build FROM, locally: no image registry is reachable, so
# each is a debootstrap root filesystem imported into podman under the name a Dockerfile uses.
# Idempotent: an image that exists with the current recipe (a label holds its hash) is kept.
#
#   debian:trixie-slim       deploy/Dockerfile's runtime stage (Debian minbase)
#   ag-jre:17                Debian bullseye minbase + OpenJDK 17 JRE + Python 3.9 and pip: the
#                            Flink and the operator images build on it (tests/k8s/images.sh).
#                            Bullseye because PyFlink 1.18 ships wheels only up to Python 3.10
#                            (bookworm has 3.11); Flink 1.18 runs on Java 17. Its OpenJDK 11 JRE
#                            (default-jre-headless, a dependency of ca-certificates-java) is the
#                            Java of the Flink 1.16 image (tests/k8s/seatunnel.sh).
#   ag-pause:1               the pod sandbox ("pause") image: Debian's catatonit, FROM scratch
#
# usage: tests/servers/k8s/base-images.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
die() { echo "tests/servers/k8s/base-images.sh: $*" >&2; exit 1; }
CACHE="$(go env GOPATH)/artifact-gateway-test/k8s-$K8S_VERSION"
export CONTAINERS_CONF="$CACHE/containers.conf"
[[ -f "$CONTAINERS_CONF" ]] || die "$CONTAINERS_CONF missing: run tests/servers/k8s/install.sh"
WORK="$ROOT/target/test-servers/cache/k8s/rootfs"
MIRROR="${AG_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# An image is remade when its recipe (suite, packages, the cleanup below: bump RECIPE) changes.
RECIPE=2
recipe_hash() { echo "$RECIPE $*" | sha256sum | cut -c1-16; }
image_current() { # NAME HASH
    [[ "$(podman image inspect --format '{{index .Labels "ag.recipe"}}' "$1" 2>/dev/null || true)" == "$2" ]]
}

debootstrap_image() { # NAME SUITE INCLUDE [EXTRA_TAG...]
    local name="$1" suite="$2" include="$3"; shift 3
    local hash dir
    hash="$(recipe_hash "$name" "$suite" "$include")"
    if image_current "$name" "$hash"; then
        echo "base image $name: present"
    else
        echo "base image $name: debootstrap $suite${include:+ (+$include)}..."
        dir="$WORK/$suite-${name//[:\/]/_}"
        rm -rf "$dir"
        mkdir -p "$dir"
        if ! debootstrap --variant=minbase ${include:+--include="$include"} "$suite" "$dir" "$MIRROR" \
                >"$dir.log" 2>&1; then
            tail -n 30 "$dir.log" >&2
            die "debootstrap $suite failed (log: $dir.log)"
        fi
        # Like the official slim images: apt keeps no package caches and fetches no translations,
        # dpkg installs no documentation, manuals or locales; none are left behind either.
        cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
        echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
        mkdir -p "$dir/etc/dpkg/dpkg.cfg.d"
        cat >"$dir/etc/dpkg/dpkg.cfg.d/docker-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
        rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
            "$dir"/usr/share/man/* "$dir"/usr/share/info/*
        find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
        find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
        tar -C "$dir" -c . | podman import -q --change "LABEL ag.recipe=$hash" --change 'CMD ["bash"]' - "$name" >/dev/null \
            || die "podman import $name failed"
        rm -rf "$dir"
    fi
    for tag in "$@"; do podman tag "$name" "$tag"; done
}

debian_trixie_slim() { debootstrap_image debian:trixie-slim trixie ""; }
jre_17() {
    debootstrap_image ag-jre:17 bullseye openjdk-17-jre-headless,python3,python3-pip,ca-certificates,procps
}

pause_image() {
    local hash ctx
    hash="$(recipe_hash pause "$(sha256sum /usr/bin/catatonit)")"
    if image_current ag-pause:1 "$hash"; then
        echo "base image ag-pause:1: present"
        return
    fi
    ctx="$WORK/pause"
    rm -rf "$ctx"
    mkdir -p "$ctx"
    cp /usr/bin/catatonit "$ctx/catatonit"
    printf 'FROM scratch\nCOPY catatonit /catatonit\nLABEL ag.recipe=%s\nENTRYPOINT ["/catatonit", "-P"]\n' "$hash" >"$ctx/Containerfile"
    podman build -q -t ag-pause:1 "$ctx" >/dev/null || die "podman build ag-pause:1 failed"
    rm -rf "$ctx"
    echo "base image ag-pause:1: built"
}

command -v debootstrap >/dev/null || die "debootstrap not found: run tests/servers/k8s/install.sh"
command -v catatonit >/dev/null || die "catatonit not found (it comes with podman): run tests/servers/k8s/install.sh"
mkdir -p "$WORK"
pause_image
debian_trixie_slim &
a=$!
jre_17 &
b=$!
wait $a || die "debian:trixie-slim failed"
wait $b || die "ag-jre:17 failed"
