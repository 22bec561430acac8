"""tocsind sends its samples by Prometheus remote write to a real VictoriaMetrics and a real
Prometheus on loopback. Each receiver is stopped for about 10 s and started again. Every
sample tocsind produced during the outage must then be found in the receiver, with its
timestamp and value. With Prometheus, tocsind itself is restarted during the outage as
well, so the on-disk queue must carry the samples across the restart."""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse

import pytest

from conftest import free_port, http_get, wait_for
from listener import Listener

OUTAGE_S = 10
# Samples newer than this may still be on their way when the comparison runs.
SETTLE_MS = 3000


class Receiver:
    """A receiver process on a fixed loopback port that stop() and start() restart with
    its storage kept."""

    def __init__(self, tmp_path, name):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = tmp_path / name
        self.dir.mkdir()
        self.log_path = tmp_path / f"{name}.log"
        self.proc = None
        self.log = None

    def command(self):
        raise NotImplementedError

    def ready_path(self):
        raise NotImplementedError

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: http_get(self.url + self.ready_path(), timeout=1)[0] == 200,
                 timeout=30, what=f"{type(self).__name__} ready")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class VictoriaMetrics(Receiver):
    binary = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
    write_path = "/api/v1/write"

    def command(self):
        return [self.binary, f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.dir}", "-retentionPeriod=1d"]

    def ready_path(self):
        return "/health"

    def samples(self, selector):
        """{labels: {time_ms: value}} of every series matching selector, from /api/v1/export."""
        q = urllib.parse.urlencode({"match[]": selector})
        out = {}
        for line in http_get(f"{self.url}/api/v1/export?{q}")[2].splitlines():
            series = json.loads(line)
            key = tuple(sorted(series["metric"].items()))
            out.setdefault(key, {}).update(zip(series["timestamps"], series["values"]))
        return out


class Prometheus(Receiver):
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    write_path = "/api/v1/write"

    def command(self):
        config = self.dir / "prometheus.yml"
        # No scrape jobs: every series comes from remote write.
        config.write_text("global:\n  evaluation_interval: 1m\n")
        return [self.binary, "--web.enable-remote-write-receiver",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={self.dir / 'tsdb'}", f"--config.file={config}"]

    def ready_path(self):
        return "/-/ready"

    def samples(self, selector):
        """{labels: {time_ms: value}} of the raw samples of the last 10 minutes."""
        q = urllib.parse.urlencode({"query": f"{selector}[10m]"})
        body = json.loads(http_get(f"{self.url}/api/v1/query?{q}")[2])
        assert body["status"] == "success", body
        out = {}
        for series in body["data"]["result"]:
            key = tuple(sorted(series["metric"].items()))
            out[key] = {round(float(t) * 1000): float(v) for t, v in series["values"]}
        return out


def produced_samples(d, selector):
    """{time_ms: value} of the samples tocsind's own window holds for one series."""
    q = urllib.parse.urlencode({"query": f"{selector}[10m]"})
    body = json.loads(http_get(f"{d.url}/api/v1/query?{q}")[2])
    assert body["status"] == "success", body
    result = body["data"]["result"]
    assert len(result) == 1, result
    return {round(float(t) * 1000): float(v) for t, v in result[0]["values"]}


def one_series(samples, selector):
    assert len(samples) == 1, f"expected one series for {selector}, got {list(samples)}"
    (labels, values), = samples.items()
    return dict(labels), values


def metric_value(text, name, labels):
    prefix = f"{name}{{{labels}}} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return None


def start_tocsind(daemon_factory, tmp_path, receiver, target):
    # The recording rules read 10 minutes of history, so tocsind's window keeps every
    # sample the test compares.
    rules = tmp_path / "rules.yml"
    rules.write_text("""groups:
  - name: keep
    interval: 1s
    rules:
      - record: svc:probe_success:min10m
        expr: min_over_time(probe_success{probe="svc"}[10m])
      - record: svc:probe_duration_seconds:max10m
        expr: max_over_time(probe_duration_seconds{probe="svc"}[10m])
""")
    return daemon_factory(f"""interval: 1s
rule_files: ["{rules}"]
probes:
  - name: svc
    type: tcp
    target: "127.0.0.1:{target.port}"
remote_write:
  - name: receiver
    url: {receiver.url}{receiver.write_path}
    flush_interval: 500ms
    timeout: 2s
    retry_backoff:
      initial: 100ms
      max: 1s
    external_labels:
      env: test
""")


def missing_samples(receiver, produced, selector, until_ms):
    """Times of the produced samples up to until_ms that the receiver does not have."""
    found = receiver.samples(selector)
    got = next(iter(found.values())) if len(found) == 1 else {}
    return [t for t in sorted(produced) if t <= until_ms and t not in got]


def assert_arrived(receiver, produced, selector, until_ms):
    """Every produced sample up to until_ms is in the receiver with the same value."""
    try:
        wait_for(lambda: not missing_samples(receiver, produced, selector, until_ms),
                 timeout=20, what=f"every sample of {selector}")
    except AssertionError:
        missing = missing_samples(receiver, produced, selector, until_ms)
        raise AssertionError(f"{selector}: {len(missing)} of {len(produced)} samples tocsind "
                             f"produced are missing in the receiver, first {missing[:5]}")
    _, got = one_series(receiver.samples(selector), selector)
    for t, v in produced.items():
        if t <= until_ms:
            assert got[t] == pytest.approx(v, rel=1e-9), f"{selector} at {t}"


def run_outage(receiver, daemon_factory, tmp_path, restart_tocsind):
    target = Listener()
    try:
        receiver.start()
        d = start_tocsind(daemon_factory, tmp_path, receiver, target)
        success = 'probe_success{probe="svc"}'
        duration = 'probe_duration_seconds{probe="svc"}'

        wait_for(lambda: sum(len(v) for v in receiver.samples(success).values()) >= 2,
                 timeout=20, what="the first samples in the receiver")
        labels, _ = one_series(receiver.samples(success), success)
        assert labels["tocsin_instance"] == socket.gethostname()
        assert labels["env"] == "test"
        assert labels["__name__"] == "probe_success"

        # The outage: tocsind keeps probing and queues what it cannot send.
        receiver.stop()
        outage_start = time.monotonic()
        wait_for(lambda: (metric_value(d.metrics(), "tocsin_remote_write_requests_total",
                                       'code="error",name="receiver"') or 0) > 0,
                 timeout=OUTAGE_S, what="a failed request during the outage")
        produced = {success: {}, duration: {}}
        if restart_tocsind:
            time.sleep(max(0.0, OUTAGE_S / 2 - (time.monotonic() - outage_start)))
            for sel in produced:
                produced[sel].update(produced_samples(d, sel))
            queued = metric_value(d.metrics(), "tocsin_remote_write_queue_samples",
                                  'name="receiver"')
            assert queued and queued > 0
            assert d.stop() == 0
            d.start()
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_start)))
        for sel in produced:
            produced[sel].update(produced_samples(d, sel))
        receiver.start()

        until_ms = max(produced[success]) - SETTLE_MS
        assert until_ms - min(produced[success]) >= (OUTAGE_S - 4) * 1000
        for sel in produced:
            assert_arrived(receiver, produced[sel], sel, until_ms)
        # The rules' samples are sent too.
        wait_for(lambda: receiver.samples("svc:probe_success:min10m"), timeout=10,
                 what="the recording rule's samples")
        metrics = d.metrics()
        assert metric_value(metrics, "tocsin_remote_write_samples_sent_total",
                            'name="receiver"') > 0
        assert metric_value(metrics, "tocsin_remote_write_samples_failed_total",
                            'name="receiver"') == 0
        assert metric_value(metrics, "tocsin_remote_write_samples_dropped_total",
                            'name="receiver"') == 0
        assert "delivering again after" in d.log_text()
    finally:
        receiver.stop()
        target.stop()


def test_remote_write_victoriametrics_outage(daemon_factory, tmp_path):
    if not os.access(VictoriaMetrics.binary, os.X_OK):
        pytest.skip("victoria-metrics is not installed (Debian package victoria-metrics)")
    run_outage(VictoriaMetrics(tmp_path, "vm"), daemon_factory, tmp_path, restart_tocsind=False)


def test_remote_write_prometheus_outage_and_restart(daemon_factory, tmp_path):
    if not os.access(Prometheus.binary, os.X_OK):
        pytest.skip("prometheus is not installed (Debian package prometheus)")
    run_outage(Prometheus(tmp_path, "prometheus"), daemon_factory, tmp_path,
               restart_tocsind=True)


def test_remote_write_config_errors(tmp_path):
    from conftest import tocsind_path
    token = tmp_path / "token"
    token.write_text("secret-token-text\n")
    token.chmod(0o640)
    config = tmp_path / "tocsin.yml"
    config.write_text(f"""remote_write:
  - url: ftp://127.0.0.1/write
  - url: http://user:pw@127.0.0.1:9/write
  - url: http://127.0.0.1:9/write
    bearer_token_file: {token}
    basic_auth: {{username: u}}
    batch_size: 0
    queue_max_size: 1KiB
    retry_backoff: {{initial: 2s, max: 1s}}
  - url: http://127.0.0.1:9/write
""")
    r = subprocess.run([tocsind_path(), "--check-config", "--config", str(config)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    errors = r.stderr + r.stdout
    name = config.name
    assert f'{name}:2:10: remote_write[0].url: scheme "ftp" is not supported' in errors
    assert f"{name}:3:10: remote_write[1].url: the URL contains a user name or password" in errors
    assert "pw" not in errors.replace("password", "")
    assert (f"{name}:5:24: remote_write[2].bearer_token_file: basic_auth and "
            "bearer_token_file are mutually exclusive") in errors
    assert f"{name}:7:17: remote_write[2].batch_size:" in errors
    assert f"{name}:8:21: remote_write[2].queue_max_size: 1024 bytes is out of range" in errors
    assert f"{name}:9:39: remote_write[2].retry_backoff.max: 1000ms is shorter" in errors
    assert (f'{name}:10:10: remote_write[3].url: endpoint name "127.0.0.1_9" is already '
            "used by remote_write[2]") in errors
    assert "secret-token-text" not in errors


def test_remote_write_status_handling(daemon_factory, tmp_path):
    """A 400 drops its batch and counts it as failed; a 429 with Retry-After and a 503 are
    retried with the same body until a 204 acknowledges it."""
    import http.server
    import threading

    replies = [(400, {}), (429, {"Retry-After": "1"}), (503, {})]
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            requests.append((dict(self.headers), body, time.monotonic()))
            status, headers = replies.pop(0) if replies else (204, {})
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        d = daemon_factory(f"""interval: 1s
probes:
  - name: self
    type: tcp
    target: "127.0.0.1:{server.server_address[1]}"
remote_write:
  - name: mock
    url: http://127.0.0.1:{server.server_address[1]}/receive
    flush_interval: 300ms
    retry_backoff: {{initial: 50ms, max: 2s}}
""")
        wait_for(lambda: len(requests) >= 5, timeout=20, what="five requests")
        headers = requests[0][0]
        assert headers["Content-Encoding"] == "snappy"
        assert headers["Content-Type"] == "application/x-protobuf"
        assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
        assert headers["User-Agent"].startswith("tocsin/")
        # The batch after the 400 is retried with the same body, after Retry-After's 1 s.
        assert requests[1][1] != requests[0][1]
        assert requests[2][1] == requests[1][1]
        assert requests[2][2] - requests[1][2] >= 0.9
        assert requests[3][1] == requests[1][1]

        def counters():
            m = d.metrics()
            return {code: metric_value(m, "tocsin_remote_write_requests_total",
                                       f'code="{code}",name="mock"') for code in
                    ("400", "429", "503", "204")}
        wait_for(lambda: all(counters().values()), timeout=10, what="every status counted")
        m = d.metrics()
        assert metric_value(m, "tocsin_remote_write_samples_failed_total", 'name="mock"') > 0
        assert metric_value(m, "tocsin_remote_write_samples_sent_total", 'name="mock"') > 0
        log = d.log_text()
        assert "receiver rejected a batch of" in log
        assert "HTTP 400" in log
        # The 429 and 503 follow within the throttle's interval: no line of their own.
        assert "HTTP 503" not in log
        assert "delivering again after 3 failed requests" in log
    finally:
        server.shutdown()
        server.server_close()
