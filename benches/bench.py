#!/usr/bin/env python3
"""The end-to-end benchmark: artifact-gateway against nginx (sendfile on and off, and with TLS),
`rclone serve http`, MinIO itself (presigned URLs) and `dd conv=fsync`, over the same files, in
one run, on loopback.

Every scenario runs in interleaved rounds (round r serves the servers in a rotated order), so a
change of machine load hits every server alike; the table shows medians over the rounds, and
each ratio is the median of the per-round ratios (gateway / the other server in that round).
The server's CPU time (user + system, from /proc, every process of the server) and its peak
RSS (VmHWM, reset before every measurement through /proc/PID/clear_refs) are measured around
every single measurement.

Run it through `benches/bench.sh` (builds the release binary first). Needs nginx, rclone, wrk,
curl, openssl and MinIO: `benches/install.sh` installs them; this script installs nothing.
"""

import argparse
import datetime
import hashlib
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLK = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20
GIB = 1 << 30


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def die(msg):
    log(f"bench: {msg}")
    sys.exit(2)


# ---------------------------------------------------------------- machine state


def cpu_busy_fraction(seconds):
    """Fraction of all CPU time spent busy (not idle/iowait) over `seconds`."""

    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        return sum(v), idle

    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 0.0 if t1 == t0 else 1.0 - (i1 - i0) / (t1 - t0)


def idle_check(wait_s, threshold):
    """Waits up to `wait_s` for the machine to be idle; returns (idle?, description)."""
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + wait_s
    while True:
        busy = cpu_busy_fraction(3)
        load = os.getloadavg()
        idle = busy < threshold and load[0] < threshold * cores + 0.5
        desc = (
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {cores} cores, "
            f"{busy * 100:.0f}% of the CPU busy over 3 s"
        )
        if idle or time.monotonic() >= deadline:
            return idle, desc
        log(f"waiting for the machine to be idle: {desc}")
        time.sleep(10)


def machine_description():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // (1024 * 1024)
    except OSError:
        pass
    return f"{os.cpu_count()} × {model}, {mem} GiB RAM, Linux {platform.release()}"


# ---------------------------------------------------------------- processes


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK
    except OSError:
        return 0.0


def minor_faults(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[7])
    except OSError:
        return 0


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(url, proc, logfile, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        r = subprocess.run(
            ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", url],
            capture_output=True,
            text=True,
        )
        if r.stdout.strip() == "200":
            return
        time.sleep(0.1)
    tail = ""
    try:
        with open(logfile) as f:
            tail = "".join(f.readlines()[-20:])
    except OSError:
        pass
    die(f"no answer from {url}; log {logfile}:\n{tail}")


class Server:
    """A running server: its base URL and the processes whose CPU and RSS we count."""

    def __init__(self, name, base, pid, procs=None, tls=False, include_children=False):
        self.name = name
        self.base = base
        self.pid = pid
        self.procs = procs or []  # Popen objects we own (stopped at the end)
        self.tls = tls
        self.include_children = include_children

    def pids(self):
        return [self.pid] + (children(self.pid) if self.include_children else [])

    def cpu(self):
        return sum(cpu_seconds(p) for p in self.pids())

    def faults(self):
        return sum(minor_faults(p) for p in self.pids())

    def reset_peak(self):
        for p in self.pids():
            try:
                with open(f"/proc/{p}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass

    def peak_rss_mib(self):
        """Sum of the peak RSS of the server's processes (an upper bound of the joint peak)."""
        return sum(vm_hwm_kib(p) for p in self.pids()) / 1024


class Measure:
    """Counts a server's CPU time and peak RSS around one measurement."""

    def __init__(self, server):
        self.server = server

    def __enter__(self):
        if self.server is not None:
            self.server.reset_peak()
            self.cpu0 = self.server.cpu()
            self.faults0 = self.server.faults()
        return self

    def __exit__(self, *exc):
        if self.server is not None:
            self.cpu_s = self.server.cpu() - self.cpu0
            self.faults = self.server.faults() - self.faults0
            self.rss_mib = self.server.peak_rss_mib()
        return False


# ---------------------------------------------------------------- clients


def curl_args(server):
    # HTTP/1.1 on both sides: nginx here has no HTTP/2, and Flink's fetchers speak HTTP/1.1.
    return ["curl", "-sS", "--http1.1"] + (["-k"] if server.tls else [])


def downloads(server, path, size, n, url=None):
    """n concurrent GETs of one file; returns (MB/s aggregate, cpu-s/GiB, peak RSS MiB, wall s)."""
    url = url or server.base + path
    with Measure(server) as m:
        t0 = time.monotonic()
        procs = [
            subprocess.Popen(
                curl_args(server) + ["-o", "/dev/null", "-w", "%{http_code} %{size_download}", url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(n)
        ]
        results = [p.communicate() for p in procs]
        wall = time.monotonic() - t0
    for (out, err), p in zip(results, procs):
        code, got = (out.split() + ["", ""])[:2]
        if p.returncode != 0 or code != "200" or int(got or 0) != size:
            die(f"{server.name}: GET {url} failed: exit {p.returncode}, status {code}, "
                f"{got} of {size} bytes; {err.strip()}")
    total = n * size
    return {
        "MB/s": total / wall / 1e6,
        "cpu": m.cpu_s / (total / GIB) if m.server else None,
        "rss": m.rss_mib if m.server else None,
        "faults_per_mib": m.faults / (total / MIB) if m.server else None,
        "wall": wall,
    }


def small_files(server, path, seconds, threads, conns):
    url = server.base + path
    with Measure(server) as m:
        r = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", url],
            capture_output=True,
            text=True,
        )
    out = r.stdout
    if r.returncode != 0 or "Non-2xx" in out or "Requests/sec" not in out:
        die(f"{server.name}: wrk {url} failed or saw error statuses:\n{out}{r.stderr}")
    if "Socket errors" in out:
        log(f"bench: {server.name}: wrk saw socket errors: {re.search(r'Socket errors.*', out).group(0)}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99m.group(2)]
    total_req = rps * seconds
    return {
        "req/s": rps,
        "p99": float(p99m.group(1)) * scale,
        "cpu_us": m.cpu_s / total_req * 1e6 if total_req else None,
        "rss": m.rss_mib,
    }


def gateway_upload(server, token, src, size, sha, name):
    url = f"{server.base}/artifacts/default/{name}"
    subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-X", "DELETE", "-H", f"Authorization: Bearer {token}", url],
        check=False,
    )
    with Measure(server) as m:
        t0 = time.monotonic()
        r = subprocess.run(
            curl_args(server)
            + ["-o", "/dev/null", "-w", "%{http_code}", "-T", src,
               "-H", f"Authorization: Bearer {token}", "-H", f"X-Checksum-Sha256: {sha}", url],
            capture_output=True,
            text=True,
        )
        wall = time.monotonic() - t0
    if r.returncode != 0 or r.stdout.strip() not in ("200", "201", "204"):
        die(f"gateway upload failed: exit {r.returncode}, status {r.stdout}; {r.stderr}")
    subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-X", "DELETE", "-H", f"Authorization: Bearer {token}", url],
        check=False,
    )
    return {"MB/s": size / wall / 1e6, "cpu": m.cpu_s / (size / GIB), "rss": m.rss_mib}


def dd_write(src, dst, size):
    try:
        os.unlink(dst)
    except FileNotFoundError:
        pass
    t0 = time.monotonic()
    subprocess.run(
        ["dd", f"if={src}", f"of={dst}", "bs=4M", "conv=fsync", "status=none"], check=True
    )
    wall = time.monotonic() - t0
    os.unlink(dst)
    return {"MB/s": size / wall / 1e6}


# ---------------------------------------------------------------- S3 helpers


def s3_client(env):
    import boto3  # noqa: PLC0415  (only the S3 scenarios need it)
    from botocore.config import Config  # noqa: PLC0415

    return boto3.client(
        "s3",
        endpoint_url=env["AG_TEST_S3_ENDPOINT"],
        aws_access_key_id=env["AG_TEST_S3_ACCESS_KEY"],
        aws_secret_access_key=env["AG_TEST_S3_SECRET_KEY"],
        region_name=env.get("AG_TEST_S3_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}),
    )


_minio_last_read = [0.0]


def minio_sent_bytes(endpoint):
    """Bytes MinIO has sent in S3 API responses (its own Prometheus counter). MinIO recomputes
    the figure at most every 10 s, on the first read after that: reading no sooner than 11 s
    after the previous read gets a figure that includes everything before this call."""
    wait = _minio_last_read[0] + 11 - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    with urllib.request.urlopen(f"{endpoint}/minio/v2/metrics/cluster", timeout=10) as r:
        text = r.read().decode()
    _minio_last_read[0] = time.monotonic()
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith("minio_s3_traffic_sent_bytes"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    if not found:
        raise RuntimeError("MinIO's metrics have no minio_s3_traffic_sent_bytes")
    return total


def gateway_metric(base, series):
    """The value of one series (name with labels) on the gateway's /metrics, None if absent."""
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def gateway_backend_bytes(base, mount):
    """The gateway's own count of body bytes read from the mount's backend (None if it has none)."""
    return gateway_metric(base, f'artifact_gateway_backend_read_bytes_total{{mount="{mount}"}}')


def wait_published(base, mount, fills_before, timeout=30):
    """Waits until the cache has published one more complete entry than `fills_before` (the cold
    read's fill: its file fsynced and renamed), so the warm read that follows is a hit and not a
    join of a fill still being synced."""
    series = f'artifact_gateway_cache_fill_seconds_count{{mount="{mount}"}}'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = gateway_metric(base, series)
        if now is None or now > (fills_before or 0):
            return
        time.sleep(0.05)
    log(f"bench: the cache fill was not published within {timeout} s; the warm read may join it")


# ---------------------------------------------------------------- the table


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_num(x, digits=0):
    if x is None:
        return "—"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


class Results:
    def __init__(self):
        self.data = {}  # (scenario, server) -> list of dicts, one per round

    def add(self, scenario, server, value):
        self.data.setdefault((scenario, server), []).append(value)

    def get(self, scenario, server, key):
        rows = self.data.get((scenario, server))
        return med([r.get(key) for r in rows]) if rows else None

    def ratio(self, scenario, a, b, key, invert=False):
        ra, rb = self.data.get((scenario, a)), self.data.get((scenario, b))
        if not ra or not rb:
            return None
        rs = []
        for x, y in zip(ra, rb):
            if x.get(key) and y.get(key):
                rs.append(y[key] / x[key] if invert else x[key] / y[key])
        return med(rs)


def cell(res, scen, server, key, digits=0, ratio_to="gateway", invert=False, unit=""):
    v = res.get(scen, server, key)
    if v is None:
        return "—"
    s = fmt_num(v, digits) + unit
    if ratio_to and server != ratio_to:
        r = res.ratio(scen, ratio_to, server, key, invert)
        if r is not None:
            s += f" ({r:.2f}×)"
    return s


def cost(res, scen, server, per="cpu"):
    c = res.get(scen, server, per)
    r = res.get(scen, server, "rss")
    if c is None and r is None:
        return "—"
    cs = "—" if c is None else (f"{c:.0f} µs/req" if per == "cpu_us" else f"{c:.2f} s/GiB")
    rs = "—" if r is None else f"{r:.0f} MiB"
    return f"{cs} · {rs}"


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one round: proves the harness works")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; smoke 1)")
    ap.add_argument("--bin", default=os.environ.get("AG_BENCH_BIN", os.path.join(ROOT, "target/release/artifact-gateway")))
    ap.add_argument("--compare-bin", default=None,
                    help="a second gateway binary, measured as 'gateway-b' in the same interleaved rounds (A/B of a change)")
    ap.add_argument("--big-mib", type=int, default=None, help="size of the big file (default 1024; smoke 64)")
    ap.add_argument("--mid-mib", type=int, default=None, help="size of each concurrent download (default 256; smoke 16)")
    ap.add_argument("--servers", default=None,
                    help="comma-separated subset of gateway,gateway-b,nginx-sendfile-on,nginx-sendfile-off,rclone for the plain-HTTP scenarios")
    ap.add_argument("--no-s3", action="store_true", help="skip the MinIO scenarios")
    ap.add_argument("--idle-wait", type=float, default=120, help="seconds to wait for an idle machine (default 120)")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    ap.add_argument("--workdir", default=None, help="where the files live (default: a new directory under $TMPDIR)")
    ap.add_argument("--only", default=None, help="comma-separated scenario keys: big,conc,small,tls_big,tls_conc,upload,s3,s3_64")
    args = ap.parse_args()

    smoke = args.smoke
    rounds = args.rounds or (1 if smoke else 5)
    big = (args.big_mib or (64 if smoke else 1024)) * MIB
    mid = (args.mid_mib or (16 if smoke else 256)) * MIB
    conc = 4 if smoke else 16
    small = 4096
    small_s = 1 if smoke else 5
    s3_size = (16 if smoke else 256) * MIB
    s3_n = 8 if smoke else 64
    only = set(args.only.split(",")) if args.only else None
    want = lambda k: only is None or k in only  # noqa: E731

    missing = [t for t in ("nginx", "rclone", "wrk", "curl", "openssl", "dd")
               if not (shutil.which(t) or os.path.exists(f"/usr/sbin/{t}"))]
    if missing:
        die(f"missing {' '.join(missing)}: run benches/install.sh (Debian: apt-get install nginx rclone wrk curl openssl)")
    if not os.access(args.bin, os.X_OK):
        die(f"{args.bin} is missing: cargo build --release (benches/bench.sh does it)")
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    minio_start = os.path.join(ROOT, "tests/servers/minio/start.sh")
    use_s3 = not args.no_s3 and (want("s3") or want("s3_64"))
    if use_s3:
        try:
            import boto3  # noqa: F401, PLC0415
        except ImportError:
            die("Python boto3 is missing: run benches/install.sh (or pass --no-s3)")

    started = time.monotonic()
    log(f"bench: {'smoke' if smoke else 'full'} mode, {rounds} round(s)")
    idle, idle_desc = idle_check(args.idle_wait, 0.15)
    log(f"bench: machine {'IDLE' if idle else 'BUSY'}: {idle_desc}")

    work = args.workdir or tempfile.mkdtemp(prefix="ag-bench.")
    os.makedirs(work, exist_ok=True)
    # big + mid + the uploaded copy (or dd's) + the S3 source and MinIO's copies, plus slack.
    need = 2 * big + mid + (3 * s3_size + GIB if use_s3 else 0) + 512 * MIB
    free = shutil.disk_usage(work).free
    if free < need:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
        die(f"{work} has {free / GIB:.1f} GiB free; this run needs {need / GIB:.1f} GiB")
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    data = os.path.join(work, "data")
    os.makedirs(data, exist_ok=True)
    os.chmod(data, 0o755)
    owned = []  # Popen objects to stop
    pidfiles = []

    def stop_all():
        for p in owned:
            if p.poll() is None:
                p.terminate()
        for p in owned:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for pf in pidfiles:
            try:
                with open(pf) as f:
                    os.kill(int(f.read().strip()), 15)
            except (OSError, ValueError):
                pass
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    try:
        log(f"bench: writing test files into {data}")
        files = {"small.jar": small, "big.jar": big, "mid.jar": mid}
        for name, size in files.items():
            with open(os.path.join(data, name), "wb") as f:
                left = size
                while left:
                    n = min(left, 4 * MIB)
                    f.write(os.urandom(n))
                    left -= n
        big_path = os.path.join(data, "big.jar")
        h = hashlib.sha256()
        with open(big_path, "rb") as f:
            while chunk := f.read(4 * MIB):
                h.update(chunk)
        big_sha = h.hexdigest()
        upload_src = big_path  # dd writes its copy next to the gateway's upload, on the same disk

        cert = os.path.join(work, "cert.pem")
        key = os.path.join(work, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            check=True, capture_output=True,
        )
        os.chmod(key, 0o644)

        token = hashlib.sha256(os.urandom(16)).hexdigest()[:32]
        servers = {}

        def start_gateway(name, extra, tls=False, config=None):
            port = free_port()
            logf = os.path.join(work, f"{name}.log")
            cmd = [args.bin, "serve", "--listen", f"127.0.0.1:{port}"]
            cmd += ["--config", config] if config else ["--data", data]
            cmd += extra
            env = dict(os.environ, ARTIFACT_GATEWAY_TOKEN=token, RUST_LOG="warn")
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(logf, "w"), env=env)
            owned.append(p)
            scheme = "https" if tls else "http"
            base = f"{scheme}://127.0.0.1:{port}"
            wait_http(f"{base}/healthz", p, logf)
            return Server(name, base, p.pid, [p], tls=tls)

        servers["gateway"] = start_gateway("gateway", [])
        if args.compare_bin:
            main_bin = args.bin
            args.bin = args.compare_bin
            servers["gateway-b"] = start_gateway("gateway-b", [])
            args.bin = main_bin
        servers["gateway-tls"] = start_gateway("gateway-tls", ["--tls-cert", cert, "--tls-key", key], tls=True)

        ports = {k: free_port() for k in ("on", "off", "tls")}
        nconf = os.path.join(work, "nginx.conf")
        tmpd = os.path.join(work, "ngx")
        with open(nconf, "w") as f:
            f.write(f"""
worker_processes auto;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 100000;
  types {{ application/java-archive jar; }}
  client_body_temp_path {tmpd}/body; proxy_temp_path {tmpd}/proxy; fastcgi_temp_path {tmpd}/fcgi;
  uwsgi_temp_path {tmpd}/uwsgi; scgi_temp_path {tmpd}/scgi;
  server {{ listen 127.0.0.1:{ports['on']}; sendfile on; tcp_nopush on;
           location /artifacts/default/ {{ alias {data}/; }} }}
  server {{ listen 127.0.0.1:{ports['off']}; sendfile off;
           location /artifacts/default/ {{ alias {data}/; }} }}
  server {{ listen 127.0.0.1:{ports['tls']} ssl; sendfile off;
           ssl_certificate {cert}; ssl_certificate_key {key}; ssl_protocols TLSv1.3;
           location /artifacts/default/ {{ alias {data}/; }} }}
}}
""")
        os.makedirs(tmpd, exist_ok=True)
        ng = subprocess.Popen([nginx_bin, "-c", nconf, "-g", "daemon off;"],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "nginx.log"), "w"))
        owned.append(ng)
        for k, name in (("on", "nginx-sendfile-on"), ("off", "nginx-sendfile-off"), ("tls", "nginx-tls")):
            tls = k == "tls"
            base = f"{'https' if tls else 'http'}://127.0.0.1:{ports[k]}"
            wait_http(f"{base}/artifacts/default/small.jar", ng, os.path.join(work, "nginx-error.log"))
            servers[name] = Server(name, base, ng.pid, [ng], tls=tls, include_children=True)

        rport = free_port()
        rlog = os.path.join(work, "rclone.log")
        rc = subprocess.Popen(
            ["rclone", "serve", "http", data, "--addr", f"127.0.0.1:{rport}", "--baseurl", "/artifacts/default", "-q"],
            stdout=subprocess.DEVNULL, stderr=open(rlog, "w"))
        owned.append(rc)
        wait_http(f"http://127.0.0.1:{rport}/artifacts/default/small.jar", rc, rlog)
        servers["rclone"] = Server("rclone", f"http://127.0.0.1:{rport}", rc.pid, [rc])

        s3 = None
        s3_cache = False
        if use_s3:
            state = os.path.join(work, "minio")
            os.makedirs(state, exist_ok=True)
            env = dict(os.environ, MINIO_PROMETHEUS_AUTH_TYPE="public", AG_TEST_S3_BUCKET="bench")
            r = subprocess.run([minio_start, state], env=env, capture_output=True, text=True)
            if r.returncode != 0:
                die(f"MinIO did not start (run benches/install.sh?):\n{r.stdout}{r.stderr}")
            pidfiles.append(os.path.join(state, "minio.pid"))
            s3env = dict(line.split("=", 1) for line in open(os.path.join(state, "minio.env")).read().split())
            with open(os.path.join(state, "minio.pid")) as f:
                minio_pid = int(f.read().strip())
            client = s3_client(s3env)
            conf = os.path.join(work, "gateway-s3.toml")

            def write_s3_conf(cache, conf=conf, cache_dir="s3-cache"):
                with open(conf, "w") as f:
                    f.write(f"""
[[mounts]]
name = "s3"
url = "s3://{s3env['AG_TEST_S3_BUCKET']}/objects"
anonymous_read = true
[mounts.s3]
endpoint = "{s3env['AG_TEST_S3_ENDPOINT']}"
region = "{s3env.get('AG_TEST_S3_REGION', 'us-east-1')}"
access_key_id = {{ env = "AG_TEST_S3_ACCESS_KEY" }}
secret_access_key = {{ env = "AG_TEST_S3_SECRET_KEY" }}
{s3_cache_config(work, cache_dir) if cache else ""}
""")

            # A build without the read-through cache refuses the [mounts.cache] table: then the
            # S3 rows measure pass-through, and the table says so.
            write_s3_conf(True)
            probe = subprocess.Popen([args.bin, "serve", "--config", conf, "--listen", "127.0.0.1:0"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env=dict(os.environ, **s3env))
            try:
                _, err = probe.communicate(timeout=3)
            except subprocess.TimeoutExpired:
                probe.terminate()
                _, err = probe.communicate()
            s3_cache = "unknown field `cache`" not in err
            if not s3_cache:
                write_s3_conf(False)
            log(f"bench: S3 mount {'with' if s3_cache else 'WITHOUT'} the read-through cache")
            saved = dict(os.environ)
            os.environ.update(s3env)
            try:
                servers["gateway-s3"] = start_gateway("gateway-s3", [], config=conf)
                if args.compare_bin:
                    # Gateway B on the same MinIO, with its own cache directory.
                    conf_b = os.path.join(work, "gateway-b-s3.toml")
                    write_s3_conf(s3_cache, conf_b, "s3-cache-b")
                    main_bin = args.bin
                    args.bin = args.compare_bin
                    try:
                        servers["gateway-b-s3"] = start_gateway("gateway-b-s3", [], config=conf_b)
                    finally:
                        args.bin = main_bin
            finally:
                os.environ.clear()
                os.environ.update(saved)
            servers["minio"] = Server("minio", s3env["AG_TEST_S3_ENDPOINT"], minio_pid)
            s3_src = os.path.join(work, "s3-src.bin")
            with open(s3_src, "wb") as f:
                f.write(os.urandom(s3_size))
            s3 = {"env": s3env, "client": client, "src": s3_src, "bucket": s3env["AG_TEST_S3_BUCKET"]}

        res = Results()

        def rotate(names, r):
            k = r % len(names)
            return names[k:] + names[:k]

        plain = ["gateway", "nginx-sendfile-on", "nginx-sendfile-off", "rclone"]
        if args.compare_bin:
            plain.append("gateway-b")
        if args.servers:
            plain = [p for p in plain if p in args.servers.split(",")]
        tls_pair = ["gateway-tls", "nginx-tls"]
        for r in range(rounds):
            log(f"bench: round {r + 1}/{rounds} ({time.monotonic() - started:.0f} s so far)")
            if want("big"):
                for s in rotate(plain, r):
                    res.add("big", s, downloads(servers[s], "/artifacts/default/big.jar", big, 1))
            if want("conc"):
                for s in rotate(plain, r):
                    res.add("conc", s, downloads(servers[s], "/artifacts/default/mid.jar", mid, conc))
            if want("small"):
                for s in rotate(plain, r):
                    res.add("small", s, small_files(servers[s], "/artifacts/default/small.jar", small_s, 2, 32))
            if want("tls_big"):
                for s in rotate(tls_pair, r):
                    res.add("tls_big", s, downloads(servers[s], "/artifacts/default/big.jar", big, 1))
            if want("tls_conc"):
                for s in rotate(tls_pair, r):
                    res.add("tls_conc", s, downloads(servers[s], "/artifacts/default/mid.jar", mid, conc))
            if want("upload"):
                for s in rotate(["gateway", "dd"] + (["gateway-b"] if args.compare_bin else []), r):
                    if s.startswith("gateway"):
                        res.add("upload", s, gateway_upload(servers[s], token, upload_src, big, big_sha, "upload/big.jar"))
                    else:
                        res.add("upload", s, dd_write(upload_src, os.path.join(data, "dd-out.bin"), big))
            if s3 and want("s3"):
                key = f"cold-{r}.bin"
                s3["client"].upload_file(s3["src"], s3["bucket"], f"objects/{key}",
                                         Config=transfer_single_part())
                presigned = s3["client"].generate_presigned_url(
                    "get_object", Params={"Bucket": s3["bucket"], "Key": f"objects/{key}"}, ExpiresIn=3600)
                gw = servers["gateway-s3"]
                fills = gateway_metric(gw.base, 'artifact_gateway_cache_fill_seconds_count{mount="s3"}')
                # Cold must precede warm; the direct read goes first or last, alternating. The
                # local file of the same size (served by the plain gateway) follows the warm read:
                # the warm target compares the two at one size, so per-request costs weigh alike.
                # Warm and local alternate three times a round: one 256 MiB read is over in a tenth
                # of a second, and one sample a round moved their ratio from 0.84 to 0.96 between runs.
                pairs = ["warm", "local"] * 3
                order = ["direct", "cold"] + pairs if r % 2 else ["cold"] + pairs + ["direct"]
                if args.compare_bin:
                    fills_b = gateway_metric(servers["gateway-b-s3"].base,
                                             'artifact_gateway_cache_fill_seconds_count{mount="s3"}')
                    # B reads the same object, cold in its own cache; A and B take turns going first.
                    b = ["b-cold", "b-warm", "b-warm", "b-warm"]
                    order = b + order if r % 2 else order + b
                for what in order:
                    if what == "direct":
                        res.add("s3", "minio", downloads(servers["minio"], "", s3_size, 1, url=presigned))
                    elif what == "local":
                        if mid == s3_size:
                            res.add("s3", "gateway-local", downloads(servers["gateway"], "/artifacts/default/mid.jar", mid, 1))
                    elif what.startswith("b-"):
                        gwb = servers["gateway-b-s3"]
                        if what == "b-warm":
                            wait_published(gwb.base, "s3", fills_b)
                        res.add("s3", f"gateway-{what}", downloads(gwb, f"/artifacts/s3/{key}", s3_size, 1))
                    else:
                        if what == "warm":
                            wait_published(gw.base, "s3", fills)
                        res.add("s3", f"gateway-{what}", downloads(gw, f"/artifacts/s3/{key}", s3_size, 1))
                s3["client"].delete_object(Bucket=s3["bucket"], Key=f"objects/{key}")
            if s3 and want("s3_64"):
                key = f"herd-{r}.bin"
                s3["client"].upload_file(s3["src"], s3["bucket"], f"objects/{key}",
                                         Config=transfer_single_part())
                before = minio_sent_bytes(s3["env"]["AG_TEST_S3_ENDPOINT"])
                gw_before = gateway_backend_bytes(servers["gateway-s3"].base, "s3")
                v = downloads(servers["gateway-s3"], f"/artifacts/s3/{key}", s3_size, s3_n)
                v["backend"] = (minio_sent_bytes(s3["env"]["AG_TEST_S3_ENDPOINT"]) - before) / s3_size
                gw_after = gateway_backend_bytes(servers["gateway-s3"].base, "s3")
                if gw_before is not None and gw_after is not None:
                    v["gw_backend"] = (gw_after - gw_before) / s3_size
                s3["client"].delete_object(Bucket=s3["bucket"], Key=f"objects/{key}")
                res.add("s3_64", "gateway", v)

        elapsed = time.monotonic() - started
        idle_after, idle_after_desc = idle_check(0, 0.15)
        table = render(res, dict(locals(), s3_cache=locals().get('s3_cache')))
        print(table)
        if args.out:
            with open(args.out, "w") as f:
                f.write(table + "\n")
        log(f"bench: done in {elapsed:.0f} s")
    finally:
        stop_all()


def transfer_single_part():
    from boto3.s3.transfer import TransferConfig  # noqa: PLC0415

    # One PUT (no multipart): a plain-MD5 ETag, like most artifacts written by other tools.
    return TransferConfig(multipart_threshold=8 * GIB)


def s3_cache_config(work, name="s3-cache"):
    """The gateway's read-through disk cache for the S3 mount (one empty directory)."""
    d = os.path.join(work, name)
    return f'[mounts.cache]\ndir = "{d}"\nmax_size = "1 GiB"\n'


def render(res, v):
    mb = lambda x: f"{x // MIB} MiB" if x < GIB else f"{x // GIB} GiB"  # noqa: E731
    big, mid, conc, s3_size, s3_n = v["big"], v["mid"], v["conc"], v["s3_size"], v["s3_n"]
    ab = any(k[1].startswith("gateway-b") for k in res.data)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = []
    state = "idle" if v["idle"] else "BUSY (figures disturbed by other load)"
    lines.append(
        f"Measured {when} on {machine_description()}; loopback, files in the page cache; "
        f"{v['rounds']} interleaved round(s), medians; (×) = gateway ÷ that server, median of the "
        f"per-round ratios. Machine before the run: {state}, {v['idle_desc']}; after: {v['idle_after_desc']}."
        + (" SMOKE MODE: tiny sizes, not a measurement." if v["smoke"] else "")
    )
    lines.append("")
    head = ["scenario", "gateway", "nginx, sendfile on", "nginx, sendfile off (TLS rows: nginx TLS)",
            "rclone serve http", "reference"]
    plain = ["gateway", "nginx-sendfile-on", "nginx-sendfile-off", "rclone"]
    if ab:
        head.append(f"gateway B ({v['args'].compare_bin})")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    ncols = len(head) - 1

    def row(label, cells):
        cells = list(cells) + ["—"] * (ncols - len(cells))
        lines.append("| " + label + " | " + " | ".join(cells) + " |")

    def plain_row(label, scen, key, digits=0, invert=False, costkey=None):
        cells = [cell(res, scen, s, key, digits, invert=invert) for s in plain] + ["—"]
        if ab:
            cells.append(cell(res, scen, "gateway-b", key, digits, invert=invert))
        row(label, cells)

    def cost_row(label, scen, per="cpu"):
        cells = [cost(res, scen, s, per) for s in plain] + ["—"]
        if ab:
            cells.append(cost(res, scen, "gateway-b", per))
        row(label, cells)

    if ("big", "gateway") in res.data:
        plain_row(f"{mb(big)} download, one curl, MB/s", "big", "MB/s")
        cost_row("↳ server CPU per GiB · peak RSS", "big")
    if ("conc", "gateway") in res.data:
        plain_row(f"{conc} × {mb(mid)} concurrent, aggregate MB/s", "conc", "MB/s")
        cost_row("↳ server CPU per GiB · peak RSS", "conc")
    if ("small", "gateway") in res.data:
        plain_row("4 KiB file, wrk -t2 -c32, req/s", "small", "req/s")
        plain_row("↳ p99 latency, ms (lower is better)", "small", "p99", 2)
        cost_row("↳ server CPU per request · peak RSS", "small", "cpu_us")
    for scen, label in (("tls_big", f"TLS 1.3: {mb(big)} download, MB/s"),
                        ("tls_conc", f"TLS 1.3: {conc} × {mb(mid)} concurrent, MB/s")):
        if (scen, "gateway-tls") in res.data:
            row(label, [cell(res, scen, "gateway-tls", "MB/s"), "—",
                        cell_vs(res, scen, "gateway-tls", "nginx-tls", "MB/s")])
            row("↳ server CPU per GiB · peak RSS",
                [cost(res, scen, "gateway-tls"), "—", cost(res, scen, "nginx-tls")])
    if ("upload", "gateway") in res.data:
        dd = res.get("upload", "dd", "MB/s")
        ratio = res.ratio("upload", "gateway", "dd", "MB/s")
        cells = [cell(res, "upload", "gateway", "MB/s"), "—", "—", "—",
                 f"dd bs=4M conv=fsync: {fmt_num(dd)} (gateway {ratio:.2f}×)" if dd and ratio else "—"]
        if ab:
            rb = res.ratio("upload", "gateway-b", "dd", "MB/s")
            cells.append(f"{fmt_num(res.get('upload', 'gateway-b', 'MB/s'))} ({rb:.2f}× dd)" if rb else "—")
        row(f"{mb(big)} upload with a declared SHA-256, MB/s", cells)
        cells = [cost(res, "upload", "gateway"), "—", "—", "—", "—"]
        if ab:
            cells.append(cost(res, "upload", "gateway-b"))
        row("↳ server CPU per GiB · peak RSS", cells)
    cache = "with the read-through cache" if v.get("s3_cache") else "NO cache in this build: pass-through"
    if ("s3", "gateway-cold") in res.data:
        for what in ("cold", "warm"):
            c = cell_vs(res, "s3", f"gateway-{what}", "minio", "MB/s", label_other=False)
            if what == "warm":
                local = res.get("s3", "gateway-local", "MB/s")
                warm = res.get("s3", "gateway-warm", "MB/s")
                if local and warm:
                    c += f"; {warm / local:.2f}× a local {mb(s3_size)} file ({fmt_num(local)} MB/s, same rounds)"
            b_cells, b_cost = [], []
            if ab:
                b_cells = [cell(res, "s3", f"gateway-b-{what}", "MB/s", ratio_to=f"gateway-{what}")]
                b_cost = [cost(res, "s3", f"gateway-b-{what}")]
            row(f"S3 mount on MinIO ({cache}), {mb(s3_size)} download, {what}, MB/s",
                [c, "—", "—", "—",
                 f"MinIO presigned: {fmt_num(res.get('s3', 'minio', 'MB/s'))}" if what == "cold" else "—"]
                + b_cells)
            row("↳ server CPU per GiB · peak RSS",
                [cost(res, "s3", f"gateway-{what}"), "—", "—", "—",
                 f"MinIO: {cost(res, 's3', 'minio')}" if what == "cold" else "—"] + b_cost)
    if ("s3_64", "gateway") in res.data:
        gwb = res.get("s3_64", "gateway", "gw_backend")
        row(f"S3 mount ({cache}), {s3_n} concurrent cold downloads of one {mb(s3_size)} object: "
            "wall time · backend bytes read ÷ object size",
            [f"{fmt_num(res.get('s3_64', 'gateway', 'wall'), 2)} s · "
             f"{fmt_num(res.get('s3_64', 'gateway', 'backend'), 2)}× (MinIO's count)"
             + (f", {gwb:.2f}× (gateway's count)" if gwb is not None else "")])
        row("↳ server CPU per GiB served · peak RSS", [cost(res, "s3_64", "gateway")])
    lines.append("")
    lines.append(
        "CPU = user + system seconds of every process of that server (nginx: master and workers) while "
        "the measurement ran, divided by the GiB it served; peak RSS = VmHWM reset before each "
        "measurement (nginx: summed over its processes). Clients: curl --http1.1 (-k for TLS; both "
        "servers negotiate TLS 1.3 with a P-256 certificate), wrk; access logs off on every server. "
        "Backend bytes: MinIO's own minio_s3_traffic_sent_bytes counter."
    )
    lines.append("")
    lines += targets(res, v)
    return "\n".join(lines)


def targets(res, v):
    """The issue's targets, each with the figure of this run."""
    out = ["Targets:"]

    def t(label, value, goal, higher=True):
        if value is None:
            out.append(f"- {label}: not measured")
            return
        ok = value >= goal if higher else value <= goal
        out.append(f"- {label}: {value:.2f} ({'met' if ok else 'MISSED'}; target {'≥' if higher else '≤'} {goal})")

    for scen, name in (("big", "big-file"), ("conc", "concurrent")):
        t(f"{name} download ÷ nginx sendfile off", res.ratio(scen, "gateway", "nginx-sendfile-off", "MB/s"), 1.0)
        t(f"{name} download ÷ nginx sendfile on (stretch)", res.ratio(scen, "gateway", "nginx-sendfile-on", "MB/s"), 0.9)
        t(f"{name} download, server CPU-s per GiB", res.get(scen, "gateway", "cpu"), 0.40, higher=False)
    # The faster of the two nginx configurations on small files is the one to match.
    fast = max(("nginx-sendfile-on", "nginx-sendfile-off"), key=lambda n: res.get("small", n, "req/s") or 0)
    t(f"4 KiB req/s ÷ {fast}", res.ratio("small", "gateway", fast, "req/s"), 0.8)
    t(f"4 KiB p99 ÷ {fast}'s p99", res.ratio("small", "gateway", fast, "p99"), 2.0, higher=False)
    t("TLS big file ÷ nginx TLS", res.ratio("tls_big", "gateway-tls", "nginx-tls", "MB/s"), 1.0)
    t("TLS concurrent ÷ nginx TLS", res.ratio("tls_conc", "gateway-tls", "nginx-tls", "MB/s"), 1.0)
    rc = [res.ratio(s, "gateway", "rclone", k) for s, k in (("big", "MB/s"), ("conc", "MB/s"), ("small", "req/s"))]
    rc = [x for x in rc if x is not None]
    t("worst ratio to rclone serve http", min(rc) if rc else None, 5.0)
    t("S3 cold ÷ MinIO presigned", res.ratio("s3", "gateway-cold", "minio", "MB/s"), 0.9)
    local, warm = res.get("s3", "gateway-local", "MB/s"), res.get("s3", "gateway-warm", "MB/s")
    t(f"S3 warm ÷ a local {v['s3_size'] // MIB} MiB file (same rounds)", warm / local if local and warm else None, 0.9)
    t(f"{v['s3_n']} concurrent cold: backend bytes ÷ object size", res.get("s3_64", "gateway", "backend"), 1.05, higher=False)
    t("upload ÷ dd conv=fsync", res.ratio("upload", "gateway", "dd", "MB/s"), 0.6)
    rss = [r.get("rss") for (scen, srv), rows in res.data.items() if srv.startswith("gateway") for r in rows]
    rss = [x for x in rss if x is not None]
    t("gateway peak RSS, MiB, worst scenario", max(rss) if rss else None, 64, higher=False)
    return out


def cell_vs(res, scen, a, b, key, label_other=True):
    """Cell for server `a` in a row where `a` is compared with `b` (ratio a ÷ b); or b's value."""
    if label_other:
        v = res.get(scen, b, key)
        if v is None:
            return "—"
        r = res.ratio(scen, a, b, key)
        return fmt_num(v) + (f" (gateway {r:.2f}×)" if r else "")
    v = res.get(scen, a, key)
    if v is None:
        return "—"
    r = res.ratio(scen, a, b, key)
    return fmt_num(v) + (f" ({r:.2f}× MinIO)" if r else "")


if __name__ == "__main__":
    main()
