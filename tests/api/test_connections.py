"""Connections: creation, listing without secrets, rotation and revocation, secrets sealed at rest (S1)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import asyncpg
import httpx

from schemas.settings import Settings
from tests.api import test_webhooks as wh
from tests.api.test_items import make_key
from tests.api.test_webhooks import distinct_body, new_connection, post, running_app, signed, truncate_webhook_tables
from tests.conftest import auth

# The webhook tests' fixtures (a settings copy with SECRET_KEY, and a client on it).
hook_settings = wh.hook_settings
hooks = wh.hooks


async def test_create_connection_generates_a_standard_webhooks_secret_and_an_absolute_url(
    hooks: httpx.AsyncClient,
) -> None:
    created = await new_connection(hooks, "zendesk")
    assert created["vendor"] == "zendesk" and created["name"] == "zendesk test"
    assert created["webhook_url"] == f"http://test/v1/webhooks/{created['connection_id']}"
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"), validate=True)) == 32
    other = await new_connection(hooks, "zendesk")
    assert other["secret"] != created["secret"]


async def test_generated_secret_signs_every_vendor(hooks: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    for vendor in ("generic", "github", "zendesk"):
        created = await new_connection(hooks, vendor)
        body = distinct_body(vendor, 1)
        resp = await post(hooks, created["connection_id"], body, signed(vendor, body, created["secret"]))
        assert resp.status_code == 202, (vendor, resp.text)


async def test_list_shows_secret_ids_counts_and_last_delivery_but_never_secrets(
    hooks: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    created = await new_connection(hooks, "github", "a-github-secret-0123456789")
    quiet = await new_connection(hooks, "jira")
    for n in range(3):
        body = distinct_body("github", n)
        assert (
            await post(hooks, created["connection_id"], body, signed("github", body, "a-github-secret-0123456789"))
        ).status_code == 202
    await db.execute("UPDATE delivery SET status = 'failed', error = 'x' WHERE delivery_id = 1")

    resp = await hooks.get("/v1/connections", headers=auth())
    assert resp.status_code == 200
    assert "a-github-secret-0123456789" not in resp.text and quiet["secret"] not in resp.text
    rows = {c["connection_id"]: c for c in resp.json()["data"]}
    github = rows[created["connection_id"]]
    assert github["deliveries"] == {"pending": 2, "processed": 0, "ignored": 0, "failed": 1}
    assert github["last_delivery_at"] is not None
    assert github["secrets"] == [{"secret_id": created["secret_id"], "created_at": github["secrets"][0]["created_at"]}]
    assert github["webhook_url"] == created["webhook_url"]
    assert rows[quiet["connection_id"]]["last_delivery_at"] is None
    assert rows[quiet["connection_id"]]["deliveries"] == {"pending": 0, "processed": 0, "ignored": 0, "failed": 0}


async def test_list_is_paginated(hooks: httpx.AsyncClient) -> None:
    ids = {(await new_connection(hooks, "github"))["connection_id"] for _ in range(3)}
    first = (await hooks.get("/v1/connections", params={"limit": 2}, headers=auth())).json()
    assert len(first["data"]) == 2 and first["next_cursor"]
    second = (
        await hooks.get("/v1/connections", params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth())
    ).json()
    assert second["next_cursor"] is None
    assert {c["connection_id"] for c in first["data"] + second["data"]} == ids
    bad = await hooks.get("/v1/connections", params={"cursor": "!!"}, headers=auth())
    assert bad.status_code == 422


async def test_a_third_secret_drops_the_oldest_and_the_last_one_cannot_be_revoked(hooks: httpx.AsyncClient) -> None:
    created = await new_connection(hooks, "github")
    cid = created["connection_id"]
    second = (await hooks.post(f"/v1/connections/{cid}/secrets", json={}, headers=auth())).json()
    assert second["dropped_secret_ids"] == [] and second["secret"].startswith("whsec_")
    third = (await hooks.post(f"/v1/connections/{cid}/secrets", json={}, headers=auth())).json()
    assert third["dropped_secret_ids"] == [created["secret_id"]]
    listed = (await hooks.get("/v1/connections", headers=auth())).json()["data"][0]
    assert [s["secret_id"] for s in listed["secrets"]] == [second["secret_id"], third["secret_id"]]

    gone = await hooks.delete(f"/v1/connections/{cid}/secrets/{created['secret_id']}", headers=auth())
    assert gone.status_code == 404
    assert (
        await hooks.delete(f"/v1/connections/{cid}/secrets/{second['secret_id']}", headers=auth())
    ).status_code == 204
    last = await hooks.delete(f"/v1/connections/{cid}/secrets/{third['secret_id']}", headers=auth())
    assert last.status_code == 409 and last.json()["error"] == "conflict"


async def test_validation_and_not_found(hooks: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, Any], int]] = [
        ({"vendor": "myspace", "name": "x"}, 422),
        ({"vendor": "github", "name": ""}, 422),
        ({"vendor": "github", "name": "x", "secret": "short"}, 422),
        ({"vendor": "github", "name": "x", "secret": "has spaces in it 0123456789"}, 422),
        ({"vendor": "generic", "name": "x", "secret": "not-base64-at-all-!!!!!!"}, 422),
        ({"vendor": "github", "name": "x", "extra": 1}, 422),
    ]
    for payload, status in cases:
        resp = await hooks.post("/v1/connections", json=payload, headers=auth())
        assert resp.status_code == status, (payload, resp.text)
        assert resp.json()["error"] == "validation_error"
    missing = "00000000-0000-0000-0000-000000000000"
    assert (await hooks.post(f"/v1/connections/{missing}/secrets", json={}, headers=auth())).status_code == 404
    assert (await hooks.post("/v1/connections/nope/secrets", json={}, headers=auth())).status_code == 404
    assert (await hooks.delete(f"/v1/connections/{missing}/secrets/1", headers=auth())).status_code == 404


async def test_connections_need_an_admin_key(hooks: httpx.AsyncClient) -> None:
    ingest = await make_key(hooks, "ingest", "read")
    assert (await hooks.get("/v1/connections")).status_code == 401
    resp = await hooks.post("/v1/connections", json={"vendor": "github", "name": "x"}, headers=auth(ingest))
    assert resp.status_code == 403
    assert (await hooks.get("/v1/connections", headers=auth(ingest))).status_code == 403


async def test_without_a_server_secret_key_connections_are_503(migrated: Settings, db: asyncpg.Connection) -> None:
    await truncate_webhook_tables(db)
    async with running_app(migrated.model_copy(update={"secret_key": None})) as (client, _):
        resp = await client.post("/v1/connections", json={"vendor": "github", "name": "x"}, headers=auth())
    assert resp.status_code == 503 and "SECRET_KEY" in resp.json()["detail"]
    assert await db.fetchval("SELECT count(*) FROM connection") == 0


async def test_no_issued_secret_appears_in_a_dump_of_the_database(
    hooks: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    issued = [(await new_connection(hooks, "github", "typed-by-an-admin-0123456789"))["secret"]]
    issued.append((await new_connection(hooks, "generic"))["secret"])
    cid = (await new_connection(hooks, "zendesk"))["connection_id"]
    issued.append((await hooks.post(f"/v1/connections/{cid}/secrets", json={}, headers=auth())).json()["secret"])

    dump = []
    tables = await db.fetch(
        "SELECT quote_ident(table_name) AS t FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    )
    for row in tables:
        dump += [r["line"] for r in await db.fetch(f"SELECT t::text AS line FROM {row['t']} t")]
    text = "\n".join(dump)
    assert "connection_secret" in {r["t"] for r in tables}
    for secret in issued:
        raw = secret.encode()
        forms = {secret, binascii.hexlify(raw).decode()}
        if secret.startswith("whsec_"):
            forms.add(binascii.hexlify(base64.b64decode(secret.removeprefix("whsec_"))).decode())
        assert not any(form in text for form in forms), secret
