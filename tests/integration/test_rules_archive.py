"""Recording rules in the RRD archive: tocsind evaluates a recording rule every second over
the host probe's node_load1 and archives each result in the recorded series' RRD file. After
a restart the in-memory window is empty, so the values recorded before it must come back
from the file, both through `rrdtool fetch` and through /api/v1/query_range."""

import glob
import os
import re
import time

from conftest import rrdtool, wait_for
from proctree import write_proc_tree
from test_api_archive import query_range

RULES = """
groups:
  - name: archived
    interval: 1s
    rules:
      - record: host:load1:doubled
        expr: node_load1 * 2
        labels: {source: rule}
"""

# node_load1 of the fixture's /proc/loadavg is 0.52.
EXPECTED = 1.04


def config(root, rules_path):
    return f"""
interval: 1s
timeout: 900ms
retention: [1s:10m, 10s:1h]
rule_files: ["{rules_path}"]
probes:
  - name: fixture host
    type: host
    root: {root}
"""


def recorded_line(daemon):
    """The /metrics line of the recorded series, or None before its first evaluation."""
    for line in daemon.metrics().splitlines():
        if line.startswith("host:load1:doubled{"):
            return line
    return None


def host_runs(daemon):
    """Runs of the host probe so far, 0 before its first run."""
    for line in daemon.metrics().splitlines():
        if line.startswith('tocsin_probe_runs_total{probe="fixture host"'):
            return float(line.split()[-1])
    return 0


def fetch_values(path, start, end):
    """Known values of the file's 1 s AVERAGE rows in [start, end], as (time, value)."""
    out = rrdtool("fetch", path, "AVERAGE", "-r", "1", "-s", str(start), "-e", str(end))
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*(\d+):\s+(\S+)", line)
        if m and m.group(2).lower() not in ("nan", "-nan"):
            rows.append((int(m.group(1)), float(m.group(2))))
    return rows


def test_recorded_series_read_back_from_archive(daemon_factory, tmp_path):
    root = write_proc_tree(str(tmp_path / "root"))
    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(RULES)
    first = time.time()
    d = daemon_factory(config(root, rules_path))

    # The rule group runs every second, as the probe does.
    wait_for(lambda: host_runs(d) >= 10, timeout=40, what="10 runs of the host probe")
    line = recorded_line(d)
    assert line is not None, d.metrics()
    assert 'source="rule"' in line
    assert float(line.split()[-1]) == EXPECTED
    last = time.time()
    assert d.stop() == 0

    # The file name replaces the colons of the metric name. The recorded series is the
    # only one of its metric, so one file matches.
    files = glob.glob(os.path.join(d.data_dir, "host*load1*doubled*", "*.rrd"))
    assert len(files) == 1, sorted(os.listdir(d.data_dir))
    start = int(first) + 2
    end = int(last) - 1
    rows = fetch_values(files[0], start, end)
    # One 1 s row per evaluation; the first and last rows may be incomplete.
    assert len(rows) >= end - start - 2, rows
    assert {v for _, v in rows} == {EXPECTED}, rows

    # After the restart the window starts empty, so the range before it is read from the
    # archive. The archive serves only series that the running daemon has registered,
    # which happens at the rule's first evaluation after the restart.
    d.start()
    wait_for(lambda: recorded_line(d), timeout=20, what="a recording after the restart")
    status, body = query_range(d, query='host:load1:doubled{source="rule"}', start=start,
                               end=end, step=1)
    assert status == 200, body
    (series,) = body["data"]["result"]
    assert series["metric"]["__name__"] == "host:load1:doubled"
    times = [t for t, _ in series["values"]]
    assert all(start <= t <= end for t in times), times
    assert len(times) >= end - start - 2, series
    assert {float(v) for _, v in series["values"]} == {EXPECTED}, series
