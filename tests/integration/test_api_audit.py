"""The audit trail through the API: writes made with a bearer token are recorded with the
token's name and the client's address, GET /api/v1/audit pages through the records newest
first, and GET /api/v1/audit/verify and `tocsinctl audit verify` find a row edited with
sqlite3."""

import os
import sqlite3

import test_api as api
import test_tocsinctl as ctl_tests
from conftest import wait_for

API_ACTIONS = {"api.silence.create", "api.silence.expire", "api.ack.create", "api.reload"}


def ctl(d, *args):
    return ctl_tests.ctl(*args, url=d.url, token=api.ADMIN_TOKEN)


def audit_page(d, **params):
    status, _, body = api.get(d, "/api/v1/audit", **params)
    assert status == 200, body
    return body["data"]


def make_api_changes(d):
    """Creates and expires a silence, acknowledges an alert and reloads; returns the
    silence's id."""
    wait_for(lambda: api.firing_alert(d, "ServiceDown"), timeout=20,
             what="ServiceDown firing")
    status, _, body = api.call(d, "POST", "/api/v1/silences", token=api.ADMIN_TOKEN, body={
        "matchers": ['alertname="ServiceDown"'], "endsAt": "2999-01-01T00:00:00Z",
        "createdBy": "tests", "comment": "maintenance"})
    assert status == 200, body
    silence_id = body["data"]["silenceID"]
    status, _, body = api.call(d, "DELETE", f"/api/v1/silences/{silence_id}",
                               token=api.ADMIN_TOKEN)
    assert status == 200, body

    (alert,) = api.firing_alert(d, "ServiceDown")
    status, _, body = api.call(d, "POST", "/api/v1/acks", token=api.ADMIN_TOKEN, body={
        "rule": alert["rule"], "fingerprint": alert["fingerprint"], "createdBy": "tests",
        "comment": "looking"})
    assert status == 200, body
    status, _, body = api.call(d, "POST", "/api/v1/reload", token=api.ADMIN_TOKEN)
    assert status == 200, body
    return silence_id


def test_api_audit_records_writes(daemon_factory, tmp_path):
    d = api.start(daemon_factory, tmp_path)
    silence_id = make_api_changes(d)

    records = audit_page(d)
    ids = [r["id"] for r in records]
    assert ids == sorted(ids, reverse=True)
    by_action = {r["action"]: r for r in records if r["action"] in API_ACTIONS}
    assert set(by_action) == API_ACTIONS
    for record in by_action.values():
        assert record["actor"] == "ops", record
        assert record["remote"] == "127.0.0.1", record
        assert len(record["hash"]) == 64

    created = by_action["api.silence.create"]
    expired = by_action["api.silence.expire"]
    assert created["detail"]["id"] == silence_id
    assert created["detail"]["created_by"] == "tests"
    assert created["detail"]["matchers"] == ['alertname="ServiceDown"']
    assert expired["detail"]["id"] == silence_id
    assert expired["id"] > created["id"]
    assert expired["detail"]["ends_at_ms"] < created["detail"]["ends_at_ms"]
    assert by_action["api.ack.create"]["detail"]["comment"] == "looking"
    # The reload's record is written before the reload runs; the daemon's config.reload
    # record after it has the outcome.
    assert by_action["api.reload"]["detail"] == {"result": "requested"}
    reload_records = [r for r in records if r["action"] == "config.reload"]
    assert reload_records and reload_records[0]["id"] > by_action["api.reload"]["id"]

    # Reads are not recorded, so the trail is the same on a second read.
    assert audit_page(d) == records


def test_api_audit_paging(daemon_factory, tmp_path):
    d = api.start(daemon_factory, tmp_path)
    make_api_changes(d)
    records = audit_page(d)
    assert len(records) >= 5

    assert audit_page(d, limit=2) == records[:2]
    assert audit_page(d, limit=2, offset=2) == records[2:4]
    assert audit_page(d, offset=len(records)) == []
    assert audit_page(d, limit=1000) == records

    for name, value in [("limit", "0"), ("limit", "1001"), ("limit", "ten"), ("limit", "-1"),
                        ("offset", "-1"), ("offset", "1.5"), ("offset", "")]:
        status, _, body = api.get(d, "/api/v1/audit", **{name: value})
        assert status == 400, (name, value, body)
        assert body["error"] == f'invalid parameter "{name}"', body

    status, headers, _ = api.call(d, "POST", "/api/v1/audit", token=api.ADMIN_TOKEN)
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


def test_api_audit_verify_detects_tampering(daemon_factory, tmp_path):
    d = api.start(daemon_factory, tmp_path)
    make_api_changes(d)
    records = audit_page(d)
    (created,) = [r for r in records if r["action"] == "api.silence.create"]

    status, _, body = api.get(d, "/api/v1/audit/verify")
    assert status == 200, body
    assert body["data"] == {"intact": True, "records": len(records)}
    result = ctl(d, "audit", "verify")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"audit trail intact: {len(records)} records\n"

    result = ctl(d, "audit", "--limit", "3")
    assert result.returncode == 0, result.stderr
    header, rows = ctl_tests.table(result.stdout)
    assert header == ["ID", "TIME", "ACTOR", "REMOTE", "ACTION", "DETAIL"]
    assert [row[0] for row in rows] == [str(r["id"]) for r in records[:3]]

    db = sqlite3.connect(os.path.join(d.data_dir, "state", "state.db"), timeout=10)
    with db:
        db.execute("UPDATE audit SET actor = 'mallory' WHERE id = ?", (created["id"],))
    db.close()

    status, _, body = api.get(d, "/api/v1/audit/verify")
    assert status == 200, body
    assert body["data"]["intact"] is False
    assert body["data"]["firstBadId"] == created["id"]
    assert body["data"]["detail"]
    result = ctl(d, "audit", "verify")
    assert result.returncode == 1, result.stdout
    assert f"audit trail broken at record {created['id']}:" in result.stdout


def test_tocsinctl_audit_usage_errors():
    for args in (["audit", "--limit", "x"], ["audit", "extra"], ["audit", "verify", "extra"],
                 ["audit", "verify", "--limit", "1"]):
        result = ctl_tests.ctl(*args, url="http://127.0.0.1:9")
        assert result.returncode == 2, (args, result.stdout, result.stderr)


def test_api_write_needs_audit_record(daemon_factory, tmp_path):
    d = api.start(daemon_factory, tmp_path)
    (alert,) = wait_for(lambda: api.firing_alert(d, "ServiceDown"), timeout=20,
                        what="ServiceDown firing")
    silence = {"matchers": ['alertname="ServiceDown"'], "endsAt": "2999-01-01T00:00:00Z",
               "createdBy": "tests", "comment": "kept"}
    status, _, body = api.call(d, "POST", "/api/v1/silences", token=api.ADMIN_TOKEN,
                               body=silence)
    assert status == 200, body
    kept_id = body["data"]["silenceID"]
    records_before = audit_page(d)

    # A trigger makes every insert into the audit table fail, as a full disk would.
    state_db = os.path.join(d.data_dir, "state", "state.db")
    db = sqlite3.connect(state_db, timeout=10)
    silence_rows = db.execute("SELECT * FROM silences").fetchall()
    with db:
        db.execute("CREATE TRIGGER audit_fails BEFORE INSERT ON audit "
                   "BEGIN SELECT RAISE(ABORT, 'audit insert disabled by the test'); END")

    status, _, body = api.call(d, "POST", "/api/v1/silences", token=api.ADMIN_TOKEN,
                               body={**silence, "comment": "lost"})
    assert status == 500, body
    assert body["error"] == "audit record not written", body
    status, _, body = api.call(d, "DELETE", f"/api/v1/silences/{kept_id}",
                               token=api.ADMIN_TOKEN)
    assert status == 500, body
    status, _, body = api.call(d, "POST", "/api/v1/acks", token=api.ADMIN_TOKEN, body={
        "rule": alert["rule"], "fingerprint": alert["fingerprint"], "createdBy": "tests",
        "comment": "lost"})
    assert status == 500, body
    status, _, body = api.call(d, "POST", "/api/v1/reload", token=api.ADMIN_TOKEN)
    assert status == 500, body

    # Neither the daemon's memory nor the database has any of the four changes.
    status, _, body = api.get(d, "/api/v1/silences")
    assert status == 200, body
    assert [(s["id"], s["status"]["state"]) for s in body["data"]] == [(kept_id, "active")]
    status, _, body = api.get(d, "/api/v1/acks")
    assert status == 200, body
    assert body["data"] == []
    assert db.execute("SELECT * FROM silences").fetchall() == silence_rows
    assert db.execute("SELECT count(*) FROM acks").fetchone()[0] == 0
    assert audit_page(d) == records_before
    assert "rolled back, because its audit record was not written" in d.log_text()

    with db:
        db.execute("DROP TRIGGER audit_fails")
    db.close()
    status, _, body = api.call(d, "POST", "/api/v1/silences", token=api.ADMIN_TOKEN,
                               body=silence)
    assert status == 200, body
    assert audit_page(d, limit=1)[0]["action"] == "api.silence.create"
