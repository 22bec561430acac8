"""End-to-end tests of tocsind: archives, /metrics, reload and shutdown, with direct
RRD writes and through a real rrdcached."""

import glob
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import http_get, rrdtool, tocsind_path, wait_for
from proctree import write_proc_tree


def fixture_config(root, interval="1s", extra=""):
    return f"""
interval: {interval}
timeout: 900ms
retention: [1s:1h, 1m:2d]
{extra}
probes:
  - name: fixture host
    type: host
    root: {root}
    labels:
      site: test
"""


def rrd_files(data_dir, metric):
    return glob.glob(os.path.join(data_dir, metric, "*.rrd"))


def fetched_values(path, daemon=None, seconds=120):
    out = rrdtool("fetch", path, "AVERAGE", "-r", "1", "-s", f"-{seconds}", "-e", "now",
                  daemon=daemon)
    values = []
    for line in out.splitlines():
        m = re.match(r"\s*(\d+):\s+(\S+)", line)
        if m and m.group(2).lower() not in ("nan", "-nan"):
            values.append(float(m.group(2)))
    return values


@pytest.fixture(params=["direct", "rrdcached"])
def archive_mode(request, tmp_path):
    if request.param == "direct":
        yield None
        return
    request.getfixturevalue("rrdcached")
    yield request.getfixturevalue("rrdcached")


def test_archives_hold_sampled_values(daemon_factory, tmp_path, archive_mode):
    root = write_proc_tree(str(tmp_path / "root"))
    extra = f"rrdcached: {archive_mode.address}" if archive_mode else ""
    d = daemon_factory(fixture_config(root, extra=extra))
    rrd_daemon = archive_mode.address if archive_mode else None

    load = wait_for(lambda: rrd_files(d.data_dir, "node_load1"), what="node_load1 archive")
    assert len(load) == 1
    assert "fixture" not in os.path.basename(load[0]) or "/" not in os.path.basename(load[0])

    def load_values():
        return [v for v in fetched_values(load[0], daemon=rrd_daemon) if abs(v - 0.52) < 1e-9]

    wait_for(load_values, timeout=30, what="0.52 stored in the node_load1 archive")

    # A counter that does not move is archived as DDERIVE: its rate is 0, never negative.
    ctxt = wait_for(lambda: rrd_files(d.data_dir, "node_context_switches_total"),
                    what="counter archive")
    wait_for(lambda: fetched_values(ctxt[0], daemon=rrd_daemon), timeout=30,
             what="a counter rate in the archive")
    assert all(v == 0 for v in fetched_values(ctxt[0], daemon=rrd_daemon))

    info = rrdtool("info", load[0], daemon=rrd_daemon)
    assert "step = 1" in info
    assert 'ds[value].type = "GAUGE"' in info
    assert "ds[value].minimal_heartbeat = 2" in info
    assert 'rra[0].cf = "AVERAGE"' in info
    assert 'ds[value].type = "DDERIVE"' in rrdtool("info", ctxt[0], daemon=rrd_daemon)

    assert d.stop() == 0


def test_metrics_endpoint_serves_samples(daemon_factory, tmp_path):
    root = write_proc_tree(str(tmp_path / "root"))
    d = daemon_factory(fixture_config(root))

    body = wait_for(lambda: (m := d.metrics()) and "node_load1{" in m and m, what="node_load1")
    assert re.search(r'^node_load1\{probe="fixture host",site="test"\} 0\.52$', body, re.M)
    assert re.search(r'^node_network_receive_bytes_total\{device="lo",probe="fixture host",'
                     r'site="test"\} 181005683161$', body, re.M)
    assert re.search(r'^tocsin_probe_success\{probe="fixture host",site="test",type="host"\} 1$',
                     body, re.M)
    assert re.search(r'^tocsin_build_info\{version="[^"]+"\} 1$', body, re.M)
    assert body.count("# TYPE node_load1 gauge") == 1

    status, headers, _ = http_get(d.url + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")


def test_metrics_pass_promtool(daemon_factory, tmp_path):
    promtool = "/usr/bin/promtool"
    if not os.access(promtool, os.X_OK):
        pytest.skip("promtool is not installed (Debian package prometheus)")
    d = daemon_factory(fixture_config("/"))
    body = wait_for(lambda: (m := d.metrics()) and "node_load1{" in m and m, what="node_load1")
    r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                       text=True)
    # promtool exits 1 when the body does not parse and 3 when it parses but its lint
    # rules object. The only objection allowed is the camelCase in memory names, which
    # are node_exporter's own (node_memory_MemTotal_bytes), kept so dashboards work.
    assert r.returncode in (0, 3), r.stdout + r.stderr
    findings = [line for line in r.stderr.splitlines() if line.strip()]
    for line in findings:
        assert re.match(r"node_memory_\w+ metric names should be written in 'snake_case'",
                        line), line


def test_sighup_with_broken_config_keeps_running(daemon_factory, tmp_path):
    root = write_proc_tree(str(tmp_path / "root"))
    d = daemon_factory(fixture_config(root))
    wait_for(lambda: 'probe="fixture host"' in d.metrics(), what="first probe's series")

    d.write_config(fixture_config(root).replace("interval: 1s", 'interval: "10x"'))
    d.signal(signal.SIGHUP)
    wait_for(lambda: "reload rejected" in d.log_text(), what="reload rejected in the log")
    assert re.search(r'tocsin\.yml:\d+:\d+: interval: \\"10x\\" is not a duration',
                     d.log_text()), d.log_text()[-2000:]
    assert d.proc.poll() is None
    assert "tocsin_config_last_reload_successful 0" in d.metrics()
    # The old probe keeps running: its run counter still grows.
    def runs():
        m = re.search(r'^tocsin_probe_runs_total\{probe="fixture host".*\} (\d+)$', d.metrics(),
                      re.M)
        return int(m.group(1)) if m else 0
    before = runs()
    wait_for(lambda: runs() > before, timeout=10, what="old probe still running")

    # A valid config with another probe replaces the old one.
    d.write_config(fixture_config(root).replace("fixture host", "renamed"))
    d.signal(signal.SIGHUP)
    wait_for(lambda: 'probe="renamed"' in d.metrics(), what="renamed probe's series")
    assert 'probe="fixture host"' not in d.metrics()
    assert "tocsin_config_last_reload_successful 1" in d.metrics()


def test_sigterm_flushes_archives(daemon_factory, tmp_path, archive_mode):
    root = write_proc_tree(str(tmp_path / "root"))
    extra = f"rrdcached: {archive_mode.address}" if archive_mode else ""
    d = daemon_factory(fixture_config(root, extra=extra))
    rrd_daemon = archive_mode.address if archive_mode else None
    load = wait_for(lambda: rrd_files(d.data_dir, "node_load1"), what="node_load1 archive")
    wait_for(lambda: "tocsin_store_updates_total" in d.metrics(), what="store metrics")
    time.sleep(2.5)

    stopped_at = time.time()
    assert d.stop() == 0
    assert "archives flushed" in d.log_text()
    out = rrdtool("lastupdate", load[0], daemon=rrd_daemon)
    last = int(re.search(r"^(\d+):", out, re.M).group(1))
    # The last sample taken before SIGTERM is on disk (one interval of slack).
    assert last >= int(stopped_at) - 2, out


def test_archive_files_reused_after_restart(daemon_factory, tmp_path):
    root = write_proc_tree(str(tmp_path / "root"))
    d = daemon_factory(fixture_config(root))
    load = wait_for(lambda: rrd_files(d.data_dir, "node_load1"), what="node_load1 archive")
    time.sleep(1.5)
    assert d.stop() == 0
    first = int(re.search(r"^(\d+):", rrdtool("lastupdate", load[0]), re.M).group(1))

    d.start()
    wait_for(lambda: int(re.search(r"^(\d+):", rrdtool("lastupdate", load[0]),
                                   re.M).group(1)) > first, timeout=15,
             what="updates to the same file after restart")
    assert rrd_files(d.data_dir, "node_load1") == load


def test_once_prints_this_hosts_samples():
    r = subprocess.run([tocsind_path(), "--once"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r'^  node_load1\{probe="host"\} \d', r.stdout, re.M), r.stdout
    assert re.search(r'^  node_memory_MemTotal_bytes\{probe="host"\} \d', r.stdout, re.M)
    assert re.search(r"^probe host \(type host\): ok in ", r.stdout, re.M)


def test_check_config_reports_every_error(tmp_path):
    cfg = tmp_path / "bad.yml"
    cfg.write_text("interval: 10x\nprobes:\n  - name: a\n    type: nosuch\n"
                   "  - name: a\n    type: host\n    intervall: 5s\n")
    r = subprocess.run([tocsind_path(), "--check-config", "--config", str(cfg)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    err = r.stderr
    assert 'bad.yml:1:11: interval: "10x" is not a duration' in err, err
    assert "bad.yml:4:11: probes[0].type:" in err, err
    assert 'bad.yml:5:11: probes[1].name: duplicate probe name "a"' in err, err
    assert "bad.yml:7:5: probes[1].intervall:" in err, err
    assert "did you mean" in err, err


def test_check_config_rejects_short_heartbeat(tmp_path):
    cfg = tmp_path / "hb.yml"
    cfg.write_text("archive: { heartbeat: 2s }\nprobes:\n  - { name: h1, type: host, "
                   "interval: 3s }\n")
    r = subprocess.run([tocsind_path(), "--check-config", "--config", str(cfg)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "hb.yml:3:39: probes[0].interval: heartbeat (2s, from archive.heartbeat) is " \
        "shorter than probe interval (3s)" in r.stderr, r.stderr


def test_check_config_accepts_embedded_default():
    r = subprocess.run([tocsind_path(), "--check-config"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "host" in r.stdout
