"""The libvirt probe against libvirt's in-process test driver: `test:///default` (one
running domain "test") and node files with domains in chosen states, a URI with no
listener, and a TCP server that accepts and never answers, so that runs time out
while the worker thread is blocked in a libvirt call.

The test driver keeps its state inside the process that opened it, and a node file is
read only when a connection opens. To stop or undefine a domain while tocsind runs, a
hook (libvirt_hook.c) is preloaded into tocsind and changes test:///default, whose
state every connection of the process shares, on the test's command."""

import os
import re
import shutil
import signal
import socket
import subprocess
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
    vcpu_times = {labels["vcpu"]: v
                  for labels, v in samples(d, "libvirt_domain_vcpu_time_seconds_total", **dom)}
    assert sorted(vcpu_times) == ["0", "1"]
    assert all(v > 0 for v in vcpu_times.values()), vcpu_times

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
    for vcpu, first_time in vcpu_times.items():
        assert value(d, "libvirt_domain_vcpu_time_seconds_total", vcpu=vcpu,
                     **dom) >= first_time, vcpu
    assert {s for s, _ in run_outcomes(d, "lv")} == {"ok"}
    for counter in ("libvirt_domain_info_cpu_time_seconds_total",
                    "libvirt_domain_vcpu_time_seconds_total"):
        types = [line for line in d.metrics().splitlines()
                 if line.startswith(f"# TYPE {counter} ")]
        assert types == [f"# TYPE {counter} counter"]


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


@pytest.fixture
def libvirt_hook(tmp_path):
    """Builds libvirt_hook.c; returns (shared object, directory for its command files)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the libvirt test hook (Debian package gcc)")
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libvirt_hook.c")
    library = tmp_path / "libvirt_hook.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), source, "-lvirt",
                    "-lpthread"], check=True, timeout=60)
    commands = tmp_path / "hook"
    commands.mkdir()
    return library, commands


def preload_env(library, commands):
    """LD_PRELOAD for tocsind; a sanitizer build needs its runtime first in the list."""
    daemon = os.environ.get("TOCSIND", "")
    preload = [str(library)]
    if daemon:
        ldd = subprocess.run(["ldd", daemon], capture_output=True, text=True, timeout=10)
        preload = [line.split("=>")[1].split()[0] for line in ldd.stdout.splitlines()
                   if "libasan.so" in line and "=>" in line] + preload
    return {"LD_PRELOAD": " ".join(preload), "TOCSIN_TEST_LIBVIRT_HOOK_DIR": str(commands)}


def hook_command(commands, number, text):
    """Has the preloaded hook run one command and waits until it reports success."""
    (commands / f"{number}.tmp").write_text(text + "\n")
    os.rename(commands / f"{number}.tmp", commands / f"{number}.cmd")
    done = commands / f"{number}.done"
    wait_for(done.exists, timeout=5, what=f"the hook running '{text}'")
    assert done.read_text().strip() == "ok", done.read_text()


def test_domain_stops_then_disappears(daemon_factory, libvirt_hook):
    """The hook changes test:///default inside tocsind while the probe's connection stays
    open: a stopped domain is reported as shut off, an undefined one as gone."""
    d = daemon_factory(config(probe("lv", "test:///default")), start=False)
    d.env.update(preload_env(*libvirt_hook))
    d.start()
    dom = {"probe": "lv", "domain": "test"}
    wait_for(lambda: value(d, "libvirt_domain_up", **dom) == 1, timeout=15,
             what="domain test up")
    assert samples(d, "libvirt_domain_vcpu_time_seconds_total", **dom)
    _, commands = libvirt_hook

    hook_command(commands, 1, "destroy test")
    wait_for(lambda: value(d, "libvirt_domain_info_state", **dom) == 5, timeout=10,
             what="domain test shut off (state 5)")
    assert value(d, "libvirt_domain_up", **dom) == 0
    assert value(d, "libvirt_up", probe="lv") == 1
    # A shut-off domain has no vCPU threads, so no vCPU times.
    assert samples(d, "libvirt_domain_vcpu_time_seconds_total", **dom) == []

    hook_command(commands, 2, "undefine test")
    gone_notice = "domain test is no longer defined; its series stop"
    wait_for(lambda: gone_notice in d.log_text(), timeout=10, what="the domain-gone notice")
    lines = [line for line in d.log_text().splitlines() if gone_notice in line]
    assert len(lines) == 1, lines
    assert "level=notice" in lines[0], lines
    wait_for(lambda: value(d, "libvirt_domain_info_state", **dom) is None, timeout=10,
             what="the state series of domain test gone")
    assert samples(d, "libvirt_domain_info_memory_usage_bytes", **dom) == []
    assert value(d, "libvirt_up", probe="lv") == 1
    runs = len(run_outcomes(d, "lv"))
    wait_for(lambda: len(run_outcomes(d, "lv")) >= runs + 1, timeout=10, what="one more run")
    assert {s for s, _ in run_outcomes(d, "lv")} == {"ok"}
    assert d.stop() == 0


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
