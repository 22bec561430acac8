"""Fault injection against the real tocsind. The faults: receivers that refuse, hang,
reset or reject; a PostgreSQL server that goes away under a postgres probe; an rrdcached
that is stopped and started again; a data directory on a full file system; a state
database that another process holds locked at start.

Every case checks the same promises: the fault is logged, and repeats are throttled
(tocsind's throttle reports the first failure and then holds repeats back for 10 s, so
a fault shorter than that gives one line); it is counted in a /metrics counter; probes
keep running; tocsind recovers by itself when the fault goes; and no notification that
reached the outbox is lost. docs/faults.md describes what an operator sees."""

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

import pgcluster
from conftest import Rrdcached, free_port, rrdtool, tocsind_path, wait_for
from listener import Listener
from receiver_tools import ScriptedServer, status

aiosmtpd_controller = pytest.importorskip(
    "aiosmtpd.controller", reason="aiosmtpd is not installed (Debian package python3-aiosmtpd)")

# tocsind's throttle (collector/throttle.h): the first failure is logged, repeats are
# held back for THROTTLE_S, then for twice as long after each reported repeat.
THROTTLE_S = 10.0

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

RULES = """
groups:
  - name: svc
    interval: 1s
    rules:
      - alert: ServiceDown
        expr: tocsin_probe_success{probe=~"svc|other"} == 0
        annotations:
          summary: "{{ $labels.probe }} is down"
"""


def metric(daemon, name, **labels):
    """Sum of the samples of `name` whose labels include `labels` (0 when none)."""
    total = 0.0
    for line in daemon.metrics().splitlines():
        m = SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        have = dict(LABEL.findall(m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def runs(daemon, probe):
    return metric(daemon, "tocsin_probe_runs_total", probe=probe)


def log_lines(daemon, *needles):
    """The log lines that contain every needle."""
    return [line for line in daemon.log_text().splitlines()
            if all(n in line for n in needles)]


def assert_throttled(lines, seconds, what):
    """At most the lines the throttle lets through in `seconds` of a continuous fault."""
    allowed = 1 + int(seconds // THROTTLE_S)
    assert 1 <= len(lines) <= allowed, (
        f"{what}: {len(lines)} log lines in {seconds:.1f}s, expected 1 to {allowed}:\n"
        + "\n".join(lines))


def outbox_rows(daemon, receiver):
    """(idempotency_key, state, last_reason) of the receiver's outbox rows."""
    path = os.path.join(daemon.data_dir, "state", "state.db")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute("SELECT idempotency_key, state, last_reason FROM outbox "
                           "WHERE receiver = ? ORDER BY id", (receiver,)).fetchall()
    finally:
        con.close()


def probe_yaml(name, port):
    return f"""
  - name: {name}
    type: tcp
    target: "127.0.0.1:{port}"
    interval: 1s
    timeout: 500ms"""


def alerting_config(tmp_path, probes, receivers, extra=""):
    """A config whose ServiceDown alerts, one group per probe, reach every receiver."""
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    routes = "".join(f"\n      - receiver: {name}\n        continue: true"
                     for name in receivers)
    return f"""
rule_files: ["{rules}"]
retention: [1s:10m]
probes:{"".join(probes)}
alerting:
  retry: {{initial: 200ms, max: 1s, max_age: 1h}}
  circuit_breaker: {{failures: 3, cooldown: 1s}}
  receivers:{"".join(receivers.values())}
    - name: nobody
  route:
    receiver: nobody
    group_by: [alertname, probe]
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 1h
    routes:{routes}
{extra}"""


# ---- Receivers ----


class FaultyMailbox:
    """aiosmtpd handler whose fault the test switches: None (accept), "slow" (wait past
    the receiver's timeout, then accept), "4xx" (451 to DATA) or "5xx" (550 to RCPT)."""

    def __init__(self, fault=None):
        self.fault = fault
        self.keys = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.fault == "5xx":
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if self.fault == "slow":
            await asyncio.sleep(3)
        if self.fault == "4xx":
            return "451 4.3.0 mail system busy, try again later"
        text = envelope.original_content.decode("ascii", "replace")
        m = re.search(r"^X-Tocsin-Idempotency-Key: (.*)$", text, re.M | re.I)
        with self.lock:
            self.keys.append(m.group(1).strip() if m else None)
        return "250 2.0.0 Ok: queued"


def start_smtp(handler, port):
    controller = aiosmtpd_controller.Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


def email_receiver(name, port):
    return f"""
    - name: {name}
      email:
        smarthost: 127.0.0.1:{port}
        tls: none
        timeout: 1s
        from: tocsin <tocsin@example.org>
        to: [oncall@example.org]"""


def webhook_receiver(name, url):
    return f"""
    - name: {name}
      webhook:
        url: {url}
        timeout: 1s"""


def hook_keys(hook):
    with hook.lock:
        return [r["headers"].get("idempotency-key") for r in hook.requests]


def run_receiver_faults(daemon_factory, tmp_path, receivers, heal, received, dead=()):
    """Drives both probes down while every receiver fails, and checks throttled logging,
    failure counters and probing during the fault. Then calls heal() and checks that
    every notification queued during the fault reaches its receiver: received(name)
    returns the keys that arrived there. Receivers in `dead` reject permanently: their rows
    must become dead letters with the reason in the log, and nothing may be retried."""
    svc, other = Listener(), Listener()
    d = daemon_factory(alerting_config(tmp_path, [probe_yaml("svc", svc.port),
                                                  probe_yaml("other", other.port)], receivers))
    try:
        wait_for(lambda: runs(d, "other") >= 1, timeout=15, what="the first probe runs")
        fault_start = time.monotonic()
        svc.stop()
        other.stop()
        names = list(receivers)
        retried = [n for n in names if n not in dead]

        def failing():
            return all(metric(d, "tocsin_notification_failures_total", receiver=n) >= 2
                       for n in retried) and all(
                metric(d, "tocsin_notifications_total", receiver=n, result="dead") >= 2
                for n in dead)
        wait_for(failing, timeout=20, what="repeated failed deliveries to every receiver")
        runs_before = runs(d, "svc")
        time.sleep(3)
        # Probing goes on at its interval while deliveries fail.
        assert runs(d, "svc") >= runs_before + 2, "the svc probe stopped running"
        fault_seconds = time.monotonic() - fault_start
        for n in retried:
            rows = outbox_rows(d, n)
            assert len(rows) == 2, (n, rows)
            assert {state for _, state, _ in rows} <= {"queued", "sending", "retrying"}, rows
            assert_throttled(log_lines(d, "module=alerter", f"receiver={n} ",
                                       "delivery failed"), fault_seconds, n)
        for n in dead:
            rows = outbox_rows(d, n)
            assert [state for _, state, _ in rows] == ["dead", "dead"], rows
            assert {reason for _, _, reason in rows} == {"smtp_5xx"}, rows
            lines = log_lines(d, "module=outbox", f"receiver={n} ", "permanent error smtp_5xx")
            assert len(lines) == 2, lines
            assert "550" in lines[0], lines[0]
            assert "dead letter" in lines[0], lines[0]
        queued = {n: [key for key, _, _ in outbox_rows(d, n)] for n in retried}

        heal()
        healed = time.monotonic()
        for n in retried:
            wait_for(lambda: set(queued[n]) <= set(received(n)), timeout=20,
                     what=f"the queued notifications at {n} after the fault")
            wait_for(lambda: [s for _, s, _ in outbox_rows(d, n)] == ["delivered"] * 2,
                     timeout=10, what=f"{n}'s outbox rows delivered")
            assert log_lines(d, f"receiver={n} ", "delivering works again after"), n
        recovery = time.monotonic() - healed
        assert recovery < 15, f"recovery took {recovery:.1f}s"
        metrics = d.metrics()
        assert 'tocsin_outbox_entries{state="queued"} 0' in metrics or \
            'tocsin_outbox_entries{state="queued"}' not in metrics, metrics
        for n in retried:
            assert metric(d, "tocsin_notifications_total", receiver=n,
                          result="delivered") == 2, n
        for n in dead:
            # A dead letter is never sent again, even after the server accepts mail.
            assert received(n) == [], n
        assert runs(d, "svc") > runs_before + 2
        return d
    finally:
        svc.stop() if svc.running else None
        other.stop() if other.running else None


def test_smtp_faults_retried_then_delivered(daemon_factory, tmp_path):
    """SMTP server down (refused), slow (past the 1 s timeout) and answering 451: every
    notification is retried and delivered once the server works. 550 to RCPT makes a
    dead letter at once, with the server's reply as its reason."""
    down_port = free_port()
    slow, busy, rejecting = FaultyMailbox("slow"), FaultyMailbox("4xx"), FaultyMailbox("5xx")
    down = FaultyMailbox()
    controllers = [start_smtp(slow, free_port()), start_smtp(busy, free_port()),
                   start_smtp(rejecting, free_port())]
    boxes = {"mail-down": down, "mail-slow": slow, "mail-busy": busy,
             "mail-reject": rejecting}
    receivers = {"mail-down": email_receiver("mail-down", down_port),
                 "mail-slow": email_receiver("mail-slow", controllers[0].port),
                 "mail-busy": email_receiver("mail-busy", controllers[1].port),
                 "mail-reject": email_receiver("mail-reject", controllers[2].port)}

    def heal():
        controllers.append(start_smtp(down, down_port))
        for box in boxes.values():
            box.fault = None

    try:
        d = run_receiver_faults(daemon_factory, tmp_path, receivers, heal,
                                lambda n: list(boxes[n].keys), dead=("mail-reject",))
        assert metric(d, "tocsin_notification_failures_total", receiver="mail-down",
                      reason="refused") >= 1
        assert metric(d, "tocsin_notification_failures_total", receiver="mail-slow",
                      reason="timeout") >= 1
        assert metric(d, "tocsin_notification_failures_total", receiver="mail-busy",
                      reason="smtp_4xx") >= 1
    finally:
        for c in controllers:
            c.stop()


def test_webhook_faults_retried_then_delivered(daemon_factory, tmp_path):
    """A webhook answering 500, one that never answers (1 s timeout) and one that resets
    each connection after reading the request (SO_LINGER 0): every notification is
    retried and delivered once they answer 200."""
    failing, hanging, resetting = ScriptedServer(), ScriptedServer(), ScriptedServer()
    failing.script(*[status(500, {}, b"internal error")] * 1000)
    hanging.script(*[("hang", 30)] * 1000)
    resetting.script(*[("reset",)] * 1000)
    hooks = {"hook-500": failing, "hook-hang": hanging, "hook-reset": resetting}
    receivers = {name: webhook_receiver(name, hook.url()) for name, hook in hooks.items()}

    answered_from = {}

    def heal():
        for name, hook in hooks.items():
            with hook.lock:
                answered_from[name] = len(hook.requests)
                hook.actions.clear()

    def received(name):
        # Only requests made after heal() were answered 200.
        hook = hooks[name]
        with hook.lock:
            return [r["headers"].get("idempotency-key")
                    for r in hook.requests[answered_from[name]:]]

    try:
        d = run_receiver_faults(daemon_factory, tmp_path, receivers, heal, received)
        assert metric(d, "tocsin_notification_failures_total", receiver="hook-500",
                      reason="5xx") >= 1
        assert metric(d, "tocsin_notification_failures_total", receiver="hook-hang",
                      reason="timeout") >= 1
        assert metric(d, "tocsin_notification_failures_total", receiver="hook-reset",
                      reason="reset") >= 1
    finally:
        for hook in hooks.values():
            hook.stop()


# ---- PostgreSQL ----


@pytest.mark.skipif(pgcluster.missing_reason() is not None,
                    reason=pgcluster.missing_reason() or "")
def test_postgres_outage_under_probe(daemon_factory):
    """The server stops for a few seconds under a running postgres probe. pg_up goes to 0,
    the failure is logged once and the probe keeps running at its interval. It
    reconnects by itself when the server is back, without a restart of tocsind."""
    cluster = pgcluster.Cluster()
    try:
        server = cluster.init_primary()
        d = daemon_factory(f"""
retention: [1s:10m]
probes:
  - name: pg
    type: postgres
    interval: 1s
    timeout: 900ms
    host: 127.0.0.1
    port: {server.port}
    user: {pgcluster.PROBE_USER}
    password_file: {cluster.password_file}
""")
        wait_for(lambda: metric(d, "pg_up", probe="pg") == 1, timeout=20, what="pg_up 1")
        opened = metric(d, "tocsin_pg_connections_opened_total", probe="pg")
        server.stop()
        stopped = time.monotonic()
        wait_for(lambda: metric(d, "pg_up", probe="pg") == 0, timeout=10, what="pg_up 0")
        down_after = time.monotonic() - stopped
        runs_before = runs(d, "pg")
        time.sleep(4)
        assert runs(d, "pg") >= runs_before + 3, "the probe stopped running"
        assert metric(d, "tocsin_probe_failures_total", probe="pg") >= 3
        outage = time.monotonic() - stopped
        warnings = log_lines(d, "level=warn", "module=postgres")
        # One line per kind of failure: the lost connection, then the refused reconnects.
        assert 1 <= len(warnings) <= 2 * (1 + int(outage // THROTTLE_S)), "\n".join(warnings)

        server.start()
        started = time.monotonic()
        wait_for(lambda: metric(d, "pg_up", probe="pg") == 1, timeout=10,
                 what="pg_up 1 after the restart")
        up_after = time.monotonic() - started
        assert metric(d, "tocsin_pg_connections_opened_total", probe="pg") == opened + 1
        assert log_lines(d, "module=postgres", "connected again after"), d.log_text()[-3000:]
        print(f"pg: pg_up 0 after {down_after:.1f}s, 1 again {up_after:.1f}s after the "
              f"start; {len(warnings)} warning lines in {outage:.1f}s")
    finally:
        cluster.stop()


# ---- rrdcached ----


def archive_values(path, daemon_address, since):
    """(time, value) of the known points at or after `since` (epoch seconds)."""
    out = rrdtool("fetch", path, "AVERAGE", "-r", "1", "-s", str(int(since) - 2), "-e", "now",
                  daemon=daemon_address)
    points = []
    for line in out.splitlines():
        m = re.match(r"\s*(\d+):\s+(\S+)", line)
        if m and m.group(2).lower() not in ("nan", "-nan") and int(m.group(1)) >= since:
            points.append((int(m.group(1)), float(m.group(2))))
    return points


def test_rrdcached_restart_under_writes(daemon_factory, tmp_path):
    """rrdcached stops while tocsind archives through it and starts again 4 s later: the
    outage is logged once and counted, probes keep running, and the updates held during
    the outage reach the archive through the new rrdcached."""
    cached = Rrdcached(str(tmp_path))
    svc = Listener()
    try:
        d = daemon_factory(f"""
retention: [1s:10m]
rrdcached: {cached.address}
probes:{probe_yaml("svc", svc.port)}
""")
        path = os.path.join(d.data_dir, "tocsin_probe_success")
        files = wait_for(lambda: [os.path.join(path, f) for f in os.listdir(path)],
                         timeout=15, what="the probe_success archive")
        assert len(files) == 1, files
        archive = files[0]
        wait_for(lambda: archive_values(archive, cached.address, time.time() - 30),
                 timeout=15, what="points in the archive through rrdcached")

        cached.stop()
        stopped = time.time()
        wait_for(lambda: metric(d, "tocsin_store_errors_total", kind="connect") >= 1,
                 timeout=10, what="a failed rrdcached connection counted")
        runs_before = runs(d, "svc")
        time.sleep(4)
        assert runs(d, "svc") >= runs_before + 3, "the probe stopped running"
        assert metric(d, "tocsin_store_queue_depth") > 0, "updates were not held"
        outage = time.time() - stopped
        assert_throttled(log_lines(d, "module=store", "is unreachable, retrying"), outage,
                         "rrdcached unreachable")

        cached = Rrdcached(str(tmp_path))
        restarted = time.time()
        wait_for(lambda: log_lines(d, "module=store", "is reachable again"), timeout=35,
                 what="the writer reconnected")
        reconnect = time.time() - restarted
        wait_for(lambda: metric(d, "tocsin_store_queue_depth") == 0, timeout=10,
                 what="the held updates written")
        # Points from the outage and after it, through the new rrdcached.
        points = wait_for(lambda: [p for p in archive_values(archive, cached.address, stopped)
                                   if p[0] > restarted + 1], timeout=15,
                          what="new points after the restart")
        during = [p for p in archive_values(archive, cached.address, stopped)
                  if p[0] < restarted]
        assert len(during) >= 3, f"points of the outage lost: {during}"
        assert all(v == 1 for _, v in during + points)
        assert metric(d, "tocsin_store_updates_dropped_total", reason="error") == 0
        print(f"rrdcached: reconnected {reconnect:.1f}s after the restart; "
              f"{len(during)} points of the {outage:.1f}s outage kept")
        assert d.stop() == 0
    finally:
        cached.stop()
        svc.stop()


# ---- Full data directory ----


def fill(directory):
    """Writes a file in `directory` until the file system is full; returns its path."""
    path = os.path.join(directory, "filler")
    chunk = b"\0" * 65536
    with open(path, "wb") as f:
        try:
            for _ in range(4096):  # 256 MiB at most, far more than the test's tmpfs
                f.write(chunk)
                f.flush()
        except OSError as e:
            assert e.errno == 28, e  # ENOSPC
    return path


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MiB tmpfs at tmp_path/data, tocsind's data_dir (and state_dir under it)."""
    mountpoint = tmp_path / "data"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here: {proc.stderr.strip()}")
    try:
        yield str(mountpoint)
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=30)


def test_full_data_dir(daemon_factory, tmp_path, small_tmpfs):
    """data_dir and the state database on a full 2 MiB tmpfs: archive creation fails,
    logged once and counted; probes and rule evaluation go on, and the transition of an
    alert that fires meanwhile is kept in memory. Once space is freed the new archives
    are created and that alert is delivered."""
    svc, late = Listener(), Listener()
    hook = ScriptedServer()
    receivers = {"hook": webhook_receiver("hook", hook.url())}
    try:
        d = daemon_factory(alerting_config(tmp_path, [probe_yaml("svc", svc.port)], receivers))
        wait_for(lambda: os.listdir(os.path.join(small_tmpfs, "tocsin_probe_success")),
                 timeout=15, what="the first archives")
        wait_for(lambda: runs(d, "svc") >= 2, timeout=15, what="two probe runs")
        filler = fill(small_tmpfs)
        full_at = time.monotonic()

        # A new probe needs new archives, which cannot be created now.
        d.write_config(alerting_config(tmp_path, [probe_yaml("svc", svc.port),
                                                  probe_yaml("late", late.port)], receivers))
        d.signal(signal.SIGHUP)
        wait_for(lambda: metric(d, "tocsin_store_errors_total", kind="create") >= 1,
                 timeout=15, what="a failed archive creation counted")
        svc.stop()
        wait_for(lambda: metric(d, "ALERTS", alertname="ServiceDown", alertstate="firing") == 1,
                 timeout=15, what="ServiceDown firing while the disk is full")
        runs_before = runs(d, "svc")
        time.sleep(3)
        assert runs(d, "svc") >= runs_before + 2, "the probe stopped running"
        assert runs(d, "late") >= 2, "the new probe does not run"
        full_seconds = time.monotonic() - full_at
        create_errors = log_lines(d, "module=store", "level=error", "rrd_create failed")
        assert_throttled(create_errors, full_seconds, "archive creation")
        assert "check the free space" in create_errors[0], create_errors[0]
        # The firing transition could not be committed: logged once, kept in memory.
        assert_throttled(log_lines(d, "module=evaluator", "level=error",
                                   "did not take this evaluation's changes"),
                         full_seconds, "state database commits")
        assert log_lines(d, "module=statedb", "database or disk is full")

        os.unlink(filler)
        freed = time.monotonic()
        late_dir = os.path.join(small_tmpfs, "tocsin_probe_success")
        wait_for(lambda: len(os.listdir(late_dir)) == 2, timeout=30,
                 what="the new probe's archive after space was freed")
        wait_for(lambda: hook_keys(hook), timeout=30, what="the ServiceDown notification")
        assert log_lines(d, "module=evaluator", "kept in memory are stored now")
        assert [state for _, state, _ in outbox_rows(d, "hook")] == ["delivered"]
        print(f"full disk: recovered {time.monotonic() - freed:.1f}s after space was freed")
        assert d.stop() == 0
    finally:
        hook.stop()
        svc.stop() if svc.running else None
        late.stop()


# ---- State database locked at start ----


class LockHolder:
    """A Python process that holds an exclusive lock on a SQLite file for `seconds`."""

    def __init__(self, path, seconds):
        code = ("import sqlite3, sys, time\n"
                "con = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                "con.execute('BEGIN EXCLUSIVE')\n"
                "print('locked', flush=True)\n"
                "time.sleep(float(sys.argv[2]))\n"
                "con.execute('ROLLBACK')\n")
        self.proc = subprocess.Popen(["/usr/bin/python3", "-c", code, path, str(seconds)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)


def test_locked_state_db_at_start(daemon_factory, tmp_path):
    """Another process holds the state database locked when tocsind starts. A lock that
    ends within the 5 s busy timeout only delays the start. One held longer makes
    tocsind exit with status 1 and a message that names the file and the fix. After the
    lock is gone, tocsind starts and delivers notifications."""
    svc, other = Listener(), Listener()
    hook = ScriptedServer()
    receivers = {"hook": webhook_receiver("hook", hook.url())}
    text = alerting_config(tmp_path, [probe_yaml("svc", svc.port),
                                      probe_yaml("other", other.port)], receivers)
    db_path = os.path.join(str(tmp_path), "data", "state", "state.db")
    try:
        # A first run creates the database, as on any machine that ran tocsind before.
        d = daemon_factory(text)
        assert d.stop() == 0

        # Held for 2 s: tocsind waits and starts.
        holder = LockHolder(db_path, 2)
        started = time.monotonic()
        d.start()
        holder.release()
        waited = time.monotonic() - started
        assert log_lines(d, "is locked by another process") == []
        svc.stop()
        wait_for(lambda: hook_keys(hook), timeout=15, what="ServiceDown at the webhook")
        assert d.stop() == 0

        # Held for 30 s: tocsind gives up after the busy timeout.
        holder = LockHolder(db_path, 30)
        try:
            started = time.monotonic()
            proc = subprocess.run(
                [tocsind_path(), "--config", d.config_path, "--data-dir", d.data_dir,
                 "--listen", f"127.0.0.1:{free_port()}"],
                capture_output=True, text=True, timeout=20)
            gave_up = time.monotonic() - started
        finally:
            holder.release()
        assert proc.returncode == 1, proc.stderr
        assert 4.5 <= gave_up < 10, gave_up
        errors = [line for line in proc.stderr.splitlines() if "level=error" in line]
        assert len(errors) == 1, proc.stderr
        assert db_path in errors[0]
        assert "is locked by another process" in errors[0]
        assert "stop the other tocsind" in errors[0]
        assert "tocsind stops" in errors[0]

        # The lock is gone: the next start (as systemd's Restart=on-failure makes it)
        # works and alerts.
        delivered = len(hook_keys(hook))
        d.start()
        other.stop()
        wait_for(lambda: len(hook_keys(hook)) > delivered, timeout=15,
                 what="a notification after the lock was released")
        print(f"locked db: a 2 s lock delayed the start by {waited:.1f}s; a 30 s lock "
              f"ended tocsind after {gave_up:.1f}s")
    finally:
        hook.stop()
        for listener in (svc, other):
            listener.stop() if listener.running else None
