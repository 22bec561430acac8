"""The alertmanager receiver against a real Alertmanager (Debian's prometheus-alertmanager)
on 127.0.0.1, with clustering disabled. Forwarded firing and resolved alerts are read back
through its API, GET /api/v2/alerts, and through the webhook it sends to a recording
server.
Also the rule for several Alertmanagers (delivered when one accepts) and the loud error
for Alertmanager's "start time must be before end time" reply."""

import datetime
import json

import pytest

from alertmanager import Alertmanager
from conftest import free_port, wait_for
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
])
def test_config_errors(tmp_path, options, message):
    r = send(tmp_path, "alertmanager", options, notification([alert("db6")]))
    assert r.returncode == 1
    assert message in r.stderr, r.stderr
