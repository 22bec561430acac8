"""The dns probe against a real dnsmasq on loopback (authoritative for `example`, never
forwarding), plus small responders of our own: one answering SERVFAIL, one never
answering, one answering with broken messages, and TCP servers that close or hang."""

import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time

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
    """Answers every query with `rcode` and no records, or never answers when rcode is None.
    `reply`, when given, builds the whole answer from the query instead."""

    def __init__(self, rcode, reply=None, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.reply = reply
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
            if self.reply is not None:
                self.sock.sendto(self.reply(data), peer)
                continue
            if self.rcode is None or len(data) < 12:
                continue
            flags = 0x8000 | (data[2] & 0x01) << 8 | 0x0080 | self.rcode
            reply = data[:2] + struct.pack(">H", flags) + data[4:6] + b"\0\0\0\0\0\0" + data[12:]
            self.sock.sendto(reply, peer)

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


class TcpServer:
    """Accepts connections on 127.0.0.1:`port` (0: any free port). With close=True it reads
    the query and closes without answering; otherwise it keeps every connection open
    and silent until stopped."""

    def __init__(self, close, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.close = close
        self.accepted = 0
        self.held = []
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            self.accepted += 1
            if not self.close:
                self.held.append(conn)
                continue
            conn.settimeout(2)
            try:
                conn.recv(2048)
            except OSError:
                pass
            conn.close()

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.sock.close()


def truncated_reply(data):
    """The query echoed back as a NOERROR answer with the TC bit set and no records."""
    return data[:2] + struct.pack(">H", 0x8380) + data[4:6] + b"\0\0\0\0\0\0" + data[12:]


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


def test_dns_tcp_closed_without_answer_after_truncation(tmp_path):
    # The UDP answer says "truncated", so the query is repeated over TCP on the same
    # port, where the server reads it and closes the connection without a word.
    tcp = TcpServer(close=True)
    udp = UdpResponder(None, reply=truncated_reply, port=tcp.port)
    try:
        r = run_once(str(tmp_path), "probes:\n" + dns_probe(
            "tc", f"127.0.0.1:{tcp.port}", query_name="api.example", timeout="5s"))
    finally:
        udp.stop()
        tcp.stop()
    assert udp.queries >= 1
    assert tcp.accepted >= 1
    assert r.status("tc") == "connection_lost", r.output
    assert r.reason("tc") == (f"dns: 127.0.0.1:{tcp.port} closed the TCP connection without "
                              "a response (the UDP answer was truncated)")
    assert r.value("tc", "probe_success") == 0
    assert r.value("tc", "probe_dns_lookup_time_seconds") is None


def test_dns_tcp_closed_without_answer(tmp_path):
    tcp = TcpServer(close=True)
    try:
        r = run_once(str(tmp_path), "probes:\n" + dns_probe(
            "closed", f"127.0.0.1:{tcp.port}", query_name="api.example", transport="tcp",
            timeout="5s"))
    finally:
        tcp.stop()
    assert r.status("closed") == "connection_lost", r.output
    assert r.reason("closed") == \
        f"dns: 127.0.0.1:{tcp.port} closed the TCP connection without a response"
    assert r.value("closed", "probe_dns_lookup_time_seconds") is None


def test_dns_refused_port_has_no_lookup_time(tmp_path):
    port = free_port()  # nothing listens there over TCP
    r = run_once(str(tmp_path), "probes:\n" + dns_probe(
        "refused", f"127.0.0.1:{port}", query_name="api.example", transport="tcp",
        timeout="5s"))
    assert r.status("refused") == "refused", r.output
    assert r.reason("refused") == f"dns: connection refused by 127.0.0.1:{port}"
    assert r.value("refused", "probe_dns_lookup_time_seconds") is None


def short_header_reply(data):
    return data[:2] + bytes.fromhex("818000010005")


def random_body_replies():
    """Replies of the query's ID and 40 seeded random bytes. The seeds give bodies with
    and without the TC bit, so both paths through the checks run."""
    makers = []
    for seed in (1, 2, 3, 4, 5, 6):
        body = random.Random(seed).randbytes(40)
        makers.append(pytest.param(lambda data, body=body: data[:2] + body,
                                   id=f"random-{seed}-tc{(body[0] >> 1) & 1}"))
    return makers


@pytest.mark.parametrize("reply", [pytest.param(short_header_reply, id="short-header")] +
                         random_body_replies())
def test_dns_malformed_response_fails_at_once(tmp_path, reply):
    responder = UdpResponder(None, reply=reply)
    started = time.monotonic()
    try:
        r = run_once(str(tmp_path), "probes:\n" + dns_probe(
            "bad", f"127.0.0.1:{responder.port}", query_name="api.example", timeout="5s"))
    finally:
        responder.stop()
    elapsed = time.monotonic() - started
    assert r.status("bad") == "protocol_error", r.output
    assert r.reason("bad").startswith(f"dns: malformed response from 127.0.0.1:{responder.port}: ")
    assert elapsed < 3, f"took {elapsed:.1f}s: the probe waited instead of failing"
    assert responder.queries == 1


def test_dns_tcp_hang_probe_timeout(tmp_path):
    tcp = TcpServer(close=False)
    started = time.monotonic()
    try:
        r = run_once(str(tmp_path), "probes:\n" + dns_probe(
            "hang", f"127.0.0.1:{tcp.port}", query_name="api.example", transport="tcp",
            timeout="3s"))
    finally:
        tcp.stop()
    elapsed = time.monotonic() - started
    assert r.status("hang") == "timeout", r.output
    assert r.reason("hang") == "timeout after 3s"
    assert elapsed >= 2.9
    assert r.value("hang", "probe_dns_lookup_time_seconds") is None


def test_dns_tcp_hang_one_try(tmp_path):
    # Over TCP the query is sent once and c-ares gives up after 6 s.
    tcp = TcpServer(close=False)
    try:
        r = run_once(str(tmp_path), "probes:\n" + dns_probe(
            "hang", f"127.0.0.1:{tcp.port}", query_name="api.example", transport="tcp",
            timeout="10s"))
    finally:
        tcp.stop()
    assert tcp.accepted == 1
    assert r.status("hang") == "timeout", r.output
    assert r.reason("hang") == f"dns: no response from 127.0.0.1:{tcp.port} over TCP within 6s"
