#!/usr/bin/env bash
# Stops the cluster tests/servers/k8s/start.sh STATE_DIR started and removes what it left on the
# machine, so the next start begins clean: every daemon and every container is killed by PID
# (the PIDs come from STATE_DIR/k8s/pids and from containerd's own task list), mounts under the
# state directory are unmounted, the pods' network namespaces, kube-proxy's and the kubelet's
# iptables chains (KUBE-*) and the bridge ag-cni0 are deleted. Logs stay in STATE_DIR/k8s/logs.
# Idempotent; safe on a half-started or already stopped cluster.
#
# usage: tests/servers/k8s/stop.sh STATE_DIR
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
[[ $# -eq 1 ]] || { echo "usage: stop.sh STATE_DIR" >&2; exit 2; }
[[ -d "$1" ]] || exit 0
STATE="$(cd "$1" && pwd)"
K="$STATE/k8s"
BRIDGE=ag-cni0
CTR_SOCK="$K/containerd/containerd.sock"
BIN="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/artifact-gateway-test/k8s-$K8S_VERSION/bin"

pid_of() { [[ -f "$K/pids/$1.pid" ]] && cat "$K/pids/$1.pid"; }
stop_pids() { # TERM, then KILL whatever is still there after 2 s (the state is thrown away)
    local pids=("$@") p any
    [[ ${#pids[@]} -gt 0 ]] || return 0
    kill "${pids[@]}" 2>/dev/null
    for _ in $(seq 1 20); do
        any=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && any=1; done
        [[ $any == 1 ]] || return 0
        sleep 0.1
    done
    kill -9 "${pids[@]}" 2>/dev/null
}

if [[ -d "$K/pids" ]]; then
    # The kubelet first and at once, so that nothing restarts containers.
    kubelet_pid="$(pid_of kubelet)" && kill -9 "$kubelet_pid" 2>/dev/null

    # Containers: their init PIDs from containerd (each pod container has its own PID namespace,
    # so killing its init kills everything in it), then the shims, children of our containerd.
    task_pids=()
    if [[ -S "$CTR_SOCK" ]]; then
        while read -r _ pid _; do
            [[ "$pid" =~ ^[0-9]+$ && "$pid" != 0 ]] && task_pids+=("$pid")
        done < <(timeout 10 ctr -a "$CTR_SOCK" -n k8s.io tasks ls 2>/dev/null | tail -n +2)
    fi
    [[ ${#task_pids[@]} -eq 0 ]] || kill -9 "${task_pids[@]}" 2>/dev/null
    # containerd's image store is kept across runs (start.sh), its containers are not.
    if [[ -S "$CTR_SOCK" ]]; then
        for c in $(timeout 10 ctr -a "$CTR_SOCK" -n k8s.io containers ls -q 2>/dev/null); do
            timeout 5 ctr -a "$CTR_SOCK" -n k8s.io tasks delete -f "$c" >/dev/null 2>&1
            timeout 5 ctr -a "$CTR_SOCK" -n k8s.io containers delete "$c" >/dev/null 2>&1
        done
    fi
    # Shims name our containerd's socket in their arguments (the state path is unique to this run).
    shims=()
    for f in $(grep -l -a -s -F "$K/containerd/" /proc/[0-9]*/cmdline); do
        grep -q -a -s -F containerd-shim "$f" && shims+=("$(basename "$(dirname "$f")")")
    done
    for s in "${shims[@]}"; do pkill -9 -P "$s" 2>/dev/null; done
    [[ ${#shims[@]} -eq 0 ]] || kill -9 "${shims[@]}" 2>/dev/null
    daemons=()
    for d in kube-proxy kube-scheduler kube-controller-manager coredns containerd kube-apiserver etcd; do
        p="$(pid_of "$d")" && daemons+=("$p")
    done
    stop_pids "${daemons[@]}"
    rm -f "$K"/pids/*.pid
fi

# Mounts under the state directory (secrets, emptyDirs, overlay snapshots, netns bind mounts).
if [[ -d "$K" ]]; then
    findmnt -rn -o TARGET | awk -v k="$K/" 'index($0, k) == 1' | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null
    done
fi

# Pod network namespaces containerd made (cni-*) that hold an address on our pod subnet.
for ns in /run/netns/cni-*; do
    [[ -e "$ns" ]] || continue
    name="$(basename "$ns")"
    if ip -n "$name" -4 addr 2>/dev/null | grep -q 'inet 10\.244\.0\.'; then
        ip netns delete "$name" 2>/dev/null
    fi
done

# iptables: kube-proxy's own cleanup, then any KUBE-* chain left (kubelet's canaries, firewall).
if [[ -x "$BIN/kube-proxy" ]]; then
    timeout 20 "$BIN/kube-proxy" --cleanup >/dev/null 2>&1
fi
for tool in iptables ip6tables; do
    command -v "$tool-save" >/dev/null || continue
    if "$tool-save" 2>/dev/null | grep -q 'KUBE-'; then
        "$tool-save" | grep -v -E '^(:KUBE-|-A KUBE-|-A .*-j KUBE-|-A .* KUBE-)' | "$tool-restore" 2>/dev/null
    fi
done
ip link delete "$BRIDGE" 2>/dev/null

# Big state (images, snapshots, pod volumes); logs stay.
rm -rf "$K/containerd" "$K/kubelet" "$K/etcd" "$K/cni-ipam" 2>/dev/null
rm -f "$STATE/k8s.pid" "$STATE/k8s.env" "$STATE/flink-k8s.env"
exit 0
