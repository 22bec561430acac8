"""More end-to-end tests of the postgres probe: TLS with sslmode=verify-full against a
certificate made at test time, the primary's view of a streaming client's lag in
seconds, and the pg_stat_database counters (rollbacks, deadlocks, block hits and reads,
temporary bytes) moved by SQL run through psql. The server comes from pgcluster.py, the
certificates from http_servers.py and the helpers from test_postgres.py.

The streaming client is pg_receivewal rather than a standby: it appears in
pg_stat_replication with write and flush lag like a standby does, and starts in well
under a second, where pg_basebackup and a second server take several."""

import os
import pwd
import socket
import struct
import subprocess
import threading
import time

import pytest

import pgcluster
from conftest import wait_for
from http_servers import Certificates
from test_postgres import config, probe_config, run_outcomes, samples, value

pytestmark = pytest.mark.skipif(pgcluster.missing_reason() is not None,
                                reason=pgcluster.missing_reason() or "")

# A small buffer cache, so that scanning a 5 MB table must read blocks from the OS.
SERVER_CONF = "shared_buffers = 2MB\n"


def start_receivewal(server):
    """pg_receivewal streaming from `server` into a directory beside it, as postgres."""
    target = os.path.join(server.root, "received-wal")
    pgcluster.as_postgres(["mkdir", target])
    return subprocess.Popen(
        ["runuser", "-u", "postgres", "--", os.path.join(pgcluster.BIN, "pg_receivewal"),
         "-h", server.root, "-p", str(server.port), "-U", "postgres", "-D", target,
         "--synchronous", "--no-loop", "--status-interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def tls_cluster():
    """A primary with ssl = on, streaming its WAL to pg_receivewal."""
    c = pgcluster.Cluster()
    receiver = None
    try:
        certs = Certificates(os.path.join(c.root, "ca"))
        cert, key = certs.signed("server", "IP:127.0.0.1,DNS:localhost")
        c.ca_file = certs.ca
        c.other_ca_file = Certificates(os.path.join(c.root, "other-ca")).ca
        # PostgreSQL rejects a key file that others can read, and reads it as postgres.
        pw = pwd.getpwnam("postgres")
        for path in (cert, key):
            os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(key, 0o600)
        c.init_primary(extra_conf=SERVER_CONF + "ssl = on\n"
                       f"ssl_cert_file = '{cert}'\nssl_key_file = '{key}'\n")
        receiver = start_receivewal(c.primary)
        yield c
    finally:
        if receiver is not None:
            # With --no-loop it exits when the server stops. A SIGTERM would take 2 s,
            # because runuser waits that long before it kills its child.
            c.primary.stop(mode="immediate", check=False)
            try:
                receiver.wait(timeout=5)
            except subprocess.TimeoutExpired:
                receiver.kill()
                receiver.wait()
        c.stop()


def tls_probe(name, cluster, ca_file):
    return probe_config(name, cluster.primary, cluster,
                        extra=f"    sslmode: verify-full\n    sslrootcert: {ca_file}\n")


def test_tls_verify_full(daemon_factory, tls_cluster):
    d = daemon_factory(config(tls_probe("pg-tls", tls_cluster, tls_cluster.ca_file),
                              tls_probe("pg-wrong-ca", tls_cluster, tls_cluster.other_ca_file)))
    wait_for(lambda: value(d, "pg_up", probe="pg-tls") == 1, timeout=20,
             what="pg_up 1 with sslmode verify-full")
    assert {status for status, _ in run_outcomes(d, "pg-tls")} == {"ok"}
    # The session really uses TLS.
    ssl = tls_cluster.primary.psql(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
        "WHERE a.application_name = 'pg-tls'")
    assert ssl == "t"

    wait_for(lambda: len(run_outcomes(d, "pg-wrong-ca")) >= 2, timeout=20,
             what="two runs with the wrong CA")
    assert set(run_outcomes(d, "pg-wrong-ca")) == {("tls_error", "TLS error")}
    assert value(d, "pg_up", probe="pg-wrong-ca") == 0
    lines = [line for line in d.log_text().splitlines()
             if "pg-wrong-ca" in line and "certificate verify failed" in line]
    assert lines, d.log_text()[-3000:]


def test_standby_lag_seconds_on_primary(daemon_factory, tls_cluster):
    """write_lag, flush_lag and replay_lag are NULL for an idle streaming client, so the
    primary writes until the probe has seen them."""
    primary = tls_cluster.primary
    primary.psql("CREATE TABLE IF NOT EXISTS lag_seconds (n int)")
    d = daemon_factory(config(probe_config("pg-primary", primary, tls_cluster)))
    wait_for(lambda: value(d, "pg_up", probe="pg-primary") == 1, timeout=20, what="pg_up 1")

    deadline = time.monotonic() + 15
    while not samples(d, "tocsin_pg_standby_lag_seconds", probe="pg-primary"):
        assert time.monotonic() < deadline, "no tocsin_pg_standby_lag_seconds within 15 s"
        primary.psql("INSERT INTO lag_seconds VALUES (1)")
        time.sleep(0.2)
    lags = samples(d, "tocsin_pg_standby_lag_seconds", probe="pg-primary")
    assert {labels["position"] for labels, _ in lags} <= {"write", "flush", "replay"}, lags
    assert all(0 <= v < 60 for _, v in lags), lags
    assert {labels["application_name"] for labels, _ in lags} == {"pg_receivewal"}, lags
    # It connects over the unix socket.
    assert {labels["client_addr"] for labels, _ in lags} == {"local"}, lags


def database_counter(daemon, name):
    return value(daemon, name, probe="pg-stats", datname="postgres")


def wait_counter_moved(daemon, name, before):
    wait_for(lambda: (database_counter(daemon, name) or 0) > before, timeout=10,
             what=f"{name} above {before}")


def psql_session(server, sql):
    """Starts psql as postgres in the background; returns the process."""
    return subprocess.Popen(
        ["runuser", "-u", "postgres", "--", os.path.join(pgcluster.BIN, "psql"), "-X", "-q",
         "-v", "ON_ERROR_STOP=1", "-h", server.root, "-p", str(server.port), "-d", "postgres",
         "-At", "-c", sql], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_database_counters_move(daemon_factory, tls_cluster):
    primary = tls_cluster.primary
    primary.psql("DROP TABLE IF EXISTS scan_me, deadlock_rows; "
                 "CREATE TABLE scan_me AS SELECT g, repeat('x', 100) AS pad "
                 "FROM generate_series(1, 40000) g; "
                 "CREATE TABLE deadlock_rows (id int PRIMARY KEY, v int); "
                 "INSERT INTO deadlock_rows VALUES (1, 0), (2, 0)")
    d = daemon_factory(config(probe_config("pg-stats", primary, tls_cluster,
                                           extra="    collect: [databases]\n")))
    counters = ("pg_stat_database_xact_rollback", "pg_stat_database_deadlocks",
                "pg_stat_database_blks_hit", "pg_stat_database_blks_read",
                "pg_stat_database_temp_bytes")
    wait_for(lambda: all(database_counter(d, name) is not None for name in counters),
             timeout=20, what="the pg_stat_database counters of database postgres")

    before = {name: database_counter(d, name) for name in counters}
    primary.psql("BEGIN; CREATE TABLE rolled_back (n int); ROLLBACK")
    # The sort's input is larger than work_mem, so it spills to a temporary file.
    primary.psql("SET work_mem = '64kB'; SELECT sum(g) FROM (SELECT g FROM scan_me "
                 "ORDER BY g DESC OFFSET 0) s")
    # The table is larger than the buffer cache, so a scan reads blocks from the OS.
    primary.psql("SELECT count(*) FROM scan_me")
    for name in ("pg_stat_database_xact_rollback", "pg_stat_database_temp_bytes",
                 "pg_stat_database_blks_read", "pg_stat_database_blks_hit"):
        wait_counter_moved(d, name, before[name])
    assert database_counter(d, "pg_stat_database_deadlocks") == before[
        "pg_stat_database_deadlocks"]

    # Two sessions lock the two rows in opposite orders; the pause lets each take its
    # first lock before either asks for its second.
    step = ("SET deadlock_timeout = '100ms'; BEGIN; "
            "UPDATE deadlock_rows SET v = {a} WHERE id = {a}; SELECT pg_sleep(1); "
            "UPDATE deadlock_rows SET v = {a} WHERE id = {b}; COMMIT")
    sessions = [psql_session(primary, step.format(a=1, b=2)),
                psql_session(primary, step.format(a=2, b=1))]
    results = [s.communicate(timeout=20) for s in sessions]
    failed = [err for s, (_, err) in zip(sessions, results) if s.returncode != 0]
    assert len(failed) == 1, results
    assert "deadlock detected" in failed[0], results
    wait_counter_moved(d, "pg_stat_database_deadlocks", before["pg_stat_database_deadlocks"])

    assert {status for status, _ in run_outcomes(d, "pg-stats")} == {"ok"}
    exposition = d.metrics().splitlines()
    for name in counters:
        assert f"# TYPE {name} counter" in exposition, name


class StartingUpServer:
    """A TCP server on 127.0.0.1 that answers every PostgreSQL connection the way a server
    does while it starts: it declines TLS and GSSAPI encryption, reads the startup
    message and replies with FATAL 57P03 "the database system is starting up". A real
    server is in that state for a moment during a restart, too briefly to test against."""

    SSL_REQUEST = 80877103
    GSSENC_REQUEST = 80877104

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            try:
                self.answer(conn)
            except OSError:
                pass
            finally:
                conn.close()

    @staticmethod
    def read_exact(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise OSError("peer closed")
            data += chunk
        return data

    def answer(self, conn):
        conn.settimeout(5)
        for _ in range(3):  # at most an encryption request or two, then the startup
            length, code = struct.unpack("!ii", self.read_exact(conn, 8))
            self.read_exact(conn, length - 8)
            if code not in (self.SSL_REQUEST, self.GSSENC_REQUEST):
                break
            conn.sendall(b"N")
        fields = b"".join(tag + text.encode() + b"\0" for tag, text in (
            (b"S", "FATAL"), (b"V", "FATAL"), (b"C", "57P03"),
            (b"M", "the database system is starting up")))
        body = fields + b"\0"
        conn.sendall(b"E" + struct.pack("!i", len(body) + 4) + body)

    def stop(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()


def test_server_starting_up_reason(daemon_factory, tmp_path):
    """A server that is starting (FATAL 57P03) is reported with its own reason, "server
    starting up", and asked again at the next run only: no tight retry loop."""
    server = StartingUpServer()
    password = tmp_path / "password"
    password.write_text("unused\n")
    os.chmod(password, 0o600)
    d = daemon_factory(f"""
retention: [1s:1h]
probes:
  - name: pg-starting
    type: postgres
    interval: 1s
    timeout: 900ms
    host: 127.0.0.1
    port: {server.port}
    user: tocsin_probe
    password_file: {password}
""")
    try:
        info = wait_for(lambda: samples(d, "tocsin_probe_last_failure_info", probe="pg-starting"),
                        timeout=15, what="the failure info of the starting server")
        labels = info[0][0]
        assert labels["reason"] == "server starting up", labels
        assert labels["status"] == "unavailable", labels
        assert value(d, "pg_up", probe="pg-starting") == 0
        time.sleep(3)
        runs = value(d, "tocsin_probe_runs_total", probe="pg-starting")
        # One connection per run (libpq may retry once without TLS), never a loop.
        assert server.connections <= 2 * (runs + 1), (server.connections, runs)
    finally:
        d.stop()
        server.stop()
