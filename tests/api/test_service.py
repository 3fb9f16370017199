from __future__ import annotations

import gc

import asyncpg
import httpx

from api.main import GC_THRESHOLD, create_app
from schemas.settings import Settings
from tests.api.test_items import ticket
from tests.conftest import auth


async def test_healthz_and_readyz_names_what_is_missing(app_client: httpx.AsyncClient) -> None:
    assert (await app_client.get("/healthz")).json() == {"status": "ok"}
    ready = await app_client.get("/readyz")
    # no worker runs in this test: not ready, and it says why
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["postgres"] == "ok" and checks["redis"] == "ok" and checks["migrations"] == "ok"
    assert "worker" in checks["worker"]


async def test_the_app_freezes_its_startup_heap_for_the_collector(app_client: httpx.AsyncClient) -> None:
    # app_client entered the lifespan: what startup built is out of every collection from now on
    assert gc.get_freeze_count() > 10_000
    assert gc.get_threshold()[0] == GC_THRESHOLD


async def test_readyz_is_200_once_a_worker_heartbeat_is_fresh(
    app_client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    await db.execute("INSERT INTO worker_heartbeat (worker_name) VALUES ('w1')")
    assert (await app_client.get("/readyz")).status_code == 200


async def test_production_settings_hide_the_docs(migrated: Settings) -> None:
    app = create_app(migrated.model_copy(update={"environment": "production"}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in ("/docs", "/openapi.json", "/redoc"):
            assert (await client.get(path)).status_code == 404


async def test_requester_erasure_removes_their_items_and_vectors(
    app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection
) -> None:
    rows = [ticket("1", requester_id="u-1"), ticket("2", requester_id="u-1"), ticket("3", requester_id="u-2")]
    await app_client.post("/v1/items/bulk", json=rows, headers=admin)
    item_id = await db.fetchval("SELECT item_id FROM item WHERE external_id = '1'")
    await db.execute(
        "INSERT INTO embedding (item_id, model_version, content_hash, vector) VALUES ($1, 'm', 'h', 'v')", item_id
    )
    resp = await app_client.delete("/v1/requesters/u-1", headers=admin)
    assert resp.status_code == 200 and resp.json()["items_deleted"] == 2
    assert await db.fetchval("SELECT count(*) FROM item") == 1
    assert await db.fetchval("SELECT count(*) FROM embedding") == 0


async def test_a_key_past_its_rate_limit_gets_429_and_the_other_key_does_not(
    migrated: Settings, db: asyncpg.Connection
) -> None:
    app = create_app(migrated.model_copy(update={"rate_limit_per_minute": 5}))
    async with app.router.lifespan_context(app) as state:

        async def asgi(scope: object, receive: object, send: object) -> None:
            scope["state"] = dict(state)  # type: ignore[index]
            await app(scope, receive, send)  # type: ignore[arg-type]

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t") as client:
            made = await client.post("/v1/keys", json={"name": "r", "scopes": ["read"]}, headers=auth())
            reader = made.json()["key"]
            codes = [(await client.get("/v1/items", headers=auth(reader))).status_code for _ in range(7)]
            assert codes[:4] == [200] * 4 and codes[-1] == 429
            limited = await client.get("/v1/items", headers=auth(reader))
            assert limited.json()["error"] == "rate_limited" and 1 <= int(limited.headers["retry-after"]) <= 60
            other = await client.post("/v1/keys", json={"name": "r2", "scopes": ["read"]}, headers=auth())
            assert other.status_code == 201  # the admin key has its own budget
            assert (await client.get("/v1/items", headers=auth(other.json()["key"]))).status_code == 200


def test_routers_whose_paths_overlap_are_one_resource() -> None:
    # create_app includes the busiest routers first; that is safe only while a request's path can
    # match routes of one resource alone (whose routers keep their order).
    import re

    from starlette.routing import compile_path

    schema = create_app(Settings(environment="test", secret_key="k" * 32)).openapi()["paths"]
    routes = [
        (path, method, op["tags"][0]) for path, ops in schema.items() for method, op in ops.items() if "tags" in op
    ]
    overlaps = []
    for path, method, tag in routes:
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for other, other_method, other_tag in routes:
            if other != path and other_method == method and compile_path(other)[0].match(concrete):
                overlaps.append((method, path, other, tag, other_tag))
    assert routes and all(tag == other_tag for *_, tag, other_tag in overlaps), overlaps
