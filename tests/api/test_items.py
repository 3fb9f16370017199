from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx

from api.routes.items import VALIDATE_PIECE
from schemas.settings import Settings
from tests.conftest import auth, running_app


def ticket(external_id: str = "1", **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "source": "zendesk",
        "external_id": external_id,
        "kind": "ticket",
        "title": "Refund not received",
        "body": "I asked for a refund two weeks ago and nothing arrived.",
        "created_at": "2026-11-02T10:00:00Z",
        "updated_at": "2026-11-02T10:00:00Z",
        "status": "open",
    }
    item.update(overrides)
    return item


async def make_key(client: httpx.AsyncClient, *scopes: str) -> str:
    resp = await client.post("/v1/keys", json={"name": "t", "scopes": list(scopes)}, headers=auth())
    assert resp.status_code == 201, resp.text
    key: str = resp.json()["key"]
    return key


async def test_create_item_then_read_it_back(app_client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    resp = await app_client.post("/v1/items", json=ticket(tags=["refund"]), headers=admin)
    assert resp.status_code == 202
    body = resp.json()
    assert body["created"] is True
    got = await app_client.get(f"/v1/items/{body['item_id']}", headers=admin)
    assert got.status_code == 200
    item = got.json()
    assert item["external_id"] == "1"
    assert item["tags"] == ["refund"]
    assert item["status"] == "open" and item["status_raw"] == "open"
    assert item["embedded_at"] is None and item["theme_id"] is None


async def test_same_item_twenty_times_concurrently_is_one_row(
    app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection
) -> None:
    results = await asyncio.gather(*[app_client.post("/v1/items", json=ticket("42"), headers=admin) for _ in range(20)])
    assert all(r.status_code == 202 for r in results), [r.text for r in results if r.status_code != 202]
    assert len({r.json()["item_id"] for r in results}) == 1
    assert sum(r.json()["created"] for r in results) == 1
    assert await db.fetchval("SELECT count(*) FROM item") == 1


async def test_an_older_update_never_overwrites_a_newer_one(
    app_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    newer = ticket(title="newer", updated_at="2026-11-03T10:00:00Z", status="solved")
    older = ticket(title="older", updated_at="2026-11-02T12:00:00Z", status="open")
    first = await app_client.post("/v1/items", json=newer, headers=admin)
    await app_client.post("/v1/items", json=older, headers=admin)
    item = (await app_client.get(f"/v1/items/{first.json()['item_id']}", headers=admin)).json()
    assert item["title"] == "newer"
    assert item["status"] == "solved"


async def test_status_events_are_deduplicated_ordered_and_normalised(
    app_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    events = [
        {"at": "2026-11-04T10:00:00Z", "from_status": "Solved", "to_status": "Open"},
        {"at": "2026-11-03T10:00:00Z", "from_status": "Open", "to_status": "Solved"},
        {"at": "2026-11-03T10:00:00Z", "from_status": "Open", "to_status": "Solved"},
    ]
    resp = await app_client.post("/v1/items", json=ticket(status_events=events), headers=admin)
    item_id = resp.json()["item_id"]
    # the same history again, plus a later solve, delivered out of order
    later = [
        {"at": "2026-11-05T10:00:00Z", "from_status": "Open", "to_status": "Solved"},
        events[0],
    ]
    await app_client.post(
        "/v1/items",
        json=ticket(status_events=later, updated_at="2026-11-05T10:00:00Z"),
        headers=admin,
    )
    item = (await app_client.get(f"/v1/items/{item_id}", headers=admin)).json()
    assert [(e["at"][:10], e["to_status"], e["to_status_raw"]) for e in item["status_events"]] == [
        ("2026-11-03", "solved", "Solved"),
        ("2026-11-04", "open", "Open"),
        ("2026-11-05", "solved", "Solved"),
    ]
    assert item["reopen_count"] == 1
    assert item["first_solved_at"].startswith("2026-11-03")
    assert item["last_solved_at"].startswith("2026-11-05")
    assert item["status"] == "solved"


async def test_reopen_counter_is_used_only_without_history(
    app_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    resp = await app_client.post("/v1/items", json=ticket(reopens=2, status="closed"), headers=admin)
    item = (await app_client.get(f"/v1/items/{resp.json()['item_id']}", headers=admin)).json()
    assert item["reopen_count"] == 2


async def test_bulk_stores_valid_rows_and_reports_rejected_ones(
    app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection
) -> None:
    rows: list[Any] = [ticket(str(n)) for n in range(5)]
    rows.insert(2, {"source": "zendesk", "external_id": "bad", "kind": "ticket", "body": "x"})  # no created_at
    rows.append("not an object")
    rows.append(ticket("6", body="   "))
    resp = await app_client.post("/v1/items/bulk", json=rows, headers=admin)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["accepted"] == 5 and body["created"] == 5 and body["updated"] == 0
    assert [r["index"] for r in body["rejected"]] == [2, 6, 7]
    assert await db.fetchval("SELECT count(*) FROM item") == 5
    # retrying the same request is safe: nothing new, nothing changed
    again = (await app_client.post("/v1/items/bulk", json=rows, headers=admin)).json()
    assert (again["created"], again["updated"]) == (0, 0)
    assert await db.fetchval("SELECT count(*) FROM item") == 5


async def test_bulk_validation_leaves_the_event_loop_to_other_requests_between_pieces() -> None:
    from api.routes.items import VALIDATE_PIECE, _validate_all

    rows = [ticket(str(n)) for n in range(10 * VALIDATE_PIECE)]
    turns, validating = 0, True

    async def other_request() -> None:
        nonlocal turns
        while validating:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_request())
    await asyncio.sleep(0)
    started = turns
    items = await _validate_all(json.dumps(rows).encode(), "application/json")
    validating = False
    await other
    assert items is not None and [i.external_id for i in items] == [r["external_id"] for r in rows]
    # one turn of the other request between each two pieces at least
    assert turns - started >= 9


async def test_a_bulk_upload_holds_no_pooled_connection_while_its_body_arrives_or_is_validated(
    migrated: Settings, db: asyncpg.Connection
) -> None:
    # One connection in the pool: a bulk request that held it while a slow client sent the rest of
    # its body made every other request wait for it, and answer 503 when the wait ran out.
    tight = migrated.model_copy(update={"db_pool_min": 1, "db_pool_max": 1, "db_acquire_timeout_s": 0.5})
    rows = json.dumps([ticket(str(n)) for n in range(3 * VALIDATE_PIECE)]).encode()
    rest_may_come = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield rows[:100]
        await rest_may_come.wait()
        yield rows[100:]

    async with running_app(tight) as (client, _):
        resp = await client.post("/v1/keys", json={"name": "i", "scopes": ["ingest", "read"]}, headers=auth())
        key = auth(resp.json()["key"])  # a stored key, so the key check itself needs a connection
        bulk = asyncio.create_task(
            client.post("/v1/items/bulk", content=slow_body(), headers={**key, "Content-Type": "application/json"})
        )
        try:
            await asyncio.sleep(0.3)  # the bulk request has passed its key check and waits for its body
            assert not bulk.done()
            single = await client.post("/v1/items", json=ticket("single"), headers=key)
            assert single.status_code == 202, single.text
            assert (await client.get(f"/v1/items/{single.json()['item_id']}", headers=key)).status_code == 200
        finally:
            rest_may_come.set()
        resp = await bulk
        assert resp.status_code == 202, resp.text
        assert resp.json()["accepted"] == 3 * VALIDATE_PIECE and resp.json()["rejected"] == []
    assert await db.fetchval("SELECT count(*) FROM item") == 3 * VALIDATE_PIECE + 1


async def test_bulk_accepts_ndjson_and_keeps_the_newest_duplicate(
    app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection
) -> None:
    rows = [
        ticket("7", title="new", updated_at="2026-11-05T00:00:00Z"),
        ticket("7", title="old", updated_at="2026-11-01T00:00:00Z"),
    ]
    body = "\n".join(json.dumps(r) for r in rows) + "\n{not json\n"
    resp = await app_client.post(
        "/v1/items/bulk", content=body, headers={**admin, "Content-Type": "application/x-ndjson"}
    )
    assert resp.status_code == 202, resp.text
    assert resp.json()["rejected"][0]["index"] == 2
    assert await db.fetchval("SELECT title FROM item WHERE external_id = '7'") == "new"


async def test_list_items_paginates_with_a_cursor_and_filters(
    app_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    rows = [ticket(str(n), source="jira" if n % 2 else "zendesk") for n in range(7)]
    await app_client.post("/v1/items/bulk", json=rows, headers=admin)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "source": "zendesk"}
        if cursor:
            params["cursor"] = cursor
        page = (await app_client.get("/v1/items", params=params, headers=admin)).json()
        seen += [it["external_id"] for it in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == ["0", "2", "4", "6"]
    unassigned = (await app_client.get("/v1/items", params={"theme_id": "none"}, headers=admin)).json()
    assert len(unassigned["data"]) == 7
    bad = await app_client.get("/v1/items", params={"cursor": "garbage!"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"] == "validation_error"


async def test_keys_and_scopes(app_client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    ingest = await make_key(app_client, "ingest")
    read = await make_key(app_client, "read")
    created = await app_client.post("/v1/items", json=ticket(), headers=auth(ingest))
    assert created.status_code == 202
    item_id = created.json()["item_id"]
    assert (await app_client.get(f"/v1/items/{item_id}", headers=auth(ingest))).status_code == 403
    assert (await app_client.get(f"/v1/items/{item_id}", headers=auth(read))).status_code == 200
    assert (await app_client.post("/v1/items", json=ticket(), headers=auth(read))).status_code == 403
    assert (await app_client.delete(f"/v1/items/{item_id}", headers=auth(read))).status_code == 403
    assert (await app_client.get("/v1/items")).status_code == 401
    assert (await app_client.get("/v1/items", headers=auth("tk_nope"))).status_code == 401
    assert (await app_client.get(f"/v1/items?api_key={read}")).status_code == 401
    keys = (await app_client.get("/v1/keys", headers=admin)).json()["data"]
    read_id = next(k["api_key_id"] for k in keys if k["prefix"] == read[:9])
    assert (await app_client.delete(f"/v1/keys/{read_id}", headers=admin)).status_code == 200
    revoked = await app_client.get(f"/v1/items/{item_id}", headers=auth(read))
    assert revoked.status_code == 401 and revoked.json()["error"] == "unauthorized"


async def test_delete_erases_item_and_events(
    app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection
) -> None:
    events = [{"at": "2026-11-03T10:00:00Z", "from_status": "open", "to_status": "solved"}]
    item_id = (await app_client.post("/v1/items", json=ticket(status_events=events), headers=admin)).json()["item_id"]
    assert (await app_client.delete(f"/v1/items/{item_id}", headers=admin)).status_code == 204
    assert (await app_client.get(f"/v1/items/{item_id}", headers=admin)).status_code == 404
    assert await db.fetchval("SELECT count(*) FROM status_event") == 0
    assert (await app_client.delete(f"/v1/items/{item_id}", headers=admin)).status_code == 404


async def test_nul_bytes_and_lone_surrogates_are_cleaned_not_rejected(
    app_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    raw = '{"source":"api","external_id":"n","kind":"ticket","body":"log\\u0000line \\ud800 end",' \
          '"created_at":"2026-11-02T10:00:00Z"}'  # fmt: skip
    resp = await app_client.post("/v1/items", content=raw, headers={**admin, "Content-Type": "application/json"})
    assert resp.status_code == 202, resp.text
    item = (await app_client.get(f"/v1/items/{resp.json()['item_id']}", headers=admin)).json()
    assert "\x00" not in item["body"] and item["body"].startswith("logline")


async def test_bad_input_gets_the_error_envelope_never_a_5xx(
    app_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    json_headers = {**admin, "Content-Type": "application/json"}
    cases = [
        ("/v1/items", b"\xff\xfe not utf-8", 422),
        ("/v1/items", json.dumps({**ticket(), "surprise": 1}).encode(), 422),
        ("/v1/items", json.dumps(ticket(created_at="2026-11-02T10:00:00")).encode(), 422),
        ("/v1/items", b"[" * 10_000 + b"]" * 10_000, 400),
        ("/v1/items/bulk", b"[" * 10_000 + b"]" * 10_000, 400),
        ("/v1/items/bulk", b"{}", 422),
        ("/v1/items", json.dumps(ticket(body="x" * (64 * 1024 + 1))).encode(), 422),
    ]
    for path, body, code in cases:
        resp = await app_client.post(path, content=body, headers=json_headers)
        assert resp.status_code == code, (path, body[:40], resp.status_code, resp.text[:200])
        assert set(resp.json()) == {"error", "detail"}
    text = await app_client.post("/v1/items/bulk", content=b"a,b", headers={**admin, "Content-Type": "text/csv"})
    assert text.status_code == 415
    huge_id = await app_client.get("/v1/items/99999999999999999999", headers=admin)
    assert huge_id.status_code == 422


async def test_bodies_over_the_limits_get_413(app_client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    big = json.dumps(ticket(body="x" * (1024 * 1024 + 10))).encode()
    resp = await app_client.post("/v1/items", content=big, headers={**admin, "Content-Type": "application/json"})
    assert resp.status_code == 413 and resp.json()["error"] == "payload_too_large"

    async def chunks() -> Any:  # no Content-Length: counted as it streams
        for _ in range(40):
            yield b" " * (1024 * 1024)

    resp = await app_client.post(
        "/v1/items/bulk", content=chunks(), headers={**admin, "Content-Type": "application/json"}
    )
    assert resp.status_code == 413
    too_many = [ticket(str(n)) for n in range(10_001)]
    resp = await app_client.post("/v1/items/bulk", json=too_many, headers=admin)
    assert resp.status_code == 413 and "10000" in resp.json()["detail"]


async def test_the_earliest_first_reply_seen_is_kept_whatever_the_version(
    app_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await app_client.post("/v1/items", json=ticket(first_response_at="2026-11-02T11:00:00Z"), headers=admin)
    item_id = first.json()["item_id"]
    newer = ticket(first_response_at="2026-11-02T12:00:00Z", updated_at="2026-11-03T00:00:00Z")
    older = ticket(first_response_at="2026-11-02T10:30:00Z", updated_at="2026-11-01T00:00:00Z")
    await app_client.post("/v1/items", json=newer, headers=admin)
    item = (await app_client.get(f"/v1/items/{item_id}", headers=admin)).json()
    assert item["first_response_at"] == "2026-11-02T11:00:00Z"
    await app_client.post("/v1/items", json=older, headers=admin)
    item = (await app_client.get(f"/v1/items/{item_id}", headers=admin)).json()
    assert item["first_response_at"] == "2026-11-02T10:30:00Z"
    assert item["updated_at"] == "2026-11-03T00:00:00Z"  # the older version changed nothing else


def test_status_words_from_every_vendor_normalise() -> None:
    from schemas.items import normalise_status

    cases = {
        "Pending Reminder": "pending", "pending close": "pending", "merged": "closed", "hold": "on_hold",
        "Waiting on Customer": "pending", "waiting for support": "open", "Canceled": "closed",
        "resolved": "solved", "snoozed": "on_hold", "spam": None, "locked": None, "4": None,
    }  # fmt: skip
    assert {w: normalise_status(w) for w in cases} == cases
