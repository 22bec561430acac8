"""TLS on the HTTP server (`http.tls:`): the real tocsind serves /healthz and /metrics over
HTTPS with a self-signed certificate made by the openssl command, rejects plain HTTP and old
protocol versions, and reloads its certificate on SIGHUP."""

import os
import signal
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
import warnings

import pytest

from conftest import free_port, tocsind_path, wait_for


def make_certificate(directory, name):
    """Write NAME.pem and NAME.key, a self-signed certificate for IP 127.0.0.1."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return cert, key


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def config(cert, key, min_version=None):
    closed = free_port()
    text = f"""
probes:
  - name: svc
    type: tcp
    target: "127.0.0.1:{closed}"
    interval: 1s
    timeout: 500ms
http:
  tls:
    cert_file: {cert}
    key_file: {key}
"""
    if min_version is not None:
        text += f'    min_version: "{min_version}"\n'
    return text


def client_context(cafile):
    context = ssl.create_default_context(cafile=cafile)
    assert context.check_hostname
    return context


def https_get(d, path, cafile):
    url = f"https://127.0.0.1:{d.port}{path}"
    with urllib.request.urlopen(url, timeout=5, context=client_context(cafile)) as r:
        return r.status, r.read().decode("utf-8")


def peer_certificate(d, context):
    with socket.create_connection(("127.0.0.1", d.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.getpeercert(binary_form=True)


def any_certificate_context():
    """A client that accepts any certificate, to see which one the server presents."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def start_tls(daemon_factory, text, cafile):
    d = daemon_factory(text, start=False)

    def healthy():
        if d.proc.poll() is not None:
            raise AssertionError(f"tocsind exited with {d.proc.returncode}:\n{d.log_text()}")
        try:
            return https_get(d, "/healthz", cafile)[0] == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    d.healthy = healthy
    return d.start()


@pytest.fixture
def certificates(tmp_path):
    directory = str(tmp_path / "tls")
    os.mkdir(directory)
    return directory


def test_https_serves_healthz_and_metrics(daemon_factory, certificates):
    cert, key = make_certificate(certificates, "first")
    d = start_tls(daemon_factory, config(cert, key), cert)

    status, body = https_get(d, "/healthz", cert)
    assert status == 200
    assert body == "ok\n"
    status, body = https_get(d, "/metrics", cert)
    assert status == 200
    assert "tocsin_" in body
    assert f"serving https://127.0.0.1:{d.port}/" in d.log_text()


def test_plain_http_to_tls_port_fails(daemon_factory, certificates):
    cert, key = make_certificate(certificates, "first")
    d = start_tls(daemon_factory, config(cert, key), cert)

    with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
        s.settimeout(5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            reply = s.recv(65536)
        except ConnectionResetError:
            reply = b""
    assert not reply.startswith(b"HTTP/1.")
    # The daemon still serves TLS clients afterwards.
    assert https_get(d, "/healthz", cert)[0] == 200

    # The failed handshake is counted and logged with OpenSSL's reason.
    _, metrics = https_get(d, "/metrics", cert)
    (line,) = [m for m in metrics.splitlines()
               if m.startswith('tocsin_http_rejected_total{reason="tls_handshake"}')]
    assert float(line.split()[-1]) >= 1, line
    wait_for(lambda: "reason=tls_handshake" in d.log_text(), timeout=10,
             what="the log line of the failed handshake")
    (logged,) = [m for m in d.log_text().splitlines() if "reason=tls_handshake" in m][:1]
    assert "remote=127.0.0.1" in logged, logged
    assert "TLS handshake failed (OpenSSL: " in logged, logged


def test_tls_1_1_client_rejected(daemon_factory, certificates):
    cert, key = make_certificate(certificates, "first")
    d = start_tls(daemon_factory, config(cert, key, min_version="1.2"), cert)
    context = any_certificate_context()
    try:
        with warnings.catch_warnings():
            # Python 3.10 and later deprecate TLS 1.1, which is what this test needs.
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1_1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        # The client's own OpenSSL may forbid TLS 1.1 at its default security level.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError) as e:
        pytest.skip(f"this Python cannot offer only TLS 1.1: {e}")

    with pytest.raises(ssl.SSLError) as raised:
        peer_certificate(d, context)
    if "NO_PROTOCOLS_AVAILABLE" in str(raised.value).upper():
        pytest.skip("the client's OpenSSL refuses to send TLS 1.1, so the server is not tested")
    # The server's protocol_version alert, not a failure on the client's side.
    assert "PROTOCOL_VERSION" in str(raised.value).upper()
    assert https_get(d, "/healthz", cert)[0] == 200


def test_min_version_1_3_rejects_tls_1_2(daemon_factory, certificates):
    cert, key = make_certificate(certificates, "first")
    d = start_tls(daemon_factory, config(cert, key, min_version="1.3"), cert)
    context = any_certificate_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2

    with pytest.raises(ssl.SSLError) as raised:
        peer_certificate(d, context)
    assert "PROTOCOL_VERSION" in str(raised.value).upper()
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    assert peer_certificate(d, context) == der_of(cert)


def test_sighup_reloads_certificate(daemon_factory, certificates):
    cert, key = make_certificate(certificates, "first")
    d = start_tls(daemon_factory, config(cert, key), cert)
    first = der_of(cert)
    assert peer_certificate(d, any_certificate_context()) == first

    new_cert, new_key = make_certificate(certificates, "second")
    os.replace(new_cert, cert)
    os.replace(new_key, key)
    second = der_of(cert)
    assert second != first
    d.signal(signal.SIGHUP)

    wait_for(lambda: "reload done" in d.log_text(), timeout=20, what="reload done")
    assert peer_certificate(d, any_certificate_context()) == second
    assert https_get(d, "/healthz", cert)[0] == 200


def test_reload_with_broken_key_rejected(daemon_factory, certificates):
    cert, key = make_certificate(certificates, "first")
    d = start_tls(daemon_factory, config(cert, key), cert)
    first = der_of(cert)

    with open(key, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    d.signal(signal.SIGHUP)

    wait_for(lambda: "reload rejected" in d.log_text(), timeout=20, what="reload rejected")
    log = d.log_text()
    assert f"http.tls.key_file {key}: cannot load the private key" in log
    assert d.proc.poll() is None
    assert peer_certificate(d, any_certificate_context()) == first
    assert https_get(d, "/healthz", cert)[0] == 200


def test_reload_with_mismatched_key_rejected(daemon_factory, certificates):
    cert, key = make_certificate(certificates, "first")
    d = start_tls(daemon_factory, config(cert, key), cert)
    first = der_of(cert)
    _, other_key = make_certificate(certificates, "other")

    os.replace(other_key, key)
    d.signal(signal.SIGHUP)

    wait_for(lambda: "reload rejected" in d.log_text(), timeout=20, what="reload rejected")
    assert "does not match the certificate" in d.log_text()
    assert peer_certificate(d, any_certificate_context()) == first


def run_tocsind(d, config_path):
    """Run tocsind until it exits, as it does when its config or TLS files are invalid."""
    return subprocess.run(
        [tocsind_path(), "--config", config_path, "--listen", f"127.0.0.1:{d.port}",
         "--data-dir", d.data_dir],
        capture_output=True, text=True, timeout=30)


def test_missing_cert_file_stops_start(daemon_factory, certificates):
    _, key = make_certificate(certificates, "first")
    missing = os.path.join(certificates, "missing.pem")
    d = daemon_factory(config(missing, key), start=False)

    run = run_tocsind(d, d.config_path)

    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert f"http.tls.cert_file {missing}: cannot open: No such file or directory" in output


def test_tls_section_requires_both_files(daemon_factory, certificates, tmp_path):
    cert, _ = make_certificate(certificates, "first")
    path = tmp_path / "half.yml"
    path.write_text(f"http:\n  tls:\n    cert_file: {cert}\n    min_version: \"1.1\"\n")
    d = daemon_factory("", start=False)

    run = run_tocsind(d, str(path))

    assert run.returncode != 0
    assert 'missing required key "key_file"' in run.stderr
    assert "invalid TLS version 1.1" in run.stderr
