"""Every route's credential check, generated from the OpenAPI document (reliability.md S1, OWASP API2/API5).

The operations come from `create_app(...).openapi()`, not from a hand list; the scope each one
needs comes from SCOPE_TABLE (path prefix + method). A route the table does not cover fails
`test_the_scope_table_covers_every_operation`, so a new route cannot ship without a decision.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import httpx
import pytest

from api.main import create_app
from schemas.settings import Settings
from tests.conftest import ADMIN_KEY, auth

OPEN = "open"  # no credential at all
SIGNATURE = "signature"  # authenticated by the vendor's signature (tests/api/test_webhooks.py)

# (method or "*", path prefix, what the route requires). The longest matching prefix wins; an
# exact method beats "*". Prefixes match whole path segments.
SCOPE_TABLE: list[tuple[str, str, str]] = [
    ("GET", "/healthz", OPEN),
    ("GET", "/readyz", OPEN),
    ("POST", "/v1/webhooks", SIGNATURE),
    ("POST", "/v1/items", "ingest"),  # one item and /bulk
    ("GET", "/v1/items", "read"),
    ("DELETE", "/v1/items", "admin"),
    ("*", "/v1/keys", "admin"),
    ("*", "/v1/connections", "admin"),
    ("GET", "/v1/themes", "read"),
    ("POST", "/v1/themes", "curate"),  # a person's theme, merge, split, split-preview, move items
    ("PATCH", "/v1/themes", "curate"),
    ("POST", "/v1/curation", "curate"),  # undo
    ("POST", "/v1/clustering", "admin"),
    ("GET", "/v1/clustering", "read"),
    ("DELETE", "/v1/requesters", "admin"),
    ("GET", "/v1/reports", "read"),
    ("*", "/v1/alerts", "admin"),
    ("GET", "/v1/incidents", "read"),
    ("PATCH", "/v1/incidents", "curate"),
    ("PATCH", "/v1/items", "curate"),
    ("POST", "/v1/intent", "admin"),
    ("GET", "/v1/intent", "read"),
    ("POST", "/v1/schedules", "admin"),
    ("GET", "/v1/schedules", "read"),
    ("POST", "/v1/articles", "ingest"),  # /bulk
    ("GET", "/v1/articles", "read"),
]
SCOPES = ("ingest", "read", "curate", "admin")
# For each required scope, the strongest key that still lacks it.
LACKING = {"ingest": ["read"], "read": ["ingest"], "curate": ["ingest", "read"], "admin": ["ingest", "read", "curate"]}


def _segment_prefix(prefix: str, path: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def table_entry(method: str, path: str) -> tuple[str, str, str] | None:
    matches = [e for e in SCOPE_TABLE if e[0] in (method, "*") and _segment_prefix(e[1], path)]
    if not matches:
        return None
    return max(matches, key=lambda e: (len(e[1]), e[0] != "*"))


def schema_operations() -> list[tuple[str, str, dict[str, Any]]]:
    doc = create_app(Settings(environment="test")).openapi()
    return [(m.upper(), path, op) for path, ops in doc["paths"].items() for m, op in ops.items()]


OPERATIONS = schema_operations()
BEARER_OPERATIONS = [
    (method, path, op)
    for method, path, op in OPERATIONS
    if (entry := table_entry(method, path)) is not None and entry[2] in SCOPES
]


def required_scope(method: str, path: str) -> str:
    entry = table_entry(method, path)
    assert entry is not None
    return entry[2]


def concrete_url(path: str, operation: dict[str, Any]) -> str:
    """The path with each parameter filled by a well-typed value no row has."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "path":
            continue
        kind = parameter.get("schema", {}).get("type")
        value = "987654321" if kind == "integer" else str(uuid.uuid4())
        path = path.replace("{" + parameter["name"] + "}", value)
    return path


async def call(client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return await client.request(method, url, headers=headers, **body)  # type: ignore[arg-type]


async def new_key(client: httpx.AsyncClient, scopes: list[str], name: str = "k") -> dict[str, Any]:
    made = await client.post("/v1/keys", json={"name": name, "scopes": scopes}, headers=auth())
    assert made.status_code == 201, made.text
    created: dict[str, Any] = made.json()
    return created


def test_the_scope_table_covers_every_operation() -> None:
    uncovered = [f"{m} {p}" for m, p, _ in OPERATIONS if table_entry(m, p) is None]
    assert not uncovered, f"add these routes to SCOPE_TABLE with the scope they need: {uncovered}"
    unused = [e for e in SCOPE_TABLE if not any(table_entry(m, p) == e for m, p, _ in OPERATIONS)]
    assert not unused, f"SCOPE_TABLE entries that match no route (stale): {unused}"
    assert len(BEARER_OPERATIONS) >= 15  # the table cannot silently turn every route open


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("method", "path", "operation"), BEARER_OPERATIONS, ids=[f"{m} {p}" for m, p, _ in BEARER_OPERATIONS]
)
async def test_each_route_refuses_missing_bad_and_underscoped_keys(
    client: httpx.AsyncClient, method: str, path: str, operation: dict[str, Any]
) -> None:
    scope = required_scope(method, path)
    url = concrete_url(path, operation)
    lacking = (await new_key(client, LACKING[scope], "lacking"))["key"]
    exact = (await new_key(client, [scope], "exact"))["key"]

    missing = await call(client, method, url, {})
    assert missing.status_code == 401, missing.text
    assert missing.json()["error"] == "unauthorized" and missing.headers["www-authenticate"] == "Bearer"
    for bad in ("tk_" + "x" * 43, ADMIN_KEY + "x", "", "Bearer"):
        refused = await call(client, method, url, {"Authorization": f"Bearer {bad}"})
        assert refused.status_code == 401, (bad, refused.text)
    for wrong_scheme in (f"Basic {ADMIN_KEY}", f"Token {ADMIN_KEY}", ADMIN_KEY):
        assert (await call(client, method, url, {"Authorization": wrong_scheme})).status_code == 401

    underscoped = await call(client, method, url, auth(lacking))
    assert underscoped.status_code == 403, underscoped.text
    assert underscoped.json()["error"] == "forbidden" and scope in underscoped.json()["detail"]

    for key in (exact, ADMIN_KEY):  # the right scope, and admin (which implies every scope)
        allowed = await call(client, method, url, auth(key))
        assert allowed.status_code not in (401, 403), allowed.text


# Routes kept out of the OpenAPI document, with how they authenticate and where that is tested.
# A new hidden route fails the test below until someone says how it is protected.
HIDDEN_PATHS = {
    "/docs": "FastAPI docs (off in production: test_keys_and_secrets.py)",
    "/docs/oauth2-redirect": "part of the docs",
    "/openapi.json": "the schema itself (off in production: test_keys_and_secrets.py)",
    "/static": "dashboard assets, no data in them",
}
HIDDEN_MODULES = {
    "api.routes.dashboard": "HTML pages behind a session cookie from /login (tests/api/test_dashboard.py)",
    "api.routes.dashboard_curation": "curation forms: session cookie with the curate scope (test_curation_browser.py)",
}


def test_every_route_outside_the_schema_is_accounted_for() -> None:
    from starlette.routing import Mount, Route

    app = create_app(Settings(environment="test"))
    in_schema = {path for _, path, _ in OPERATIONS}
    unexplained = []
    for route in app.routes:
        if not isinstance(route, Route | Mount) or route.path in in_schema or route.path in HIDDEN_PATHS:
            continue
        module = getattr(getattr(route, "endpoint", None), "__module__", None)
        if module not in HIDDEN_MODULES:
            unexplained.append(f"{route.path} ({module})")
    assert not unexplained, f"routes outside the OpenAPI document with no stated protection: {unexplained}"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_health_routes_need_no_key(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code in (200, 503)  # 503 = not ready, never 401/403


async def test_a_revoked_key_is_refused_from_the_next_request(client: httpx.AsyncClient) -> None:
    made = await new_key(client, ["read"])
    assert (await client.get("/v1/items", headers=auth(made["key"]))).status_code == 200
    revoked = await client.delete(f"/v1/keys/{made['api_key_id']}", headers=auth())
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    started = time.monotonic()
    refused = await client.get("/v1/items", headers=auth(made["key"]))
    assert refused.status_code == 401 and time.monotonic() - started < 1.0
    # The other keys keep working (rotation: several active keys at once).
    other = await new_key(client, ["read"])
    assert (await client.get("/v1/items", headers=auth(other["key"]))).status_code == 200


@pytest.mark.parametrize("param", ["api_key", "access_token", "key", "token", "apikey"])
async def test_keys_are_never_accepted_in_the_query_string(client: httpx.AsyncClient, param: str) -> None:
    made = await new_key(client, ["read", "ingest"])
    for key in (ADMIN_KEY, made["key"]):
        for url in ("/v1/items", "/v1/keys", "/v1/themes"):
            resp = await client.get(url, params={param: key})
            assert resp.status_code == 401, (url, resp.text)


async def test_keys_and_secrets_never_reach_the_logs(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    made = await new_key(client, ["read", "ingest"])
    revoked = await new_key(client, ["read"])
    await client.delete(f"/v1/keys/{revoked['api_key_id']}", headers=auth())
    secret = "fd-shared-secret-" + uuid.uuid4().hex
    conn = await client.post(
        "/v1/connections", json={"vendor": "freshdesk", "name": "fd", "secret": secret}, headers=auth()
    )
    assert conn.status_code == 201, conn.text
    generated = (await client.post("/v1/connections", json={"vendor": "generic", "name": "g"}, headers=auth())).json()
    hook = f"/v1/webhooks/{conn.json()['connection_id']}"
    requests: list[tuple[str, str, dict[str, str], Any]] = [
        ("GET", "/v1/items", auth(made["key"]), None),
        ("GET", "/v1/items/1", auth(made["key"]), None),  # 404
        ("GET", "/v1/items?limit=0", auth(made["key"]), None),  # 422
        ("GET", "/v1/keys", auth(made["key"]), None),  # 403
        ("GET", "/v1/items", auth(revoked["key"]), None),  # 401 revoked
        ("GET", "/v1/items", auth(made["key"] + "x"), None),  # 401 unknown
        ("GET", f"/v1/items?api_key={made['key']}", {}, None),  # 401, key in the URL
        ("POST", "/v1/items", auth(made["key"]), {"body": "x"}),  # 422
        ("POST", hook, {"X-Webhook-Secret": secret}, {"id": 1}),  # accepted
        ("POST", hook, {"X-Webhook-Secret": secret + "x"}, {"id": 2}),  # 401
        ("POST", f"/v1/webhooks/{generated['connection_id']}", {"webhook-signature": "v1,abc"}, {}),  # 401
    ]
    for method, url, headers, body in requests:
        await client.request(method, url, headers=headers, json=body)
    # httpx/httpcore are the test's own client (they log the URL it sent); everything else is ours.
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert server_records, "no log records captured: the test would pass vacuously"
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in server_records)
    for raw in (ADMIN_KEY, made["key"], revoked["key"], secret, generated["secret"]):
        assert raw not in text


async def test_access_log_lines_carry_no_query_string(client: httpx.AsyncClient) -> None:
    # The server logs the request line before the app refuses a key in the query string.
    access = logging.getLogger("uvicorn.access")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect()
    access.addHandler(handler)
    old_level = access.level
    access.setLevel(logging.INFO)
    try:
        # as uvicorn's httptools protocol logs it: client, method, path with query, version, status
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", f"/v1/items?api_key={ADMIN_KEY}", "1.1", 401)
    finally:
        access.removeHandler(handler)
        access.setLevel(old_level)
    assert lines == ['127.0.0.1:5 - "GET /v1/items?… HTTP/1.1" 401']
