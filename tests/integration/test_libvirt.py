"""The libvirt probe against libvirt's in-process test driver: `test:///default` (one
running domain "test") and node files with domains in chosen states, a URI with no
listener, and a TCP server that accepts and never answers, so that runs time out
while the worker thread is blocked in a libvirt call."""

import os
import re
import signal
import socket
import threading
import time

import pytest

from conftest import free_port, http_get, wait_for

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
RUN_LINE = re.compile(r'status=(\w+) reason=\\"((?:[^"\\]|\\.)*)\\"')

LIBVIRT_SO = ("/usr/lib/x86_64-linux-gnu/libvirt.so.0", "/usr/lib/aarch64-linux-gnu/libvirt.so.0")
pytestmark = pytest.mark.skipif(not any(os.path.exists(p) for p in LIBVIRT_SO),
                                reason="libvirt0 is not installed (Debian package libvirt0)")

# Two domains for the test driver: one running with a disk and an interface, one shut off.
# test:runstate sets a domain's state (5 is VIR_DOMAIN_SHUTOFF).
NODE_XML = """<node>
  <domain type='test'>
    <name>vm-run</name>
    <memory>1048576</memory>
    <currentMemory>524288</currentMemory>
    <vcpu>1</vcpu>
    <os><type>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <source file='/guest/a.img'/>
        <target dev='vdb' bus='virtio'/>
      </disk>
      <interface type='network'>
        <source network='default'/>
        <target dev='tap1'/>
      </interface>
    </devices>
  </domain>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>vm-off</name>
    <memory>2097152</memory>
    <vcpu>2</vcpu>
    <os><type>hvm</type></os>
    <test:runstate>5</test:runstate>
  </domain>
</node>
"""


def samples(daemon, name, **labels):
    """(labels, value) of every sample of metric `name` whose labels include `labels`."""
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


def probe(name, uri, extra="", interval="1s", timeout="900ms"):
    return f"""
  - name: {name}
    type: libvirt
    interval: {interval}
    timeout: {timeout}
    uri: {uri}
{extra}"""


def config(*probes):
    return "retention: [1s:1h]\nprobes:" + "".join(probes)


@pytest.fixture
def node_uri(tmp_path):
    path = tmp_path / "node.xml"
    path.write_text(NODE_XML)
    return f"test://{path}"


class SilentServer:
    """A TCP listener on loopback that accepts connections and never sends a byte."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
                self.accepted.append(conn)
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_server():
    s = SilentServer()
    yield s
    s.close()


def test_default_domain_metrics(daemon_factory):
    d = daemon_factory(config(probe("lv", "test:///default")))
    wait_for(lambda: value(d, "libvirt_up", probe="lv") == 1, timeout=15, what="libvirt_up 1")
    dom = {"probe": "lv", "domain": "test"}
    assert value(d, "libvirt_domain_info_state", **dom) == 1  # VIR_DOMAIN_RUNNING
    assert value(d, "libvirt_domain_up", **dom) == 1
    assert value(d, "libvirt_domain_info_virtual_cpus", **dom) == 2
    # The test driver's domain: 2 GiB current, 8 GiB maximum memory.
    assert value(d, "libvirt_domain_info_memory_usage_bytes", **dom) == 2 * 2**30
    assert value(d, "libvirt_domain_memory_stats_actual_balloon_bytes", **dom) == 2 * 2**30
    assert value(d, "libvirt_domain_info_maximum_memory_bytes", **dom) == 8 * 2**30
    assert value(d, "libvirt_domain_info_cpu_time_seconds_total", **dom) > 0

    block = {**dom, "target_device": "vda"}
    interface = {**dom, "target_device": "testnet0"}
    counters = [("libvirt_domain_block_stats_read_bytes_total", block),
                ("libvirt_domain_block_stats_write_bytes_total", block),
                ("libvirt_domain_block_stats_read_requests_total", block),
                ("libvirt_domain_block_stats_write_requests_total", block),
                ("libvirt_domain_interface_stats_receive_bytes_total", interface),
                ("libvirt_domain_interface_stats_transmit_bytes_total", interface),
                ("libvirt_domain_interface_stats_receive_packets_total", interface),
                ("libvirt_domain_interface_stats_transmit_packets_total", interface)]
    first = {}
    for name, labels in counters:
        first[name] = value(d, name, **labels)
        assert first[name] is not None and first[name] >= 0, name

    # Counters never go backwards from one run to the next.
    runs = len(run_outcomes(d, "lv"))
    wait_for(lambda: len(run_outcomes(d, "lv")) >= runs + 2, timeout=10, what="two more runs")
    for name, labels in counters:
        assert value(d, name, **labels) >= first[name], name
    assert {s for s, _ in run_outcomes(d, "lv")} == {"ok"}
    types = [line for line in d.metrics().splitlines()
             if line.startswith("# TYPE libvirt_domain_info_cpu_time_seconds_total ")]
    assert types == ["# TYPE libvirt_domain_info_cpu_time_seconds_total counter"]


def test_stopped_domain_reported_with_state(daemon_factory, node_uri):
    d = daemon_factory(config(probe("lv", node_uri)))
    wait_for(lambda: value(d, "libvirt_up", probe="lv") == 1, timeout=15, what="libvirt_up 1")
    assert value(d, "libvirt_domain_info_state", probe="lv", domain="vm-off") == 5
    assert value(d, "libvirt_domain_up", probe="lv", domain="vm-off") == 0
    assert value(d, "libvirt_domain_info_maximum_memory_bytes", probe="lv",
                 domain="vm-off") == 2 * 2**30
    # A shut-off domain has no live devices, so no device counters.
    assert samples(d, "libvirt_domain_block_stats_read_bytes_total", domain="vm-off") == []
    assert value(d, "libvirt_domain_info_state", probe="lv", domain="vm-run") == 1
    assert value(d, "libvirt_domain_up", probe="lv", domain="vm-run") == 1
    assert value(d, "libvirt_domain_info_memory_usage_bytes", probe="lv",
                 domain="vm-run") == 512 * 2**20
    assert value(d, "libvirt_domain_block_stats_write_bytes_total", probe="lv",
                 domain="vm-run", target_device="vdb") is not None
    assert value(d, "libvirt_domain_interface_stats_receive_bytes_total", probe="lv",
                 domain="vm-run", target_device="tap1") is not None


def test_domain_filter(daemon_factory, node_uri):
    d = daemon_factory(config(probe("lv", node_uri, extra="    domains: [vm-off, vm-gone]\n")))
    wait_for(lambda: value(d, "libvirt_up", probe="lv") == 1, timeout=15, what="libvirt_up 1")
    domains = {labels["domain"] for labels, _ in samples(d, "libvirt_domain_info_state",
                                                         probe="lv")}
    assert domains == {"vm-off"}
    assert samples(d, "libvirt_domain_block_stats_read_bytes_total", probe="lv") == []
    # A listed domain that is not defined is logged once, and the run still succeeds.
    runs = len(run_outcomes(d, "lv"))
    wait_for(lambda: len(run_outcomes(d, "lv")) >= runs + 2, timeout=10, what="two more runs")
    missing = [line for line in d.log_text().splitlines()
               if "domain vm-gone listed in domains is not defined" in line]
    assert len(missing) == 1, missing
    assert "level=notice" in missing[0]
    assert {s for s, _ in run_outcomes(d, "lv")} == {"ok"}


def test_bad_uri_fails_run_with_reason(daemon_factory):
    port = free_port()
    uri = f"test+tcp://127.0.0.1:{port}/default"
    d = daemon_factory(config(probe("lv-bad", uri)))
    wait_for(lambda: run_outcomes(d, "lv-bad"), timeout=15, what="a finished run")
    status, reason = run_outcomes(d, "lv-bad")[0]
    assert status == "unavailable"
    assert reason.startswith(f"connecting to {uri} failed: "), reason
    assert "Connection refused" in reason, reason
    assert value(d, "libvirt_up", probe="lv-bad") == 0
    # Each run tries again; the failure is logged once, then throttled.
    wait_for(lambda: len(run_outcomes(d, "lv-bad")) >= 3, timeout=10, what="three runs")
    warnings = [line for line in d.log_text().splitlines()
                if "module=libvirt" in line and "level=warn" in line]
    assert len(warnings) == 1, warnings


def test_blocked_call_does_not_block_loop(daemon_factory, silent_server):
    """A libvirt call that never returns times the run out, while other probes and /metrics
    go on. A reload can remove the probe while its worker is still blocked."""
    hung_uri = f"test+tcp://127.0.0.1:{silent_server.port}/default"
    d = daemon_factory(config(probe("lv-hung", hung_uri, timeout="500ms"),
                              probe("lv-ok", "test:///default")))
    wait_for(lambda: len(run_outcomes(d, "lv-hung")) >= 3, timeout=15, what="three hung runs")
    outcomes = run_outcomes(d, "lv-hung")
    assert outcomes[0] == ("timeout", "timeout after 500ms in phase connect"), outcomes
    # Later runs wait behind the first call, which is still blocked.
    assert ("timeout", "timeout after 500ms in phase waiting for the previous call") in outcomes
    assert {s for s, _ in outcomes} == {"timeout"}
    assert len(silent_server.accepted) == 1
    assert value(d, "libvirt_up", probe="lv-hung") == 0

    # The loop kept serving: the other probe ran on time and /metrics responds at once.
    started = time.monotonic()
    assert http_get(d.url + "/metrics", timeout=2)[0] == 200
    assert time.monotonic() - started < 1
    ok_runs = run_outcomes(d, "lv-ok")
    assert len(ok_runs) >= 2 and {s for s, _ in ok_runs} == {"ok"}

    # Remove the hung probe while its worker is blocked: the reload must not wait for it.
    d.write_config(config(probe("lv-ok", "test:///default")))
    d.signal(signal.SIGHUP)
    wait_for(lambda: "reload done" in d.log_text(), timeout=5, what="reload done")
    wait_for(lambda: value(d, "libvirt_up", probe="lv-hung") is None, timeout=5,
             what="the hung probe's series gone")
    runs = len(run_outcomes(d, "lv-ok"))
    wait_for(lambda: len(run_outcomes(d, "lv-ok")) >= runs + 2, timeout=10,
             what="two more runs of the other probe")

    # The blocked call returns once the server goes; the detached worker frees itself.
    silent_server.close()
    wait_for(lambda: "call returned after the probe was removed" in d.log_text(), timeout=5,
             what="the detached worker's last line")
    assert d.healthy()
    assert d.stop() == 0
