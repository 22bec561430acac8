"""Probe templates with file_sd target discovery: targets that appear start probing,
targets that vanish stop, a broken target file keeps the last good targets."""

import os
import re
import socket
import subprocess

import pytest

from conftest import tocsind_path, wait_for
from listener import Listener


@pytest.fixture
def listeners():
    made = [Listener(), Listener()]
    yield made
    for listener in made:
        listener.stop()


def unused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TEMPLATE = """
interval: 1s
timeout: 500ms
retention: [1s:1h]
probes:
  - name: web
    type: tcp
    target: "${{target}}"
    labels: {{ team: ops }}
    discovery:
      file_sd: {{ files: ["{files}"], refresh_interval: 1s }}
"""


def replace_file(path, text):
    """Writes as the docs ask writers to: a temporary file renamed over the old one, so
    that a refresh never reads a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_targets(path, targets, env="test"):
    quoted = ", ".join(f'"{t}"' for t in targets)
    replace_file(path, f"- targets: [{quoted}]\n  labels: {{ env: {env} }}\n")


def success(body, target):
    m = re.search(r'^probe_success\{env="test",instance="' + re.escape(target)
                  + r'",probe="web/' + re.escape(target) + r'",team="ops"\} (\S+)$', body, re.M)
    return m.group(1) if m else None


def test_targets_follow_the_file(daemon_factory, tmp_path, listeners):
    a = f"127.0.0.1:{listeners[0].port}"
    b = f"127.0.0.1:{listeners[1].port}"
    c = f"127.0.0.1:{unused_port()}"
    targets = tmp_path / "targets-web.yml"
    write_targets(targets, [a, b])
    d = daemon_factory(TEMPLATE.format(files=tmp_path / "targets-*.yml"))

    wait_for(lambda: success(d.metrics(), a) == "1" and success(d.metrics(), b) == "1",
             timeout=20, what="both discovered targets probed")

    # B leaves, C (nothing listens there) arrives.
    write_targets(targets, [a, c])
    wait_for(lambda: success(d.metrics(), c) == "0", timeout=20, what="new target probed")
    body = d.metrics()
    assert success(body, b) is None, "a vanished target's series must leave /metrics"
    assert success(body, a) == "1"

    # A broken file keeps the last good targets running.
    replace_file(targets, "- targets: [unclosed\n")
    wait_for(lambda: "target files have errors" in d.log_text(), timeout=20,
             what="error for the broken target file")
    body = d.metrics()
    assert success(body, a) == "1"
    assert success(body, c) == "0"
    assert d.proc.poll() is None


def test_template_errors_reported_per_target(tmp_path):
    targets = tmp_path / "targets.yml"
    write_targets(targets, ["127.0.0.1:1"])
    cfg = tmp_path / "tocsin.yml"
    cfg.write_text(TEMPLATE.format(files=targets).replace('target: "${target}"',
                                                          'tagret: "${target}"'))
    r = subprocess.run([tocsind_path(), "--check-config", "--config", str(cfg)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert f"{cfg}:8:5: web[target 127.0.0.1:1].tagret: unknown key" in r.stderr, r.stderr


def test_every_template_reported(tmp_path):
    """--check-config reports the errors of every template, not only the first one's."""
    targets = tmp_path / "targets.yml"
    write_targets(targets, ["127.0.0.1:1"])
    second = TEMPLATE.split("probes:\n", 1)[1].replace("name: web", "name: web2")
    text = TEMPLATE.format(files=targets) + second.format(files=targets)
    cfg = tmp_path / "tocsin.yml"
    cfg.write_text(text.replace('target: "${target}"', 'tagret: "${target}"'))
    r = subprocess.run([tocsind_path(), "--check-config", "--config", str(cfg)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "web[target 127.0.0.1:1].tagret: unknown key" in r.stderr, r.stderr
    assert "web2[target 127.0.0.1:1].tagret: unknown key" in r.stderr, r.stderr


def test_bad_target_file_rejected_at_load(tmp_path):
    targets = tmp_path / "targets.yml"
    targets.write_text("- targets: [\"has space:80\"]\n")
    cfg = tmp_path / "tocsin.yml"
    cfg.write_text(TEMPLATE.format(files=targets))
    r = subprocess.run([tocsind_path(), "--check-config", "--config", str(cfg)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert f"{targets}:1:12: [0].targets: target \"has space:80\" is not accepted" in r.stderr, \
        r.stderr


def test_missing_directory_matches_nothing_yet(daemon_factory, tmp_path, listeners):
    # A directory that does not exist yet is no error, as for a pattern that matches no
    # file. Its target files are read once it is created.
    directory = tmp_path / "targets"
    cfg = tmp_path / "tocsin.yml"
    cfg.write_text(TEMPLATE.format(files=directory / "web-*.yml"))
    r = subprocess.run([tocsind_path(), "--check-config", "--config", str(cfg)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    a = f"127.0.0.1:{listeners[0].port}"
    d = daemon_factory(TEMPLATE.format(files=directory / "web-*.yml"))
    directory.mkdir()
    write_targets(directory / "web-1.yml", [a])
    wait_for(lambda: success(d.metrics(), a) == "1", timeout=20,
             what="the target of a file in the new directory probed")
    assert "target files have errors" not in d.log_text()


def test_unreadable_directory_named_in_error(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    cfg = tmp_path / "tocsin.yml"
    cfg.write_text(TEMPLATE.format(files=loop / "web-*.yml"))
    r = subprocess.run([tocsind_path(), "--check-config", "--config", str(cfg)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert (f'{cfg}:6: file_sd.files: cannot list {loop} for the pattern "{loop}/web-*.yml": '
            "Too many levels of symbolic links; give tocsind read access to it, or fix the "
            "pattern") in r.stderr, r.stderr


def test_once_runs_discovered_targets(tmp_path, listeners):
    a = f"127.0.0.1:{listeners[0].port}"
    targets = tmp_path / "targets.yml"
    write_targets(targets, [a])
    cfg = tmp_path / "tocsin.yml"
    cfg.write_text(TEMPLATE.format(files=targets))
    r = subprocess.run([tocsind_path(), "--once", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"probe web/{a} (type tcp): ok" in r.stdout, r.stdout


class Dnsmasq:
    """dnsmasq on a free loopback port, answering only from its own records (no
    upstream servers), restarted with new records by `serve`."""

    def __init__(self, workdir):
        self.binary = "/usr/sbin/dnsmasq"
        if not os.access(self.binary, os.X_OK):
            pytest.skip("dnsmasq is not installed (Debian package dnsmasq-base)")
        self.workdir = workdir
        self.port = unused_udp_port()
        self.proc = None

    def serve(self, srv_ports):
        self.stop()
        conf = self.workdir / "dnsmasq.conf"
        lines = [f"port={self.port}", "listen-address=127.0.0.1", "bind-interfaces",
                 "no-resolv", "no-hosts", "local=/test/"]
        lines += [f"srv-host=_web._tcp.svc.test,127.0.0.1,{p}" for p in srv_ports]
        conf.write_text("\n".join(lines) + "\n")
        self.log = self.workdir / "dnsmasq.log"
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen([self.binary, "--no-daemon", f"--conf-file={conf}",
                                          "--pid-file="], stdout=log, stderr=log)
        wait_for(self.answers, timeout=10, what="dnsmasq answering on its port")

    def answers(self):
        """True once dnsmasq replies to an SRV query; fails when it has exited."""
        if self.proc.poll() is not None:
            raise AssertionError(f"dnsmasq exited with {self.proc.returncode}: "
                                 + self.log.read_text())
        # A query with id 1, recursion desired, one question: _web._tcp.svc.test SRV IN.
        name = b"".join(bytes([len(p)]) + p.encode() for p in "_web._tcp.svc.test".split("."))
        query = bytes.fromhex("000101000001000000000000") + name + b"\x00\x00\x21\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            s.sendto(query, ("127.0.0.1", self.port))
            try:
                return s.recv(512)[:2] == b"\x00\x01"
            except (socket.timeout, ConnectionRefusedError):
                return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def unused_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DNS_TEMPLATE = """
interval: 1s
timeout: 500ms
retention: [1s:1h]
probes:
  - name: web
    type: tcp
    target: "${{target}}"
    discovery:
      dns_sd: {{ names: [_web._tcp.svc.test], server: "127.0.0.1:{port}",
                refresh_interval: 1s }}
"""


def dns_success(body, target):
    m = re.search(r'^probe_success\{instance="' + re.escape(target) + r'",probe="web/'
                  + re.escape(target) + r'"\} (\S+)$', body, re.M)
    return m.group(1) if m else None


def test_dns_sd_targets_follow_srv_records(daemon_factory, tmp_path, listeners):
    dns = Dnsmasq(tmp_path)
    try:
        dns.serve([listeners[0].port, listeners[1].port])
        a = f"127.0.0.1:{listeners[0].port}"
        b = f"127.0.0.1:{listeners[1].port}"
        d = daemon_factory(DNS_TEMPLATE.format(port=dns.port))
        wait_for(lambda: dns_success(d.metrics(), a) == "1"
                 and dns_success(d.metrics(), b) == "1", timeout=20,
                 what="both SRV targets probed")

        # One record goes away: its probe stops and its series leave /metrics.
        dns.serve([listeners[0].port])
        wait_for(lambda: dns_success(d.metrics(), b) is None, timeout=20,
                 what="vanished SRV target dropped")
        assert dns_success(d.metrics(), a) == "1"

        # The server stops answering: the last good targets keep running.
        dns.stop()
        wait_for(lambda: "dns_sd: _web._tcp.svc.test" in d.log_text(), timeout=20,
                 what="DNS error logged")
        assert dns_success(d.metrics(), a) == "1"
    finally:
        dns.stop()
