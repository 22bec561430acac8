"""The webhook receiver against a real HTTP server on 127.0.0.1 that records every request
and replies as scripted, with status codes and Retry-After, hangs past the timeout,
connection resets and TLS. Each case runs tests/tools/send_notification and checks the
outcome the outbox would get, and what arrived: body, HMAC, Idempotency-Key, auth."""

import email.utils
import hashlib
import hmac
import json
import socket
import time

import pytest

from http_servers import Certificates
from receiver_tools import ScriptedServer, alert, notification, send, status, write_secret


@pytest.fixture
def server():
    s = ScriptedServer()
    yield s
    s.stop()


def firing_note(sequence=1):
    resolved = alert("db2", firing=False, ends_at_ms=int(time.time() * 1000))
    return notification([alert("db1"), resolved], sequence=sequence)


def test_retry_sequence_429_503_200(tmp_path, server):
    """One notification: 429 with Retry-After 2, then 503, then 200, as three attempts."""
    server.script(status(429, {"Retry-After": "2"}, b"slow down"),
                  status(503, {}, b"maintenance"), status(200))
    r = send(tmp_path, "webhook", f"url: {server.url()}\n", firing_note(), repeat=3)
    assert r.returncode == 0, r.stderr
    assert [o["result"] for o in r.outcomes] == ["retry", "retry", "ok"]
    assert r.outcomes[0]["reason"] == "429"
    assert r.outcomes[0]["retry_after_ms"] == 2000
    assert r.outcomes[1]["reason"] == "5xx"
    assert r.outcomes[1]["retry_after_ms"] == 0
    assert "503" in r.outcomes[1]["detail"]
    assert r.outcomes[2]["reason"] == "2xx"
    # Every attempt carries the same key, so the receiver can drop duplicates.
    keys = [req["headers"].get("idempotency-key") for req in server.requests]
    assert keys == ['{}:{alertname="DiskFull"}/1'] * 3


def test_400_is_permanent(tmp_path, server):
    server.script(status(400, {}, b'{"error":"invalid payload"}'))
    r = send(tmp_path, "webhook", f"url: {server.url()}\n", firing_note(2))
    assert r.outcomes[0]["result"] == "permanent"
    assert r.outcomes[0]["reason"] == "4xx"
    assert "400" in r.outcomes[0]["detail"]
    assert "invalid payload" in r.outcomes[0]["detail"]


def test_retry_after_one_day_kept(tmp_path, server):
    """The receiver reports the server's delay as is; capping it is the outbox's job."""
    server.script(status(429, {"Retry-After": "86400"}))
    r = send(tmp_path, "webhook", f"url: {server.url()}\n", firing_note(3))
    assert r.outcomes[0]["result"] == "retry"
    assert r.outcomes[0]["retry_after_ms"] == 86400000


def test_retry_after_http_date(tmp_path, server):
    when = time.time() + 120
    server.script(status(503, {"Retry-After": email.utils.formatdate(when, usegmt=True)}))
    r = send(tmp_path, "webhook", f"url: {server.url()}\n", firing_note())
    assert r.outcomes[0]["reason"] == "5xx"
    # The date has whole seconds and some time passes before the tool parses it.
    assert 100_000 <= r.outcomes[0]["retry_after_ms"] <= 121_000


def test_hang_past_timeout(tmp_path, server):
    server.script(("hang", 20))
    r = send(tmp_path, "webhook", f"url: {server.url()}\ntimeout: 1s\n", firing_note())
    assert r.outcomes[0]["result"] == "retry"
    assert r.outcomes[0]["reason"] == "timeout"
    assert r.elapsed < 8


def test_connection_reset(tmp_path, server):
    server.script(("reset",))
    r = send(tmp_path, "webhook", f"url: {server.url()}\n", firing_note())
    assert r.outcomes[0]["result"] == "retry"
    assert r.outcomes[0]["reason"] == "reset"


def test_connection_refused(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = send(tmp_path, "webhook", f"url: http://127.0.0.1:{port}/hook\n", firing_note())
    assert r.outcomes[0]["result"] == "retry"
    assert r.outcomes[0]["reason"] == "refused"


def test_cancel_in_flight(tmp_path, server):
    server.script(("hang", 20))
    r = send(tmp_path, "webhook", f"url: {server.url()}\n", firing_note(), cancel_after_ms=300)
    assert r.returncode == 0, r.stderr
    assert r.outcomes == [{"result": "cancelled"}]
    assert r.elapsed < 8


def test_payload_hmac_and_headers(tmp_path, server):
    secret = write_secret(tmp_path / "hmac.key", "correct horse battery staple")
    token = write_secret(tmp_path / "token", "t0ken")
    options = (f"url: {server.url()}\n"
               f"headers: {{X-Team: storage}}\n"
               f"auth: {{bearer_token_file: {token}}}\n"
               f"hmac: {{secret_file: {secret}}}\n")
    note = firing_note(7)
    r = send(tmp_path, "webhook", options, note)
    assert r.outcomes[0]["result"] == "ok", r.outcomes
    req = server.requests[0]
    assert req["path"] == "/hook"
    headers = req["headers"]
    assert headers["content-type"] == "application/json"
    assert headers["x-team"] == "storage"
    assert headers["authorization"] == "Bearer t0ken"
    assert headers["idempotency-key"] == note["idempotency_key"]
    expected = hmac.new(b"correct horse battery staple", req["body"], hashlib.sha256).hexdigest()
    assert headers["x-tocsin-signature"] == "sha256=" + expected

    body = json.loads(req["body"])
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "ops"
    assert body["groupKey"] == note["group_key"]
    assert body["idempotencyKey"] == note["idempotency_key"]
    assert body["truncatedAlerts"] == 0
    firing, resolved = body["alerts"]
    assert firing["status"] == "firing"
    assert firing["endsAt"] == "0001-01-01T00:00:00Z"
    assert resolved["status"] == "resolved"
    assert resolved["endsAt"] != "0001-01-01T00:00:00Z"
    assert len(firing["fingerprint"]) == 16


def test_hmac_custom_header_and_basic_auth(tmp_path, server):
    secret = write_secret(tmp_path / "hmac.key", "k")
    password = write_secret(tmp_path / "password", "pa55")
    options = (f"url: {server.url()}\n"
               f"auth: {{basic: {{username: alice, password_file: {password}}}}}\n"
               f"hmac: {{secret_file: {secret}, header: X-Hub-Signature-256}}\n"
               f"max_alerts: 1\n")
    r = send(tmp_path, "webhook", options, firing_note())
    assert r.outcomes[0]["result"] == "ok", r.outcomes
    req = server.requests[0]
    assert req["headers"]["authorization"] == "Basic YWxpY2U6cGE1NQ=="  # alice:pa55
    expected = hmac.new(b"k", req["body"], hashlib.sha256).hexdigest()
    assert req["headers"]["x-hub-signature-256"] == "sha256=" + expected
    assert "x-tocsin-signature" not in req["headers"]
    body = json.loads(req["body"])
    assert len(body["alerts"]) == 1
    assert body["truncatedAlerts"] == 1


def test_slack_and_pagerduty_presets(tmp_path, server):
    key = write_secret(tmp_path / "routing", "R0UT1NG")
    r = send(tmp_path, "webhook",
             f"url: {server.url('/slack')}\nformat: slack\nchannel: '#ops'\n", firing_note(),
             name="slack")
    assert r.outcomes[0]["result"] == "ok", r.outcomes
    r = send(tmp_path, "webhook",
             f"url: {server.url('/pd')}\nformat: pagerduty\nrouting_key_file: {key}\n",
             firing_note(), name="pagerduty")
    assert r.outcomes[0]["result"] == "ok", r.outcomes
    slack = json.loads(server.requests[0]["body"])
    assert slack["channel"] == "#ops"
    assert slack["attachments"][0]["color"] == "danger"
    assert "Disk of db1 is full" in slack["attachments"][0]["text"]
    pd = json.loads(server.requests[1]["body"])
    assert pd["routing_key"] == "R0UT1NG"
    assert pd["event_action"] == "trigger"
    assert pd["dedup_key"] == '{}:{alertname="DiskFull"}'
    assert pd["payload"]["severity"] == "critical"
    # The Idempotency-Key header goes with every format.
    assert server.requests[1]["headers"]["idempotency-key"] == '{}:{alertname="DiskFull"}/1'


def test_tls_verified_and_rejected(tmp_path):
    """A certificate for tocsin.test only: verified with the CA and tls.server_name."""
    certs = Certificates(str(tmp_path))
    tls_server = ScriptedServer(tls=certs.signed("webhook", "DNS:tocsin.test"))
    url = tls_server.url()
    try:
        r = send(tmp_path, "webhook", f"url: {url}\n", firing_note(), name="noca")
        assert r.outcomes[0]["result"] == "retry"
        assert r.outcomes[0]["reason"] == "tls"
        r = send(tmp_path, "webhook", f"url: {url}\ntls: {{ca_file: {certs.ca}}}\n",
                 firing_note(), name="mismatch")
        assert r.outcomes[0]["reason"] == "tls"
        r = send(tmp_path, "webhook",
                 f"url: {url}\ntls: {{ca_file: {certs.ca}, server_name: tocsin.test}}\n",
                 firing_note(), name="sni")
        assert r.outcomes[0]["result"] == "ok", r.outcomes
        # The Host header keeps the URL's authority.
        assert tls_server.requests[-1]["headers"]["host"] == url.split("/")[2]
    finally:
        tls_server.stop()


@pytest.mark.parametrize("options, message", [
    ("url: ftp://127.0.0.1/x\n", 'url: scheme "ftp"'),
    ("url: http://127.0.0.1/x\nformat: teams\n", 'format: "teams" is not accepted'),
    ("url: http://127.0.0.1/x\nformat: pagerduty\n", "routing_key_file is missing"),
    ("url: http://127.0.0.1/x\nchannel: '#ops'\n", "channel: applies to format: slack only"),
    ("url: http://127.0.0.1/x\nheaders: {Idempotency-Key: x}\n", "set by tocsin"),
    ("url: http://127.0.0.1/x\ntimeout: 0s\n", "timeout: must be longer than 0s"),
    ("url: http://127.0.0.1/x\nhmac: {header: X-Sig}\n", "secret_file is missing"),
])
def test_config_errors_have_positions(tmp_path, options, message):
    r = send(tmp_path, "webhook", options, firing_note())
    assert r.returncode == 1
    assert r.outcomes == []
    assert message in r.stderr, r.stderr
    # FILE:LINE:COLUMN: KEY: PROBLEM
    first = r.stderr.splitlines()[0]
    path, line, column = first.split(":")[:3]
    assert path.endswith("run-options.yml")
    assert int(line) >= 1
    assert int(column) >= 1
