#!/usr/bin/env python3
"""Proves validate_manifests.py is not vacuous: each case copies deploy/flink, breaks one thing
the way a person editing the examples might, and requires the validator to fail with a message
naming that problem. Run by tests/deploy/validate.sh after the real validation passed.

usage: mutants.py --out DIR --crd-jar JAR --flink-dir DIR --namespace NS NAME=RENDERED_CHART
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from report import finish

HERE = Path(__file__).resolve().parent

# (case, file, text to replace, replacement, expected message fragment, needs kubernetes-validate)
CASES = [
    ("misspelt CRD field", "application-jar.yaml",
     "    jarURI: local:///opt/flink/artifacts/wordcount.jar", "    jarUri: local:///opt/flink/artifacts/wordcount.jar",
     "'jarUri' was unexpected", False),
    ("wrong value type in the CRD", "session-job.yaml",
     "    parallelism: 2", "    parallelism: two", "'two' is not of type 'integer'", False),
    ("jarURI names a file the manifest does not fetch", "application-jar.yaml",
     "jarURI: local:///opt/flink/artifacts/wordcount.jar", "jarURI: local:///opt/flink/artifacts/word-count.jar",
     "jarURI /opt/flink/artifacts/word-count.jar is not downloaded", False),
    ("classpath entry not fetched", "application-jar.yaml",
     "pipeline.classpaths: file:///opt/flink/artifacts/string-udfs.jar",
     "pipeline.classpaths: file:///opt/flink/artifacts/udfs.jar", "pipeline.classpaths /opt/flink/artifacts/udfs.jar", False),
    ("SQL script argument not fetched", "application-sql.yaml",
     'args: ["/opt/flink/artifacts/orders-etl.sql"]', 'args: ["/opt/flink/artifacts/orders.sql"]',
     "job argument /opt/flink/artifacts/orders.sql", False),
    ("connector in pipeline.jars (native mode overwrites it)", "application-python.yaml",
     '    taskmanager.numberOfTaskSlots: "2"\n',
     '    taskmanager.numberOfTaskSlots: "2"\n    pipeline.jars: file:///opt/flink/artifacts/job.py\n',
     "pipeline.jars is overwritten", False),
    ("standalone mode drops pipeline.classpaths", "application-jar.yaml",
     "  serviceAccount: flink\n", "  serviceAccount: flink\n  mode: standalone\n",
     "pipeline.classpaths is overwritten in standalone mode", False),
    ("plain http artifact URL", "application-python.yaml",
     "- source: https://artifact-gateway.flink.svc/artifacts/jobs/clickstream/0.4.0/job.py",
     "- source: http://artifact-gateway.flink.svc/artifacts/jobs/clickstream/0.4.0/job.py", "https only", False),
    ("version missing from the path", "application-jar.yaml",
     "artifacts/jobs/wordcount/1.0.0/wordcount.jar\n        name: wordcount.jar",
     "artifacts/jobs/wordcount.jar\n        name: wordcount.jar", "expected /artifacts/<mount>", False),
    ("wrong gateway host", "session-job.yaml",
     "jarURI: https://artifact-gateway.flink.svc/", "jarURI: https://artifact-gateway.default.svc/",
     "host should be the chart's Service", False),
    ("query string in a session jarURI", "session-job.yaml",
     "jarURI: https://artifact-gateway.flink.svc/artifacts/jobs/wordcount/1.0.0/wordcount.jar",
     "jarURI: https://artifact-gateway.flink.svc/artifacts/jobs/wordcount/wordcount.jar?version=1.0.0", "no query", False),
    ("token Secret the gateway does not read", "application-sql.yaml",
     "secretName: artifact-gateway-flink-token", "secretName: flink-token",
     "not one the gateway chart reads a token from", False),
    ("token file path not mounted", "application-jar.yaml",
     "- /etc/artifact-gateway/token/token", "- /etc/artifact-gateway/tokens/token",
     "--token-file /etc/artifact-gateway/tokens/token is not under any volume mount", False),
    ("manifest ConfigMap key mismatch", "application-python.yaml",
     "  artifacts.yaml: |", "  manifest.yaml: |", "is not in volume artifact-manifest", False),
    ("fetch volume not shared with Flink", "application-jar.yaml",
     "        - name: flink-main-container\n          volumeMounts:\n            - name: artifacts\n              mountPath: /opt/flink/artifacts",
     "        - name: flink-main-container\n          volumeMounts:\n            - name: artifacts\n              mountPath: /opt/flink/usrlib",
     "does not mount the fetch volume", False),
    ("main container renamed", "application-sql.yaml",
     "- name: flink-main-container", "- name: flink", "flink-main-container", False),
    ("unknown fetch flag", "application-python.yaml",
     "            - --ca-file\n", "            - --cacert\n", "fetch has no flag --cacert", False),
    ("restricted hosts left on", "operator-values.yaml",
     "kubernetes.operator.user.artifacts.disallow-restricted-hosts: false",
     "kubernetes.operator.user.artifacts.disallow-restricted-hosts: true", "disallow-restricted-hosts: false", False),
    ("comma-separated scheme list", "operator-values.yaml",
     "allowed-schemes: https", "allowed-schemes: https,http", "not ','", False),
    ("truststore path the init container does not write", "operator-values.yaml",
     "-Djavax.net.ssl.trustStore=/opt/flink/truststore/truststore.p12", "-Djavax.net.ssl.trustStore=/opt/flink/truststore.p12",
     "trustStore must be the file the init container writes", False),
    ("SeaTunnel starter outside <home>/starter/", "application-seatunnel.yaml",
     "jarURI: local:///opt/seatunnel/starter/seatunnel-flink-15-starter.jar",
     "jarURI: local:///opt/flink/artifacts/seatunnel-flink-15-starter.jar", "SeaTunnel looks for its starter", False),
    ("SeaTunnel connector map not mounted", "application-seatunnel.yaml",
     "              mountPath: /opt/seatunnel/connectors/plugin-mapping.properties",
     "              mountPath: /opt/seatunnel/plugin-mapping.properties", "SeaTunnel reads its connector map", False),
    ("SeaTunnel session cluster without web.upload.dir", "session-seatunnel.yaml",
     "    web.upload.dir: /opt/seatunnel\n", "", "needs web.upload.dir", False),
    ("invalid field in a pod template (Kubernetes schema)", "application-jar.yaml",
     "            sizeLimit: 1Gi", "            sizeLimit: 1Gi\n            size: 1Gi", "kubernetes-validate", True),
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--crd-jar", required=True)
    ap.add_argument("--flink-dir", type=Path, required=True)
    ap.add_argument("--namespace", required=True)
    ap.add_argument("rendered")
    a = ap.parse_args()
    failures = []
    for case, file, old, new, expect, needs_k8s in CASES:
        work = a.out / "mutants" / case.replace(" ", "-")
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(a.flink_dir, work / "flink")
        target = work / "flink" / file
        text = target.read_text(encoding="utf-8")
        if text.count(old) != 1:
            failures.append(f"{case}: the text to break occurs {text.count(old)} times in {file}, not once; update tests/deploy/mutants.py")
            continue
        target.write_text(text.replace(old, new, 1), encoding="utf-8")
        run = subprocess.run(
            [sys.executable, str(HERE / "validate_manifests.py"), "--out", str(work / "out"), "--crd-jar", a.crd_jar,
             "--flink-dir", str(work / "flink"), "--namespace", a.namespace,
             "--kube-versions", "1.37.0" if needs_k8s else "", a.rendered],
            capture_output=True, text=True,
        )
        output = run.stdout + run.stderr
        if run.returncode == 0:
            failures.append(f"{case}: the validator accepted it")
        elif expect not in output:
            failures.append(f"{case}: rejected, but without {expect!r}:\n{output}")
        else:
            print(f"caught: {case}")
    return finish(failures, "mutant(s) not caught as expected",
                  f"all {len(CASES)} broken variants were rejected")


if __name__ == "__main__":
    sys.exit(main())
