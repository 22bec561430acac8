"""The exec probe against the real Debian monitoring plugins and small fixture plugins
written by each test: status mapping, performance data, long and huge output, commands
that ignore SIGTERM or leave a child holding the pipe, Prometheus output, and no
zombie processes left behind."""

import os
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import free_port, http_get, tocsind_path, wait_for
from http_servers import RunningServer

PLUGINS = "/usr/lib/nagios/plugins"


def need_plugin(name):
    path = os.path.join(PLUGINS, name)
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} missing (Debian package monitoring-plugins-basic)")
    return path


def write_plugin(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def config(probes, interval="2s", timeout="2s"):
    return f"interval: {interval}\ntimeout: {timeout}\nprobes:\n" + probes


def sample(text, name, **labels):
    """The value of the first sample of `name` whose labels include `labels`, or None."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return line.rsplit(" ", 1)[1]
    return None


def zombie_children(pid):
    """PIDs of zombie processes whose parent is `pid`, from /proc."""
    zombies = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z" and int(fields[1]) == pid:
            zombies.append(int(entry))
    return zombies


class TcpListener:
    """A TCP server on 127.0.0.1 that accepts and closes connections, for check_tcp."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            conn.close()

    def stop(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def tcp_listener():
    listener = TcpListener()
    yield listener
    listener.stop()


def test_debian_plugins_report_status_and_perfdata(daemon_factory, tcp_listener, tmp_path):
    check_tcp = need_plugin("check_tcp")
    check_dummy = need_plugin("check_dummy")
    check_load = need_plugin("check_load")
    check_disk = need_plugin("check_disk")
    probes = f"""
  - name: tcp
    type: exec
    command: [{check_tcp}, -H, 127.0.0.1, -p, "{tcp_listener.port}"]
  - name: dummy_warning
    type: exec
    command: [{check_dummy}, "1", "degraded here"]
  - name: dummy_critical
    type: exec
    command: [{check_dummy}, "2", "broken"]
  - name: load
    type: exec
    command: [{check_load}, -w, "100,100,100", -c, "200,200,200"]
  - name: disk
    type: exec
    command: [{check_disk}, -w, "1%", -c, "1%", -p, {tmp_path}]
"""
    d = daemon_factory(config(probes))
    names = ("tcp", "dummy_warning", "dummy_critical", "load", "disk")
    text = wait_for(lambda: (m := d.metrics()) and all(
        sample(m, "tocsin_exec_status", probe=p) is not None for p in names) and m,
        timeout=20, what="exec samples")
    assert sample(text, "tocsin_exec_status", probe="tcp") == "0"
    assert float(sample(text, "tocsin_exec_perfdata", probe="tcp", label="time",
                        uom="seconds")) >= 0
    assert sample(text, "tocsin_exec_perfdata_max", probe="tcp", label="time") is not None
    assert sample(text, "tocsin_probe_success", probe="tcp") == "1"

    assert sample(text, "tocsin_exec_status", probe="dummy_warning") == "1"
    # The scheduler counts a WARNING as up: the target works, degraded.
    assert sample(text, "tocsin_probe_success", probe="dummy_warning") == "1"
    assert sample(text, "tocsin_exec_status", probe="dummy_critical") == "2"
    assert sample(text, "tocsin_probe_success", probe="dummy_critical") == "0"

    assert sample(text, "tocsin_exec_status", probe="load") == "0"
    assert sample(text, "tocsin_exec_perfdata_warning", probe="load", label="load1",
                  bound="upper") == "100"
    assert sample(text, "tocsin_exec_perfdata_critical", probe="load", label="load15",
                  bound="upper") == "200"

    # check_disk writes MB, which tocsin reads as MiB and exports in bytes.
    disk = [l for l in text.splitlines()
            if l.startswith("tocsin_exec_perfdata{") and 'probe="disk"' in l]
    assert disk and all('uom="bytes"' in l for l in disk), disk
    assert float(disk[0].rsplit(" ", 1)[1]) > 0

    log = d.log_text()
    assert re.search(r'probe=dummy_warning .*status=warning reason=\\"WARNING: degraded here',
                     log), log[-3000:]
    assert re.search(r'probe=dummy_critical .*status=critical reason=\\"CRITICAL: broken', log)


@pytest.fixture
def http_server():
    server = RunningServer()
    yield server
    server.stop()


def test_check_http_and_check_procs(daemon_factory, http_server, request):
    check_http = need_plugin("check_http")
    check_procs = need_plugin("check_procs")
    refused_port = free_port()
    # check_procs leaves out its own parent, tocsind, so it counts a process started here:
    # a sleep identified by its argument.
    marker = str(100000 + os.getpid())
    sleeper = subprocess.Popen(["sleep", marker])
    request.addfinalizer(sleeper.kill)
    probes = f"""
  - name: http_ok
    type: exec
    command: [{check_http}, -H, 127.0.0.1, -p, "{http_server.port}", -u, /status/200]
  - name: http_500
    type: exec
    command: [{check_http}, -H, 127.0.0.1, -p, "{http_server.port}", -u, /status/500]
  - name: http_refused
    type: exec
    command: [{check_http}, -H, 127.0.0.1, -p, "{refused_port}"]
  - name: procs_ok
    type: exec
    command: [{check_procs}, -c, "1:", -C, sleep, -a, "{marker}"]
  - name: procs_none
    type: exec
    command: [{check_procs}, -c, "1:", -C, no-such-command]
"""
    d = daemon_factory(config(probes))
    names = ("http_ok", "http_500", "http_refused", "procs_ok", "procs_none")
    text = wait_for(lambda: (m := d.metrics()) and all(
        sample(m, "tocsin_exec_status", probe=p) is not None for p in names) and m,
        timeout=20, what="exec samples")

    assert sample(text, "tocsin_exec_status", probe="http_ok") == "0"
    assert sample(text, "tocsin_probe_success", probe="http_ok") == "1"
    assert float(sample(text, "tocsin_exec_perfdata", probe="http_ok", label="time",
                        uom="seconds")) >= 0
    # check_http counts the whole response: the headers and the 12-byte body.
    assert float(sample(text, "tocsin_exec_perfdata", probe="http_ok", label="size",
                        uom="bytes")) > 12
    assert ("GET", "/status/200") in [(m, p) for m, p, _ in http_server.server.requests]

    assert sample(text, "tocsin_exec_status", probe="http_500") == "2"
    assert sample(text, "tocsin_probe_success", probe="http_500") == "0"
    assert float(sample(text, "tocsin_exec_perfdata", probe="http_500", label="time",
                        uom="seconds")) >= 0
    assert sample(text, "tocsin_exec_status", probe="http_refused") == "2"

    assert sample(text, "tocsin_exec_status", probe="procs_ok") == "0"
    assert float(sample(text, "tocsin_exec_perfdata", probe="procs_ok", label="procs")) >= 1
    assert sample(text, "tocsin_exec_perfdata_critical", probe="procs_ok", label="procs",
                  bound="lower") == "1"
    assert sample(text, "tocsin_exec_status", probe="procs_none") == "2"
    assert sample(text, "tocsin_exec_perfdata", probe="procs_none", label="procs") == "0"

    log = d.log_text()
    assert re.search(r'probe=http_500 .*status=critical reason=\\"HTTP CRITICAL: HTTP/1.\d '
                     r'500', log), log[-3000:]
    assert re.search(r'probe=http_refused .*status=critical reason=\\"[^"]*'
                     r'Connection refused', log), log[-3000:]


def test_fixture_plugin_output(daemon_factory, tmp_path):
    quoted = write_plugin(tmp_path, "quoted", r"""
echo "DISK OK - all fine | 'SMTP CONNECTIONS'=1766;7000;10000;; 'it''s a=b'=3;;;0;"
echo "second line of long output"
echo "third line | 'Rain probability'=80%;@10:20;~:50 unknown=U;1 used=75GB;90;95;0;100"
echo "bytes_out=5c broken=;; time=250ms;1:;2:"
exit 0
""")
    exit4 = write_plugin(tmp_path, "exit4", 'echo "odd exit code"\nexit 4\n')
    huge = write_plugin(tmp_path, "huge", """
echo "OK huge | first=1"
head -c 1048576 /dev/zero | tr '\\0' 'x'
exit 0
""")
    probes = f"""
  - name: quoted
    type: exec
    command: [{quoted}]
  - name: exit4
    type: exec
    command: [{exit4}]
  - name: huge
    type: exec
    command: [{huge}]
"""
    d = daemon_factory(config(probes))
    text = wait_for(lambda: (m := d.metrics()) and all(
        sample(m, "tocsin_exec_status", probe=p) is not None
        for p in ("quoted", "exit4", "huge")) and m, timeout=20, what="fixture samples")

    assert sample(text, "tocsin_exec_perfdata", label="SMTP CONNECTIONS", uom="") == "1766"
    assert sample(text, "tocsin_exec_perfdata_warning", label="SMTP CONNECTIONS",
                  bound="upper") == "7000"
    assert sample(text, "tocsin_exec_perfdata", label="it's a=b") == "3"
    assert sample(text, "tocsin_exec_perfdata_min", label="it's a=b") == "0"
    assert sample(text, "tocsin_exec_perfdata", label="Rain probability", uom="ratio") == "0.8"
    assert sample(text, "tocsin_exec_perfdata_warning", label="Rain probability",
                  bound="inside_lower") == "0.1"
    assert sample(text, "tocsin_exec_perfdata_warning", label="Rain probability",
                  bound="inside_upper") == "0.2"
    assert sample(text, "tocsin_exec_perfdata_critical", label="Rain probability",
                  bound="upper") == "0.5"
    assert sample(text, "tocsin_exec_perfdata_critical", label="Rain probability",
                  bound="lower") is None
    assert sample(text, "tocsin_exec_perfdata", label="unknown") == "NaN"
    assert sample(text, "tocsin_exec_perfdata", label="used", uom="bytes") == str(75 * 2**30)
    assert sample(text, "tocsin_exec_perfdata_total", label="bytes_out") == "5"
    assert sample(text, "tocsin_exec_perfdata", label="time", uom="seconds") == "0.25"
    assert sample(text, "tocsin_exec_perfdata_warning", label="time", bound="lower") == "0.001"
    assert sample(text, "tocsin_exec_perfdata_errors", probe="quoted") == "1"
    assert sample(text, "tocsin_probe_success", probe="quoted") == "1"

    assert sample(text, "tocsin_exec_status", probe="exit4") == "4"
    assert sample(text, "tocsin_probe_success", probe="exit4") == "0"
    assert re.search(r'probe=exit4 .*status=unknown reason=\\"exit status 4: odd exit code',
                     d.log_text())

    assert sample(text, "tocsin_exec_status", probe="huge") == "0"
    assert sample(text, "tocsin_exec_perfdata", probe="huge", label="first") == "1"
    discarded = int(float(sample(text, "tocsin_exec_output_discarded_bytes", probe="huge")))
    assert discarded == len("OK huge | first=1\n") + 1048576 - 8192

    # The exposition of every family above passes promtool's checks.
    promtool = "/usr/bin/promtool"
    if os.access(promtool, os.X_OK):
        exec_lines = "\n".join(l for l in text.splitlines() if "tocsin_exec_" in l) + "\n"
        r = subprocess.run([promtool, "check", "metrics"], input=exec_lines,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def processes_with_cmdline(argv):
    """PIDs of live (not zombie) processes whose command line is exactly `argv`."""
    wanted = b"\0".join(a.encode() for a in argv) + b"\0"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f.read() == wanted:
                    found.append(int(entry))
        except OSError:
            continue
    return found


def test_sigterm_ignored_killed_and_reaped(daemon_factory, tmp_path):
    stubborn = write_plugin(tmp_path, "stubborn", "trap '' TERM\nsleep 31\n")
    probes = f"""
  - name: stubborn
    type: exec
    kill_after: 1s
    command: [{stubborn}]
"""
    d = daemon_factory(config(probes, interval="4s", timeout="1s"))
    wait_for(lambda: processes_with_cmdline(["sleep", "31"]), timeout=15,
             what="stubborn plugin started")
    wait_for(lambda: re.search(r"probe=stubborn .*status=timeout", d.log_text()), timeout=10,
             what="timeout of the stubborn plugin")
    assert sample(d.metrics(), "tocsin_probe_success", probe="stubborn") == "0"
    # SIGTERM is ignored, so only SIGKILL after kill_after ends the group, sleep included.
    wait_for(lambda: not processes_with_cmdline(["sleep", "31"])
             and not processes_with_cmdline(["/bin/sh", stubborn]),
             timeout=4, what="stubborn group killed")
    wait_for(lambda: not zombie_children(d.proc.pid), timeout=5, what="no zombies")


def test_child_holding_pipe_does_not_hang_run(daemon_factory, tmp_path):
    forker = write_plugin(tmp_path, "forker",
                          "sleep 61 &\necho 'OK forked | kids=1'\nexit 0\n")
    probes = f"""
  - name: forker
    type: exec
    command: [{forker}]
"""
    d = daemon_factory(config(probes, interval="5s", timeout="5s"))
    text = wait_for(lambda: (m := d.metrics()) and sample(m, "tocsin_probe_success",
                                                          probe="forker") is not None and m,
                    timeout=15, what="forker run")
    # The run ends about a second after the plugin exited, well before the 5 s timeout.
    assert sample(text, "tocsin_probe_success", probe="forker") == "1"
    assert sample(text, "tocsin_exec_perfdata", label="kids") == "1"
    assert float(sample(text, "tocsin_probe_duration_seconds", probe="forker")) < 2.5
    # The sleeping grandchild was in the plugin's process group and was killed with it.
    wait_for(lambda: not processes_with_cmdline(["sleep", "61"]), timeout=3,
             what="grandchild killed")
    wait_for(lambda: not zombie_children(d.proc.pid), timeout=5, what="no zombies")


def test_prometheus_output_and_parse_error(daemon_factory, tmp_path):
    good = write_plugin(tmp_path, "good", r"""
cat <<'EOF'
# HELP app_jobs_total Jobs done.
# TYPE app_jobs_total counter
app_jobs_total{queue="a \"b\""} 12 1700000000000
# TYPE app_temp gauge
app_temp{probe="x"} -Inf
EOF
""")
    bad = write_plugin(tmp_path, "bad", r"""
printf 'app_ok 1\napp_bad{a="1" 2\n'
""")
    probes = f"""
  - name: good
    type: exec
    output: prometheus
    command: [{good}]
  - name: bad
    type: exec
    output: prometheus
    command: [{bad}]
"""
    d = daemon_factory(config(probes))
    text = wait_for(lambda: (m := d.metrics()) and sample(m, "tocsin_exec_status", probe="bad")
                    is not None and sample(m, "app_jobs_total") is not None and m,
                    timeout=20, what="prometheus samples")
    assert sample(text, "app_jobs_total", queue='a \\"b\\"', probe="good") == "12"
    assert sample(text, "app_temp", exported_probe="x", probe="good") == "-Inf"
    assert "# TYPE app_jobs_total counter" in text
    assert sample(text, "app_ok") is None
    assert sample(text, "tocsin_probe_success", probe="bad") == "0"
    assert re.search(r'probe=bad .*status=parse_error reason=\\"exposition line 2, column \d+: '
                     r"expected ',' or '}'", d.log_text())


def test_once_and_config_errors(tmp_path):
    check_dummy = need_plugin("check_dummy")
    cfg = tmp_path / "once.yml"
    cfg.write_text(config(f"""
  - name: dummy
    type: exec
    command: [{check_dummy}, "0", "all good"]
"""))
    r = subprocess.run([tocsind_path(), "--config", str(cfg), "--once",
                        "--data-dir", str(tmp_path / "data")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'tocsin_exec_status{probe="dummy"} 0' in r.stdout
    assert "probe dummy (type exec): ok" in r.stdout
    assert "OK: all good" in r.stdout

    cfg.write_text(config("""
  - name: relative
    type: exec
    command: [check_dummy, "0"]
  - name: badmode
    type: exec
    command: [/bin/true]
    output: json
  - name: empty
    type: exec
    command: []
"""))
    r = subprocess.run([tocsind_path(), "--check-config", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    out = r.stdout + r.stderr
    assert re.search(r'once.yml:7:\d+: probes\[0\]\.command: "check_dummy" is not an absolute '
                     r"path", out), out
    assert re.search(r'once.yml:11:\d+: probes\[1\]\.output: "json" is not an output format', out)
    assert re.search(r"once.yml:14:\d+: probes\[2\]\.command: the list is empty", out), out


def test_missing_command_fails_run(daemon_factory, tmp_path):
    probes = f"""
  - name: missing
    type: exec
    command: [{tmp_path}/no-such-plugin]
"""
    d = daemon_factory(config(probes))
    wait_for(lambda: 'probe=missing' in d.log_text() and "status=not_found" in d.log_text(),
             timeout=15, what="not_found status")
    assert http_get(d.url + "/metrics")[0] == 200


def test_invalid_utf8_output_keeps_metrics_valid(daemon_factory, tmp_path):
    # Plugin output is arbitrary bytes; one bad byte in a label must not break the scrape.
    plugin = write_plugin(tmp_path, "badutf.sh",
                          "printf 'CRITICAL - bad \\377\\376 text | "
                          "'\"'\"'\\303(lab'\"'\"'=1;; ok=3s;4;5\\n'\nexit 2\n")
    d = daemon_factory(config(f"  - {{name: badutf, type: exec, command: [{plugin}]}}\n"))

    def scrape():
        status, _, body = http_get(d.url + "/metrics")  # decodes as UTF-8 or raises
        return "tocsin_exec_perfdata{" in body and body

    body = wait_for(scrape, timeout=20, what="perfdata series")
    assert sample(body, "tocsin_exec_perfdata", label="?(lab") == "1", body
    failure = [line for line in body.splitlines()
               if line.startswith("tocsin_probe_last_failure_info{")]
    assert len(failure) == 1, body
    assert "bad ?? text" in failure[0], failure


def processes_named(comm):
    """PIDs of processes, zombies included, whose command name in /proc is `comm`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if stat.split(" (", 1)[1].rsplit(")", 1)[0] == comm:
            found.append(int(entry))
    return found


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def test_descendant_in_new_session_killed_and_reaped(daemon_factory, tmp_path):
    # A unique duration names this test's sleeps among every process on the machine.
    seconds = f"301.{os.getpid() % 100000:05d}"
    escaper = write_plugin(tmp_path, "escaper",
                           f"setsid sleep {seconds} >/dev/null 2>&1 &\n"
                           "echo 'OK left one behind'\nexit 0\n")
    probes = f"""
  - name: escaper
    type: exec
    command: [{escaper}]
"""
    d = daemon_factory(config(probes, interval="1s", timeout="1s"))
    try:
        wait_for(lambda: int(float(sample(d.metrics(), "tocsin_probe_runs_total",
                                          probe="escaper") or 0)) >= 4,
                 timeout=20, what="four runs of the escaping plugin")
        assert sample(d.metrics(), "tocsin_probe_success", probe="escaper") == "1"
        # Each run's escaped sleep is killed once the run ends; at most the last run's
        # may still be alive for a moment.
        wait_for(lambda: len(processes_with_cmdline(["sleep", seconds])) <= 1, timeout=3,
                 what="escaped sleeps killed")
        d.stop()
        wait_for(lambda: not processes_with_cmdline(["sleep", seconds]), timeout=5,
                 what="no escaped sleep after tocsind stopped")
    finally:
        kill_all(processes_with_cmdline(["sleep", seconds]))


def test_once_waits_for_kill_after_and_reaps(tmp_path):
    seconds = f"302.{os.getpid() % 100000:05d}"
    # The plugin's file name is its process name: unique, and under the 15 characters kept.
    name = f"stub{os.getpid()}"
    stubborn = write_plugin(tmp_path, name, f"trap '' TERM\nsleep {seconds}\n")
    cfg = tmp_path / "once.yml"
    cfg.write_text(config(f"""
  - name: stubborn
    type: exec
    kill_after: 1s
    command: [{stubborn}]
""", timeout="1s"))
    try:
        started = time.monotonic()
        r = subprocess.run([tocsind_path(), "--config", str(cfg), "--once",
                            "--data-dir", str(tmp_path / "data")],
                           capture_output=True, text=True, timeout=30)
        elapsed = time.monotonic() - started
        assert r.returncode == 1, r.stdout + r.stderr
        assert "probe stubborn (type exec): timeout" in r.stdout, r.stdout
        # SIGTERM is ignored: --once returns only after kill_after and SIGKILL, with the
        # plugin and its sleep reaped, not left to PID 1 as zombies.
        assert 1.8 <= elapsed < 10, elapsed
        assert not processes_with_cmdline(["sleep", seconds])
        assert not processes_named(name)
    finally:
        kill_all(processes_with_cmdline(["sleep", seconds]))
