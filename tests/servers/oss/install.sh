#!/usr/bin/env bash
# Installs what the OSS test server needs: Python 3 and Alibaba's `oss2` SDK
# (its signer verifies every request; its crcmod dependency computes CRC-64).
# Idempotent: with oss2 already importable it only checks and exits.
set -euo pipefail

PY=${PYTHON:-python3}

if ! command -v "$PY" >/dev/null 2>&1; then
    echo "oss/install.sh: $PY not found; install Python 3.11+ (e.g. apt-get install python3 python3-pip)" >&2
    exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)'; then
    echo "oss/install.sh: $("$PY" --version 2>&1) is too old; the OSS test server needs Python 3.9+" >&2
    exit 1
fi

check() { "$PY" -c 'import oss2, oss2.auth, requests' >/dev/null 2>&1; }

if check; then
    echo "oss: oss2 $("$PY" -c 'import oss2; print(oss2.__version__)') already installed"
else
    echo "oss: installing oss2 from PyPI with pip"
    if ! "$PY" -m pip install --quiet --disable-pip-version-check 'oss2>=2.18,<3'; then
        # A distribution Python may refuse system-wide installs; try the user site.
        "$PY" -m pip install --quiet --disable-pip-version-check --user 'oss2>=2.18,<3' || {
            echo "oss/install.sh: could not install the PyPI package oss2 with '$PY -m pip'" >&2
            exit 1
        }
    fi
    if ! check; then
        echo "oss/install.sh: oss2 was installed but '$PY -c \"import oss2\"' still fails" >&2
        exit 1
    fi
    echo "oss: oss2 $("$PY" -c 'import oss2; print(oss2.__version__)') installed"
fi

if ! "$PY" -c 'import crcmod._crcfunext' >/dev/null 2>&1; then
    echo "oss: note: crcmod has no C extension here; the server will not send x-oss-hash-crc64ecma" >&2
fi
