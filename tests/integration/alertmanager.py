"""A real Alertmanager (Debian's prometheus-alertmanager) on 127.0.0.1 for the tests that
forward alerts to it: alone, or as one member of a cluster that gossips on loopback."""

import json
import os
import shutil
import signal
import subprocess
import urllib.request

import pytest

from conftest import free_port, wait_for

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


class Alertmanager:
    """One Alertmanager with its own config and storage under workdir/name, whose route
    notifies `hook_url` by webhook, resolved alerts included. `cluster` is None (no
    clustering) or a list of flags for the cluster; the constructor returns once the
    web API is ready."""

    def __init__(self, workdir, hook_url, name="alertmanager", group_by=("alertname",),
                 group_wait="0s", group_interval="1s", cluster=None):
        if ALERTMANAGER is None:
            pytest.skip("Alertmanager is not installed (Debian package prometheus-alertmanager)")
        self.dir = os.path.join(workdir, name)
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        config = os.path.join(self.dir, "alertmanager.yml")
        with open(config, "w") as f:
            f.write("route:\n"
                    "  receiver: hook\n"
                    f"  group_by: [{', '.join(group_by)}]\n"
                    f"  group_wait: {group_wait}\n"
                    f"  group_interval: {group_interval}\n"
                    "  repeat_interval: 1h\n"
                    "receivers:\n"
                    "  - name: hook\n"
                    "    webhook_configs:\n"
                    f"      - url: {hook_url}\n"
                    "        send_resolved: true\n")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(self.dir, "alertmanager.log"), "w")
        flags = cluster if cluster is not None else ["--cluster.listen-address="]
        self.proc = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={config}",
             f"--storage.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}", *flags],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self.ready, timeout=30, what=f"Alertmanager {name} /-/ready")

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"Alertmanager {self.dir} exited with {self.proc.returncode}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def status(self):
        """The body of GET /api/v2/status."""
        if self.proc.poll() is not None:
            raise AssertionError(f"Alertmanager {self.dir} exited with {self.proc.returncode}")
        with urllib.request.urlopen(self.url + "/api/v2/status", timeout=1) as r:
            return json.load(r)

    def alerts(self):
        with urllib.request.urlopen(self.url + "/api/v2/alerts", timeout=5) as r:
            return json.load(r)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
