#!/usr/bin/env bash
# Installs Debian packages for the test installers, one apt-get at a time: tests/run.sh runs the
# installers in parallel and apt holds exclusive locks (lists, dpkg frontend), so a second
# concurrent apt-get would fail at once with "Could not get lock". Every installer calls this
# script, which serialises on one flock and also lets apt itself wait for a lock held by anyone else.
#
#   tests/apt-install.sh PKG...
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: tests/apt-install.sh PKG..." >&2; exit 2; }
lock=/var/lock/artifact-gateway-test-apt.lock
wait_opts=(-o DPkg::Lock::Timeout=600)
exec 9>"$lock"
flock -w 1200 9 || { echo "tests/apt-install.sh: waited 20 min for $lock" >&2; exit 1; }
# Another installer may have installed these while this one waited.
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0
apt-get "${wait_opts[@]}" update -qq
DEBIAN_FRONTEND=noninteractive apt-get "${wait_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}"
