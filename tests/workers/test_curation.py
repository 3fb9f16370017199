"""A person's theme end to end with the real model: created through the API (201, its size, the
back-fill queued on the clustering queue), back-filled by the job (progress recorded, only items
close to the seed join, pinned items stay put), and undone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
import httpx
import numpy as np
import pytest
from redis import Redis
from rq import Queue

from db.queries.runs import unlock_scope, wait_for_scope
from outbox.queues import CLUSTERING_QUEUE
from schemas.settings import Settings, get_settings
from tests.api.test_items import make_key
from tests.conftest import auth
from workers.curation import backfill_theme
from workers.jobs import get_embedder

REFUNDS = [
    "I asked for a refund two weeks ago and the money never arrived",
    "Where is my refund? It has been 10 days",
    "Refund still not on my card after cancelling the order",
    "You promised to pay me back, still no refund",
    "My refund for order 1234 has not come through",
    "Please send the refund for the returned item",
]
LOGINS = [
    "I cannot log in, the password reset email never comes",
    "SSO login with Okta fails with an error",
    "Two-factor code is rejected when I sign in",
    "Locked out of my account after too many login attempts",
    "The login page keeps spinning forever",
    "Password reset link says expired",
]


@pytest.fixture
def job_settings(migrated: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    # The reference model loads from the installed package, with no ONNX build to cache.
    for name, value in {
        "DATABASE_URL": migrated.database_url,
        "REDIS_URL": migrated.redis_url,
        "EMBEDDER": "sentence-transformers",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


async def add_items(db: asyncpg.Connection, texts: list[str], vectors: np.ndarray, model: str, theme: int) -> list[int]:
    ids = []
    for n, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
        item_id: int = await db.fetchval(
            "INSERT INTO item (source, external_id, kind, body, clean_text, created_at, payload_hash, theme_id,"
            " pending) VALUES ('api', $1, 'ticket', $2, $2, $3, 'h', $4, false) RETURNING item_id",
            f"{theme}-{len(text)}-{n}-{text[:12]}", text, datetime(2026, 11, 2, tzinfo=UTC), theme,
        )  # fmt: skip
        await db.execute(
            "INSERT INTO embedding (item_id, model_version, content_hash, vector) VALUES ($1, $2, 'h', $3)",
            item_id, model, np.asarray(vector, "<f4").tobytes(),
        )  # fmt: skip
        ids.append(item_id)
    return ids


@pytest.mark.slow
async def test_a_persons_theme_is_back_filled_by_the_job_and_undone(
    job_settings: Settings, app_client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    embedder = get_embedder(job_settings)
    vectors = embedder.embed(REFUNDS + LOGINS)
    mixed = await db.fetchval("INSERT INTO theme (label, status) VALUES ('misc', 'active') RETURNING theme_id")
    other = await db.fetchval("INSERT INTO theme (label, status) VALUES ('other', 'active') RETURNING theme_id")
    refunds = await add_items(db, REFUNDS, vectors[:6], embedder.model_version, mixed)
    logins = await add_items(db, LOGINS, vectors[6:], embedder.model_version, mixed)
    curator = auth(await make_key(app_client, "curate"))
    # A person put one refund item elsewhere on purpose: the back-fill leaves it there.
    moved = await app_client.post(f"/v1/themes/{other}/items", json={"item_ids": [refunds[5]]}, headers=curator)
    assert moved.status_code == 200

    body = {
        "label": "Refund not received",
        "description": "Customers asking where their refund is or why it has not arrived",
        "examples": ["I want my money back"],
        "item_ids": [refunds[0]],
    }
    resp = await app_client.post("/v1/themes", json=body, headers=curator)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    theme = created["theme_id"]
    assert created["size"] == 1 and created["seed_threshold"] == job_settings.curation_seed_threshold == 0.5
    assert created["backfill"]["status"] == "queued"
    queue = Queue(CLUSTERING_QUEUE, connection=Redis.from_url(job_settings.redis_url))
    assert f"backfill-{theme}" in queue.job_ids
    queue.empty()  # as if Redis had lost it: a person queues it again
    again = await app_client.post(f"/v1/themes/{theme}/backfill", headers=curator)
    assert again.status_code == 202 and f"backfill-{theme}" in queue.job_ids
    row = await db.fetchrow("SELECT origin, label_pinned, description, hidden FROM theme WHERE theme_id = $1", theme)
    assert dict(row) == {"origin": "person", "label_pinned": True, "description": body["description"], "hidden": False}

    assert await backfill_theme(theme) == "done"
    progress = (await app_client.get(f"/v1/themes/{theme}/backfill", headers=curator)).json()
    assert progress["status"] == "done" and progress["scanned"] == progress["total"] == 12
    assert progress["joined"] == 4  # refunds 1-4: 0 was pinned at creation, 5 is pinned elsewhere
    members = await db.fetchval("SELECT array_agg(item_id ORDER BY item_id) FROM item WHERE theme_id = $1", theme)
    assert members == refunds[:5]
    assert await db.fetchval("SELECT theme_id FROM item WHERE item_id = $1", refunds[5]) == other
    assert await db.fetchval("SELECT count(*) FROM item WHERE theme_id = $1", mixed) == len(logins)
    seed = np.frombuffer(await db.fetchval("SELECT seed_centroid FROM theme WHERE theme_id = $1", theme), "<f4")
    assert abs(float(np.linalg.norm(seed)) - 1.0) < 1e-4
    assert await db.fetchval("SELECT size FROM theme WHERE theme_id = $1", theme) == 5
    assert await backfill_theme(theme) == "skipped"  # done once is done
    assert (await app_client.post(f"/v1/themes/{theme}/backfill", headers=curator)).status_code == 409

    undone = await app_client.post(f"/v1/curation/{created['change_id']}/undo", headers=curator)
    assert undone.status_code == 200, undone.text
    assert await db.fetchval("SELECT count(*) FROM item WHERE theme_id = $1", theme) == 0
    assert await db.fetchval("SELECT count(*) FROM item WHERE theme_id = $1", mixed) == 11
    assert await db.fetchval("SELECT is_current FROM theme WHERE theme_id = $1", theme) is False
    listed = (await app_client.get("/v1/themes", headers=curator)).json()["data"]
    assert theme not in [t["theme_id"] for t in listed]


@pytest.mark.slow
async def test_a_backfill_waits_out_a_clustering_run_of_its_scope(
    job_settings: Settings, app_client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    # A run that read before the seed was stored would write its plan over the items joined.
    embedder = get_embedder(job_settings)
    mixed = await db.fetchval("INSERT INTO theme (label, status) VALUES ('misc', 'active') RETURNING theme_id")
    refunds = await add_items(db, REFUNDS, embedder.embed(REFUNDS), embedder.model_version, mixed)
    curator = auth(await make_key(app_client, "curate"))
    body = {"label": "Refund not received", "description": "Customers asking where their refund is"}
    resp = await app_client.post("/v1/themes", json=body, headers=curator)
    assert resp.status_code == 201, resp.text
    theme = resp.json()["theme_id"]
    run = await asyncpg.connect(job_settings.database_url)
    try:
        await wait_for_scope(run, scope="all")  # what a clustering run of the scope holds
        job = asyncio.create_task(backfill_theme(theme))
        await asyncio.sleep(2.5)
        assert not job.done()
        assert await db.fetchval("SELECT status FROM theme_backfill WHERE theme_id = $1", theme) == "queued"
        assert await db.fetchval("SELECT seed_centroid FROM theme WHERE theme_id = $1", theme) is None
        await unlock_scope(run, scope="all")
        assert await asyncio.wait_for(job, timeout=120) == "done"
    finally:
        await run.close()
    members = await db.fetchval("SELECT array_agg(item_id ORDER BY item_id) FROM item WHERE theme_id = $1", theme)
    joined = await db.fetchval("SELECT joined FROM theme_backfill WHERE theme_id = $1", theme)
    assert set(members) <= set(refunds) and len(members) == joined >= 4  # the seed rule, after the run


async def test_bad_persons_themes_are_refused(app_client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    curator = auth(await make_key(app_client, "curate"))
    for body, status in [
        ({"label": ""}, 422),
        ({"label": "x", "seed_threshold": 1.5}, 422),
        ({"label": "x", "item_ids": [424242]}, 404),
        ({"label": "x", "unknown": 1}, 422),
        ({"label": "x", "examples": [""]}, 422),
    ]:
        resp = await app_client.post("/v1/themes", json=body, headers=curator)
        assert resp.status_code == status, (body, resp.text)
    assert await db.fetchval("SELECT count(*) FROM theme") == 0
    assert await db.fetchval("SELECT count(*) FROM curation_change") == 0
