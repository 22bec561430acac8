"""The audit trail end to end. A running tocsind records its config load, a SIGHUP reload
with changed probes and rules, and a rejected reload. `tocsind --silence` records the
silences it adds and expires. `tocsind --audit list` shows them, and `--audit verify`
passes until a row is changed with sqlite3, when it exits 1 naming that row."""

import json
import os
import re
import signal
import sqlite3
import subprocess

from conftest import tocsind_path, wait_for

CONFIG = """\
listen: 127.0.0.1:0
data_dir: {data_dir}
rule_files: [rules.yml]
probes:
  - name: web
    type: host
    interval: 1s
  - name: db
    type: host
    interval: 1s
"""

RULES = """\
groups:
  - name: node
    rules:
      - alert: Down
        expr: up == 0
      - alert: Stale
        expr: up == 2
"""


def run(daemon, *args):
    return subprocess.run([tocsind_path(), "--config", daemon.config_path,
                           "--data-dir", daemon.data_dir, *args],
                          capture_output=True, text=True, timeout=30)


def audit_rows(daemon):
    """The --audit list table as (id, actor, action, detail) tuples, newest first."""
    r = run(daemon, "--audit", "list", "--limit", "0")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = lines[0]
    assert re.match(r"^ID +TIME +ACTOR +REMOTE +ACTION +DETAIL$", header), header
    starts = [header.index(title) for title in ("ID", "TIME", "ACTOR", "REMOTE", "ACTION",
                                                "DETAIL")]
    rows = []
    for line in lines[1:]:
        cells = [line[start:end].strip()
                 for start, end in zip(starts, starts[1:] + [len(line)])]
        rows.append((int(cells[0]), cells[2], cells[4], json.loads(cells[5])))
    return rows


def actions(daemon):
    return [row[2] for row in audit_rows(daemon)]


def test_audit_trail(daemon_factory, tmp_path):
    (tmp_path / "rules.yml").write_text(RULES)
    d = daemon_factory(CONFIG.format(data_dir=tmp_path / "data"))
    wait_for(lambda: "config.load" in actions(d), what="config.load record")

    # A reload that changes one probe, removes one, adds one, and changes one rule.
    d.write_config(CONFIG.format(data_dir=tmp_path / "data")
                   .replace("name: web\n    type: host\n    interval: 1s",
                            "name: web\n    type: host\n    interval: 2s")
                   .replace("name: db", "name: cache"))
    (tmp_path / "rules.yml").write_text(RULES.replace("up == 2", "up == 3"))
    d.signal(signal.SIGHUP)
    wait_for(lambda: "config.reload" in actions(d), what="config.reload record")

    # A reload with invalid YAML is rejected and recorded with its first error line.
    # The command line reads the same config file, so it is repaired before listing.
    d.write_config("probes: [\n")
    d.signal(signal.SIGHUP)
    wait_for(lambda: "reload rejected" in d.log_text(), what="reload rejected in the log")
    d.write_config(CONFIG.format(data_dir=tmp_path / "data"))
    wait_for(lambda: "config.reload_rejected" in actions(d), what="rejected reload record")

    r = run(d, "--silence", "add", "--matcher", 'alertname="Down"', "--duration", "1h",
            "--by", "alice", "--comment", "maintenance")
    assert r.returncode == 0, r.stderr
    silence_id = r.stdout.strip()
    r = run(d, "--silence", "expire", silence_id)
    assert r.returncode == 0, r.stderr

    rows = audit_rows(d)
    assert [row[2] for row in rows] == ["silence.expire", "silence.create",
                                        "config.reload_rejected", "config.reload",
                                        "config.load"]
    assert [row[0] for row in rows] == [5, 4, 3, 2, 1]
    assert [row[1] for row in rows] == ["cli", "cli", "signal", "signal", "tocsind"]

    load = rows[4][3]
    assert load["result"] == "loaded"
    assert load["probe_count"] == 2
    assert [f["path"] for f in load["files"]] == [d.config_path, str(tmp_path / "rules.yml")]
    assert all(re.match(r"^[0-9a-f]{64}$", f["sha256"]) for f in load["files"])

    reload = rows[3][3]
    assert reload["result"] == "applied"
    assert reload["probes"] == {"added": ["cache"], "removed": ["db"], "changed": ["web"]}
    assert reload["rules"] == {"added": [], "removed": [], "changed": ["node/Stale"]}
    assert reload["files"][0]["sha256"] != load["files"][0]["sha256"]
    assert reload["files"][1]["sha256"] != load["files"][1]["sha256"]

    rejected = rows[2][3]
    assert rejected["result"] == "rejected"
    assert "invalid YAML" in rejected["error"]
    assert "\n" not in rejected["error"]

    assert rows[1][3]["id"] == silence_id
    assert rows[1][3]["matchers"] == ['alertname="Down"']
    assert rows[1][3]["created_by"] == "alice"
    assert rows[0][3]["id"] == silence_id

    listing = run(d, "--audit", "list").stdout
    for name in ("cache", "db", "web", "node/Stale"):
        assert f'"{name}"' in listing, listing
    assert not any(line.endswith(" ") for line in listing.splitlines())
    assert len(run(d, "--audit", "list", "--limit", "2").stdout.splitlines()) == 3

    r = run(d, "--audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "audit trail intact: 5 records\n"

    # Changing one column of record 3 behind tocsin's back breaks the chain there.
    db = sqlite3.connect(os.path.join(d.data_dir, "state", "state.db"))
    with db:
        db.execute("UPDATE audit SET detail = '{\"result\":\"applied\"}' WHERE id = 3")
    db.close()
    r = run(d, "--audit", "verify")
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.startswith("audit trail broken at record 3: "), r.stdout


def test_deleted_record_fails_verify(daemon_factory, tmp_path):
    (tmp_path / "rules.yml").write_text(RULES)
    d = daemon_factory(CONFIG.format(data_dir=tmp_path / "data"))
    wait_for(lambda: "config.load" in actions(d), what="config.load record")
    for _ in range(2):
        r = run(d, "--silence", "add", "--matcher", 'job="x"', "--duration", "1h",
                "--by", "bob", "--comment", "test")
        assert r.returncode == 0, r.stderr
    assert run(d, "--audit", "verify").returncode == 0

    db = sqlite3.connect(os.path.join(d.data_dir, "state", "state.db"))
    with db:
        db.execute("DELETE FROM audit WHERE id = 2")
    db.close()
    r = run(d, "--audit", "verify")
    assert r.returncode == 1
    assert r.stdout.startswith("audit trail broken at record 3: "), r.stdout


def test_command_line_errors(daemon_factory, tmp_path):
    (tmp_path / "rules.yml").write_text(RULES)
    d = daemon_factory(CONFIG.format(data_dir=tmp_path / "data"), start=False)
    r = run(d, "--audit", "remove")
    assert r.returncode == 2
    assert 'unknown action "remove"' in r.stderr
    r = run(d, "--audit", "list", "--limit", "-1")
    assert r.returncode == 2
    assert '--limit: "-1"' in r.stderr
    r = run(d, "--audit", "verify", "--limit", "3")
    assert r.returncode == 2
    r = run(d, "--audit", "verify")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "audit trail intact: 0 records\n"
