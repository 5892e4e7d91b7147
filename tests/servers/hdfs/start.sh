#!/usr/bin/env bash
# Starts one HDFS test server (NameNode + 1 DataNode in one JVM) on free
# 127.0.0.1 ports and waits until it accepts clients.
#
# Usage: tests/servers/hdfs/start.sh STATE_DIR
# Writes STATE_DIR/hdfs.env (AG_TEST_HDFS_URL=hdfs://127.0.0.1:PORT and
#        AG_TEST_HDFS_DATANODE_HTTP=http://127.0.0.1:PORT, the datanode's web/JMX port),
#        STATE_DIR/hdfs.pid (kill it to stop everything),
#        STATE_DIR/hdfs.log (JVM log).
# Needs tests/servers/hdfs/install.sh to have run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../lib.sh
source "$here/../../lib.sh" hdfs/start.sh
cache="$TEST_CACHE/hdfs"
ready_timeout="${AG_TEST_HDFS_START_TIMEOUT:-120}"

args_or_usage 1 "$0 STATE_DIR" "$@"
need java "'java' not found; install a JDK (Debian: apt-get install openjdk-17-jdk-headless)"
[[ -s "$cache/classpath.txt" && -f "$cache/classes/MiniDfs.class" ]] \
    || die "launcher not built; run tests/servers/hdfs/install.sh first"

mkdir -p "$1"
state_dir="$(cd "$1" && pwd)"
log="$state_dir/hdfs.log"
out="$state_dir/hdfs.out"
fifo="$state_dir/hdfs.stdin"
pid_file="$state_dir/hdfs.pid"
env_file="$state_dir/hdfs.env"
data_dir="$state_dir/hdfs-data"

if [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    die "an HDFS server from $pid_file is still running (pid $(cat "$pid_file")); kill it or use another STATE_DIR"
fi
rm -f "$env_file" "$pid_file" "$out" "$fifo"
: >"$log"
mkfifo "$fifo"

jvm=(
    java
    -Xmx768m -Xss512k
    -XX:+UseSerialGC -XX:TieredStopAtLevel=1
    -Djava.net.preferIPv4Stack=true
    -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$here/log4j.properties"
    "-Dtest.build.data=$data_dir/test-build"
    "-Djava.io.tmpdir=$data_dir/tmp"
    -cp "$cache/classes:$(cat "$cache/classpath.txt")"
    MiniDfs "$data_dir"
)
mkdir -p "$data_dir/tmp"

# The supervisor below is what hdfs.pid names. It holds the write end of a fifo
# that is the JVM's stdin, so:
#   - kill (TERM/INT/HUP) of the supervisor stops the JVM and waits for it;
#   - if the supervisor dies any other way, stdin hits EOF and the JVM shuts down.
supervisor='
    fifo=$1; shift
    exec 3<>"$fifo"                      # keep a writer open (read-write: does not block)
    (cd "$(dirname "$fifo")" && exec "$@") <"$fifo" 3>&- &
    child=$!
    stop() { trap - TERM INT HUP; kill -TERM "$child" 2>/dev/null; wait "$child"; exit 143; }
    trap stop TERM INT HUP
    wait "$child"
'
cd "$state_dir"
setsid bash -c "$supervisor" hdfs-supervisor "$fifo" "${jvm[@]}" \
    </dev/null >"$out" 2>>"$log" &
sup_pid=$!
echo "$sup_pid" >"$pid_file"

fail() {
    echo "hdfs/start.sh: $*" >&2
    stop_pid "$sup_pid"
    rm -f "$pid_file"
    show_log "$log"
    exit 1
}

deadline=$((SECONDS + ready_timeout))
url=""
while :; do
    if line="$(grep -m1 '^READY hdfs://' "$out" 2>/dev/null)"; then
        url="${line#READY }"
        break
    fi
    kill -0 "$sup_pid" 2>/dev/null || fail "HDFS launcher exited before it was ready"
    (( SECONDS < deadline )) || fail "HDFS not ready after ${ready_timeout}s"
    sleep 0.5
done

[[ "$url" =~ ^hdfs://127\.0\.0\.1:[0-9]+$ ]] || fail "unexpected ready line: $line"
echo "$line" >>"$log"

dn_http="$(grep -m1 '^DATANODE_HTTP ' "$out" | cut -d' ' -f2)"
[[ "$dn_http" =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || fail "no datanode HTTP address before the ready line"
write_env "$env_file" "AG_TEST_HDFS_URL=$url" "AG_TEST_HDFS_DATANODE_HTTP=$dn_http"
echo "hdfs: ready at $url (pid $sup_pid, state $state_dir)"
