#!/usr/bin/env bash
# Builds the test job jar (tests/flink/job/WordCountJob.java) against the flink-dist jar installed
# by tests/servers/flink/install.sh, with Main-Class in the manifest, ready for the JobManager's
# /jars/upload. A build is cached under target/test-servers/cache/flink/job/ by the hash of its
# inputs, so repeated calls only copy the jar.
#
# usage: tests/flink/build-job.sh OUT_JAR
set -euo pipefail

FLINK_VERSION="1.20.4"

die() { echo "tests/flink/build-job.sh: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: build-job.sh OUT_JAR"
OUT="$1"
[[ "$OUT" == *.jar ]] || die "OUT_JAR must end in .jar (the JobManager rejects other names): $OUT"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="$ROOT/target/test-servers/cache/flink"
DIST_JAR="$CACHE/flink-${FLINK_VERSION}/lib/flink-dist-${FLINK_VERSION}.jar"
SRC="$HERE/job/WordCountJob.java"
MAIN_CLASS="WordCountJob"

[[ -f "$DIST_JAR" ]] || die "$DIST_JAR not found; run tests/servers/flink/install.sh first"
[[ -f "$SRC" ]] || die "missing $SRC"
command -v javac >/dev/null || die "javac not found (a JDK is needed)"
command -v jar >/dev/null || die "jar not found (a JDK is needed)"

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
