"""`tocsind --test-rules`: rule unit tests in promtool's test file format. The same
rule and test files also go through `promtool test rules` (Debian's prometheus package),
to show that both tools pass and fail the same tests."""

import os
import shutil
import subprocess

import pytest

from conftest import TOP, tocsind_path

RULES = """\
groups:
  - name: api
    rules:
      - alert: HighErrorRatio
        expr: >-
          sum by (job) (rate(errors_total[5m]))
            / sum by (job) (rate(requests_total[5m])) > 0.1
        for: 3m
        labels:
          severity: page
        annotations:
          summary: 'Error ratio of {{ $labels.job }} is {{ $value }}'
      - alert: InstanceDown
        expr: up == 0
        for: 2m
        labels: {severity: ticket}
        annotations:
          summary: '{{ $labels.instance }} of job {{ $labels.job }} is down'
      - record: job:requests:rate5m
        expr: sum by (job) (rate(requests_total[5m]))
"""

# Series every test below reads: the error ratio passes 0.1 at 7m (firing from 10m) and
# instance a is down from 3m to 6m (firing at 5m and 6m).
INPUT = """\
    input_series:
      - series: 'requests_total{job="api", instance="a"}'
        values: '0+20x20'
      - series: 'errors_total{job="api", instance="a"}'
        values: '0+1x5 6+10x15'
      - series: 'up{job="api", instance="a"}'
        values: '1 1 1 0 0 0 0 1 1 1'
      - series: 'up{job="api", instance="b"}'
        values: '1+0x9'
"""

# interval is given although it defaults to evaluation_interval: promtool 2.42 has no
# default and puts every sample at time 0 without it.
PASSING = """\
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - name: errors and outages
    interval: 1m
""" + INPUT + """\
    alert_rule_test:
      - eval_time: 9m
        alertname: HighErrorRatio
      - eval_time: 12m
        alertname: HighErrorRatio
        exp_alerts:
          - exp_labels: {job: api, severity: page}
            exp_annotations: {summary: 'Error ratio of api is 0.5'}
      - eval_time: 4m
        alertname: InstanceDown
      - eval_time: 5m30s
        alertname: InstanceDown
        exp_alerts:
          - exp_labels: {job: api, instance: a, severity: ticket}
            exp_annotations: {summary: 'a of job api is down'}
      - eval_time: 7m
        alertname: InstanceDown
        exp_alerts: []
    promql_expr_test:
      - expr: job:requests:rate5m
        eval_time: 10m
        exp_samples:
          - labels: 'job:requests:rate5m{job="api"}'
            value: 0.33333333333333337
      - expr: count(up == 1)
        eval_time: 4m
        exp_samples:
          - labels: '{}'
            value: 1
      - expr: ALERTS{alertname="InstanceDown"}
        eval_time: 6m
        exp_samples:
          - labels: >-
              ALERTS{alertname="InstanceDown", alertstate="firing", instance="a",
              job="api", severity="ticket"}
            value: 1
      - expr: up{instance="c"}
        eval_time: 1m
        exp_samples: []
"""

# The same data with three wrong expectations: a missing label, an alert that is still
# pending, and a wrong value.
FAILING = """\
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - name: wrong expectations
    interval: 1m
""" + INPUT + """\
    alert_rule_test:
      - eval_time: 5m
        alertname: InstanceDown
        exp_alerts:
          - exp_labels: {job: api, severity: ticket}
            exp_annotations: {summary: 'a of job api is down'}
      - eval_time: 9m
        alertname: HighErrorRatio
        exp_alerts:
          - exp_labels: {job: api, severity: page}
    promql_expr_test:
      - expr: job:requests:rate5m
        eval_time: 10m
        exp_samples:
          - labels: 'job:requests:rate5m{job="api"}'
            value: 0.5
"""

FAILING_REPORT = """\
Unit testing: {path}
  FAILED:
    {path}:16:9: tests[0].alert_rule_test[0] (test wrong expectations), time 5m, alertname: InstanceDown
        exp: {{alertname="InstanceDown", job="api", severity="ticket"}} annotations {{summary="a of job api is down"}}
        got: {{alertname="InstanceDown", instance="a", job="api", severity="ticket"}} annotations {{summary="a of job api is down"}}
    {path}:21:9: tests[0].alert_rule_test[1] (test wrong expectations), time 9m, alertname: HighErrorRatio
        exp: {{alertname="HighErrorRatio", job="api", severity="page"}} annotations {{}}
        got: (no firing alerts)
    {path}:26:9: tests[0].promql_expr_test[0] (test wrong expectations), time 10m, expr: job:requests:rate5m
        exp: job:requests:rate5m{{job="api"}} 0.5
        got: job:requests:rate5m{{job="api"}} 0.33333333333333337

"""


def write_pair(tmp_path, test_text, name="api.test.yml"):
    (tmp_path / "rules.yml").write_text(RULES)
    path = tmp_path / name
    path.write_text(test_text)
    return path


def run_tocsind(*files, cwd):
    proc = subprocess.run([tocsind_path(), "--test-rules", *files], capture_output=True,
                          text=True, timeout=120, cwd=cwd)
    # An ASan build reports memory errors and leaks on stderr at exit.
    assert "ERROR: AddressSanitizer" not in proc.stderr, proc.stderr[-4000:]
    assert "ERROR: LeakSanitizer" not in proc.stderr, proc.stderr[-4000:]
    assert "runtime error:" not in proc.stderr, proc.stderr[-4000:]
    return proc


def run_promtool(*files, cwd):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return subprocess.run([promtool, "test", "rules", *files], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_passing_file_succeeds(tmp_path):
    path = write_pair(tmp_path, PASSING)
    proc = run_tocsind(path.name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "Unit testing: api.test.yml\n  SUCCESS\n\n"


def test_failing_file_prints_differences(tmp_path):
    path = write_pair(tmp_path, FAILING)
    proc = run_tocsind(path.name, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout == FAILING_REPORT.format(path=path.name)


def test_one_failing_file_fails_the_run(tmp_path):
    write_pair(tmp_path, PASSING, "pass.test.yml")
    write_pair(tmp_path, FAILING, "fail.test.yml")
    proc = run_tocsind("pass.test.yml", "fail.test.yml", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Unit testing: pass.test.yml\n  SUCCESS\n" in proc.stdout
    assert "Unit testing: fail.test.yml\n  FAILED:\n" in proc.stdout


def test_bad_notation_names_its_position(tmp_path):
    text = PASSING.replace("'0+20x20'", "'0+20x20 1+x3'")
    path = write_pair(tmp_path, text)
    proc = run_tocsind(path.name, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr == (
        "api.test.yml:8:17: tests[0].input_series[0].values: invalid value \"1+x3\" at "
        "column 9 of values, expected a number, _, stale, a+bxn, a-bxn or axn\n")
    assert proc.stdout == "Unit testing: api.test.yml\n  FAILED: the test file has errors\n\n"


def test_test_file_errors_reported_together(tmp_path):
    text = PASSING.replace("    interval: 1m\n", "    interval: 1m\n    intervall: 1m\n")
    text = text.replace("'up{job=\"api\", instance=\"b\"}'", "'up{job=~\"api\"}'")
    text = text.replace("expr: count(up == 1)", "expr: count(up ==)")
    path = write_pair(tmp_path, text)
    proc = run_tocsind(path.name, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 3, proc.stderr
    assert lines[0].startswith("api.test.yml:6:5: tests[0].intervall: unknown key"), lines[0]
    assert lines[1].startswith(
        "api.test.yml:14:17: tests[0].input_series[3].series: unexpected \"=~\""), lines[1]
    assert lines[2].startswith("api.test.yml:40:15: tests[0].promql_expr_test[1].expr: "), \
        lines[2]


def test_rule_file_errors_fail_the_file(tmp_path):
    path = write_pair(tmp_path, PASSING)
    (tmp_path / "rules.yml").write_text(RULES.replace("up == 0", "up == == 0"))
    proc = run_tocsind(path.name, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith("rules.yml:14:15: groups[0].rules[1].expr: "), proc.stderr
    assert "FAILED: the rule files have errors" in proc.stdout


def test_threshold_rule_alerts_carry_level(tmp_path):
    (tmp_path / "disk.yml").write_text("""\
groups:
  - name: disk
    rules:
      - alert: DiskFull
        threshold:
          expr: 100 * used_ratio
          direction: above
          warn: 80
          crit: 90
        for: 2m
        labels: {team: ops}
        annotations: {summary: '{{ $labels.mount }} is {{ $value }}% full'}
""")
    (tmp_path / "disk.test.yml").write_text("""\
rule_files: [disk.yml]
tests:
  - input_series:
      - series: 'used_ratio{mount="/"}'
        values: '0.5 0.875 0.875 0.875 0.9375 0.9375 0.9375 0.5 0.5 0.5'
    alert_rule_test:
      - eval_time: 2m
        alertname: DiskFull
      - eval_time: 3m
        alertname: DiskFull
        exp_alerts:
          - exp_labels: {mount: /, team: ops, severity: warning}
            exp_annotations: {summary: '/ is 87.5% full'}
      - eval_time: 6m
        alertname: DiskFull
        exp_alerts:
          - exp_labels: {mount: /, team: ops, severity: critical}
            exp_annotations: {summary: '/ is 93.75% full'}
      - eval_time: 7m
        alertname: DiskFull
        exp_alerts: []
""")
    proc = run_tocsind("disk.test.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_threshold_alert_without_data(tmp_path):
    # no_data: keep holds the level (state stale, still counted as firing); resolve drops it.
    (tmp_path / "nodata.yml").write_text("""\
groups:
  - name: nodata
    rules:
      - alert: KeepLevel
        threshold: {expr: v, direction: above, warn: 5}
        no_data: keep
      - alert: ResolveLevel
        threshold: {expr: v, direction: above, warn: 5}
        no_data: resolve
""")
    (tmp_path / "nodata.test.yml").write_text("""\
rule_files: [nodata.yml]
tests:
  - input_series:
      - series: 'v'
        values: '10 10 stale'
    alert_rule_test:
      - eval_time: 1m
        alertname: ResolveLevel
        exp_alerts: [{exp_labels: {severity: warning}}]
      - eval_time: 3m
        alertname: KeepLevel
        exp_alerts: [{exp_labels: {severity: warning}}]
      - eval_time: 3m
        alertname: ResolveLevel
    promql_expr_test:
      - expr: ALERTS
        eval_time: 3m
        exp_samples:
          - labels: 'ALERTS{alertname="KeepLevel", alertstate="stale", severity="warning"}'
            value: 1
""")
    proc = run_tocsind("nodata.test.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_group_eval_order_is_followed(tmp_path):
    # `second` reads what `first` records at the same time only when it runs after it.
    (tmp_path / "order.yml").write_text("""\
groups:
  - name: second
    rules:
      - record: doubled
        expr: recorded * 2
  - name: first
    rules:
      - record: recorded
        expr: x
""")
    test = """\
rule_files: [order.yml]
{order}
tests:
  - interval: 1m
    input_series:
      - series: 'x'
        values: '1 2 3'
    promql_expr_test:
      - expr: doubled
        eval_time: 1m
        exp_samples:
          - labels: 'doubled'
            value: {value}
"""
    (tmp_path / "ordered.test.yml").write_text(
        test.format(order="group_eval_order: [first, second]", value=4))
    (tmp_path / "file-order.test.yml").write_text(test.format(order="", value=2))
    proc = run_tocsind("ordered.test.yml", "file-order.test.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    (tmp_path / "unknown.test.yml").write_text(
        test.format(order="group_eval_order: [first, third]", value=4))
    proc = run_tocsind("unknown.test.yml", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith(
        "unknown.test.yml:2:27: group_eval_order[1]: no rule group named third"), proc.stderr


def test_promtool_agrees(tmp_path):
    write_pair(tmp_path, PASSING, "pass.test.yml")
    write_pair(tmp_path, FAILING, "fail.test.yml")
    for name, status in (("pass.test.yml", 0), ("fail.test.yml", 1)):
        ours = run_tocsind(name, cwd=tmp_path)
        theirs = run_promtool(name, cwd=tmp_path)
        assert ours.returncode == status, ours.stdout + ours.stderr
        assert theirs.returncode == status, theirs.stdout + theirs.stderr
    # promtool reports the same three failed checks of the failing file.
    theirs = run_promtool("fail.test.yml", cwd=tmp_path)
    report = theirs.stdout + theirs.stderr
    assert report.count("alertname: InstanceDown, time: 5m") == 1, report
    assert report.count("alertname: HighErrorRatio, time: 9m") == 1, report
    assert report.count('expr: "job:requests:rate5m", time: 10m') == 1, report


# The shipped test files. example.test.yml tests threshold rules and an SLO, which
# promtool rejects, and service.test.yml tests Prometheus rules only.
EXAMPLE_TEST = os.path.join(TOP, "etc", "rules", "example.test.yml")
SERVICE_TEST = os.path.join(TOP, "etc", "examples", "rules", "service.test.yml")


def test_example_rules_pass(tmp_path):
    proc = run_tocsind(EXAMPLE_TEST, SERVICE_TEST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("  SUCCESS\n\n") == 2, proc.stdout


def test_service_example_passes_promtool(tmp_path):
    proc = run_promtool(SERVICE_TEST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
