"""tocsind --silence add, list and expire on the state database of the configured
state_dir: the printed id, the aligned table, the filters, the errors and the exit codes
(0 success, 1 failed request, 2 command-line error), with and without a running daemon."""

import os
import re
import subprocess

from conftest import tocsind_path

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

CONFIG = """\
listen: 127.0.0.1:0
data_dir: {data_dir}
probes: []
"""


def write_config(tmp_path):
    path = tmp_path / "tocsin.yml"
    path.write_text(CONFIG.format(data_dir=tmp_path / "data"))
    return str(path)


def silence(config, *args):
    return subprocess.run([tocsind_path(), "--config", config, "--silence", *args],
                          capture_output=True, text=True, timeout=30)


def add(config, *matchers, duration="2h", by="alice", comment="disk swap"):
    args = ["add"]
    for m in matchers:
        args += ["--matcher", m]
    args += ["--duration", duration, "--by", by, "--comment", comment]
    return silence(config, *args)


def table(stdout):
    """Splits the list output into rows of cells at the header's column starts."""
    lines = stdout.splitlines()
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", header)]
    rows = []
    for line in lines:
        cells = []
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else len(line)
            cells.append(line[start:end].strip())
        rows.append(cells)
    return rows


def test_add_list_expire(tmp_path):
    config = write_config(tmp_path)
    r = add(config, 'alertname="DiskFull"', 'mount=~"/var/.*"')
    assert r.returncode == 0, r.stderr
    silence_id = r.stdout.strip()
    assert UUID.match(silence_id), r.stdout
    assert r.stderr == ""
    assert os.path.exists(tmp_path / "data" / "state" / "state.db")

    r = silence(config, "list")
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    assert rows[0] == ["ID", "STATE", "STARTS", "ENDS", "CREATED BY", "COMMENT", "MATCHERS"]
    assert len(rows) == 2
    assert rows[1][0] == silence_id
    assert rows[1][1] == "active"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", rows[1][2]), rows[1]
    assert rows[1][4] == "alice"
    assert rows[1][5] == "disk swap"
    assert rows[1][6] == 'alertname="DiskFull" mount=~"/var/.*"'
    assert not any(line.endswith(" ") for line in r.stdout.splitlines())

    assert silence(config, "list", "expired").stdout.count("\n") == 1
    assert silence_id in silence(config, "list", "active").stdout

    r = silence(config, "expire", silence_id)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    rows = table(silence(config, "list").stdout)
    assert rows[1][1] == "expired"
    assert silence_id in silence(config, "list", "expired").stdout
    assert silence_id not in silence(config, "list", "active").stdout

    r = silence(config, "expire", silence_id)
    assert r.returncode == 1
    assert r.stderr == f"tocsind: --silence expire: silence {silence_id} is already expired\n"


def test_table_columns_align(tmp_path):
    config = write_config(tmp_path)
    assert add(config, 'job="api"', by="b\u00e9atrice", comment="a\tb").returncode == 0
    assert add(config, 'job="web"', by="x", comment="longer comment here").returncode == 0
    lines = silence(config, "list").stdout.splitlines()
    assert len(lines) == 3
    # Each column starts at the same character position on every line; the tab in the
    # comment is printed as a space.
    column = lines[0].index("COMMENT")
    for line in lines[1:]:
        assert line[column - 2:column] == "  ", line
        assert line[column] != " ", line
    assert "a b" in lines[1]


def test_unicode_and_quotes_in_matchers(tmp_path):
    config = write_config(tmp_path)
    r = add(config, 'summary="caf\u00e9 \\"quoted\\""', "team=ops")
    assert r.returncode == 0, r.stderr
    rows = table(silence(config, "list").stdout)
    assert rows[1][6] == 'summary="caf\u00e9 \\"quoted\\"" team="ops"'


def test_failed_requests_exit_1(tmp_path):
    config = write_config(tmp_path)
    r = add(config, 'job=~"a(b"')
    assert r.returncode == 1
    assert r.stderr.startswith('tocsind: --silence add: matchers[0].value: invalid regex "a(b"')
    r = add(config, 'job=~".*"', 'env!="prod"')
    assert r.returncode == 1
    assert "matchers: every matcher matches the empty string" in r.stderr
    r = add(config, 'job="a"', by=" ")
    assert r.returncode == 1
    assert r.stderr == "tocsind: --silence add: created_by: missing; give who creates the silence\n"
    r = silence(config, "expire", "0000")
    assert r.returncode == 1
    assert r.stderr == ("tocsind: --silence expire: silence 0000 not found; list the ids "
                        "with --silence list\n")
    r = subprocess.run([tocsind_path(), "--config", str(tmp_path / "missing.yml"),
                        "--silence", "list"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "missing.yml" in r.stderr
    # Nothing was stored by the failed requests.
    assert silence(config, "list").stdout.count("\n") == 1


def test_command_line_errors_exit_2(tmp_path):
    config = write_config(tmp_path)
    cases = [
        (["frob"], "unknown action \"frob\""),
        (["add", "--duration", "2h", "--by", "a", "--comment", "c"], "missing --matcher"),
        (["add", "--matcher", 'job="a"', "--by", "a", "--comment", "c"], "missing --duration"),
        (["add", "--matcher", 'job="a"', "--duration", "2x", "--by", "a", "--comment", "c"],
         "--duration: invalid duration \"2x\""),
        (["add", "--matcher", 'job="a"', "--duration", "2h", "--comment", "c"],
         "missing --by NAME"),
        (["add", "--matcher", 'job="a"', "--duration", "2h", "--by", "a"],
         "missing --comment TEXT"),
        (["add", "--matcher", "job", "--duration", "2h", "--by", "a", "--comment", "c"],
         "--matcher: invalid matcher \"job\": missing operator"),
        (["expire"], "missing silence id"),
        (["list", "soon"], "unknown filter \"soon\""),
        (["list", "--matcher", 'job="a"'], "belong to --silence add"),
        (["list", "--once"], "unrecognized option"),
    ]
    for args, message in cases:
        r = silence(config, *args)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert r.stdout == "", args
    r = subprocess.run([tocsind_path(), "--silence"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2
    assert "requires an argument" in r.stderr


def test_data_dir_override(tmp_path):
    config = write_config(tmp_path)
    other = tmp_path / "other"
    r = subprocess.run([tocsind_path(), "--config", config, "--data-dir", str(other),
                        "--silence", "add", "--matcher", 'job="a"', "--duration", "1h",
                        "--by", "a", "--comment", "c"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert os.path.exists(other / "state" / "state.db")
    assert silence(config, "list").stdout.count("\n") == 1


def test_add_while_daemon_runs(daemon_factory):
    d = daemon_factory("probes: []\n")
    r = subprocess.run([tocsind_path(), "--config", d.config_path, "--data-dir", d.data_dir,
                        "--silence", "add", "--matcher", 'alertname="X"', "--duration", "1h",
                        "--by", "a", "--comment", "c"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    listed = subprocess.run([tocsind_path(), "--config", d.config_path, "--data-dir",
                             d.data_dir, "--silence", "list", "active"],
                            capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() in listed.stdout
    assert d.healthy()
