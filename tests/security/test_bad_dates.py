"""Times outside 1970-01-01..2100-01-01 UTC (#17 findings 1 and 4), through the public API.

The probe's exact inputs: an item dated 0001-01-01T00:00:00Z sent with an ingest key was stored as
-infinity and broke every later clustering run; 0001-01-01T00:00:00+14:00 and
9999-12-31T23:59:59-12:00 overflow once converted to UTC and gave 500, and in a bulk request one
such row sank all 10,000.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.test_items import make_key, ticket
from tests.conftest import auth
from tests.connectors.connector_cases import GENERIC_UPSERT, sign
from workers.deliveries import handle_deliveries

MIGRATION = Path(__file__).resolve().parents[2] / "db" / "migrations" / "0010_time_bounds_pii_at_rest.sql"
BAD_TIMES = ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00")
EDGE_TIMES = ("1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z", "1969-12-31T23:00:00-01:00")


def _places(when: str) -> list[dict[str, Any]]:
    """The item with `when` in each timestamp field it has."""
    return [
        {"created_at": when},
        {"updated_at": when},
        {"first_response_at": when},
        {"status_events": [{"at": when, "to_status": "solved"}]},
    ]


@pytest.mark.parametrize("when", BAD_TIMES)
async def test_an_out_of_range_time_is_a_422_in_every_field(client: httpx.AsyncClient, when: str) -> None:
    ingest = auth(await make_key(client, "ingest"))
    for n, fields in enumerate(_places(when)):
        resp = await client.post("/v1/items", json=ticket(f"bad-{n}", **fields), headers=ingest)
        assert resp.status_code == 422, (fields, resp.text)
        body = resp.json()
        assert body["error"] == "validation_error"
        assert "1970-01-01" in json.dumps(body["detail"])
    listed = (await client.get("/v1/items", headers=auth())).json()["data"]
    assert listed == []


async def test_the_range_edges_are_accepted(client: httpx.AsyncClient) -> None:
    ingest = auth(await make_key(client, "ingest"))
    for n, when in enumerate(EDGE_TIMES):
        resp = await client.post(
            "/v1/items", json=ticket(f"edge-{n}", created_at=when, updated_at=None), headers=ingest
        )
        assert resp.status_code == 202, resp.text


async def test_one_bad_row_in_a_bulk_of_10000_rejects_only_that_row(client: httpx.AsyncClient) -> None:
    ingest = auth(await make_key(client, "ingest"))
    rows = [ticket(f"b-{n}") for n in range(10_000)]
    rows[17]["created_at"] = "0001-01-01T00:00:00+14:00"
    rows[4242]["updated_at"] = "9999-12-31T23:59:59-12:00"
    rows[9999]["status_events"] = [{"at": "0001-01-01T00:00:00Z", "to_status": "open"}]
    resp = await client.post("/v1/items/bulk", json=rows, headers=ingest)
    assert resp.status_code == 202, resp.text
    result = resp.json()
    assert result["accepted"] == 9_997
    assert [r["index"] for r in result["rejected"]] == [17, 4242, 9999]
    assert {r["error"] for r in result["rejected"]} == {"validation_error"}
    # The same in NDJSON, which takes the row-by-row path from the start.
    ndjson = "\n".join(json.dumps(ticket(f"n-{n}", created_at=t)) for n, t in enumerate(BAD_TIMES + EDGE_TIMES))
    resp = await client.post(
        "/v1/items/bulk", content=ndjson, headers={**ingest, "Content-Type": "application/x-ndjson"}
    )
    assert resp.status_code == 202, resp.text
    assert [r["index"] for r in resp.json()["rejected"]] == [0, 1, 2]
    assert resp.json()["accepted"] == 3


@pytest.mark.parametrize("when", BAD_TIMES)
async def test_an_out_of_range_filter_is_a_422(client: httpx.AsyncClient, when: str) -> None:
    for name in ("created_from", "created_to"):
        resp = await client.get("/v1/items", params={name: when}, headers=auth())
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"] == "validation_error"


async def test_a_webhook_item_out_of_range_fails_its_delivery_not_the_store(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    created = (await client.post("/v1/connections", json={"vendor": "generic", "name": "g"}, headers=auth())).json()
    cid, secret = created["connection_id"], created["secret"]
    for n, when in enumerate(BAD_TIMES):
        payload = json.loads(json.dumps(GENERIC_UPSERT))
        payload["data"]["external_id"] = f"W-{n}"
        payload["data"]["created_at"] = when
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **sign("generic", body, secret, at=time.time(), msg_id=f"m{n}")}
        resp = await client.post(f"/v1/webhooks/{cid}", content=body, headers=headers)
        assert resp.status_code == 202, resp.text  # acked: the delivery is stored, then mapped
    ids = [r["delivery_id"] for r in await db.fetch("SELECT delivery_id FROM delivery ORDER BY delivery_id")]
    assert await handle_deliveries(db, ids) == {"failed": 3}
    errors = [r["error"] for r in await db.fetch("SELECT error FROM delivery ORDER BY delivery_id")]
    assert all("invalid" in e for e in errors), errors
    assert await db.fetchval("SELECT count(*) FROM item") == 0


async def test_the_migration_clamps_rows_stored_before_the_bound(db: asyncpg.Connection) -> None:
    """Rows written before 0010 (the constraints dropped to let them in, as they were then) are
    clamped into the range, keeping the order of each item's events."""
    async with db.transaction():
        await db.execute("ALTER TABLE item DROP CONSTRAINT item_times_range_check")
        await db.execute("ALTER TABLE status_event DROP CONSTRAINT status_event_at_range_check")
        item_id = await db.fetchval(
            "INSERT INTO item (source, external_id, kind, body, created_at, source_updated_at, payload_hash,"
            " first_solved_at) VALUES ('z', '1', 'ticket', 'b', '-infinity', '9999-12-31T23:59:59Z', '\\x00',"
            " '0001-01-01T00:00:00Z') RETURNING item_id"
        )
        await db.execute(
            "INSERT INTO status_event (item_id, at, to_status, to_status_raw) VALUES"
            " ($1, '-infinity', 'open', 'open'), ($1, '0001-01-01T00:00:00Z', 'open', 'open'),"
            " ($1, '0002-01-01T00:00:00Z', 'solved', 'solved'), ($1, '2026-01-01T00:00:00Z', 'open', 'open')",
            item_id,
        )
        await db.execute(MIGRATION.read_text())
        row = await db.fetchrow("SELECT created_at, source_updated_at, first_solved_at FROM item")
        events = await db.fetch("SELECT at, to_status_raw FROM status_event ORDER BY at, to_status_raw")
        # The constraints are back: a new out-of-range row is refused by Postgres itself.
        with pytest.raises(asyncpg.CheckViolationError):
            async with db.transaction():
                await db.execute("UPDATE item SET created_at = '-infinity'")
    assert [str(v.year) for v in row.values()] == ["1970", "2100", "1970"]
    assert [(e["at"].year, e["to_status_raw"]) for e in events] == [(1970, "open"), (1970, "solved"), (2026, "open")]
