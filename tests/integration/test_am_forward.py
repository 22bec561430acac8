"""The alertmanager receiver against a real Alertmanager (Debian's prometheus-alertmanager)
on 127.0.0.1, with clustering disabled. Forwarded firing and resolved alerts are read back
through its API, GET /api/v2/alerts, and through the webhook it sends to a recording
server.
Also the rule for several Alertmanagers (delivered when one accepts) and the loud error
for Alertmanager's "start time must be before end time" reply. The tests with a running
tocsind count its periodic re-sends through a recording proxy in front of Alertmanager."""

import datetime
import http.server
import json
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest

from alertmanager import Alertmanager
from conftest import free_port, wait_for
from listener import Listener
from receiver_tools import ScriptedServer, alert, notification, now_ms, send, status

def parse_time_ms(text):
    """Milliseconds of an RFC 3339 time as Alertmanager writes it (nanosecond digits)."""
    head, _, rest = text.rstrip("Z").partition(".")
    base = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.timezone.utc)
    fraction = int((rest + "000")[:3]) if rest else 0
    return int(base.timestamp()) * 1000 + fraction


@pytest.fixture
def hook():
    s = ScriptedServer()
    yield s
    s.stop()


@pytest.fixture
def alertmanager(tmp_path, hook):
    am = Alertmanager(str(tmp_path), hook.url("/am"))
    yield am
    am.stop()


def hook_notifications(hook, expected_status):
    """Webhook bodies Alertmanager sent with the given status."""
    bodies = [json.loads(r["body"]) for r in list(hook.requests)]
    return [b for b in bodies if b["status"] == expected_status]


def test_firing_then_resolved(tmp_path, alertmanager, hook):
    started = now_ms() - 10 * 60 * 1000
    firing = notification([alert("db1", starts_at_ms=started,
                                 generator_url="http://127.0.0.1:9517/rules#DiskFull")])
    options = f"urls: [{alertmanager.url}]\nresend_delay: 1m\n"
    r = send(tmp_path, "alertmanager", options, firing, name="firing")
    assert r.outcomes[0]["result"] == "ok", (r.outcomes, r.stderr)
    assert r.outcomes[0]["reason"] == "2xx"

    listed = wait_for(alertmanager.alerts, timeout=10, what="the alert in /api/v2/alerts")
    assert len(listed) == 1
    a = listed[0]
    assert a["labels"] == {"alertname": "DiskFull", "instance": "db1", "severity": "critical"}
    assert a["annotations"] == {"summary": "Disk of db1 is full"}
    assert a["status"]["state"] == "active"
    assert a["generatorURL"] == "http://127.0.0.1:9517/rules#DiskFull"
    assert parse_time_ms(a["startsAt"]) == started
    # A firing alert stays valid for 4 * resend_delay after the send.
    ends = parse_time_ms(a["endsAt"])
    assert ends >= parse_time_ms(a["startsAt"])
    assert now_ms() + 3 * 60 * 1000 < ends <= now_ms() + 4 * 60 * 1000

    wait_for(lambda: hook_notifications(hook, "firing"), timeout=15,
             what="Alertmanager's firing webhook")

    ended = now_ms() - 1000
    resolved = notification([alert("db1", firing=False, starts_at_ms=started, ends_at_ms=ended)],
                            sequence=2)
    r = send(tmp_path, "alertmanager", options, resolved, name="resolved")
    assert r.outcomes[0]["result"] == "ok", (r.outcomes, r.stderr)
    # Alertmanager lists only alerts whose endsAt is still ahead.
    wait_for(lambda: alertmanager.alerts() == [], timeout=10, what="the alert to resolve")
    sent = wait_for(lambda: hook_notifications(hook, "resolved"), timeout=15,
                    what="Alertmanager's resolved webhook")
    a = sent[0]["alerts"][0]
    assert a["status"] == "resolved"
    assert parse_time_ms(a["startsAt"]) == started
    assert parse_time_ms(a["endsAt"]) == ended


def test_one_of_two_accepting_is_delivered(tmp_path, alertmanager):
    down = f"http://127.0.0.1:{free_port()}"
    note = notification([alert("db2")])
    r = send(tmp_path, "alertmanager", f"urls: [{down}, {alertmanager.url}/]\n", note)
    assert r.outcomes[0]["result"] == "ok", r.outcomes
    assert "accepted by 1 of 2 Alertmanagers" in r.outcomes[0]["detail"]
    assert down in r.outcomes[0]["detail"]
    # The failing instance is logged here, because the outbox gets a success.
    assert "send failed (refused" in r.stderr
    wait_for(alertmanager.alerts, timeout=10, what="the alert in /api/v2/alerts")


def test_none_accepting_is_retried(tmp_path):
    urls = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    r = send(tmp_path, "alertmanager", f"urls: [{urls[0]}, {urls[1]}]\n",
             notification([alert("db3")]))
    assert r.outcomes[0]["result"] == "retry"
    assert r.outcomes[0]["reason"] == "refused"


def test_time_order_rejection_logged_loudly(tmp_path):
    """Alertmanager's reply to endsAt < startsAt means a bug in tocsin: permanent, logged."""
    fake = ScriptedServer()
    try:
        reply = b'{"code":400,"message":"start time must be before end time"}'
        fake.script(status(400, {"Content-Type": "application/json"}, reply))
        r = send(tmp_path, "alertmanager", f"urls: ['{fake.url('')}']\n",
                 notification([alert("db4")]))
        assert fake.requests[0]["path"] == "/api/v2/alerts"
        assert r.outcomes[0]["result"] == "permanent"
        assert r.outcomes[0]["reason"] == "4xx"
        assert "level=error" in r.stderr
        assert "endsAt precedes its startsAt" in r.stderr
    finally:
        fake.stop()


def test_base_url_path_prefix(tmp_path):
    fake = ScriptedServer()
    try:
        r = send(tmp_path, "alertmanager", f"urls: ['{fake.url('/am/')}']\n",
                 notification([alert("db5")]))
        assert r.outcomes[0]["result"] == "ok", r.outcomes
        req = fake.requests[0]
        assert req["path"] == "/am/api/v2/alerts"
        body = json.loads(req["body"])
        assert isinstance(body, list)
        assert set(body[0]) == {"labels", "annotations", "startsAt", "endsAt"}
        assert req["headers"]["idempotency-key"] == '{}:{alertname="DiskFull"}/1'
    finally:
        fake.stop()


def test_cancel_with_two_posts_in_flight(tmp_path):
    fake = ScriptedServer()
    try:
        fake.script(("hang", 20), ("hang", 20))
        r = send(tmp_path, "alertmanager", f"urls: ['{fake.url('/a')}', '{fake.url('/b')}']\n",
                 notification([alert("db7")]), cancel_after_ms=300)
        assert r.returncode == 0, r.stderr
        assert r.outcomes == [{"result": "cancelled"}]
        assert len(fake.requests) == 2
    finally:
        fake.stop()


@pytest.mark.parametrize("options, message", [
    ("urls: []\n", "urls: is empty"),
    ("resend_delay: 1m\n", "urls is missing"),
    ("urls: [ftp://127.0.0.1]\n", 'urls[0]: scheme "ftp"'),
    ("urls: [http://127.0.0.1:9093]\nresend_delay: 0s\n", "resend_delay: must be longer"),
    ("urls: [http://127.0.0.1:9093]\nresend_delay: 200ms\n", "at least 1000 ms: each re-send"),
])
def test_config_errors(tmp_path, options, message):
    r = send(tmp_path, "alertmanager", options, notification([alert("db6")]))
    assert r.returncode == 1
    assert message in r.stderr, r.stderr


# ---- Re-sends by a running tocsind ----

ZERO_TIME = "0001-01-01T00:00:00Z"
RESEND_DELAY_S = 1
RESOLVED_KEEP_S = 3

RULES = """
groups:
  - name: svc
    interval: 1s
    rules:
      - alert: ServiceDown
        expr: tocsin_probe_success{probe="svc"} == 0
        labels: {severity: page}
"""


def daemon_config(tmp_path, svc_port, am_url):
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    return f"""
rule_files: ["{rules}"]
probes:
  - name: svc
    type: tcp
    target: "127.0.0.1:{svc_port}"
    interval: 1s
    timeout: 500ms
alerting:
  retry: {{initial: 200ms, max: 1s}}
  receivers:
    - name: am
      alertmanager:
        urls: [{am_url}]
        timeout: 2s
        resend_delay: {RESEND_DELAY_S}s
        resolved_keep: {RESOLVED_KEEP_S}s
  route:
    receiver: am
    group_by: [alertname]
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 1h
"""


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.sends.append((now_ms(), json.loads(body)))
        request = urllib.request.Request(self.server.upstream + self.path, data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                code, reply = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, reply = e.code, e.read()
        self.send_response(code)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


class RecordingProxy(http.server.ThreadingHTTPServer):
    """Forwards each POST to the Alertmanager at `upstream` and records when it arrived and
    its alerts, because Alertmanager's API shows only the latest copy of an alert."""

    daemon_threads = True

    def __init__(self, upstream):
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.upstream = upstream
        self.lock = threading.Lock()
        self.sends = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def alerts(self, kind=None, since=0):
        """(arrival ms, alert) of every alert sent from the send with index `since` on.
        kind "firing" keeps the alerts whose endsAt is ahead of their arrival, "resolved"
        the others."""
        with self.lock:
            sends = self.sends[since:]
        out = []
        for arrived, body in sends:
            for a in body:
                firing = parse_time_ms(a["endsAt"]) > arrived
                if kind is None or kind == ("firing" if firing else "resolved"):
                    out.append((arrived, a))
        return out

    def count(self):
        with self.lock:
            return len(self.sends)

    def stop(self):
        self.shutdown()
        self.server_close()


@pytest.fixture
def proxy(alertmanager):
    p = RecordingProxy(alertmanager.url)
    yield p
    p.stop()


@pytest.fixture
def svc():
    listener = Listener()
    yield listener
    if listener.running:
        listener.stop()


def assert_times_valid(sent):
    for _, a in sent:
        assert a["startsAt"] != ZERO_TIME, a
        assert parse_time_ms(a["endsAt"]) >= parse_time_ms(a["startsAt"]), a


def test_resends_firing_and_resolved(tmp_path, daemon_factory, alertmanager, proxy, svc):
    d = daemon_factory(daemon_config(tmp_path, svc.port, proxy.url))
    svc.stop()
    firing = wait_for(lambda: len(proxy.alerts("firing")) >= 4 and proxy.alerts("firing"),
                      timeout=20, what="the firing alert sent four times")
    assert len({a["startsAt"] for _, a in firing}) == 1, firing
    ends = [parse_time_ms(a["endsAt"]) for _, a in firing]
    assert ends == sorted(set(ends)), f"endsAt does not move ahead: {ends}"
    for arrived, a in firing:
        # The lease is 4 * resend_delay from the send.
        lease = parse_time_ms(a["endsAt"]) - arrived
        assert 3000 <= lease <= 4 * RESEND_DELAY_S * 1000 + 100, (lease, a)
    gaps = [later - earlier for (earlier, _), (later, _) in zip(firing, firing[1:])]
    assert all(g <= 3000 for g in gaps), f"ms between sends: {gaps}"
    listed = wait_for(alertmanager.alerts, timeout=5, what="the alert in /api/v2/alerts")
    first_end = parse_time_ms(listed[0]["endsAt"])
    wait_for(lambda: parse_time_ms(alertmanager.alerts()[0]["endsAt"]) > first_end, timeout=5,
             what="Alertmanager's endsAt to move ahead")

    svc.start()
    resolved = wait_for(lambda: proxy.alerts("resolved"), timeout=15,
                        what="the resolved alert")
    ended = parse_time_ms(resolved[0][1]["endsAt"])
    # The resolved alert is re-sent until resolved_keep has passed, then dropped.
    keep_over_ms = ended + RESOLVED_KEEP_S * 1000
    time.sleep(max(0, keep_over_ms - now_ms()) / 1000 + 1.5)
    wait_for(lambda: 'tocsin_alerts{state="resolved"} 0' in d.metrics(), timeout=5,
             what="the resolved alert to leave the store")
    settled = proxy.count()
    time.sleep(2 * RESEND_DELAY_S)
    assert proxy.count() == settled, proxy.alerts(since=settled)
    resolved = proxy.alerts("resolved")
    assert len(resolved) >= 2, f"resolved alert sent {len(resolved)} times"
    assert {a["endsAt"] for _, a in resolved} == {resolved[0][1]["endsAt"]}, resolved
    assert {a["startsAt"] for _, a in resolved} == {firing[0][1]["startsAt"]}, resolved
    assert all(arrived < keep_over_ms + 1000 for arrived, _ in resolved), \
        [(arrived - ended, a) for arrived, a in resolved]
    assert proxy.alerts("firing")[-1][0] <= resolved[0][0]
    assert_times_valid(proxy.alerts())
    assert alertmanager.alerts() == []


def test_start_kept_across_kill9(tmp_path, daemon_factory, alertmanager, hook, proxy, svc):
    """startsAt stays the original start after kill -9, in re-sends and in the resolution
    that the restarted tocsind detects."""
    d = daemon_factory(daemon_config(tmp_path, svc.port, proxy.url))
    svc.stop()
    first = wait_for(proxy.alerts, timeout=15, what="the firing alert")[0][1]
    started = first["startsAt"]
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(timeout=10)
    d.log.close()
    time.sleep(1)
    before_restart = proxy.count()
    d.start()
    # The restarted tocsind re-sends at once: Alertmanager resolves the alert once its
    # endsAt passes.
    after = wait_for(lambda: proxy.alerts("firing", since=before_restart), timeout=10,
                     what="a re-send after the restart")
    assert after[0][1]["startsAt"] == started, after[0]

    svc.start()
    resolved = wait_for(lambda: proxy.alerts("resolved", since=before_restart), timeout=15,
                        what="the resolved alert")
    a = resolved[0][1]
    assert a["startsAt"] == started
    assert parse_time_ms(a["endsAt"]) > parse_time_ms(started)
    assert parse_time_ms(a["endsAt"]) > resolved[0][0] - 10 * 1000, a
    assert_times_valid(proxy.alerts())
    sent = wait_for(lambda: hook_notifications(hook, "resolved"), timeout=15,
                    what="Alertmanager's resolved webhook")
    assert parse_time_ms(sent[0]["alerts"][0]["startsAt"]) == parse_time_ms(started)
