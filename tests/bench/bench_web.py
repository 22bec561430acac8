#!/usr/bin/env python3
"""HTTP server and /metrics benchmark of tocsind (make bench-web; not part of the tests).

Two phases, each with its own tocsind on 127.0.0.1:

1. Load: tocsind runs 150 http and 150 tcp probes at a 1 s interval against a local nginx
   (Debian nginx-light, one worker, a new connection per request) and 60 rules in 3
   groups at a 10 s interval. After a warm-up, the loop lag metrics are read at idle
   (tocsin_loop_lag_p99_seconds and _max_seconds cover the last minute of 250 ms lag
   timers). Then wrk (2 threads, WEB_CONNECTIONS connections, WEB_SECONDS each) loads
   /metrics, /api/v1/alerts and the dashboard (/) one after the other, and the lag
   metrics are read after each run. A reading covers the run and the 30 s before it.
   Errors are wrk's non-2xx/3xx responses plus its socket errors (connect, read, write,
   timeout). The run fails with any error.
2. 100,000 series: 5 exec probes (interval 10 min) print 20,000 series each from files
   with cat, in the Prometheus text format. There are 100 metric families of 1,000
   series with two labels. Half of the families are integer counters, half are gauges
   with three decimals.
   Their names are chosen so that each runs once in the first 10 s. Once they have run and the archive writer's queue is empty, the script fetches
   /metrics SCRAPES times in a row through the real HTTP handler and reads tocsind's CPU
   time (utime + stime of /proc/PID/stat, all threads) before and after. It fails the
   measurement when a probe ran again during the scrapes. Then Debian's
   prometheus-node-exporter (default collectors, on 127.0.0.1) is scraped SCRAPES times
   the same way, and its CPU time per scrape is divided by the series in its output.

The last line is:
  bench-web: metrics_100k_ms=X node_exporter_us_per_series=X api_rps=N errors=N
where metrics_100k_ms is tocsind's CPU time per scrape of 100,000 series, api_rps the
requests per second of /api/v1/alerts, and errors the sum over the three wrk runs.

usage: bench_web.py PATH/TO/tocsind
  WEB_SECONDS (default 30), WEB_CONNECTIONS (default 4), WEB_SCRAPES (default 30)
"""

import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECONDS = int(os.environ.get("WEB_SECONDS", "30"))
CONNECTIONS = int(os.environ.get("WEB_CONNECTIONS", "4"))
SCRAPES = int(os.environ.get("WEB_SCRAPES", "30"))
HTTP_PROBES, TCP_PROBES = 150, 150
FAMILIES, SERIES_PER_FAMILY = 100, 1000
# The exec probe takes at most 20,000 samples per run, so 5 probes print 20,000 each.
SERIES_PROBES, SERIES_INTERVAL_S, SERIES_FIRST_RUN_S = 5, 600, 10
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
CLOCK_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_http(url, proc, what, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fetch(url)
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit(f"bench-web: {what} did not answer on {url}")
            time.sleep(0.2)


def cpu_s(pid, tid=None):
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * CLOCK_TICK_S


def metric(text, name, **labels):
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        rest = line[len(name):]
        if rest[0] not in " {":
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_nginx(workdir, port):
    conf = os.path.join(workdir, "nginx.conf")
    temp = "\n".join(f"    {k}_temp_path {workdir}/nginx-{k};"
                     for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    with open(conf, "w") as f:
        f.write(f"""daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_timeout 0;
{temp}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
""")
    proc = subprocess.Popen(["/usr/sbin/nginx", "-c", conf, "-p", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return proc
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                sys.exit(f"bench-web: nginx did not start; see {workdir}/nginx-error.log")
            time.sleep(0.1)


def start_tocsind(tocsind, workdir, name, config_lines):
    config = os.path.join(workdir, f"{name}.yml")
    with open(config, "w") as f:
        f.write("\n".join(config_lines) + "\n")
    port = free_port()
    log = open(os.path.join(workdir, f"{name}.log"), "w")
    proc = subprocess.Popen([tocsind, "--config", config, "--listen", f"127.0.0.1:{port}",
                             "--data-dir", os.path.join(workdir, f"{name}-data"),
                             "--log-level", "notice"], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", proc, "tocsind")
    return proc, url


def load_config(workdir, nginx_port):
    rules = os.path.join(workdir, "rules.yml")
    lines = ["groups:"]
    for g in range(3):
        lines += [f"  - name: web-{g}", "    interval: 10s", "    rules:"]
        for r in range(20):
            i = g * 20 + r
            probe = f"http-{i:03d}" if i % 2 == 0 else f"tcp-{i:03d}"
            if r % 4 == 0:
                lines += [f"      - alert: Down{i}",
                          f"        expr: probe_success{{probe=\"{probe}\"}} == 0"]
            elif r % 4 == 1:
                lines += [f"      - alert: Slow{i}", "        threshold:",
                          f"          expr: probe_duration_seconds{{probe=\"{probe}\"}}",
                          "          warn: 0.5", "          crit: 1"]
            elif r % 4 == 2:
                lines += [f"      - record: web:duration:max1m_{i}",
                          "        expr: max_over_time("
                          f"probe_duration_seconds{{probe=\"{probe}\"}}[1m])"]
            else:
                # Always true, so /api/v1/alerts has firing alerts to render.
                lines += [f"      - alert: Served{i}",
                          f"        expr: probe_success{{probe=\"{probe}\"}} >= 0"]
    with open(rules, "w") as f:
        f.write("\n".join(lines) + "\n")
    config = ["retention: [10s:10m]", f'rule_files: ["{rules}"]', "probes:"]
    for i in range(HTTP_PROBES):
        config += [f"  - name: http-{2 * i:03d}", "    type: http", "    interval: 1s",
                   "    timeout: 1s", f"    url: http://127.0.0.1:{nginx_port}/p{i}"]
    for i in range(TCP_PROBES):
        config += [f"  - name: tcp-{2 * i + 1:03d}", "    type: tcp", "    interval: 1s",
                   "    timeout: 1s", f"    target: 127.0.0.1:{nginx_port}"]
    return config


def parse_duration_us(text):
    value, unit = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6}[unit]


def run_wrk(url):
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
              "requests": int(re.search(r"(\d+) requests in", out).group(1))}
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        result[f"p{pct}_ms"] = parse_duration_us(match.group(1)) / 1000
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        out)
    result["errors"] = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(n) for n in sockets.groups()) if sockets else 0)
    return result


def lag_ms(url):
    text = fetch(url + "/metrics")
    return (metric(text, "tocsin_loop_lag_p99_seconds") * 1000,
            metric(text, "tocsin_loop_lag_max_seconds") * 1000)


def phase_load(tocsind, workdir):
    nginx_port = free_port()
    nginx = start_nginx(workdir, nginx_port)
    proc = None
    try:
        proc, url = start_tocsind(tocsind, workdir, "load", load_config(workdir, nginx_port))
        # The first minute creates the archive files and fills the lag window with it.
        time.sleep(75)
        idle = lag_ms(url)
        text = fetch(url + "/metrics")
        print(f"bench-web: load phase: {HTTP_PROBES + TCP_PROBES} probes at 1 s, 60 rules; "
              f"{sum(1 for line in text.splitlines() if line[:1] not in ('#', ''))} series "
              f"in /metrics; loop lag at idle: p99 {idle[0]:.1f} ms, max {idle[1]:.1f} ms",
              flush=True)
        runs_before = sum_metric(text, "tocsin_probe_runs_total")
        started = time.monotonic()
        results = {}
        for path in ("/metrics", "/api/v1/alerts", "/"):
            result = run_wrk(url + path)
            result["lag"] = lag_ms(url)
            results[path] = result
            print(f"bench-web: {path}: {result['rps']:.0f} requests/s, p50 "
                  f"{result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
                  f"{result['errors']} errors; loop lag p99 {result['lag'][0]:.1f} ms, "
                  f"max {result['lag'][1]:.1f} ms", flush=True)
        text = fetch(url + "/metrics")
        runs = sum_metric(text, "tocsin_probe_runs_total") - runs_before
        failures = sum_metric(text, "tocsin_probe_failures_total")
        skipped = sum_metric(text, "tocsin_probe_skipped_total")
        print(f"bench-web: probe runs during the load: {runs / (time.monotonic() - started):.0f}"
              f"/s (expected {HTTP_PROBES + TCP_PROBES}/s); failures since start {failures:.0f}, "
              f"skipped {skipped:.0f}", flush=True)
        return results, idle
    finally:
        stop(proc)
        stop(nginx)


def sum_metric(text, name):
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{"))


def fnv1a(text):
    """collector/hash.c's hash_string: 64-bit FNV-1a over the text and its terminator."""
    h = 0xcbf29ce484222325
    for byte in text.encode() + b"\0":
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def series_probe_names():
    """Names whose first run falls in the first SERIES_FIRST_RUN_S of the interval.

    The scheduler starts a probe at hash(name) % interval after start, so these probes all
    run once early and not again for almost SERIES_INTERVAL_S.
    """
    names = []
    i = 0
    while len(names) < SERIES_PROBES:
        name = f"series-{i}"
        if fnv1a(name) % (SERIES_INTERVAL_S * 1000) < SERIES_FIRST_RUN_S * 1000:
            names.append(name)
        i += 1
    return names


def write_series_files(workdir):
    """Writes one file per series probe; returns the paths."""
    rng = random.Random(1)
    families_per_probe = FAMILIES // SERIES_PROBES
    paths = []
    for p in range(SERIES_PROBES):
        lines = []
        for f in range(p * families_per_probe, (p + 1) * families_per_probe):
            counter = f % 2 == 0
            name = f"bench_requests_{f:03d}_total" if counter else f"bench_level_{f:03d}"
            lines.append(f"# TYPE {name} {'counter' if counter else 'gauge'}")
            for i in range(SERIES_PER_FAMILY):
                value = rng.randrange(10 ** 9) if counter else round(rng.uniform(0, 1000), 3)
                lines.append(f'{name}{{instance="host-{i // 10:03d}",device="dev{i % 10}"}} '
                             f"{value}")
        paths.append(os.path.join(workdir, f"series-{p}.prom"))
        with open(paths[-1], "w") as f:
            f.write("\n".join(lines) + "\n")
    return paths


def time_scrapes(url, pid):
    """Fetches url SCRAPES times; returns (CPU ms per scrape, wall ms list, series count)."""
    fetch(url)
    cpu0 = cpu_s(pid)
    walls = []
    body = ""
    for _ in range(SCRAPES):
        begin = time.perf_counter()
        body = fetch(url, timeout=60)
        walls.append((time.perf_counter() - begin) * 1000)
    cpu = (cpu_s(pid) - cpu0) * 1000 / SCRAPES
    series = sum(1 for line in body.splitlines() if line[:1] not in ("#", ""))
    return cpu, walls, series


def phase_series(tocsind, workdir):
    config = [f"retention: [{SERIES_INTERVAL_S}s:{2 * SERIES_INTERVAL_S}s]", "probes:"]
    for name, path in zip(series_probe_names(), write_series_files(workdir)):
        config += [f"  - name: {name}", "    type: exec", f"    interval: {SERIES_INTERVAL_S}s",
                   "    timeout: 30s", "    output: prometheus", "    max_output_size: 4MiB",
                   f'    command: [/bin/cat, "{path}"]']
    proc = None
    try:
        proc, url = start_tocsind(tocsind, workdir, "series", config)
        # Wait for the probes' first runs and for the archive writer to create the files,
        # so that its thread is idle while timing.
        deadline = time.monotonic() + SERIES_FIRST_RUN_S + 300
        while True:
            text = fetch(url + "/metrics", timeout=60)
            runs = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("tocsin_probe_runs_total{"))
            queue = metric(text, "tocsin_store_queue_depth") or 0
            if runs >= SERIES_PROBES and queue == 0:
                break
            if time.monotonic() > deadline:
                sys.exit(f"bench-web: the series probes ran {runs:.0f} times and the archive "
                         f"queue holds {queue:.0f} updates after {SERIES_FIRST_RUN_S + 300} s")
            time.sleep(1)
        time.sleep(2)
        cpu, walls, series = time_scrapes(url + "/metrics", proc.pid)
        text = fetch(url + "/metrics", timeout=60)
        if sum_metric(text, "tocsin_probe_runs_total") != runs:
            sys.exit("bench-web: a series probe ran during the scrapes; run again")
        return cpu, walls, series
    finally:
        stop(proc)


def phase_node_exporter(workdir):
    port = free_port()
    proc = subprocess.Popen([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(workdir, "node-exporter.log"), "w"))
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        wait_http(url, proc, "prometheus-node-exporter")
        return time_scrapes(url, proc.pid)
    finally:
        stop(proc)


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        sys.exit("usage: bench_web.py PATH/TO/tocsind (an executable)")
    tocsind = sys.argv[1]
    subprocess.run([os.path.join(TOP, "scripts", "install-deps.sh"), "packages", "wrk",
                    "nginx-light", "prometheus-node-exporter"], check=True)
    workdir = tempfile.mkdtemp(prefix="tocsin-bench-web-")
    print(f"bench-web: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}; "
          f"wrk -t2 -c{CONNECTIONS} -d{SECONDS}s; {SCRAPES} scrapes per daemon", flush=True)

    results, _ = phase_load(tocsind, workdir)
    cpu, walls, series = phase_series(tocsind, workdir)
    print(f"bench-web: tocsind /metrics with {series} series: CPU {cpu:.1f} ms per scrape; "
          f"wall median {statistics.median(walls):.1f} ms, max {max(walls):.1f} ms",
          flush=True)
    ne_cpu, ne_walls, ne_series = phase_node_exporter(workdir)
    ne_us = ne_cpu * 1000 / ne_series
    print(f"bench-web: node_exporter /metrics with {ne_series} series: CPU {ne_cpu:.1f} ms per "
          f"scrape ({ne_us:.1f} us per series); wall median {statistics.median(ne_walls):.1f} "
          f"ms; tocsind: {cpu * 1000 / series:.2f} us per series", flush=True)

    errors = sum(r["errors"] for r in results.values())
    ms_100k = cpu * 100000 / series
    subprocess.run(["rm", "-rf", workdir], check=False)
    print(f"bench-web: metrics_100k_ms={ms_100k:.1f} node_exporter_us_per_series={ne_us:.1f} "
          f"api_rps={results['/api/v1/alerts']['rps']:.0f} errors={errors}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
