#!/usr/bin/env bash
# Runs the two JVMs of the test session cluster and ties their lifetimes together; started by
# start.sh (in its own session) after it wrote STATE_DIR/flink-run/{conf,*.jvm,*.dyn}.
# SIGTERM/SIGINT/SIGHUP stop both JVMs (TERM, then KILL after a grace period); if either JVM
# exits on its own, the other one is stopped too, so the pid in flink.pid always means "all of it".
#
# usage: supervise.sh STATE_DIR FLINK_HOME
set -uo pipefail

STATE="$1"
FLINK_HOME="$2"
RUN="$STATE/flink-run"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
GRACE_SECONDS=15

say() { echo "$(date +%H:%M:%S) supervisor: $*"; }

# JDK 17 needs these for Flink (the env.java.opts.all defaults of Flink's own config.yaml).
JDK17_OPTS=(
    -XX:+IgnoreUnrecognizedVMOptions
    --add-exports=java.base/sun.net.util=ALL-UNNAMED
    --add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED
    --add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
    --add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED
    --add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED
    --add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED
    --add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED
    --add-opens=java.base/java.lang=ALL-UNNAMED
    --add-opens=java.base/java.net=ALL-UNNAMED
    --add-opens=java.base/java.io=ALL-UNNAMED
    --add-opens=java.base/java.nio=ALL-UNNAMED
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens=java.base/java.text=ALL-UNNAMED
    --add-opens=java.base/java.time=ALL-UNNAMED
    --add-opens=java.base/java.util=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED
)

# Server classpath as Flink's scripts build it: lib jars in name order, flink-dist last.
CP=""
for jar in "$FLINK_HOME"/lib/*.jar; do
    case "$jar" in */flink-dist-*.jar) continue ;; esac
    CP="${CP:+$CP:}$jar"
done
for jar in "$FLINK_HOME"/lib/flink-dist-*.jar; do CP="$CP:$jar"; done

# Memory flags / dynamic properties computed by BashJavaUtils: plain space-separated tokens.
read -r -a JM_JVM <"$RUN/jobmanager.jvm"
read -r -a JM_DYN <"$RUN/jobmanager.dyn"
read -r -a TM_JVM <"$RUN/taskmanager.jvm"
read -r -a TM_DYN <"$RUN/taskmanager.dyn"

COMMON=(
    "${JDK17_OPTS[@]}"
    -Djava.io.tmpdir="$RUN/tmp"
    -Dlog.file="$STATE/flink.log"
    -Dlog4j.configurationFile="file:$FLINK_HOME/conf/log4j2.properties"
    -Dlog4j2.formatMsgNoLookups=true
    -cp "$CP"
)

PIDS=()
stopping=0
stop_all() { # EXIT_CODE
    [[ $stopping -eq 1 ]] && return
    stopping=1
    trap '' TERM INT HUP
    say "stopping JVMs ${PIDS[*]}"
    kill -TERM "${PIDS[@]}" 2>/dev/null
    local waited=0
    while [[ $waited -lt $((GRACE_SECONDS * 4)) ]]; do
        local alive=0 p
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [[ $alive -eq 0 ]] && break
        sleep 0.25
        waited=$((waited + 1))
    done
    for p in "${PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            say "JVM $p ignored SIGTERM for ${GRACE_SECONDS}s, killing it"
            kill -KILL "$p" 2>/dev/null
        fi
    done
    wait 2>/dev/null
    say "stopped"
    exit "$1"
}
trap 'stop_all 0' TERM INT HUP

say "starting JobManager (rest/rpc config in $RUN/conf/config.yaml)"
"$JAVA" "${JM_JVM[@]}" "${COMMON[@]}" -Dflink.component=jobmanager \
    org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint \
    --configDir "$RUN/conf" "${JM_DYN[@]}" </dev/null &
PIDS+=("$!")

say "starting TaskManager"
"$JAVA" "${TM_JVM[@]}" "${COMMON[@]}" -Dflink.component=taskmanager \
    org.apache.flink.runtime.taskexecutor.TaskManagerRunner \
    --configDir "$RUN/conf" "${TM_DYN[@]}" </dev/null &
PIDS+=("$!")
echo "${PIDS[*]}" >"$STATE/flink.jvm.pids"

# Returns when either JVM exits, or early when a trapped signal arrives (the trap then runs).
wait -n
say "a Flink JVM exited on its own (status $?); stopping the rest"
stop_all 1
