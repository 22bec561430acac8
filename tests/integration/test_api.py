"""The JSON API under /api/v1 against the real tocsind. The tests cover every endpoint, the
Prometheus response shape of the query endpoints, and error replies (400 naming the
parameter, 404, 405, 401, 403, 413). They also cover bearer-token writes and a silence
that is created, shows in /alerts and is expired again."""

import hashlib
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

from conftest import wait_for

ADMIN_TOKEN = "admin-token-for-tests"
READ_TOKEN = "read-token-for-tests"

RULES = """
groups:
  - name: svc
    interval: 1s
    rules:
      - alert: ServiceDown
        expr: tocsin_probe_success{probe="svc"} == 0
        labels: {team: ops}
        annotations:
          summary: "{{ $labels.probe }} is down"
      - alert: ServiceDownLong
        expr: tocsin_probe_success{probe="svc"} == 0
        for: 1h
      - record: svc:success:avg1m
        expr: avg_over_time(tocsin_probe_success{probe="svc"}[1m])
slos:
  - name: svc-availability
    objective: 99
    period: 1d
    probe: svc
"""


def closed_port():
    """A loopback port with no listener: the tcp probe gets 'connection refused'."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(rules_path, tokens=True):
    text = f"""
rule_files: ["{rules_path}"]
probes:
  - name: svc
    type: tcp
    target: "127.0.0.1:{closed_port()}"
    interval: 1s
    timeout: 500ms
    labels: {{service: web}}
"""
    if tokens:
        admin = hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()
        read = hashlib.sha256(READ_TOKEN.encode()).hexdigest()
        text += f"""
api:
  tokens:
    - {{name: ops, sha256: {admin}, role: admin}}
    - {{name: viewer, sha256: {read}, role: read}}
"""
    return text


def call(d, method, path, body=None, token=None, raw=None, headers=None):
    """Sends one request; returns (status, headers, parsed JSON body)."""
    data = raw
    if data is None and body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(d.url + path, data=data, method=method)
    if data is not None and raw is None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, json.loads(r.read())
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, e.headers, json.loads(text) if text else None


def get(d, path, **params):
    query = urllib.parse.urlencode(params, doseq=True)
    return call(d, "GET", path + ("?" + query if query else ""))


def start(daemon_factory, tmp_path, tokens=True):
    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(RULES)
    d = daemon_factory(config(rules_path, tokens))
    wait_for(lambda: get(d, "/api/v1/probes/svc")[2]["data"]["health"] == "down",
             timeout=20, what="the svc probe to be down")
    return d


def firing_alert(d, name):
    status, _, body = get(d, "/api/v1/alerts", filter=f'alertname="{name}"')
    assert status == 200
    return [a for a in body["data"] if a["firing"]]


def test_api_read_endpoints(daemon_factory, tmp_path):
    d = start(daemon_factory, tmp_path)

    status, headers, body = get(d, "/api/v1/status")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body["status"] == "success"
    assert body["data"]["counts"]["probes"] == 1
    assert body["data"]["counts"]["rules"] == 3
    assert body["data"]["counts"]["series"] > 0
    assert len(body["data"]["configHash"]) == 16
    assert body["data"]["uptimeSeconds"] >= 0

    status, _, body = get(d, "/api/v1/probes")
    assert status == 200
    (probe,) = body["data"]
    assert probe["name"] == "svc"
    assert probe["type"] == "tcp"
    assert probe["labels"] == {"service": "web"}
    assert probe["intervalSeconds"] == 1
    assert probe["health"] == "down"
    assert probe["lastRun"]["status"] == "refused"
    assert probe["lastStateChange"] is not None

    status, _, body = get(d, "/api/v1/probes/nope")
    assert status == 404
    assert "nope" in body["detail"]

    status, _, body = get(d, "/api/v1/series", **{"match[]": 'tocsin_probe_success{probe="svc"}'})
    assert status == 200
    assert body["data"] == [{"__name__": "tocsin_probe_success", "probe": "svc",
                             "type": "tcp", "service": "web"}]

    status, _, body = get(d, "/api/v1/query", query='tocsin_probe_success{probe="svc"}')
    assert status == 200
    assert body["data"]["resultType"] == "vector"
    (element,) = body["data"]["result"]
    assert element["metric"]["probe"] == "svc"
    assert element["value"][1] == "0"

    status, _, body = get(d, "/api/v1/query", query="1 + 1", time="2024-05-01T10:00:00Z")
    assert body["data"] == {"resultType": "scalar", "result": [1714557600, "2"]}

    status, _, body = get(d, "/api/v1/query", query='tocsin_probe_success{probe="svc"}[1m]')
    assert status == 200
    assert body["data"]["resultType"] == "matrix"
    assert len(body["data"]["result"][0]["values"]) >= 1

    # Every step from the first sample on has a value (5 minutes of lookback).
    first = body["data"]["result"][0]["values"][0][0]
    end = first + 2.5
    wait_for(lambda: time.time() > end, timeout=10, what="three seconds of samples")
    status, _, body = get(d, "/api/v1/query_range", query='tocsin_probe_success{probe="svc"}',
                          start=first, end=end, step=0.5)
    assert status == 200
    assert body["data"]["resultType"] == "matrix"
    (series,) = body["data"]["result"]
    assert [t for t, _ in series["values"]] == [first + 0.5 * k for k in range(6)]
    assert all(v == "0" for _, v in series["values"])

    # Grafana sends queries as forms with POST: a read that needs no token.
    form = urllib.parse.urlencode({"query": "2 * 3"}).encode()
    status, _, body = call(d, "POST", "/api/v1/query", raw=form,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    assert body["data"]["result"][1] == "6"

    status, _, body = get(d, "/api/v1/labels")
    assert "probe" in body["data"]
    assert "__name__" in body["data"]
    status, _, body = get(d, "/api/v1/label/probe/values")
    assert body["data"] == ["svc"]

    wait_for(lambda: get(d, "/api/v1/rules")[2]["data"]["groups"][0]["rules"][0]["health"]
             == "ok", timeout=20, what="the first rule evaluation")
    status, _, body = get(d, "/api/v1/rules")
    (group,) = body["data"]["groups"]
    assert group["name"] == "svc"
    assert group["interval"] == 1
    assert [r["type"] for r in group["rules"]] == ["alerting", "alerting", "recording"]
    assert group["rules"][1]["duration"] == 3600
    assert group["rules"][0]["lastEvaluation"] is not None

    status, _, body = get(d, "/api/v1/slos")
    (slo,) = body["data"]
    assert slo["name"] == "svc-availability"
    assert slo["objective"] == 0.99
    assert {w["window"] for w in slo["burnRates"]} >= {"1h", "5m"}

    # Pending from the evaluator, firing from the alerter.
    wait_for(lambda: firing_alert(d, "ServiceDown"), timeout=20, what="ServiceDown firing")
    (alert,) = firing_alert(d, "ServiceDown")
    assert alert["state"] == "active"
    assert alert["labels"]["team"] == "ops"
    assert alert["annotations"]["summary"] == "svc is down"
    status, _, body = get(d, "/api/v1/alerts", filter='alertname="ServiceDownLong"')
    assert [a["state"] for a in body["data"]] == ["pending"]


def test_api_errors(daemon_factory, tmp_path):
    d = start(daemon_factory, tmp_path)

    status, _, body = get(d, "/api/v1/query", query="sum(")
    assert status == 400
    assert body["status"] == "error"
    assert body["error"] == 'invalid parameter "query"'
    assert body["detail"]

    # A form of 20,000 minus signs overflowed the parser's stack and killed the daemon.
    form = urllib.parse.urlencode({"query": "-" * 20000 + "1"}).encode()
    status, _, body = call(d, "POST", "/api/v1/query", raw=form,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400, body
    assert body["detail"].startswith("expression nested deeper than 1000 levels"), body
    assert d.proc.poll() is None
    assert get(d, "/api/v1/status")[0] == 200
    # So did a silence whose regex nests 30,000 groups, in glibc's regcomp().
    deep = "(" * 30000 + "x" + ")" * 30000
    status, _, body = call(d, "POST", "/api/v1/silences", token=ADMIN_TOKEN, body={
        "matchers": [f'alertname=~"{deep}"'], "endsAt": "2099-01-01T00:00:00Z",
        "createdBy": "tests", "comment": "deep"})
    assert status == 400, body
    assert "groups nested deeper than 1000" in body["detail"], body
    assert d.proc.poll() is None
    assert get(d, "/api/v1/status")[0] == 200

    status, _, body = get(d, "/api/v1/query")
    assert status == 400
    assert "query" in body["error"]
    status, _, body = get(d, "/api/v1/query", query="up", time="yesterday")
    assert status == 400
    assert "time" in body["error"]
    status, _, body = get(d, "/api/v1/query_range", query="up", start=10, end=20, step="0s")
    assert status == 400
    assert "step" in body["error"]
    status, _, body = get(d, "/api/v1/query_range", query="up", start=20, end=10, step=1)
    assert status == 400
    assert "end" in body["error"]
    status, _, body = get(d, "/api/v1/query_range", query="up", start=0, end=10**6, step=1)
    assert status == 400
    assert "step" in body["error"]
    status, _, body = get(d, "/api/v1/series")
    assert status == 400
    assert "match[]" in body["error"]
    status, _, body = get(d, "/api/v1/series", **{"match[]": "rate(up[5m])"})
    assert status == 400
    assert "match[]" in body["error"]
    status, _, body = get(d, "/api/v1/alerts", filter="not a matcher")
    assert status == 400
    assert "filter" in body["error"]

    status, _, body = get(d, "/api/v1/nothing-here")
    assert status == 404
    assert body["error"] == "not found"

    status, headers, body = call(d, "DELETE", "/api/v1/rules")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"

    status, _, body = call(d, "PUT", "/api/v1/silences", body={})
    assert status == 405

    # Writes: no token, an unknown one, a read-only one, then a body too large.
    status, headers, body = call(d, "POST", "/api/v1/silences", body={})
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, _, body = call(d, "POST", "/api/v1/silences", body={}, token="wrong")
    assert status == 401
    status, _, body = call(d, "POST", "/api/v1/silences", body={}, token=READ_TOKEN)
    assert status == 403
    assert "role read" in body["detail"]
    status, _, body = call(d, "POST", "/api/v1/silences", raw=b"[" * (70 * 1024),
                           token=ADMIN_TOKEN, headers={"Content-Type": "application/json"})
    assert status == 413
    status, _, body = call(d, "POST", "/api/v1/silences", raw=b"{nope", token=ADMIN_TOKEN)
    assert status == 400
    status, _, body = call(d, "POST", "/api/v1/silences", token=ADMIN_TOKEN,
                           body={"matchers": ["alertname=\"X\""], "createdBy": "me",
                                 "comment": "c"})
    assert status == 400
    assert "endsAt" in body["error"]
    status, _, body = call(d, "DELETE", "/api/v1/silences/no-such-id", token=ADMIN_TOKEN)
    assert status == 404


def test_api_write_fields_of_wrong_type(daemon_factory, tmp_path):
    # A field of the wrong type is named as the API spells it, with the type found, and is
    # not reported as missing.
    d = start(daemon_factory, tmp_path)
    silence = {"matchers": ['alertname="X"'], "endsAt": "2099-01-01T00:00:00Z",
               "createdBy": "tests", "comment": "c"}
    ack = {"rule": "svc/ServiceDown", "fingerprint": "0000000000000000", "createdBy": "tests"}
    cases = [
        ("silences", dict(silence, createdBy=7), "createdBy",
         "expected a string, found a number; give who creates the silence"),
        ("silences", dict(silence, comment=["x"]), "comment",
         "expected a string, found an array; give the silence's reason"),
        ("silences", {k: v for k, v in silence.items() if k != "createdBy"}, "createdBy",
         "missing; give who creates the silence"),
        ("acks", dict(ack, rule=1), "rule",
         "expected a string, found a number; give the alert's rule as /api/v1/alerts shows it"),
        ("acks", dict(ack, createdBy={}), "createdBy",
         "expected a string, found an object; give who acknowledges it"),
        ("acks", dict(ack, comment=True), "comment",
         "expected a string, found a boolean; give a note for the other on-call engineers"),
    ]
    for path, body, field, detail in cases:
        status, _, reply = call(d, "POST", f"/api/v1/{path}", token=ADMIN_TOKEN, body=body)
        assert status == 400, (body, reply)
        assert reply["error"] == f'invalid parameter "{field}"', (body, reply)
        assert reply["detail"] == detail, (body, reply)


def test_api_writes_refused_without_tokens(daemon_factory, tmp_path):
    d = start(daemon_factory, tmp_path, tokens=False)

    status, _, body = call(d, "POST", "/api/v1/reload", token="anything")
    assert status == 403
    assert "api: {tokens:" in body["detail"]
    assert get(d, "/api/v1/status")[0] == 200


def test_api_silence_round_trip(daemon_factory, tmp_path):
    d = start(daemon_factory, tmp_path)
    wait_for(lambda: firing_alert(d, "ServiceDown"), timeout=20, what="ServiceDown firing")

    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    status, _, body = call(d, "POST", "/api/v1/silences", token=ADMIN_TOKEN, body={
        "matchers": [{"name": "alertname", "value": "ServiceDown", "isRegex": False,
                      "isEqual": True}, 'team=~"o.*"'],
        "endsAt": ends, "createdBy": "tests", "comment": "maintenance"})
    assert status == 200, body
    silence_id = body["data"]["silenceID"]

    status, _, body = get(d, "/api/v1/silences")
    (silence,) = [s for s in body["data"] if s["id"] == silence_id]
    assert silence["status"]["state"] == "active"
    assert silence["matchers"][1] == {"name": "team", "value": "o.*", "isRegex": True,
                                      "isEqual": True}
    assert get(d, f"/api/v1/silences/{silence_id}")[2]["data"]["createdBy"] == "tests"

    wait_for(lambda: firing_alert(d, "ServiceDown")[0]["state"] == "silenced",
             timeout=10, what="the alert to show as silenced")
    (alert,) = firing_alert(d, "ServiceDown")
    assert alert["silencedBy"] == silence_id
    assert silence_id in alert["reason"]

    status, _, body = call(d, "DELETE", f"/api/v1/silences/{silence_id}", token=ADMIN_TOKEN)
    assert status == 200
    assert get(d, f"/api/v1/silences/{silence_id}")[2]["data"]["status"]["state"] == "expired"
    wait_for(lambda: firing_alert(d, "ServiceDown")[0]["state"] == "active",
             timeout=10, what="the alert to be active again")
    status, _, body = call(d, "DELETE", f"/api/v1/silences/{silence_id}", token=ADMIN_TOKEN)
    assert status == 400


def test_api_acks_and_reload(daemon_factory, tmp_path):
    d = start(daemon_factory, tmp_path)
    wait_for(lambda: firing_alert(d, "ServiceDown"), timeout=20, what="ServiceDown firing")
    (alert,) = firing_alert(d, "ServiceDown")

    status, _, body = call(d, "POST", "/api/v1/acks", token=ADMIN_TOKEN, body={
        "rule": alert["rule"], "fingerprint": alert["fingerprint"], "createdBy": "tests",
        "comment": "looking"})
    assert status == 200, body
    assert body["data"]["fingerprint"] == alert["fingerprint"]
    status, _, body = get(d, "/api/v1/acks")
    assert [a["createdBy"] for a in body["data"]] == ["tests"]
    wait_for(lambda: firing_alert(d, "ServiceDown")[0]["state"] == "acknowledged",
             timeout=10, what="the alert to show as acknowledged")
    status, _, body = call(d, "POST", "/api/v1/acks", token=ADMIN_TOKEN,
                           body={"rule": alert["rule"], "fingerprint": "xyz"})
    assert status == 400
    assert "fingerprint" in body["error"]
    # An unknown alert is not acknowledged: a typo must not look like success.
    status, _, body = call(d, "POST", "/api/v1/acks", token=ADMIN_TOKEN, body={
        "rule": alert["rule"], "fingerprint": "0000000000000000", "createdBy": "tests",
        "comment": "typo"})
    assert status == 404, body
    assert "0000000000000000" in body["detail"]
    status, _, body = call(d, "POST", "/api/v1/acks", token=ADMIN_TOKEN, body={
        "rule": alert["rule"], "fingerprint": alert["fingerprint"], "createdBy": "tests",
        "comment": "late", "expiresAt": "2001-01-01T00:00:00Z"})
    assert status == 400
    assert "expiresAt" in body["error"]
    assert "leave it out" in body["detail"]
    # A JSON body sent as a form (curl -d without -H) is read as JSON.
    status, _, body = call(d, "POST", "/api/v1/acks", token=ADMIN_TOKEN, raw=json.dumps({
        "rule": alert["rule"], "fingerprint": alert["fingerprint"], "createdBy": "curl",
        "comment": "from curl"}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body

    status, _, body = call(d, "POST", "/api/v1/reload", token=ADMIN_TOKEN)
    assert status == 200, body
    assert body["data"] == {"reloaded": True}

    (tmp_path / "rules.yml").write_text("groups: [{name: x, rules: [{alert: A, expr: 'sum('}]}]")
    status, _, body = call(d, "POST", "/api/v1/reload", token=ADMIN_TOKEN)
    assert status == 500
    assert body["error"] == "reload rejected"
    assert any("rules.yml" in line for line in body["errors"])
    assert get(d, "/api/v1/status")[2]["data"]["counts"]["rules"] == 3
