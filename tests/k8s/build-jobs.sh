#!/usr/bin/env bash
# Builds the artifacts the Kubernetes tests publish to the gateway, against Flink 1.18.1 (the
# Flink of the test image), into OUT_DIR:
#   wordcount.jar     org.apache.flink.streaming.examples.wordcount.WordCount (jobs/WordCount.java)
#   string-udfs.jar   artifactgateway.udfs.StringUdfs, the UDF jar WordCount needs at run time
#   sql-runner.jar    org.apache.flink.examples.SqlRunner (jobs/SqlRunner.java)
#   orders-etl.sql    jobs/orders-etl.sql
#   job.py            jobs/job.py (the PyFlink job)
#   flink-python-$FLINK_IMAGE_VERSION.jar  Flink's Python driver jar (session Python cell's jarURI)
#   flink-sql-connector-kafka-$KAFKA_CONNECTOR.jar   from Maven Central (the SQL cells' connector)
#   cdc-values-pipeline.yaml  jobs/cdc-values-pipeline.yaml (the Flink CDC cells' pipeline)
#   cdc-runner.jar    org.apache.flink.examples.CdcPipelineRunner (the Flink CDC session cell's jarURI)
#   flink-cdc-{cli,composer,runtime,common}-$CDC_VERSION.jar, flink-cdc-pipeline-connector-values-$CDC_VERSION.jar,
#   snakeyaml-engine-$SNAKEYAML_ENGINE.jar   from Maven Central (Flink CDC without its dist jar)
# Cached by the hash of the inputs under target/test-servers/cache/k8s/jobs/.
#
# usage: tests/k8s/build-jobs.sh OUT_DIR
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$HERE/../lib.sh" tests/k8s/build-jobs.sh
args_or_usage 1 "build-jobs.sh OUT_DIR" "$@"
OUT="$1"
# shellcheck source=../servers/k8s/versions.env
source "$ROOT/tests/servers/k8s/versions.env"
# The Kafka SQL connector release built for Flink 1.18 (the newest for 1.18 the reachable Maven serves).
KAFKA_CONNECTOR=3.0.1-1.18
# Flink CDC 3.1.0: built against Flink 1.18 (the newest release whose values pipeline connector the
# reachable Maven serves); snakeyaml-engine is the one dependency of its CLI that Flink lacks.
CDC_VERSION=3.1.0
SNAKEYAML_ENGINE=2.6
CACHE="$ROOT/target/test-servers/cache/k8s"
SDIST="$(go env GOPATH)/artifact-gateway-test/k8s-$K8S_VERSION/downloads/flink-sdist/apache-flink-libraries-$FLINK_IMAGE_VERSION.tar.gz"
[[ -s "$SDIST" ]] || die "$SDIST missing: run tests/k8s/images.sh first (it downloads Flink $FLINK_IMAGE_VERSION)"
command -v javac >/dev/null || die "javac not found (a JDK 17 is needed)"

hash="$({ cat "$HERE"/jobs/*.java "$HERE"/jobs/*.sql "$HERE"/jobs/*.py "$HERE"/jobs/*.yaml "${BASH_SOURCE[0]}"; echo "$FLINK_IMAGE_VERSION $KAFKA_CONNECTOR $CDC_VERSION"; javac -version 2>&1; } | sha256sum | cut -c1-16)"
built="$CACHE/jobs/$hash"
if [[ ! -f "$built/.done" ]]; then
    rm -rf "$built"
    mkdir -p "$built/classes-udf" "$built/classes-wc" "$built/classes-sql" "$built/classes-cdc" "$built/flink"
    tar --no-same-owner -xzf "$SDIST" -C "$built/flink" --strip-components=3 \
        "apache-flink-libraries-$FLINK_IMAGE_VERSION/deps/lib/flink-dist-$FLINK_IMAGE_VERSION.jar" \
        "apache-flink-libraries-$FLINK_IMAGE_VERSION/deps/lib/flink-table-api-java-uber-$FLINK_IMAGE_VERSION.jar" \
        "apache-flink-libraries-$FLINK_IMAGE_VERSION/deps/opt/flink-python-$FLINK_IMAGE_VERSION.jar"
    cp="$built/flink/flink-dist-$FLINK_IMAGE_VERSION.jar:$built/flink/flink-table-api-java-uber-$FLINK_IMAGE_VERSION.jar"
    javac --release 11 -nowarn -d "$built/classes-udf" "$HERE/jobs/StringUdfs.java"
    javac --release 11 -nowarn -cp "$cp" -d "$built/classes-wc" "$HERE/jobs/WordCount.java"
    javac --release 11 -nowarn -cp "$cp" -d "$built/classes-sql" "$HERE/jobs/SqlRunner.java" "$HERE/jobs/GatewayFiles.java"
    jar --create --file "$built/string-udfs.jar" -C "$built/classes-udf" .
    jar --create --file "$built/wordcount.jar" --main-class org.apache.flink.streaming.examples.wordcount.WordCount -C "$built/classes-wc" .
    jar --create --file "$built/sql-runner.jar" --main-class org.apache.flink.examples.SqlRunner -C "$built/classes-sql" .
    cp "$HERE/jobs/orders-etl.sql" "$HERE/jobs/job.py" "$HERE/jobs/cdc-values-pipeline.yaml" "$built/"
    for a in org.apache.flink:flink-cdc-cli:$CDC_VERSION org.apache.flink:flink-cdc-composer:$CDC_VERSION \
            org.apache.flink:flink-cdc-runtime:$CDC_VERSION org.apache.flink:flink-cdc-common:$CDC_VERSION \
            org.apache.flink:flink-cdc-pipeline-connector-values:$CDC_VERSION org.snakeyaml:snakeyaml-engine:$SNAKEYAML_ENGINE; do
        mvn -q -B dependency:copy -Dartifact="$a" -DoutputDirectory="$built" >>"$built/mvn.log" 2>&1 \
            || { tail -n 20 "$built/mvn.log" >&2; die "Maven could not download $a"; }
    done
    cdc_cp="$cp"
    for m in cli composer common; do cdc_cp+=":$built/flink-cdc-$m-$CDC_VERSION.jar"; done
    javac --release 11 -nowarn -cp "$cdc_cp" -d "$built/classes-cdc" "$HERE/jobs/CdcPipelineRunner.java" "$HERE/jobs/GatewayFiles.java"
    jar --create --file "$built/cdc-runner.jar" --main-class org.apache.flink.examples.CdcPipelineRunner -C "$built/classes-cdc" .
    mv "$built/flink/flink-python-$FLINK_IMAGE_VERSION.jar" "$built/"
    mvn -q -B dependency:copy -Dartifact="org.apache.flink:flink-sql-connector-kafka:$KAFKA_CONNECTOR" \
        -DoutputDirectory="$built" >"$built/mvn.log" 2>&1 \
        || { tail -n 20 "$built/mvn.log" >&2; die "Maven could not download flink-sql-connector-kafka $KAFKA_CONNECTOR"; }
    rm -rf "$built/classes-"* "$built/flink"
    touch "$built/.done"
fi
mkdir -p "$OUT"
cp "$built"/*.jar "$built"/*.sql "$built"/*.py "$built"/*.yaml "$OUT/"
echo "$OUT"
