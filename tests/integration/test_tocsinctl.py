"""tocsinctl, the API's command-line client, against the real tocsind. The tests cover every
command in table and JSON form, a silence from creation to expiry and an acknowledgement.
They also cover the exit codes that scripts test: 1 for a server error, 2 for a usage
error, 3 when the server cannot be reached and 4 for --fail-if-firing."""

import hashlib
import json
import os
import socket
import subprocess
import time

import pytest

from conftest import tocsind_path, wait_for

TOKEN = "ctl-admin-token-for-tests"

RULES = """
groups:
  - name: svc
    interval: 1s
    rules:
      - alert: ServiceDown
        expr: tocsin_probe_success{probe="svc"} == 0
        labels: {team: ops}
"""


def closed_port():
    """A loopback port with no listener: the tcp probe gets 'connection refused'."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(rules_path):
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    return f"""
rule_files: ["{rules_path}"]
probes:
  - name: svc
    type: tcp
    target: "127.0.0.1:{closed_port()}"
    interval: 1s
    timeout: 500ms
alerting:
  receivers:
    - name: nobody
  route:
    receiver: nobody
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 1h
api:
  tokens:
    - {{name: ops, sha256: {digest}, role: admin}}
"""


def tocsinctl_path():
    path = os.path.join(os.path.dirname(tocsind_path()), "tocsinctl")
    if not os.access(path, os.X_OK):
        pytest.fail(f"tocsinctl binary not found at {path}; build it next to tocsind")
    return path


def ctl(*args, url=None, token=TOKEN, env_extra=None):
    """Runs tocsinctl with TOCSIN_URL and TOCSIN_TOKEN set; returns the CompletedProcess."""
    env = dict(os.environ)
    env.pop("TOCSIN_URL", None)
    env.pop("TOCSIN_TOKEN", None)
    if url is not None:
        env["TOCSIN_URL"] = url
    if token is not None:
        env["TOCSIN_TOKEN"] = token
    env.update(env_extra or {})
    result = subprocess.run([tocsinctl_path(), *args], env=env, capture_output=True,
                            text=True, timeout=60)
    # An ASan build reports leaks and memory errors on stderr at exit.
    assert "Sanitizer" not in result.stderr, result.stderr
    assert "runtime error:" not in result.stderr, result.stderr
    return result


def table(stdout):
    """Splits an aligned table into its header and rows of cells (two spaces apart)."""
    lines = stdout.rstrip("\n").split("\n")
    header = lines[0].split()
    starts = [lines[0].index(name) for name in lines[0].split("  ") if name.strip()]
    rows = []
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [len(line)])]
        rows.append(cells)
    return header, rows


@pytest.fixture
def daemon(daemon_factory, tmp_path):
    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(RULES)
    d = daemon_factory(config(rules_path))

    def firing():
        out = ctl("--json", "alerts", url=d.url)
        return out.returncode == 0 and any(a["firing"] for a in json.loads(out.stdout))

    wait_for(firing, timeout=20, what="ServiceDown firing")
    return d


def test_tocsinctl_status(daemon):
    out = ctl("status", url=daemon.url)
    assert out.returncode == 0, out.stderr
    header, rows = table(out.stdout)
    assert header == ["FIELD", "VALUE"]
    fields = dict(rows)
    assert fields["version"]
    assert fields["probes"] == "1"
    assert fields["rules"] == "1"
    assert fields["alerting"] == "yes"
    assert TOKEN not in out.stdout + out.stderr

    out = ctl("status", "--json", url=daemon.url)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["counts"]["probes"] == 1
    assert data["alerting"] is True


def test_tocsinctl_probes(daemon):
    out = ctl("--server", daemon.url, "probes", token=None)
    assert out.returncode == 0, out.stderr
    header, rows = table(out.stdout)
    assert header[:4] == ["NAME", "TYPE", "TARGET", "HEALTH"]
    (row,) = rows
    probe = dict(zip(["NAME", "TYPE", "TARGET", "HEALTH", "SINCE", "STATUS", "REASON"], row))
    assert probe["NAME"] == "svc"
    assert probe["HEALTH"] == "down"
    assert probe["STATUS"] == "refused"
    assert "Connection refused" in probe["REASON"]

    out = ctl("--json", "probes", "svc", url=daemon.url)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["lastRun"]["status"] == "refused"


def test_tocsinctl_alerts(daemon):
    out = ctl("alerts", 'team="ops"', url=daemon.url)
    assert out.returncode == 0, out.stderr
    header, rows = table(out.stdout)
    assert header[:3] == ["RULE", "FINGERPRINT", "STATE"]
    (row,) = rows
    assert row[0] == "svc/ServiceDown"
    assert row[2] == "active"
    assert 'alertname="ServiceDown"' in row[5]

    out = ctl("alerts", 'team="nobody"', url=daemon.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().split() == ["RULE", "FINGERPRINT", "STATE", "STARTED", "REASON",
                                          "LABELS"]

    out = ctl("alerts", "--fail-if-firing", url=daemon.url)
    assert out.returncode == 4, out.stderr
    out = ctl("alerts", "--fail-if-firing", 'team="nobody"', url=daemon.url)
    assert out.returncode == 0, out.stderr

    out = ctl("alerts", "not a matcher", url=daemon.url)
    assert out.returncode == 1
    assert "filter" in out.stderr


def test_tocsinctl_silence_round_trip(daemon):
    out = ctl("silence", "add", "--matcher", 'alertname="ServiceDown"', "--matcher",
              'team=~"o.*"', "--duration", "1h", "--by", "tests", "--comment", "maintenance",
              url=daemon.url)
    assert out.returncode == 0, out.stderr
    silence_id = out.stdout.strip()
    assert len(silence_id) == 36

    out = ctl("silence", "list", url=daemon.url)
    assert out.returncode == 0, out.stderr
    header, rows = table(out.stdout)
    assert header[:2] == ["ID", "STATE"]
    (row,) = rows
    assert row[0] == silence_id
    assert row[1] == "active"
    assert 'alertname="ServiceDown", team=~"o.*"' in out.stdout
    assert "maintenance" in out.stdout
    ends = json.loads(ctl("--json", "silence", "list", url=daemon.url).stdout)[0]["endsAt"]
    hours = (time.mktime(time.strptime(ends[:19], "%Y-%m-%dT%H:%M:%S")) -
             time.mktime(time.gmtime())) / 3600
    assert 0.9 < hours < 1.1

    def silenced():
        data = json.loads(ctl("--json", "alerts", url=daemon.url).stdout)
        return data[0]["state"] == "silenced" and data[0]["silencedBy"] == silence_id

    wait_for(silenced, timeout=10, what="the alert to show as silenced")
    out = ctl("alerts", url=daemon.url)
    assert table(out.stdout)[1][0][2] == "silenced"
    assert ctl("alerts", "--fail-if-firing", url=daemon.url).returncode == 0

    out = ctl("silence", "expire", silence_id, url=daemon.url)
    assert out.returncode == 0, out.stderr
    assert silence_id in out.stdout
    assert ctl("silence", "list", url=daemon.url).stdout.strip() == (
        "ID  STATE  ENDS  CREATED BY  MATCHERS  COMMENT")
    out = ctl("--json", "silence", "list", "expired", url=daemon.url)
    assert [s["id"] for s in json.loads(out.stdout)] == [silence_id]

    out = ctl("silence", "expire", silence_id, url=daemon.url)
    assert out.returncode == 1
    assert "400" in out.stderr

    out = ctl("silence", "add", "--matcher", "alertname=", "--duration", "1h", "--by", "t",
              "--comment", "c", url=daemon.url)
    assert out.returncode == 1
    assert "matchers" in out.stderr

    out = ctl("silence", "add", "--matcher", 'a="b"', "--duration", "soon", "--by", "t",
              "--comment", "c", url=daemon.url)
    assert out.returncode == 2
    assert '--duration "soon"' in out.stderr


def test_tocsinctl_ack(daemon):
    (alert,) = json.loads(ctl("--json", "alerts", url=daemon.url).stdout)
    out = ctl("ack", alert["rule"], alert["fingerprint"], "--by", "tests", "--comment",
              "looking", "--expires", "2h", url=daemon.url)
    assert out.returncode == 0, out.stderr
    assert f"acknowledged {alert['rule']} {alert['fingerprint']} until " in out.stdout

    def acknowledged():
        data = json.loads(ctl("--json", "alerts", url=daemon.url).stdout)
        return data[0]["state"] == "acknowledged"

    wait_for(acknowledged, timeout=10, what="the alert to show as acknowledged")
    out = ctl("--json", "ack", alert["rule"], "xyz", "--by", "t", "--comment", "c",
              url=daemon.url)
    assert out.returncode == 1
    assert "fingerprint" in out.stderr


def test_tocsinctl_reload(daemon, tmp_path):
    out = ctl("reload", url=daemon.url)
    assert out.returncode == 0, out.stderr
    assert "reloaded" in out.stdout
    out = ctl("--json", "reload", url=daemon.url)
    assert json.loads(out.stdout) == {"reloaded": True}

    (tmp_path / "rules.yml").write_text("groups: [{name: x, rules: [{alert: A, expr: 'sum('}]}]")
    out = ctl("reload", url=daemon.url)
    assert out.returncode == 1
    assert "reload rejected" in out.stderr
    assert "rules.yml" in out.stderr
    # Each error is printed once, on its own line.
    assert out.stderr.count("rules.yml") == 1, out.stderr


def test_tocsinctl_query(daemon):
    out = ctl("query", 'tocsin_probe_success{probe="svc"}', url=daemon.url)
    assert out.returncode == 0, out.stderr
    header, rows = table(out.stdout)
    assert header == ["METRIC", "VALUE"]
    (row,) = rows
    assert row[0].startswith('tocsin_probe_success{')
    assert 'probe="svc"' in row[0]
    assert row[1] == "0"

    out = ctl("--json", "query", "1 + 1", "--time", str(int(time.time())), url=daemon.url)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["resultType"] == "scalar"
    assert data["result"][1] == "2"

    out = ctl("query", "sum(", url=daemon.url)
    assert out.returncode == 1
    assert 'invalid parameter "query"' in out.stderr
    assert "unexpected end" in out.stderr


def test_tocsinctl_wrong_token(daemon):
    secret = "wrong-token-never-printed"
    out = ctl("reload", url=daemon.url, token=secret)
    assert out.returncode == 1
    assert "401" in out.stderr
    assert "unauthorized" in out.stderr
    assert secret not in out.stdout + out.stderr

    out = ctl("reload", url=daemon.url, token=None)
    assert out.returncode == 1
    assert "Authorization: Bearer TOKEN" in out.stderr


def test_tocsinctl_unreachable_server():
    url = f"http://127.0.0.1:{closed_port()}"
    out = ctl("status", url=url)
    assert out.returncode == 3
    assert url in out.stderr
    assert "TOCSIN_URL" in out.stderr
    assert TOKEN not in out.stderr


def test_tocsinctl_usage_errors():
    for args, message in [
        ((), "missing command"),
        (("frobnicate",), 'unknown command "frobnicate"'),
        (("silence",), "expected add, list or expire"),
        (("silence", "expire"), "missing argument"),
        (("query", "up", "extra"), "too many arguments"),
        (("status", "--time", "1"), "--time does not apply"),
        (("ack", "r", "f", "--by", "x"), "missing required option --comment"),
        (("silence", "list", "soon"), 'invalid silence state "soon"'),
        (("status", "--nope"), "unknown option --nope"),
        (("status", "--server", "ftp://127.0.0.1"), "must start with http://"),
    ]:
        out = ctl(*args, url="http://127.0.0.1:1")
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr, (args, out.stderr)

    out = ctl("status", "--tokn=mistyped-secret", url="http://127.0.0.1:1")
    assert out.returncode == 2
    assert "unknown option --tokn" in out.stderr
    assert "mistyped-secret" not in out.stderr

    out = ctl("--help")
    assert out.returncode == 0
    assert "Exit status:" in out.stdout
