"""The icmp probe: echo requests to 127.0.0.1 and ::1, through a ping socket as root and
as an unprivileged user, through a raw socket when ping sockets are disabled, and the
"not permitted" error when neither is allowed. The sysctl changes happen only inside a
network namespace each test creates with `unshare -n`."""

import os
import shutil
import subprocess
import tempfile

import pytest

from netprobe import run_once

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def namespace_prefix(ping_group_range, user_prefix=()):
    """A command prefix that runs the rest in a new network namespace with loopback up
    and net.ipv4.ping_group_range set, optionally as another user."""
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    for tool in ("unshare", "ip", "setpriv", "sysctl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -n is not permitted here: {probe.stderr.decode().strip()}")
    script = ('ip link set lo up && sysctl -qw net.ipv4.ping_group_range="$1" && shift && '
              'exec "$@"')
    return ["unshare", "-n", "sh", "-c", script, "sh", ping_group_range, *user_prefix]


@pytest.fixture
def readable_dir():
    """A directory the unprivileged user can read (pytest's tmp_path is private)."""
    d = tempfile.mkdtemp(prefix="tocsin-icmp-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d)


def icmp_probe(name, target, extra=""):
    return f"  - name: {name}\n    type: icmp\n    target: \"{target}\"\n{extra}"


FIVE = "    count: 5\n    spacing: 20ms\n    timeout: 1s\n"


def assert_all_replied(r, probe, count):
    assert r.status(probe) == "ok", r.output
    assert r.value(probe, "probe_icmp_packets_sent") == count
    assert r.value(probe, "probe_icmp_packets_received") == count
    assert r.value(probe, "probe_icmp_packet_loss_ratio") == 0
    assert r.value(probe, "tocsin_icmp_rtt_seconds", stat="min") > 0
    assert r.value(probe, "tocsin_icmp_rtt_seconds", stat="max") >= \
        r.value(probe, "tocsin_icmp_rtt_seconds", stat="avg") >= \
        r.value(probe, "tocsin_icmp_rtt_seconds", stat="min")
    assert r.value(probe, "probe_success") == 1


def test_icmp_loopback_host_namespace(tmp_path):
    config = "probes:\n" + icmp_probe("v4", "127.0.0.1", FIVE) + \
        icmp_probe("v6", "::1", FIVE) + icmp_probe("name", "localhost")
    r = run_once(str(tmp_path), config)
    assert_all_replied(r, "v4", 5)
    assert_all_replied(r, "v6", 5)
    assert r.value("v6", "probe_ip_protocol") == 6
    assert r.status("name") == "ok", r.output
    assert r.value("name", "probe_icmp_duration_seconds", phase="resolve") >= 0


def test_icmp_ping_socket_unprivileged(readable_dir):
    prefix = namespace_prefix("0 2147483647", NOBODY)
    config = "probes:\n" + icmp_probe("v4", "127.0.0.1", FIVE) + icmp_probe("v6", "::1", FIVE)
    r = run_once(readable_dir, config, prefix)
    assert_all_replied(r, "v4", 5)
    assert_all_replied(r, "v6", 5)
    # The kernel chose the echo id; the replies matched anyway.
    assert "opened the IPv4 ping (SOCK_DGRAM) socket" in r.output
    assert "opened the IPv6 ping (SOCK_DGRAM) socket" in r.output


def test_icmp_ping_socket_root(readable_dir):
    prefix = namespace_prefix("0 0")
    r = run_once(readable_dir, "probes:\n" + icmp_probe("v4", "127.0.0.1", FIVE), prefix)
    assert_all_replied(r, "v4", 5)
    assert "opened the IPv4 ping (SOCK_DGRAM) socket" in r.output


def test_icmp_raw_socket_fallback(readable_dir):
    prefix = namespace_prefix("1 0")
    config = "probes:\n" + icmp_probe("v4", "127.0.0.1", FIVE) + icmp_probe("v6", "::1", FIVE)
    r = run_once(readable_dir, config, prefix)
    assert_all_replied(r, "v4", 5)
    assert_all_replied(r, "v6", 5)
    assert "opened the IPv4 raw socket" in r.output
    assert "opened the IPv6 raw socket" in r.output


def test_icmp_not_permitted(readable_dir):
    prefix = namespace_prefix("1 0", NOBODY)
    config = "probes:\n" + icmp_probe("v4", "127.0.0.1", FIVE) + \
        icmp_probe("v6", "::1", "    timeout: 1s\n") + \
        "  - name: host\n    type: host\n"
    r = run_once(readable_dir, config, prefix)
    assert r.status("v4") == "not_permitted"
    reason = r.reason("v4")
    assert reason.startswith("icmp: not permitted: IPv4 ping sockets are disabled for group 65534")
    assert 'net.ipv4.ping_group_range is "1 0"' in reason
    assert "CAP_NET_RAW" in reason
    assert r.status("v6") == "not_permitted"
    # Reported as an error, never as 100 % loss.
    assert r.value("v4", "probe_icmp_packet_loss_ratio") is None
    assert r.value("v4", "probe_success") == 0
    # Other probes keep running.
    assert r.status("host") == "ok", r.output
    assert r.output.count("level=warn module=icmp") == 2, r.output
