#!/usr/bin/env bash
# Starts the Flink Kubernetes Operator the way its own image does: JVM_ARGS (the chart's
# jvmArgs.operator) and the log configuration, then FlinkOperator.
set -e
LOG_CONFIG="${LOG_CONFIG:--Dlog4j.configurationFile=$FLINK_CONF_DIR/log4j-operator.properties}"
# shellcheck disable=SC2086 # JVM_ARGS is a list of flags
exec java $JVM_ARGS $LOG_CONFIG -cp "/opt/flink-kubernetes-operator/lib/*" \
    org.apache.flink.kubernetes.operator.FlinkOperator "$@"
