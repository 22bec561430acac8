"""Servers and certificates for the http probe's integration tests: a Python HTTP server
with endpoints for status codes, bodies, redirects, compression and slow answers, TLS
variants of it with certificates made by the openssl CLI at test time, and nginx for
HTTP/2. Everything listens on loopback and is stopped by the test that started it."""

import gzip
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import wait_for

GZIP_TEXT = b"<!DOCTYPE html>\n<p>Status: OK</p>\n"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_body(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_chunked(self, chunks, headers=()):
        self.send_response(200)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for c in chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
        self.wfile.write(b"0\r\n\r\n")

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(length)
        self.send_body(200, b"method=" + self.command.encode() + b" body=" + data)

    def do_GET(self):  # noqa: C901 - one branch per endpoint reads best here
        path = self.path.split("?")[0]
        self.server.requests.append((self.command, self.path, dict(self.headers)))
        if path.startswith("/status/"):
            self.send_body(int(path.split("/")[2]), b"status page\n")
        elif path == "/gzip":
            self.send_body(200, gzip.compress(GZIP_TEXT),
                           [("Content-Type", "text/html"), ("Content-Encoding", "gzip")])
        elif path == "/gzip-chunked":
            z = gzip.compress(GZIP_TEXT)
            self.send_chunked([z[:10], z[10:]], [("Content-Encoding", "gzip")])
        elif path == "/fake-gzip":
            self.send_body(200, GZIP_TEXT, [("Content-Encoding", "gzip")])
        elif path == "/chunked":
            self.send_chunked([b"first part, ", b"second part: chunked OK\n"])
        elif path.startswith("/redirect/"):
            n = int(path.split("/")[2])
            target = "/status/200" if n <= 1 else f"/redirect/{n - 1}"
            self.send_body(302, b"", [("Location", target)])
        elif path == "/loop":
            self.send_body(302, b"", [("Location", "/loop")])
        elif path == "/slow":
            time.sleep(4)
            self.send_body(200, b"late\n")
        elif path == "/big":
            self.send_body(200, b"x" * (2 * 1024 * 1024))
        elif path == "/binary":
            self.send_body(200, b"\x00\x01prefix\x00needle-after-nul\n")
        elif path == "/auth":
            got = self.headers.get("Authorization", "")
            if got in self.server.accepted_auth:
                self.send_body(200, b"welcome\n")
            else:
                self.send_body(401, b"who are you\n", [("WWW-Authenticate", 'Basic realm="t"')])
        elif path == "/headers":
            text = "".join(f"{k}: {v}\n" for k, v in self.headers.items())
            self.send_body(200, text.encode())
        else:
            self.send_body(200, b"<html>hello</html>\n")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, family, address, tls_context=None):
        self.address_family = family
        super().__init__(address, Handler)
        self.requests = []
        self.accepted_auth = set()
        if tls_context is not None:
            self.socket = tls_context.wrap_socket(self.socket, server_side=True)


class RunningServer:
    """Serves in a thread until stop()."""

    def __init__(self, host="127.0.0.1", tls=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        context = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls[0], tls[1])
        self.server = Server(family, (host, 0), context)
        self.port = self.server.server_address[1]
        self.host = host
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/", scheme=None):
        scheme = scheme or ("https" if isinstance(self.server.socket, ssl.SSLSocket) else "http")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Certificates:
    """Makes a test CA and server certificates with the openssl CLI in `workdir`."""

    def __init__(self, workdir):
        if shutil.which("openssl") is None:
            pytest.skip("the openssl command is not installed")
        self.dir = os.path.join(workdir, "certs")
        os.makedirs(self.dir, exist_ok=True)
        d = self.dir
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
                "-out", "ca.pem", "-days", "2", "-subj", "/CN=tocsin test CA", cwd=d)
        self.ca = os.path.join(d, "ca.pem")

    def path(self, name):
        return os.path.join(self.dir, name)

    def signed(self, name, san):
        """A leaf for `san` ("DNS:localhost,IP:127.0.0.1") signed by the test CA."""
        d = self.dir
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
                "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", ext, cwd=d)
        return self.path(name + ".pem"), self.path(name + ".key")

    def self_signed(self, name, cn, startdate=None, enddate=None):
        """A self-signed certificate; with dates (YYYYMMDDHHMMSSZ) it is made with
        `openssl ca -selfsign`, the way to set both dates with OpenSSL 3.0."""
        d = self.dir
        key, pem = name + ".key", name + ".pem"
        if startdate is None:
            openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", pem, "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", f"subjectAltName=DNS:{cn}", cwd=d)
            return self.path(pem), self.path(key)
        db = self.path(name + "-db")
        os.makedirs(db, exist_ok=True)
        open(os.path.join(db, "index.txt"), "w").close()
        with open(os.path.join(db, "serial"), "w") as f:
            f.write("1000\n")
        conf = self.path(name + ".cnf")
        with open(conf, "w") as f:
            f.write(f"""[ca]
default_ca = test
[test]
database = {db}/index.txt
serial = {db}/serial
new_certs_dir = {db}
default_md = sha256
policy = anything
copy_extensions = none
x509_extensions = leaf
[anything]
commonName = supplied
[leaf]
subjectAltName = DNS:{cn}
basicConstraints = critical,CA:TRUE
keyUsage = digitalSignature,keyEncipherment,keyCertSign
""")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", name + ".csr",
                "-subj", "/CN=" + cn, cwd=d)
        openssl("ca", "-batch", "-config", conf, "-selfsign", "-keyfile", key,
                "-in", name + ".csr", "-out", pem, "-notext",
                "-startdate", startdate, "-enddate", enddate, cwd=d)
        return self.path(pem), self.path(key)


class Nginx:
    """nginx (Debian nginx-light) serving TLS with HTTP/2 on a free loopback port."""

    def __init__(self, workdir, cert, key):
        self.binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.access(self.binary, os.X_OK):
            pytest.skip("nginx is not installed (Debian package nginx-light)")
        self.dir = os.path.join(workdir, "nginx")
        os.makedirs(self.dir, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.pidfile = os.path.join(self.dir, "nginx.pid")
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""daemon off;
master_process off;
worker_processes 1;
pid {self.pidfile};
error_log {self.dir}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    server {{
        listen 127.0.0.1:{self.port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{ return 200 "h2 ok\\n"; }}
    }}
}}
""")
        self.proc = subprocess.Popen([self.binary, "-c", conf, "-p", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(self.listening, timeout=10, what="nginx listening")

    def listening(self):
        if self.proc.poll() is not None:
            raise AssertionError("nginx exited: " + self.proc.stderr.read().decode())
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
