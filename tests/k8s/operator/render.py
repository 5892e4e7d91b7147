#!/usr/bin/env python3
"""Renders the Flink Kubernetes Operator's objects for the test cluster from
deploy/flink/operator-values.yaml, the way the operator's Helm chart (flink-kubernetes-operator)
uses those values — that chart is not on Maven Central or PyPI, so its few relevant templates are
mirrored here:

  defaultConfiguration  flink-conf.yaml = the chart's defaults + the values' block (append: true)
  operatorPod           initContainers (the truststore builder), run as the chart's uid 9999
  operatorVolumes       the pod's volumes (they replace the chart's default artifacts volume)
  operatorVolumeMounts  the operator container's mounts
  jvmArgs.operator      JVM_ARGS of the operator process

plus what the chart creates around them: the operator's ServiceAccount and RBAC, and the `flink`
ServiceAccount/Role in the watched namespace (the JobManagers create TaskManager pods).

usage: render.py VALUES_FILE TOKEN OPERATOR_IMAGE OPERATOR_NS WATCHED_NS > objects.yaml
"""
import sys

import yaml

values_file, token, image, op_ns, watched_ns = sys.argv[1:6]
values = yaml.safe_load(open(values_file))

# The chart's own conf/flink-conf.yaml keys that matter here (faster loops for a test cluster).
base_conf = f"""\
kubernetes.operator.watched.namespaces: {watched_ns}
kubernetes.operator.reconcile.interval: 5 s
kubernetes.operator.observer.progress-check.interval: 2 s
kubernetes.operator.observer.rest-ready.delay: 2 s
kubernetes.operator.resource.cleanup.timeout: 30 s
kubernetes.operator.health.probe.enabled: true
kubernetes.operator.health.probe.port: 8085
"""
default_conf = values["defaultConfiguration"]
assert default_conf.get("create") and default_conf.get("append"), "operator-values.yaml: expected create+append"
appended = default_conf["flink-conf.yaml"]
assert "REPLACE-WITH-THE-FLINK-TOKEN" in appended, "operator-values.yaml: the token placeholder moved"
flink_conf = base_conf + appended.replace("REPLACE-WITH-THE-FLINK-TOKEN", token)

log4j_operator = """\
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = ConsoleAppender
appender.console.name = ConsoleAppender
appender.console.type = CONSOLE
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss,SSS} %-5p %c{1} - %m%n
logger.fabric8.name = io.fabric8
logger.fabric8.level = WARN
logger.josdk.name = io.javaoperatorsdk
logger.josdk.level = WARN
"""
log4j_console = open(__file__.rsplit("/", 2)[0] + "/flink/log4j-console.properties").read()

labels = {"app.kubernetes.io/name": "flink-kubernetes-operator"}
volumes = list(values["operatorVolumes"]["data"]) + [
    {"name": "flink-operator-config-volume", "configMap": {"name": "flink-operator-config"}}
]
mounts = list(values["operatorVolumeMounts"]["data"]) + [
    {"name": "flink-operator-config-volume", "mountPath": "/opt/flink/conf"}
]
deployment = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "flink-kubernetes-operator", "namespace": op_ns, "labels": labels},
    "spec": {
        "replicas": 1,
        "strategy": {"type": "Recreate"},
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "serviceAccountName": "flink-operator",
                # The chart's podSecurityContext.
                "securityContext": {"runAsUser": 9999, "runAsGroup": 9999, "fsGroup": 9999},
                "terminationGracePeriodSeconds": 2,
                "initContainers": values["operatorPod"]["initContainers"],
                "containers": [
                    {
                        "name": "flink-kubernetes-operator",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "env": [
                            {"name": "OPERATOR_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                            {"name": "OPERATOR_NAME", "value": "flink-kubernetes-operator"},
                            {"name": "FLINK_CONF_DIR", "value": "/opt/flink/conf"},
                            {"name": "JVM_ARGS", "value": values["jvmArgs"]["operator"]},
                        ],
                        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
                        # The chart's operator health probe (kubernetes.operator.health.probe.*).
                        "ports": [{"name": "health-port", "containerPort": 8085}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": "health-port"}, "periodSeconds": 2},
                        "livenessProbe": {"httpGet": {"path": "/", "port": "health-port"},
                                          "initialDelaySeconds": 30, "periodSeconds": 10},
                        "volumeMounts": mounts,
                    }
                ],
                "volumes": volumes,
            },
        },
    },
}

rbac_rules = [
    {"apiGroups": [""], "resources": ["pods", "services", "events", "configmaps", "secrets", "nodes"], "verbs": ["*"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "deployments/finalizers", "replicasets"], "verbs": ["*"]},
    {"apiGroups": ["extensions", "networking.k8s.io"], "resources": ["ingresses"], "verbs": ["*"]},
    {
        "apiGroups": ["flink.apache.org"],
        "resources": [
            "flinkdeployments", "flinkdeployments/status", "flinkdeployments/finalizers",
            "flinksessionjobs", "flinksessionjobs/status", "flinksessionjobs/finalizers",
        ],
        "verbs": ["*"],
    },
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]},
]
objects = [
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "flink-operator", "namespace": op_ns}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
     "metadata": {"name": "flink-operator"}, "rules": rbac_rules},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
     "metadata": {"name": "flink-operator"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flink-operator"},
     "subjects": [{"kind": "ServiceAccount", "name": "flink-operator", "namespace": op_ns}]},
    # The `flink` ServiceAccount the examples name: JobManagers create and watch TaskManager pods.
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "flink", "namespace": watched_ns}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "flink", "namespace": watched_ns},
     "rules": [
         {"apiGroups": [""], "resources": ["pods", "configmaps", "services"], "verbs": ["*"]},
         {"apiGroups": ["apps"], "resources": ["deployments", "deployments/finalizers"], "verbs": ["*"]},
     ]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "flink", "namespace": watched_ns},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "flink"},
     "subjects": [{"kind": "ServiceAccount", "name": "flink", "namespace": watched_ns}]},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flink-operator-config", "namespace": op_ns},
     "data": {"flink-conf.yaml": flink_conf, "log4j-operator.properties": log4j_operator,
              "log4j-console.properties": log4j_console}},
    deployment,
]
yaml.safe_dump_all(objects, sys.stdout, sort_keys=False)
