#!/usr/bin/env bash
# Starts a real single-node Kubernetes for the tests: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd (+ runc, bridge CNI), kubelet, kube-proxy (iptables) and CoreDNS,
# every one a host process with its state under STATE_DIR/k8s. See tests/servers/CONTRACT.md.
#
# usage: tests/servers/k8s/start.sh STATE_DIR
# writes: STATE_DIR/k8s.env   AG_TEST_K8S_KUBECONFIG, AG_TEST_K8S_BIN (kubectl, helm),
#                             AG_TEST_K8S_CONTAINERD (socket, for `ctr -a … -n k8s.io images import`)
#         STATE_DIR/k8s.pid   a keeper process; `kill $(cat k8s.pid)` runs stop.sh: every daemon
#                             and container is killed by PID, mounts, iptables rules and the bridge
#                             are removed (tests/servers/k8s/stop.sh STATE_DIR does the same)
#         STATE_DIR/k8s.log   start-up messages; each daemon logs to STATE_DIR/k8s/logs/<name>.log
#
# Network: pods live on the bridge ag-cni0 (10.244.0.0/24); the host side of the bridge, 10.244.0.1,
# is where the API server, the kubelet and CoreDNS listen, so pods reach them and nothing binds
# to an outside interface. Pods get routes only to the bridge and the service range
# 10.96.0.0/12 (no default route). The Kubernetes API is https://10.244.0.1:PORT (also the
# `kubernetes` Service 10.96.0.1:443), DNS is the kube-dns Service 10.96.0.10.
# Only one such cluster runs on a machine at a time (kube-proxy's iptables chains are global).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../lib.sh
source "$HERE/../../lib.sh" tests/servers/k8s/start.sh
# shellcheck source=versions.env
source "$HERE/versions.env"
READY_TIMEOUT_SECONDS="${AG_K8S_START_TIMEOUT:-180}"

args_or_usage 1 "start.sh STATE_DIR" "$@"
[[ $(id -u) == 0 ]] || die "must run as root (kubelet, containerd, iptables and the bridge need it); tests/run.sh --no-k8s leaves the Kubernetes tests out"
CACHE="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/artifact-gateway-test/k8s-$K8S_VERSION"
BIN="$CACHE/bin"
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns helm; do
    [[ -x "$BIN/$b" ]] || die "$BIN/$b missing: run tests/servers/k8s/install.sh"
done
for p in containerd runc iptables openssl podman ip; do
    command -v "$p" >/dev/null || die "$p not found: run tests/servers/k8s/install.sh"
done

mkdir -p "$1"
STATE="$(cd "$1" && pwd)"
K="$STATE/k8s"
LOG="$STATE/k8s.log"
PID_FILE="$STATE/k8s.pid"
ENV_FILE="$STATE/k8s.env"
BRIDGE=ag-cni0
HOST_IP=10.244.0.1
NODE=ag-node

if [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    die "a cluster from $PID_FILE (pid $(cat "$PID_FILE")) is still running; stop it first"
fi
if ip link show "$BRIDGE" >/dev/null 2>&1 && [[ -n "$(pgrep -f -- "--node-ip=$HOST_IP" || true)" ]]; then
    die "another test cluster is running on this machine (a kubelet on $BRIDGE); stop it first (tests/servers/k8s/stop.sh ITS_STATE_DIR)"
fi
# Leftovers of a killed run in this state directory.
"$HERE/stop.sh" "$STATE" >/dev/null 2>&1 || true
rm -rf "$K" "$ENV_FILE" "$PID_FILE"
mkdir -p "$K/pki" "$K/logs" "$K/pids" "$K/etc"
exec 3>>"$LOG"
echo "==== start.sh $(date "+%F %T"): starting a new cluster ====" >&3
log() { echo "k8s: $*" >&3; }

fail() {
    echo "tests/servers/k8s/start.sh: $*" >&2
    for f in "$K"/logs/*.log; do
        [[ -f "$f" ]] || continue
        echo "---- last lines of $f ----" >&2
        tail -n 15 "$f" >&2
    done
    "$HERE/stop.sh" "$STATE" >&2 || true
    exit 1
}

# ---- free ports (held open together while read, so they are distinct) ------------------------
read -r P_ETCD P_ETCD_PEER P_API P_KUBELET P_KUBELET_HEALTH P_DNS P_PROXY_HEALTH P_PROXY_METRICS P_CM P_SCHED < <(python3 - <<'PY'
import socket
socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(10)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)
[[ -n "${P_SCHED:-}" ]] || die "could not pick free ports"

# ---- PKI ---------------------------------------------------------------------------------------
pki="$K/pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ag-test-kubernetes-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
cert() { # NAME SUBJECT [SAN]
    openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
    local ext="$pki/$1.ext"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' >"$ext"
    [[ -z "${3:-}" ]] || echo "subjectAltName=$3" >>"$ext"
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
        -days 2 -extfile "$ext" -out "$pki/$1.crt" 2>/dev/null
}
cert apiserver "/CN=kube-apiserver" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1,IP:$HOST_IP"
cert admin "/O=system:masters/CN=ag-test-admin"
cert apiserver-kubelet "/O=system:masters/CN=kube-apiserver-kubelet-client"
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert kubelet "/O=system:nodes/CN=system:node:$NODE" "DNS:$NODE,IP:$HOST_IP"
cert kube-proxy "/CN=system:kube-proxy"
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null

API="https://$HOST_IP:$P_API"
kubeconfig() { # NAME -> $K/NAME.kubeconfig
    cat >"$K/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ag-test
  cluster: {server: "$API", certificate-authority: "$pki/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$pki/$1.crt", client-key: "$pki/$1.key"}
contexts:
- name: ag-test
  context: {cluster: ag-test, user: $1}
current-context: ag-test
EOF
}
for n in admin controller-manager scheduler kubelet kube-proxy; do kubeconfig "$n"; done

# ---- the bridge the pods live on ---------------------------------------------------------------
ip link add "$BRIDGE" type bridge 2>/dev/null || true
ip addr replace "$HOST_IP/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
# Pods reach services through the host: forwarding must be on.
sysctl -qw net.ipv4.ip_forward=1
modprobe br_netfilter 2>/dev/null || true
[[ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || sysctl -qw net.bridge.bridge-nf-call-iptables=1

daemon() { # NAME CMD... : starts CMD in its own session, logs to logs/NAME.log, pid in pids/NAME.pid
    local name="$1"; shift
    setsid "$@" >>"$K/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$K/pids/$name.pid"
    log "$name started (pid $!)"
}
alive() { kill -0 "$(cat "$K/pids/$1.pid")" 2>/dev/null || fail "$1 exited during start-up"; }
wait_for() { # WHAT SECONDS CMD...
    local what="$1" secs="$2"; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [[ $SECONDS -lt $deadline ]] || fail "$what not ready within ${secs}s"
        sleep 0.3
    done
}

# ---- keeper: `kill $(cat k8s.pid)` stops everything --------------------------------------------
setsid bash -c 'trap "\"$0\" \"$1\" >>\"$1/k8s.log\" 2>&1; exit 0" TERM INT HUP; while :; do sleep 3600 & wait $!; done' \
    "$HERE/stop.sh" "$STATE" </dev/null >/dev/null 2>&1 &
echo $! >"$PID_FILE"

# ---- etcd --------------------------------------------------------------------------------------
daemon etcd "$BIN/etcd" --name ag-test --data-dir "$K/etcd" \
    --listen-client-urls "http://127.0.0.1:$P_ETCD" --advertise-client-urls "http://127.0.0.1:$P_ETCD" \
    --listen-peer-urls "http://127.0.0.1:$P_ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$P_ETCD_PEER" \
    --initial-cluster "ag-test=http://127.0.0.1:$P_ETCD_PEER" --unsafe-no-fsync --log-level warn

# ---- containerd --------------------------------------------------------------------------------
CTR_SOCK="$K/containerd/containerd.sock"
containerd config default >"$K/etc/containerd.default.toml"
# The image store (containerd's root: content and unpacked layers) is a cache kept across runs,
# like ~/.m2, so images are imported once; containers never outlive a run (stop.sh deletes them).
CTR_ROOT="$CACHE/containerd-root"
mkdir -p "$CTR_ROOT"
python3 - "$K/etc/containerd.default.toml" "$K/etc/containerd.toml" "$K" "$CTR_ROOT" <<'PY'
import re, sys
src, dst, k, root = sys.argv[1:5]
s = open(src).read()
def sub(pattern, repl, count=1):
    global s
    s, n = re.subn(pattern, repl, s, count=count, flags=re.M)
    if n == 0:
        sys.exit(f"containerd config: {pattern!r} not found")
sub(r'^root = .*$', f'root = "{root}"')
sub(r'^state = .*$', f'state = "{k}/containerd/state"')
sub(r'^(\[grpc\]\n(?:.*\n)*?\s*)address = .*$', rf'\1address = "{k}/containerd/containerd.sock"')
sub(r'^(\[ttrpc\]\n(?:.*\n)*?\s*)address = .*$', rf'\1address = "{k}/containerd/containerd.sock.ttrpc"')
sub(r'restrict_oom_score_adj = .*$', 'restrict_oom_score_adj = true')
sub(r'disable_apparmor = .*$', 'disable_apparmor = true')
sub(r'sandbox_image = .*$', 'sandbox_image = "localhost/ag-pause:1"')
sub(r'bin_dir = .*$', 'bin_dir = "/usr/lib/cni"')
sub(r'conf_dir = .*$', f'conf_dir = "{k}/etc/cni"')
open(dst, "w").write(s)
PY
mkdir -p "$K/etc/cni" "$K/containerd"
cat >"$K/etc/cni/10-ag-bridge.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "ag-test",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$K/cni-ipam",
        "ranges": [[{"subnet": "10.244.0.0/24", "rangeStart": "10.244.0.10", "gateway": "$HOST_IP"}]],
        "routes": [{"dst": "10.96.0.0/12"}]
      }
    },
    {"type": "loopback"}
  ]
}
EOF
daemon containerd containerd --config "$K/etc/containerd.toml"

# ---- API server --------------------------------------------------------------------------------
wait_for "etcd" 60 curl -fsS "http://127.0.0.1:$P_ETCD/health"
daemon kube-apiserver "$BIN/kube-apiserver" --bind-address="$HOST_IP" --advertise-address="$HOST_IP" \
    --secure-port="$P_API" --etcd-servers="http://127.0.0.1:$P_ETCD" \
    --service-cluster-ip-range=10.96.0.0/12 --allow-privileged=true \
    --client-ca-file="$pki/ca.crt" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --kubelet-client-certificate="$pki/apiserver-kubelet.crt" --kubelet-client-key="$pki/apiserver-kubelet.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --profiling=false --v=1
KUBECTL=("$BIN/kubectl" --kubeconfig "$K/admin.kubeconfig")
wait_for "kube-apiserver" 90 "${KUBECTL[@]}" get --raw /readyz
alive containerd

daemon kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$K/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$K/controller-manager.kubeconfig" --authorization-kubeconfig="$K/controller-manager.kubeconfig" \
    --root-ca-file="$pki/ca.crt" --service-account-private-key-file="$pki/sa.key" \
    --use-service-account-credentials --leader-elect=false --bind-address=127.0.0.1 --secure-port="$P_CM" \
    --cluster-cidr=10.244.0.0/24 --service-cluster-ip-range=10.96.0.0/12 \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" --profiling=false
daemon kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$K/scheduler.kubeconfig" \
    --authentication-kubeconfig="$K/scheduler.kubeconfig" --authorization-kubeconfig="$K/scheduler.kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port="$P_SCHED" --profiling=false

# ---- images every pod needs: the sandbox --------------------------------------------------------
wait_for "containerd" 60 ctr -a "$CTR_SOCK" version
export CONTAINERS_CONF="$CACHE/containers.conf"
if ! podman image exists localhost/ag-pause:1; then
    "$HERE/base-images.sh" >>"$LOG" 2>&1 || fail "could not make the base images (tests/servers/k8s/base-images.sh)"
fi
podman save --format docker-archive -o "$K/pause.tar" localhost/ag-pause:1 >/dev/null 2>&1 || fail "podman save ag-pause:1 failed"
ctr -a "$CTR_SOCK" -n k8s.io images import "$K/pause.tar" >/dev/null || fail "ctr import ag-pause:1 failed"
rm -f "$K/pause.tar"

# ---- kubelet -----------------------------------------------------------------------------------
cat >"$K/etc/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $HOST_IP
port: $P_KUBELET
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $P_KUBELET_HEALTH
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$pki/kubelet.crt"
tlsPrivateKeyFile: "$pki/kubelet.key"
containerRuntimeEndpoint: "unix://$CTR_SOCK"
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
clusterDNS: [10.96.0.10]
clusterDomain: cluster.local
resolvConf: "$K/etc/resolv.conf"
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# Disk floors near zero: the test machine's disk is shared and fills and drains with other work;
# disk-pressure eviction would also garbage-collect the locally imported images (nothing can pull them).
evictionHard: {memory.available: "100Mi", nodefs.available: "1Mi", imagefs.available: "1Mi", nodefs.inodesFree: "1%"}
evictionPressureTransitionPeriod: 5s
shutdownGracePeriod: 0s
EOF
# Pods' DNS: the cluster's only (no search domains or servers from the host).
: >"$K/etc/resolv.conf"
daemon kubelet "$BIN/kubelet" --config="$K/etc/kubelet.yaml" --kubeconfig="$K/kubelet.kubeconfig" \
    --root-dir="$K/kubelet" --cert-dir="$K/kubelet-pki" --hostname-override="$NODE" --node-ip="$HOST_IP" --v=1

# ---- kube-proxy --------------------------------------------------------------------------------
daemon kube-proxy "$BIN/kube-proxy" --kubeconfig="$K/kube-proxy.kubeconfig" --hostname-override="$NODE" \
    --proxy-mode=iptables --cluster-cidr=10.244.0.0/24 --masquerade-all \
    --healthz-bind-address="127.0.0.1:$P_PROXY_HEALTH" --metrics-bind-address="127.0.0.1:$P_PROXY_METRICS" \
    --conntrack-max-per-core=0

# ---- CoreDNS (host process) behind the kube-dns Service ----------------------------------------
cat >"$K/etc/Corefile" <<EOF
.:$P_DNS {
    bind $HOST_IP
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $K/admin.kubeconfig ag-test
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
EOF
daemon coredns "$BIN/coredns" -conf "$K/etc/Corefile"
"${KUBECTL[@]}" apply -f - >/dev/null <<EOF || fail "could not create the kube-dns Service"
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: 10.96.0.10
  ports:
    - {name: dns, port: 53, protocol: UDP, targetPort: $P_DNS}
    - {name: dns-tcp, port: 53, protocol: TCP, targetPort: $P_DNS}
---
apiVersion: v1
kind: Endpoints
metadata: {name: kube-dns, namespace: kube-system}
subsets:
  - addresses: [{ip: $HOST_IP}]
    ports:
      - {name: dns, port: $P_DNS, protocol: UDP}
      - {name: dns-tcp, port: $P_DNS, protocol: TCP}
EOF

# ---- ready: a Ready node, the default ServiceAccount and the root CA ConfigMap -----------------
node_ready() {
    [[ "$("${KUBECTL[@]}" get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
deadline=$((SECONDS + READY_TIMEOUT_SECONDS))
until node_ready && "${KUBECTL[@]}" -n default get serviceaccount default >/dev/null 2>&1 \
        && "${KUBECTL[@]}" -n default get configmap kube-root-ca.crt >/dev/null 2>&1; do
    for d in etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns; do alive "$d"; done
    [[ $SECONDS -lt $deadline ]] || fail "the node did not become Ready within ${READY_TIMEOUT_SECONDS}s"
    sleep 0.5
done

write_env "$ENV_FILE" "AG_TEST_K8S_KUBECONFIG=$K/admin.kubeconfig" "AG_TEST_K8S_BIN=$BIN" \
    "AG_TEST_K8S_CONTAINERD=$CTR_SOCK" "AG_TEST_K8S_NODE_IP=$HOST_IP"
log "ready: $API (node $NODE)"
echo "k8s: cluster ready at $API (kubeconfig $K/admin.kubeconfig, keeper pid $(cat "$PID_FILE"), log $LOG)"
