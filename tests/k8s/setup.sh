#!/usr/bin/env bash
# Puts the Flink-on-Kubernetes stack onto a running test cluster (tests/servers/k8s/start.sh), as a
# user would, step by step:
#   1. images (tests/k8s/images.sh): the gateway from deploy/Dockerfile with the given binary,
#      Flink 1.18.1, the Flink Kubernetes Operator 1.7.0, imported into the cluster's containerd;
#      Flink 1.16.3 for the SeaTunnel cells (tests/k8s/seatunnel.sh, with SeaTunnel's jars)
#   2. namespace `flink`, the admin and the read-only `flink` token Secrets (random tokens)
#   3. a PersistentVolume for the chart's claim (the test cluster has no volume provisioner)
#   4. helm install artifact-gateway deploy/helm/artifact-gateway -n flink --wait (TLS with the
#      chart's generated CA, tokens from the Secrets, probes must pass)
#   5. the test artifacts (tests/k8s/build-jobs.sh) uploaded with the admin token over https
#   6. the operator's CRDs (flink-kubernetes-operator-api 1.7.0) and the operator itself in
#      namespace flink-operator, configured from deploy/flink/operator-values.yaml
#      (tests/k8s/operator/render.py), watching `flink`
# Then writes STATE_DIR/flink-k8s.env (tokens, CA file, the gateway's ClusterIP, artifact paths).
#
# usage: tests/k8s/setup.sh STATE_DIR BINARY
#   STATE_DIR  the cluster's state directory (holds k8s.env)
#   BINARY     the artifact-gateway executable for the image
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$HERE/../lib.sh" tests/k8s/setup.sh
args_or_usage 2 "setup.sh STATE_DIR BINARY" "$@"
# shellcheck source=../servers/k8s/versions.env
source "$ROOT/tests/servers/k8s/versions.env"
STATE="$(cd "$1" && pwd)"
BINARY="$2"
[[ -f "$STATE/k8s.env" ]] || die "$STATE/k8s.env missing: start the cluster with tests/servers/k8s/start.sh $STATE"
set -a
# shellcheck disable=SC1091
source "$STATE/k8s.env"
set +a
export KUBECONFIG="$AG_TEST_K8S_KUBECONFIG"
export PATH="$AG_TEST_K8S_BIN:$PATH"
OUT="$STATE/flink-k8s"
# Once per cluster: a second call (another test process) reuses what the first one set up.
if [[ -f "$STATE/flink-k8s.env" ]] && kubectl get namespace flink >/dev/null 2>&1; then
    echo "setup: already done for this cluster ($STATE/flink-k8s.env)"
    exit 0
fi
rm -rf "$OUT"
mkdir -p "$OUT"
t0=$SECONDS
step() { echo "setup: $* ($((SECONDS - t0))s)"; }

step "images"
"$HERE/images.sh" "$BINARY" "$AG_TEST_K8S_CONTAINERD"
step "job artifacts"
"$HERE/build-jobs.sh" "$OUT/artifacts" >/dev/null
step "SeaTunnel image and artifacts"
"$HERE/seatunnel.sh" "$OUT/artifacts" "$AG_TEST_K8S_CONTAINERD"

step "namespace and tokens"
kubectl create namespace flink >/dev/null
ADMIN_TOKEN="$(openssl rand -hex 32)"
FLINK_TOKEN="$(openssl rand -hex 32)"
kubectl -n flink create secret generic artifact-gateway-admin-token --from-literal=token="$ADMIN_TOKEN" >/dev/null
kubectl -n flink create secret generic artifact-gateway-flink-token --from-literal=token="$FLINK_TOKEN" >/dev/null

step "persistent volume"
PV_DIR="$STATE/k8s/volumes/artifact-gateway-data"
mkdir -p "$PV_DIR"
chown 10001:10001 "$PV_DIR"
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolume
metadata: {name: artifact-gateway-data}
spec:
  capacity: {storage: 20Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  claimRef: {namespace: flink, name: artifact-gateway-data}
  hostPath: {path: "$PV_DIR", type: Directory}
EOF

step "helm install artifact-gateway"
if ! helm install artifact-gateway "$ROOT/deploy/helm/artifact-gateway" -n flink --wait --timeout 180s \
        >"$OUT/helm-install.log" 2>&1; then
    cat "$OUT/helm-install.log" >&2
    kubectl -n flink get pods -o wide >&2 || true
    kubectl -n flink describe pods >&2 || true
    die "helm install did not become ready"
fi
kubectl -n flink get configmap artifact-gateway-ca -o 'jsonpath={.data.ca\.crt}' >"$OUT/ca.crt"
GATEWAY_IP="$(kubectl -n flink get service artifact-gateway -o 'jsonpath={.spec.clusterIP}')"
[[ -n "$GATEWAY_IP" ]] || die "no ClusterIP for service artifact-gateway"

step "upload artifacts"
put() { # FILE PATH
    local code
    code="$(curl -sS -o "$OUT/put.out" -w '%{http_code}' --cacert "$OUT/ca.crt" \
        --resolve "artifact-gateway.flink.svc:443:$GATEWAY_IP" -H "Authorization: Bearer $ADMIN_TOKEN" \
        -T "$1" "https://artifact-gateway.flink.svc/artifacts/jobs/$2")" || die "PUT $2: curl failed"
    [[ "$code" == 200 || "$code" == 201 ]] || die "PUT $2 answered $code: $(cat "$OUT/put.out")"
}
A="$OUT/artifacts"
put "$A/wordcount.jar" wordcount/1.0.0/wordcount.jar
put "$A/string-udfs.jar" udfs/string-udfs/2.3.0/string-udfs.jar
put "$A/sql-runner.jar" sql-runner/1.0.0/sql-runner.jar
put "$A/orders-etl.sql" orders-etl/1.2.0/orders-etl.sql
put "$A/job.py" clickstream/0.4.0/job.py
put "$A/flink-python-$FLINK_IMAGE_VERSION.jar" "flink-python/$FLINK_IMAGE_VERSION/flink-python-$FLINK_IMAGE_VERSION.jar"
kafka="$(cd "$A" && ls flink-sql-connector-kafka-*.jar)"
kafka_version="${kafka#flink-sql-connector-kafka-}"
kafka_version="${kafka_version%.jar}"
put "$A/$kafka" "connectors/flink-sql-connector-kafka/$kafka_version/$kafka"
# Flink CDC (application-flink-cdc.yaml, session-flink-cdc.yaml): its jars, the pipeline, the runner.
for m in cli composer runtime common; do
    put "$A/flink-cdc-$m-3.1.0.jar" "flink-cdc/3.1.0/flink-cdc-$m-3.1.0.jar"
done
put "$A/flink-cdc-pipeline-connector-values-3.1.0.jar" \
    connectors/flink-cdc-pipeline-connector-values/3.1.0/flink-cdc-pipeline-connector-values-3.1.0.jar
put "$A/snakeyaml-engine-2.6.jar" libs/snakeyaml-engine/2.6/snakeyaml-engine-2.6.jar
put "$A/cdc-values-pipeline.yaml" cdc-values/1.0.0/pipeline.yaml
put "$A/cdc-runner.jar" cdc-runner/1.0.0/cdc-runner.jar
# SeaTunnel (application-seatunnel.yaml, session-seatunnel.yaml): starter, connectors, map, job.
put "$A/seatunnel-flink-15-starter-$SEATUNNEL_VERSION.jar" \
    "seatunnel/$SEATUNNEL_VERSION/seatunnel-flink-15-starter-$SEATUNNEL_VERSION.jar"
for c in connector-fake connector-console; do
    put "$A/$c-$SEATUNNEL_VERSION.jar" "seatunnel/connectors/$c/$SEATUNNEL_VERSION/$c-$SEATUNNEL_VERSION.jar"
done
put "$A/seatunnel-plugin-mapping.properties" fake-to-console/1.0.0/plugin-mapping.properties
put "$A/seatunnel-fake-to-console.conf" fake-to-console/1.0.0/fake-to-console.conf

step "Flink operator CRDs"
api_jar="$ROOT/target/test-servers/cache/k8s/operator-lib/flink-kubernetes-operator-api-$FLINK_OPERATOR_VERSION.jar"
[[ -f "$api_jar" ]] || die "$api_jar missing (tests/k8s/images.sh resolves it)"
for crd in flinkdeployments flinksessionjobs; do
    unzip -p "$api_jar" "META-INF/fabric8/$crd.flink.apache.org-v1.yml" >"$OUT/$crd-crd.yaml"
    kubectl apply --server-side -f "$OUT/$crd-crd.yaml" >/dev/null
done
for crd in flinkdeployments flinksessionjobs; do
    for i in $(seq 1 120); do
        [[ "$(kubectl get crd "$crd.flink.apache.org" -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}' 2>/dev/null)" == True ]] && break
        [[ $i -lt 120 ]] || die "CRD $crd.flink.apache.org not established"
        sleep 0.5
    done
done

step "Flink operator"
kubectl create namespace flink-operator >/dev/null
kubectl -n flink-operator create configmap artifact-gateway-ca --from-file=ca.crt="$OUT/ca.crt" >/dev/null
python3 "$HERE/operator/render.py" "$ROOT/deploy/flink/operator-values.yaml" "$FLINK_TOKEN" \
    "docker.io/library/flink-kubernetes-operator:$FLINK_OPERATOR_VERSION" flink-operator flink >"$OUT/operator.yaml"
kubectl apply -f "$OUT/operator.yaml" >/dev/null
if ! kubectl -n flink-operator rollout status deployment/flink-kubernetes-operator --timeout=180s >/dev/null; then
    kubectl -n flink-operator describe pods >&2 || true
    kubectl -n flink-operator logs deployment/flink-kubernetes-operator --all-containers >&2 || true
    die "the Flink operator did not start"
fi

write_env "$STATE/flink-k8s.env" "AG_K8S_ADMIN_TOKEN=$ADMIN_TOKEN" "AG_K8S_FLINK_TOKEN=$FLINK_TOKEN" \
    "AG_K8S_CA_FILE=$OUT/ca.crt" "AG_K8S_GATEWAY_IP=$GATEWAY_IP" "AG_K8S_ARTIFACTS=$A" \
    "AG_K8S_KAFKA_CONNECTOR_VERSION=$kafka_version"
step "ready"
