"""tocsin's expression engine and Prometheus's agree: the same expressions over the same
synthetic series, evaluated by tests/tools/expr_query and by `promtool test rules` (Debian's
prometheus package), which is given tocsin's results as the expected samples."""

import os
import shutil
import subprocess

import pytest

# Input series: (selector, values in promtool's notation), sampled every minute from 0.
SERIES = [
    ('c{job="a"}', "0+10x20"),
    ('c{job="b"}', "0 10 20 5 15 25 2 4 8 16 32"),
    ('g{job="a", instance="1"}', "1 5 3 8 2 9 4 7 6 0"),
    ('g{job="a", instance="2"}', "2 2 _ _ 4 stale _ 6"),
    ('g{job="b", instance="1"}', "10 20 30 40 50 60 70 80 90 100"),
    ('req{job="a"}', "100+10x20"),
    ('req{job="b"}', "50+5x20"),
    ('err{job="a"}', "1+1x20"),
    ('err{job="b"}', "0+2x20"),
]

# (expression, evaluation time in seconds)
CASES = [
    ("c", 300),
    ("g", 240),
    ("g", 330),
    ("g", 600),
    ("g offset 2m", 300),
    ("rate(c[5m])", 600),
    ("rate(c[5m])", 630),
    ("rate(c[5m])", 700),
    ("rate(c[3m])", 400),
    ("increase(c[5m])", 300),
    ("increase(c[10m])", 600),
    ("increase(c[2m])", 250),
    ("irate(c[5m])", 240),
    ("irate(c[5m])", 360),
    ("delta(g[5m])", 300),
    ("delta(g[2m])", 125),
    ("avg_over_time(g[5m])", 300),
    ("min_over_time(g[5m])", 300),
    ("max_over_time(g[5m])", 300),
    ("sum_over_time(g[5m])", 300),
    ("count_over_time(g[5m])", 300),
    ("last_over_time(g[5m])", 300),
    ("quantile_over_time(0.9, g[5m])", 300),
    ("quantile_over_time(0.25, g[10m])", 540),
    ("absent(g{job=\"c\"})", 60),
    ("absent(nothing{job=\"c\", x=~\"y\"})", 60),
    ("absent(g)", 60),
    ("absent_over_time(nothing[5m])", 60),
    ("abs(g - 5)", 180),
    ("clamp_min(g, 4)", 180),
    ("clamp_max(g, 4)", 180),
    ("-g", 60),
    ("g * 2 + 1", 120),
    ("2 ^ g", 60),
    ("g % 3", 240),
    ("g > 4", 240),
    ("g > bool 4", 240),
    ("5 < g", 240),
    ("g == 2", 60),
    ("1 < bool 2", 60),
    ("time()", 600),
    ("time() - g", 60),
    ("err / req", 600),
    ("err / on(job) req", 600),
    ("err / ignoring(instance) req", 600),
    ("rate(err[5m]) / rate(req[5m]) > 0.1", 900),
    ("g and on(job) err", 120),
    ("g unless on(job) err{job=\"a\"}", 120),
    ("err or g", 120),
    ("g{job=\"a\"} or on(job) req", 120),
    ("sum(g)", 120),
    ("sum by (job) (g)", 120),
    ("sum(g) without (instance)", 120),
    ("avg by (job) (g)", 120),
    ("min by (job) (g)", 120),
    ("max by (job) (g)", 120),
    ("count by (job) (g)", 120),
    ("count without (instance) (g)", 120),
    ("topk(2, g)", 240),
    ("bottomk(1, g)", 240),
    ("topk by (job) (1, g)", 240),
    ("sum by (job) (rate(c[5m]))", 600),
    ("sum(rate(c[5m])) by (job) > 0.05", 600),
    ("max_over_time(g[1m])", 120),
    ("count_over_time(g[10m])", 600),
]


def run_tocsin(binary):
    lines = [f"series 60 {sel} | {values}" for sel, values in SERIES]
    lines += [f"eval {t} {expr}" for expr, t in CASES]
    out = subprocess.run([binary], input="\n".join(lines) + "\n", capture_output=True,
                         text=True, timeout=60, check=True).stdout
    results = []
    current = []
    for line in out.splitlines():
        if line == "end":
            results.append(current)
            current = []
            continue
        kind, labels, value = line.split("\t")
        assert kind != "error", f"tocsin failed: {value}"
        current.append((kind, labels, value))
    assert len(results) == len(CASES)
    return results


def yaml_quote(text):
    return "'" + text.replace("'", "''") + "'"


def test_promtool_agrees(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    tocsind = os.environ.get("TOCSIND")
    if not tocsind:
        pytest.skip("TOCSIND is not set to a build's tocsind")
    query = os.path.join(os.path.dirname(tocsind), "tests", "tools", "expr_query")
    if not os.access(query, os.X_OK):
        pytest.skip(f"{query} is not built (make in the build directory)")
    results = run_tocsin(query)

    (tmp_path / "empty.yml").write_text("groups: []\n")
    doc = ["rule_files: [empty.yml]", "evaluation_interval: 1m", "tests:",
           "  - interval: 1m", "    input_series:"]
    for sel, values in SERIES:
        doc += [f"      - series: {yaml_quote(sel)}", f"        values: {yaml_quote(values)}"]
    doc.append("    promql_expr_test:")
    for (expr, t), samples in zip(CASES, results):
        doc += [f"      - expr: {yaml_quote(expr)}", f"        eval_time: {t}s"]
        if not samples:
            doc.append("        exp_samples: []")
            continue
        doc.append("        exp_samples:")
        for kind, labels, value in samples:
            doc.append(f"          - labels: {yaml_quote(labels or '{}')}")
            doc.append(f"            value: {value}")
    test_file = tmp_path / "parity.yml"
    test_file.write_text("\n".join(doc) + "\n")
    proc = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
