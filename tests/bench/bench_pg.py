"""Benchmark of the postgres probe (make bench-pg): N probes, each on its own database of
one throwaway PostgreSQL 15 server (tests/integration/pgcluster.py), run by one tocsind.
Reports runs per second, tocsind CPU per run and the connections the probes hold. CPU
is given for the whole process and for the event-loop thread alone, which runs every
probe; the rest is mostly the RRD writer threads. Ends with one line:
  bench-pg: probes=N interval_s=I runs_per_s=R cpu_us_per_run=C loop_cpu_us_per_run=L
            connections=K connections_opened=O

usage: bench_pg.py TOCSIND [PROBES [SECONDS [INTERVAL_S [COLLECT]]]]
COLLECT is the probes' `collect:` list, comma-separated ("" for none, the default).
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import pgcluster  # noqa: E402


def cpu_seconds(stat_path):
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); fields[0] is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def metric_sum(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench-pg: timed out waiting for {what}")


def main():
    tocsind = sys.argv[1]
    probes = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30
    interval = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    collect = sys.argv[5] if len(sys.argv) > 5 else ""
    reason = pgcluster.missing_reason()
    if reason:
        raise SystemExit(f"bench-pg: cannot run: {reason}")

    cluster = pgcluster.Cluster()
    work = tempfile.mkdtemp(prefix="tocsin-bench-pg-")
    daemon = None
    try:
        server = cluster.init_primary(extra_conf=f"max_connections = {probes + 50}\n")
        script = os.path.join(cluster.root, "create.sql")
        with open(script, "w") as f:
            for i in range(probes):
                f.write(f"CREATE DATABASE bench{i};\n")
        os.chmod(script, 0o644)
        pgcluster.as_postgres([os.path.join(pgcluster.BIN, "psql"), "-X", "-q", "-h",
                               cluster.root, "-p", str(server.port), "-d", "postgres",
                               "-f", script], timeout=600)

        items = ", ".join(x for x in collect.split(",") if x)
        lines = [f"interval: {interval}s", "retention: [1s:1h]", "probes:"]
        for i in range(probes):
            lines += [f"  - name: bench-{i}", "    type: postgres", "    host: 127.0.0.1",
                      f"    port: {server.port}", f"    dbname: bench{i}",
                      f"    user: {pgcluster.PROBE_USER}",
                      f"    password_file: {cluster.password_file}",
                      f"    application_name: bench-{i}", f"    collect: [{items}]"]
        config = os.path.join(work, "tocsin.yml")
        with open(config, "w") as f:
            f.write("\n".join(lines) + "\n")
        port = pgcluster.free_port()
        log = open(os.path.join(work, "tocsind.log"), "w")
        daemon = subprocess.Popen([tocsind, "--config", config, "--listen",
                                   f"127.0.0.1:{port}", "--data-dir", os.path.join(work, "data"),
                                   "--log-level", "warn"], stdout=log, stderr=subprocess.STDOUT)

        # Warm-up: every probe has connected and run at least twice.
        wait(lambda: metric_sum(metrics(port), "tocsin_probe_runs_total") >= 2 * probes,
             120, "every probe to run twice")
        stat = f"/proc/{daemon.pid}/stat"
        loop_stat = f"/proc/{daemon.pid}/task/{daemon.pid}/stat"
        runs0 = metric_sum(metrics(port), "tocsin_probe_runs_total")
        cpu0, loop0, t0 = cpu_seconds(stat), cpu_seconds(loop_stat), time.monotonic()
        time.sleep(seconds)
        text = metrics(port)
        cpu1, loop1, t1 = cpu_seconds(stat), cpu_seconds(loop_stat), time.monotonic()
        runs = metric_sum(text, "tocsin_probe_runs_total") - runs0
        failures = metric_sum(text, "tocsin_probe_failures_total")
        opened = metric_sum(text, "tocsin_pg_connections_opened_total")
        held = server.psql("SELECT count(*) FROM pg_stat_activity "
                           "WHERE application_name LIKE 'bench-%'")
        print(f"window {t1 - t0:.1f} s, {runs:.0f} runs, {failures:.0f} failed runs in total, "
              f"tocsind CPU {cpu1 - cpu0:.2f} s (loop thread {loop1 - loop0:.2f} s)")
        print(f"bench-pg: probes={probes} interval_s={interval} "
              f"runs_per_s={runs / (t1 - t0):.1f} "
              f"cpu_us_per_run={(cpu1 - cpu0) / runs * 1e6:.0f} "
              f"loop_cpu_us_per_run={(loop1 - loop0) / runs * 1e6:.0f} "
              f"connections={held} connections_opened={opened:.0f}")
    finally:
        if os.environ.get("BENCH_PG_LOG"):
            with open(os.path.join(work, "tocsind.log")) as f:
                sys.stdout.write(f.read()[-3000:])
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
