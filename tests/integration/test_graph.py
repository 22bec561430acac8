"""GET /graph against the real tocsind: images rendered by librrd from the archives of a
host probe and two tcp probes (one up, one refused) sampled every second, directly and
through a real rrdcached."""

import socket
import struct
import threading
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from conftest import wait_for
from listener import Listener
from proctree import write_proc_tree

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.stop()


def closed_port():
    """A loopback port with nothing listening: bound once, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graph_config(root, up_port, down_port, extra=""):
    return f"""
interval: 1s
timeout: 900ms
retention: [1s:1h, 1m:2d]
{extra}
probes:
  - name: fixture host
    type: host
    root: {root}
  - name: web
    type: tcp
    target: 127.0.0.1:{up_port}
  - name: refused
    type: tcp
    target: 127.0.0.1:{down_port}
"""


def get(daemon, params, timeout=30):
    """Returns (status, headers, body bytes) of GET /graph with the given parameters."""
    url = daemon.url + "/graph?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def png_size(data):
    """Width and height from the IHDR chunk, which follows the 8-byte signature."""
    assert data[:8] == PNG_MAGIC, data[:16]
    assert data[12:16] == b"IHDR", data[8:32]
    return struct.unpack(">II", data[16:24])


def wait_for_samples(daemon, seconds=3):
    """Waits until the probes' archives hold a few seconds of samples."""
    def enough():
        runs = [line for line in daemon.metrics().splitlines()
                if line.startswith('tocsin_probe_runs_total{probe="web"')]
        return runs and float(runs[0].split()[-1]) >= seconds
    wait_for(enough, timeout=30, what=f"{seconds} runs of the web probe")


@pytest.fixture
def graph_daemon(daemon_factory, tmp_path, listener):
    root = write_proc_tree(str(tmp_path / "root"))
    d = daemon_factory(graph_config(root, listener.port, closed_port()))
    wait_for_samples(d)
    return d


def test_png_has_requested_size(graph_daemon):
    status, headers, body = get(graph_daemon, {"series": "node_load1", "start": "-5m",
                                               "end": "now", "width": 640, "height": 240})
    assert status == 200, body
    assert headers["Content-Type"] == "image/png"
    assert png_size(body) == (640, 240)
    assert headers["Cache-Control"] == "max-age=10"


def test_svg_parses_with_width(graph_daemon):
    status, headers, body = get(graph_daemon, {"series": 'tocsin_probe_success{probe="web"}',
                                               "start": "-10m", "width": 500, "format": "svg"})
    assert status == 200, body
    assert headers["Content-Type"] == "image/svg+xml"
    svg = ET.fromstring(body)
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert svg.get("width").startswith("500"), svg.attrib
    assert svg.get("height").startswith("300"), svg.attrib


def test_probe_set_renders(graph_daemon):
    for probe in ("web", "refused"):
        status, headers, body = get(graph_daemon, {"probe": probe, "start": "-5m",
                                                   "width": 300, "height": 200})
        assert status == 200, (probe, body)
        assert png_size(body) == (300, 200)


# Cairo writes the shading colour #f4c7c3 as percentages of 255.
DOWN_FILL = b"fill:rgb(95.686275%,78.039216%,76.470588%)"


def test_probe_set_shades_failed_runs(graph_daemon):
    status, _, down = get(graph_daemon, {"probe": "refused", "start": "-5m", "format": "svg"})
    assert status == 200, down
    status, _, up = get(graph_daemon, {"probe": "web", "start": "-5m", "format": "svg"})
    assert status == 200, up
    # Both draw the legend box of "probe down"; only the refused probe has shaded areas.
    assert up.count(DOWN_FILL) == 1, up.count(DOWN_FILL)
    assert down.count(DOWN_FILL) > 1, down.count(DOWN_FILL)


@pytest.mark.parametrize("params, named", [
    ({"series": "node_load1", "width": "50"}, "width"),
    ({"series": "node_load1", "height": "4001"}, "height"),
    ({"series": "node_load1", "width": "abc"}, "width"),
    ({"series": "node_load1", "start": "yesterday"}, "start"),
    ({"series": "node_load1", "end": "-1x"}, "end"),
    ({"series": "node_load1", "start": "now", "end": "-1h"}, "start"),
    ({"series": "node_load1", "format": "gif"}, "format"),
    ({"series": "node_load1", "title": "a\nb"}, "title"),
    ({"series": "rate(node_load1[5m])"}, "series"),
    ({"series": "node_load1{"}, "series"),
    ({"series": '{__name__=~"node_.*"}'}, "series"),
    ({"probe": ""}, "probe"),
    ({"series": "node_load1", "colour": "red"}, "colour"),
    ({"start": "-1h"}, "series"),
    ({"series": "node_load1", "probe": "web"}, "series"),
])
def test_bad_parameter_is_400(graph_daemon, params, named):
    status, headers, body = get(graph_daemon, params)
    assert status == 400, (params, body)
    assert headers["Content-Type"].startswith("text/plain")
    assert named in body.decode(), (params, body)


def test_too_many_series_says_how_many(graph_daemon):
    status, _, body = get(graph_daemon, {"series": '{__name__=~"node_.*"}'})
    assert status == 400
    assert "more than the 20" in body.decode(), body


def test_unknown_series_is_404(graph_daemon):
    status, _, body = get(graph_daemon, {"series": "no_such_metric"})
    assert status == 404, body
    assert "no_such_metric" in body.decode()
    status, _, body = get(graph_daemon, {"probe": "no such probe"})
    assert status == 404, body


def test_second_request_served_from_cache(graph_daemon):
    params = {"series": "node_load5", "start": "-15m", "width": 410, "height": 210}
    status, headers, first = get(graph_daemon, params)
    assert status == 200, first
    assert headers["X-Tocsin-Cache"] == "miss"
    status, headers, second = get(graph_daemon, params)
    assert status == 200, second
    assert headers["X-Tocsin-Cache"] == "hit"
    assert second == first
    max_age = int(headers["Cache-Control"].split("=")[1])
    assert 1 <= max_age <= 10
    # The query is normalised: the same selector written differently is the same graph.
    status, headers, _ = get(graph_daemon, dict(params, series='{__name__="node_load5"}'))
    assert status == 200
    assert headers["X-Tocsin-Cache"] == "hit"


def test_threshold_rule_draws_line(daemon_factory, tmp_path, listener):
    root = write_proc_tree(str(tmp_path / "root"))
    rules = tmp_path / "rules.yml"
    rules.write_text("""
groups:
  - name: load
    interval: 1s
    rules:
      - alert: HighLoad
        threshold:
          expr: node_load1
          direction: above
          warn: 0.25
          crit: 0.75
""")
    extra = f"rule_files: [{rules}]"
    d = daemon_factory(graph_config(root, listener.port, closed_port(), extra=extra))
    wait_for_samples(d)
    status, _, with_rule = get(d, {"series": "node_load1", "start": "-5m", "format": "svg"})
    assert status == 200, with_rule
    status, _, without = get(d, {"series": "node_load15", "start": "-5m", "format": "svg"})
    assert status == 200, without
    # The grid is dashed too, so the two dashed threshold lines show as a difference.
    assert with_rule.count(b"stroke-dasharray") == without.count(b"stroke-dasharray") + 2


@pytest.mark.parametrize("cache", ["rrdcached", "rrdcached_tcp"])
def test_graph_through_rrdcached(daemon_factory, tmp_path, listener, cache, request):
    # rrdcached holds the updates in memory (-w 3600): the shading of the refused probe
    # shows only when the render reads them through the daemon, on a unix socket (which
    # flushes the file) or over TCP (which sends the rows).
    daemon = request.getfixturevalue(cache)
    root = write_proc_tree(str(tmp_path / "root"))
    d = daemon_factory(graph_config(root, listener.port, closed_port(),
                                    extra=f"rrdcached: {daemon.address}"))
    wait_for_samples(d)
    status, headers, body = get(d, {"probe": "web", "start": "-5m", "width": 320,
                                    "height": 160})
    assert status == 200, body
    assert png_size(body) == (320, 160)
    status, _, body = get(d, {"series": "node_load1", "start": "-5m"})
    assert status == 200, body
    assert png_size(body) == (800, 300)
    status, _, down = get(d, {"probe": "refused", "start": "-5m", "format": "svg"})
    assert status == 200, down
    assert down.count(DOWN_FILL) > 1, down.count(DOWN_FILL)


def test_full_queue_is_503(graph_daemon):
    """40 distinct large renders at once: 16 wait, one renders, the rest are rejected."""
    results = []

    def request(i):
        # The 17 accepted renders run one after another: on a busy machine with a
        # sanitizer build that takes minutes, so the client waits long enough.
        results.append(get(graph_daemon, {"series": "node_load1", "start": f"-{i + 1}m",
                                          "width": 2000, "height": 2000}, timeout=180))

    threads = [threading.Thread(target=request, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=200)
    statuses = sorted(status for status, _, _ in results)
    assert len(statuses) == 40
    assert set(statuses) == {200, 503}, statuses
    assert statuses.count(200) >= 17, statuses
    rejected = next((headers, body) for status, headers, body in results if status == 503)
    assert rejected[0]["Retry-After"] == "1"
    assert "queue is full" in rejected[1].decode()


def test_head_returns_headers_only(graph_daemon):
    url = graph_daemon.url + "/graph?series=node_load1&start=-5m"
    req = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "image/png"
        assert r.read() == b""


def test_post_is_405(graph_daemon):
    req = urllib.request.Request(graph_daemon.url + "/graph?series=node_load1", data=b"",
                                 method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405
