#!/usr/bin/env bash
# Installs a single-node Kubernetes for the tests (idempotent; seconds when warm):
#   Debian:  containerd, runc, CNI plugins, iptables, conntrack, socat, openssl, podman, debootstrap,
#            catatonit, unzip
#   Go:      kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl, kube-proxy
#            (k8s.io/kubernetes $K8S_VERSION), etcd $ETCD_VERSION, CoreDNS $COREDNS_VERSION, helm
#            $HELM_VERSION — all built from the Go module proxy.
# k8s.io/kubernetes has `replace` lines pointing at its staging directories, so `go install …@v`
# is refused; a scratch module (written here, under the cache) requires it and replaces every
# staging module with its published v0.x release.
#
# Binaries land in $(go env GOPATH)/artifact-gateway-test/k8s-$K8S_VERSION/bin (shared by every
# checkout on the machine; about 0.6 GB). From an empty Go build cache: about 6 min on 2 cores.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
die() { echo "tests/servers/k8s/install.sh: $*" >&2; exit 1; }

command -v go >/dev/null || die "go not found (Go 1.24+ is needed to build Kubernetes)"
GOPATH_DIR="$(go env GOPATH)"
CACHE="$GOPATH_DIR/artifact-gateway-test/k8s-$K8S_VERSION"
BIN="$CACHE/bin"
mkdir -p "$BIN"

# ---- Debian packages ------------------------------------------------------------------------
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/portmap && -x /usr/lib/cni/loopback ]] \
    || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
command -v conntrack >/dev/null || need+=(conntrack)
command -v socat >/dev/null || need+=(socat)
command -v openssl >/dev/null || need+=(openssl)
command -v podman >/dev/null || need+=(podman)
command -v debootstrap >/dev/null || need+=(debootstrap)
# The pod sandbox image is Debian's static catatonit (base-images.sh); only a Recommends of podman.
command -v catatonit >/dev/null || need+=(catatonit)
command -v unzip >/dev/null || need+=(unzip)
if [[ ${#need[@]} -gt 0 ]]; then
    echo "k8s: apt-get install ${need[*]}"
    "$HERE/../../apt-install.sh" "${need[@]}" \
        || die "apt-get install ${need[*]} failed (root and Debian's package mirror are needed)"
fi

# podman: crun (its default runtime) fails here on setrlimit; use runc, and no default ulimits.
# A private containers.conf (CONTAINERS_CONF) keeps the machine's own configuration untouched.
cat >"$CACHE/containers.conf.tmp" <<'EOF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
EOF
mv "$CACHE/containers.conf.tmp" "$CACHE/containers.conf"

# The test images that need no compiled binary (base images, Flink 1.18 and 1.16, PyFlink, the
# operator) and the test jobs: built here, so tests/run.sh builds them while it compiles the tests, and beside the Go
# builds below, which they do not need (they are mostly downloads and disk: debootstrap, Maven,
# pip); tests/k8s/setup.sh then finds them current. AG_K8S_PREBUILD=0 skips this.
prebuild_pid=""
if [[ "${AG_K8S_PREBUILD:-1}" == 1 ]]; then
    ROOT="$(cd "$HERE/../../.." && pwd)"
    echo "k8s: test images (tests/k8s/images.sh --prebuild), beside the Go builds..."
    (
        "$ROOT/tests/k8s/images.sh" --prebuild || { echo "tests/k8s/images.sh --prebuild failed" >&2; exit 1; }
        "$ROOT/tests/k8s/seatunnel.sh" --prebuild || { echo "tests/k8s/seatunnel.sh --prebuild failed" >&2; exit 1; }
        "$ROOT/tests/k8s/build-jobs.sh" "$ROOT/target/test-servers/cache/k8s/jobs-prebuilt" >/dev/null \
            || { echo "tests/k8s/build-jobs.sh failed" >&2; exit 1; }
    ) &
    prebuild_pid=$!
    trap 'kill "$prebuild_pid" 2>/dev/null || true' EXIT
fi

# ---- Go builds ------------------------------------------------------------------------------
export GOFLAGS="-mod=mod"
export CGO_ENABLED=0

k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy)
have_version() { # BIN MODULE VERSION: the binary was built with MODULE at VERSION
    [[ -x "$1" ]] && go version -m "$1" 2>/dev/null \
        | awk -v m="$2" -v v="$3" '($1 == "mod" || $1 == "dep") && $2 == m && $3 == v {found = 1} END {exit !found}'
}

k8s_ok=1
for b in "${k8s_bins[@]}"; do
    have_version "$BIN/$b" k8s.io/kubernetes "$K8S_VERSION" || k8s_ok=0
done
if [[ $k8s_ok == 1 ]]; then
    echo "k8s: kubernetes $K8S_VERSION binaries present ($BIN)"
else
    mod="$CACHE/mod-kubernetes"
    mkdir -p "$mod"
    echo "k8s: downloading k8s.io/kubernetes@$K8S_VERSION..."
    (cd "$mod" && GOFLAGS= go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >"$mod/download.json") \
        || die "go mod download k8s.io/kubernetes@$K8S_VERSION failed"
    gomod="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["GoMod"])' "$mod/download.json")"
    staging_minor="v0.${K8S_VERSION#v1.}"
    {
        echo "module artifactgateway.test/k8s"
        echo
        echo "go 1.24"
        echo
        echo "require k8s.io/kubernetes $K8S_VERSION"
        echo
        # Every `k8s.io/X => ./staging/src/k8s.io/X` becomes `k8s.io/X => k8s.io/X v0.<minor>.<patch>`.
        awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod" | sort -u \
            | while read -r m; do echo "replace $m => $m $staging_minor"; done
    } >"$mod/go.mod"
    grep -q '^replace k8s.io/api ' "$mod/go.mod" || die "no staging replace lines found in $gomod"
    {
        echo "//go:build tools"
        echo
        echo "package tools"
        echo
        echo "import ("
        for b in "${k8s_bins[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$b\""; done
        echo ")"
    } >"$mod/tools.go"
    (cd "$mod" && go mod tidy >"$mod/tidy.log" 2>&1) || { tail -n 30 "$mod/tidy.log" >&2; die "go mod tidy failed in $mod"; }
    ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
    ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION")"
    ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
    echo "k8s: building ${k8s_bins[*]} (about 6 min on 2 cores from a cold Go cache)..."
    rm -rf "$BIN/.build"
    mkdir -p "$BIN/.build"
    pkgs=()
    for b in "${k8s_bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
    (cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$BIN/.build/" "${pkgs[@]}") \
        || die "go build ${pkgs[*]} failed"
    for b in "${k8s_bins[@]}"; do mv "$BIN/.build/$b" "$BIN/$b"; done
    rmdir "$BIN/.build"
fi

if have_version "$BIN/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"; then
    echo "k8s: etcd $ETCD_VERSION present"
else
    mod="$CACHE/mod-etcd"
    mkdir -p "$mod"
    printf 'module artifactgateway.test/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$mod/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$mod/tools.go"
    echo "k8s: building etcd $ETCD_VERSION..."
    (cd "$mod" && go mod tidy >"$mod/tidy.log" 2>&1) || { tail -n 30 "$mod/tidy.log" >&2; die "go mod tidy failed in $mod"; }
    (cd "$mod" && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3) \
        || die "go build go.etcd.io/etcd/server/v3@$ETCD_VERSION failed"
    mv "$BIN/etcd.tmp" "$BIN/etcd"
fi

if have_version "$BIN/coredns" github.com/coredns/coredns "$COREDNS_VERSION"; then
    echo "k8s: coredns $COREDNS_VERSION present"
else
    echo "k8s: building coredns $COREDNS_VERSION..."
    GOFLAGS= GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION" \
        || die "go install github.com/coredns/coredns@$COREDNS_VERSION failed"
fi

if have_version "$BIN/helm" helm.sh/helm/v3 "$HELM_VERSION"; then
    echo "k8s: helm $HELM_VERSION present"
elif have_version "$GOPATH_DIR/bin/helm" helm.sh/helm/v3 "$HELM_VERSION"; then
    cp "$GOPATH_DIR/bin/helm" "$BIN/helm"
    echo "k8s: helm $HELM_VERSION copied from $GOPATH_DIR/bin"
else
    echo "k8s: building helm $HELM_VERSION..."
    GOFLAGS= GOBIN="$BIN" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
        || die "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION failed"
fi

[[ "$("$BIN/kubectl" version --client 2>/dev/null)" == *"Client Version: $K8S_VERSION"* ]] \
    || die "$BIN/kubectl does not report $K8S_VERSION"

if [[ -n "$prebuild_pid" ]]; then
    wait "$prebuild_pid" || die "building the test images or jobs failed (see above)"
    trap - EXIT
fi
echo "k8s: installed ($BIN)"
