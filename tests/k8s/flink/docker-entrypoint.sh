#!/usr/bin/env bash
# Entrypoint of the test Flink image. Flink's native Kubernetes mode runs
# `/docker-entrypoint.sh bash -c "kubernetes-jobmanager.sh kubernetes-application …"` (and the
# TaskManager alike), with its configuration mounted at /opt/flink/conf: run what it asks for.
set -e
export FLINK_HOME=/opt/flink
export PATH="$FLINK_HOME/bin:$PATH"
if [[ $# -eq 0 || "$1" == help ]]; then
    echo "usage: /docker-entrypoint.sh COMMAND… (as Flink's native Kubernetes mode calls it)"
    exit 0
fi
exec "$@"
