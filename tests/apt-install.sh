#!/usr/bin/env bash
# `apt-get update` + `apt-get install PACKAGES…`, serialised: tests/run.sh runs the install scripts of
# the test servers side by side, and apt refuses a second apt-get while one holds its locks. An flock
# shared by the project's own scripts orders them; DPkg::Lock::Timeout waits for any other apt user.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: tests/apt-install.sh PACKAGE…" >&2; exit 2; }
exec 9>/var/lock/artifact-gateway-apt.lock
flock 9
apt=(apt-get -o DPkg::Lock::Timeout=600)
"${apt[@]}" update -qq
DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends "$@"
