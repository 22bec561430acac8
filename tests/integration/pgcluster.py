"""Throwaway PostgreSQL 15 servers for the postgres probe's tests and benchmark. The
primary is made with initdb and the streaming standbys with pg_basebackup -R, in a
temporary directory owned by the postgres OS user. They listen on 127.0.0.1 only, with
their unix sockets in that directory. The system cluster is never touched."""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

BIN = "/usr/lib/postgresql/15/bin"
PROBE_USER = "tocsin_probe"
PROBE_PASSWORD = "probe-secret-7f3a"


def missing_reason():
    """Why the servers cannot be started here, or None."""
    if not os.access(os.path.join(BIN, "initdb"), os.X_OK):
        return f"PostgreSQL 15 is not installed ({BIN}/initdb; Debian package postgresql-15)"
    if not shutil.which("runuser"):
        return "runuser is not available"
    if os.geteuid() != 0:
        return "starting PostgreSQL as the postgres user needs root (runuser)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "there is no postgres OS user (Debian package postgresql-common)"
    if not os.path.exists("/usr/share/postgresql/15/extension/pg_stat_statements.control"):
        return "pg_stat_statements is not installed (Debian package postgresql-contrib)"
    return None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(args, check=True, timeout=120):
    return subprocess.run(["runuser", "-u", "postgres", "--", *args], check=check,
                          capture_output=True, text=True, timeout=timeout)


class Server:
    """One server: a data directory, a port and a log file under the shared temp dir."""

    def __init__(self, root, name):
        self.root = root
        self.name = name
        self.data = os.path.join(root, name)
        self.log = os.path.join(root, name + ".log")
        self.port = free_port()

    def start(self, wait=True):
        """Starts the server; without `wait` (a server that rejects connections) pg_ctl
        returns at once."""
        opts = f"-c port={self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
        as_postgres([os.path.join(BIN, "pg_ctl"), "-D", self.data, "-l", self.log,
                     "-w" if wait else "-W", "-t", "60", "-o", opts, "start"])

    def restart(self):
        opts = f"-c port={self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
        as_postgres([os.path.join(BIN, "pg_ctl"), "-D", self.data, "-l", self.log, "-w",
                     "-t", "60", "-m", "fast", "-o", opts, "restart"])

    def stop(self, mode="fast", check=True):
        return as_postgres([os.path.join(BIN, "pg_ctl"), "-D", self.data, "-w", "-t", "60",
                            "-m", mode, "stop"], check=check)

    def running(self):
        return os.path.exists(os.path.join(self.data, "postmaster.pid"))

    def psql(self, sql, dbname="postgres"):
        """Runs SQL as the superuser over the unix socket; returns unaligned output."""
        out = as_postgres([os.path.join(BIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                           "-h", self.root, "-p", str(self.port), "-d", dbname, "-At",
                           "-c", sql])
        return out.stdout.strip()

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""


class Cluster:
    """A primary and, on request, streaming standbys. Use stop() in a finally."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="tocsin-pg-")
        os.chmod(self.root, 0o755)
        pw = pwd.getpwnam("postgres")
        os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.primary = Server(self.root, "primary")
        self.standbys = []
        self.password_file = os.path.join(self.root, "password")

    def init_primary(self, extra_conf=""):
        p = self.primary
        as_postgres([os.path.join(BIN, "initdb"), "-D", p.data, "-U", "postgres",
                     "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                     "--locale=C"])
        with open(os.path.join(p.data, "postgresql.conf"), "a") as f:
            f.write("\n# tocsin test settings\n"
                    "shared_preload_libraries = 'pg_stat_statements'\n"
                    "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                    "max_connections = 300\nshared_buffers = 32MB\n"
                    "log_min_messages = warning\n" + extra_conf)
        with open(os.path.join(p.data, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\nlocal replication all trust\n"
                    "host all all 127.0.0.1/32 scram-sha-256\n")
        p.start()
        p.psql(f"CREATE ROLE {PROBE_USER} LOGIN PASSWORD '{PROBE_PASSWORD}'; "
               f"GRANT pg_monitor TO {PROBE_USER}; "
               "CREATE EXTENSION pg_stat_statements;")
        # The password file belongs to the user tocsind runs as (root in the tests).
        with open(self.password_file, "w") as f:
            f.write(PROBE_PASSWORD + "\n")
        os.chmod(self.password_file, 0o600)
        return p

    def add_standby(self, extra_conf=""):
        s = Server(self.root, f"standby{len(self.standbys) + 1}")
        as_postgres([os.path.join(BIN, "pg_basebackup"), "-h", self.root,
                     "-p", str(self.primary.port), "-U", "postgres", "-D", s.data, "-R",
                     "-X", "stream", "-c", "fast"])
        if extra_conf:
            with open(os.path.join(s.data, "postgresql.conf"), "a") as f:
                f.write(extra_conf)
        s.start(wait=not extra_conf)
        self.standbys.append(s)
        return s

    def stop(self):
        for s in self.standbys + [self.primary]:
            if s.running():
                s.stop(mode="immediate", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

