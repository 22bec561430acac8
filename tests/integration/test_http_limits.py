"""The HTTP server's limits (`http:` section) and read access (`api.read`), checked against
the real tocsind over raw sockets, so that each test controls exactly what is sent."""

import hashlib
import secrets
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import free_port, tocsind_path, wait_for

READ_TOKEN = "limits-read-token"
ADMIN_TOKEN = "limits-admin-token"


def config(http="", api_read=None):
    closed = free_port()
    read = hashlib.sha256(READ_TOKEN.encode()).hexdigest()
    admin = hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()
    text = f"""
probes:
  - name: svc
    type: tcp
    target: "127.0.0.1:{closed}"
    interval: 1s
    timeout: 500ms
api:
  tokens:
    - {{name: viewer, sha256: {read}, role: read}}
    - {{name: ops, sha256: {admin}, role: admin}}
"""
    if api_read is not None:
        text += f"  read: {api_read}\n"
    if http:
        text += "http:\n" + http
    return text


def connect(d):
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    s.settimeout(10)
    return s


def read_response(s):
    """Return what arrived until the server closed or sent a full header block."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode("latin-1")


def status_of(response):
    assert response.startswith("HTTP/1."), repr(response[:200])
    return int(response.split(" ", 2)[1])


def request(d, text):
    with connect(d) as s:
        s.sendall(text.encode("latin-1"))
        return read_response(s)


def test_oversized_headers_rejected(daemon_factory):
    d = daemon_factory(config(http="  max_header_size: 2KiB\n"))
    filler = "x" * 4096

    response = request(d, f"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Filler: {filler}\r\n\r\n")

    # libevent 2.1.12 answers headers over the limit with 400 and closes the connection,
    # before tocsin's dispatcher sees the request.
    assert status_of(response) == 400
    assert "Connection: close" in response


def test_too_many_headers_rejected(daemon_factory):
    d = daemon_factory(config(http="  max_header_count: 10\n"))
    headers = "".join(f"X-Field-{i}: {i}\r\n" for i in range(20))

    response = request(d, f"GET /healthz HTTP/1.1\r\nHost: a\r\n{headers}\r\n")

    assert status_of(response) == 431


def test_header_count_within_limit(daemon_factory):
    d = daemon_factory(config(http="  max_header_count: 10\n"))
    headers = "".join(f"X-Field-{i}: {i}\r\n" for i in range(5))

    response = request(d, f"GET /healthz HTTP/1.1\r\nHost: a\r\n{headers}\r\n")

    assert status_of(response) == 200


def test_body_over_limit_rejected(daemon_factory):
    d = daemon_factory(config(http="  max_body_size: 4KiB\n"))
    body = "q=" + "1" * 8192

    response = request(
        d, "POST /api/v1/query HTTP/1.1\r\nHost: a\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}")

    assert status_of(response) == 413


def test_stalled_request_line_disconnected(daemon_factory):
    d = daemon_factory(config(http="  timeout: 2s\n"))

    with connect(d) as s:
        s.sendall(b"GET /heal")
        start = time.monotonic()
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - start

    assert 1.5 <= elapsed < 8, f"closed after {elapsed:.1f}s, expected about 2s"
    assert b"200 OK" not in data


def test_connections_over_limit_get_503(daemon_factory):
    d = daemon_factory(config(http="  max_connections: 3\n"))
    keep_alive = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
    open_connections = [connect(d) for _ in range(3)]
    try:
        for s in open_connections:
            s.sendall(keep_alive.encode())
            assert status_of(read_response(s)) == 200

        with connect(d) as extra:
            extra.sendall(keep_alive.encode())
            response = read_response(extra)
            assert status_of(response) == 503
            assert "Connection: close" in response
    finally:
        for s in open_connections:
            s.close()

    # The closed connections free their slots; poll until the server has noticed.
    deadline = time.monotonic() + 10
    while True:
        status = status_of(request(d, keep_alive))
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200


def test_read_token_requires_token(daemon_factory):
    d = daemon_factory(config(api_read="token"))

    response = request(d, "GET /api/v1/status HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(response) == 401
    assert "Content-Type: application/json" in response
    assert "WWW-Authenticate: Bearer" in response
    assert status_of(request(d, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")) == 401
    wrong = "GET /api/v1/status HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer nope\r\n\r\n"
    assert status_of(request(d, wrong)) == 401

    for token in (READ_TOKEN, ADMIN_TOKEN):
        response = request(
            d, f"GET /api/v1/status HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\n\r\n")
        assert status_of(response) == 200

    assert status_of(request(d, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")) == 200


def test_read_loopback_default_open_locally(daemon_factory):
    d = daemon_factory(config())

    assert status_of(request(d, "GET /api/v1/status HTTP/1.1\r\nHost: a\r\n\r\n")) == 200
    assert status_of(request(d, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")) == 200


def test_no_cors_headers(daemon_factory):
    d = daemon_factory(config())

    response = request(
        d, "GET /api/v1/status HTTP/1.1\r\nHost: a\r\nOrigin: http://example.test\r\n\r\n")

    assert status_of(response) == 200
    assert "access-control-" not in response.lower()


def test_read_token_without_tokens_rejected(daemon_factory):
    d = daemon_factory("probes: []\napi:\n  read: token\n", start=False)

    result = subprocess.run([tocsind_path(), "--config", d.config_path, "--check-config"],
                            capture_output=True, text=True, timeout=30)

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "tocsin.yml:3:" in output, output
    assert "is token, but api.tokens is empty" in output, output


# Sends one request from inside the network namespace and prints the status code, so that
# the client's address is the namespace's end of the veth pair, not 127.0.0.1.
NETNS_CLIENT = """
import sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[1], method=sys.argv[2],
                                 data=b"{}" if sys.argv[2] == "POST" else None)
try:
    with urllib.request.urlopen(request, timeout=5) as reply:
        print(reply.status)
except urllib.error.HTTPError as e:
    print(e.code)
"""


def run_ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def netns():
    """A network namespace joined to the host by a veth pair on a /30 of 10.200.0.0/16.
    Returns (name, host address, namespace address); removed again after the test."""
    # Random, so that runs side by side and leftovers of a killed run do not collide.
    tag = secrets.token_hex(3)
    name = f"tocsin-test-{tag}"
    host_if, ns_if = f"tsv{tag}h", f"tsv{tag}n"
    third, base = secrets.randbelow(256), secrets.randbelow(64) * 4
    host_ip, ns_ip = f"10.200.{third}.{base + 1}", f"10.200.{third}.{base + 2}"
    created = run_ip("netns", "add", name)
    if created.returncode != 0:
        pytest.skip(f"`ip netns add` is not permitted here: {created.stderr.strip()}")
    try:
        for args in (["link", "add", host_if, "type", "veth", "peer", "name", ns_if],
                     ["link", "set", ns_if, "netns", name],
                     ["addr", "add", f"{host_ip}/30", "dev", host_if],
                     ["link", "set", host_if, "up"],
                     ["-n", name, "addr", "add", f"{ns_ip}/30", "dev", ns_if],
                     ["-n", name, "link", "set", ns_if, "up"]):
            result = run_ip(*args)
            assert result.returncode == 0, f"ip {' '.join(args)}: {result.stderr}"
        yield name, host_ip, ns_ip
    finally:
        # Deleting the namespace deletes its end of the pair and with it the host's end.
        run_ip("link", "del", host_if)
        run_ip("netns", "del", name)


def netns_status(name, url, method="GET"):
    result = subprocess.run(["ip", "netns", "exec", name, sys.executable, "-c", NETNS_CLIENT,
                             url, method], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def test_read_loopback_non_loopback_peer(daemon_factory, netns):
    name, host_ip, ns_ip = netns
    d = daemon_factory(config(), start=False)
    # Listens on every address, so that both 127.0.0.1 and the veth address reach it.
    d.extra_args = ["--listen", f"0.0.0.0:{d.port}"]
    d.start()
    remote = f"http://{host_ip}:{d.port}/api/v1/probes"
    local = f"GET /api/v1/probes HTTP/1.1\r\nHost: a\r\n\r\n"

    # With api.read: loopback (the default), a read from the namespace gets 401.
    assert netns_status(name, remote) == 401
    assert status_of(request(d, local)) == 200
    (line,) = rejection_lines(d, "unauthorized")
    assert f"remote={ns_ip} method=GET path=/api/v1/probes" in line, line
    assert rejected_counts(d)["unauthorized"] == 1

    # With reads open, both get 200, and a write from the namespace still needs a token.
    d.write_config(config(api_read="open"))
    d.signal(signal.SIGHUP)
    wait_for(lambda: netns_status(name, remote) == 200, timeout=20,
             what="a read from the namespace after the reload to api.read: open")
    assert status_of(request(d, local)) == 200
    assert netns_status(name, f"http://{host_ip}:{d.port}/api/v1/silences", "POST") == 401


def rejected_counts(d):
    """Return tocsin_http_rejected_total by reason."""
    counts = {}
    for line in d.metrics().splitlines():
        if line.startswith("tocsin_http_rejected_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            counts[reason] = float(line.split()[-1])
    return counts


def rejection_lines(d, reason):
    return [line for line in d.log_text().splitlines() if f"reason={reason}" in line]


def test_rejections_counted_and_logged(daemon_factory):
    d = daemon_factory(config(http="  max_header_size: 2KiB\n  max_header_count: 10\n"
                              "  max_body_size: 4KiB\n  timeout: 2s\n"))
    before = rejected_counts(d)
    assert set(before) == {"unauthorized", "forbidden", "body_too_large", "headers_too_large",
                           "connection_limit", "timeout", "bad_request", "tls_handshake"}
    assert all(value == 0 for value in before.values()), before

    wrong = "wrong-secret-token-value"
    cases = [
        ("POST /api/v1/reload HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 401),
        ("POST /api/v1/reload HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
         f"Authorization: Bearer {wrong}\r\n\r\n", 401),
        ("POST /api/v1/reload HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
         f"Authorization: Bearer {READ_TOKEN}\r\n\r\n", 403),
        ("POST /api/v1/query HTTP/1.1\r\nHost: a\r\nContent-Length: 8192\r\n\r\n"
         + "1" * 8192, 413),
        (f"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Filler: {'x' * 4096}\r\n\r\n", 400),
        ("GET /healthz HTTP/1.1\r\nHost: a\r\n"
         + "".join(f"X-Field-{i}: {i}\r\n" for i in range(20)) + "\r\n", 431),
        ("GARBAGE\r\n\r\n", 400),
        ("GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ]
    for text, expected in cases:
        assert status_of(request(d, text)) == expected, text[:60]

    with connect(d) as s:
        s.sendall(b"GET /stalled")
        assert s.recv(4096) == b""  # closed by http.timeout

    counts = rejected_counts(d)
    assert counts["unauthorized"] == 2, counts
    assert counts["forbidden"] == 1, counts
    assert counts["body_too_large"] == 1, counts
    assert counts["headers_too_large"] == 2, counts
    assert counts["bad_request"] == 2, counts
    assert counts["timeout"] == 1, counts

    # The second 401 falls within the throttle's interval, so only the first is logged.
    (unauthorized,) = rejection_lines(d, "unauthorized")
    assert "level=warn module=http remote=127.0.0.1 method=POST path=/api/v1/reload" \
        in unauthorized
    assert "rejected with 401" in unauthorized
    (forbidden,) = rejection_lines(d, "forbidden")
    assert 'token \\"viewer\\" of role read' in forbidden, forbidden
    (timeout,) = rejection_lines(d, "timeout")
    assert "method=GET path=/stalled" in timeout, timeout
    (too_large,) = rejection_lines(d, "body_too_large")
    assert "method=POST path=/api/v1/query" in too_large, too_large
    assert "rejected with 413" in too_large
    for token in (wrong, READ_TOKEN, ADMIN_TOKEN):
        assert token not in d.log_text()


def test_rejection_log_throttled(daemon_factory):
    d = daemon_factory(config())

    for _ in range(20):
        assert status_of(request(
            d, "POST /api/v1/reload HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")) == 401

    assert rejected_counts(d)["unauthorized"] == 20
    # The first is logged; the rest fall within the throttle's first 10 s.
    assert len(rejection_lines(d, "unauthorized")) == 1
