#!/usr/bin/env bash
# Builds the test job jar (tests/flink/job/WordCountJob.java) against the flink-dist jar installed
# by tests/servers/flink/install.sh, with Main-Class in the manifest, ready for the JobManager's
# /jars/upload. A build is cached under target/test-servers/cache/flink/job/ by the hash of its
# inputs, so repeated calls only copy the jar.
#
# usage: tests/flink/build-job.sh OUT_JAR
set -euo pipefail

FLINK_VERSION="1.20.4"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$HERE/../lib.sh" tests/flink/build-job.sh
args_or_usage 1 "build-job.sh OUT_JAR" "$@"
OUT="$1"
[[ "$OUT" == *.jar ]] || die "OUT_JAR must end in .jar (the JobManager rejects other names): $OUT"

CACHE="$TEST_CACHE/flink"
DIST_JAR="$CACHE/flink-${FLINK_VERSION}/lib/flink-dist-${FLINK_VERSION}.jar"
[[ -f "$DIST_JAR" ]] || die "$DIST_JAR not found; run tests/servers/flink/install.sh first"
SRC="$HERE/job/WordCountJob.java"
[[ -f "$SRC" ]] || die "missing $SRC"
MAIN_CLASS="WordCountJob"
need javac "javac not found (a JDK is needed)"
need jar "jar not found (a JDK is needed)"

hash="$({ cat "$SRC" "${BASH_SOURCE[0]}"; echo "$FLINK_VERSION"; javac -version 2>&1; } | sha256sum | cut -c1-16)"
built="$CACHE/job/wordcount-$hash.jar"

if [[ ! -s "$built" ]]; then
    mkdir -p "$CACHE/job"
    work="$(mktemp -d "$CACHE/job/build.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/classes"
    javac --release 11 -nowarn -cp "$DIST_JAR" -d "$work/classes" "$SRC" \
        || die "javac failed to compile $SRC"
    jar --create --file "$work/job.jar" --main-class "$MAIN_CLASS" -C "$work/classes" . \
        || die "jar failed to package $work/classes"
    mv "$work/job.jar" "$built"
fi

mkdir -p "$(dirname "$OUT")"
cp "$built" "$OUT.tmp.$$"
mv "$OUT.tmp.$$" "$OUT"
echo "$OUT"
