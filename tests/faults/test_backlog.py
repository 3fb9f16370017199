"""#17 backlog: while the workers lag, ingest keeps acknowledging and /readyz shows the lag
(its counts are capped so that a backlog of millions costs it no more than one of ten thousand)."""

from __future__ import annotations

import asyncpg
import httpx

from db.queries.work import LAG_COUNT_CAP
from tests.api.test_items import ticket
from tests.conftest import auth


async def test_acks_continue_and_readyz_shows_the_lag_while_no_worker_drains(
    app_client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    # A live worker by its heartbeat, but nothing draining: the service is ready, and behind.
    await db.execute("INSERT INTO worker_heartbeat (worker_name) VALUES ('lagging')")
    empty = (await app_client.get("/readyz")).json()
    assert empty["lag"] == {
        "pending_items": 0, "pending_items_capped": False, "oldest_pending_item_s": None, "pending_deliveries": 0
    }  # fmt: skip
    for start in range(0, LAG_COUNT_CAP + 500, 5_000):
        rows = [ticket(f"lag-{n}") for n in range(start, min(start + 5_000, LAG_COUNT_CAP + 500))]
        resp = await app_client.post("/v1/items/bulk", json=rows, headers=auth())
        assert resp.status_code == 202 and resp.json()["accepted"] == len(rows)
    await db.execute("UPDATE item SET changed_at = now() - interval '90 seconds' WHERE external_id = 'lag-0'")
    one = await app_client.post("/v1/items", json=ticket("one-more"), headers=auth())
    assert one.status_code == 202
    ready = await app_client.get("/readyz")
    assert ready.status_code == 200, ready.text
    lag = ready.json()["lag"]
    assert lag["pending_items"] == LAG_COUNT_CAP and lag["pending_items_capped"] is True
    assert lag["oldest_pending_item_s"] >= 90
    await db.execute("UPDATE item SET pending = false WHERE external_id <> 'one-more'")
    lag = (await app_client.get("/readyz")).json()["lag"]
    assert (lag["pending_items"], lag["pending_items_capped"]) == (1, False)
    assert lag["oldest_pending_item_s"] < 90
