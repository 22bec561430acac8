#!/usr/bin/python3
"""Benchmark of the exec probe: many probes run check_tcp against a TCP server on
127.0.0.1, and the same checks run fork-per-check by `xargs -P 8`, in one run.

tocsind gets more probes than it can run in the interval (PROBES at 1 s), so the figure
is its ceiling, not the configured rate. Reported per run: tocsind's own CPU (utime +
stime of the daemon) against the plugins' CPU (cutime + cstime, the children it reaped).

Usage: bench_exec.py TOCSIND [PROBES] [SECONDS]
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


def serve(sock):
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        conn.close()


def cpu_seconds(pid):
    """(loop thread, children) CPU seconds of tocsind. The loop thread (TID == PID) runs
    the probes; the archive writer threads are left out, as their cost does not depend
    on the probe type."""
    with open(f"/proc/{pid}/task/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime = (int(x) for x in fields[11:13])
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cutime, cstime = (int(x) for x in fields[13:15])
    return (utime + stime) / TICKS, (cutime + cstime) / TICKS


def runs_total(url):
    for attempt in range(5):
        try:
            with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
                text = r.read().decode()
            break
        except http.client.HTTPException:
            if attempt == 4:
                raise
            time.sleep(0.2)
    total = 0.0
    for line in text.splitlines():
        if line.startswith("tocsin_probe_runs_total{") and 'type="exec"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_tocsind(tocsind, port, probes, seconds, workdir):
    listen = free_port()
    lines = ["interval: 1s", "timeout: 1s", "probes:"]
    for i in range(probes):
        lines += [f"  - name: tcp{i}", "    type: exec",
                  f'    command: [{CHECK_TCP}, -H, 127.0.0.1, -p, "{port}"]']
    cfg = os.path.join(workdir, "bench.yml")
    with open(cfg, "w") as f:
        f.write("\n".join(lines) + "\n")
    log = open(os.path.join(workdir, "tocsind.log"), "w")
    proc = subprocess.Popen([tocsind, "--config", cfg, "--listen", f"127.0.0.1:{listen}",
                             "--data-dir", os.path.join(workdir, "data"),
                             "--log-level", "warn"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{listen}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                runs_total(url)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("tocsind did not start:\n" + open(log.name).read()[-2000:])
                time.sleep(0.2)
        time.sleep(3)  # warm-up: every probe has had its first turn
        runs0, cpu0, t0 = runs_total(url), cpu_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        runs1, cpu1, t1 = runs_total(url), cpu_seconds(proc.pid), time.monotonic()
    finally:
        # Killed: a clean stop would flush thousands of archive updates first.
        proc.kill()
        proc.wait(timeout=30)
        log.close()
    runs = runs1 - runs0
    own = cpu1[0] - cpu0[0]
    plugins = cpu1[1] - cpu0[1]
    return runs / (t1 - t0), own / runs, plugins / runs


def bench_shell(port, count):
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


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    tocsind = sys.argv[1]
    probes = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 20
    if not os.access(CHECK_TCP, os.X_OK):
        raise SystemExit(f"{CHECK_TCP} missing: install monitoring-plugins-basic")

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(4096)
    port = server.getsockname()[1]
    threading.Thread(target=serve, args=(server,), daemon=True).start()

    with tempfile.TemporaryDirectory(prefix="bench-exec-", ignore_cleanup_errors=True) as workdir:
        shell_rate, shell_cpu = bench_shell(port, 5000)
        rate, own, plugin = bench_tocsind(tocsind, port, probes, seconds, workdir)
    server.close()

    overhead = 100.0 * own / plugin if plugin > 0 else float("nan")
    print(f"cpus: {os.cpu_count()}, probes: {probes} at 1 s, measured for {seconds:.0f} s")
    print(f"tocsind: {rate:.0f} runs/s, daemon CPU {own * 1e3:.3f} ms/run, "
          f"plugin CPU {plugin * 1e3:.3f} ms/run")
    print(f"xargs -P 8: {shell_rate:.0f} runs/s, plugin CPU {shell_cpu * 1e3:.3f} ms/run")
    print(f"bench-exec: tocsin_runs_per_s={rate:.0f} overhead_pct={overhead:.1f} "
          f"shell_runs_per_s={shell_rate:.0f}")


if __name__ == "__main__":
    main()
