#!/usr/bin/env bash
# Installs what the browser tests of the /ui/ page need (idempotent, quick when warm):
# Node.js and npm, Debian's Chromium, and playwright-core from npm at the version in
# package-lock.json (cached in npm's cache; `npm ci` only when the lock file changed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

need_apt=()
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "tests/ui/install.sh: installing ${need_apt[*]} with apt-get"
  if ! ../apt-install.sh "${need_apt[@]}" >/dev/null; then
    echo "tests/ui/install.sh: could not install ${need_apt[*]}; install them with apt-get" >&2
    exit 1
  fi
fi

stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/playwright-core/package.json ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "tests/ui/install.sh: npm ci (playwright-core)"
  npm ci --prefer-offline --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
