"""Integration tests of the email receiver. tests/tools/send_notification sends one
notification through it to real SMTP servers (aiosmtpd) that the test starts on 127.0.0.1:
without STARTTLS, with STARTTLS (a self-signed certificate made with the openssl command at
test time) and with AUTH. Every server checks the raw DATA it receives for CRLF line ends
only and no line over 998 octets. Python's email package parses the received messages.
"""

import email
import email.policy
import email.utils
import json
import os
import socket
import stat
import subprocess
import time

import pytest

from conftest import TOP, free_port

aiosmtpd_controller = pytest.importorskip(
    "aiosmtpd.controller", reason="aiosmtpd is not installed (Debian package python3-aiosmtpd)")
aiosmtpd_smtp = pytest.importorskip("aiosmtpd.smtp")

LONG_URL_LENGTH = 1322
IDEMPOTENCY_KEY = '{}:{alertname="DiskFull"}/7'


def tool_path():
    tocsind = os.environ.get("TOCSIND", os.path.join(TOP, "build", "ci-normal", "tocsind"))
    path = os.path.join(os.path.dirname(tocsind), "tests", "tools", "send_notification")
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is not built (run make in the build directory)")
    return path


def long_url():
    url = "https://grafana.example.org/d/abc/overview?orgId=1&var-host=web1"
    while len(url) < LONG_URL_LENGTH:
        url += "&var-x=a%20b"
    return url[:LONG_URL_LENGTH]


def notification(description="Disk /var is full.\n.hidden line starts with a dot\nlast line"):
    """The stored JSON form of a notification with one firing and one resolved alert."""
    def alert(instance, firing, annotations):
        return {
            "labels": {"alertname": "DiskFull", "instance": instance, "job": "n\u00f6de"},
            "annotations": annotations,
            "firing": firing,
            "starts_at_ms": 1764878400000,
            "ends_at_ms": 0 if firing else 1764878460000,
            "condition_at_ms": 1764878400000,
            "fingerprint": "0123456789abcdef",
            "generator_url": "http://127.0.0.1:9090/graph?g0.expr=up",
        }
    return {
        "receiver": "ops",
        "group_key": '{}:{alertname="DiskFull"}',
        "sequence": 7,
        "idempotency_key": IDEMPOTENCY_KEY,
        "group_labels": {"alertname": "DiskFull"},
        "firing": True,
        "alerts": [
            alert("web1:9100", True, {"dashboard": long_url(), "description": description,
                                      "summary": "Disque plein \u00e0 95 %"}),
            alert("web2:9100", False, {"summary": "Disk ok"}),
        ],
        "truncated_alerts": 0,
        "external_url": "http://127.0.0.1:9517/",
        "created_ms": 1764878470000,
    }


def line_problem(raw):
    """What makes raw DATA unacceptable to a strict server, or None."""
    lines = raw.split(b"\r\n")
    for number, line in enumerate(lines, 1):
        if b"\n" in line or b"\r" in line:
            return f"line {number} has a bare CR or LF"
        if len(line) > 998:
            return f"line {number} is {len(line)} octets long, more than 998"
    return None


class Received:
    def __init__(self, mail_from, rcpt_tos, raw, tls, login):
        self.mail_from = mail_from
        self.rcpt_tos = rcpt_tos
        self.raw = raw
        self.tls = tls
        self.login = login
        self.message = email.message_from_bytes(raw, policy=email.policy.default)


class Handler:
    """Accepts or rejects as configured, and records each message it receives in full."""

    def __init__(self, data_reply="250 2.0.0 Ok: queued", rcpt_replies=None):
        self.data_reply = data_reply
        self.rcpt_replies = rcpt_replies or {}
        self.received = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        problem = line_problem(raw)
        if problem is not None:
            return "550 5.6.0 " + problem
        login = session.auth_data.login.decode() if session.authenticated else None
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), raw,
                                      session.ssl is not None, login))
        return self.data_reply


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1, made with the openssl CLI."""
    directory = tmp_path_factory.mktemp("tls")
    cert = directory / "cert.pem"
    key = directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj",
         "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


@pytest.fixture
def smtp_server(certificate):
    """Starts aiosmtpd servers on 127.0.0.1; stops them after the test."""
    import ssl

    controllers = []

    def start(handler, starttls=False, **kwargs):
        port = free_port()
        if starttls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*certificate)
            kwargs.update(tls_context=context, require_starttls=True)
        controller = aiosmtpd_controller.Controller(handler, hostname="127.0.0.1", port=port,
                                                    **kwargs)
        controller.start()
        controllers.append(controller)
        return port

    yield start
    for controller in controllers:
        controller.stop()


def send(tmp_path, options, note=None, timeout_ms=10000):
    """Runs send_notification with the options (YAML text); returns its outcome line."""
    options_path = tmp_path / "email.yml"
    options_path.write_text(options)
    note_path = tmp_path / "notification.json"
    note_path.write_text(json.dumps(note if note is not None else notification()))
    proc = subprocess.run(
        [tool_path(), "--type", "email", "--options", str(options_path),
         "--notification", str(note_path), "--timeout-ms", str(timeout_ms)],
        capture_output=True, text=True, timeout=timeout_ms / 1000 + 20)
    assert proc.returncode == 0, f"send_notification failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_config(tmp_path, options):
    """Runs send_notification on invalid options; returns its error output."""
    options_path = tmp_path / "email.yml"
    options_path.write_text(options)
    note_path = tmp_path / "notification.json"
    note_path.write_text(json.dumps(notification()))
    proc = subprocess.run(
        [tool_path(), "--type", "email", "--options", str(options_path),
         "--notification", str(note_path)],
        capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return proc.stderr


def plain_options(port, extra=""):
    return (f"smarthost: 127.0.0.1:{port}\n"
            "tls: none\n"
            "from: tocsin alerts <alerts@example.org>\n"
            "to: [ops@example.org, \"\u00c9quipe Nuit <night@example.org>\"]\n"
            "cc: [boss@example.org]\n" + extra)


def body(message, subtype):
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert part.get_content_charset() == "utf-8"
    # Python's decoder keeps the CRLF line ends of the wire form.
    return part.get_content().replace("\r\n", "\n")


def test_message_headers_and_parts(tmp_path, smtp_server):
    handler = Handler()
    port = smtp_server(handler)

    outcome = send(tmp_path, plain_options(port))

    assert outcome["result"] == "ok", outcome
    assert outcome["reason"] == "smtp_2xx"
    assert len(handler.received) == 1
    got = handler.received[0]
    assert got.mail_from == "alerts@example.org"
    assert got.rcpt_tos == ["ops@example.org", "night@example.org", "boss@example.org"]
    m = got.message
    assert m["From"].addresses[0].display_name == "tocsin alerts"
    assert m["From"].addresses[0].addr_spec == "alerts@example.org"
    assert [a.addr_spec for a in m["To"].addresses] == ["ops@example.org", "night@example.org"]
    assert m["To"].addresses[1].display_name == "\u00c9quipe Nuit"
    assert [a.addr_spec for a in m["Cc"].addresses] == ["boss@example.org"]
    # The common label job="nöde" is not ASCII, so the subject is made of encoded-words.
    assert "=?UTF-8?B?" in got.raw.decode("ascii").split("\r\n\r\n")[0]
    assert m["Subject"] == "[FIRING:1] DiskFull (n\u00f6de)"
    assert email.utils.parsedate_to_datetime(m["Date"]).utcoffset().total_seconds() == 0
    assert m["Message-ID"].startswith("<tocsin.7.")
    assert m["Message-ID"].endswith("@example.org>")
    assert m["MIME-Version"] == "1.0"
    assert m["X-Tocsin-Idempotency-Key"] == IDEMPOTENCY_KEY
    for name in ("From", "To", "Cc", "Subject", "Date", "Message-ID", "MIME-Version",
                 "X-Tocsin-Idempotency-Key"):
        assert len(m.get_all(name)) == 1, name
    assert m.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in m.iter_parts()] == ["text/plain", "text/html"]


def test_long_url_survives_strict_server(tmp_path, smtp_server):
    handler = Handler()
    port = smtp_server(handler)

    outcome = send(tmp_path, plain_options(port))

    assert outcome["result"] == "ok", outcome
    raw = handler.received[0].raw
    assert line_problem(raw) is None
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    text = body(handler.received[0].message, "plain")
    html = body(handler.received[0].message, "html")
    # The 1322-character URL is on one line of the decoded text, whole.
    assert "  dashboard: " + long_url() in text.splitlines()
    assert f'<a href="{long_url().replace("&", "&amp;")}">' in html
    assert "Disque plein \u00e0 95 %" in text
    # Lines that start with "." arrive whole: libesmtp dot-stuffs them and the server
    # removes the extra dot.
    assert "\n.hidden line starts with a dot<br>\n" in html


def test_strict_server_rejects_long_lines(smtp_server):
    """Checks the test servers themselves: they reject a message with "\n" line ends whose
    1322-character URL makes one line longer than 998 octets, as strict servers do."""
    import smtplib

    handler = Handler()
    port = smtp_server(handler)
    message = ("From: alerts@example.org\nTo: ops@example.org\nSubject: x\n\n"
               f"dashboard: {long_url()}\n")

    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPDataError) as rejected:
            client.sendmail("alerts@example.org", ["ops@example.org"], message)

    assert rejected.value.smtp_code in (500, 550)
    assert not handler.received


def test_dot_lines_arrive_intact(tmp_path, smtp_server):
    handler = Handler()
    port = smtp_server(handler)
    template = '"first\\n.\\n..two\\n.three\\nlast"'

    outcome = send(tmp_path, plain_options(port, f"text: {template}\n"))

    assert outcome["result"] == "ok", outcome
    # The CRLF before the closing boundary belongs to the boundary, not to the text.
    assert body(handler.received[0].message, "plain") == "first\n.\n..two\n.three\nlast"


def test_data_550_is_permanent_failure(tmp_path, smtp_server):
    handler = Handler(data_reply="550 5.7.1 Message rejected by policy")
    port = smtp_server(handler)

    outcome = send(tmp_path, plain_options(port))

    assert outcome["result"] == "permanent", outcome
    assert outcome["reason"] == "smtp_5xx"
    assert "550 5.7.1 Message rejected by policy" in outcome["detail"]


def test_data_451_is_retry(tmp_path, smtp_server):
    handler = Handler(data_reply="451 4.3.0 Try again later")
    port = smtp_server(handler)

    outcome = send(tmp_path, plain_options(port))

    assert outcome["result"] == "retry", outcome
    assert outcome["reason"] == "smtp_4xx"
    assert "451 4.3.0 Try again later" in outcome["detail"]


def test_some_recipients_rejected_is_partial(tmp_path, smtp_server):
    handler = Handler(rcpt_replies={"night@example.org": "550 5.1.1 No such user"})
    port = smtp_server(handler)

    outcome = send(tmp_path, plain_options(port))

    assert outcome["result"] == "ok", outcome
    assert outcome["reason"] == "smtp_partial"
    assert "<night@example.org> 550 5.1.1 No such user" in outcome["detail"]
    assert handler.received[0].rcpt_tos == ["ops@example.org", "boss@example.org"]


def test_all_recipients_rejected(tmp_path, smtp_server):
    every = ["ops@example.org", "night@example.org", "boss@example.org"]
    handler = Handler(rcpt_replies={a: "550 5.1.1 No such user" for a in every})
    port = smtp_server(handler)

    outcome = send(tmp_path, plain_options(port))

    assert outcome["result"] == "permanent", outcome
    assert outcome["reason"] == "smtp_5xx"
    assert not handler.received

    handler.rcpt_replies = {a: "450 4.2.1 Mailbox busy" for a in every}
    outcome = send(tmp_path, plain_options(port))

    assert outcome["result"] == "retry", outcome
    assert outcome["reason"] == "smtp_4xx"


def tls_options(port, certificate, host="localhost", extra=""):
    return (f"smarthost: {host}:{port}\n"
            f"ca_file: {certificate[0]}\n"
            "from: alerts@example.org\n"
            "to: ops@example.org\n" + extra)


def test_starttls_verified(tmp_path, smtp_server, certificate):
    handler = Handler()
    port = smtp_server(handler, starttls=True)

    outcome = send(tmp_path, tls_options(port, certificate))

    assert outcome["result"] == "ok", outcome
    assert handler.received[0].tls

    outcome = send(tmp_path, tls_options(port, certificate, host="127.0.0.1"))

    assert outcome["result"] == "ok", outcome
    assert len(handler.received) == 2


def test_starttls_untrusted_certificate(tmp_path, smtp_server, certificate):
    handler = Handler()
    port = smtp_server(handler, starttls=True)
    options = f"smarthost: localhost:{port}\nfrom: alerts@example.org\nto: ops@example.org\n"

    outcome = send(tmp_path, options)

    assert outcome["result"] == "retry", outcome
    assert outcome["reason"] == "tls"
    assert "certificate verification failed" in outcome["detail"]
    assert not handler.received


def test_starttls_required_but_not_offered(tmp_path, smtp_server, certificate):
    handler = Handler()
    port = smtp_server(handler)

    outcome = send(tmp_path, tls_options(port, certificate, host="127.0.0.1"))

    assert outcome["result"] == "retry", outcome
    assert outcome["reason"] == "tls"
    assert "does not offer STARTTLS" in outcome["detail"]
    assert not handler.received


def test_opportunistic_tls(tmp_path, smtp_server):
    tls_handler = Handler()
    tls_port = smtp_server(tls_handler, starttls=True)
    plain_handler = Handler()
    plain_port = smtp_server(plain_handler)
    options = "tls: opportunistic\nfrom: alerts@example.org\nto: ops@example.org\n"

    outcome = send(tmp_path, f"smarthost: localhost:{tls_port}\n" + options)

    assert outcome["result"] == "ok", outcome
    assert tls_handler.received[0].tls

    outcome = send(tmp_path, f"smarthost: 127.0.0.1:{plain_port}\n" + options)

    assert outcome["result"] == "ok", outcome
    assert not plain_handler.received[0].tls


def auth_server(smtp_server, **kwargs):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"tocsin" and auth_data.password == b"s3cret p\xc3\xa4ss"
        # handled=False: the server itself answers 235 or 535.
        return aiosmtpd_smtp.AuthResult(success=ok, handled=False, auth_data=auth_data)

    handler = Handler()
    port = smtp_server(handler, starttls=True, authenticator=authenticator,
                       auth_required=True, **kwargs)
    return handler, port


def password_file(tmp_path, password):
    path = tmp_path / "password"
    path.write_bytes(password + b"\n")
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return path


def test_auth_plain_and_login(tmp_path, smtp_server, certificate):
    secret = password_file(tmp_path, b"s3cret p\xc3\xa4ss")
    auth = f"auth:\n  username: tocsin\n  password_file: {secret}\n"

    handler, port = auth_server(smtp_server)
    outcome = send(tmp_path, tls_options(port, certificate, extra=auth))

    assert outcome["result"] == "ok", outcome
    assert handler.received[0].login == "tocsin"

    handler, port = auth_server(smtp_server, auth_exclude_mechanism=["PLAIN"])
    outcome = send(tmp_path, tls_options(port, certificate, extra=auth))

    assert outcome["result"] == "ok", outcome
    assert handler.received[0].login == "tocsin"


def test_auth_wrong_password(tmp_path, smtp_server, certificate):
    secret = password_file(tmp_path, b"wrong")
    handler, port = auth_server(smtp_server)

    outcome = send(tmp_path, tls_options(
        port, certificate, extra=f"auth:\n  username: tocsin\n  password_file: {secret}\n"))

    assert outcome["result"] == "retry", outcome
    assert outcome["reason"] == "auth"
    assert "authentication as tocsin failed: 535" in outcome["detail"]
    assert "wrong" not in outcome["detail"]
    assert not handler.received


def test_connection_refused(tmp_path):
    port = free_port()

    outcome = send(tmp_path, plain_options(port))

    assert outcome["result"] == "retry", outcome
    assert outcome["reason"] == "refused"


def test_silent_server_times_out(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        started = time.monotonic()

        outcome = send(tmp_path, plain_options(port), timeout_ms=1000)

        elapsed = time.monotonic() - started
    assert outcome["result"] == "retry", outcome
    assert outcome["reason"] == "timeout"
    assert "within 1000 ms" in outcome["detail"]
    assert elapsed < 10


def test_config_errors_have_positions(tmp_path):
    errors = check_config(tmp_path, (
        "smarthost: '[::1]:25'\n"
        "tls: implicit\n"
        "from: not-an-address\n"
        "to: [ops@example.org, 'evil@example.org>']\n"
        "subject: '{{ if }}'\n"
        "timeout: 0s\n"
        "colour: red\n"))

    lines = errors.strip().splitlines()
    assert any(":1:" in line and "smarthost" in line and "IPv6" in line for line in lines), errors
    assert any(":2:" in line and "tls" in line and "starttls" in line for line in lines), errors
    assert any(":3:" in line and "from" in line and "@" in line for line in lines), errors
    assert any(":4:" in line and "to" in line for line in lines), errors
    assert any(":5:" in line and "subject" in line for line in lines), errors
    assert any(":6:" in line and "timeout" in line for line in lines), errors
    assert any(":7:" in line and "colour" in line for line in lines), errors


def test_config_auth_needs_starttls_and_private_file(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("pw\n")
    secret.chmod(0o644)

    errors = check_config(tmp_path, (
        "smarthost: 127.0.0.1:25\n"
        "tls: none\n"
        "from: alerts@example.org\n"
        "to: ops@example.org\n"
        f"auth:\n  username: tocsin\n  password_file: {secret}\n"))

    assert "accessible by others" in errors, errors

    secret.chmod(0o600)
    errors = check_config(tmp_path, (
        "smarthost: 127.0.0.1:25\n"
        "tls: none\n"
        "from: alerts@example.org\n"
        "to: ops@example.org\n"
        f"auth:\n  username: tocsin\n  password_file: {secret}\n"))

    assert "needs tls: starttls" in errors, errors
