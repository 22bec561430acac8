"""The alerter inside the real tocsind, end to end: a tcp probe's target goes down and
the rule's alert reaches a webhook receiver and a real SMTP server (aiosmtpd) on
127.0.0.1, grouped and routed as configured, within a second of the evaluator seeing
the condition; it resolves when the target is back. A silence stops notifications; an
outage of the receiver is retried; kill -9 loses nothing and repeats nothing."""

import datetime
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import free_port, tocsind_path, wait_for
from listener import Listener
from receiver_tools import ScriptedServer, status

aiosmtpd_controller = pytest.importorskip(
    "aiosmtpd.controller", reason="aiosmtpd is not installed (Debian package python3-aiosmtpd)")


class Mailbox:
    """aiosmtpd handler that records each message with its arrival time."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        import email
        import email.policy
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append((time.time(), list(envelope.rcpt_tos), msg))
        return "250 2.0.0 Ok: queued"


@pytest.fixture
def mailbox():
    box = Mailbox()
    port = free_port()
    controller = aiosmtpd_controller.Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    box.port = port
    yield box
    controller.stop()


RULES = """
groups:
  - name: svc
    interval: 1s
    rules:
      - alert: ServiceDown
        expr: tocsin_probe_success{probe=~"svc|other"} == 0
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.probe }} is down"
"""


def config(rules_path, svc_port, other_port, hook_url, smtp_port, extra_route=""):
    return f"""
rule_files: ["{rules_path}"]
probes:
  - name: svc
    type: tcp
    target: "127.0.0.1:{svc_port}"
    interval: 1s
    timeout: 500ms
  - name: other
    type: tcp
    target: "127.0.0.1:{other_port}"
    interval: 1s
    timeout: 500ms
alerting:
  external_url: http://127.0.0.1:9517/
  retry: {{initial: 200ms, max: 3s, max_age: 1h}}
  receivers:
    - name: pager
      webhook:
        - url: {hook_url}
      email:
        smarthost: 127.0.0.1:{smtp_port}
        tls: none
        from: tocsin <tocsin@example.org>
        to: [oncall@example.org]
    - name: nobody
  route:
    receiver: nobody
    group_by: [alertname]
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 1h
    routes:
      - matchers: ['severity="page"']
        receiver: pager
{extra_route}
"""


def transitions(d, to_state):
    con = sqlite3.connect(os.path.join(d.data_dir, "state", "state.db"), timeout=10)
    try:
        return con.execute("SELECT time_ms FROM transitions WHERE alertname = 'ServiceDown' "
                           "AND to_state = ? ORDER BY id", (to_state,)).fetchall()
    finally:
        con.close()


def state_change_time(d, probe, state):
    """Unix time of the daemon's first notice that `probe` changed to `state`."""
    for line in d.log_text().splitlines():
        if f"probe={probe} " in line and f"-> {state} " in line:
            stamp = line.split()[0].removeprefix("ts=").removesuffix("Z")
            return datetime.datetime.fromisoformat(stamp).replace(
                tzinfo=datetime.timezone.utc).timestamp()
    raise AssertionError(f"no notice of probe {probe} going {state}")


def hook_bodies(hook):
    with hook.lock:
        return [(r["headers"], json.loads(r["body"])) for r in hook.requests]


def probes_in(body):
    return sorted((a["labels"]["probe"], a["status"]) for a in body["alerts"])


def start_stack(daemon_factory, tmp_path, hook, mailbox, extra_route="", start=True):
    svc, other = Listener(), Listener()
    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(RULES)
    d = daemon_factory(config(rules_path, svc.port, other.port, hook.url(), mailbox.port,
                              extra_route), start=start)
    return d, svc, other


def test_down_reaches_webhook_and_email_within_a_second(daemon_factory, tmp_path, mailbox):
    hook = ScriptedServer()
    d, svc, other = start_stack(daemon_factory, tmp_path, hook, mailbox)
    wait_for(lambda: 'tocsin_probe_success{probe="svc"' in d.metrics(), timeout=15,
             what="the probes' first runs")
    time.sleep(1.5)
    assert hook.requests == []
    assert mailbox.messages == []

    svc.stop()
    wait_for(lambda: hook.requests and mailbox.messages, timeout=15,
             what="the webhook and the email of ServiceDown")
    fired_at = transitions(d, "firing")[0][0] / 1000.0
    headers, body = hook_bodies(hook)[0]
    # Alertmanager's webhook payload, version 4, grouped by alertname.
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "pager"
    assert body["groupLabels"] == {"alertname": "ServiceDown"}
    assert probes_in(body) == [("svc", "firing")]
    assert body["alerts"][0]["annotations"]["summary"] == "svc is down"
    assert headers["idempotency-key"] == body["groupKey"] + "/1"
    mail_at, rcpt, msg = mailbox.messages[0]
    assert rcpt == ["oncall@example.org"]
    assert msg["X-Tocsin-Idempotency-Key"] == headers["idempotency-key"]
    assert "ServiceDown" in msg["Subject"]
    # Within a second of the condition: the failed run that took the probe down (its
    # notice line), not only of the evaluator's transition. The rules read the probe's
    # outcome, so they are evaluated out of turn after the failed run.
    down_at = state_change_time(d, "svc", "down")
    assert down_at <= fired_at + 0.01
    with hook.lock:
        hook_at = hook.requests[0]["time"]
    print(f"condition to delivery: webhook {hook_at - down_at:.3f}s, "
          f"email {mail_at - down_at:.3f}s (evaluator {fired_at - down_at:.3f}s)")
    assert mail_at - down_at < 1.0, f"email {mail_at - down_at:.3f}s after the condition"
    assert hook_at - down_at < 1.0, f"webhook {hook_at - down_at:.3f}s after the condition"
    log = d.log_text()
    assert "notification delivered" in log

    # A second alert of the same group joins it: one notification lists both.
    other.stop()
    wait_for(lambda: any(probes_in(b) == [("other", "firing"), ("svc", "firing")]
                         for _, b in hook_bodies(hook)), timeout=15,
             what="the group's second notification")
    # Back up: the resolution of both reaches both integrations.
    svc.start()
    other.start()
    wait_for(lambda: any(b["status"] == "resolved" for _, b in hook_bodies(hook)), timeout=20,
             what="the resolved notification")
    # The two may come back in different evaluations: each resolution is sent once, and
    # the last notification has every alert resolved.
    ends = [p for _, b in hook_bodies(hook) for p in probes_in(b) if p[1] == "resolved"]
    assert sorted(ends) == [("other", "resolved"), ("svc", "resolved")], ends
    assert hook_bodies(hook)[-1][1]["status"] == "resolved"
    wait_for(lambda: len(mailbox.messages) >= 3, timeout=10, what="the emails")
    keys = [h["idempotency-key"] for h, _ in hook_bodies(hook)]
    assert len(keys) == len(set(keys)), keys
    metrics = d.metrics()
    assert 'tocsin_notifications_total{receiver="pager",result="delivered"}' in metrics
    assert "tocsin_notification_latency_seconds_count" in metrics
    hook.stop()


def test_silence_stops_notifications(daemon_factory, tmp_path, mailbox):
    hook = ScriptedServer()
    d, svc, other = start_stack(daemon_factory, tmp_path, hook, mailbox)
    out = subprocess.run(
        [tocsind_path(), "--config", d.config_path, "--data-dir", d.data_dir, "--silence",
         "add", "--matcher", 'probe="svc"', "--duration", "1h", "--by", "test", "--comment",
         "maintenance"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    svc.stop()
    wait_for(lambda: transitions(d, "firing"), timeout=15, what="ServiceDown firing")
    wait_for(lambda: 'tocsin_alerts{state="silenced"} 1' in d.metrics(), timeout=10,
             what="the alert counted as silenced")
    time.sleep(2)
    assert hook.requests == []
    assert mailbox.messages == []

    # The other probe is not silenced and is notified alone.
    other.stop()
    wait_for(lambda: hook.requests, timeout=15, what="the notification of the other probe")
    assert probes_in(hook_bodies(hook)[0][1]) == [("other", "firing")]
    hook.stop()


def test_receiver_outage_is_retried(daemon_factory, tmp_path, mailbox):
    """429 with Retry-After, then 503, then success: delivered once, after three attempts,
    the second no sooner than Retry-After asked. A 400 is given up after one attempt, and
    a Retry-After of a day is capped at retry.max."""
    hook = ScriptedServer()
    hook.script(status(429, {"Retry-After": "2"}), status(503))
    d, svc, other = start_stack(daemon_factory, tmp_path, hook, mailbox)
    svc.stop()
    wait_for(lambda: len(hook.requests) >= 3, timeout=30, what="two failures and a success")
    time.sleep(1)
    assert len(hook.requests) == 3
    keys = {r["headers"]["idempotency-key"] for r in hook.requests}
    assert len(keys) == 1, keys
    gap = hook.requests[1]["time"] - hook.requests[0]["time"]
    assert gap >= 1.9, f"second attempt {gap:.2f}s after the 429 with Retry-After: 2"
    metrics = d.metrics()
    assert 'tocsin_notification_failures_total{reason="429",receiver="pager"} 1' in metrics
    assert 'tocsin_notification_failures_total{reason="5xx",receiver="pager"} 1' in metrics
    assert 'tocsin_notifications_total{receiver="pager",result="delivered"} 2' in metrics

    # A 400 is permanent: one attempt, a dead letter.
    hook.script(status(400))
    other.stop()
    wait_for(lambda: 'tocsin_notifications_total{receiver="pager",result="dead"} 1'
             in d.metrics(), timeout=20, what="the dead letter")
    time.sleep(1.5)
    assert len(hook.requests) == 4
    assert "dead" in d.log_text()

    # Retry-After: 86400 is capped at retry.max (3s here); other receivers are not held up.
    hook.script(status(429, {"Retry-After": "86400"}))
    svc.start()
    other.start()
    wait_for(lambda: len(hook.requests) >= 6, timeout=20, what="the capped retry")
    gap = hook.requests[5]["time"] - hook.requests[4]["time"]
    assert gap < 5, f"retried {gap:.1f}s after Retry-After: 86400"
    assert hook_bodies(hook)[5][1]["status"] == "resolved"
    hook.stop()


def kill9(d):
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(timeout=10)
    d.log.close()


def test_kill9_loses_nothing_and_repeats_nothing(daemon_factory, tmp_path, mailbox):
    hook = ScriptedServer()
    # The webhook is down until the kill: the notification waits in the outbox.
    hook.script(*[status(503)] * 1000)
    d, svc, other = start_stack(daemon_factory, tmp_path, hook, mailbox)
    svc.stop()
    wait_for(lambda: hook.requests and mailbox.messages, timeout=15,
             what="the first webhook attempt and the email")
    time.sleep(0.5)  # the email's outcome reaches the outbox
    kill9(d)
    time.sleep(0.5)  # a request sent just before the kill is recorded by now
    with hook.lock:
        hook.actions.clear()  # from now on the webhook accepts
        failed_attempts = len(hook.requests)
    d.start()
    wait_for(lambda: len(hook.requests) > failed_attempts, timeout=30,
             what="delivery after the restart")
    time.sleep(1)
    delivered = len(hook.requests)
    # One successful attempt after the restart, none after it.
    assert delivered == failed_attempts + 1, [r["headers"]["idempotency-key"]
                                              for r in hook.requests]
    emails = len(mailbox.messages)
    assert emails == 1, [m[2]["Subject"] for m in mailbox.messages]

    # Killed again after delivery: nothing is sent again.
    kill9(d)
    d.start()
    time.sleep(4)
    assert len(hook.requests) == delivered, [
        (r["headers"]["idempotency-key"], probes_in(json.loads(r["body"])), r["time"])
        for r in hook.requests]
    assert len(mailbox.messages) == emails
    keys = {r["headers"]["idempotency-key"] for r in hook.requests}
    assert len(keys) == 1, keys

    # The resolution after the restarts is sent once more, with the next sequence.
    svc.start()
    wait_for(lambda: hook_bodies(hook)[-1][1]["status"] == "resolved", timeout=20,
             what="the resolved notification")
    assert hook.requests[-1]["headers"]["idempotency-key"].endswith("/2")
    # The start survives the restarts; the end is after it.
    first, last = hook_bodies(hook)[0][1]["alerts"][0], hook_bodies(hook)[-1][1]["alerts"][0]
    assert last["startsAt"] == first["startsAt"]
    assert last["endsAt"] > last["startsAt"]
    assert first["endsAt"] == "0001-01-01T00:00:00Z"
    hook.stop()


class Website:
    """An HTTP server on 127.0.0.1 that replies 200; stop() and start() take it down and up."""

    def __init__(self):
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.handler = Handler
        self.port = free_port()
        self.server = None
        self.start()

    def start(self):
        import http.server
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_shipped_example_config(daemon_factory, tmp_path, mailbox):
    """etc/examples/alerting.yml as shipped, with only its addresses pointed at the test's
    servers. The website goes down. The page reaches the on-call email and the webhook
    within a second of the evaluator seeing it, and the team's email gets nothing."""
    examples = os.path.join(os.path.dirname(__file__), "..", "..", "etc", "examples")
    hook = ScriptedServer()
    site = Website()
    text = open(os.path.join(examples, "alerting.yml")).read()
    for shipped, ours in (("127.0.0.1:8080", f"127.0.0.1:{site.port}"),
                          ("127.0.0.1:25", f"127.0.0.1:{mailbox.port}"),
                          ("http://127.0.0.1:9000/hook", hook.url())):
        assert shipped in text
        text = text.replace(shipped, ours)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "service.yml").write_text(
        open(os.path.join(examples, "rules", "service.yml")).read())
    d = daemon_factory(text)
    summary = subprocess.run([tocsind_path(), "--config", d.config_path, "--check-config"],
                             capture_output=True, text=True, timeout=30)
    assert summary.returncode == 0, summary.stderr
    assert "alerting: 2 receivers, 2 routes" in summary.stdout
    assert "  receiver web-oncall: webhook, email\n" in summary.stdout
    wait_for(lambda: 'tocsin_probe_success{' in d.metrics() and 'probe="website"' in d.metrics(),
             timeout=15, what="the website probe's first run")
    time.sleep(1)
    assert hook.requests == []
    assert mailbox.messages == []

    site.stop()
    wait_for(lambda: hook.requests and mailbox.messages, timeout=15,
             what="the page by webhook and email")
    fired_at = transitions(d, "firing")[0][0] / 1000.0
    mail_at, rcpt, msg = mailbox.messages[0]
    assert rcpt == ["oncall@localhost"]
    assert mail_at - fired_at < 1.0, f"email {mail_at - fired_at:.3f}s after the condition"
    body = hook_bodies(hook)[0][1]
    assert body["groupLabels"] == {"alertname": "ServiceDown", "team": "web"}
    assert body["alerts"][0]["labels"]["severity"] == "page"
    assert body["alerts"][0]["annotations"]["summary"] == "website is down"
    assert body["alerts"][0]["generatorURL"].startswith("http://127.0.0.1:9517/")
    latency = [line for line in d.metrics().splitlines()
               if line.startswith('tocsin_notification_latency_seconds_bucket{le="1"}')]
    assert latency and float(latency[0].split()[-1]) >= 1, latency

    site.start()
    wait_for(lambda: hook_bodies(hook)[-1][1]["status"] == "resolved", timeout=20,
             what="the resolution")
    time.sleep(1)
    assert all(m[1] == ["oncall@localhost"] for m in mailbox.messages)
    hook.stop()


def test_exec_receiver_runs_remediation(daemon_factory, tmp_path, mailbox):
    """A route to an exec receiver runs the command with the notification on its stdin
    and TOCSIN_* in its environment, once per alert within its rate limit."""
    hook = ScriptedServer()
    out = tmp_path / "remediation.log"
    script = tmp_path / "remediate.sh"
    script.write_text("#!/bin/sh\n{ echo \"$TOCSIN_STATUS $TOCSIN_ALERTNAME\"; cat; echo; }"
                      f" >> {out}\n")
    script.chmod(0o755)
    fixer_route = """      - matchers: ['probe="other"']
        receiver: fixer
        continue: true
"""
    d, svc, other = start_stack(daemon_factory, tmp_path, hook, mailbox, start=False)
    cfg = open(d.config_path).read()
    cfg = cfg.replace("    - name: nobody\n", f"""    - name: nobody
    - name: fixer
      exec:
        command: ["{script}"]
        rate_limit: 1h
""")
    cfg = cfg.replace("    routes:\n", "    routes:\n" + fixer_route, 1)
    d.write_config(cfg)
    d.start()
    other.stop()
    # The script writes its first line before the notification, which ends with the
    # newline its last echo adds: wait for that newline.
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 2
             and out.read_text().endswith("\n"), timeout=20,
             what="the remediation command's run")
    first_line = out.read_text().splitlines()[0]
    assert first_line == "firing ServiceDown"
    note = json.loads(out.read_text().splitlines()[1])
    assert note["receiver"] == "fixer"
    assert [a["labels"]["probe"] for a in note["alerts"]] == ["other"]
    # The page route still gets it too (continue: true).
    wait_for(lambda: hook.requests, timeout=10, what="the page by webhook")
    assert 'tocsin_notifications_total{receiver="fixer",result="delivered"} 1' in d.metrics()
    hook.stop()


def breaker_metrics(d, integration):
    """The circuit breaker of receiver pager's integration (0: webhook, 1: email) in
    /metrics: the states whose gauge is 1, and how often it opened (None when missing)."""
    labels = f'integration="{integration}",receiver="pager"'
    states = []
    opened = None
    for line in d.metrics().splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith(f"tocsin_receiver_circuit_breaker_state{{{labels},") and \
                float(value) == 1:
            states.append(name.split('state="')[1].split('"')[0])
        elif name.startswith(f"tocsin_receiver_circuit_breaker_opened_total{{{labels},"):
            opened = float(value)
    return states, opened


def test_outage_delivers_latest_state_last(daemon_factory, tmp_path, mailbox):
    """While the webhook is down, repeats and then the resolution queue up. When it comes
    back, the older notifications of the group are superseded: the receiver gets the
    resolution last, not a stale "firing" after it, and no burst of repeats. The webhook's
    circuit breaker opens during the outage and closes after it, as /metrics shows."""
    hook = ScriptedServer()
    hook.script(*[status(503)] * 1000)
    d, svc, other = start_stack(daemon_factory, tmp_path, hook, mailbox, start=False)
    text = open(d.config_path).read().replace("repeat_interval: 1h", "repeat_interval: 1s")
    text = text.replace("  receivers:\n", "  circuit_breaker: {failures: 5, cooldown: 1s}\n"
                        "  receivers:\n", 1)
    d.write_config(text)
    d.start()
    svc.stop()
    wait_for(lambda: len(transitions(d, "firing")) == 1, timeout=15, what="ServiceDown firing")
    time.sleep(4)  # repeats are written while every attempt fails
    # Five failed attempts in a row open the webhook's breaker. While the webhook fails,
    # the breaker is open, or half-open during a trial attempt.
    wait_for(lambda: (breaker_metrics(d, 0)[1] or 0) >= 1, timeout=10,
             what="the webhook's circuit breaker to open")
    states, _ = breaker_metrics(d, 0)
    assert states in (["open"], ["half_open"]), states
    svc.start()
    wait_for(lambda: transitions(d, "inactive"), timeout=15, what="ServiceDown resolved")
    time.sleep(1.5)
    with hook.lock:
        hook.actions.clear()
        failed = len(hook.requests)
    wait_for(lambda: len(hook.requests) > failed and
             hook_bodies(hook)[-1][1]["status"] == "resolved", timeout=30,
             what="the resolution after the outage")
    time.sleep(2)
    after = hook_bodies(hook)[failed:]
    assert after[-1][1]["status"] == "resolved"
    assert len(after) <= 2, [b["status"] for _, b in after]
    con = sqlite3.connect(os.path.join(d.data_dir, "state", "state.db"), timeout=10)
    try:
        superseded = con.execute("SELECT COUNT(*) FROM outbox WHERE receiver = 'pager' "
                                 "AND last_reason = 'superseded'").fetchone()[0]
    finally:
        con.close()
    assert superseded >= 2
    # The first delivery after the outage closes the breaker; the email's never opened.
    states, opened = breaker_metrics(d, 0)
    assert states == ["closed"], states
    assert opened >= 1
    assert breaker_metrics(d, 1) == (["closed"], 0)
    hook.stop()


def test_renamed_receiver_gets_the_firing_alert(daemon_factory, tmp_path, mailbox):
    """A reload that points the route at a receiver with a new name starts a new log for
    it: the new receiver gets the group's firing alert at the next check instead of
    waiting for repeat_interval."""
    hook = ScriptedServer()
    d, svc, other = start_stack(daemon_factory, tmp_path, hook, mailbox)
    svc.stop()
    wait_for(lambda: hook.requests, timeout=15, what="the first notification")
    d.write_config(open(d.config_path).read().replace("pager", "pager2"))
    d.signal(signal.SIGHUP)
    wait_for(lambda: any(b["receiver"] == "pager2" for _, b in hook_bodies(hook)), timeout=15,
             what="the notification of the renamed receiver")
    body = [b for _, b in hook_bodies(hook) if b["receiver"] == "pager2"][0]
    assert body["status"] == "firing"
    assert probes_in(body) == [("svc", "firing")]
    hook.stop()
