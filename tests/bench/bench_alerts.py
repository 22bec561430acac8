#!/usr/bin/python3
"""Benchmark of alert delivery: 10,000 alerts start firing at once, in 100 groups routed to
10 webhook receivers with group_wait 0s, through tocsind and through Debian's
Alertmanager, one after the other in the same run. Everything runs on 127.0.0.1.

tocsind: one exec probe prints 10,000 bench_value series from a file with cat. The rule
`bench_value > 0` fires for each series once the file flips from 0 to 1. The condition time of
an alert is its startsAt, the evaluator's transition time.
Alertmanager: the same 10,000 alerts are posted to /api/v2/alerts in 10 requests of
1,000 (each request holds 10 whole groups); startsAt is the time of the first request.

Reported for each: time from the first condition to the last alert received, the
condition-to-delivery latency of each alert (p50, p99), the daemon's CPU during that
time (whole process, and for tocsind also its loop thread, which runs the evaluator and
the alerter) and its resident memory (peak and at the end).

Usage: bench_alerts.py TOCSIND [ALERTMANAGER]
Environment: BENCH_ALERTS_LOG=FILE runs tocsind with --log-level debug and copies its log
to FILE, for finding where the time goes (debug logging costs some time itself).
Prints one last line: bench-alerts: alerts=N tocsin_all_delivered_s=X
alertmanager_all_delivered_s=X p99_condition_to_delivery_s=X
"""

import datetime
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ALERTS = 10_000
GROUPS = 100
RECEIVERS = 10
TICKS = os.sysconf("SC_CLK_TCK")
DEADLINE_S = 120


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def labels_of(i):
    group = i % GROUPS
    return {"alert": f"a{i:05d}", "grp": f"g{group:02d}", "rcv": f"r{group % RECEIVERS}"}


def parse_time(text):
    """Unix seconds of an RFC 3339 time with any number of fraction digits."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if m is None:
        raise ValueError(f"startsAt {text!r} is not an RFC 3339 time")
    zone = "+00:00" if m[3] == "Z" else m[3]
    seconds = datetime.datetime.fromisoformat(m[1] + zone).timestamp()
    return seconds + (float(m[2]) if m[2] else 0.0)


class Recorder:
    """What the receivers got: the first receipt of each firing alert and its startsAt."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.first = {}
            self.requests = 0
            self.done = threading.Event()

    def add(self, received, body):
        alerts = json.loads(body)["alerts"]
        with self.lock:
            self.requests += 1
            for a in alerts:
                name = a["labels"].get("alert")
                if a["status"] == "firing" and name not in self.first:
                    self.first[name] = (received, parse_time(a["startsAt"]))
            if len(self.first) >= ALERTS:
                self.done.set()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        received = time.time()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.recorder.add(received, body)


class Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: a sender that opens more connections
    # at once would see SYNs dropped and retried a second later.
    request_queue_size = 128

    def __init__(self, recorder):
        super().__init__(("127.0.0.1", 0), Handler)
        self.recorder = recorder
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


def post(url, payload):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def bench_receivers(receivers, recorder):
    """The receivers alone: 100 webhook bodies of 100 alerts from 10 threads."""
    recorder.reset()
    start = time.time()
    bodies = []
    for g in range(GROUPS):
        alerts = [{"status": "firing", "labels": labels_of(i), "startsAt": iso(start)}
                  for i in range(g, ALERTS, GROUPS)]
        bodies.append((receivers[g % RECEIVERS].url(), {"alerts": alerts}))
    threads = [threading.Thread(target=lambda k=k: [post(u, b) for u, b in bodies[k::10]])
               for k in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.time() - start


def cpu(pid, tid=None):
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def memory_kib(pid):
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                values[line.split(":")[0]] = int(line.split()[1])
    return values["VmHWM"], values["VmRSS"]


def wait_http(url, proc, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench-alerts: {what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            time.sleep(0.2)
    sys.exit(f"bench-alerts: {what} did not answer {url} within {timeout} s")


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure(proc, recorder, started, threads_too=False):
    """Waits for every alert; returns the figures of the phase."""
    if not recorder.done.wait(DEADLINE_S):
        stop(proc)
        sys.exit(f"bench-alerts: only {len(recorder.first)} of {ALERTS} alerts arrived "
                 f"within {DEADLINE_S} s")
    with recorder.lock:
        first = dict(recorder.first)
        requests = recorder.requests
    latencies = sorted(r - c for r, c in first.values())
    condition = min(c for _, c in first.values())
    last = max(r for r, _ in first.values())
    return {
        "all_delivered_s": last - condition,
        "p50_s": latencies[len(latencies) // 2],
        "p99_s": latencies[int(len(latencies) * 0.99) - 1],
        "max_s": latencies[-1],
        "requests": requests,
        "cpu_s": cpu(proc.pid) - started["cpu"],
        "loop_cpu_s": cpu(proc.pid, proc.pid) - started["loop"] if threads_too else None,
        "rss_kib": memory_kib(proc.pid),
    }


def write_values(path, value):
    lines = ["# TYPE bench_value gauge"]
    for i in range(ALERTS):
        lb = labels_of(i)
        lines.append(f'bench_value{{alert="{lb["alert"]}",grp="{lb["grp"]}",'
                     f'rcv="{lb["rcv"]}"}} {value}')
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def bench_tocsind(tocsind, receivers, recorder, workdir):
    values = os.path.join(workdir, "values.prom")
    write_values(values, 0)
    rules = os.path.join(workdir, "rules.yml")
    with open(rules, "w") as f:
        f.write("groups:\n  - name: bench\n    interval: 1s\n    rules:\n"
                "      - alert: BenchAlert\n        expr: bench_value > 0\n"
                "        flapping: {high: 0}\n")
    routes = "".join(f"      - {{matchers: ['rcv=\"r{k}\"'], receiver: r{k}}}\n"
                     for k in range(RECEIVERS))
    hooks = "".join(f"    - {{name: r{k}, webhook: {{url: \"{r.url()}\"}}}}\n"
                    for k, r in enumerate(receivers))
    cfg = os.path.join(workdir, "tocsin.yml")
    with open(cfg, "w") as f:
        f.write(f"""retention: [10s:10m]
rule_files: ["{rules}"]
probes:
  - name: values
    type: exec
    interval: 10s
    timeout: 5s
    output: prometheus
    command: [/bin/cat, "{values}"]
alerting:
  receivers:
{hooks}  route:
    receiver: r0
    group_by: [grp]
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 1h
    routes:
{routes}""")
    port = free_port()
    log_path = os.path.join(workdir, "tocsind.log")
    keep_log = os.environ.get("BENCH_ALERTS_LOG")
    log = open(log_path, "w")
    proc = subprocess.Popen([tocsind, "--config", cfg, "--listen", f"127.0.0.1:{port}",
                             "--data-dir", os.path.join(workdir, "data"),
                             "--log-level", "debug" if keep_log else "notice"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, "tocsind")
        # Every series is stored and evaluated at 0 before the flip; the archive files are
        # created in the first seconds.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = wait_http(f"http://127.0.0.1:{port}/metrics", proc, "tocsind")
            if sum(line.startswith("bench_value{") for line in text.splitlines()) >= ALERTS:
                break
            time.sleep(1)
        time.sleep(5)
        recorder.reset()
        started = {"cpu": cpu(proc.pid), "loop": cpu(proc.pid, proc.pid)}
        flipped = time.time()
        write_values(values, 1)
        result = measure(proc, recorder, started, threads_too=True)
        result["from_flip_s"] = max(r for r, _ in recorder.first.values()) - flipped
        return result
    finally:
        stop(proc)
        log.close()
        if keep_log:
            shutil.copyfile(log_path, keep_log)


def bench_alertmanager(binary, receivers, recorder, workdir):
    routes = "".join(f"    - matchers: ['rcv=\"r{k}\"']\n      receiver: r{k}\n"
                     for k in range(RECEIVERS))
    hooks = "".join(f"  - name: r{k}\n    webhook_configs: [{{url: \"{r.url()}\"}}]\n"
                    for k, r in enumerate(receivers))
    cfg = os.path.join(workdir, "alertmanager.yml")
    with open(cfg, "w") as f:
        f.write(f"""route:
  receiver: r0
  group_by: [grp]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
{routes}receivers:
{hooks}""")
    port = free_port()
    log = open(os.path.join(workdir, "alertmanager.log"), "w")
    proc = subprocess.Popen([binary, f"--config.file={cfg}",
                             f"--storage.path={os.path.join(workdir, 'am-data')}",
                             f"--web.listen-address=127.0.0.1:{port}",
                             "--cluster.listen-address="],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/-/ready", proc, "alertmanager")
        recorder.reset()
        started = {"cpu": cpu(proc.pid)}
        now = time.time()
        batches = [[] for _ in range(10)]
        for i in range(ALERTS):
            lb = labels_of(i)
            batches[(i % GROUPS) // 10].append(
                {"labels": {"alertname": "BenchAlert", **lb}, "startsAt": iso(now),
                 "endsAt": iso(now + 3600)})
        for batch in batches:
            post(base + "/api/v2/alerts", batch)
        return measure(proc, recorder, started)
    finally:
        stop(proc)
        log.close()


def show(name, r):
    hwm, rss = r["rss_kib"]
    loop = f", loop thread {r['loop_cpu_s']:.2f} s" if r["loop_cpu_s"] is not None else ""
    print(f"{name}: all {ALERTS} delivered {r['all_delivered_s']:.3f} s after the first "
          f"condition in {r['requests']} requests; condition to delivery p50 "
          f"{r['p50_s']:.3f} s, p99 {r['p99_s']:.3f} s, max {r['max_s']:.3f} s; "
          f"CPU {r['cpu_s']:.2f} s{loop}; RSS peak {hwm / 1024:.1f} MiB, "
          f"at the end {rss / 1024:.1f} MiB")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    tocsind = sys.argv[1]
    am = sys.argv[2] if len(sys.argv) > 2 else "/usr/bin/prometheus-alertmanager"
    if not os.access(am, os.X_OK):
        sys.exit(f"bench-alerts: {am} not found; install Debian's prometheus-alertmanager")
    recorder = Recorder()
    receivers = [Receiver(recorder) for _ in range(RECEIVERS)]
    workdir = tempfile.mkdtemp(prefix="bench-alerts-")
    try:
        alone = bench_receivers(receivers, recorder)
        print(f"receivers alone: {ALERTS} alerts in {GROUPS} requests from 10 threads "
              f"in {alone:.3f} s")
        t = bench_tocsind(tocsind, receivers, recorder, workdir)
        show("tocsind", t)
        print(f"tocsind: from the file flip (probe run and evaluation included) to the "
              f"last alert: {t['from_flip_s']:.3f} s")
        a = bench_alertmanager(am, receivers, recorder, workdir)
        show("alertmanager", a)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"bench-alerts: alerts={ALERTS} tocsin_all_delivered_s={t['all_delivered_s']:.3f} "
          f"alertmanager_all_delivered_s={a['all_delivered_s']:.3f} "
          f"p99_condition_to_delivery_s={t['p99_s']:.3f}")


if __name__ == "__main__":
    main()
