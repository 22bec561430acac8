"""Checks docs/openapi.yaml against the real tocsind and web/api.c's route table, so that
neither can drift from the other. Every operation in the file is served, and every route of
the API is in the file. Every operation lists the replies that authorization and the HTTP
server's limits can give."""

import os
import re

import pytest

import test_api as api

yaml = pytest.importorskip("yaml", reason="python3-yaml is not installed")

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
METHODS = ("get", "post", "delete")
# Replies that any operation can get: 401 from api.read or a missing token, 431 over
# http.max_header_count and 503 over http.max_connections.
EVERY_OPERATION = {"401", "431", "503"}
# A request to a path the API does not have gets this detail with its 404.
NO_ENDPOINT = "no endpoint"


def load_spec():
    with open(os.path.join(ROOT, "docs", "openapi.yaml")) as f:
        return yaml.safe_load(f)


def operations(spec):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def api_routes():
    """(path, has_tail, methods) from the route table in web/api.c."""
    with open(os.path.join(ROOT, "web", "api.c")) as f:
        text = f.read()
    table = text[text.index("api_routes[] = {"):]
    table = table[:table.index("};")]
    routes = []
    for path, tail, methods in re.findall(r'\{"(/[^"]*)", (true|false), ([A-Z_ |]+),', table):
        names = {m.strip().removeprefix("API_").lower() for m in methods.split("|")}
        routes.append((path, tail == "true", names))
    assert len(routes) >= 15, routes
    return routes


def test_openapi_lists_every_api_route():
    spec = load_spec()
    for path, has_tail, methods in api_routes():
        if has_tail:
            matches = [p for p in spec["paths"] if p.startswith(path) and "{" in p[len(path):]]
        else:
            matches = [p for p in spec["paths"] if p == path]
        assert len(matches) == 1, f"web/api.c serves {path}, but docs/openapi.yaml has {matches}"
        assert set(spec["paths"][matches[0]]) - {"parameters"} == methods, \
            f"{matches[0]}: methods in docs/openapi.yaml differ from web/api.c's {methods}"


def test_openapi_error_replies_complete():
    spec = load_spec()
    responses = spec["components"]["responses"]
    for path, method, op in operations(spec):
        codes = set(op["responses"])
        where = f"{method.upper()} {path}"
        assert EVERY_OPERATION <= codes, f"{where} misses {EVERY_OPERATION - codes}"
        if method == "post":
            assert "413" in codes, f"{where} misses 413"
        if op.get("security"):
            assert {"401", "403"} <= codes, f"{where} is a write and misses 401 or 403"
        for code, reply in op["responses"].items():
            if code.startswith(("4", "5")):
                name = reply["$ref"].rsplit("/", 1)[1]
                schema = responses[name]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (where, code)


def fill(path, names):
    return re.sub(r"\{(\w+)\}", lambda m: names[m.group(1)], path)


def test_openapi_operations_served(daemon_factory, tmp_path):
    d = api.start(daemon_factory, tmp_path)
    status, _, body = api.call(d, "POST", "/api/v1/silences", token=api.ADMIN_TOKEN, body={
        "matchers": ['alertname="Nothing"'], "endsAt": "2999-01-01T00:00:00Z",
        "createdBy": "tests", "comment": "openapi"})
    assert status == 200, body
    names = {"name": "svc", "id": body["data"]["silenceID"]}
    spec = load_spec()
    base = spec["servers"][0]["url"].split("127.0.0.1:9517", 1)[1]
    assert base == "/api/v1"

    for path, method, op in operations(spec):
        url = base + fill(path, names).replace("/label/svc/", "/label/probe/")
        if path == "/query" or path == "/query_range":
            url += "?query=1&start=1&end=2&step=1"
        # Without a token: a write must get 401, a read must be served.
        status, _, body = api.call(d, method.upper(), url,
                                   raw=b"" if method == "post" else None)
        where = f"{method.upper()} {path}"
        assert status not in (404, 405) or NO_ENDPOINT not in (body or {}).get("detail", ""), \
            f"{where} is in docs/openapi.yaml but tocsind does not serve it: {body}"
        assert status != 405, f"{where}: tocsind does not accept the method: {body}"
        if op.get("security"):
            assert status == 401, f"{where} is a write but got {status} without a token"
        else:
            assert status != 401, f"{where} is a read but got 401 from loopback: {body}"
            assert status != 404 or path.endswith("}"), f"{where}: {body}"
