"""The tcp probe against line-based servers on loopback: a banner server, a Redis-like
PING server, an SMTP server with STARTTLS, and TLS servers whose certificates are made
at test time with the openssl CLI (valid, expired, self-signed, wrong name)."""

import os
import socket
import ssl
import subprocess
import threading
import calendar
import time

import pytest

from conftest import wait_for
from netprobe import run_once


class LineServer:
    """A threaded TCP server on `host`; `handler(conn)` runs for every connection."""

    def __init__(self, handler, host="127.0.0.1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.stopping = False
        self.connections = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            self.connections += 1
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        conn.settimeout(10)
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def servers():
    started = []

    def make(handler, host="127.0.0.1"):
        s = LineServer(handler, host)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def ssh_banner(conn):
    conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")


def redis(conn):
    f = conn.makefile("rb")
    line = f.readline()
    conn.sendall(b"+PONG\r\n" if line.strip() == b"PING" else b"-ERR unknown command\r\n")
    # Like Redis, keep the connection open: the probe must decide without an EOF.
    time.sleep(3)


def silent(conn):
    time.sleep(3)


def close_at_once(conn):
    pass


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


CA_CONF = """
[ca]
default_ca = ca_default
[ca_default]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = anything
copy_extensions = copy
[anything]
commonName = supplied
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, and leaf certificates it signed: valid for localhost and 127.0.0.1, expired
    on 2015-04-12, and valid for another name; plus a self-signed one."""
    d = str(tmp_path_factory.mktemp("certs"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "30", "-subj", "/CN=tocsin test CA", cwd=d)
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write(CA_CONF.format(dir=d))
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")

    def leaf(name, san, dates):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}", cwd=d)
        openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
                "-in", f"{name}.csr", "-out", f"{name}.pem", "-notext", *dates, cwd=d)

    leaf("valid", "DNS:localhost,IP:127.0.0.1,IP:::1", ["-days", "10"])
    leaf("expired", "DNS:localhost,IP:127.0.0.1",
         ["-startdate", "20150101000000Z", "-enddate", "20150412000000Z"])
    leaf("othername", "DNS:other.example", ["-days", "10"])
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "self.key", "-out",
            "self.pem", "-days", "5", "-subj", "/CN=localhost", "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1", cwd=d)
    return d


def not_after(path):
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", path], check=True,
                         capture_output=True, text=True).stdout.strip()
    return calendar.timegm(time.strptime(out.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z"))


def tls_server(servers, certs, name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certs, f"{name}.pem"), os.path.join(certs, f"{name}.key"))

    def handler(conn):
        with ctx.wrap_socket(conn, server_side=True) as t:
            t.sendall(b"* OK IMAP4rev1 ready\r\n")
            time.sleep(0.5)

    return servers(handler)


def smtp_starttls(certs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certs, "valid.pem"), os.path.join(certs, "valid.key"))

    def handler(conn):
        f = conn.makefile("rb")
        conn.sendall(b"220 mx.example ESMTP\r\n")
        if not f.readline().startswith(b"EHLO"):
            return
        conn.sendall(b"250-mx.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
        if f.readline().strip() != b"STARTTLS":
            return
        conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
        with ctx.wrap_socket(conn, server_side=True) as t:
            tf = t.makefile("rb")
            if tf.readline().startswith(b"EHLO"):
                t.sendall(b"250-mx.example\r\n250 AUTH PLAIN\r\n")
            tf.readline()

    return handler


def tcp_probe(name, target, steps=None, extra=""):
    text = f"  - name: {name}\n    type: tcp\n    target: \"{target}\"\n"
    if steps:
        text += "    query_response:\n" + "".join(f"      - {s}\n" for s in steps)
    return text + extra


def test_tcp_banner_and_connect(servers, tmp_path):
    ssh = servers(ssh_banner)
    ssh6 = servers(ssh_banner, host="::1")
    closed = servers(close_at_once)
    config = "probes:\n" + \
        tcp_probe("ssh", f"localhost:{ssh.port}", ['expect: "^SSH-2\\\\.0-"']) + \
        tcp_probe("ssh6", f"[::1]:{ssh6.port}", ['expect: "^SSH-2\\\\.0-"']) + \
        tcp_probe("wrong", f"127.0.0.1:{ssh.port}", ['expect: "^SSH-1\\\\."']) + \
        tcp_probe("connect_only", f"127.0.0.1:{ssh.port}") + \
        tcp_probe("lost", f"127.0.0.1:{closed.port}", ['expect: "^220 "'])
    r = run_once(str(tmp_path), config)
    assert r.status("ssh") == "ok", r.output
    assert r.value("ssh", "probe_ip_protocol") == 4
    assert r.value("ssh", "probe_failed_due_to_regex") == 0
    assert r.status("ssh6") == "ok", r.output
    assert r.value("ssh6", "probe_ip_protocol") == 6
    assert r.status("connect_only") == "ok"
    assert r.status("wrong") == "content_mismatch"
    assert r.reason("wrong") == 'expect /^SSH-1\\./ not matched; got "SSH-2.0-OpenSSH_9.2p1 Debian-2"'
    assert r.value("wrong", "probe_failed_due_to_regex") == 1
    assert r.status("lost") == "connection_lost"
    assert r.reason("lost").startswith("tcp: connection closed by 127.0.0.1:")


def test_tcp_redis_ping(servers, tmp_path):
    srv = servers(redis)
    config = "probes:\n" + \
        tcp_probe("pong", f"127.0.0.1:{srv.port}", ["send: PING", 'expect: "^\\\\+PONG"']) + \
        tcp_probe("err", f"127.0.0.1:{srv.port}", ["send: HELLO", 'expect: "^\\\\+PONG"'])
    r = run_once(str(tmp_path), config)
    assert r.status("pong") == "ok", r.output
    assert r.value("pong", "probe_success") == 1
    assert r.status("err") == "content_mismatch"
    assert r.reason("err") == 'expect /^\\+PONG/ not matched; got "-ERR unknown command"'
    assert r.value("err", "probe_success") == 0


def test_tcp_refused_and_timeout(servers, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    quiet = servers(silent)
    config = "probes:\n" + tcp_probe("refused", f"127.0.0.1:{port}") + \
        tcp_probe("quiet", f"127.0.0.1:{quiet.port}", ['expect: "^220 "'], "    timeout: 1s\n") + \
        tcp_probe("unresolvable", "no-such-host.invalid:25")
    r = run_once(str(tmp_path), config)
    assert r.status("refused") == "refused"
    assert r.reason("refused") == f"connect: 127.0.0.1:{port}: Connection refused"
    assert r.status("quiet") == "timeout"
    assert r.reason("quiet") == "timeout after 1s in phase expect"
    assert r.status("unresolvable") in ("resolve_error", "timeout"), r.output


def test_tcp_starttls_smtp(servers, certs, tmp_path):
    srv = servers(smtp_starttls(certs))
    steps = ['expect: "^220 "', "send: EHLO prober", 'expect: "^250-STARTTLS"',
             'expect: "^250 "', "send: STARTTLS", 'expect: "^220 "', "starttls: true",
             "send: EHLO prober", 'expect: "^250 AUTH"', "send: QUIT"]
    ca = os.path.join(certs, "ca.pem")
    config = "probes:\n" + tcp_probe("smtp", f"localhost:{srv.port}", steps,
                                     f"    tls_config: {{ca_file: {ca}}}\n")
    r = run_once(str(tmp_path), config)
    assert r.status("smtp") == "ok", r.output
    assert r.value("smtp", "probe_ssl_earliest_cert_expiry") == not_after(os.path.join(certs, "valid.pem"))
    assert r.value("smtp", "probe_tls_version_info", version="TLS 1.3") == 1


def test_tcp_tls_certificates(servers, certs, tmp_path):
    ca = os.path.join(certs, "ca.pem")
    tls_ca = f"    tls: true\n    tls_config: {{ca_file: {ca}}}\n"
    valid = tls_server(servers, certs, "valid")
    expired = tls_server(servers, certs, "expired")
    other = tls_server(servers, certs, "othername")
    selfsigned = tls_server(servers, certs, "self")
    config = "probes:\n" + \
        tcp_probe("valid", f"localhost:{valid.port}", ['expect: "^\\\\* OK"'], tls_ca) + \
        tcp_probe("valid_ip", f"127.0.0.1:{valid.port}", None, tls_ca) + \
        tcp_probe("expired", f"localhost:{expired.port}", None, tls_ca) + \
        tcp_probe("wrong_name", f"localhost:{other.port}", None, tls_ca) + \
        tcp_probe("self_signed", f"localhost:{selfsigned.port}", None, tls_ca) + \
        tcp_probe("insecure", f"localhost:{selfsigned.port}", None,
                  "    tls: true\n    tls_config: {insecure_skip_verify: true}\n") + \
        tcp_probe("plain_to_tls", f"localhost:{valid.port}", ['expect: "^\\\\* OK"'], "    timeout: 2s\n")
    r = run_once(str(tmp_path), config)
    assert r.status("valid") == "ok", r.output
    assert r.status("valid_ip") == "ok", r.output
    assert r.status("expired") == "tls_expired"
    assert r.reason("expired") == "tls: certificate expired on 2015-04-12"
    # The expiry is exported even though verification failed.
    assert r.value("expired", "probe_ssl_earliest_cert_expiry") == calendar.timegm((2015, 4, 12, 0, 0, 0))
    assert r.status("wrong_name") == "tls_error"
    assert "hostname mismatch" in r.reason("wrong_name")
    assert r.value("wrong_name", "probe_ssl_earliest_cert_expiry") is not None
    assert r.status("self_signed") == "tls_error"
    assert "self-signed certificate" in r.reason("self_signed")
    assert r.status("insecure") == "ok"
    assert r.value("insecure", "probe_ssl_earliest_cert_expiry") == not_after(os.path.join(certs, "self.pem"))
    assert r.status("plain_to_tls") != "ok"


def test_tcp_in_daemon_metrics(servers, daemon_factory):
    srv = servers(ssh_banner)
    d = daemon_factory("interval: 1s\nprobes:\n" +
                       tcp_probe("ssh", f"127.0.0.1:{srv.port}", ['expect: "^SSH-"']))
    wait_for(lambda: 'probe_success{probe="ssh"} 1' in d.metrics(), timeout=10,
             what="probe_success of the tcp probe")
    wait_for(lambda: srv.connections >= 2, timeout=10, what="two runs")
    assert 'probe_tls_version_info' not in d.metrics()
