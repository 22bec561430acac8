"""The http probe against real servers on loopback: status codes, redirects, bodies
(chunked, gzip), timeouts, TLS certificates made at test time, IPv6 and HTTP/2 through
nginx. Most checks read `tocsind --once`; the daemon tests read /metrics."""

import http.server
import os
import re
import socket
import subprocess
import threading

import pytest

from conftest import tocsind_path, wait_for
from http_servers import Certificates, Nginx, RunningServer

EXPIRED_NOT_AFTER = 1428883199  # 2015-04-12T23:59:59Z


@pytest.fixture
def server():
    s = RunningServer()
    yield s
    s.stop()


@pytest.fixture
def certs(tmp_path):
    return Certificates(str(tmp_path))


def yaml_quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_once(tmp_path, probes_yaml, timeout=20):
    """Runs `tocsind --once` on a config with `probes_yaml`; returns (rc, samples, results).
    samples maps (metric, probe, extra labels) to the value; results maps probe name to
    (status, reason)."""
    config = tmp_path / "once.yml"
    config.write_text("timeout: 2s\nprobes:\n" + probes_yaml)
    proc = subprocess.run([tocsind_path(), "--once", "--config", str(config)],
                          capture_output=True, text=True, timeout=timeout)
    samples, results = {}, {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^  (\w+)\{(.*)\} (\S+)$", line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
            probe = labels.pop("probe")
            key = (m.group(1), probe, tuple(sorted(labels.items())))
            samples[key] = float(m.group(3))
            continue
        m = re.match(r"^probe (\S+) \(type \w+\): (\w+) in [\d.]+ ms: (.*)$", line)
        if m:
            results[m.group(1)] = (m.group(2), m.group(3))
    assert "Sanitizer" not in proc.stderr, proc.stderr
    assert "runtime error:" not in proc.stderr, proc.stderr
    return proc.returncode, samples, results


def value(samples, metric, probe, **labels):
    return samples.get((metric, probe, tuple(sorted(labels.items()))))


def probe(name, url, extra=""):
    text = f"  - name: {name}\n    type: http\n    url: {url}\n"
    for line in extra.strip("\n").splitlines():
        text += "    " + line + "\n"
    return text


def test_status_codes_default_and_custom(tmp_path, server):
    cfg = (probe("ok", server.url("/status/200"))
           + probe("created", server.url("/status/201"))
           + probe("unavailable", server.url("/status/503"))
           + probe("notfound_wanted", server.url("/status/404"),
                   "valid_status_codes: [404, 5xx]")
           + probe("class_miss", server.url("/status/302"),
                   "valid_status_codes: [2xx, 404]\nfollow_redirects: false"))
    rc, samples, results = run_once(tmp_path, cfg)
    assert rc == 1
    assert results["ok"][0] == "ok"
    assert results["created"][0] == "ok"
    assert results["unavailable"] == ("status_mismatch", "http: status 503 not in 2xx")
    assert results["notfound_wanted"][0] == "ok"
    assert results["class_miss"] == ("status_mismatch", "http: status 302 not in 2xx, 404")
    assert value(samples, "probe_http_status_code", "unavailable") == 503
    assert value(samples, "probe_success", "unavailable") == 0
    assert value(samples, "probe_success", "ok") == 1
    assert value(samples, "probe_http_version", "ok") == 1.1
    assert value(samples, "probe_ip_protocol", "ok") == 4
    assert value(samples, "probe_http_ssl", "ok") == 0
    for phase in ("resolve", "connect", "tls", "processing", "transfer"):
        assert value(samples, "probe_http_duration_seconds", "ok", phase=phase) is not None


def test_redirect_chain_and_loop(tmp_path, server):
    cfg = (probe("chain", server.url("/redirect/3"))
           + probe("limited", server.url("/redirect/3"), "max_redirects: 2")
           + probe("loop", server.url("/loop"))
           + probe("not_followed", server.url("/redirect/1"),
                   "follow_redirects: false\nvalid_status_codes: [302]"))
    rc, samples, results = run_once(tmp_path, cfg)
    assert results["chain"][0] == "ok"
    assert value(samples, "probe_http_redirects", "chain") == 3
    assert value(samples, "probe_http_status_code", "chain") == 200
    assert results["limited"] == ("protocol_error", "http: more than 2 redirects")
    assert results["loop"] == ("protocol_error", "http: more than 10 redirects")
    assert results["not_followed"][0] == "ok"
    assert value(samples, "probe_http_redirects", "not_followed") == 0


def test_gzip_body_is_decoded_before_matching(tmp_path, server):
    # A user Accept-Encoding header becomes libcurl's decoding option, never a raw header.
    cfg = probe("web-gzip", server.url("/gzip"),
                'headers: { Accept-Encoding: gzip }\n'
                'body_must_not_match: ["<!DOCTYPE html>"]\n'
                'body_must_match: ["Status: OK"]')
    cfg += probe("gzip-match-only", server.url("/gzip"), 'body_must_match: ["Status: OK"]')
    cfg += probe("gzip-chunked", server.url("/gzip-chunked"), 'body_must_match: ["Status: OK"]')
    rc, samples, results = run_once(tmp_path, cfg)
    assert results["web-gzip"] == ("content_mismatch",
                                   "body matched forbidden pattern /<!DOCTYPE html>/")
    assert value(samples, "probe_failed_due_to_regex", "web-gzip") == 1
    assert results["gzip-match-only"][0] == "ok"
    assert value(samples, "probe_failed_due_to_regex", "gzip-match-only") == 0
    import gzip
    wire = len(gzip.compress(b"<!DOCTYPE html>\n<p>Status: OK</p>\n"))
    assert value(samples, "probe_http_uncompressed_body_length", "web-gzip") == 34
    assert value(samples, "probe_http_content_length", "web-gzip") != 34
    assert abs(value(samples, "probe_http_content_length", "web-gzip") - wire) <= 2
    assert results["gzip-chunked"][0] == "ok"
    assert value(samples, "probe_http_uncompressed_body_length", "gzip-chunked") == 34
    sent = [r for r in server.server.requests if r[1] == "/gzip"]
    assert sent and all("gzip" in r[2].get("Accept-Encoding", "") for r in sent)


def test_body_labelled_gzip_but_plain_fails(tmp_path, server):
    cfg = probe("fake", server.url("/fake-gzip"), 'body_must_not_match: ["<!DOCTYPE html>"]')
    rc, samples, results = run_once(tmp_path, cfg)
    assert rc == 1
    assert results["fake"][0] == "protocol_error"
    assert results["fake"][1].startswith("http: content decoding error")
    # The decoded length is unknown: left out, never exported as 0.
    assert value(samples, "probe_http_uncompressed_body_length", "fake") is None
    assert value(samples, "probe_http_status_code", "fake") == 200


def test_chunked_body_and_regexes(tmp_path, server):
    cfg = (probe("chunked", server.url("/chunked"), 'body_must_match: ["first part, second"]')
           + probe("missing", server.url("/"), 'body_must_match: ["goodbye"]')
           + probe("binary", server.url("/binary"), 'body_must_match: ["needle-after-nul"]'))
    rc, samples, results = run_once(tmp_path, cfg)
    assert results["chunked"][0] == "ok"
    assert value(samples, "probe_http_uncompressed_body_length", "chunked") == len(
        b"first part, second part: chunked OK\n")
    assert results["missing"] == ("content_mismatch", "body did not match /goodbye/")
    assert results["binary"][0] == "ok"


def test_body_over_limit_fails(tmp_path, server):
    cfg = probe("big", server.url("/big"), "max_body_bytes: 1MiB")
    rc, samples, results = run_once(tmp_path, cfg)
    assert results["big"] == ("limit_reached",
                              "http: body larger than max_body_bytes (1048576 bytes)")


def test_connect_refused_and_unknown_host(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the probe runs: nothing listens
    cfg = (probe("refused", f"http://127.0.0.1:{port}/")
           + probe("nxdomain", "http://no-such-host.invalid/"))
    rc, samples, results = run_once(tmp_path, cfg)
    assert results["refused"] == ("refused", "connect: refused")
    assert results["nxdomain"] == ("resolve_error", "dns: cannot resolve no-such-host.invalid")


def test_slow_response_times_out(tmp_path, server):
    cfg = probe("slow", server.url("/slow"), "timeout: 1s")
    rc, samples, results = run_once(tmp_path, cfg)
    assert results["slow"][0] == "timeout"
    # Connected, request sent, no response yet: the reason names the phase.
    assert results["slow"][1] == "timeout after 1s in phase processing"
    assert value(samples, "probe_success", "slow") == 0


def test_methods_auth_and_headers(tmp_path, server):
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    password.chmod(0o600)
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    token.chmod(0o640)
    server.server.accepted_auth.update({"Basic dXNlcjpzM2NyZXQ=", "Bearer tok-123"})
    cfg = (probe("post", server.url("/post"),
                 'method: POST\nbody: "ping"\nbody_must_match: ["method=POST body=ping"]')
           + probe("head", server.url("/"), "method: HEAD")
           + probe("basic", server.url("/auth"),
                   f"basic_auth: {{ username: user, password_file: {password} }}")
           + probe("bearer", server.url("/auth"), f"bearer_token_file: {token}")
           + probe("noauth", server.url("/auth"))
           + probe("headers", server.url("/headers"),
                   'headers: { X-Probe: tocsin-test }\nbody_must_match: ["X-Probe: tocsin-test"]'))
    rc, samples, results = run_once(tmp_path, cfg)
    for name in ("post", "head", "basic", "bearer", "headers"):
        assert results[name][0] == "ok", (name, results[name])
    assert results["noauth"] == ("status_mismatch", "http: status 401 not in 2xx")
    heads = [r for r in server.server.requests if r[0] == "HEAD"]
    assert len(heads) == 1


def test_config_errors_name_location_and_value(tmp_path):
    config = tmp_path / "bad.yml"
    config.write_text("probes:\n" + probe("bad", "ftp://127.0.0.1/",
                                          'valid_status_codes: [200, 7xx]\n'
                                          'body_must_match: ["(unclosed"]\n'
                                          'headers: { Accept-Encoding: compress }\n'
                                          'ip_protocol: ip5\n'
                                          'bearer_token_file: /nonexistent/token'))
    proc = subprocess.run([tocsind_path(), "--check-config", "--config", str(config)],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 1
    err = proc.stderr + proc.stdout
    assert re.search(r"bad\.yml:\d+:\d+: probes\[0\]\.url: scheme \"ftp\"", err), err
    assert '"7xx" is not a status code' in err
    assert 'regex "(unclosed" is invalid' in err
    assert "coding compress cannot be decoded" in err
    assert '"ip5" is not accepted; use ip4 or ip6' in err
    assert "cannot open \"/nonexistent/token\"" in err


def test_tls_valid_self_signed_and_wrong_name(tmp_path, certs):
    good = RunningServer(tls=certs.signed("good", "DNS:localhost,IP:127.0.0.1"))
    other = RunningServer(tls=certs.signed("other", "DNS:other.example"))
    selfsigned = RunningServer(tls=certs.self_signed("selfsigned", "localhost"))
    try:
        ca = f"tls: {{ ca_file: {certs.ca} }}"
        cfg = (probe("good", good.url(), ca)
               + probe("good_ssl_required", good.url(), ca + "\nfail_if_not_ssl: true")
               + probe("good_ssl_forbidden", good.url(), ca + "\nfail_if_ssl: true")
               + probe("wrong_name", other.url(), ca)
               + probe("server_name", other.url(),
                       f"tls: {{ ca_file: {certs.ca}, server_name: other.example }}")
               + probe("untrusted", selfsigned.url(), ca)
               + probe("skip_verify", selfsigned.url(), "tls: { insecure_skip_verify: true }"))
        rc, samples, results = run_once(tmp_path, cfg)
    finally:
        for s in (good, other, selfsigned):
            s.stop()
    assert results["good"][0] == "ok", results["good"]
    assert value(samples, "probe_http_ssl", "good") == 1
    assert value(samples, "probe_ssl_earliest_cert_expiry", "good") > 0
    assert value(samples, "probe_ssl_last_chain_expiry_timestamp_seconds", "good") > 0
    assert value(samples, "probe_tls_cert_not_after_seconds", "good") > 0
    assert value(samples, "probe_http_duration_seconds", "good", phase="tls") > 0
    assert results["good_ssl_required"][0] == "ok"
    assert results["good_ssl_forbidden"] == (
        "protocol_error", "http: response came over TLS and fail_if_ssl is set")
    assert results["wrong_name"][0] == "tls_error"
    assert "other.example" not in results["wrong_name"][1] or "name" in results["wrong_name"][1]
    assert results["server_name"][0] == "ok", results["server_name"]
    assert results["untrusted"] == ("tls_error", "tls: self-signed certificate")
    assert value(samples, "probe_tls_cert_not_after_seconds", "untrusted") > 0
    assert value(samples, "probe_ssl_last_chain_expiry_timestamp_seconds", "untrusted") is None
    assert results["skip_verify"][0] == "ok"


def expired_server(certs):
    pem, key = certs.self_signed("expired", "expired.test.example",
                                 "20140401000000Z", "20150412235959Z")
    return pem, RunningServer(tls=(pem, key))


def test_expired_certificate_visible_with_verify_on_and_off(tmp_path, certs):
    pem, srv = expired_server(certs)
    try:
        tls = f"ca_file: {pem}, server_name: expired.test.example"
        cfg = (probe("verify_on", srv.url(), f"tls: {{ {tls} }}")
               + probe("verify_off", srv.url(), f"tls: {{ {tls}, insecure_skip_verify: true }}"))
        rc, samples, results = run_once(tmp_path, cfg)
    finally:
        srv.stop()
    assert results["verify_on"] == ("tls_expired", "tls: certificate expired on 2015-04-12")
    assert value(samples, "probe_tls_cert_not_after_seconds", "verify_on") == EXPIRED_NOT_AFTER
    assert value(samples, "probe_ssl_earliest_cert_expiry", "verify_on") == EXPIRED_NOT_AFTER
    assert results["verify_off"][0] == "ok"
    assert value(samples, "probe_tls_cert_not_after_seconds", "verify_off") == EXPIRED_NOT_AFTER
    assert value(samples, "probe_ssl_earliest_cert_expiry", "verify_off") == EXPIRED_NOT_AFTER
    # An unverified chain has no chain expiry: the series is left out, never a sentinel.
    for name in ("verify_on", "verify_off"):
        assert value(samples, "probe_ssl_last_chain_expiry_timestamp_seconds", name) is None


def metric_line(text, name, probe_name):
    for line in text.splitlines():
        if line.startswith(name + "{") and f'probe="{probe_name}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_expired_certificate_on_metrics_endpoint(tmp_path, certs, daemon_factory):
    pem, srv = expired_server(certs)
    try:
        d = daemon_factory("interval: 1s\ntimeout: 1s\nprobes:\n" + probe(
            "expired", srv.url(), f"tls: {{ ca_file: {pem}, server_name: expired.test.example }}"))
        text = wait_for(lambda: (lambda t: t if metric_line(t, "probe_success", "expired")
                                 is not None else None)(d.metrics()),
                        timeout=15, what="probe_success on /metrics")
    finally:
        srv.stop()
    assert metric_line(text, "probe_success", "expired") == 0
    assert metric_line(text, "probe_tls_cert_not_after_seconds", "expired") == EXPIRED_NOT_AFTER
    assert "-62135596800" not in text
    assert re.search(r'tocsin_probe_last_failure_info\{[^}]*reason="tls: certificate expired '
                     r'on 2015-04-12"', text), text


def test_gzip_case_on_metrics_endpoint(tmp_path, server, daemon_factory):
    d = daemon_factory("interval: 1s\ntimeout: 1s\nprobes:\n" + probe(
        "web-gzip", server.url("/gzip"),
        'headers: { Accept-Encoding: gzip }\nbody_must_not_match: ["<!DOCTYPE html>"]\n'
        'body_must_match: ["Status: OK"]'))
    text = wait_for(lambda: (lambda t: t if metric_line(t, "probe_failed_due_to_regex",
                                                         "web-gzip") is not None else None)(
        d.metrics()), timeout=15, what="http metrics on /metrics")
    assert metric_line(text, "probe_success", "web-gzip") == 0
    assert metric_line(text, "probe_failed_due_to_regex", "web-gzip") == 1
    assert metric_line(text, "probe_http_uncompressed_body_length", "web-gzip") == 34


def test_timeout_in_daemon_keeps_probing(tmp_path, server, daemon_factory):
    d = daemon_factory("interval: 1s\ntimeout: 1s\nprobes:\n"
                       + probe("slow", server.url("/slow")) + probe("fast", server.url("/")))
    wait_for(lambda: (metric_line(d.metrics(), "tocsin_probe_runs_total", "slow") or 0) >= 2,
             timeout=20, what="two timed-out runs")
    text = d.metrics()
    assert metric_line(text, "probe_success", "slow") == 0
    assert metric_line(text, "probe_success", "fast") == 1
    assert metric_line(text, "tocsin_probe_failures_total", "slow") >= 2


def ipv6_available():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_ipv6_loopback_and_fallback(tmp_path):
    if not ipv6_available():
        pytest.skip("no IPv6 on loopback (::1)")
    srv = RunningServer(host="::1")
    try:
        cfg = (probe("v6", srv.url(), "ip_protocol: ip6")
               + probe("fallback", srv.url())
               + probe("no_fallback", srv.url(), "ip_protocol_fallback: false"))
        rc, samples, results = run_once(tmp_path, cfg)
    finally:
        srv.stop()
    assert results["v6"][0] == "ok"
    assert value(samples, "probe_ip_protocol", "v6") == 6
    assert results["fallback"][0] == "ok", results["fallback"]
    assert value(samples, "probe_ip_protocol", "fallback") == 6
    assert results["no_fallback"] == (
        "resolve_error",
        f"dns: {srv.url()} is an IPv6 address but ip_protocol is ip4 without fallback")


def test_http2_through_nginx(tmp_path, certs):
    cert, key = certs.signed("nginx", "DNS:localhost,IP:127.0.0.1")
    nginx = Nginx(str(tmp_path), cert, key)
    try:
        url = f"https://127.0.0.1:{nginx.port}/"
        ca = f"tls: {{ ca_file: {certs.ca} }}"
        cfg = (probe("h2", url, ca + '\nhttp_version: "2"\nbody_must_match: ["h2 ok"]')
               + probe("h11", url, ca + '\nhttp_version: "1.1"'))
        rc, samples, results = run_once(tmp_path, cfg)
    finally:
        nginx.stop()
    assert results["h2"][0] == "ok", results["h2"]
    assert value(samples, "probe_http_version", "h2") == 2
    assert results["h11"][0] == "ok"
    assert value(samples, "probe_http_version", "h11") == 1.1
    assert os.path.exists(nginx.pidfile) or nginx.proc.poll() is not None


def test_url_credentials_never_logged(tmp_path):
    config = tmp_path / "tocsin.yml"
    config.write_text("probes:\n"
                      "  - name: creds\n"
                      "    type: http\n"
                      "    url: http://bob:s3cr3t-pw@127.0.0.1:1/health\n")
    proc = subprocess.run([tocsind_path(), "--once", "--log-level", "debug", "--config",
                           str(config)], capture_output=True, text=True, timeout=30)
    out = proc.stdout + proc.stderr
    assert "target=http://REDACTED@127.0.0.1:1/health" in out, out
    assert "s3cr3t-pw" not in out, out


def test_stalled_tls_handshake_names_phase(tmp_path):
    # A server that accepts and never answers the ClientHello.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    try:
        port = listener.getsockname()[1]
        cfg = probe("stall", f"https://127.0.0.1:{port}/", "timeout: 1s")
        rc, samples, results = run_once(tmp_path, cfg)
        assert rc == 1
        assert results["stall"] == ("timeout", "timeout after 1s in phase tls"), results
    finally:
        listener.close()


class CountingHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with 200 and records the request line and client port."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.server.seen.append((self.client_address[1], self.requestline))
        body = b"via proxy\n" if self.path.startswith("http://") else b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def counting_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CountingHandler)
    srv.seen = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_connection_reuse_option(daemon_factory, counting_server):
    url = f"http://127.0.0.1:{counting_server.server_address[1]}/"
    d = daemon_factory("interval: 1s\ntimeout: 1s\nprobes:\n"
                       + probe("fresh", url + "fresh")
                       + probe("reused", url + "reused", "reuse_connections: true"))

    def ports(path):
        return [port for port, line in counting_server.seen if f" /{path} " in line]

    wait_for(lambda: len(ports("fresh")) >= 3 and len(ports("reused")) >= 3, timeout=20,
             what="three runs of each probe")
    # A new connection per run by default; one kept connection with reuse_connections.
    assert len(set(ports("fresh"))) == len(ports("fresh"))
    assert len(set(ports("reused"))) == 1


def test_proxy_option(tmp_path, counting_server):
    proxy = f"http://127.0.0.1:{counting_server.server_address[1]}"
    # Nothing listens on port 1: only the proxy can answer.
    cfg = probe("proxied", "http://127.0.0.1:1/health",
                f'proxy: {yaml_quote(proxy)}\nbody_must_match: ["via proxy"]')
    rc, samples, results = run_once(tmp_path, cfg)
    assert results["proxied"][0] == "ok", results
    assert any(line.startswith("GET http://127.0.0.1:1/health ")
               for _, line in counting_server.seen), counting_server.seen
