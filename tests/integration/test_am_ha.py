"""An HA pair of tocsind instances forwarding to a two-node Alertmanager cluster (Debian's
prometheus-alertmanager), all on 127.0.0.1.

Both tocsind instances run the same config and rules, each with its own data dir and
listen port, and send every alert to both Alertmanagers, as Prometheus recommends. The
Alertmanagers gossip their notification log, so a probe that goes down reaches the
cluster's webhook receiver (a recording server in this test) once, not four times. After
one tocsind is killed with SIGKILL, the other one alone still gets the next incident
through, again once. The resolved notifications are counted the same way."""

import http.server
import json
import signal
import threading
import time
import urllib.request

import pytest

from alertmanager import Alertmanager
from conftest import Daemon, free_port, wait_for
from listener import Listener

# The second Alertmanager of the cluster waits PEER_TIMEOUT after each of its group's
# flushes, then sends only what the first one's gossiped notification log does not list.
# It sends the alerts as they were at the flush. So the route's group_interval must be
# longer than PEER_TIMEOUT, or a flush just before a resolution waits past the first
# member's resolved notification and then sends the alert as firing again.
PEER_TIMEOUT = "1s"
GOSSIP_INTERVAL = "50ms"
GROUP_WAIT = "1s"
GROUP_INTERVAL = "3s"
# How long a count must stay the same before the test takes it as final: longer than
# the peer timeout plus gossip, and than one group_interval.
QUIET_SECONDS = 4.0

RULES = """
groups:
  - name: ha
    interval: 1s
    rules:
      - alert: ServiceDown
        expr: tocsin_probe_success{probe=~"svc1|svc2"} == 0
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.probe }} is down"
"""


def tocsin_config(rules_path, ports, am_urls):
    """The config both members of the pair run, byte for byte."""
    urls = ", ".join(am_urls)
    return f"""
rule_files: ["{rules_path}"]
probes:
  - name: svc1
    type: tcp
    target: "127.0.0.1:{ports[0]}"
    interval: 1s
    timeout: 500ms
  - name: svc2
    type: tcp
    target: "127.0.0.1:{ports[1]}"
    interval: 1s
    timeout: 500ms
alerting:
  retry: {{initial: 200ms, max: 2s}}
  receivers:
    - name: alertmanagers
      alertmanager:
        urls: [{urls}]
        timeout: 2s
  route:
    receiver: alertmanagers
    group_by: [alertname, probe]
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 1h
"""


class HookHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        body["receivedAt"] = time.time()
        with self.server.lock:
            self.server.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Hook(http.server.ThreadingHTTPServer):
    """The Alertmanagers' webhook receiver: records every notification body."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), HookHandler)
        self.lock = threading.Lock()
        self.bodies = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def counts(self, probe):
        """Notifications about `probe`: {status: count} per group, and per alert
        fingerprint {(fingerprint, alert status): count}."""
        per_group = {}
        per_alert = {}
        with self.lock:
            bodies = list(self.bodies)
        for b in bodies:
            if b["groupLabels"].get("probe") != probe:
                continue
            per_group[b["status"]] = per_group.get(b["status"], 0) + 1
            for a in b["alerts"]:
                key = (a["fingerprint"], a["status"])
                per_alert[key] = per_alert.get(key, 0) + 1
        return per_group, per_alert

    def describe(self, probe):
        """One line per notification about `probe`, for failure messages."""
        with self.lock:
            bodies = [b for b in self.bodies if b["groupLabels"].get("probe") == probe]
        return "\n".join(
            "%.3f %s %s" % (b["receivedAt"], b["status"],
                            [(a["status"], a["startsAt"], a["endsAt"]) for a in b["alerts"]])
            for b in bodies)

    def stop(self):
        self.shutdown()
        self.server_close()


def cluster_member(workdir, name, hook_url, cluster_port, peer_port):
    """One Alertmanager of the cluster, with its own config, storage and ports."""
    return Alertmanager(workdir, hook_url, name=name, group_by=("alertname", "probe"),
                        group_wait=GROUP_WAIT, group_interval=GROUP_INTERVAL, cluster=[
                            f"--cluster.listen-address=127.0.0.1:{cluster_port}",
                            f"--cluster.advertise-address=127.0.0.1:{cluster_port}",
                            f"--cluster.peer=127.0.0.1:{peer_port}",
                            f"--cluster.peer-timeout={PEER_TIMEOUT}",
                            f"--cluster.gossip-interval={GOSSIP_INTERVAL}",
                            "--cluster.pushpull-interval=1s",
                            "--cluster.settle-timeout=3s",
                            "--cluster.reconnect-interval=1s"])


def clustered(member):
    """True once the member's gossip has settled and it lists both members."""
    cluster = member.status()["cluster"]
    return cluster["status"] == "ready" and len(cluster.get("peers") or []) == 2


@pytest.fixture
def cluster(tmp_path):
    hook = Hook()
    ports = [free_port(), free_port()]
    members = [cluster_member(str(tmp_path), "am1", hook.url, ports[0], ports[1]),
               cluster_member(str(tmp_path), "am2", hook.url, ports[1], ports[0])]
    try:
        for m in members:
            wait_for(lambda: clustered(m), timeout=30, what=f"{m.dir} to join a cluster of two")
        yield hook, members
    finally:
        for m in members:
            m.stop()
        hook.stop()


@pytest.fixture
def pair(tmp_path):
    """Starts the two tocsind instances when the test calls it. Checks their logs for
    sanitizer reports at the end."""
    daemons = []

    def make(config_text):
        for name in ("a", "b"):
            workdir = tmp_path / name
            workdir.mkdir()
            d = Daemon(str(workdir), config_text)
            daemons.append(d)
            d.start()
        return daemons

    yield make
    for d in daemons:
        if d.proc is None:
            continue
        if d.proc.poll() is None:
            d.stop()
        text = d.log_text()
        assert "ERROR: AddressSanitizer" not in text, text[-4000:]
        assert "ERROR: LeakSanitizer" not in text, text[-4000:]
        assert "runtime error:" not in text, text[-4000:]


def settled_counts(hook, probe, expected_status):
    """Waits until the group of `probe` got a notification with expected_status, then
    until its counts have not changed for QUIET_SECONDS. Returns those counts."""
    wait_for(lambda: hook.counts(probe)[0].get(expected_status), timeout=20,
             what=f"a {expected_status} notification about {probe}")
    last = hook.counts(probe)
    quiet_since = time.monotonic()
    deadline = quiet_since + 20
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = hook.counts(probe)
        if now != last:
            last = now
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_SECONDS:
            break
    return last


def fingerprints(per_alert, status):
    return {fp: n for (fp, s), n in per_alert.items() if s == status}


def assert_one_incident(hook, probe, listener):
    """Takes the probe's target down and up. Checks that the webhook got one firing and
    one resolved notification, each listing the probe's one alert once."""
    listener.stop()
    groups, alerts = settled_counts(hook, probe, "firing")
    assert groups == {"firing": 1}, \
        f"{probe} down: notifications per status {groups}:\n{hook.describe(probe)}"
    firing = fingerprints(alerts, "firing")
    assert len(firing) == 1, f"{probe} down: alerts per fingerprint {alerts}"
    assert list(firing.values()) == [1], f"{probe} down: alerts per fingerprint {alerts}"

    listener.start()
    groups, alerts = settled_counts(hook, probe, "resolved")
    assert groups == {"firing": 1, "resolved": 1}, \
        f"{probe} back: notifications per status {groups}:\n{hook.describe(probe)}"
    assert fingerprints(alerts, "resolved") == firing, alerts


def delivered(d):
    """Notifications tocsind counts as delivered to its Alertmanager receiver."""
    total = 0
    for line in d.metrics().splitlines():
        if line.startswith("tocsin_notifications_total{") and 'result="delivered"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def alerts_received(member):
    """Alerts the Alertmanager accepted through its API, firing and resolved."""
    with urllib.request.urlopen(member.url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("alertmanager_alerts_received_total{"))


def test_pair_with_cluster_notifies_once(tmp_path, cluster, pair):
    hook, members = cluster
    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(RULES)
    services = [Listener(), Listener()]
    try:
        a, b = pair(tocsin_config(rules_path, [s.port for s in services],
                                  [m.url for m in members]))

        # Both instances are up. Each sends the firing and then the resolved alert to both
        # Alertmanagers: two notifications per instance, four alerts per Alertmanager.
        assert_one_incident(hook, "svc1", services[0])
        for d in (a, b):
            assert delivered(d) >= 2, f"{d.workdir}: forwarded {delivered(d)} notifications"
        received = [alerts_received(m) for m in members]
        assert all(n >= 4 for n in received), f"alerts received per Alertmanager: {received}"

        # One instance dies without a word; the other one carries the next incident.
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(timeout=10)
        a.log.close()
        assert_one_incident(hook, "svc2", services[1])
        later = [alerts_received(m) for m in members]
        assert all(n >= r + 2 for n, r in zip(later, received)), (received, later)
    finally:
        for s in services:
            if s.running:
                s.stop()
