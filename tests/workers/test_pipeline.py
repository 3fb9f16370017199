"""End to end: an item posted to the API is embedded by a real worker process on real Redis."""

from __future__ import annotations

import subprocess

import asyncpg
import httpx
import pytest

from tests.api.test_items import ticket
from tests.conftest import wait_for

pytestmark = pytest.mark.model


async def test_posted_item_is_embedded_classified_and_marked_processed(
    app_client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Connection,
    worker: subprocess.Popen[bytes],
) -> None:
    body = (
        "Hi, my card payment to jane.doe@example.com was declined twice. "
        "Call me on +44 20 7946 0958. It would be great if you could add Apple Pay support."
    )
    resp = await app_client.post("/v1/items", json=ticket("e2e", body=body), headers=admin)
    item_id = resp.json()["item_id"]

    async def embedded() -> dict[str, object] | None:
        item = (await app_client.get(f"/v1/items/{item_id}", headers=admin)).json()
        return item if item["embedded_at"] else None

    item = await wait_for(embedded, timeout=180)
    assert item["intent"] in {"feature_request", "bug", "question", "other"}
    assert 0.0 <= item["intent_confidence"] <= 1.0 and item["intent_source"] == "model"
    row = await db.fetchrow("SELECT vector, model_version FROM embedding WHERE item_id = $1", item_id)
    assert row is not None and len(row["vector"]) == 384 * 4
    clean = await db.fetchval("SELECT clean_text FROM item WHERE item_id = $1", item_id)
    assert "jane.doe@example.com" not in clean and "7946" not in clean and "<EMAIL>" in clean
    assert await db.fetchval("SELECT pending FROM item WHERE item_id = $1", item_id) is False

    # the same item again, unchanged text: no second vector, stays one row
    await app_client.post("/v1/items", json=ticket("e2e", body=body, updated_at="2026-11-09T10:00:00Z"), headers=admin)
    await wait_for(lambda: _processed(db, item_id), timeout=60)
    assert await db.fetchval("SELECT count(*) FROM embedding") == 1


async def _processed(db: asyncpg.Connection, item_id: int) -> bool:
    return bool(await db.fetchval("SELECT NOT pending FROM item WHERE item_id = $1", item_id))


async def test_a_source_hint_wins_over_the_classifier(
    app_client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Connection,
    worker: subprocess.Popen[bytes],
) -> None:
    resp = await app_client.post(
        "/v1/items", json=ticket("hint", body="The export button crashes the app.", intent="feature_request"),
        headers=admin,
    )  # fmt: skip
    item_id = resp.json()["item_id"]
    await wait_for(lambda: _processed(db, item_id), timeout=180)
    row = await db.fetchrow("SELECT intent, intent_source, intent_confidence FROM item WHERE item_id = $1", item_id)
    assert (row["intent"], row["intent_source"], row["intent_confidence"]) == ("feature_request", "source", 1.0)


async def test_a_new_item_near_a_person_theme_seed_joins_it_ahead_of_the_nearest_theme(
    app_client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Connection,
    worker: subprocess.Popen[bytes],
) -> None:
    body = "I was charged twice for my crypto top-up and the second payment is still pending."
    first = (await app_client.post("/v1/items", json=ticket("seed-1", body=body), headers=admin)).json()["item_id"]
    await wait_for(lambda: _processed(db, first), timeout=180)
    vector = await db.fetchval("SELECT vector FROM embedding WHERE item_id = $1", first)
    # a clustered leaf right on the item, and a person's theme whose seed is the item too: the seed wins
    leaf = await db.fetchval(
        "INSERT INTO theme (label, centroid, size) VALUES ('payments', $1, 1) RETURNING theme_id", vector
    )
    person = await db.fetchval(
        "INSERT INTO theme (label, label_pinned, origin, seed_centroid, seed_threshold)"
        " VALUES ('Crypto top-up', true, 'person', $1, 0.9) RETURNING theme_id",
        vector,
    )
    second = (await app_client.post("/v1/items", json=ticket("seed-2", body=body), headers=admin)).json()["item_id"]
    await wait_for(lambda: _processed(db, second), timeout=180)
    assert await db.fetchval("SELECT theme_id FROM item WHERE item_id = $1", second) == person != leaf
