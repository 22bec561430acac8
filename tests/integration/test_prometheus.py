"""A real Prometheus server scrapes tocsind on loopback, and its query API returns
tocsin's series with the values tocsind sampled."""

import json
import os
import shutil
import subprocess
import urllib.parse

import pytest

from conftest import free_port, http_get, wait_for
from proctree import write_proc_tree
from test_daemon import fixture_config


@pytest.fixture
def prometheus(tmp_path):
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not os.access(binary, os.X_OK):
        pytest.skip("prometheus is not installed (Debian package prometheus)")
    procs = []

    def start(target_port):
        port = free_port()
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: tocsin
    static_configs:
      - targets: ['127.0.0.1:{target_port}']
""")
        log = open(tmp_path / "prometheus.log", "w")
        p = subprocess.Popen(
            [binary, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT)
        procs.append((p, log))
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(url + "/-/ready", timeout=1)[0] == 200, timeout=60,
                 what="Prometheus ready")
        return url

    yield start
    for p, log in procs:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()


def query(url, expr):
    q = urllib.parse.urlencode({"query": expr})
    body = json.loads(http_get(f"{url}/api/v1/query?{q}")[2])
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_prometheus_scrapes_tocsind(daemon_factory, tmp_path, prometheus):
    root = write_proc_tree(str(tmp_path / "root"))
    d = daemon_factory(fixture_config(root))
    url = prometheus(d.port)

    result = wait_for(lambda: query(url, 'node_load1{probe="fixture host"}'), timeout=60,
                      what="node_load1 in Prometheus")
    assert result[0]["metric"]["site"] == "test"
    assert float(result[0]["value"][1]) == 0.52

    up = wait_for(lambda: query(url, 'up{job="tocsin"}'), timeout=30, what="up")
    assert up[0]["value"][1] == "1"
    success = wait_for(lambda: query(url, "tocsin_probe_success"), what="tocsin_probe_success")
    assert success[0]["value"][1] == "1"
