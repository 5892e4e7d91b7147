#!/usr/bin/env python3
"""Offline validation of deploy/: the rendered Helm chart and the Flink examples.

Called by tests/deploy/validate.sh after `helm template`. Checks, in order:

1. Schemas. Every Kubernetes object (chart output, the ConfigMaps and Secrets in deploy/flink, the
   pod templates inside FlinkDeployments, the operator pod pieces in operator-values.yaml) is
   validated with `kubernetes-validate --strict`. Every FlinkDeployment / FlinkSessionJob is
   validated with jsonschema against the v1beta1 openAPIV3Schema of the CRDs shipped in
   org.apache.flink:flink-kubernetes-operator-api, made strict the way `kubectl --validate=strict`
   is: an object schema that lists properties rejects unknown ones (a typo such as `jarUri` would
   otherwise be pruned silently by the API server).
2. Wiring. Things no schema knows: every file the gateway's config.toml or an init container's
   arguments name is really mounted from a volume that provides it; every local:// jarURI,
   pipeline.classpaths / pipeline.jars entry, script argument and subPath mount under the fetch
   directory is a file the fetch manifest downloads; every artifact URL is https, points at the
   chart's Service, is named by the generated certificate, ends in a versioned
   /<mount>/.../<version>/<file> path, and is readable with the token Secret the pods mount; the
   operator values trust the CA ConfigMap the chart publishes.

Exit status 0 when everything holds; 1 with one line per problem otherwise.
"""

from __future__ import annotations

import argparse
import copy
import os
import posixpath
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft7Validator

from report import finish

PROBLEMS: list[str] = []
# libyaml when PyYAML has it: the FlinkDeployment CRD is half a megabyte of YAML.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def problem(where: str, what: str) -> None:
    PROBLEMS.append(f"{where}: {what}")


def load_docs(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=YAML_LOADER) if d]


def ref(doc: dict) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{meta.get('name')}"


# ---------------------------------------------------------------------------------------------
# CRD schemas


def strict_schema(schema):
    """Copy of an openAPIV3Schema where objects with `properties` reject unknown keys, except
    where the schema preserves unknown fields."""
    if isinstance(schema, dict):
        out = {k: strict_schema(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict_schema(v) for v in schema]
    return schema


def crd_validators(jar: Path) -> dict[str, Draft7Validator]:
    validators = {}
    with zipfile.ZipFile(jar) as z:
        for kind, member in [
            ("FlinkDeployment", "META-INF/fabric8/flinkdeployments.flink.apache.org-v1.yml"),
            ("FlinkSessionJob", "META-INF/fabric8/flinksessionjobs.flink.apache.org-v1.yml"),
        ]:
            crd = yaml.load(z.read(member), Loader=YAML_LOADER)
            assert crd["spec"]["names"]["kind"] == kind, member
            versions = {v["name"]: v for v in crd["spec"]["versions"]}
            if "v1beta1" not in versions:
                raise SystemExit(f"{jar}: {member} has no v1beta1 version")
            schema = copy.deepcopy(versions["v1beta1"]["schema"]["openAPIV3Schema"])
            # The API server checks these itself; CRD schemas leave them out.
            string_map = {"type": "object", "additionalProperties": {"type": "string"}}
            schema.setdefault("properties", {}).update(
                {
                    "apiVersion": {"const": f"{crd['spec']['group']}/v1beta1"},
                    "kind": {"const": kind},
                    "metadata": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                            "namespace": {"type": "string"},
                            "labels": string_map,
                            "annotations": string_map,
                        },
                    },
                }
            )
            schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata", "spec"})
            schema = strict_schema(schema)
            Draft7Validator.check_schema(schema)
            validators[kind] = Draft7Validator(schema)
    return validators


def validate_custom_resource(where: str, doc: dict, validators: dict) -> None:
    kind = doc.get("kind")
    if doc.get("apiVersion") != "flink.apache.org/v1beta1":
        problem(where, f"{ref(doc)} uses apiVersion {doc.get('apiVersion')!r}, the CRDs serve flink.apache.org/v1beta1")
        return
    if kind not in validators:
        problem(where, f"{ref(doc)}: no CRD schema for kind {kind!r}")
        return
    for err in sorted(validators[kind].iter_errors(doc), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in err.absolute_path) or "(root)"
        problem(where, f"{ref(doc)}: {path}: {err.message}")


# ---------------------------------------------------------------------------------------------
# kubernetes-validate


def kubernetes_validate(files: list[Path], versions: list[str]) -> None:
    for version in versions:
        cmd = ["kubernetes-validate", "--strict", "--quiet", "-k", version, *map(str, files)]
        run = subprocess.run(cmd, capture_output=True, text=True)
        output = (run.stdout + run.stderr).strip()
        if run.returncode != 0:
            for line in output.splitlines() or [f"exit status {run.returncode}"]:
                problem(f"kubernetes-validate {version}", line)
        elif output:
            # Warnings (e.g. an unknown kind) would mean something went unvalidated.
            for line in output.splitlines():
                problem(f"kubernetes-validate {version}", f"unexpected output: {line}")
        else:
            print(f"kubernetes-validate --strict -k {version}: {len(files)} objects valid")


# ---------------------------------------------------------------------------------------------
# Volumes and files


class PodFiles:
    """What files a container of a pod can see through its volume mounts."""

    def __init__(self, where: str, pod_spec: dict, objects: dict[tuple[str, str], dict]):
        self.where = where
        self.volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
        self.objects = objects  # (kind, name) -> ConfigMap/Secret known to the installation

    def source_keys(self, kind: str, name: str) -> set[str] | None:
        obj = self.objects.get((kind, name))
        if obj is None:
            return None
        keys = set((obj.get("data") or {}).keys()) | set((obj.get("stringData") or {}).keys())
        return keys

    def files_of_volume(self, volume: dict) -> dict[str, tuple[str, str, str]] | None:
        """Relative path -> (kind, object name, key), or None for volumes without fixed files
        (emptyDir, PVC)."""
        sources = []
        if "configMap" in volume:
            sources.append(("ConfigMap", volume["configMap"]))
        elif "secret" in volume:
            s = volume["secret"]
            sources.append(("Secret", {"name": s.get("secretName"), "items": s.get("items")}))
        elif "projected" in volume:
            for src in volume["projected"].get("sources") or []:
                if "configMap" in src:
                    sources.append(("ConfigMap", src["configMap"]))
                elif "secret" in src:
                    sources.append(("Secret", src["secret"]))
        else:
            return None
        files = {}
        for kind, src in sources:
            name = src.get("name")
            items = src.get("items")
            keys = self.source_keys(kind, name)
            if items:
                for item in items:
                    if keys is not None and item["key"] not in keys:
                        problem(self.where, f"volume {volume['name']}: {kind} {name} has no key {item['key']!r}")
                    files[item["path"]] = (kind, name, item["key"])
            elif keys is None:
                problem(self.where, f"volume {volume['name']}: {kind} {name} is not defined anywhere in the installation, and without `items` its files are unknown")
            else:
                for k in keys:
                    files[k] = (kind, name, k)
        return files

    def resolve(self, container: dict, path: str, what: str) -> tuple[str, str] | None:
        """Checks that `path` is provided by a mount of `container`; returns (volume, relative)."""
        best = None
        for m in container.get("volumeMounts") or []:
            mp = m["mountPath"].rstrip("/")
            if path == mp or path.startswith(mp + "/"):
                if best is None or len(mp) > len(best[0]):
                    best = (mp, m)
        if best is None:
            problem(self.where, f"container {container['name']}: {what} {path} is not under any volume mount")
            return None
        mp, mount = best
        volume = self.volumes.get(mount["name"])
        if volume is None:
            problem(self.where, f"container {container['name']}: mount {mount['name']} has no volume")
            return None
        rel = posixpath.relpath(path, mp) if path != mp else ""
        if mount.get("subPath"):
            rel = posixpath.join(mount["subPath"], rel) if rel else mount["subPath"]
        files = self.files_of_volume(volume)
        if files is not None and rel not in files:
            problem(self.where, f"container {container['name']}: {what} {path} is not in volume {volume['name']} (it provides {sorted(files)})")
        return volume["name"], rel


# ---------------------------------------------------------------------------------------------
# The chart


def split_by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def check_chart_render(name: str, docs: list[dict], out: Path) -> dict:
    """Wiring inside one rendered chart; writes config.toml out; returns facts for later checks."""
    where = f"chart[{name}]"
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs if d.get("kind") in ("ConfigMap", "Secret")}
    deployments = split_by_kind(docs, "Deployment")
    services = split_by_kind(docs, "Service")
    if len(deployments) != 1 or len(services) != 1:
        problem(where, f"expected one Deployment and one Service, got {len(deployments)} and {len(services)}")
        return {}
    dep, svc = deployments[0], services[0]
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = container.get("args") or []
    if args[:2] != ["serve", "--config"]:
        problem(where, f"container args {args} do not start with serve --config")
        return {}
    config_path = args[2]
    cm_name = next(v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v and v["name"] == "config")
    toml_text = objects[("ConfigMap", cm_name)]["data"]["config.toml"]
    (out / f"config-{name}.toml").write_text(toml_text, encoding="utf-8")
    config = tomllib.loads(toml_text)
    # Token Secrets and an existing TLS Secret are created outside the chart: their volume
    # `items` say which keys they must hold.
    files = PodFiles(where, pod, objects)
    files.resolve(container, config_path, "config file")

    # Every file config.toml names is mounted.
    for t in config.get("tokens", []):
        secret = t["secret"]
        if "file" in secret:
            files.resolve(container, secret["file"], f"token {t['name']} file")
    for k in (config.get("signing") or {}).get("keys", []):
        if "file" in k["secret"]:
            files.resolve(container, k["secret"]["file"], f"signing key {k['id']} file")
    if "tls" in config:
        for key in ("cert_file", "key_file"):
            files.resolve(container, config["tls"][key], f"tls.{key}")

    # Ports: listen address, container port, probes and Service agree.
    listen_port = int(config["listen"].rsplit(":", 1)[1])
    ports = {p["name"]: p["containerPort"] for p in container.get("ports") or []}
    if listen_port not in ports.values():
        problem(where, f"config listens on {listen_port}, the container declares {ports}")
    for probe in ("livenessProbe", "readinessProbe"):
        http = (container.get(probe) or {}).get("httpGet")
        if not http:
            problem(where, f"no {probe}")
            continue
        if http["port"] not in ports:
            problem(where, f"{probe} port {http['port']!r} is not a container port")
        want_scheme = "HTTPS" if "tls" in config else "HTTP"
        if http.get("scheme", "HTTP") != want_scheme:
            problem(where, f"{probe} uses {http.get('scheme')} but the server speaks {want_scheme}")
    want_path = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path in want_path.items():
        if ((container.get(probe) or {}).get("httpGet") or {}).get("path") != path:
            problem(where, f"{probe} must ask {path}")
    for p in svc["spec"]["ports"]:
        if p["targetPort"] not in ports:
            problem(where, f"Service targetPort {p['targetPort']!r} is not a container port")
    selector = svc["spec"]["selector"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in selector.items()):
        problem(where, f"Service selector {selector} does not match pod labels {labels}")

    # Security basics the chart promises.
    psc, csc = pod.get("securityContext") or {}, container.get("securityContext") or {}
    if not psc.get("runAsNonRoot") or csc.get("allowPrivilegeEscalation") is not False or not csc.get("readOnlyRootFilesystem"):
        problem(where, "the gateway must run as non-root, without privilege escalation, on a read-only root filesystem")

    # file:// mounts live on a mounted volume (a read-only root cannot hold data); a read-only
    # mount may be on any volume (an NFS export, say).
    for m in config.get("mounts", []):
        if m["url"].startswith("file://"):
            path = urlsplit(m["url"]).path
            resolved = files.resolve(container, path, f"mount {m['name']} directory")
            if m.get("read_only"):
                continue
            if resolved and "persistentVolumeClaim" not in files.volumes[resolved[0]] and "emptyDir" not in files.volumes[resolved[0]]:
                problem(where, f"mount {m['name']} directory {path} is not on a writable data volume")

    facts = {
        "service": svc["metadata"]["name"],
        "namespace": NAMESPACE,
        "service_port": svc["spec"]["ports"][0]["port"],
        "tls": "tls" in config,
        "config": config,
        "image": container["image"],
        "token_secrets": {},
        "ca_configmap": None,
        "cert_names": set(),
    }
    tokens_volume = files.volumes.get("tokens")
    if tokens_volume:
        for src in tokens_volume["projected"]["sources"]:
            for item in src["secret"]["items"]:
                facts["token_secrets"][item["path"]] = (src["secret"]["name"], item["key"])
    for (kind, oname), obj in objects.items():
        if kind == "ConfigMap" and "ca.crt" in (obj.get("data") or {}):
            facts["ca_configmap"] = oname
        if kind == "Secret" and obj.get("type") == "kubernetes.io/tls" and "tls.crt" in (obj.get("data") or {}):
            facts["cert_names"] = certificate_dns_names(obj["data"]["tls.crt"], where)
    print(f"{where}: wiring checked ({len(config.get('mounts', []))} mounts, {len(config.get('tokens', []))} tokens, tls={'on' if facts['tls'] else 'off'})")
    return facts


def certificate_dns_names(b64_pem: str, where: str) -> set[str]:
    import base64

    pem = base64.b64decode(b64_pem)
    with tempfile.NamedTemporaryFile(suffix=".pem") as f:
        f.write(pem)
        f.flush()
        run = subprocess.run(
            ["openssl", "x509", "-in", f.name, "-noout", "-ext", "subjectAltName"], capture_output=True, text=True
        )
    if run.returncode != 0:
        problem(where, f"openssl cannot read the generated certificate: {run.stderr.strip()}")
        return set()
    return set(re.findall(r"DNS:([^,\s]+)", run.stdout))


# ---------------------------------------------------------------------------------------------
# Flink examples

# `artifact-gateway fetch` flags that take a value (short forms: -d, -m).
FETCH_FLAGS_WITH_VALUE = {
    "--dest", "-d", "--manifest", "-m", "--token-file", "--ca-file", "--parallel", "--sha256", "--name",
    "--deadline", "--progress", "--connect-timeout", "--read-timeout",
}
FETCH_FLAG_ALIASES = {"-d": "--dest", "-m": "--manifest"}
VERSIONED_PATH = re.compile(r"^/artifacts/(?P<mount>[A-Za-z0-9._-]+)/(?:[^/?#]+/)+(?P<version>\d+\.\d+[^/]*)/(?P<file>[^/]+)$")


def parse_fetch_args(args: list[str], where: str) -> dict[str, str]:
    flags, i = {}, 1
    while i < len(args):
        a = args[i]
        if "=" in a and a.split("=", 1)[0] in FETCH_FLAGS_WITH_VALUE:
            k, v = a.split("=", 1)
            flags[FETCH_FLAG_ALIASES.get(k, k)] = v
        elif a in FETCH_FLAGS_WITH_VALUE:
            if i + 1 >= len(args):
                problem(where, f"fetch flag {a} has no value")
                break
            flags[FETCH_FLAG_ALIASES.get(a, a)] = args[i + 1]
            i += 1
        elif a.startswith("-"):
            problem(where, f"fetch has no flag {a}")
        else:
            flags.setdefault("sources", []).append(a)
        i += 1
    return flags


def check_artifact_url(where: str, url: str, chart: dict, allowed_suffixes: tuple[str, ...]) -> str | None:
    """Returns the mount name of a valid gateway URL."""
    u = urlsplit(url)
    if u.scheme != "https":
        problem(where, f"{url}: the operator (1.15+) and the examples use https only")
    if u.query or u.fragment:
        problem(where, f"{url}: no query or fragment — the saved file is named after the last path segment")
    host = f"{chart['service']}.{chart['namespace']}.svc"
    if u.hostname != host:
        problem(where, f"{url}: host should be the chart's Service {host}")
    default_port = 443 if u.scheme == "https" else 80
    if (u.port or default_port) != chart["service_port"]:
        problem(where, f"{url}: port {u.port or default_port} but the Service listens on {chart['service_port']}")
    if chart["cert_names"] and u.hostname not in chart["cert_names"]:
        problem(where, f"{url}: the chart's generated certificate does not name {u.hostname} ({sorted(chart['cert_names'])})")
    m = VERSIONED_PATH.match(u.path)
    if not m:
        problem(where, f"{url}: expected /artifacts/<mount>/<name…>/<version>/<file>")
        return None
    if not m["file"].endswith(allowed_suffixes):
        problem(where, f"{url}: file name should end in one of {allowed_suffixes}")
    mounts = {mt["name"] for mt in chart["config"].get("mounts", [])}
    if m["mount"] not in mounts:
        problem(where, f"{url}: the chart has no mount {m['mount']!r} (it has {sorted(mounts)})")
    return m["mount"]


def check_token_secret(where: str, secret_name: str, key: str, mounts_used: set[str], chart: dict) -> None:
    """The Secret the pods mount is the one the gateway reads for a token that may read the
    mounts the URLs use."""
    matching = [n for n, (s, k) in chart["token_secrets"].items() if s == secret_name and k == key]
    if not matching:
        problem(where, f"Secret {secret_name} key {key} is not one the gateway chart reads a token from ({chart['token_secrets']})")
        return
    token = next(t for t in chart["config"]["tokens"] if t["name"] == matching[0])
    if "read" not in token["scopes"]:
        problem(where, f"token {token['name']} has no read scope")
    allowed = set(token.get("mounts", ["*"]))
    if "*" not in allowed and not mounts_used <= allowed:
        problem(where, f"token {token['name']} may read {sorted(allowed)}, the artifacts are on {sorted(mounts_used)}")
    if set(token["scopes"]) != {"read"}:
        problem(where, f"token {token['name']} that Flink uses should be read-only, has {token['scopes']}")


def effective_pod_templates(doc: dict) -> dict[str, dict]:
    """The JobManager and TaskManager pod templates: spec.podTemplate plus the role's own (lists
    concatenated, the way the examples rely on; they use only the shared template)."""
    base = (doc["spec"].get("podTemplate") or {}).get("spec") or {}
    out = {}
    for role in ("jobManager", "taskManager"):
        extra = ((doc["spec"].get(role) or {}).get("podTemplate") or {}).get("spec") or {}
        merged = copy.deepcopy(base)
        for key in ("initContainers", "containers", "volumes"):
            merged[key] = (merged.get(key) or []) + (extra.get(key) or [])
        out[role] = merged
    return out


def check_flink_deployment(where: str, doc: dict, objects: dict, chart: dict, pods_out: list[tuple[str, dict]]) -> None:
    spec = doc["spec"]
    if "job" not in spec:
        return  # a session cluster: nothing is fetched into it
    name = doc["metadata"]["name"]
    for role, pod in effective_pod_templates(doc).items():
        w = f"{where} {ref(doc)} {role}"
        pods_out.append((f"{name}-{role}", pod))
        fetchers = [c for c in pod.get("initContainers") or [] if (c.get("args") or [None])[0] == "fetch"]
        if len(fetchers) != 1:
            problem(w, f"expected one init container running `fetch`, found {len(fetchers)}")
            continue
        init = fetchers[0]
        if init.get("command"):
            problem(w, "the fetch init container must not override the image's entrypoint")
        if init.get("image") != chart["image"]:
            problem(w, f"init image {init.get('image')} differs from the chart's {chart['image']}")
        flags = parse_fetch_args(init["args"], w)
        for required in ("--dest", "--manifest", "--token-file", "--ca-file"):
            if required not in flags:
                problem(w, f"fetch needs {required}")
        if any(k not in flags for k in ("--dest", "--manifest", "--token-file", "--ca-file")):
            continue
        files = PodFiles(w, pod, objects)
        manifest_vol = files.resolve(init, flags["--manifest"], "--manifest")
        token_vol = files.resolve(init, flags["--token-file"], "--token-file")
        files.resolve(init, flags["--ca-file"], "--ca-file")
        dest = flags["--dest"].rstrip("/")
        dest_mount = next((m for m in init.get("volumeMounts") or [] if m["mountPath"].rstrip("/") == dest), None)
        if dest_mount is None or "emptyDir" not in files.volumes.get(dest_mount["name"], {}):
            problem(w, f"--dest {dest} must be exactly the mount path of an emptyDir")
            continue
        main = next((c for c in pod.get("containers") or [] if c["name"] == "flink-main-container"), None)
        if main is None:
            problem(w, "no container named flink-main-container (Flink only merges that name)")
            continue
        if not any(m["name"] == dest_mount["name"] and m["mountPath"].rstrip("/") == dest for m in main.get("volumeMounts") or []):
            problem(w, f"flink-main-container does not mount the fetch volume at {dest}, so local:// paths differ")

        # The manifest and what it downloads.
        fetched: set[str] = set()
        mounts_used: set[str] = set()
        if manifest_vol:
            vol = files.volumes[manifest_vol[0]]
            cm_name = (vol.get("configMap") or {}).get("name")
            cm = objects.get(("ConfigMap", cm_name))
            if cm is None:
                problem(w, f"manifest ConfigMap {cm_name} is not defined in the same file")
            elif manifest_vol[1] not in (cm.get("data") or {}):
                pass  # reported by resolve(): the volume does not provide that file
            else:
                manifest = yaml.safe_load(cm["data"][manifest_vol[1]])
                entries = manifest.get("artifacts") if isinstance(manifest, dict) else None
                if not entries:
                    problem(w, f"ConfigMap {cm_name}: the manifest needs a non-empty `artifacts` list")
                    entries = []
                for entry in entries:
                    unknown = set(entry) - {"source", "name", "sha256"}
                    if unknown:
                        problem(w, f"manifest entry has unknown keys {sorted(unknown)}")
                    src = entry.get("source", "")
                    mount = check_artifact_url(w, src, chart, (".jar", ".sql", ".py", ".zip", ".yaml", ".json", ".conf", ".properties"))
                    if mount:
                        mounts_used.add(mount)
                    fname = entry.get("name") or posixpath.basename(urlsplit(src).path)
                    if "/" in fname:
                        problem(w, f"manifest name {fname!r} must be a plain file name")
                    if "sha256" in entry and not re.fullmatch(r"[0-9a-f]{64}", str(entry["sha256"])):
                        problem(w, f"manifest sha256 of {fname} is not 64 lowercase hex digits")
                    if fname in fetched:
                        problem(w, f"manifest downloads {fname} twice")
                    fetched.add(fname)
        if token_vol:
            vol = files.volumes[token_vol[0]]
            if "secret" in vol:
                key = next((i["key"] for i in vol["secret"].get("items") or [] if i["path"] == token_vol[1]), token_vol[1])
                check_token_secret(w, vol["secret"]["secretName"], key, mounts_used, chart)
            else:
                problem(w, "the token must come from a Secret volume")

        # Everything Flink reads from the fetch directory is downloaded.
        def needs(path: str, what: str) -> None:
            if path.startswith(dest + "/"):
                rel = path[len(dest) + 1:]
                if rel not in fetched:
                    problem(w, f"{what} {path} is not downloaded by the manifest (it has {sorted(fetched)})")

        job = spec["job"]
        jar = job.get("jarURI", "")
        if not jar.startswith("local:///"):
            problem(w, f"application-mode jarURI {jar} should be local:// (the operator does not download it)")
        else:
            jar_path = jar[len("local://"):]
            if not jar_path.endswith(".jar"):
                problem(w, f"jarURI {jar} must name a .jar")
            needs(jar_path, "jarURI")
        conf = spec.get("flinkConfiguration") or {}
        # The operator's FlinkConfigBuilder overwrites these for application deployments: native
        # mode sets pipeline.jars to the jarURI alone, standalone mode sets pipeline.classpaths.
        if conf.get("pipeline.jars") and spec.get("mode", "native") == "native":
            problem(w, "pipeline.jars is overwritten with the jarURI alone in native mode: put the jar into "
                       "/opt/flink/lib (subPath mount) or pipeline.classpaths")
        if conf.get("pipeline.classpaths") and spec.get("mode") == "standalone":
            problem(w, "pipeline.classpaths is overwritten in standalone mode: put the jar into /opt/flink/lib "
                       "(subPath mount) or use native mode")
        for key in ("pipeline.classpaths", "pipeline.jars"):
            for entry in filter(None, str(conf.get(key, "")).split(";")):
                if not entry.startswith("file:///"):
                    problem(w, f"{key} entry {entry} should be a file:/// URL")
                needs(entry[len("file://"):], key)
        for arg in job.get("args") or []:
            needs(arg, "job argument")
        for m in main.get("volumeMounts") or []:
            if m["name"] == dest_mount["name"] and m.get("subPath"):
                if m["subPath"] not in fetched:
                    problem(w, f"subPath {m['subPath']} is not downloaded by the manifest")
                if not m["mountPath"].startswith(("/opt/flink/lib/", SEATUNNEL_HOME + "/")):
                    problem(w, f"subPath mount {m['mountPath']} is meant for /opt/flink/lib/ "
                               f"(or SeaTunnel's home {SEATUNNEL_HOME}/)")
        if job.get("entryClass") == SEATUNNEL_MAIN and jar.startswith("local:///"):
            check_seatunnel_home(w, posixpath.dirname(posixpath.dirname(jar[len("local://"):])), jar[len("local://"):],
                                 main, dest_mount["name"], fetched)
        if job.get("entryClass") == "org.apache.flink.client.python.PythonDriver":
            args = job.get("args") or []
            if "-py" not in args or args.index("-py") + 1 >= len(args):
                problem(w, "PythonDriver needs -py <file>")


SEATUNNEL_MAIN = "org.apache.seatunnel.core.starter.flink.SeaTunnelFlink"
SEATUNNEL_HOME = "/opt/seatunnel"
SEATUNNEL_STARTER = re.compile(r"^seatunnel-flink-1[35]-starter\.jar$")


def check_seatunnel_home(w: str, home: str, starter: str | None, main: dict, fetch_volume: str | None,
                         fetched: set[str] | None) -> None:
    """SeaTunnel's Flink starter takes its home from its own jar's grandparent directory and reads
    <home>/starter/seatunnel-flink-1X-starter.jar (shipped to the TaskManagers) and
    <home>/connectors/plugin-mapping.properties plus the connector jars it names. `starter` is the
    jar Flink runs (None for a session cluster, where it is the uploaded copy)."""
    mounts = {m["mountPath"]: m for m in main.get("volumeMounts") or []}
    if starter is not None and (posixpath.basename(posixpath.dirname(starter)) != "starter"
                                or not SEATUNNEL_STARTER.match(posixpath.basename(starter))):
        problem(w, f"SeaTunnel looks for its starter at <home>/starter/seatunnel-flink-15-starter.jar, "
                   f"<home> being the jarURI's grandparent; the jarURI is {starter}")
    for need, what in ((f"{home}/connectors/plugin-mapping.properties", "its connector map"),):
        m = mounts.get(need)
        if m is None:
            problem(w, f"SeaTunnel reads {what} at {need} (<home>/connectors/), which flink-main-container does not mount")
        elif fetch_volume is not None and fetched is not None and (m["name"] != fetch_volume or m.get("subPath") not in fetched):
            problem(w, f"{need} is not a file the manifest downloads")
    jars = [p for p in mounts if p.startswith(f"{home}/starter/") and SEATUNNEL_STARTER.match(posixpath.basename(p))]
    if not jars:
        problem(w, f"SeaTunnel ships <home>/starter/seatunnel-flink-15-starter.jar to the TaskManagers; "
                   f"flink-main-container does not mount it under {home}/starter/")


def check_seatunnel_session(w: str, session: dict) -> None:
    """A SeaTunnel session job: the uploaded starter's grandparent is web.upload.dir, which must be
    SeaTunnel's home on the session pods (writable, with the starter and the connectors in it)."""
    conf = session["spec"].get("flinkConfiguration") or {}
    home = str(conf.get("web.upload.dir", "")).rstrip("/")
    if not home:
        problem(w, "a SeaTunnel session job needs web.upload.dir on its session cluster: SeaTunnel's home is the "
                   "uploaded jar's grandparent, <web.upload.dir>/flink-web-upload/.. (otherwise a random /tmp directory)")
        return
    for role, pod in effective_pod_templates(session).items():
        main = next((c for c in pod.get("containers") or [] if c["name"] == "flink-main-container"), None)
        if main is None:
            problem(w, f"{role}: no flink-main-container")
            continue
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        home_mount = next((m for m in main.get("volumeMounts") or [] if m["mountPath"].rstrip("/") == home), None)
        if home_mount is None or "emptyDir" not in volumes.get(home_mount["name"], {}) or home_mount.get("readOnly"):
            problem(w, f"{role}: web.upload.dir {home} must be a writable emptyDir mount (the JobManager stores uploads there)")
        check_seatunnel_home(f"{w} {role}", home, None, main, None, None)


def check_session_job(where: str, doc: dict, docs_in_file: list[dict], chart: dict) -> None:
    w = f"{where} {ref(doc)}"
    spec = doc["spec"]
    target = spec.get("deploymentName")
    sessions = [d for d in docs_in_file if d.get("kind") == "FlinkDeployment" and d["metadata"]["name"] == target]
    if not sessions:
        problem(w, f"deploymentName {target} is not a FlinkDeployment in the same file")
    elif "job" in sessions[0]["spec"]:
        problem(w, f"{target} has a job: a session job needs a session cluster (no spec.job)")
    elif spec["job"].get("entryClass") == SEATUNNEL_MAIN:
        check_seatunnel_session(w, sessions[0])
    jar = spec["job"].get("jarURI", "")
    mount = check_artifact_url(w, jar, chart, (".jar",))
    conf = spec.get("flinkConfiguration") or {}
    if any("http.header" in k for k in conf):
        problem(w, "keep the bearer token out of the custom resource (operator-values.yaml holds it)")
    if mount and chart["ca_configmap"] is None and chart["tls"]:
        problem(w, "the chart publishes no CA ConfigMap for the operator to trust")


def flink_conf_lines(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(": ")
        if not sep:
            problem("operator-values.yaml", f"flink-conf line {line!r} is not `key: value`")
            continue
        out[key] = value
    return out


def check_operator_values(path: Path, chart: dict, pods_out: list[tuple[str, dict]]) -> None:
    where = path.name
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    conf = flink_conf_lines(values["defaultConfiguration"]["flink-conf.yaml"])
    schemes = conf.get("kubernetes.operator.user.artifacts.allowed-schemes", "")
    if "https" not in schemes.split(";"):
        problem(where, "allowed-schemes must include https")
    if "," in schemes:
        problem(where, "allowed-schemes is a list: separate entries with ';', not ','")
    if conf.get("kubernetes.operator.user.artifacts.disallow-restricted-hosts") != "false":
        problem(where, "an in-cluster gateway needs kubernetes.operator.user.artifacts.disallow-restricted-hosts: false")
    header = conf.get("kubernetes.operator.user.artifacts.http.header", "")
    if not re.fullmatch(r"Authorization:Bearer [^,:\s]+", header):
        problem(where, f"http.header should be `Authorization:Bearer <token>`, is {header!r}")

    init = values["operatorPod"]["initContainers"]
    volumes = values["operatorVolumes"]["data"]
    mounts = values["operatorVolumeMounts"]["data"]
    pod = {
        "initContainers": init,
        "containers": [{"name": "flink-kubernetes-operator", "image": "ghcr.io/apache/flink-kubernetes-operator", "volumeMounts": mounts}],
        "volumes": volumes,
    }
    pods_out.append(("flink-operator", pod))
    ca = next((v for v in volumes if "configMap" in v), None)
    if ca is None or ca["configMap"]["name"] != chart["ca_configmap"]:
        problem(where, f"the operator must mount the chart's CA ConfigMap {chart['ca_configmap']}")
    jvm = values["jvmArgs"]["operator"]
    store = re.search(r"-Djavax\.net\.ssl\.trustStore=(\S+)", jvm)
    script = " ".join(init[0].get("args") or [])
    if not store or store.group(1) not in script:
        problem(where, "jvmArgs.operator's trustStore must be the file the init container writes")
    else:
        files = PodFiles(where, pod, {})
        files.resolve(pod["containers"][0], store.group(1), "truststore")
        files.resolve(init[0], store.group(1), "truststore (init container)")
    for path_in_script in re.findall(r"-file (\S+)", script):
        PodFiles(where, pod, {}).resolve(init[0], path_in_script, "CA file")
    if "artifacts" not in " ".join(m["mountPath"] for m in mounts):
        problem(where, "operatorVolumeMounts replaces the chart's artifacts mount; keep /opt/flink/artifacts")


# ---------------------------------------------------------------------------------------------

NAMESPACE = "flink"


def main() -> int:
    global NAMESPACE
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--crd-jar", type=Path, required=True)
    ap.add_argument("--flink-dir", type=Path, required=True)
    ap.add_argument("--namespace", default="flink")
    ap.add_argument("--kube-versions", default="1.37.0,1.28.0")
    ap.add_argument("rendered", nargs="+", help="NAME=FILE of `helm template` output; the first is the default install")
    a = ap.parse_args()
    NAMESPACE = a.namespace
    a.out.mkdir(parents=True, exist_ok=True)
    k8s_dir = a.out / "k8s"
    k8s_dir.mkdir(exist_ok=True)
    for old in k8s_dir.glob("*.yaml"):
        old.unlink()
    to_validate: list[Path] = []

    def emit(tag: str, doc: dict) -> None:
        p = k8s_dir / f"{len(to_validate):03d}-{tag}.yaml"
        p.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        to_validate.append(p)

    # The chart, rendered with each values file.
    facts = {}
    for spec in a.rendered:
        name, _, file = spec.partition("=")
        docs = load_docs(Path(file))
        for d in docs:
            emit(f"chart-{name}-{d['kind'].lower()}", d)
        facts[name] = check_chart_render(name, docs, a.out)
    default = facts[a.rendered[0].partition("=")[0]]
    if not default:
        print("\n".join(PROBLEMS), file=sys.stderr)
        return 1

    # The Flink examples.
    validators = crd_validators(a.crd_jar)
    chart_default_docs = load_docs(Path(a.rendered[0].partition("=")[2]))
    installation = {(d["kind"], d["metadata"]["name"]): d for d in chart_default_docs if d.get("kind") in ("ConfigMap", "Secret")}
    flink_files = sorted(a.flink_dir.glob("*.yaml"))
    all_docs = {f: load_docs(f) for f in flink_files if f.name != "operator-values.yaml"}
    for docs in all_docs.values():
        for d in docs:
            if d.get("kind") in ("ConfigMap", "Secret"):
                installation[(d["kind"], d["metadata"]["name"])] = d
    pods: list[tuple[str, dict]] = []
    custom = 0
    for f, docs in all_docs.items():
        for d in docs:
            meta = d.get("metadata") or {}
            if meta.get("namespace") not in (None, NAMESPACE):
                problem(f.name, f"{ref(d)} is in namespace {meta.get('namespace')}, the examples use {NAMESPACE}")
            if d.get("apiVersion", "").startswith("flink.apache.org/"):
                custom += 1
                validate_custom_resource(f.name, d, validators)
                if d["kind"] == "FlinkDeployment":
                    check_flink_deployment(f.name, d, installation, default, pods)
                elif d["kind"] == "FlinkSessionJob":
                    check_session_job(f.name, d, docs, default)
            else:
                emit(f"flink-{f.stem}-{d['kind'].lower()}", d)
    print(f"CRD schema (strict): {custom} Flink custom resources checked against {a.crd_jar.name}")
    check_operator_values(a.flink_dir / "operator-values.yaml", default, pods)

    # Pod templates are partial Pods; validate them as Pods.
    for name, spec in pods:
        emit(f"pod-{name}", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})

    kubernetes_validate(to_validate, [v for v in a.kube_versions.split(",") if v])

    return finish(PROBLEMS, "problem(s)",
                  f"deploy/ is valid: {len(to_validate)} Kubernetes objects, {custom} Flink resources, "
                  f"{len(facts)} chart renders")


if __name__ == "__main__":
    sys.exit(main())
