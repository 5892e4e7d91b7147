# shellcheck shell=bash
# Shell helpers shared by the test scripts (test servers, test artifacts, the Kubernetes stack).
# It owns what those scripts used to write each for itself: the error exit, a required command,
# a Maven-resolved classpath, stopping a started process, an atomic env file. It starts nothing
# and must never depend on the script that sources it beyond the name it is given.
#
# usage (bash, `set -euo pipefail` already on):
#   source "$HERE/../lib.sh" tests/flink/install.sh    # the name error messages start with
# Sets ROOT (the repository) and TEST_CACHE (ROOT/target/test-servers/cache).

AG_SCRIPT="${1:?tests/lib.sh: name the script that sources it}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC2034 # read by the scripts that source this file
TEST_CACHE="$ROOT/target/test-servers/cache"

# die MESSAGE…: the message on stderr, prefixed with the script's name; exit 1.
die() { echo "$AG_SCRIPT: $*" >&2; exit 1; }

# need COMMAND MESSAGE: COMMAND is on PATH, or die with MESSAGE (which says what to install).
need() { command -v "$1" >/dev/null 2>&1 || die "$2"; }

# args_or_usage WANTED USAGE ARGS…: exactly WANTED arguments, or die with USAGE.
args_or_usage() {
    local wanted="$1" usage="$2"
    shift 2
    [[ $# -eq $wanted ]] || die "usage: $usage"
}

# maven_classpath POM OUT_FILE LOG WHAT: resolves POM's runtime classpath with Maven (into
# ~/.m2) and writes it, one line, to OUT_FILE; on failure shows the end of LOG and dies naming WHAT.
maven_classpath() {
    local pom="$1" out="$2" log="$3" what="$4"
    if ! mvn -q -B -f "$pom" dependency:build-classpath \
            -Dmdep.outputFile="$out" -Dmdep.includeScope=runtime >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        die "Maven could not resolve $what (log: $log)"
    fi
    [[ -s "$out" ]] || die "Maven wrote an empty classpath to $out (log: $log)"
}

# classpath_present FILE: FILE holds a classpath every entry of which exists (false when, say,
# ~/.m2 was cleaned since it was resolved).
classpath_present() {
    [[ -s "$1" ]] || return 1
    local entry entries
    IFS=':' read -r -a entries <"$1"
    for entry in "${entries[@]}"; do
        [[ -e "$entry" ]] || return 1
    done
}

# stop_pid PID [TRIES] [PAUSE]: SIGTERM, then up to TRIES (50) checks PAUSE (0.2 s) apart for it
# to be gone, then SIGKILL. An empty or dead PID is fine.
stop_pid() {
    local pid="$1" tries="${2:-50}" pause="${3:-0.2}"
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 "$tries"); do kill -0 "$pid" 2>/dev/null || break; sleep "$pause"; done
    kill -KILL "$pid" 2>/dev/null || true
}

# show_log LOG [LINES]: the last LINES (40) lines of LOG on stderr, under a header.
show_log() {
    echo "---- last lines of $1 ----" >&2
    tail -n "${2:-40}" "$1" >&2 || true
}

# write_env FILE KEY=VALUE…: FILE holds those lines, written whole (through FILE.tmp) so a
# reader never sees half of it.
write_env() {
    local file="$1"
    shift
    printf '%s\n' "$@" >"$file.tmp"
    mv -f "$file.tmp" "$file"
}
