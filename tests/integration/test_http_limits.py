"""The HTTP server's limits (`http:` section) and read access (`api.read`), checked against
the real tocsind over raw sockets, so that each test controls exactly what is sent."""

import hashlib
import socket
import subprocess
import time

import pytest

from conftest import free_port, tocsind_path

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


def test_read_loopback_non_loopback_peer():
    # A client on a non-loopback address needs a network namespace, which these tests do not
    # create. The tests above cover the loopback side of api.read: loopback.
    pytest.skip("needs a client on a non-loopback address; not set up by these tests")
