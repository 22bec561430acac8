#!/bin/sh
# Soak test of a large configuration (make soak; not part of the test command). One
# tocsind runs for SOAK_SECONDS (default 3600) with 2,000 probes and 1,000 rules:
#   - 1,000 http and 920 tcp probes against a local nginx (Debian nginx-light, one worker,
#     four ports on 127.0.0.1, a new connection per request). 20 host probes. 60 exec
#     probes: 40 check_tcp against nginx, 20 shell scripts printing Prometheus text. The
#     probes take turns at intervals of 10 s, 20 s and 30 s (about 120 runs per second);
#   - 1,000 rules in 20 groups of 50 at a 30 s interval: per-probe alerts on
#     probe_success and probe_duration_seconds, threshold rules on durations, recording
#     rules that aggregate by type, and max_over_time/avg_over_time over 5 minutes.
# Every 30 s the script records tocsind's RSS (VmRSS), open fds and threads. The fd count
# is the lowest of 5 counts 0.1 s apart, so connections of probes in flight do not count.
# It also reads the loop lag metrics tocsin_loop_lag_p99_seconds and _max_seconds, which
# cover the last minute of 250 ms lag timers. Samples 30 s apart cover every minute, so the
# largest per-minute p99 is an upper bound of the p99 over the whole run.
#
# Rules checked at the end (exit status 1 when one is broken):
#   - flat RSS: in the last 30 minutes (the second half of runs shorter than an hour),
#     no RSS sample exceeds the sample at the 10-minute mark (at one sixth of shorter
#     runs) by 2 % or more. The 5-minute windows of the rules fill in the first 5
#     minutes, so a run shorter than about 20 minutes measures that warm-up and fails;
#   - flat fds: in the same window, no fd count exceeds the count at that mark;
#   - loop lag: the largest per-minute p99 of the run is below 20 ms;
#   - tocsind is still running at the end, and exits with status 0 on SIGTERM.
# The last line is the summary:
#   soak: result=pass|fail seconds=N probes=N rules=N rss_kib_mark=N rss_kib_max_late=N
#     rss_growth_pct=X fds_mark=N fds_max_late=N threads=N lag_p99_ms=X lag_max_ms=X
# Needs the Debian packages nginx-light and monitoring-plugins-basic (installed here when
# missing and the script runs as root).
#
# usage: soak.sh [PATH/TO/tocsind]   (default: build/ci-normal/tocsind)
#   SOAK_SECONDS (default 3600), SOAK_SAMPLE_SECONDS (default 30)
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
tocsind=${1:-$top/build/ci-normal/tocsind}
if [ ! -x "$tocsind" ]; then
	echo "soak: $tocsind is not an executable; build tocsind first or pass its path" >&2
	exit 2
fi
"$top/scripts/install-deps.sh" packages nginx-light monitoring-plugins-basic

# The program is passed with -c: a here-document on stdin would leave the shell's writer
# process unreaped under python3.
program=$(cat <<'PYTHON'
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

tocsind = sys.argv[1]
SECONDS = int(os.environ.get("SOAK_SECONDS", "3600"))
SAMPLE_S = int(os.environ.get("SOAK_SAMPLE_SECONDS", "30"))
# The flatness rule: the mark is 10 minutes in (a sixth of shorter runs), the late
# window the last 30 minutes (the second half of shorter runs).
MARK_S = min(600, SECONDS // 6)
LATE_S = SECONDS - min(1800, SECONDS // 2)
RSS_GROWTH_LIMIT_PCT = 2.0
LAG_P99_LIMIT_S = 0.020
CHECK_TCP = "/usr/lib/nagios/plugins/check_tcp"
NGINX_PORTS = 4
HTTP_PROBES, TCP_PROBES, HOST_PROBES, EXEC_TCP_PROBES, EXEC_PROM_PROBES = 1000, 920, 20, 40, 20
INTERVALS = (10, 20, 30)
RULE_GROUPS, RULES_PER_GROUP = 20, 50

PROM_SCRIPT = """#!/bin/sh
printf '# TYPE soak_queue_depth gauge\\n'
printf 'soak_queue_depth{queue="a"} %d\\n' $$
printf 'soak_queue_depth{queue="b"} 7\\n'
printf '# TYPE soak_jobs_total counter\\nsoak_jobs_total 1234\\n'
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def start_nginx(workdir, ports):
    conf = os.path.join(workdir, "nginx.conf")
    listens = "\n".join(f"        listen 127.0.0.1:{p} backlog=4096;" for p in ports)
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
{listens}
        location / {{ return 200 "ok\\n"; }}
    }}
}}
""")
    proc = subprocess.Popen(["/usr/sbin/nginx", "-c", conf, "-p", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not all(wait_port(p) for p in ports):
        proc.kill()
        sys.exit("soak: nginx did not start; see " + os.path.join(workdir, "nginx-error.log"))
    return proc


def probes_config(ports, script):
    lines = ["probes:"]
    n = 0

    def probe(name, kind, *keys):
        nonlocal n
        lines.extend([f"  - name: {name}", f"    type: {kind}",
                      f"    interval: {INTERVALS[n % len(INTERVALS)]}s"]
                     + [f"    {k}" for k in keys])
        n += 1

    for i in range(HTTP_PROBES):
        probe(f"http-{i:04d}", "http", f"url: http://127.0.0.1:{ports[i % len(ports)]}/p{i}")
    for i in range(TCP_PROBES):
        probe(f"tcp-{i:04d}", "tcp", f"target: 127.0.0.1:{ports[i % len(ports)]}")
    for i in range(HOST_PROBES):
        probe(f"host-{i:02d}", "host")
    for i in range(EXEC_TCP_PROBES):
        probe(f"exec-tcp-{i:02d}", "exec",
              f'command: ["{CHECK_TCP}", "-H", "127.0.0.1", "-p", "{ports[i % len(ports)]}"]')
    for i in range(EXEC_PROM_PROBES):
        probe(f"exec-prom-{i:02d}", "exec", f'command: ["{script}"]', "output: prometheus")
    return lines, n


def rule(i):
    """Rule i of 1,000: ten kinds, each over a different probe."""
    kind = i % 10
    http = f"http-{(i * 7) % HTTP_PROBES:04d}"
    tcp = f"tcp-{(i * 11) % TCP_PROBES:04d}"
    if kind == 0:
        return [f"- alert: HttpDown{i}", f"  expr: probe_success{{probe=\"{http}\"}} == 0",
                "  for: 1m"]
    if kind == 1:
        return [f"- alert: TcpDown{i}", f"  expr: probe_success{{probe=\"{tcp}\"}} == 0"]
    if kind == 2:
        return [f"- alert: HttpSlow{i}", "  threshold:",
                f"    expr: probe_duration_seconds{{probe=\"{http}\"}}",
                "    warn: 0.5", "    crit: 1", "    clear_warn: 0.4"]
    if kind == 3:
        return [f"- alert: TcpSlow{i}", "  threshold:",
                f"    expr: probe_duration_seconds{{probe=\"{tcp}\"}} * 1000",
                "    warn: 200", "    crit: 500"]
    if kind == 4:
        return [f"- record: soak:http_duration:max5m_{i}",
                f"  expr: max_over_time(probe_duration_seconds{{probe=\"{http}\"}}[5m])"]
    if kind == 5:
        return [f"- record: soak:tcp_duration:avg5m_{i}",
                f"  expr: avg_over_time(probe_duration_seconds{{probe=\"{tcp}\"}}[5m])"]
    if kind == 6:
        return [f"- record: soak:probe_success:avg_by_type_{i}",
                "  expr: avg by (type) (tocsin_probe_success)"]
    if kind == 7:
        return [f"- alert: StatusNot200_{i}",
                f"  expr: probe_http_status_code{{probe=\"{http}\"}} != 200"]
    if kind == 8:
        return [f"- alert: ManyFailures{i}",
                "  expr: count(probe_success == 0) > 10"]
    return [f"- alert: CpuBusy{i}", "  threshold:",
            f"    expr: host_cpu_busy_ratio{{probe=\"host-{i % HOST_PROBES:02d}\",cpu=\"all\"}}",
            "    warn: 0.98", "    crit: 0.99"]


def rules_file(path):
    lines = ["groups:"]
    for g in range(RULE_GROUPS):
        lines += [f"  - name: soak-{g:02d}", "    interval: 30s", "    rules:"]
        for r in range(RULES_PER_GROUP):
            body = rule(g * RULES_PER_GROUP + r)
            lines += ["      " + line for line in body]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return RULE_GROUPS * RULES_PER_GROUP


def metrics(url):
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        return r.read().decode()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def metric_sum(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def fds(pid):
    counts = []
    for _ in range(5):
        counts.append(len(os.listdir(f"/proc/{pid}/fd")))
        time.sleep(0.1)
    return min(counts)


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    workdir = tempfile.mkdtemp(prefix="tocsin-soak-")
    ports = [free_port() for _ in range(NGINX_PORTS)]
    nginx = start_nginx(workdir, ports)
    proc = None
    log = None
    try:
        script = os.path.join(workdir, "prom.sh")
        with open(script, "w") as f:
            f.write(PROM_SCRIPT)
        os.chmod(script, 0o755)
        rules = os.path.join(workdir, "rules.yml")
        rule_count = rules_file(rules)
        lines, probe_count = probes_config(ports, script)
        config = os.path.join(workdir, "soak.yml")
        with open(config, "w") as f:
            f.write("\n".join(["retention: [10s:1h]", "timeout: 5s",
                               f'rule_files: ["{rules}"]'] + lines) + "\n")

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = os.path.join(workdir, "tocsind.log")
        log = open(log_path, "w")
        proc = subprocess.Popen([tocsind, "--config", config, "--listen", f"127.0.0.1:{port}",
                                 "--data-dir", os.path.join(workdir, "data"),
                                 "--log-level", "notice"], stdout=log, stderr=subprocess.STDOUT)
        started = time.monotonic()
        while True:
            try:
                metrics(url)
                break
            except OSError:
                if time.monotonic() > started + 60 or proc.poll() is not None:
                    sys.exit("soak: tocsind did not start:\n" + open(log_path).read()[-3000:])
                time.sleep(0.2)
        cpu0 = cpu_s(proc.pid)
        print(f"soak: {probe_count} probes, {rule_count} rules, {SECONDS} s; "
              f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}; work directory {workdir}",
              flush=True)

        samples = []  # (seconds, rss KiB, fds, threads, lag p99 s, lag max s, series)
        next_sample = started + SAMPLE_S
        while time.monotonic() < started + SECONDS and proc.poll() is None:
            time.sleep(max(0.0, min(next_sample, started + SECONDS) - time.monotonic()))
            if time.monotonic() < next_sample or proc.poll() is not None:
                continue
            text = metrics(url)
            sample = (round(next_sample - started), proc_status(proc.pid, "VmRSS"),
                      fds(proc.pid), proc_status(proc.pid, "Threads"),
                      metric(text, "tocsin_loop_lag_p99_seconds") or 0.0,
                      metric(text, "tocsin_loop_lag_max_seconds") or 0.0,
                      int(metric(text, "tocsin_series") or 0))
            samples.append(sample)
            print(f"soak: t={sample[0]}s rss={sample[1]} KiB fds={sample[2]} "
                  f"threads={sample[3]} lag_p99={sample[4] * 1000:.1f} ms "
                  f"lag_max={sample[5] * 1000:.1f} ms series={sample[6]}", flush=True)
            next_sample += SAMPLE_S

        alive = proc.poll() is None
        text = metrics(url) if alive else ""
        cpu = cpu_s(proc.pid) - cpu0 if alive else 0.0
        elapsed = time.monotonic() - started
        proc.send_signal(signal.SIGTERM)
        exit_code = proc.wait(timeout=120)
        log.close()
        log = None
        log_text = open(log_path).read()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if log is not None:
            log.close()
        nginx.terminate()
        nginx.wait()

    return report(samples, alive, exit_code, text, cpu, elapsed, log_text, workdir,
                  probe_count, rule_count)


def report(samples, alive, exit_code, text, cpu, elapsed, log_text, workdir, probe_count,
           rule_count):
    problems = []
    mark = next((s for s in samples if s[0] >= MARK_S), None)
    late = [s for s in samples if s[0] >= LATE_S]
    if not alive:
        problems.append(f"tocsind exited before the end (status {exit_code})")
    elif exit_code != 0:
        problems.append(f"tocsind exited with status {exit_code} on SIGTERM")
    if mark is None or not late:
        problems.append("too few samples for the flatness rule")
        rss_max = fds_max = 0
        growth = 0.0
    else:
        rss_max = max(s[1] for s in late)
        fds_max = max(s[2] for s in late)
        growth = 100.0 * (rss_max - mark[1]) / mark[1]
        if growth >= RSS_GROWTH_LIMIT_PCT:
            problems.append(f"RSS grew {growth:.2f} % (>= {RSS_GROWTH_LIMIT_PCT} %): "
                            f"{mark[1]} KiB at {mark[0]} s, up to {rss_max} KiB after {LATE_S} s")
        if fds_max > mark[2]:
            problems.append(f"open fds grew: {mark[2]} at {mark[0]} s, up to {fds_max} "
                            f"after {LATE_S} s")
    lag_p99 = max((s[4] for s in samples), default=0.0)
    lag_max = max((s[5] for s in samples), default=0.0)
    if lag_p99 >= LAG_P99_LIMIT_S:
        problems.append(f"loop lag p99 {lag_p99 * 1000:.1f} ms >= "
                        f"{LAG_P99_LIMIT_S * 1000:.0f} ms")

    print()
    print(f"soak: {elapsed:.0f} s, {probe_count} probes, {rule_count} rules; "
          f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}")
    if samples:
        p99s = sorted(s[4] for s in samples)
        print(f"loop lag per minute: p99 median {statistics.median(p99s) * 1000:.1f} ms, "
              f"largest {lag_p99 * 1000:.1f} ms; largest single lag {lag_max * 1000:.1f} ms")
    if text:
        runs = metric_sum(text, "tocsin_probe_runs_total")
        failures = metric_sum(text, "tocsin_probe_failures_total")
        skipped = metric_sum(text, "tocsin_probe_skipped_total")
        print(f"probe runs: {runs:.0f} ({runs / elapsed:.1f}/s), {failures:.0f} failed, "
              f"{skipped:.0f} skipped; series {metric(text, 'tocsin_series'):.0f}; "
              f"tocsind CPU {cpu:.0f} s ({100 * cpu / elapsed:.1f} % of one CPU)")
        for kind in ("http", "tcp", "host", "exec"):
            print(f"  {kind}: {metric_sum(text, 'tocsin_probe_runs_total', type=kind):.0f} "
                  f"runs, {metric_sum(text, 'tocsin_probe_failures_total', type=kind):.0f} "
                  "failed")
    errors = [line for line in log_text.splitlines() if "level=error" in line]
    warnings = [line for line in log_text.splitlines() if "level=warn" in line]
    print(f"log: {len(errors)} error lines, {len(warnings)} warning lines")
    for line in (errors + warnings)[:10]:
        print("  " + line)
    for problem in problems:
        print(f"soak: FAIL: {problem}")
    mark_rss = mark[1] if mark else 0
    mark_fds = mark[2] if mark else 0
    threads = samples[-1][3] if samples else 0
    print(f"soak: result={'fail' if problems else 'pass'} seconds={SECONDS} "
          f"probes={probe_count} rules={rule_count} rss_kib_mark={mark_rss} "
          f"rss_kib_max_late={rss_max} rss_growth_pct={growth:.2f} fds_mark={mark_fds} "
          f"fds_max_late={fds_max} threads={threads} lag_p99_ms={lag_p99 * 1000:.1f} "
          f"lag_max_ms={lag_max * 1000:.1f}")
    if problems:
        print(f"soak: work directory kept: {workdir}")
    else:
        subprocess.run(["rm", "-rf", workdir], check=False)
    return 1 if problems else 0


sys.exit(main())
PYTHON
)
exec /usr/bin/python3 -c "$program" "$tocsind"
