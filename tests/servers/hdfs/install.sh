#!/usr/bin/env bash
# Installs the HDFS test server: resolves hadoop-minicluster's runtime classpath
# with Maven (into ~/.m2) and compiles MiniDfs.java / HdfsSmoke.java against it.
# Output lives in target/test-servers/cache/hdfs/. Idempotent: a warm run only
# checks a hash stamp and returns.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../lib.sh
source "$here/../../lib.sh" hdfs/install.sh
cache="$TEST_CACHE/hdfs"

jdk="a JDK 11+ (Debian: apt-get install openjdk-17-jdk-headless)"
need java "'java' not found on PATH; install $jdk"
need javac "'javac' not found on PATH; install $jdk"
need mvn "'mvn' not found on PATH; install Maven 3.6+ (Debian: apt-get install maven)"
need sha256sum "'sha256sum' not found on PATH; install coreutils"

mkdir -p "$cache"

# One install at a time (tests/run.sh and a developer may race).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache/.lock"
    flock 9
fi

classpath_file="$cache/classpath.txt"
classpath_stamp_file="$cache/classpath.stamp"
classes_dir="$cache/classes"
classes_stamp_file="$cache/classes.stamp"

hash_of() { sha256sum "$@" | awk '{print $1}' | sha256sum | awk '{print $1}'; }

# The classpath depends on pom.xml only; the classes on the sources, the JDK and the classpath.
classpath_stamp="$(hash_of "$here/pom.xml")"
classes_stamp="$( { hash_of "$here/MiniDfs.java" "$here/HdfsSmoke.java"; javac -version 2>&1; echo "$classpath_stamp"; } \
    | sha256sum | awk '{print $1}')"

stamp_matches() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

did_something=0

if ! stamp_matches "$classpath_stamp_file" "$classpath_stamp" || ! classpath_present "$classpath_file"; then
    did_something=1
    rm -f "$classpath_stamp_file" "$classes_stamp_file"
    echo "hdfs: resolving hadoop-minicluster classpath with Maven (first run downloads ~260 MB into ~/.m2)..."
    tmp_cp="$classpath_file.tmp"
    maven_classpath "$here/pom.xml" "$tmp_cp" "$cache/maven.log" \
        "org.apache.hadoop:hadoop-minicluster (needs Maven Central)"
    mv -f "$tmp_cp" "$classpath_file"
    echo "$classpath_stamp" >"$classpath_stamp_file"
fi

if ! stamp_matches "$classes_stamp_file" "$classes_stamp" \
    || [[ ! -f "$classes_dir/MiniDfs.class" || ! -f "$classes_dir/HdfsSmoke.class" ]]; then
    did_something=1
    echo "hdfs: compiling launcher..."
    rm -rf "$classes_dir.tmp"
    mkdir -p "$classes_dir.tmp"
    if ! javac -encoding UTF-8 -d "$classes_dir.tmp" -cp "$(cat "$classpath_file")" \
            "$here/MiniDfs.java" "$here/HdfsSmoke.java" >"$cache/javac.log" 2>&1; then
        cat "$cache/javac.log" >&2
        die "javac failed to compile $here/MiniDfs.java / HdfsSmoke.java"
    fi
    rm -rf "$classes_dir"
    mv "$classes_dir.tmp" "$classes_dir"
    echo "$classes_stamp" >"$classes_stamp_file"
fi

if [[ $did_something -eq 0 ]]; then
    echo "hdfs: up to date ($cache)"
    exit 0
fi
echo "hdfs: installed ($cache)"
