#!/usr/bin/env bash
# Installs what tests/deploy/validate.sh needs; idempotent, seconds when everything is cached:
#   helm                    go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION (into $(go env GOPATH)/bin)
#   kubernetes-validate     pip (ships Kubernetes' JSON schemas; validates offline)
#   jsonschema, PyYAML      pip
#   the Flink CRDs          mvn dependency:get org.apache.flink:flink-kubernetes-operator-api (into ~/.m2)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
die() { echo "tests/deploy/install.sh: $*" >&2; exit 1; }

# helm (a `go install` build reports only "v3.21" itself; its module version is exact)
helm_version() { go version -m "$1" 2>/dev/null | awk '$1 == "mod" && $2 == "helm.sh/helm/v3" {print $3}'; }
gobin="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"
found=""
for candidate in "$(command -v helm || true)" "$gobin/helm"; do
    if [[ -n "$candidate" && -x "$candidate" && "$(helm_version "$candidate")" == "$HELM_VERSION" ]]; then
        found="$candidate"
        break
    fi
done
if [[ -n "$found" ]]; then
    echo "helm $HELM_VERSION: present ($found)"
else
    command -v go >/dev/null || die "go not found: it is needed to build helm"
    echo "helm $HELM_VERSION: building with go install (a few minutes the first time)..."
    go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" || die "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION failed"
fi

# Python packages
py_ok() {
    python3 - "$KUBERNETES_VALIDATE_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import jsonschema, yaml  # noqa: F401
sys.exit(0 if version("kubernetes-validate") == sys.argv[1] else 1)
PY
}
if py_ok && command -v kubernetes-validate >/dev/null; then
    echo "kubernetes-validate $KUBERNETES_VALIDATE_VERSION, jsonschema, PyYAML: present"
else
    echo "installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION jsonschema PyYAML with pip..."
    python3 -m pip install --quiet "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" jsonschema PyYAML \
        || die "pip install kubernetes-validate==$KUBERNETES_VALIDATE_VERSION jsonschema PyYAML failed"
    py_ok || die "kubernetes-validate $KUBERNETES_VALIDATE_VERSION is still not importable after pip install"
fi

# Flink CRDs
jar="$HOME/.m2/repository/org/apache/flink/flink-kubernetes-operator-api/$FLINK_OPERATOR_API_VERSION/flink-kubernetes-operator-api-$FLINK_OPERATOR_API_VERSION.jar"
if [[ -s "$jar" ]]; then
    echo "flink-kubernetes-operator-api $FLINK_OPERATOR_API_VERSION: present"
else
    command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
    echo "flink-kubernetes-operator-api $FLINK_OPERATOR_API_VERSION: downloading with Maven..."
    mvn -q -B dependency:get -Dtransitive=false \
        "-Dartifact=org.apache.flink:flink-kubernetes-operator-api:$FLINK_OPERATOR_API_VERSION" \
        || die "Maven could not download org.apache.flink:flink-kubernetes-operator-api:$FLINK_OPERATOR_API_VERSION"
    [[ -s "$jar" ]] || die "$jar is missing after the download"
fi
echo "tests/deploy: tools ready"
