"""/api/v1/query_range over the RRD archive. tocsind samples a host probe and a tcp probe
every second and is restarted, so that its in-memory windows are empty. The range before
the restart must come back from the archive files, written directly or through a real
rrdcached."""

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import wait_for
from proctree import write_proc_tree
from test_graph import listener  # noqa: F401 - a pytest fixture: a TCP port for the probe


def archive_config(root, up_port, extra=""):
    return f"""
interval: 1s
timeout: 900ms
retention: [1s:10m, 10s:1h]
{extra}
probes:
  - name: fixture host
    type: host
    root: {root}
  - name: web
    type: tcp
    target: 127.0.0.1:{up_port}
"""


def query_range(daemon, **params):
    """Returns (status, decoded JSON body) of GET /api/v1/query_range."""
    url = daemon.url + "/api/v1/query_range?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def metric_value(daemon, prefix):
    """The value of the first /metrics line that starts with prefix."""
    lines = [line for line in daemon.metrics().splitlines() if line.startswith(prefix)]
    assert lines, f"no {prefix} line in /metrics"
    return lines[0].split()[-1]


def runs_of_web(daemon):
    """Runs of the web probe so far, 0 before its first run."""
    lines = [line for line in daemon.metrics().splitlines()
             if line.startswith('tocsin_probe_runs_total{probe="web"')]
    return float(lines[0].split()[-1]) if lines else 0


def sample_then_restart(daemon_factory, tmp_path, port, extra="", runs=10):
    """Runs the daemon for `runs` runs of the web probe (one per second), restarts it, and
    returns (daemon, first, last, node_load1 and probe success as /metrics showed them
    before the restart)."""
    root = write_proc_tree(str(tmp_path / "root"))
    first = time.time()
    d = daemon_factory(archive_config(root, port, extra))
    wait_for(lambda: runs_of_web(d) >= runs, timeout=runs + 30,
             what=f"{runs} runs of the web probe")
    load = metric_value(d, "node_load1")
    success = metric_value(d, 'tocsin_probe_success{probe="web"')
    last = time.time()
    assert d.stop() == 0
    d.start()
    # The registry lists a series, and so its archive file, from its first sample on.
    wait_for(lambda: runs_of_web(d) >= 1, timeout=30, what="a run after the restart")
    return d, first, last, load, success


def assert_archive_values(d, first, last, query, expected):
    start = int(first) + 2
    end = int(last) - 1
    status, body = query_range(d, query=query, start=start, end=end, step=1)
    assert status == 200, body
    assert body["data"]["resultType"] == "matrix"
    (series,) = body["data"]["result"]
    times = [t for t, _ in series["values"]]
    assert times == sorted(times)
    assert all(start <= t <= end for t in times), times
    # The archive has one row per second from its first full row on.
    assert len(times) >= end - start - 2, series
    assert {v for _, v in series["values"]} == {expected}
    return series


def test_range_before_restart_from_archive(daemon_factory, tmp_path, listener):
    # 22 s of samples contain at least one complete 10 s row with every second known.
    d, first, last, load, success = sample_then_restart(daemon_factory, tmp_path,
                                                        listener.port, runs=22)

    series = assert_archive_values(d, first, last, "node_load1", load)
    assert series["metric"]["__name__"] == "node_load1"
    series = assert_archive_values(d, first, last, 'tocsin_probe_success{probe="web"}',
                                   success)
    assert series["metric"]["probe"] == "web"

    # A coarser step reads the 10 s tier and still returns values at the requested steps.
    start = int(first) - 30
    status, body = query_range(d, query="node_load1", start=start, end=int(last), step=10)
    assert status == 200, body
    (series,) = body["data"]["result"]
    assert all((t - start) % 10 == 0 for t, _ in series["values"])
    assert series["values"], series
    # A 10 s row is the average of ten equal values, which may differ in the last bit.
    assert all(float(v) == pytest.approx(float(load)) for _, v in series["values"])


def test_range_after_restart_joins_window(daemon_factory, tmp_path, listener):
    d, first, _, load, _ = sample_then_restart(daemon_factory, tmp_path, listener.port)
    wait_for(lambda: runs_of_web(d) >= 3, timeout=30, what="3 runs after the restart")

    # The range spans the restart: archive before it, window after it, one series.
    end = int(time.time())
    status, body = query_range(d, query="node_load1", start=int(first) + 2, end=end, step=1)
    assert status == 200, body
    (series,) = body["data"]["result"]
    assert series["values"][-1][0] >= end - 2
    assert {v for _, v in series["values"]} == {load}


def test_archive_rejects_other_expressions(daemon_factory, tmp_path, listener):
    d, first, last, _, _ = sample_then_restart(daemon_factory, tmp_path, listener.port)

    status, body = query_range(d, query="node_load1 * 2", start=int(first), end=int(last),
                               step=1)
    assert status == 422, body
    assert "plain selectors" in body["detail"]
    assert "reaches back to" in body["detail"]

    status, body = query_range(d, query='tocsin_probe_runs_total{probe="web"}',
                               start=int(first), end=int(last), step=1)
    assert status == 422, body
    assert "counter" in body["detail"]

    # Expressions without selectors need no history.
    status, body = query_range(d, query="1 + 1", start=int(first), end=int(last), step=1)
    assert status == 200, body


def test_range_from_archive_through_rrdcached(daemon_factory, tmp_path, listener, rrdcached):
    # rrdcached keeps the updates in memory (-w 3600), so the read must flush the file.
    d, first, last, load, _ = sample_then_restart(daemon_factory, tmp_path, listener.port,
                                                  extra=f"rrdcached: {rrdcached.address}")

    assert_archive_values(d, first, last, "node_load1", load)


def test_range_from_archive_through_rrdcached_tcp(daemon_factory, tmp_path, listener,
                                                  rrdcached_tcp):
    # Over TCP tocsind reads nothing from disk: rrdcached sends the rows (FETCH) of the
    # file it keeps below its own base directory.
    d, first, last, load, _ = sample_then_restart(daemon_factory, tmp_path, listener.port,
                                                  extra=f"rrdcached: {rrdcached_tcp.address}")

    assert_archive_values(d, first, last, "node_load1", load)
