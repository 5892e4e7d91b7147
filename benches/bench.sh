#!/usr/bin/env bash
# The one end-to-end benchmark: builds the release binary, then runs benches/bench.py, which
# serves the same files with the gateway, nginx (sendfile on/off, TLS), `rclone serve http` and
# MinIO in interleaved rounds and prints one markdown table of medians and ratios.
#
#   benches/install.sh           # once: nginx, rclone, wrk (apt-get) and MinIO (Go module proxy)
#   benches/bench.sh             # full run: 5 rounds, about 10 minutes on an idle 2-core machine
#   benches/bench.sh --smoke     # tiny sizes, one round: checks that everything works (~1 minute)
#   benches/bench.sh --help      # rounds, scenario selection, output file, ...
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ -z "${AG_BENCH_BIN:-}" ]]; then
    cargo build --release --quiet --bin artifact-gateway
fi
exec python3 "$root/benches/bench.py" "$@"
