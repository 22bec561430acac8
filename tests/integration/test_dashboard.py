"""The dashboard in a real headless Chromium, driven by chromedriver over WebDriver HTTP
with the standard library: tocsind runs a tcp probe against a closed port and a rule that
fires on it. The page must show the probe DOWN with its reason and the alert FIRING, and
Silence must create a silence through the API. The layout must fit 390 px, dark mode must
apply, and the console must stay free of errors and CSP violations. Chromium loads only
pages of the daemon on 127.0.0.1, because other host names do not resolve."""

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import TOP, free_port, http_get, wait_for
from receiver_tools import ScriptedServer

TOKEN = "dashboard-test-token"

RULES = """
groups:
  - name: svc
    interval: 1s
    rules:
      - alert: ServiceDown
        expr: tocsin_probe_success{probe="svc"} == 0
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.probe }} is down"
"""

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


# Screenshots of each page the tests visit, kept as test artifacts.
SCREENSHOTS = os.path.join(os.environ.get("TOCSIN_ARTIFACTS", os.path.join(TOP, "build", "test-results")),
                           "screenshots")


def config(rules_path, closed_port, hook_url):
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    return f"""
rule_files: ["{rules_path}"]
probes:
  - name: svc
    type: tcp
    target: "127.0.0.1:{closed_port}"
    interval: 1s
    timeout: 500ms
    labels: {{team: ops}}
api:
  tokens:
    - name: dashboard-test
      sha256: {digest}
      role: admin
alerting:
  receivers:
    - name: hook
      webhook:
        - url: {hook_url}
  route:
    receiver: hook
    group_by: [alertname]
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 1s
"""


def api(daemon, path):
    return json.loads(http_get(daemon.url + "/api/v1" + path)[2])["data"]


class WebDriver:
    """A chromedriver process and one headless Chromium session, over WebDriver HTTP."""

    def __init__(self, workdir):
        chromium = shutil.which("chromium")
        chromedriver = shutil.which("chromedriver")
        if chromium is None or chromedriver is None:
            pytest.skip("chromium or chromedriver is not installed "
                        "(Debian packages chromium and chromium-driver)")
        self.port = free_port()
        self.log = open(os.path.join(workdir, "chromedriver.log"), "w")
        self.proc = subprocess.Popen([chromedriver, f"--port={self.port}"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: self.request("GET", "/status")["ready"], timeout=20,
                 what="chromedriver /status")
        args = ["--headless=new", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--disable-default-apps",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--user-data-dir=" + os.path.join(workdir, "chromium-profile"),
                "--window-size=1280,900"]
        # Chromium's sandbox refuses to start as root, so it is disabled only then.
        if os.geteuid() == 0:
            args.append("--no-sandbox")
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}}
        self.session = self.request("POST", "/session", caps)["sessionId"]

    def request(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise AssertionError(f"WebDriver {method} {path}: {e.code} {e.read()[:500]!r}")

    def command(self, method, path, body=None):
        return self.request(method, f"/session/{self.session}{path}", body)

    def get(self, url):
        assert url.startswith("http://127.0.0.1:"), url
        self.command("POST", "/url", {"url": url})

    def script(self, source, *args):
        return self.command("POST", "/execute/sync", {"script": source, "args": list(args)})

    def find(self, css):
        value = self.command("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(value.values()))

    def click(self, css):
        self.command("POST", f"/element/{self.find(css)}/click", {})

    def type(self, css, text):
        self.command("POST", f"/element/{self.find(css)}/value", {"text": text})

    def cdp(self, cmd, params):
        return self.command("POST", "/goog/cdp/execute", {"cmd": cmd, "params": params})

    def screenshot(self, name):
        """Saves the viewport as SCREENSHOTS/KIND-NAME.png and returns the path."""
        data = base64.b64decode(self.command("GET", "/screenshot"))
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:16]
        os.makedirs(SCREENSHOTS, exist_ok=True)
        kind = os.environ.get("TOCSIN_BUILD_KIND", "local")
        path = os.path.join(SCREENSHOTS, f"{kind}-{name}.png")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def console(self):
        return self.command("POST", "/se/log", {"type": "browser"})

    def close(self):
        try:
            self.command("DELETE", "")
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()


@pytest.fixture
def browser(tmp_path):
    driver = WebDriver(str(tmp_path))
    yield driver
    driver.close()


@pytest.fixture
def hook():
    """A webhook receiver that replies 200 to every notification."""
    server = ScriptedServer()
    yield server
    server.stop()


@pytest.fixture
def daemon(daemon_factory, tmp_path, hook):
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    d = daemon_factory(config(rules, free_port(), hook.url()))
    wait_for(lambda: any(a["state"] == "active" for a in api(d, "/alerts")), timeout=20,
             what="the ServiceDown alert to fire")
    return d


def notifications(hook):
    """Returns the bodies of the firing notifications the receiver recorded, in order."""
    bodies = [json.loads(r["body"]) for r in list(hook.requests)]
    return [b for b in bodies if b["status"] == "firing"]


def text_of(browser, css):
    return browser.script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", css)


def test_dashboard_headers(daemon):
    status, headers, body = http_get(daemon.url + "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value, name
    etag = headers["ETag"]

    # Revalidation: the same ETag gets 304 with the security headers again.
    req = urllib.request.Request(daemon.url + "/", headers={"If-None-Match": etag})
    with pytest.raises(urllib.error.HTTPError) as not_modified:
        urllib.request.urlopen(req, timeout=5)
    assert not_modified.value.code == 304
    assert not_modified.value.headers["X-Frame-Options"] == "DENY"

    # index.html links versioned scripts; those may be cached for long.
    scripts = re.findall(r'<script src="(/static/[a-z]+\.js\?v=[0-9a-f]{16})"', body)
    assert len(scripts) == 3, body
    assert "<script>" not in body and " style=" not in body
    status, headers, _ = http_get(daemon.url + scripts[0])
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert "max-age=31536000" in headers["Cache-Control"]
    assert headers["Content-Security-Policy"] == csp
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value, name
    status, headers, _ = http_get(daemon.url + "/static/app.css")
    assert headers["Content-Type"] == "text/css; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"

    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(daemon.url + "/static/nope.js", timeout=5)
    assert missing.value.code == 404
    assert missing.value.headers["X-Content-Type-Options"] == "nosniff"


def test_dashboard_in_chromium(daemon, browser, hook):
    probe = api(daemon, "/probes/svc")
    reason = probe["lastRun"]["reason"]
    assert probe["health"] == "down"

    # Overview: the probe is DOWN with its reason, the alert is counted as FIRING.
    browser.get(daemon.url + "/")
    card = '[data-probe="svc"]'
    wait_for(lambda: "DOWN" in (text_of(browser, card) or ""), timeout=15,
             what="the svc probe card showing DOWN")
    text = text_of(browser, card)
    assert "Reason:" in text
    assert "refused" in text.lower(), text
    assert reason.split(":")[0] in text
    assert "1 FIRING" in text_of(browser, ".summary")
    browser.screenshot("overview-down")

    # Before the silence, the alert is notified again at each repeat interval (1 s).
    wait_for(lambda: len(notifications(hook)) >= 2, timeout=15,
             what="two notifications of ServiceDown at the webhook receiver")

    # Alerts: the alert is FIRING; Silence with a token creates a 2 h silence.
    browser.get(daemon.url + "/#/alerts")
    wait_for(lambda: "FIRING" in (text_of(browser, "article[data-fingerprint]") or ""),
             timeout=15, what="the alert card showing FIRING")
    assert "ServiceDown" in text_of(browser, "article[data-fingerprint]")
    browser.type("#token", TOKEN)
    browser.click("#token-save")
    assert browser.script("return sessionStorage.getItem('tocsin.token')") == TOKEN
    browser.click("button.silence")

    def dashboard_silence():
        for s in api(daemon, "/silences"):
            matchers = {(m["name"], m["value"]) for m in s["matchers"]}
            if ("alertname", "ServiceDown") in matchers and s["createdBy"] == "dashboard":
                return s
        return None

    silence = wait_for(dashboard_silence, timeout=10, what="the silence made by the dashboard")
    assert ("probe", "svc") in {(m["name"], m["value"]) for m in silence["matchers"]}
    assert silence["status"]["state"] == "active"
    wait_for(lambda: "SILENCED" in (text_of(browser, "article[data-fingerprint]") or ""),
             timeout=20, what="the alert card showing SILENCED")
    assert "Silence " + silence["id"] in text_of(browser, "#notice")
    browser.screenshot("alerts-silenced")

    # The silence made in the page stops the notifications at the receiver. One that was
    # already being sent when the silence arrived may still land within the first second.
    time.sleep(1.5)
    before = len(notifications(hook))
    time.sleep(4)
    assert len(notifications(hook)) == before, "notifications continued under the silence"

    # Silences page lists it with an Expire button.
    browser.get(daemon.url + "/#/silences")
    wait_for(lambda: text_of(browser, f'[data-silence="{silence["id"]}"]'), timeout=10,
             what="the silence on the silences page")
    assert "ACTIVE" in text_of(browser, f'[data-silence="{silence["id"]}"]')
    browser.screenshot("silences")

    # Probe page: the graph follows the range picker.
    browser.get(daemon.url + "/#/probe/svc")
    wait_for(lambda: browser.script("return document.querySelector('.graph img') !== null"),
             timeout=10, what="the probe page's graph")
    src = browser.script("return document.querySelector('.graph img').getAttribute('src')")
    assert src.startswith("/graph?probe=svc&start=-1h"), src
    browser.click('button[data-range="6h"]')
    src = browser.script("return document.querySelector('.graph img').getAttribute('src')")
    assert "start=-6h" in src, src
    browser.screenshot("probe")

    # Phone width: nothing wider than the viewport.
    browser.cdp("Emulation.setDeviceMetricsOverride",
                {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    for page in ["/#/", "/#/alerts", "/#/silences", "/#/probe/svc"]:
        browser.get(daemon.url + page)
        wait_for(lambda: browser.script("return document.querySelector('main .card') !== null"),
                 timeout=10, what=f"cards on {page}")
        width = browser.script("return [document.documentElement.scrollWidth, innerWidth]")
        assert width[1] == 390, width
        assert width[0] <= width[1], (page, width)
        browser.screenshot("phone-" + (page.strip("/#").replace("/", "-") or "overview"))

    # Dark mode from the system preference, and the toggle overriding it.
    background = "return getComputedStyle(document.body).backgroundColor"
    light = browser.script(background)
    browser.cdp("Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    assert browser.script(background) == "rgb(16, 19, 23)"
    assert light != "rgb(16, 19, 23)"
    browser.screenshot("phone-probe-dark")
    browser.click("#theme-toggle")  # auto -> dark
    browser.click("#theme-toggle")  # dark -> light
    assert browser.script(background) == light

    # NOTE: a graph that cannot be drawn yet (no archived data) is a failed image load,
    # which Chromium logs as an error, so messages about /graph are left out here.
    errors = [entry for entry in browser.console()
              if entry["level"] in ("SEVERE", "WARNING") and "/graph?" not in entry["message"]]
    assert errors == []

    # The API going away shows the banner and keeps the last data.
    browser.get(daemon.url + "/#/")
    wait_for(lambda: "DOWN" in (text_of(browser, card) or ""), timeout=15, what="overview")
    daemon.stop()
    wait_for(lambda: "Cannot reach the tocsin API" in (text_of(browser, "#banner") or ""),
             timeout=15, what="the API-unreachable banner")
    assert browser.script("return document.getElementById('banner').hidden") is False
    assert "DOWN" in text_of(browser, card)


# A host probe that keeps the container's overlay root: the default list leaves out
# overlay, and a test machine may have no other filesystem.
HOST_CONFIG = """
probes:
  - name: host
    type: host
    interval: 1s
    filesystems_exclude: [nfs, nfs4, cifs, smb3]
"""


def test_dashboard_host_and_audit(daemon_factory, browser):
    d = daemon_factory(HOST_CONFIG)
    query = "/query?query=node_filesystem_size_bytes%7Bprobe%3D%22host%22%7D"
    filesystems = wait_for(lambda: api(d, query)["result"], timeout=15,
                           what="node_filesystem_size_bytes of the host probe")
    mountpoint = filesystems[0]["metric"]["mountpoint"]

    # Host page: a row per filesystem and the load averages as numbers.
    browser.get(d.url + "/#/host")
    row = f'table.filesystems tr[data-mountpoint="{mountpoint}"]'
    wait_for(lambda: text_of(browser, row), timeout=15, what=f"the filesystem row of {mountpoint}")
    assert re.search(r"(OK|LOW|FULL)", text_of(browser, row)), text_of(browser, row)
    load = text_of(browser, '[data-figure="load"]')
    assert re.fullmatch(r"\d+\.\d\d / \d+\.\d\d / \d+\.\d\d", load), load
    # Network rates with no rule loaded: irate() over the probe's last two runs.
    wait_for(lambda: re.search(r"/s", text_of(browser, "table.interfaces tr[data-interface]") or ""),
             timeout=15, what="a network interface row with rates")
    src = browser.script("return document.querySelector('.graph img').getAttribute('src')")
    assert src.startswith("/graph?series="), src
    assert "node_load" in src, src
    assert "start=-1h" in src, src
    browser.screenshot("host")

    # Audit page: the start-up record is listed and the chain checks out.
    records = api(d, "/audit/verify")["records"]
    browser.get(d.url + "/#/audit")
    wait_for(lambda: text_of(browser, 'tr[data-action="config.load"]'), timeout=15,
             what="the config.load record on the audit page")
    assert "tocsind" in text_of(browser, 'tr[data-action="config.load"]')
    browser.click("#audit-verify")
    wait_for(lambda: "INTACT" in (text_of(browser, "#audit-verify-result") or ""), timeout=10,
             what="the chain check result")
    assert f"intact: {records} record" in text_of(browser, "#audit-verify-result")

    # Phone width: the tables scroll inside their box, never the page.
    browser.cdp("Emulation.setDeviceMetricsOverride",
                {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    for page in ["/#/host", "/#/audit"]:
        browser.get(d.url + page)
        wait_for(lambda: browser.script("return document.querySelector('main table') !== null"),
                 timeout=10, what=f"the table on {page}")
        width = browser.script("return [document.documentElement.scrollWidth, innerWidth]")
        assert width[0] <= width[1], (page, width)

    errors = [entry for entry in browser.console()
              if entry["level"] in ("SEVERE", "WARNING") and "/graph?" not in entry["message"]]
    assert errors == []


def test_dashboard_host_without_probe(daemon_factory, browser):
    d = daemon_factory(f"""
probes:
  - name: svc
    type: tcp
    target: "127.0.0.1:{free_port()}"
""")
    browser.get(d.url + "/#/host")
    wait_for(lambda: "No host probe" in (text_of(browser, "main") or ""), timeout=15,
             what="the no-host-probe message")
