#!/bin/sh
# Soak test of the database, VM and plugin probes (make soak-probes; not part of the test
# command). One tocsind runs for SOAK_MINUTES (default 10) with, all at a 10 s interval:
#   - two postgres probes: a throwaway PostgreSQL 15 primary and its streaming standby
#     (tests/integration/pgcluster.py, on 127.0.0.1 as the postgres OS user);
#   - one libvirt probe on libvirt's in-process test driver (test:///default);
#   - 100 exec probes: Debian's check_tcp (against a listener of this script), check_load,
#     check_disk and check_procs, and five small plugins written to the work directory.
#     The plugins print performance data, a warning and Prometheus output, leave a
#     background child that keeps stdout open, and leave a child that calls setsid.
# The primary is restarted at SOAK_RESTART_MINUTE (default: half-way). Every minute the
# script records tocsind's RSS, open file descriptors and threads; every 2 s it looks
# for zombie children of tocsind. It prints a summary and exits 1 when:
#   - RSS at a later minute exceeds RSS at minute 2 by more than 5 % or 2 MiB (the larger),
#   - the fd count at a later minute exceeds minute 2's by more than 2 (each count is the
#     lowest of 5 reads 0.1 s apart, so the pipes of a plugin in flight are not counted),
#   - a zombie child is seen in two checks 2 s apart (the exec probe keeps a finished
#     command's zombie until its output is drained, at most 1 s, so a single sighting is
#     not an error and is only counted),
#   - the primary's postgres probe has no successful run within two intervals (+1 s for
#     polling) after the restart completed, or tocsind exits with an error.
# Needs root (PostgreSQL runs as the postgres user) and the Debian packages postgresql-15,
# postgresql-contrib, monitoring-plugins-basic and libvirt0.
#
# usage: soak-probes.sh [PATH/TO/tocsind]   (default: build/ci-normal/tocsind)
#   SOAK_MINUTES (default 10), SOAK_RESTART_MINUTE (default SOAK_MINUTES / 2)
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
tocsind=${1:-$top/build/ci-normal/tocsind}
if [ ! -x "$tocsind" ]; then
	echo "soak-probes: $tocsind is not an executable; build tocsind first or pass its path" >&2
	exit 2
fi
if [ "$(id -u)" != 0 ]; then
	echo "soak-probes: run as root: PostgreSQL is started as the postgres user" >&2
	exit 2
fi

# The program is passed with -c: a here-document on stdin would leave the shell's writer
# process unreaped under python3.
program=$(cat <<'PYTHON'
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

top, tocsind = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(top, "tests", "integration"))
import pgcluster  # noqa: E402

PLUGINS = "/usr/lib/nagios/plugins"
INTERVAL_S = 10
MINUTES = int(os.environ.get("SOAK_MINUTES", "10"))
RESTART_MINUTE = float(os.environ.get("SOAK_RESTART_MINUTE", str(MINUTES / 2)))
BASELINE_MINUTE = 2
RSS_TOLERANCE_PCT = 5.0
RSS_TOLERANCE_MIN_KIB = 2048
FD_TOLERANCE = 2
ZOMBIE_CHECK_S = 2.0

FIXTURES = {
    "perfdata.sh": 'echo "OK - soak fixture | time=0.012s;1;2;0; size=2048B;;;0;"\n',
    "warning.sh": 'echo "WARNING - soak fixture reports a warning"\nexit 1\n',
    "prometheus.sh": "printf '# TYPE soak_fixture_value gauge\\nsoak_fixture_value 42\\n'\n",
    # The sleep inherits stdout: the run ends 1 s after the script, and its group is killed.
    "background.sh": '(sleep 3 &)\necho "OK - left a child holding stdout"\n',
    # The sleep leaves the group, so tocsind adopts it as subreaper and kills it.
    "escape.sh": 'setsid sleep 5 </dev/null >/dev/null 2>&1 &\necho "OK - a child escaped"\n',
}


def fail_setup(message):
    print(f"soak-probes: {message}", file=sys.stderr)
    sys.exit(2)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(sock):
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        conn.close()


def exec_probes(port, fixture_dir):
    commands = []
    for _ in range(35):
        commands.append([f"{PLUGINS}/check_tcp", "-H", "127.0.0.1", "-p", str(port)])
    for _ in range(20):
        commands.append([f"{PLUGINS}/check_load", "-w", "50,40,30", "-c", "100,80,60"])
    for _ in range(20):
        commands.append([f"{PLUGINS}/check_disk", "-w", "5%", "-c", "2%", "-p", "/"])
    for _ in range(20):
        commands.append([f"{PLUGINS}/check_procs", "-w", "2000", "-c", "4000"])
    lines = []
    for i, argv in enumerate(commands):
        quoted = ", ".join(f'"{a}"' for a in argv)
        lines += [f"  - name: exec{i:03d}", "    type: exec", f"    command: [{quoted}]"]
    for name in sorted(FIXTURES):
        lines += [f"  - name: fixture-{name[:-3]}", "    type: exec",
                  f'    command: ["{os.path.join(fixture_dir, name)}"]']
        if name == "prometheus.sh":
            lines.append("    output: prometheus")
    return lines


def pg_probe(name, server, cluster):
    return [f"  - name: {name}", "    type: postgres", "    host: 127.0.0.1",
            f'    port: {server.port}', f"    user: {pgcluster.PROBE_USER}",
            f"    password_file: {cluster.password_file}", f"    application_name: {name}"]


def metrics(url):
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        return r.read().decode()


def metric(text, name, probe):
    for line in text.splitlines():
        if line.startswith(name + "{") and f'probe="{probe}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def metric_sum(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def fds(pid):
    """Lowest of 5 counts 0.1 s apart: a plugin in flight holds 2 pipes for a moment."""
    counts = []
    for _ in range(5):
        counts.append(len(os.listdir(f"/proc/{pid}/fd")))
        time.sleep(0.1)
    return min(counts)


def zombie_children(pid):
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == pid:
            found.add(int(entry))
    return found


class RestartWatch(threading.Thread):
    """Restarts the primary, then polls /metrics until pg-primary has a successful run."""

    def __init__(self, url, server):
        super().__init__(daemon=True)
        self.url, self.server = url, server
        self.restart_s = None   # how long pg_ctl restart took
        self.up_after_s = None  # restart end -> first successful run
        self.failed_runs = 0
        self.error = None

    def run(self):
        try:
            text = metrics(self.url)
            failures0 = metric(text, "tocsin_probe_failures_total", "pg-primary") or 0
            begin = time.monotonic()
            self.server.restart()
            end = time.monotonic()
            self.restart_s = end - begin
            runs_at_end = metric(metrics(self.url), "tocsin_probe_runs_total", "pg-primary")
            deadline = end + 3 * INTERVAL_S
            while time.monotonic() < deadline:
                text = metrics(self.url)
                runs = metric(text, "tocsin_probe_runs_total", "pg-primary")
                ok = metric(text, "tocsin_probe_success", "pg-primary")
                self.failed_runs = (metric(text, "tocsin_probe_failures_total", "pg-primary")
                                    or 0) - failures0
                if runs > runs_at_end and ok == 1:
                    self.up_after_s = time.monotonic() - end
                    return
                time.sleep(0.25)
        except Exception as e:  # noqa: BLE001 - reported in the summary
            self.error = repr(e)


def main():
    reason = pgcluster.missing_reason()
    if reason is not None:
        fail_setup(reason)
    for plugin in ("check_tcp", "check_load", "check_disk", "check_procs"):
        if not os.access(f"{PLUGINS}/{plugin}", os.X_OK):
            fail_setup(f"{PLUGINS}/{plugin} missing: install monitoring-plugins-basic")

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    threading.Thread(target=serve, args=(listener,), daemon=True).start()

    cluster = pgcluster.Cluster()
    workdir = tempfile.mkdtemp(prefix="tocsin-soak-")
    proc = None
    log = None
    try:
        primary = cluster.init_primary()
        cluster.add_standby()
        for name, body in FIXTURES.items():
            path = os.path.join(workdir, name)
            with open(path, "w") as f:
                f.write("#!/bin/sh\n" + body)
            os.chmod(path, 0o755)
        lines = [f"interval: {INTERVAL_S}s", "timeout: 5s", "retention: [10s:1h]", "probes:"]
        lines += pg_probe("pg-primary", primary, cluster)
        lines += pg_probe("pg-standby", cluster.standbys[0], cluster)
        lines += ["  - name: libvirt", "    type: libvirt", "    uri: test:///default"]
        lines += exec_probes(listener.getsockname()[1], workdir)
        config = os.path.join(workdir, "soak.yml")
        with open(config, "w") as f:
            f.write("\n".join(lines) + "\n")

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = os.path.join(workdir, "tocsind.log")
        log = open(log_path, "w")
        proc = subprocess.Popen([tocsind, "--config", config, "--listen", f"127.0.0.1:{port}",
                                 "--data-dir", os.path.join(workdir, "data"),
                                 "--log-level", "notice"], stdout=log, stderr=subprocess.STDOUT)
        started = time.monotonic()
        deadline = started + 30
        while True:
            try:
                metrics(url)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    fail_setup("tocsind did not start:\n" + open(log_path).read()[-3000:])
                time.sleep(0.2)

        samples = []          # (minute, rss KiB, fds, threads)
        sightings = 0         # zombie children seen in one check
        lingering = set()     # seen in two checks in a row
        previous = set()
        watch = None
        next_zombie_check = time.monotonic()
        minute = 1
        while minute <= MINUTES:
            now = time.monotonic()
            if proc.poll() is not None:
                break
            if watch is None and now >= started + RESTART_MINUTE * 60:
                watch = RestartWatch(url, primary)
                watch.start()
            if now >= next_zombie_check:
                current = zombie_children(proc.pid)
                sightings += len(current)
                lingering |= current & previous
                previous = current
                next_zombie_check = now + ZOMBIE_CHECK_S
            if now >= started + minute * 60:
                samples.append((minute, rss_kib(proc.pid), fds(proc.pid), threads(proc.pid)))
                print(f"soak-probes: minute {minute}: rss={samples[-1][1]} KiB "
                      f"fds={samples[-1][2]} threads={samples[-1][3]} "
                      f"zombies lingering={len(lingering)} seen once={sightings}", flush=True)
                minute += 1
            time.sleep(0.2)

        text = metrics(url) if proc.poll() is None else ""
        if watch is not None:
            watch.join(timeout=60)
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
        cluster.stop()
        listener.close()

    return report(samples, sightings, lingering, watch, text, exit_code, log_text, workdir)


def report(samples, sightings, lingering, watch, text, exit_code, log_text, workdir):
    problems = []
    if len(samples) < MINUTES:
        problems.append(f"tocsind ended after {len(samples)} of {MINUTES} minutes")
    base = next((s for s in samples if s[0] == BASELINE_MINUTE), None)
    if base is not None:
        rss_limit = base[1] + max(RSS_TOLERANCE_MIN_KIB, base[1] * RSS_TOLERANCE_PCT / 100)
        for minute, rss, fd_count, _ in samples:
            if minute > BASELINE_MINUTE and rss > rss_limit:
                problems.append(f"minute {minute}: RSS {rss} KiB > {rss_limit:.0f} KiB "
                                f"(minute {BASELINE_MINUTE}: {base[1]} KiB)")
            if minute > BASELINE_MINUTE and fd_count > base[2] + FD_TOLERANCE:
                problems.append(f"minute {minute}: {fd_count} fds > {base[2]} + {FD_TOLERANCE}")
    if lingering:
        problems.append(f"zombie children lingering 2 s or more: {sorted(lingering)}")
    if watch is None or watch.error is not None:
        problems.append("primary restart not done: "
                        + (watch.error if watch is not None else "soak too short"))
    elif watch.up_after_s is None or watch.up_after_s > 2 * INTERVAL_S + 1:
        problems.append(f"pg-primary not up within {2 * INTERVAL_S} s (+1 s) of the restart")
    if exit_code != 0:
        problems.append(f"tocsind exited with status {exit_code}")

    print()
    print(f"soak-probes: {MINUTES} min, 103 probes at {INTERVAL_S} s; cpus={os.cpu_count()} "
          f"load={os.getloadavg()[0]:.1f}")
    print("minute  rss_kib  fds  threads")
    for minute, rss, fd_count, thread_count in samples:
        print(f"{minute:6d}  {rss:7d}  {fd_count:3d}  {thread_count:7d}")
    if text:
        for probe_type in ("exec", "postgres", "libvirt"):
            runs = metric_sum(text, "tocsin_probe_runs_total", type=probe_type)
            failures = metric_sum(text, "tocsin_probe_failures_total", type=probe_type)
            print(f"{probe_type}: {runs:.0f} runs, {failures:.0f} failed")
        print(f"libvirt_up={metric(text, 'libvirt_up', 'libvirt')} "
              f"pg-standby pg_up={metric(text, 'pg_up', 'pg-standby')}")
    if watch is not None and watch.restart_s is not None:
        up = f"{watch.up_after_s:.1f} s" if watch.up_after_s is not None else "never"
        print(f"primary restart: pg_ctl took {watch.restart_s:.1f} s; up again {up} after it; "
              f"{watch.failed_runs:.0f} failed runs")
    for line in log_text.splitlines():
        if "probe=pg-primary" in line and "module=scheduler" in line and "->" in line:
            print("  " + line)
    errors = [line for line in log_text.splitlines() if "level=error" in line]
    print(f"zombie children: {len(lingering)} lingering, {sightings} single sightings; "
          f"error lines in the log: {len(errors)}")
    for problem in problems:
        print(f"soak-probes: FAIL: {problem}")
    rss1 = samples[0][1] if samples else 0
    rss_last = samples[-1][1] if samples else 0
    fds_last = samples[-1][2] if samples else 0
    up = watch.up_after_s if watch is not None and watch.up_after_s is not None else -1
    print(f"soak-probes: result={'fail' if problems else 'pass'} rss_kib_minute1={rss1} "
          f"rss_kib_last={rss_last} fds_last={fds_last} zombies={len(lingering)} "
          f"pg_up_after_restart_s={up:.1f}")
    if problems:
        print(f"soak-probes: work directory kept: {workdir}")
    else:
        subprocess.run(["rm", "-rf", workdir], check=False)
    return 1 if problems else 0


sys.exit(main())
PYTHON
)
exec /usr/bin/python3 -c "$program" "$top" "$tocsind"
