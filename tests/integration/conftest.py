"""Shared fixtures for the integration tests: they start the real tocsind (and, where a
test needs them, a real rrdcached and a real Prometheus) on loopback, with temporary
configs and data directories, and poll for effects instead of sleeping."""

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(TOP, "tests", "fixtures")


def tocsind_path():
    path = os.environ.get("TOCSIND", os.path.join(TOP, "build", "ci-normal", "tocsind"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"tocsind binary not found at {path}; set TOCSIND or build first")
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=30.0, interval=0.1, what="condition"):
    """Polls predicate() until it returns a true value; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except AssertionError:
            raise
        except Exception as e:  # noqa: BLE001 - the last error is reported on timeout
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last error: {last_error}")


def http_get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers, r.read().decode("utf-8")


class Daemon:
    """One tocsind process with its own config file, data dir and log file."""

    def __init__(self, workdir, config_text, extra_args=(), env=None, log_level="debug"):
        self.workdir = workdir
        self.port = free_port()
        self.data_dir = os.path.join(workdir, "data")
        self.config_path = os.path.join(workdir, "tocsin.yml")
        self.log_path = os.path.join(workdir, "tocsind.log")
        self.write_config(config_text)
        self.extra_args = list(extra_args)
        if log_level is not None:
            self.extra_args += ["--log-level", log_level]
        self.env = dict(os.environ, **(env or {}))
        self.wrapper = []  # a command that runs tocsind, such as setpriv with its options
        self.proc = None
        self.log = None

    def write_config(self, text):
        with open(self.config_path, "w") as f:
            f.write(text)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait=True):
        """Starts tocsind. With `wait`, returns once /healthz replies."""
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [*self.wrapper, tocsind_path(), "--config", self.config_path,
             "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
             *self.extra_args],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            wait_for(self.healthy, timeout=20, what="tocsind /healthz")
        return self

    def healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"tocsind exited with {self.proc.returncode}:\n{self.log_text()}")
        try:
            return http_get(self.url + "/healthz", timeout=1)[0] == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def metrics(self):
        return http_get(self.url + "/metrics")[2]

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("tocsind did not stop within %ss of SIGTERM" % timeout)
        finally:
            self.log.close()


@pytest.fixture
def daemon_factory(tmp_path):
    started = []

    def make(config_text, extra_args=(), start=True):
        d = Daemon(str(tmp_path), config_text, extra_args)
        started.append(d)
        return d.start() if start else d

    yield make
    for d in started:
        if d.proc is not None and d.proc.poll() is None:
            d.stop()
        # An ASan build reports leaks and memory errors on stderr at exit.
        if d.proc is not None and os.path.exists(d.log_path):
            text = d.log_text()
            assert "ERROR: AddressSanitizer" not in text, text[-4000:]
            assert "ERROR: LeakSanitizer" not in text, text[-4000:]
            assert "runtime error:" not in text, text[-4000:]


class Rrdcached:
    """A real rrdcached on a unix socket in the test's directory, stopped by PID."""

    def __init__(self, workdir, tcp=False):
        self.binary = shutil.which("rrdcached") or "/usr/bin/rrdcached"
        if not os.access(self.binary, os.X_OK):
            pytest.skip("rrdcached is not installed (Debian package rrdcached)")
        self.dir = os.path.join(workdir, "rrdcached")
        os.makedirs(self.dir, exist_ok=True)
        self.socket = os.path.join(self.dir, "rrdcached.sock")
        self.pidfile = os.path.join(self.dir, "rrdcached.pid")
        if tcp:
            # Over TCP, clients name files relative to the base directory (-B), and -R lets
            # CREATE make the metric directories below it.
            self.base = os.path.join(self.dir, "base")
            os.makedirs(self.base, exist_ok=True)
            self.port = free_port()
            self.address = f"127.0.0.1:{self.port}"
            listen = ["-l", self.address, "-B", "-R"]
        else:
            self.base = self.dir
            self.address = f"unix:{self.socket}"
            listen = ["-l", self.address]
        self.proc = subprocess.Popen(
            [self.binary, "-g", *listen, "-p", self.pidfile,
             "-w", "3600", "-f", "7200", "-b", self.base],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if tcp:
            wait_for(lambda: socket.create_connection(("127.0.0.1", self.port), timeout=1).close() or True,
                     timeout=10, what="rrdcached TCP port")
        else:
            wait_for(lambda: os.path.exists(self.socket), timeout=10, what="rrdcached socket")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def rrdcached(tmp_path):
    r = Rrdcached(str(tmp_path))
    yield r
    r.stop()


@pytest.fixture
def rrdcached_tcp(tmp_path):
    r = Rrdcached(str(tmp_path), tcp=True)
    yield r
    r.stop()


def rrdtool(*args, daemon=None):
    cmd = ["rrdtool", args[0]]
    if daemon is not None:
        cmd += ["--daemon", daemon]
    cmd += list(args[1:])
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
