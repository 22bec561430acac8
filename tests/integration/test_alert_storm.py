"""The alerter's durability under a storm: 48 alerts fire and resolve continuously while
tocsind is killed with SIGKILL at random moments and restarted (20 cycles, or
TOCSIN_STORM_CYCLES), and the webhook server replies to some requests with 500 or 503,
slowly, or not at all, so the outbox contains retrying rows at the kills.

While tocsind is down after each kill, the test checks the state database (PRAGMA
integrity_check, read-only), that every row the outbox marks delivered reached the
server, and that no idempotency key was accepted more than twice. After the storm it
stops changing the alerts and waits for the outbox to drain. Then it checks what a
receiver relies on: every outbox row reached the server at least once, no idempotency
key was accepted more than twice, and the last notification of every group lists
exactly the alerts that are firing. It prints one line with the figures (`make durability` runs it
with 100 cycles).

The alerts come from one exec probe that prints storm_up for each unit from a file the
test rewrites, so the test knows each alert's state at any moment. Each alert is in two
groups: its own (group_by ['...']) and its shard's (8 shards of 6 units)."""

import http.server
import json
import os
import random
import signal
import sqlite3
import threading
import time

from conftest import wait_for

UNITS = [f"u{i:02d}" for i in range(48)]
SHARDS = 8
# Each cycle: a random wait of 0.8 to 3 s in the storm, kill -9, checks, restart.
CYCLES = int(os.environ.get("TOCSIN_STORM_CYCLES", "20"))
# Shares of webhook requests that get no reply at all (hang), a 500 reply, a 503 reply,
# and a 200 reply after a delay shorter than the webhook's 500 ms timeout (slow).
HANG_SHARE = 0.05
ERROR_500_SHARE = 0.05
ERROR_503_SHARE = 0.05
SLOW_SHARE = 0.10
HANG_SECONDS = 0.8
SLOW_SECONDS = 0.3

RULES = """
groups:
  - name: storm
    interval: 1s
    rules:
      - alert: UnitDown
        expr: storm_up == 0
        flapping: {high: 0}
        annotations:
          summary: "{{ $labels.unit }} is down"
"""


def shard_of(unit):
    return f"s{int(unit[1:]) % SHARDS}"


def config(port, state_path, rules_path):
    hook = "http://127.0.0.1:%d" % port
    return f"""
rule_files: ["{rules_path}"]
probes:
  - name: storm
    type: exec
    interval: 1s
    timeout: 900ms
    output: prometheus
    command: [/bin/cat, "{state_path}"]
alerting:
  retry: {{initial: 200ms, max: 1s}}
  circuit_breaker: {{failures: 10, cooldown: 500ms}}
  receivers:
    - name: shard
      webhook: {{url: "{hook}/shard", timeout: 500ms}}
    - name: each
      webhook: {{url: "{hook}/each", timeout: 500ms}}
  route:
    receiver: each
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 1h
    routes:
      - matchers: ['alertname="UnitDown"']
        receiver: shard
        group_by: [shard]
        continue: true
      - matchers: ['alertname="UnitDown"']
        receiver: each
        group_by: ['...']
"""


class StormHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        srv = self.server
        draw = srv.random.random() if srv.faults.is_set() else 1.0
        if draw < HANG_SHARE:
            # No reply: the webhook's 500 ms timeout ends the attempt.
            time.sleep(HANG_SECONDS)
            self.close_connection = True
            return
        draw -= HANG_SHARE
        if draw < ERROR_500_SHARE:
            code = 500
        elif draw < ERROR_500_SHARE + ERROR_503_SHARE:
            code = 503
        else:
            code = 200
            if draw < ERROR_500_SHARE + ERROR_503_SHARE + SLOW_SHARE:
                time.sleep(SLOW_SECONDS)
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
        # Recorded once the reply is written: a 200 counts as received even when tocsind
        # is killed before it reads it.
        with srv.lock:
            srv.accepted.append((self.path, self.headers.get("Idempotency-Key"), code, body))


class StormServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), StormHandler)
        self.lock = threading.Lock()
        self.accepted = []
        self.random = random.Random(7)
        self.faults = threading.Event()
        self.faults.set()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def handle_error(self, request, client_address):
        pass  # a kill -9 resets the connections of the attempts in flight

    def received_counts(self):
        """How often each (path, idempotency key) got a 200 reply."""
        counts = {}
        with self.lock:
            for path, key, code, _ in self.accepted:
                if code == 200:
                    counts[(path, key)] = counts.get((path, key), 0) + 1
        return counts

    def delivered(self):
        """(path, idempotency key, parsed body) of every request that got a 200 reply."""
        with self.lock:
            return [(p, k, json.loads(b)) for (p, k, c, b) in self.accepted if c == 200]

    def stop(self):
        self.shutdown()
        self.server_close()


class Units:
    """The exec probe's input: storm_up per unit, rewritten atomically."""

    def __init__(self, path):
        self.path = path
        self.up = {u: True for u in UNITS}
        self.lock = threading.Lock()
        self.write()

    def write(self):
        lines = ["# TYPE storm_up gauge"]
        with self.lock:
            for u in UNITS:
                lines.append(f'storm_up{{unit="{u}",shard="{shard_of(u)}"}} {int(self.up[u])}')
            down = {u for u in UNITS if not self.up[u]}
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, self.path)
        return down

    def flip(self, units):
        with self.lock:
            for u in units:
                self.up[u] = not self.up[u]
        return self.write()


def toggle(units, stop, rng):
    """Flips a few units every 300 ms until stop is set."""
    while not stop.wait(0.3):
        units.flip(rng.sample(UNITS, 4))


def state_db(d):
    return os.path.join(d.data_dir, "state", "state.db")


def query(d, sql):
    con = sqlite3.connect(f"file:{state_db(d)}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def integrity(d):
    return query(d, "PRAGMA integrity_check")


def kill9(d):
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(timeout=10)
    d.log.close()


def outbox_pending(d):
    """Rows of the outbox that are not final (queued, sending or retrying), per state."""
    counts = {}
    for line in d.metrics().splitlines():
        if line.startswith("tocsin_outbox_entries{"):
            state = line.split('state="', 1)[1].split('"', 1)[0]
            if state not in ("delivered", "dead"):
                counts[state] = counts.get(state, 0) + int(float(line.rsplit(" ", 1)[1]))
    return {s: n for s, n in counts.items() if n > 0}


def firing_in_metrics(d):
    units = set()
    for line in d.metrics().splitlines():
        if (line.startswith("ALERTS{") and 'alertname="UnitDown"' in line
                and 'alertstate="firing"' in line):
            units.add(line.split('unit="', 1)[1].split('"', 1)[0])
    return units


def last_notifications(delivered):
    """The notification with the highest sequence of each (receiver path, group key)."""
    last = {}
    for path, key, body in delivered:
        group_key, sequence = key.rsplit("/", 1)
        assert body["groupKey"] == group_key, (key, body["groupKey"])
        slot = (path, group_key)
        if slot not in last or int(sequence) > last[slot][0]:
            last[slot] = (int(sequence), body)
    return {slot: body for slot, (_, body) in last.items()}


def group_mismatches(delivered, down):
    """Groups whose last notification does not list exactly the units that are down as
    firing, and units that are down but that no last notification lists as firing."""
    problems = []
    listed = {"/each": set(), "/shard": set()}
    for (path, group_key), body in sorted(last_notifications(delivered).items()):
        firing = {a["labels"]["unit"] for a in body["alerts"] if a["status"] == "firing"}
        members = {a["labels"]["unit"] for a in body["alerts"]}
        expected = {u for u in down if u in members} if path == "/each" else \
            {u for u in down if shard_of(u) == body["groupLabels"].get("shard")}
        if firing != expected:
            problems.append(f"{path} {group_key} #{body['idempotencyKey']}: lists firing "
                            f"{sorted(firing)}, firing now {sorted(expected)}")
        listed[path] |= firing
    for path, units in listed.items():
        if units != down:
            problems.append(f"{path}: down units without a firing notification: "
                            f"{sorted(down - units)}")
    return problems


def check_while_down(d, server):
    """Problems in the state of the storm while tocsind is killed: the integrity check's
    output when it is not ok, rows the outbox marks delivered that the server never
    accepted, and keys the server accepted more than twice. Returns (integrity result,
    problems)."""
    problems = []
    result = integrity(d)
    if result != [("ok",)]:
        problems.append(f"PRAGMA integrity_check: {result}")
    rows = query(d, "SELECT receiver, idempotency_key FROM outbox WHERE state = 'delivered'")

    def lost():
        received = server.received_counts()
        return [r for r in rows if ("/" + r[0], r[1]) not in received]

    # The server records a request just after it writes the reply, so tocsind can read
    # the reply and commit before the handler thread has recorded it.
    missing = lost()
    deadline = time.monotonic() + 2
    while missing and time.monotonic() < deadline:
        time.sleep(0.05)
        missing = lost()
    if missing:
        problems.append(f"{len(missing)} rows marked delivered never accepted: {missing[:5]}")
    over = {k: n for k, n in server.received_counts().items() if n > 2}
    if over:
        problems.append(f"keys accepted more than twice: {over}")
    return result, problems


def print_summary(figures):
    """Prints the one-line report that `make durability` shows."""
    print("\ndurability: cycles=%(cycles)d notifications expected=%(expected)s "
          "delivered=%(delivered)s lost=%(lost)s max_deliveries_per_key=%(max_per_key)s "
          "keys_delivered_twice=%(twice)s "
          "integrity_check=%(integrity)s time=%(seconds).0fs" % figures, flush=True)


def test_alert_storm_with_kill9(daemon_factory, tmp_path):
    assert CYCLES > 0, f"TOCSIN_STORM_CYCLES={CYCLES}: expected a number of cycles above 0"
    started = time.monotonic()
    rng = random.Random(20240611)
    server = StormServer()
    units = Units(str(tmp_path / "storm.prom"))
    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(RULES)
    stop = threading.Event()
    toggler = threading.Thread(target=toggle, args=(units, stop, rng), daemon=True)
    figures = {"cycles": 0, "expected": "?", "delivered": "?", "lost": "?",
               "max_per_key": "?", "twice": "?", "integrity": "ok", "seconds": 0.0}
    try:
        d = daemon_factory(config(server.server_address[1], units.path, rules_path))
        toggler.start()
        wait_for(lambda: len(server.delivered()) > 20, timeout=30,
                 what="the first notifications of the storm")

        # The storm: kill -9 at random moments, check while tocsind is down, restart.
        for cycle in range(1, CYCLES + 1):
            time.sleep(rng.uniform(0.8, 3.0))
            kill9(d)
            figures["cycles"] = cycle
            result, problems = check_while_down(d, server)
            if result != [("ok",)]:
                figures["integrity"] = f"failed@{cycle}"
            assert not problems, f"after kill {cycle}: " + "; ".join(problems)
            d.start()

        # Calm: the alerts keep the last state written, the server answers every request.
        stop.set()
        toggler.join(timeout=5)
        down = units.write()
        server.faults.clear()
        assert 0 < len(down) < len(UNITS), "the storm left every unit in one state"

        def settled():
            if outbox_pending(d):
                return False
            return not group_mismatches(server.delivered(), down)

        try:
            wait_for(settled, timeout=40, interval=0.5,
                     what="the outbox to drain and every group to list the alerts firing now")
        except AssertionError:
            raise AssertionError("after the storm:\npending outbox rows: %s\n%s" % (
                outbox_pending(d), "\n".join(group_mismatches(server.delivered(), down))))

        assert firing_in_metrics(d) == down
        stored = query(d, "SELECT labels FROM alerter_alerts WHERE firing = 1")
        assert {json.loads(labels)["unit"] for (labels,) in stored} == down

        rows = query(d, "SELECT receiver, idempotency_key, state, attempts, last_reason "
                        "FROM outbox")
        # A notification that a newer one of its group replaced before it was delivered
        # is superseded: the newer one carries the whole state of the group.
        superseded = [r for r in rows if r[2] == "dead" and r[4] == "superseded"]
        rows = [r for r in rows if r not in superseded]
        received = server.received_counts()
        missing = [r for r in rows if ("/" + r[0], r[1]) not in received]
        figures.update(expected=len(rows), delivered=len(rows) - len(missing),
                       lost=len(missing), max_per_key=max(received.values(), default=0),
                       twice=sum(1 for n in received.values() if n == 2))

        # (a) Every notification in the outbox was received at least once.
        assert rows, "the outbox is empty"
        assert not [r for r in rows if r[2] != "delivered"], "outbox rows not delivered"
        assert not missing, f"{len(missing)} of {len(rows)} rows never received: {missing[:5]}"
        # and nothing arrived that the outbox does not hold.
        stored_keys = {("/" + r[0], r[1]) for r in rows + superseded}
        assert not set(received) - stored_keys

        # (b) No idempotency key was accepted more than twice.
        over = {k: n for k, n in received.items() if n > 2}
        assert not over, f"keys received more than twice: {over}"

        # The storm did what it is for: many notifications, and some needed a retry.
        assert len(rows) > 50 + 5 * CYCLES, \
            f"only {len(rows)} notifications in a storm of {CYCLES} cycles"
        assert any(r[3] > 1 for r in rows), "no notification needed a second attempt"

        # (c) The database is intact after the final restart too.
        final = integrity(d)
        if final != [("ok",)]:
            figures["integrity"] = "failed@end"
        assert final == [("ok",)]
    finally:
        stop.set()
        server.stop()
        figures["seconds"] = time.monotonic() - started
        print_summary(figures)
