"""The dns probe against a real dnsmasq on loopback (authoritative for `example`, never
forwarding), plus a small UDP responder that answers SERVFAIL and one that never answers."""

import os
import shutil
import socket
import struct
import subprocess
import threading

import pytest

from conftest import free_port, wait_for
from netprobe import run_once

DNSMASQ_CONF = """
no-resolv
no-hosts
no-poll
local=/example/
address=/api.example/192.0.2.10
host-record=www.example,192.0.2.20,2001:db8::20
mx-host=example,mail.example,10
txt-record=example,"v=spf1 -all"
srv-host=_http._tcp.example,www.example,8080,1,2
"""


class Dnsmasq:
    def __init__(self, workdir):
        binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        if not os.access(binary, os.X_OK):
            pytest.skip("dnsmasq is not installed (Debian package dnsmasq-base)")
        self.port = free_port()
        conf = os.path.join(workdir, "dnsmasq.conf")
        with open(conf, "w") as f:
            f.write(DNSMASQ_CONF)
        self.log = open(os.path.join(workdir, "dnsmasq.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "--no-daemon", f"--port={self.port}", "--listen-address=127.0.0.1,::1",
             "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file=",
             f"--conf-file={conf}", "--log-queries", "--user=root"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self.answers, timeout=10, what="dnsmasq answering")

    def answers(self):
        assert self.proc.poll() is None, "dnsmasq exited"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            s.sendto(query(b"api.example", 1), ("127.0.0.1", self.port))
            return len(s.recv(512)) > 12

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def query(name, qtype):
    labels = b"".join(bytes([len(p)]) + p for p in name.split(b"."))
    return struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", qtype, 1)


class UdpResponder:
    """Answers every query with `rcode` and no records, or never answers when rcode is None."""

    def __init__(self, rcode):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.rcode = rcode
        self.queries = 0
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                data, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            self.queries += 1
            if self.rcode is None or len(data) < 12:
                continue
            flags = 0x8000 | (data[2] & 0x01) << 8 | 0x0080 | self.rcode
            reply = data[:2] + struct.pack(">H", flags) + data[4:6] + b"\0\0\0\0\0\0" + data[12:]
            self.sock.sendto(reply, peer)

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def dnsmasq(tmp_path):
    d = Dnsmasq(str(tmp_path))
    yield d
    d.stop()


def dns_probe(name, server, **options):
    lines = [f"  - name: {name}", "    type: dns", f"    server: \"{server}\""]
    for key, value in options.items():
        lines.append(f"    {key}: {value}")
    return "\n".join(lines) + "\n"


def test_dns_record_types(dnsmasq, tmp_path):
    server = f"127.0.0.1:{dnsmasq.port}"
    config = "probes:\n" + "".join([
        dns_probe("a", server, query_name="api.example",
                  validate_answer_rrs='{fail_if_not_matches_regexp: ["^api\\\\.example\\\\.\\t[0-9]+\\tIN\\tA\\t192\\\\.0\\\\.2\\\\.10$"]}'),
        dns_probe("aaaa", server, query_name="www.example", query_type="AAAA",
                  validate_answer_rrs='{fail_if_not_matches_regexp: ["AAAA\\t2001:db8::20$"]}'),
        dns_probe("mx", server, query_name="example", query_type="MX",
                  validate_answer_rrs='{fail_if_not_matches_regexp: ["MX\\t10 mail\\\\.example\\\\.$"]}'),
        dns_probe("txt", server, query_name="example", query_type="TXT",
                  validate_answer_rrs='{fail_if_not_matches_regexp: ["TXT\\t\\"v=spf1 -all\\"$"]}'),
        dns_probe("srv", server, query_name="_http._tcp.example", query_type="SRV",
                  validate_answer_rrs='{fail_if_not_matches_regexp: ["SRV\\t1 2 8080 www\\\\.example\\\\.$"]}'),
    ])
    r = run_once(str(tmp_path), config)
    for probe in ("a", "aaaa", "mx", "txt", "srv"):
        assert r.status(probe) == "ok", r.output
        assert r.value(probe, "probe_success") == 1
        assert r.value(probe, "probe_dns_answer_rrs") == 1, probe
        assert r.value(probe, "probe_dns_rcode") == 0
        assert r.value(probe, "probe_dns_lookup_time_seconds") > 0
    assert r.value("a", "probe_ip_protocol") == 4


def test_dns_nxdomain(dnsmasq, tmp_path):
    server = f"127.0.0.1:{dnsmasq.port}"
    config = "probes:\n" + dns_probe("nx", server, query_name="nope.example") + \
        dns_probe("nx_allowed", server, query_name="nope.example", valid_rcodes="[NXDOMAIN]")
    r = run_once(str(tmp_path), config)
    assert r.status("nx") == "dns_rcode"
    assert r.reason("nx") == "dns: NXDOMAIN for nope.example"
    assert r.value("nx", "probe_dns_rcode") == 3
    assert r.value("nx", "probe_success") == 0
    assert r.status("nx_allowed") == "ok"
    assert r.value("nx_allowed", "probe_dns_query_succeeded") == 1


def test_dns_servfail(tmp_path):
    responder = UdpResponder(2)
    try:
        r = run_once(str(tmp_path), "probes:\n" + dns_probe(
            "sf", f"127.0.0.1:{responder.port}", query_name="api.example"))
    finally:
        responder.stop()
    assert r.status("sf") == "dns_rcode"
    assert r.reason("sf") == "dns: SERVFAIL for api.example"
    assert r.value("sf", "probe_dns_rcode") == 2


def test_dns_regex_failures(dnsmasq, tmp_path):
    server = f"127.0.0.1:{dnsmasq.port}"
    config = "probes:\n" + \
        dns_probe("matches", server, query_name="api.example",
                  validate_answer_rrs='{fail_if_matches_regexp: ["192\\\\.0\\\\.2\\\\."]}') + \
        dns_probe("not_matches", server, query_name="api.example",
                  validate_answer_rrs='{fail_if_not_matches_regexp: ["198\\\\.51\\\\.100\\\\."]}') + \
        dns_probe("authority", server, query_name="nope.example", valid_rcodes="[NXDOMAIN]",
                  validate_authority_rrs='{fail_if_not_matches_regexp: ["SOA"]}')
    r = run_once(str(tmp_path), config)
    assert r.status("matches") == "content_mismatch"
    assert r.reason("matches").startswith('dns: answer record "api.example.\\t')
    assert r.reason("matches").endswith('matched /192\\.0\\.2\\./')
    assert r.status("not_matches") == "content_mismatch"
    assert r.reason("not_matches") == "dns: no answer record matched /198\\.51\\.100\\./ (1 records)"
    # dnsmasq puts no SOA in its local NXDOMAIN answers.
    assert r.value("authority", "probe_dns_authority_rrs") == 0
    assert r.status("authority") == "content_mismatch"


def test_dns_tcp_and_ipv6(dnsmasq, tmp_path):
    config = "probes:\n" + \
        dns_probe("tcp", f"127.0.0.1:{dnsmasq.port}", query_name="api.example", transport="tcp") + \
        dns_probe("v6", f"[::1]:{dnsmasq.port}", query_name="www.example", query_type="AAAA")
    r = run_once(str(tmp_path), config)
    assert r.status("tcp") == "ok", r.output
    assert r.status("v6") == "ok", r.output
    assert r.value("v6", "probe_ip_protocol") == 6
    with open(os.path.join(str(tmp_path), "dnsmasq.log")) as f:
        log = f.read()
    assert "query[A] api.example from 127.0.0.1" in log
    assert "query[AAAA] www.example from ::1" in log


def test_dns_silent_server_times_out(tmp_path):
    responder = UdpResponder(None)
    try:
        r = run_once(str(tmp_path), "probes:\n" + dns_probe(
            "silent", f"127.0.0.1:{responder.port}", query_name="api.example", timeout="1s"))
    finally:
        responder.stop()
    assert r.status("silent") == "timeout"
    assert r.reason("silent") == "timeout after 1s"
    assert responder.queries >= 1
