#!/usr/bin/python3
"""Benchmark of the exec probe: many probes run check_tcp against a TCP server on
127.0.0.1, and the same checks run fork-per-check by `xargs -P 8`, in one run.

tocsind gets more probes than it can run in the interval (PROBES at INTERVAL_S), so the
figure is its ceiling, not the configured rate; the skipped turns it reports show whether
it was saturated. Half of the xargs runs come before tocsind and half after, so that a
change in the machine's load during the run hits both sides. Reported per run: tocsind's
loop thread CPU and its whole-process CPU (archive writer threads included) against the
plugins' CPU (cutime + cstime, the children it reaped), and runs per CPU second of each
side, the figure to compare when both sides are CPU-bound.

The archives go to DATA_PARENT (default: the temporary directory) with small retention
tiers: as many tiers as the default, so that an update costs the same, but files of a few
KiB, and the measurement starts only once every file exists. With the default tiers the
first 20 s would be spent creating 6,500 files of 1.7 MB.

Usage: bench_exec.py TOCSIND [PROBES] [SECONDS] [INTERVAL_S] [DATA_PARENT]
Prints one last line: bench-exec: tocsin_runs_per_s=N overhead_pct=X shell_runs_per_s=N
"""

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

CHECK_TCP = "/usr/lib/nagios/plugins/check_tcp"
TICKS = os.sysconf("SC_CLK_TCK")
# Three tiers like the default retention (10s:2d, 1m:30d, 1h:400d), so nine RRAs per file.
RETENTION = "[10s:10m, 1m:1h, 1h:1d]"
# Bound of the wait for every archive file to exist before the measurement.
ARCHIVE_WARMUP_S = 120


def serve(sock):
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        conn.close()


def stat_fields(path):
    with open(path) as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid):
    """(loop thread, whole process, children) CPU seconds of tocsind. The loop thread
    (TID == PID) runs the probes; the whole process adds the archive writer threads."""
    loop = stat_fields(f"/proc/{pid}/task/{pid}/stat")
    proc = stat_fields(f"/proc/{pid}/stat")
    return (sum(int(x) for x in loop[11:13]) / TICKS, sum(int(x) for x in proc[11:13]) / TICKS,
            sum(int(x) for x in proc[13:15]) / TICKS)


def machine_busy():
    """(busy, total) jiffies of all CPUs from /proc/stat; idle and iowait count as idle."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


def loop_state(pid):
    """What the loop thread is doing: blocked in posix_spawn (the vfork wait until the
    child has called execve), idle (waiting for events), runnable, or other."""
    try:
        state = stat_fields(f"/proc/{pid}/task/{pid}/stat")[0]
        with open(f"/proc/{pid}/task/{pid}/wchan") as f:
            wchan = f.read()
    except OSError:
        return "other"
    if wchan == "kernel_clone":
        return "spawn_wait"
    if state == "R":
        return "runnable"
    if state == "S" and "epoll" in wchan:
        return "idle"
    return "other"


def sample_loop(pid, until, counts):
    """Samples loop_state() at 50 Hz until the monotonic time `until`."""
    while time.monotonic() < until:
        state = loop_state(pid)
        counts[state] = counts.get(state, 0) + 1
        time.sleep(0.02)


def scrape(url):
    """Sums of the exec probes' counters and the archive store's gauges from /metrics."""
    for attempt in range(5):
        try:
            with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
                text = r.read().decode()
            break
        except http.client.HTTPException:
            if attempt == 4:
                raise
            time.sleep(0.2)
    sums = {"runs": 0.0, "skipped": 0.0, "failures": 0.0, "files": 0.0, "queue": 0.0}
    names = {"tocsin_probe_runs_total{": "runs", "tocsin_probe_skipped_total{": "skipped",
             "tocsin_probe_failures_total{": "failures"}
    for line in text.splitlines():
        value = line.rsplit(" ", 1)[-1]
        for prefix, key in names.items():
            if line.startswith(prefix) and 'type="exec"' in line:
                sums[key] += float(value)
        if line.startswith("tocsin_store_files_created_total "):
            sums["files"] = float(value)
        elif line.startswith("tocsin_store_queue_depth "):
            sums["queue"] = float(value)
    return sums


def timed_scrape(url):
    """scrape() with the midpoint of the request as the time of the counters, and the
    request's duration: a busy loop can take seconds to respond, and the counters are
    read at an unknown point in between."""
    start = time.monotonic()
    m = scrape(url)
    end = time.monotonic()
    return m, (start + end) / 2, end - start


def wait_archives(url, probes):
    """Waits until every archive file exists and the writer keeps up (fewer updates queued
    than one round of runs), so the one-time file creation is not measured. Each
    check_tcp run writes 13 series."""
    deadline = time.monotonic() + ARCHIVE_WARMUP_S
    while time.monotonic() < deadline:
        m = scrape(url)
        if m["files"] >= 13 * probes and m["queue"] < 13 * probes:
            return
        time.sleep(1)
    print(f"note: archives still being created after {ARCHIVE_WARMUP_S} s "
          f"({m['files']:.0f} files, queue {m['queue']:.0f}); the figures include it")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(workdir, port, probes, interval):
    lines = [f"interval: {interval}s", f"timeout: {interval}s", f"retention: {RETENTION}",
             "probes:"]
    for i in range(probes):
        lines += [f"  - name: tcp{i}", "    type: exec",
                  f'    command: [{CHECK_TCP}, -H, 127.0.0.1, -p, "{port}"]']
    cfg = os.path.join(workdir, "bench.yml")
    with open(cfg, "w") as f:
        f.write("\n".join(lines) + "\n")
    return cfg


def bench_tocsind(tocsind, port, probes, seconds, interval, workdir, data_dir):
    """Returns the counter deltas of the measurement and the loop thread's samples."""
    listen = free_port()
    cfg = write_config(workdir, port, probes, interval)
    log = open(os.path.join(workdir, "tocsind.log"), "w")
    proc = subprocess.Popen([tocsind, "--config", cfg, "--listen", f"127.0.0.1:{listen}",
                             "--data-dir", data_dir,
                             "--log-level", "warn"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{listen}"
    states = {}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                scrape(url)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("tocsind did not start:\n" + open(log.name).read()[-2000:])
                time.sleep(0.2)
        time.sleep(3 * interval)  # warm-up: every probe has had its first turns
        wait_archives(url, probes)
        m0, t0, scrape0 = timed_scrape(url)
        cpu0, busy0 = cpu_seconds(proc.pid), machine_busy()
        sample_loop(proc.pid, time.monotonic() + seconds, states)
        m1, t1, scrape1 = timed_scrape(url)
        cpu1, busy1 = cpu_seconds(proc.pid), machine_busy()
    finally:
        # Killed: a clean stop would flush thousands of archive updates first.
        proc.kill()
        proc.wait(timeout=30)
        log.close()
    result = {key: m1[key] - m0[key] for key in ("runs", "skipped", "failures")}
    result["seconds"] = t1 - t0
    result["scrape_s"] = max(scrape0, scrape1)
    result["loop_cpu"], result["process_cpu"], result["plugin_cpu"] = (
        b - a for a, b in zip(cpu0, cpu1))
    result["busy_pct"] = 100.0 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    return result, states


def bench_shell(port, count):
    """Returns (runs/s, CPU seconds per run of xargs and its children)."""
    args = f"-H 127.0.0.1 -p {port}"
    start_children = os.times()
    t0 = time.monotonic()
    subprocess.run(f"seq {count} | xargs -P 8 -I{{}} {CHECK_TCP} {args} >/dev/null",
                   shell=True, check=True)
    t1 = time.monotonic()
    end_children = os.times()
    cpu = (end_children.children_user + end_children.children_system
           - start_children.children_user - start_children.children_system)
    return count / (t1 - t0), cpu / count


def report(probes, interval, r, states, shell):
    """Prints the figures; the last line is the one that scripts read."""
    runs = r["runs"]
    rate = runs / r["seconds"]
    own = r["loop_cpu"] / runs
    process = r["process_cpu"] / runs
    plugin = r["plugin_cpu"] / runs
    shell_rate = (shell[0][0] + shell[1][0]) / 2
    shell_cpu = (shell[0][1] + shell[1][1]) / 2
    overhead = 100.0 * own / plugin if plugin > 0 else float("nan")
    samples = max(1, sum(states.values()))
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]

    print(f"cpus: {os.cpu_count()}, load average {load}, probes: {probes} at {interval} s "
          f"(offered {probes / interval:.0f} runs/s), measured for {r['seconds']:.1f} s "
          f"(+/- {r['scrape_s']:.1f} s: the longest /metrics request)")
    print(f"tocsind: {rate:.0f} runs/s, daemon CPU {own * 1e3:.3f} ms/run (loop thread), "
          f"{process * 1e3:.3f} ms/run (whole process), plugin CPU {plugin * 1e3:.3f} ms/run")
    # Independent of the window's length: every turn either starts a run or is skipped,
    # unless the loop is so late that a whole turn passes unseen.
    turn_rate = probes / interval * runs / max(1.0, runs + r["skipped"])
    print(f"tocsind: {turn_rate:.0f} runs/s from the share of turns that ran (an upper bound)")
    print(f"tocsind: {r['skipped'] / r['seconds']:.0f} turns/s skipped (run still in flight), "
          f"{r['failures'] / r['seconds']:.1f} failed runs/s, machine CPU busy "
          f"{r['busy_pct']:.0f} %")
    print("tocsind loop thread: " + ", ".join(
        f"{name} {100.0 * states.get(name, 0) / samples:.0f} %"
        for name in ("spawn_wait", "runnable", "idle", "other")))
    print(f"xargs -P 8: {shell[0][0]:.0f} runs/s before tocsind, {shell[1][0]:.0f} after, "
          f"CPU of xargs and plugins {shell_cpu * 1e3:.3f} ms/run")
    print(f"runs per CPU second: tocsind {1.0 / (process + plugin):.0f}, "
          f"xargs -P 8 {1.0 / shell_cpu:.0f}")
    print(f"bench-exec: tocsin_runs_per_s={rate:.0f} overhead_pct={overhead:.1f} "
          f"shell_runs_per_s={shell_rate:.0f}")


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    tocsind = sys.argv[1]
    probes = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 20
    interval = int(sys.argv[4]) if len(sys.argv) > 4 else 1  # whole seconds: the archive step
    data_parent = sys.argv[5] if len(sys.argv) > 5 else None
    if not os.access(CHECK_TCP, os.X_OK):
        raise SystemExit(f"{CHECK_TCP} missing: install monitoring-plugins-basic")

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(4096)
    port = server.getsockname()[1]
    threading.Thread(target=serve, args=(server,), daemon=True).start()

    with (tempfile.TemporaryDirectory(prefix="bench-exec-", ignore_cleanup_errors=True) as workdir,
          tempfile.TemporaryDirectory(prefix="bench-exec-data-", dir=data_parent,
                                      ignore_cleanup_errors=True) as data_dir):
        shell = [bench_shell(port, 2500)]
        result, states = bench_tocsind(tocsind, port, probes, seconds, interval, workdir,
                                       data_dir)
        shell.append(bench_shell(port, 2500))
    server.close()
    report(probes, interval, result, states, shell)


if __name__ == "__main__":
    main()
