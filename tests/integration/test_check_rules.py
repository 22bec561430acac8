"""tocsind --check-rules and the rule files that --check-config loads: exit codes, the
one-line summary per file, and every error with its position."""

import os
import subprocess

from conftest import TOP, tocsind_path

EXAMPLE = os.path.join(TOP, "etc", "rules", "example.yml")

PROMETHEUS_RULES = """\
groups:
  - name: node
    rules:
      - alert: HostOutOfMemory
        expr: node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100 < 10
        for: 2m
        labels:
          severity: warning
        annotations:
          summary: Host out of memory (instance {{ $labels.instance }})
          description: "Memory is filling up\\n  VALUE = {{ $value | humanize }}"
      - record: instance:node_cpu_utilisation:rate5m
        expr: 1 - avg without (cpu) (rate(node_cpu_seconds_total{mode="idle"}[5m]))
slos:
  - name: web
    objective: 99.9
    probe: web
"""


def run(*args):
    return subprocess.run([tocsind_path(), *args], capture_output=True, text=True,
                          timeout=30)


def test_valid_file_prints_summary(tmp_path):
    path = tmp_path / "node.yml"
    path.write_text(PROMETHEUS_RULES)
    r = run("--check-rules", str(path))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{path}: 1 groups, 2 rules, 1 SLOs\n"
    assert r.stderr == ""


def test_shipped_example_passes():
    r = run("--check-rules", EXAMPLE)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{EXAMPLE}: 2 groups, 5 rules, 1 SLOs\n"


def test_every_error_reported_with_position(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("groups:\n"
                    "  - name: g\n"
                    "    interval: 0s\n"
                    "    rules:\n"
                    "      - alert: A\n"
                    "        expr: rate(x[5m]\n"
                    "        fro: 5m\n"
                    "      - record: job-up\n"
                    "        expr: up[5m]\n"
                    "slos:\n"
                    "  - name: s\n"
                    "    objective: 100\n"
                    "    probe: p\n")
    r = run("--check-rules", str(path))
    assert r.returncode == 1
    assert r.stdout == ""

    lines = r.stderr.splitlines()
    assert len(lines) == 6, r.stderr
    assert lines[0] == (f"{path}:3:15: groups[0].interval: must be longer than 0; it is how "
                        "often the group is evaluated")
    assert lines[1].startswith(f"{path}:6:15: groups[0].rules[0].expr: "), lines[1]
    assert lines[2] == f'{path}:7:9: groups[0].rules[0].fro: unknown key (did you mean "for"?)'
    assert lines[3] == (f'{path}:8:17: groups[0].rules[1].record: invalid metric name '
                        '"job-up" (accepted: letters, digits, "_" and ":", not starting with '
                        'a digit)')
    assert lines[4] == (f"{path}:9:15: groups[0].rules[1].expr: expr is a range vector; "
                        "expected an instant vector or a scalar")
    assert lines[5] == (f"{path}:12:16: slos[0].objective: must be below 100 (found 100): a "
                        "100% objective leaves no error budget; use e.g. 99.99")


def test_errors_across_files(tmp_path):
    a = tmp_path / "a.yml"
    b = tmp_path / "b.yml"
    a.write_text("groups: [{name: g, rules: [{record: a, expr: up}]}]\n")
    b.write_text("groups: [{name: g, rules: [{record: b, expr: up}]}]\n")
    r = run("--check-rules", str(b), str(a))
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == (f'{b}:1:17: groups[0].name: duplicate group name "g" (first at '
                        f'{a}:1:17); group names must be unique across all rule files\n')


def test_several_files_one_line_each(tmp_path):
    a = tmp_path / "a.yml"
    b = tmp_path / "b.yml"
    a.write_text("groups: [{name: a, rules: [{record: a, expr: up}]}]\n")
    b.write_text("")
    r = run("--check-rules", str(b), str(a))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{a}: 1 groups, 1 rules, 0 SLOs\n{b}: 0 groups, 0 rules, 0 SLOs\n"


def test_missing_file(tmp_path):
    path = tmp_path / "missing.yml"
    r = run("--check-rules", str(path))
    assert r.returncode == 1
    assert r.stderr == (f"{path}: rule file not found; fix the path, or remove it from the "
                        "list\n")


def test_usage_errors():
    r = run("--check-rules")
    assert r.returncode == 2
    assert "--check-rules needs at least one rule file" in r.stderr
    r = run("--check-rules", "--check-config", EXAMPLE)
    assert r.returncode == 2
    assert "--check-rules excludes --check-config and --once" in r.stderr


def test_check_config_loads_rule_files(tmp_path):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "good.yml").write_text(PROMETHEUS_RULES)
    config = tmp_path / "tocsin.yml"
    config.write_text("rule_files: [rules/*.yml]\nevaluation_interval: 30s\n")
    r = run("--check-config", "--config", str(config))
    assert r.returncode == 0, r.stderr
    assert f"rule_files: {tmp_path}/rules/*.yml\n" in r.stdout
    assert "evaluation_interval: 30s\n" in r.stdout
    assert "state_dir: /var/lib/tocsin/state\n" in r.stdout
    assert "rules: 1 groups, 2 rules, 1 SLOs from 1 files\n" in r.stdout

    (rules_dir / "bad.yml").write_text("groups:\n  - name: other\n    limit: -1\n")
    r = run("--check-config", "--config", str(config))
    assert r.returncode == 1
    assert r.stderr == (f'{rules_dir}/bad.yml:3:12: groups[0].limit: "-1" is out of range '
                        "(accepted: 0 to 9223372036854775807)\n")


def test_check_config_missing_rule_file(tmp_path):
    config = tmp_path / "tocsin.yml"
    config.write_text("rule_files: [alerts.yml]\n")
    r = run("--check-config", "--config", str(config))
    assert r.returncode == 1
    assert r.stderr == (f"{tmp_path}/alerts.yml: rule file not found; fix the path, or "
                        "remove it from the list\n")
