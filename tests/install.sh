#!/usr/bin/env bash
# Installs the client programs and Python packages the test suite drives (idempotent, quick when warm).
set -euo pipefail

need_apt=()
for prog in curl wget; do
  command -v "$prog" >/dev/null 2>&1 || need_apt+=("$prog")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "tests/install.sh: installing ${need_apt[*]} with apt-get"
  if ! "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" "${need_apt[@]}" >/dev/null; then
    echo "tests/install.sh: could not install ${need_apt[*]}; install them with apt-get" >&2
    exit 1
  fi
fi

command -v python3 >/dev/null 2>&1 || { echo "tests/install.sh: python3 is required" >&2; exit 1; }
missing_py=()
python3 -c 'import requests' 2>/dev/null || missing_py+=(requests)
python3 -c 'import yaml' 2>/dev/null || missing_py+=(pyyaml)
if [ ${#missing_py[@]} -gt 0 ]; then
  echo "tests/install.sh: pip install ${missing_py[*]}"
  python3 -m pip install -q "${missing_py[@]}" || { echo "tests/install.sh: pip install ${missing_py[*]} failed" >&2; exit 1; }
fi
command -v cargo >/dev/null 2>&1 || { echo "tests/install.sh: cargo (Rust) is required: https://rustup.rs" >&2; exit 1; }
