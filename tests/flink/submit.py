#!/usr/bin/env python3
"""Submit a job jar to a Flink session cluster the way the Flink Kubernetes Operator does.

usage: submit.py [--timeout SECONDS] [--keep-jar] REST_URL JAR_PATH

Steps: multipart POST /jars/upload (field "jarfile"), POST /jars/<id>/run, then poll
GET /jobs/<jobid> until the job reaches a terminal state. The uploaded jar is deleted afterwards
(DELETE /jars/<id>), as the operator does, unless --keep-jar is given.

stdout: "<jobid> <STATE>" once the job is terminal.
exit:   0 FINISHED; 1 FAILED/CANCELED, timeout or an HTTP/connection error; 2 usage.
Standard library only.
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

TERMINAL_STATES = {"FINISHED", "FAILED", "CANCELED"}


class SubmitError(Exception):
    pass


def log(msg):
    print(f"submit.py: {msg}", file=sys.stderr, flush=True)


def request(method, url, body=None, headers=None, timeout=60):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = resp.read()
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace").strip()
        raise SubmitError(f"{method} {url} -> HTTP {e.code}: {detail[:2000]}") from None
    except (urllib.error.URLError, OSError) as e:
        raise SubmitError(f"{method} {url} failed: {e}") from None
    if not data:
        return {}
    try:
        return json.loads(data)
    except ValueError:
        raise SubmitError(f"{method} {url}: response is not JSON: {data[:500]!r}") from None


def upload_jar(rest, jar_path):
    name = os.path.basename(jar_path)
    with open(jar_path, "rb") as f:
        content = f.read()
    boundary = "----ag-" + uuid.uuid4().hex
    body = b"".join(
        [
            f"--{boundary}\r\n".encode(),
            f'Content-Disposition: form-data; name="jarfile"; filename="{name}"\r\n'.encode(),
            b"Content-Type: application/x-java-archive\r\n\r\n",
            content,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    resp = request(
        "POST",
        f"{rest}/jars/upload",
        body=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    if resp.get("status") != "success" or "filename" not in resp:
        raise SubmitError(f"upload of {jar_path} was not accepted: {resp}")
    # The JobManager answers with its stored path; the jar id is that file's name.
    return os.path.basename(resp["filename"])


def run_jar(rest, jar_id):
    resp = request(
        "POST",
        f"{rest}/jars/{urllib.parse.quote(jar_id)}/run",
        body=b"{}",
        headers={"Content-Type": "application/json"},
        timeout=120,
    )
    job_id = resp.get("jobid")
    if not job_id:
        raise SubmitError(f"run of jar {jar_id} returned no job id: {resp}")
    return job_id


def root_exception(rest, job_id):
    try:
        resp = request("GET", f"{rest}/jobs/{job_id}/exceptions", timeout=10)
    except SubmitError as e:
        return f"(could not read exceptions: {e})"
    root = resp.get("root-exception") or ""
    if not root:
        history = (resp.get("exceptionHistory") or {}).get("entries") or []
        if history:
            root = history[0].get("stacktrace") or history[0].get("exceptionName") or ""
    # Keep the exception chain ("X: msg" / "Caused by: Y: msg"), drop the stack frames.
    lines = [
        line.strip()
        for line in root.splitlines()
        if line.strip() and not line.lstrip().startswith(("at ", "..."))
    ]
    return " | ".join(lines)[:4000] or "(no exception recorded)"


def wait_for_job(rest, job_id, timeout):
    deadline = time.monotonic() + timeout
    state = "UNKNOWN"
    while True:
        try:
            state = request("GET", f"{rest}/jobs/{job_id}", timeout=10).get("state", "UNKNOWN")
        except SubmitError as e:
            # Right after /run the job may not be visible yet; keep polling until the deadline.
            log(f"polling: {e}")
        if state in TERMINAL_STATES:
            return state
        if time.monotonic() >= deadline:
            raise SubmitError(
                f"job {job_id} did not finish within {timeout:.0f}s (last state {state})"
            )
        time.sleep(0.5)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rest_url", help="e.g. http://127.0.0.1:8081 (AG_TEST_FLINK_REST)")
    parser.add_argument("jar_path", help="job jar to upload; its name must end in .jar")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for a terminal state (default 120)")
    parser.add_argument("--keep-jar", action="store_true",
                        help="leave the uploaded jar on the JobManager")
    args = parser.parse_args(argv)

    rest = args.rest_url.rstrip("/")
    if not os.path.isfile(args.jar_path):
        log(f"no such file: {args.jar_path}")
        return 2

    jar_id = None
    try:
        jar_id = upload_jar(rest, args.jar_path)
        log(f"uploaded {args.jar_path} as jar {jar_id}")
        job_id = run_jar(rest, jar_id)
        log(f"started job {job_id}")
        state = wait_for_job(rest, job_id, args.timeout)
        print(f"{job_id} {state}", flush=True)
        if state != "FINISHED":
            log(f"job {job_id} ended {state}: {root_exception(rest, job_id)}")
            return 1
        return 0
    except SubmitError as e:
        log(str(e))
        return 1
    finally:
        if jar_id and not args.keep_jar:
            try:
                request("DELETE", f"{rest}/jars/{urllib.parse.quote(jar_id)}", timeout=10)
            except SubmitError as e:
                log(f"could not delete uploaded jar {jar_id}: {e}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
