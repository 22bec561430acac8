"""tocsind as a system service: `make install`, the systemd unit, the man pages, the
sd_notify protocol, the switch to an unprivileged user, the PID file and the log targets.

PID 1 is not systemd on the test machines, so no real service manager runs the unit.
`systemd-analyze verify` checks the unit, and a datagram socket that the test binds and
names in NOTIFY_SOCKET, as systemd does, receives the notify messages."""

import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import TOP, Daemon, free_port, http_get, tocsind_path, wait_for
from proctree import write_proc_tree

MAN_PAGES = {"tocsind": "man/tocsind.8", "tocsinctl": "man/tocsinctl.1"}
CAP_NET_RAW = 13


def build_dir():
    return os.path.dirname(tocsind_path())


def makefile_variable(name):
    with open(os.path.join(build_dir(), "Makefile")) as f:
        for line in f:
            m = re.match(rf"^{name} = (.*)$", line)
            if m:
                return m.group(1).strip()
    raise AssertionError(f"{name} not found in {build_dir()}/Makefile")


def host_config(root, extra=""):
    return f"""
interval: 1s
timeout: 900ms
retention: [1s:1h]
{extra}
probes:
  - name: host
    type: host
    root: {root}
"""


class Service(Daemon):
    """A tocsind started with a given environment and options, at its default log level.
    start() returns at once, so that tests can watch how it starts."""

    def __init__(self, workdir, config_text, args=(), env=None):
        super().__init__(workdir, config_text, args, env=env, log_level=None)
        os.chmod(self.config_path, 0o644)

    def start(self):
        return super().start(wait=False)

    def run(self, timeout=20):
        """Runs to the end; returns the exit status."""
        self.start()
        return self.proc.wait(timeout=timeout)

    def wait_ready(self):
        wait_for(self.healthy, timeout=20, what="tocsind /healthz")

    def stop(self, timeout=40):
        return super().stop(timeout=timeout)

    def check_sanitizers(self):
        text = self.log_text()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            assert marker not in text, text[-4000:]


@pytest.fixture
def services():
    started = []
    yield started
    for s in started:
        s.stop()
        s.check_sanitizers()


class NotifySocket:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.messages = []

    def receive(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536).decode()
        except socket.timeout:
            return None
        self.messages.append(data)
        return data

    def wait_for(self, assignment, timeout=20.0):
        """Returns the messages received up to and including the one that has assignment."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            data = self.receive(max(0.05, deadline - time.monotonic()))
            if data is None:
                break
            seen.append(data)
            if assignment in data.split("\n"):
                return seen
        raise AssertionError(f"no {assignment} within {timeout}s; received {seen}")

    def close(self):
        self.sock.close()


# make install

def test_install_layout(tmp_path):
    dest = str(tmp_path / "dest")
    out = subprocess.run(["make", "-s", "-C", build_dir(), "install", f"DESTDIR={dest}"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    prefix = makefile_variable("prefix")
    root = dest + prefix
    expected = [
        "sbin/tocsind", "bin/tocsinctl", "etc/tocsin/tocsin.yml",
        "share/doc/tocsin/rules/example.yml", "share/doc/tocsin/examples/alerting.yml",
        "share/doc/tocsin/examples/rules/service.yml",
        "share/man/man8/tocsind.8", "share/man/man1/tocsinctl.1", "share/man/man5/tocsin.yml.5",
        "lib/systemd/system/tocsind.service", "lib/sysusers.d/tocsin.conf",
    ]
    for path in expected:
        assert os.path.isfile(os.path.join(root, path)), f"{path} not installed under {root}"
    assert os.access(os.path.join(root, "sbin/tocsind"), os.X_OK)

    with open(os.path.join(root, "lib/systemd/system/tocsind.service")) as f:
        unit = f.read()
    assert "@" + "sbindir@" not in unit
    assert f"ExecStart={prefix}/sbin/tocsind --config {prefix}/etc/tocsin/tocsin.yml" in unit

    config = os.path.join(root, "etc/tocsin/tocsin.yml")
    check = subprocess.run([os.path.join(root, "sbin/tocsind"), "--check-config", "--config",
                            config], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr

    # A second install keeps an edited config.
    with open(config, "a") as f:
        f.write("# edited\n")
    out = subprocess.run(["make", "-s", "-C", build_dir(), "install-data", f"DESTDIR={dest}"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    with open(config) as f:
        assert f.read().endswith("# edited\n")


def test_unit_verifies(tmp_path):
    # No service manager runs here (PID 1 is not systemd): `systemd-analyze verify` parses
    # the unit, reports unknown or invalid directives, and checks that the ExecStart
    # binaries exist. They exist only under DESTDIR, so a copy of the unit names them there
    # (verify --root would look for systemd's own units under DESTDIR too).
    analyze = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
    if not os.access(analyze, os.X_OK):
        pytest.skip("systemd-analyze is missing (Debian package systemd)")
    dest = str(tmp_path / "dest")
    out = subprocess.run(["make", "-s", "-C", build_dir(), "install", f"DESTDIR={dest}"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    prefix = makefile_variable("prefix")
    with open(os.path.join(dest + prefix, "lib/systemd/system/tocsind.service")) as f:
        text = f.read()
    unit = tmp_path / "tocsind.service"
    unit.write_text(text.replace(f"={prefix}/", f"={dest}{prefix}/")
                    .replace(f" {prefix}/", f" {dest}{prefix}/"))
    verify = subprocess.run([analyze, "verify", "--man=no", str(unit)],
                            capture_output=True, text=True, timeout=60)
    problems = [line for line in (verify.stdout + verify.stderr).splitlines() if line.strip()]
    assert not problems, "\n".join(problems)
    assert verify.returncode == 0


# Man pages

def man_text(page):
    with open(os.path.join(TOP, page)) as f:
        return f.read().replace("\\-", "-")


@pytest.mark.parametrize("page", ["man/tocsind.8", "man/tocsinctl.1", "man/tocsin.yml.5"])
def test_man_page_renders(page):
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff is missing (Debian package groff-base)")
    out = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", os.path.join(TOP, page)],
                         capture_output=True, text=True, timeout=30)
    assert out.stderr == ""
    assert out.returncode == 0


@pytest.mark.parametrize("program", ["tocsind", "tocsinctl"])
def test_man_page_lists_every_option(program):
    binary = os.path.join(build_dir(), program)
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", out.stdout))
    assert "--help" in options
    text = man_text(MAN_PAGES[program])
    missing = sorted(o for o in options if not re.search(re.escape(o) + r"(?![a-z0-9-])", text))
    assert not missing, f"{MAN_PAGES[program]} does not describe {missing}"


# sd_notify

def test_notify_ready_watchdog_reload_stop(tmp_path, services):
    root = write_proc_tree(str(tmp_path / "root"))
    notify = NotifySocket(str(tmp_path / "notify.sock"))
    try:
        s = Service(str(tmp_path), host_config(root),
                    env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
                         "WATCHDOG_USEC": "2000000"}).start()
        services.append(s)
        notify.wait_for("READY=1")
        # READY=1 comes after the bind, so the port accepts requests at once.
        assert http_get(f"http://127.0.0.1:{s.port}/healthz", timeout=2)[0] == 200
        assert notify.receive(timeout=5) == \
            f"STATUS=1 probes, 0 rules, listening on 127.0.0.1 port {s.port}"

        # Pings every half of WATCHDOG_USEC: two more within 2.5 s.
        start = time.monotonic()
        notify.wait_for("WATCHDOG=1", timeout=2.5)
        notify.wait_for("WATCHDOG=1", timeout=2.5)
        assert time.monotonic() - start < 2.5

        s.proc.send_signal(signal.SIGHUP)
        seen = notify.wait_for("READY=1")
        reloading = [i for i, m in enumerate(seen) if "RELOADING=1" in m.split("\n")]
        assert reloading, f"no RELOADING=1 before READY=1: {seen}"
        assert re.search(r"^MONOTONIC_USEC=\d+$", seen[reloading[0]], re.M), seen

        s.proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1")
        assert s.proc.wait(timeout=40) == 0
    finally:
        notify.close()


def test_notify_abstract_socket(tmp_path, services):
    root = write_proc_tree(str(tmp_path / "root"))
    name = f"tocsin-test-{os.getpid()}-{free_port()}"
    notify = NotifySocket("\0" + name)
    try:
        s = Service(str(tmp_path), host_config(root), env={"NOTIFY_SOCKET": "@" + name}).start()
        services.append(s)
        notify.wait_for("READY=1")
        assert s.stop() == 0
        notify.wait_for("STOPPING=1", timeout=5)
        assert not any("WATCHDOG=1" in m for m in notify.messages)
    finally:
        notify.close()


# Privilege drop

@pytest.fixture
def shared_tmp():
    """A directory that an unprivileged user can reach (pytest's tmp_path is root-only).
    Request it before `services`, so that it is removed after the daemons stop."""
    path = tempfile.mkdtemp(prefix="tocsin-service-", dir="/tmp")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def proc_ids(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split()[1:]
    raise AssertionError(f"no {field} line in /proc/{pid}/status")


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_user_switch(shared_tmp, services):
    nobody = pwd.getpwnam("nobody")
    root = write_proc_tree(os.path.join(shared_tmp, "root"))
    extra = "  - {name: loopback ping, type: icmp, target: 127.0.0.1, count: 1}"
    s = Service(shared_tmp, host_config(root) + extra + "\n", args=["--user", "nobody"])
    # A file a root-run daemon left behind is given to the user too.
    os.makedirs(os.path.join(s.data_dir, "state"))
    with open(os.path.join(s.data_dir, "state", "left-by-root"), "w") as f:
        f.write("x")
    s.start()
    services.append(s)
    s.wait_ready()
    uid = proc_ids(s.proc.pid, "Uid")
    gid = proc_ids(s.proc.pid, "Gid")
    assert uid == [str(nobody.pw_uid)] * 4, uid
    assert gid == [str(nobody.pw_gid)] * 4, gid
    groups = proc_ids(s.proc.pid, "Groups")
    assert "0" not in groups, groups
    cap_eff = int(proc_ids(s.proc.pid, "CapEff")[0], 16)
    assert cap_eff == 1 << CAP_NET_RAW, hex(cap_eff)
    assert "running as user nobody" in s.log_text()

    # Archives and the state database belong to the user, and the icmp probe works.
    state_db = os.path.join(s.data_dir, "state", "state.db")
    wait_for(lambda: os.path.exists(state_db), timeout=10, what="state.db")
    wait_for(lambda: any(f.endswith(".rrd") for _, _, fs in os.walk(s.data_dir) for f in fs),
             timeout=20, what="an archive file")
    assert os.stat(s.data_dir).st_uid == nobody.pw_uid
    for dirpath, dirnames, filenames in os.walk(s.data_dir):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            assert os.lstat(path).st_uid == nobody.pw_uid, path
    wait_for(lambda: re.search(r'^probe_success\{[^}]*probe="loopback ping"[^}]*\} 1$',
                               http_get(f"http://127.0.0.1:{s.port}/metrics")[2], re.M),
             timeout=20, what="probe_success 1 of the icmp probe")
    assert s.stop() == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_user_switch_drops_all_capabilities_without_icmp(shared_tmp, services):
    root = write_proc_tree(os.path.join(shared_tmp, "root"))
    s = Service(shared_tmp, host_config(root, extra="user: nobody")).start()
    services.append(s)
    s.wait_ready()
    assert int(proc_ids(s.proc.pid, "CapEff")[0], 16) == 0
    assert int(proc_ids(s.proc.pid, "CapPrm")[0], 16) == 0
    assert proc_ids(s.proc.pid, "Uid")[0] == str(pwd.getpwnam("nobody").pw_uid)
    assert s.stop() == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_user_switch_hands_over_remote_write_queue(shared_tmp, services):
    """A remote-write queue outside the data directory is created by root at start and
    must belong to the user afterwards, or its next segment file cannot be created."""
    nobody = pwd.getpwnam("nobody")
    root = write_proc_tree(os.path.join(shared_tmp, "root"))
    queue = os.path.join(shared_tmp, "queue")
    # Nothing listens on the receiver's port, so the queue only grows; at 64 KiB a
    # segment is closed every 16 KiB.
    extra = (f"remote_write:\n  - url: http://127.0.0.1:{free_port()}/api/v1/write\n"
             f"    queue_dir: {queue}\n    queue_max_size: 64KiB\n    flush_interval: 1s")
    s = Service(shared_tmp, host_config(root, extra=extra), args=["--user", "nobody"]).start()
    services.append(s)
    s.wait_ready()

    def segments():
        return [f for f in os.listdir(queue) if f.endswith(".seg")]

    wait_for(lambda: len(segments()) >= 2, timeout=30, what="a second queue segment")
    assert os.stat(queue).st_uid == nobody.pw_uid
    for name in os.listdir(queue):
        assert os.lstat(os.path.join(queue, name)).st_uid == nobody.pw_uid, name
    assert "cannot create queue segment" not in s.log_text()
    assert s.stop() == 0


def test_user_errors(tmp_path, shared_tmp):
    root = write_proc_tree(str(tmp_path / "root"))
    s = Service(str(tmp_path), host_config(root), args=["--user", "no-such-user-tocsin"])
    assert s.run() == 1
    assert 'user "no-such-user-tocsin" does not exist; create it with `useradd' in s.log_text()

    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        return
    # Started as the user nobody, tocsind cannot switch to another user, and says why.
    root = write_proc_tree(os.path.join(shared_tmp, "root"))
    s = Service(shared_tmp, host_config(root), args=["--user", "daemon"])
    s.wrapper = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    assert s.run() == 1
    assert 'only root can switch to user "daemon"' in s.log_text(), s.log_text()


def test_root_without_user_warns(tmp_path, services):
    if os.geteuid() != 0:
        pytest.skip("the warning is for root")
    root = write_proc_tree(str(tmp_path / "root"))
    s = Service(str(tmp_path), host_config(root)).start()
    services.append(s)
    s.wait_ready()
    assert "running as root; --user NAME" in s.log_text()


# PID file

def test_pid_file(tmp_path, services):
    root = write_proc_tree(str(tmp_path / "root"))
    pid_file = str(tmp_path / "tocsind.pid")

    # A stale file (its process is gone) is replaced.
    exited = subprocess.Popen(["true"])
    exited.wait()
    with open(pid_file, "w") as f:
        f.write(f"{exited.pid}\n")
    s = Service(str(tmp_path), host_config(root), args=["--pid-file", pid_file]).start()
    services.append(s)
    s.wait_ready()
    with open(pid_file) as f:
        assert f.read() == f"{s.proc.pid}\n"
    assert f"replacing {pid_file}, left by process {exited.pid}" in s.log_text()

    # A second daemon with the same file is refused while the first runs.
    os.makedirs(tmp_path / "second")
    second = Service(str(tmp_path / "second"), host_config(root), args=["--pid-file", pid_file])
    assert second.run() == 1
    assert f"names process {s.proc.pid}, which is running" in second.log_text()
    with open(pid_file) as f:
        assert f.read() == f"{s.proc.pid}\n"

    assert s.stop() == 0
    assert not os.path.exists(pid_file)


# Log targets

def journal_fields(datagram):
    fields = {}
    for line in datagram.decode().split("\n"):
        if line:
            key, _, value = line.partition("=")
            fields[key] = value
    return fields


def test_journal_target(tmp_path, services):
    root = write_proc_tree(str(tmp_path / "root"))
    path = str(tmp_path / "journal.sock")
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(path)
    journal.settimeout(20)
    try:
        s = Service(str(tmp_path), host_config(root),
                    args=["--log-target", "journal", "--log-level", "debug"],
                    env={"TOCSIN_JOURNAL_SOCKET": path}).start()
        services.append(s)
        entries = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            entries.append(journal_fields(journal.recv(65536)))
            if entries[-1].get("MESSAGE", "").startswith("level=notice module=daemon "
                                                          "msg=\"started:"):
                break
        started = entries[-1]
        assert "started:" in started["MESSAGE"], entries
        assert started["PRIORITY"] == "5"
        assert started["SYSLOG_IDENTIFIER"] == "tocsind"
        assert started["TOCSIN_MODULE"] == "daemon"
        assert started["MESSAGE"].startswith("level=notice module=daemon msg=")
        # Lines about a probe carry its name as a field of its own.
        def probe_entry():
            fields = journal_fields(journal.recv(65536))
            return fields if fields.get("TOCSIN_PROBE") == "host" else None
        wait_for(probe_entry, timeout=20, interval=0, what="an entry with TOCSIN_PROBE=host")
        s.stop()
        # Nothing but the start-up summary on stdout and stderr.
        assert "level=" not in s.log_text()
    finally:
        journal.close()


def test_journal_target_falls_back_to_stderr(tmp_path, services):
    root = write_proc_tree(str(tmp_path / "root"))
    missing = str(tmp_path / "no-journal.sock")
    s = Service(str(tmp_path), host_config(root), args=["--log-target", "journal"],
                env={"TOCSIN_JOURNAL_SOCKET": missing}).start()
    services.append(s)
    s.wait_ready()
    text = s.log_text()
    assert f"cannot connect to the journal at {missing}; logging to stderr instead" in text
    assert "level=notice module=daemon msg=\"started:" in text


def test_syslog_and_invalid_targets(tmp_path, services):
    root = write_proc_tree(str(tmp_path / "root"))
    s = Service(str(tmp_path), host_config(root), args=["--log-target", "kafka"])
    assert s.run() == 2
    assert '--log-target: "kafka" is not a log target (accepted: stderr, syslog, journal)' \
        in s.log_text()

    # Whether a syslog daemon listens is up to the machine: the lines leave stderr.
    os.makedirs(tmp_path / "syslog")
    s = Service(str(tmp_path / "syslog"), host_config(root), args=["--log-target", "syslog"])
    s.start()
    services.append(s)
    s.wait_ready()
    assert s.stop() == 0
    assert "level=" not in s.log_text()
