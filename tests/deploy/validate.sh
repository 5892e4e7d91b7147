#!/usr/bin/env bash
# Offline validation of deploy/ (run by tests/deploy_manifests.rs; no cluster, no network):
#   1. helm lint --strict and helm template of the chart with the default values and with
#      tests/deploy/values-*.yaml (TLS off + S3/OSS/HDFS mounts; an existing TLS Secret);
#   2. the chart's guards: renders that must fail do fail;
#   3. tests/deploy/validate_manifests.py: kubernetes-validate --strict on every Kubernetes object
#      (chart output, deploy/flink ConfigMaps/Secrets, Flink pod templates as Pods), the Flink
#      CRD schema (jsonschema) on every FlinkDeployment/FlinkSessionJob, and the wiring between
#      chart and examples; it also writes each render's config.toml to OUT_DIR/config-<name>.toml,
#      which the Rust test then parses with the gateway's own config parser.
#
# usage: tests/deploy/validate.sh [OUT_DIR]        (default: target/deploy-validate)
# exit: 0 valid · 1 invalid (problems listed) · 3 a tool is missing (run tests/deploy/install.sh)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
OUT="${1:-$ROOT/target/deploy-validate}"
CHART="$ROOT/deploy/helm/artifact-gateway"
RELEASE=artifact-gateway
NAMESPACE=flink

missing() { echo "validate.sh: $*. Install the tools with: tests/deploy/install.sh" >&2; exit 3; }

HELM="$(command -v helm || true)"
if [[ -z "$HELM" ]]; then
    gopath="$(go env GOPATH 2>/dev/null || echo "$HOME/go")"
    [[ -x "$gopath/bin/helm" ]] && HELM="$gopath/bin/helm"
fi
[[ -n "$HELM" ]] || missing "helm not found (go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION)"
command -v kubernetes-validate >/dev/null || missing "kubernetes-validate not found (pip install kubernetes-validate==$KUBERNETES_VALIDATE_VERSION)"
python3 -c 'import jsonschema, yaml' 2>/dev/null || missing "python3 cannot import jsonschema and yaml (pip install jsonschema PyYAML)"
command -v openssl >/dev/null || missing "openssl not found (apt-get install openssl)"
CRD_JAR="$HOME/.m2/repository/org/apache/flink/flink-kubernetes-operator-api/$FLINK_OPERATOR_API_VERSION/flink-kubernetes-operator-api-$FLINK_OPERATOR_API_VERSION.jar"
[[ -s "$CRD_JAR" ]] || missing "the Flink CRDs are not in ~/.m2 ($CRD_JAR)"

echo "helm: $HELM ($(go version -m "$HELM" 2>/dev/null | awk '$1 == "mod" && $2 == "helm.sh/helm/v3" {print $3}' || true)), kubernetes-validate $(kubernetes-validate --version), flink-kubernetes-operator-api $FLINK_OPERATOR_API_VERSION"
mkdir -p "$OUT"

renders=()
render() { # NAME [VALUES_FILE]
    local name="$1" values=()
    [[ $# -gt 1 ]] && values=(-f "$2")
    echo "== helm lint --strict / helm template: $name"
    "$HELM" lint --strict --quiet "$CHART" --namespace "$NAMESPACE" "${values[@]}"
    "$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" "${values[@]}" >"$OUT/rendered-$name.yaml"
    renders+=("$name=$OUT/rendered-$name.yaml")
}
render default
render s3-plain-http "$HERE/values-s3-plain-http.yaml"
render existing-tls "$HERE/values-existing-tls.yaml"

must_fail() { # WHY EXPECTED_MESSAGE VALUES_YAML
    local why="$1" expect="$2" values="$OUT/must-fail-values.yaml" out
    printf '%s\n' "$3" >"$values"
    if out="$("$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" -f "$values" 2>&1)"; then
        echo "the chart should refuse $why, but rendered" >&2; exit 1
    fi
    if ! grep -qF -- "$expect" <<<"$out"; then
        echo "the chart refused $why with an unexpected message:" >&2; echo "$out" >&2; exit 1
    fi
    echo "refused as it should: $why"
}
echo "== chart guards"
must_fail "two replicas on one ReadWriteOnce volume" "replicaCount > 1" 'replicaCount: 2'
must_fail "a token name that is not a file name" "is a file name" \
    'tokens: [{name: ../x, existingSecret: s, scopes: [read]}]'
must_fail "a token without its Secret" "existingSecret is required" 'tokens: [{name: t, scopes: [read]}]'
must_fail "a token without scopes" "needs scopes" 'tokens: [{name: t, existingSecret: s}]'
must_fail "no mounts at all" "at least one mount" 'mounts: []'
must_fail "a mount without a URL" "needs a url" 'mounts: [{name: jobs}]'
must_fail "a signing key without its Secret" "existingSecret is required" 'signing: {keys: [{id: k1}]}'
must_fail "a signing key id that is not a file name" "is a file name" \
    'signing: {keys: [{id: ../k, existingSecret: s}]}'

echo "== NOTES.txt"
# `helm template` renders NOTES.txt but never prints it, and `helm install --dry-run` needs a
# cluster. So a copy of the chart gets one extra template that returns the notes as a ConfigMap.
notes_chart="$OUT/notes-chart"
rm -rf "$notes_chart" && cp -r "$CHART" "$notes_chart"
{
    echo '{{- define "notes-check.text" }}'
    cat "$CHART/templates/NOTES.txt"
    echo '{{- end }}'
    echo 'apiVersion: v1'
    echo 'kind: ConfigMap'
    echo 'metadata: {name: notes-check}'
    echo 'data:'
    echo '  notes: {{ include "notes-check.text" . | toJson }}'
} >"$notes_chart/templates/zz-notes-check.yaml"
notes() { # VALUES_FILE... -> the rendered notes
    "$HELM" template "$RELEASE" "$notes_chart" --namespace "$NAMESPACE" "$@" --show-only templates/zz-notes-check.yaml \
        | python3 -c 'import sys, yaml; print(yaml.safe_load(sys.stdin)["data"]["notes"])'
}
expect_notes() { # NAME EXPECTED_LINE VALUES...
    local name="$1" expect="$2" text; shift 2
    text="$(notes "$@")"
    grep -qF -- "$expect" <<<"$text" || { echo "NOTES.txt for $name lacks: $expect" >&2; echo "$text" >&2; exit 1; }
    echo "NOTES.txt ($name) renders and names $expect"
}
expect_notes default "https://artifact-gateway.flink.svc/artifacts/<mount>/<path>"
expect_notes default "create secret generic artifact-gateway-flink-token --from-literal=token="
expect_notes s3-plain-http "http://artifact-gateway.flink.svc/artifacts/<mount>/<path>" -f "$HERE/values-s3-plain-http.yaml"
expect_notes existing-tls "https://artifacts.flink.svc:8443/artifacts/<mount>/<path>" -f "$HERE/values-existing-tls.yaml"

echo "== manifests"
python3 "$HERE/validate_manifests.py" --out "$OUT" --crd-jar "$CRD_JAR" --flink-dir "$ROOT/deploy/flink" \
    --namespace "$NAMESPACE" "${renders[@]}"

echo "== the validator catches broken examples"
python3 "$HERE/mutants.py" --out "$OUT" --crd-jar "$CRD_JAR" --flink-dir "$ROOT/deploy/flink" \
    --namespace "$NAMESPACE" "default=$OUT/rendered-default.yaml"
