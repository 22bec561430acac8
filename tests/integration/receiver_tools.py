"""Helpers for the receivers' integration tests: notifications in the outbox's JSON form,
runs of tests/tools/send_notification (which sends one notification through one receiver
type on a real event loop and prints each outcome as a JSON line), and an HTTP server on
127.0.0.1 that records requests and replies as a script tells it."""

import collections
import hashlib
import http.server
import json
import os
import socket
import ssl
import stat
import struct
import subprocess
import threading
import time

import pytest

from conftest import tocsind_path


def tool_path():
    path = os.path.join(os.path.dirname(tocsind_path()), "tests", "tools", "send_notification")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built; run make in the build directory of {tocsind_path()}")
    return path


def now_ms():
    return int(time.time() * 1000)


def alert(instance, firing=True, starts_at_ms=None, ends_at_ms=0, generator_url=None):
    """One DiskFull alert of `instance`, in the stored form of notification.h."""
    starts = starts_at_ms if starts_at_ms is not None else now_ms() - 600_000
    return {
        "labels": {"alertname": "DiskFull", "instance": instance, "severity": "critical"},
        "annotations": {"summary": f"Disk of {instance} is full"},
        "firing": firing,
        "starts_at_ms": starts,
        "ends_at_ms": 0 if firing else ends_at_ms,
        "condition_at_ms": starts,
        "fingerprint": hashlib.sha256(instance.encode()).hexdigest()[:16],
        "generator_url": generator_url,
    }


def notification(alerts, sequence=1, group_key='{}:{alertname="DiskFull"}', receiver="ops"):
    return {
        "receiver": receiver,
        "group_key": group_key,
        "sequence": sequence,
        "idempotency_key": f"{group_key}/{sequence}",
        "group_labels": {"alertname": "DiskFull"},
        "firing": any(a["firing"] for a in alerts),
        "alerts": alerts,
        "truncated_alerts": 0,
        "external_url": "http://127.0.0.1:9517",
        "created_ms": now_ms(),
    }


def write_secret(path, text):
    """A secret file as secret_read_file() accepts it: readable by its owner only."""
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return str(path)


class Result:
    def __init__(self, proc, elapsed):
        self.returncode = proc.returncode
        self.stderr = proc.stderr
        self.elapsed = elapsed
        self.outcomes = [json.loads(line) for line in proc.stdout.splitlines() if line]


def send(tmp_path, receiver_type, options_yaml, note, repeat=1, timeout_ms=10000,
         cancel_after_ms=0, name="run"):
    """Runs the tool once; returns its outcomes, stderr, exit status and duration."""
    options = tmp_path / f"{name}-options.yml"
    options.write_text(options_yaml)
    note_path = tmp_path / f"{name}-notification.json"
    note_path.write_text(json.dumps(note))
    args = [tool_path(), "--type", receiver_type, "--options", str(options),
            "--notification", str(note_path), "--timeout-ms", str(timeout_ms),
            "--repeat", str(repeat)]
    if cancel_after_ms:
        args += ["--cancel-after-ms", str(cancel_after_ms)]
    started = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    result = Result(proc, time.monotonic() - started)
    # An ASan build reports leaks and memory errors on stderr at exit.
    assert "ERROR: AddressSanitizer" not in result.stderr, result.stderr
    assert "ERROR: LeakSanitizer" not in result.stderr, result.stderr
    assert "runtime error:" not in result.stderr, result.stderr
    return result


class ScriptedHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        srv = self.server
        with srv.lock:
            srv.requests.append({"path": self.path, "time": time.time(),
                                 "headers": {k.lower(): v for k, v in self.headers.items()},
                                 "body": body})
            action = srv.actions.popleft() if srv.actions else ("status", 200, {}, b"ok")
        if action[0] == "hang":
            srv.release.wait(action[1])
            self.close_connection = True
            return
        if action[0] == "reset":
            # SO_LINGER with a zero timeout makes close() send a RST instead of a FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        _, status, headers, payload = action
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class ScriptedServer(http.server.ThreadingHTTPServer):
    """Replies to each POST with the next scripted action, then with 200 once the script
    is used up: status(code, headers, body), ("hang", seconds) or ("reset",). Every request is
    recorded with its path, lower-cased headers and body."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls=None):
        super().__init__(("127.0.0.1", 0), ScriptedHandler)
        self.requests = []
        self.actions = collections.deque()
        self.lock = threading.Lock()
        self.release = threading.Event()
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.socket = context.wrap_socket(self.socket, server_side=True)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def handle_error(self, request, client_address):
        pass  # resets and failed handshakes are the point of some tests

    def url(self, path="/hook"):
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}{path}"

    def script(self, *actions):
        with self.lock:
            self.actions.extend(actions)

    def stop(self):
        self.release.set()
        self.shutdown()
        self.server_close()


def status(code, headers=None, body=b""):
    """A scripted reply with this status code, headers (a dict) and body (bytes)."""
    return ("status", code, headers or {}, body)
