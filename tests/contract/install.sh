#!/usr/bin/env bash
# Installs Schemathesis (PyPI), which tests/api_contract.rs runs against the real server with the
# OpenAPI description in src/http/openapi.json. Idempotent; seconds when pip's cache is warm.
set -euo pipefail
SCHEMATHESIS_VERSION=4.32.5
have() {
    python3 - "$SCHEMATHESIS_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if version("schemathesis") == sys.argv[1] else 1)
PY
}
if have && command -v schemathesis >/dev/null; then
    echo "schemathesis $SCHEMATHESIS_VERSION: present"
else
    echo "installing schemathesis==$SCHEMATHESIS_VERSION with pip..."
    python3 -m pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION" \
        || { echo "tests/contract/install.sh: pip install schemathesis==$SCHEMATHESIS_VERSION failed" >&2; exit 1; }
    have || { echo "tests/contract/install.sh: schemathesis $SCHEMATHESIS_VERSION is not importable after pip install" >&2; exit 1; }
fi
