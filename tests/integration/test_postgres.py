"""End-to-end tests of the postgres probe against real PostgreSQL 15 servers that the
tests start themselves (a primary and streaming standbys, see pgcluster.py): roles,
replication lag, connection reuse, restart and reconnect, error classes, user queries, and
host names resolved on the loop (DNS only through servers on 127.0.0.1 that the tests
start)."""

import os
import re
import time

import pytest

import pgcluster
from conftest import wait_for
from test_dns import Dnsmasq, UdpResponder

pytestmark = pytest.mark.skipif(pgcluster.missing_reason() is not None,
                                reason=pgcluster.missing_reason() or "")

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
RUN_LINE = re.compile(r'status=(\w+) reason=\\"((?:[^"\\]|\\.)*)\\"')


def samples(daemon, name, **labels):
    """Values of every sample of metric `name` whose labels include `labels`."""
    found = []
    for line in daemon.metrics().splitlines():
        m = SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        have = dict(LABEL.findall(m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            found.append((have, float(m.group(3))))
    return found


def value(daemon, name, **labels):
    """The single value of a series, or None when absent."""
    found = samples(daemon, name, **labels)
    assert len(found) <= 1, f"{name} {labels}: several series {found}"
    return found[0][1] if found else None


def run_outcomes(daemon, probe):
    """(status, reason) of each finished run of `probe`, from the scheduler's log lines."""
    outcomes = []
    for line in daemon.log_text().splitlines():
        if "module=scheduler" not in line or f"probe={probe} " not in line:
            continue
        m = RUN_LINE.search(line)
        if m:
            outcomes.append((m.group(1), m.group(2)))
    return outcomes


def probe_config(name, server, cluster, interval="1s", timeout="900ms", extra=""):
    return f"""
  - name: {name}
    type: postgres
    interval: {interval}
    timeout: {timeout}
    host: 127.0.0.1
    port: {server.port}
    user: {pgcluster.PROBE_USER}
    password_file: {cluster.password_file}
    application_name: {name}
{extra}"""


def config(*probes):
    return "retention: [1s:1h]\nprobes:" + "".join(probes)


@pytest.fixture(scope="module")
def cluster():
    c = pgcluster.Cluster()
    try:
        c.init_primary()
        c.add_standby()
        yield c
    finally:
        c.stop()


def last_status(daemon, probe):
    outcomes = run_outcomes(daemon, probe)
    return outcomes[-1][0] if outcomes else None


def test_primary_and_standby_roles(daemon_factory, cluster):
    primary, standby = cluster.primary, cluster.standbys[0]
    d = daemon_factory(config(probe_config("pg-primary", primary, cluster),
                              probe_config("pg-standby", standby, cluster)))
    wait_for(lambda: value(d, "pg_up", probe="pg-primary") == 1
             and value(d, "pg_up", probe="pg-standby") == 1, timeout=20, what="both pg_up 1")

    assert value(d, "pg_in_recovery", probe="pg-primary", role="primary") == 0
    assert value(d, "pg_in_recovery", probe="pg-standby", role="standby") == 1
    assert value(d, "pg_settings_server_version_num", probe="pg-primary") >= 150000
    assert value(d, "pg_settings_max_connections", probe="pg-primary") == 300
    assert value(d, "tocsin_pg_ping_duration_seconds", probe="pg-primary") > 0
    assert value(d, "tocsin_pg_connect_duration_seconds", probe="pg-primary") > 0
    assert value(d, "tocsin_pg_wal_lsn_bytes", probe="pg-primary") > 0
    assert value(d, "tocsin_pg_wal_receive_lsn_bytes", probe="pg-standby") > 0
    assert value(d, "pg_stat_activity_count", probe="pg-primary", datname="postgres",
                 state="active") >= 1
    assert value(d, "pg_database_size_bytes", probe="pg-primary", datname="postgres") > 0
    assert value(d, "tocsin_pg_database_frozen_xid_age", probe="pg-primary",
                 datname="template0") >= 0
    assert value(d, "pg_stat_database_xact_commit", probe="pg-primary", datname="postgres") > 0
    assert value(d, "pg_locks_count", probe="pg-primary", mode="AccessShareLock") >= 1
    assert value(d, "tocsin_pg_locks_waiting", probe="pg-primary", mode="AccessExclusiveLock") == 0
    assert value(d, "tocsin_pg_oldest_xact_age_seconds", probe="pg-primary") >= 0
    # pg_stat_statements is installed and preloaded on this server.
    assert samples(d, "pg_stat_statements_calls_total", probe="pg-primary")
    assert len(samples(d, "pg_stat_statements_calls_total", probe="pg-primary")) <= 10
    # The primary lists its standby in pg_stat_replication.
    assert value(d, "tocsin_pg_standby_lag_bytes", probe="pg-primary", position="replay") >= 0

    # Primary-only series are absent on the standby, and no query failed there.
    for name in ("tocsin_pg_wal_lsn_bytes", "tocsin_pg_standby_lag_bytes",
                 "tocsin_pg_standby_lag_seconds", "pg_stat_replication_pg_wal_lsn_diff"):
        assert samples(d, name, probe="pg-standby") == [], name
    for name in ("tocsin_pg_wal_receive_lsn_bytes", "pg_replication_lag_seconds"):
        assert samples(d, name, probe="pg-primary") == [], name
    errors = samples(d, "tocsin_pg_query_errors_total", probe="pg-standby")
    assert errors and all(v == 0 for _, v in errors), errors
    assert "recovery is in progress" not in standby.log_text()


def test_standby_replication_lag(daemon_factory, cluster):
    primary, standby = cluster.primary, cluster.standbys[0]
    primary.psql("CREATE TABLE IF NOT EXISTS lag_test (n int); INSERT INTO lag_test VALUES (1)")
    d = daemon_factory(config(probe_config("pg-primary", primary, cluster),
                              probe_config("pg-standby", standby, cluster)))
    wait_for(lambda: value(d, "pg_up", probe="pg-standby") == 1, timeout=20, what="standby up")

    standby.psql("SELECT pg_wal_replay_pause()")
    try:
        primary.psql("INSERT INTO lag_test SELECT generate_series(1, 20000)")
        wait_for(lambda: (value(d, "tocsin_pg_replication_replay_lag_bytes", probe="pg-standby")
                          or 0) > 0, timeout=20, what="standby replay lag in bytes")
        wait_for(lambda: (value(d, "pg_replication_lag_seconds", probe="pg-standby") or 0) > 1,
                 timeout=20, what="standby replay lag in seconds")
        wait_for(lambda: (value(d, "tocsin_pg_standby_lag_bytes", probe="pg-primary",
                                position="replay") or 0) > 0,
                 timeout=20, what="primary's view of the standby's replay lag")
    finally:
        standby.psql("SELECT pg_wal_replay_resume()")
    wait_for(lambda: value(d, "tocsin_pg_replication_replay_lag_bytes", probe="pg-standby") == 0,
             timeout=20, what="standby caught up")
    assert value(d, "pg_up", probe="pg-standby") == 1


def test_user_queries_labeled_series(daemon_factory, cluster):
    primary = cluster.primary
    primary.psql("DROP TABLE IF EXISTS backups; "
                 "CREATE TABLE backups (kind text, finished timestamptz, bytes bigint); "
                 "INSERT INTO backups VALUES ('full', now() - interval '2 hours', 1000), "
                 "('wal', now() - interval '5 minutes', NULL); "
                 f"GRANT SELECT ON backups TO {pgcluster.PROBE_USER}")
    queries = """    queries:
      - name: backup
        sql: SELECT kind, extract(epoch FROM now() - finished) AS age, bytes FROM backups
        labels: [kind]
        values:
          age: backup_age_seconds
          bytes: {metric: backup_size_bytes, type: gauge, help: "Size of the last backup."}
      - name: broken
        sql: SELECT * FROM no_such_table
        values: [n]
"""
    d = daemon_factory(config(probe_config("pg-user", primary, cluster, extra=queries)))
    wait_for(lambda: value(d, "backup_age_seconds", probe="pg-user", kind="full"),
             timeout=20, what="user query series")
    assert 7100 < value(d, "backup_age_seconds", probe="pg-user", kind="full") < 7300
    assert 250 < value(d, "backup_age_seconds", probe="pg-user", kind="wal") < 350
    assert value(d, "backup_size_bytes", probe="pg-user", kind="full") == 1000
    # A NULL is no value, not 0.
    assert value(d, "backup_size_bytes", probe="pg-user", kind="wal") is None
    # The failing optional query is counted and does not mark the server down.
    wait_for(lambda: (value(d, "tocsin_pg_query_errors_total", probe="pg-user",
                            query="broken") or 0) >= 2, timeout=20, what="counted query errors")
    assert value(d, "pg_up", probe="pg-user") == 1
    assert last_status(d, "pg-user") == "ok"


def test_connection_reused_across_runs(daemon_factory, cluster):
    primary = cluster.primary
    d = daemon_factory(config(probe_config("pg-reuse", primary, cluster)))
    wait_for(lambda: (value(d, "tocsin_probe_runs_total", probe="pg-reuse") or 0) >= 8,
             timeout=30, what="8 runs")
    held = primary.psql("SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = 'pg-reuse'")
    assert held == "1"
    assert value(d, "tocsin_pg_connections_opened_total", probe="pg-reuse") == 1
    assert all(status == "ok" for status, _ in run_outcomes(d, "pg-reuse"))


def test_query_timeout(daemon_factory, cluster):
    primary = cluster.primary
    slow = """    statement_timeout: 200ms
    collect: []
    queries:
      - name: slow
        sql: SELECT pg_sleep(2) IS NULL AS slept
        values: [slept]
        required: {required}
"""
    d = daemon_factory(config(
        probe_config("pg-slow-required", primary, cluster, interval="1s",
                     extra=slow.format(required="true")),
        probe_config("pg-slow-optional", primary, cluster, interval="1s",
                     extra=slow.format(required="false"))))
    wait_for(lambda: len(run_outcomes(d, "pg-slow-required")) >= 3, timeout=20, what="3 runs")
    status, reason = run_outcomes(d, "pg-slow-required")[-1]
    assert status == "timeout"
    assert reason == "query slow: query timeout"
    assert value(d, "pg_up", probe="pg-slow-required") == 0
    # The server ended the statement, so the connection is kept.
    assert value(d, "tocsin_pg_connections_opened_total", probe="pg-slow-required") == 1

    wait_for(lambda: (value(d, "tocsin_pg_query_errors_total", probe="pg-slow-optional",
                            query="slow") or 0) >= 2, timeout=20, what="optional timeouts")
    assert value(d, "pg_up", probe="pg-slow-optional") == 1
    assert last_status(d, "pg-slow-optional") == "ok"


def test_connect_error_classes(daemon_factory, cluster, tmp_path):
    primary = cluster.primary
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    os.chmod(wrong, 0o600)
    unused = pgcluster.free_port()
    d = daemon_factory(config(
        probe_config("pg-nodb", primary, cluster, extra="    dbname: no_such_db\n"),
        probe_config("pg-refused", primary, cluster).replace(
            f"port: {primary.port}", f"port: {unused}"),
        probe_config("pg-badpw", primary, cluster).replace(
            cluster.password_file, str(wrong))))
    for probe in ("pg-nodb", "pg-refused", "pg-badpw"):
        wait_for(lambda: run_outcomes(d, probe), timeout=20, what=f"a run of {probe}")
    assert run_outcomes(d, "pg-nodb")[-1] == ("not_found", "database does not exist")
    assert run_outcomes(d, "pg-refused")[-1] == ("refused", "refused")
    assert run_outcomes(d, "pg-badpw")[-1] == ("auth_failed", "authentication failed")
    assert value(d, "pg_up", probe="pg-badpw") == 0
    # The password never reaches the log or /metrics.
    assert pgcluster.PROBE_PASSWORD not in d.log_text()
    assert "not-the-password" not in d.log_text()
    assert pgcluster.PROBE_PASSWORD not in d.metrics()


def test_standby_not_accepting_connections(daemon_factory, cluster):
    standby = cluster.add_standby(extra_conf="hot_standby = off\n")
    d = daemon_factory(config(probe_config("pg-cold", standby, cluster)))
    wait_for(lambda: run_outcomes(d, "pg-cold"), timeout=20, what="a run")
    status, _ = run_outcomes(d, "pg-cold")[-1]
    assert status == "unavailable"


def test_restart_reconnect_sequence(daemon_factory, tmp_path):
    """A kept connection survives a server restart, a role limit and a password change."""
    c = pgcluster.Cluster()
    try:
        server = c.init_primary()
        interval = 2.0
        d = daemon_factory(config(probe_config("pg-solo", server, c, interval="2s",
                                               timeout="1500ms")))
        # 1: up, with one kept connection.
        wait_for(lambda: len(run_outcomes(d, "pg-solo")) >= 2, timeout=20, what="two runs")
        assert [s for s, _ in run_outcomes(d, "pg-solo")] == ["ok", "ok"]
        assert value(d, "tocsin_pg_connections_opened_total", probe="pg-solo") == 1

        # 2-4: restart; the kept connection is lost, then the probe reconnects.
        seen = len(run_outcomes(d, "pg-solo"))
        server.restart()
        restarted = time.monotonic()
        wait_for(lambda: "ok" in [s for s, _ in run_outcomes(d, "pg-solo")[seen:]],
                 timeout=3 * interval, what="up again after the restart")
        up_after = time.monotonic() - restarted
        assert up_after <= 2 * interval + 0.5, up_after
        after = run_outcomes(d, "pg-solo")[seen:]
        statuses = [s for s, _ in after]
        assert statuses[0] == "connection_lost", after
        assert after[0][1] == "connection lost"
        assert set(statuses[:-1]) <= {"connection_lost", "unavailable"}, after
        assert statuses[-1] == "ok"
        assert value(d, "tocsin_pg_connections_opened_total", probe="pg-solo") == 2

        # 5: the role's connection limit, once the kept connection is gone.
        server.psql(f"ALTER ROLE {pgcluster.PROBE_USER} CONNECTION LIMIT 0")
        seen = len(run_outcomes(d, "pg-solo"))
        server.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'pg-solo'")
        wait_for(lambda: ("limit_reached", "connection limit reached")
                 in run_outcomes(d, "pg-solo")[seen:], timeout=4 * interval,
                 what="connection limit reached")

        # 6: a wrong password, retried at the normal interval only.
        server.psql(f"ALTER ROLE {pgcluster.PROBE_USER} CONNECTION LIMIT -1 "
                    "PASSWORD 'changed-elsewhere'")
        seen = len(run_outcomes(d, "pg-solo"))
        wait_for(lambda: ("auth_failed", "authentication failed")
                 in run_outcomes(d, "pg-solo")[seen:], timeout=3 * interval,
                 what="authentication failed")
        failures_before = server.log_text().count("password authentication failed")
        time.sleep(3 * interval)
        failures = server.log_text().count("password authentication failed") - failures_before
        assert 2 <= failures <= 4, failures

        # Back to the right password: up again without restarting tocsind.
        server.psql(f"ALTER ROLE {pgcluster.PROBE_USER} PASSWORD '{pgcluster.PROBE_PASSWORD}'")
        seen = len(run_outcomes(d, "pg-solo"))
        wait_for(lambda: "ok" in [s for s, _ in run_outcomes(d, "pg-solo")[seen:]],
                 timeout=3 * interval, what="up with the right password")
    finally:
        c.stop()


def test_run_timeout_drops_connection(daemon_factory, cluster):
    """A run cancelled by the scheduler closes its connection; the next run reconnects."""
    primary = cluster.primary
    slow = """    statement_timeout: 0s
    collect: []
    queries:
      - name: slow
        sql: SELECT pg_sleep(1.5) IS NULL AS slept
        values: [slept]
"""
    d = daemon_factory(config(probe_config("pg-cancel", primary, cluster, interval="1s",
                                           timeout="500ms", extra=slow)))
    wait_for(lambda: len(run_outcomes(d, "pg-cancel")) >= 4, timeout=20, what="4 runs")
    outcomes = run_outcomes(d, "pg-cancel")
    assert all(status == "timeout" for status, _ in outcomes), outcomes
    assert outcomes[-1][1] == "timeout after 500ms"
    opened = value(d, "tocsin_pg_connections_opened_total", probe="pg-cancel")
    assert opened is not None and opened >= 3
    # Abandoned backends end when their sleep does: at most a few are left at any time.
    held = int(primary.psql("SELECT count(*) FROM pg_stat_activity "
                            "WHERE application_name = 'pg-cancel'"))
    assert held <= 3


def log_lines(daemon, text):
    return [line for line in daemon.log_text().splitlines() if text in line]


def test_failing_optional_query_logged_once(daemon_factory, cluster):
    """Each query has its own log throttle: a query that always fails is logged once, one
    that starts to succeed is logged once as recovered, and neither disturbs the other."""
    primary = cluster.primary
    primary.psql("DROP TABLE IF EXISTS late_table")
    queries = """    collect: []
    queries:
      - name: bad_q
        sql: select nope
        values: [x]
      - name: late
        sql: SELECT count(*) AS n FROM late_table
        values:
          n: late_rows
"""
    d = daemon_factory(config(probe_config("pg-throttle", primary, cluster, extra=queries)))
    wait_for(lambda: (value(d, "tocsin_pg_query_errors_total", probe="pg-throttle",
                            query="bad_q") or 0) >= 4, timeout=20, what="four failures of bad_q")
    assert len(log_lines(d, "query bad_q failed")) == 1, d.log_text()
    assert len(log_lines(d, "query late failed")) == 1, d.log_text()
    assert log_lines(d, "succeeds again") == [], d.log_text()

    primary.psql(f"CREATE TABLE late_table (n int); GRANT SELECT ON late_table TO "
                 f"{pgcluster.PROBE_USER}")
    wait_for(lambda: value(d, "late_rows", probe="pg-throttle") == 0, timeout=10,
             what="the late query succeeding")
    runs = value(d, "tocsin_probe_runs_total", probe="pg-throttle")
    wait_for(lambda: value(d, "tocsin_probe_runs_total", probe="pg-throttle") >= runs + 3,
             timeout=10, what="three more runs")
    assert len(log_lines(d, "query late succeeds again")) == 1, d.log_text()
    assert log_lines(d, "query bad_q succeeds again") == [], d.log_text()
    assert len(log_lines(d, "query bad_q failed")) == 1, d.log_text()
    assert value(d, "pg_up", probe="pg-throttle") == 1
    primary.psql("DROP TABLE late_table")


def test_new_connect_failure_reason_logged_at_once(daemon_factory, cluster, tmp_path):
    """A connection failure of another status is logged at once, not counted as a repeat
    of the previous reason."""
    primary = cluster.primary
    role, password = "tocsin_limited", "limited-secret-51c9"
    primary.psql(f"DROP ROLE IF EXISTS {role}; "
                 f"CREATE ROLE {role} LOGIN PASSWORD '{password}' CONNECTION LIMIT 0")
    password_file = tmp_path / "limited-password"
    password_file.write_text(password + "\n")
    os.chmod(password_file, 0o600)
    probe = probe_config("pg-reasons", primary, cluster).replace(
        f"user: {pgcluster.PROBE_USER}", f"user: {role}").replace(
        cluster.password_file, str(password_file))
    try:
        d = daemon_factory(config(probe))
        wait_for(lambda: [o for o in run_outcomes(d, "pg-reasons")
                          if o == ("limit_reached", "connection limit reached")][1:],
                 timeout=20, what="two runs at the connection limit")
        assert len(log_lines(d, "connect failed: connection limit reached")) == 1, d.log_text()

        primary.psql(f"ALTER ROLE {role} CONNECTION LIMIT -1 PASSWORD 'changed-elsewhere'")
        wait_for(lambda: ("auth_failed", "authentication failed")
                 in run_outcomes(d, "pg-reasons"), timeout=10, what="authentication failed")
        lines = log_lines(d, "connect failed: authentication failed")
        assert len(lines) == 1, d.log_text()
        assert "(0 similar suppressed)" in lines[0], lines
        assert password not in d.log_text()
    finally:
        primary.psql(f"DROP ROLE IF EXISTS {role}")


def hosts_file_maps_localhost():
    """True when /etc/hosts maps localhost to 127.0.0.1, so c-ares needs no DNS for it."""
    try:
        with open("/etc/hosts") as f:
            lines = [line.split("#", 1)[0].split() for line in f]
    except OSError:
        return False
    return any(fields[:1] == ["127.0.0.1"] and "localhost" in fields[1:] for fields in lines)


def dnsmasq_queries(dns, name):
    """Lines of the dnsmasq log (written with --log-queries) that show a query for `name`."""
    dns.log.flush()
    with open(dns.log.name) as f:
        return [line for line in f if "query[" in line and f" {name} " in line]


def test_host_name_resolved_from_hosts_file(daemon_factory, cluster, tmp_path):
    """host: localhost is resolved by c-ares from /etc/hosts, and libpq connects to that
    address. The DNS server given has no record for localhost, so it could not have
    resolved it."""
    if not hosts_file_maps_localhost():
        pytest.skip("/etc/hosts does not map localhost to 127.0.0.1")
    dns = Dnsmasq(str(tmp_path))
    try:
        probe = probe_config("pg-byname", cluster.primary, cluster,
                             extra=f"    dns_server: 127.0.0.1:{dns.port}\n")
        d = daemon_factory(config(probe.replace("host: 127.0.0.1", "host: localhost")))
        wait_for(lambda: value(d, "pg_up", probe="pg-byname") == 1, timeout=20,
                 what="pg_up 1 for host localhost")
        assert run_outcomes(d, "pg-byname")[-1][0] == "ok"
        assert value(d, "tocsin_pg_connections_opened_total", probe="pg-byname") == 1
        assert dnsmasq_queries(dns, "localhost") == []
        client = cluster.primary.psql("SELECT host(client_addr) FROM pg_stat_activity "
                                    "WHERE application_name = 'pg-byname'")
        assert client == "127.0.0.1"
    finally:
        dns.stop()


def test_unresolvable_host_name(daemon_factory, cluster, tmp_path):
    """A name the DNS server has no record for fails with resolve_error, a silent DNS server
    fails at connect_timeout in phase resolve, and neither delays a probe by address."""
    dns = Dnsmasq(str(tmp_path))
    silent = UdpResponder(None)
    primary = cluster.primary
    try:
        d = daemon_factory(config(
            probe_config("pg-nxdomain", primary, cluster,
                         extra=f"    dns_server: 127.0.0.1:{dns.port}\n").replace(
                "host: 127.0.0.1", "host: db.missing.example"),
            probe_config("pg-silent", primary, cluster,
                         extra=f"    dns_server: 127.0.0.1:{silent.port}\n"
                               "    connect_timeout: 300ms\n").replace(
                "host: 127.0.0.1", "host: db.silent.example"),
            probe_config("pg-byaddress", primary, cluster)))
        wait_for(lambda: len(run_outcomes(d, "pg-nxdomain")) >= 2
                 and len(run_outcomes(d, "pg-silent")) >= 2, timeout=15,
                 what="two runs of each unresolvable probe")

        assert set(run_outcomes(d, "pg-nxdomain")) == {("resolve_error", "name not resolved")}
        assert value(d, "tocsin_probe_last_failure_info", probe="pg-nxdomain",
                     status="resolve_error", reason="name not resolved") == 1
        assert value(d, "pg_up", probe="pg-nxdomain") == 0
        assert dnsmasq_queries(dns, "db.missing.example"), "the query did not reach dnsmasq"
        # The log quotes the message, so its own quotes appear escaped.
        lines = log_lines(d, r'resolve failed: name not resolved: could not resolve host name '
                             r'\"db.missing.example\": Domain name not found')
        assert len(lines) == 1, d.log_text()

        assert set(run_outcomes(d, "pg-silent")) == {("timeout", "resolve timeout")}
        assert silent.queries >= 1
        assert len(log_lines(d, r'resolve failed: resolve timeout: no address for host name '
                                r'\"db.silent.example\" within connect_timeout (300 ms)')) == 1, \
            d.log_text()

        # The loop stayed free: the probe by address succeeded at every run meanwhile.
        assert run_outcomes(d, "pg-byaddress")
        assert {status for status, _ in run_outcomes(d, "pg-byaddress")} == {"ok"}
        started = time.monotonic()
        assert d.healthy()
        assert time.monotonic() - started < 0.5
    finally:
        silent.stop()
        dns.stop()
