"""Reports reused while fresh (api/report_cache.py): an expensive report is served again with its
Age, a curation change is seen at once, a stale one is rebuilt by one reader while the others get
the stored one, and cheap reports are never stored; the weekly dashboard pages are reused alike.
"Expensive" is forced with REPORT_REUSE_MIN_MS=0, since the test data is small."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from db.pool import create_pool
from db.queries.report_cache import lock_report_build
from schemas.settings import Settings
from tests.api.test_dashboard import new_key, sign_in
from tests.api.test_reports import ingest, item, theme
from tests.conftest import running_app

WEEK = {"from": "2026-11-02", "to": "2026-11-09"}
WEEKLY_PAGES = ("/", "/features", "/operations", "/customer")


def reusing(settings: Settings, max_s: float) -> Settings:
    return settings.model_copy(
        update={"report_reuse_min_ms": 0.0, "report_reuse_cost_ratio": 1e9, "report_reuse_max_s": max_s}
    )


async def waiting_in_postgres(db: asyncpg.Connection, count: int) -> list[str]:
    """The lock waits of other sessions, once there are `count` of them (bounded: 10 s)."""
    for _ in range(200):
        await db.execute("SELECT pg_stat_clear_snapshot()")  # a transaction sees one snapshot otherwise
        waits: list[str] = [
            r["wait_event"]
            for r in await db.fetch(
                "SELECT wait_event FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
        ]
        if len(waits) >= count:
            return sorted(waits)
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {waits} waiting")


async def volumes(
    client: httpx.AsyncClient, admin: dict[str, str], params: Any = WEEK
) -> tuple[set[tuple[str, int]], str | None]:
    resp = await client.get("/v1/reports/theme-trends", params=params, headers=admin)
    assert resp.status_code == 200, resp.text
    return {(r["label"], r["volume"]) for r in resp.json()["rows"]}, resp.headers.get("age")


async def refunds_read_once(client: httpx.AsyncClient, db: asyncpg.Connection, admin: dict[str, str], n: int) -> int:
    """`n` items in one week under the theme "refunds", and the report read once; its theme id."""
    days = ["2026-11-03T10:00:00Z", "2026-11-04T10:00:00Z"][:n]
    await ingest(client, admin, [item(chr(ord("a") + k), day) for k, day in enumerate(days)])
    refunds = await theme(db, "refunds", [chr(ord("a") + k) for k in range(n)])
    assert await volumes(client, admin) == ({("refunds", n), ("unassigned", 0)}, None)
    return refunds


async def rename(client: httpx.AsyncClient, admin: dict[str, str], theme_id: int, label: str) -> None:
    """A curation change: every stored report's copy is built before it from now on."""
    resp = await client.patch(f"/v1/themes/{theme_id}", json={"label": label}, headers=admin)
    assert resp.status_code == 200, resp.text


async def reads_while_items_locked(
    client: httpx.AsyncClient, db: asyncpg.Connection, admin: dict[str, str], n: int
) -> tuple[list[str], list[tuple[set[tuple[str, int]], str | None]]]:
    """`n` concurrent reads while the items table is locked, so a build's scan waits for it: the
    lock waits in Postgres once all `n` wait, then the answers."""
    async with db.transaction():
        await db.execute("LOCK TABLE item IN ACCESS EXCLUSIVE MODE")
        reads = [asyncio.create_task(volumes(client, admin)) for _ in range(n)]
        waits = await waiting_in_postgres(db, n)
    return waits, list(await asyncio.gather(*reads))


async def test_a_stored_report_is_served_with_its_age_until_a_curation_change(
    migrated: Settings, db: asyncpg.Connection, admin: dict[str, str]
) -> None:
    async with running_app(reusing(migrated, 3600)) as (client, _):
        refunds = await refunds_read_once(client, db, admin, 2)

        await ingest(client, admin, [item("c", "2026-11-05T10:00:00Z")])
        await db.execute("UPDATE item SET theme_id = $1 WHERE external_id = 'c'", refunds)
        # the query in another order is the same report: served from the store, new item not yet in it
        rows, age = await volumes(client, admin, [("to", WEEK["to"]), ("from", WEEK["from"])])
        rows_again, _ = await volumes(client, admin)
        assert rows == rows_again == {("refunds", 2), ("unassigned", 0)} and age is not None and int(age) >= 0
        csv = await client.get("/v1/reports/theme-trends", params=WEEK, headers={**admin, "Accept": "text/csv"})
        assert csv.headers["age"] is not None and ",refunds,2," in csv.text

        # a rename is a curation change: the next read is built afresh, new item and new label
        await rename(client, admin, refunds, "Refund not received")
        assert await volumes(client, admin) == ({("Refund not received", 3), ("unassigned", 0)}, None)
    assert await db.fetchval("SELECT count(*) FROM report_cache") == 1


async def test_a_stale_report_is_rebuilt_by_one_reader_while_the_others_get_the_stored_one(
    migrated: Settings, db: asyncpg.Connection, admin: dict[str, str]
) -> None:
    async with running_app(reusing(migrated, 1.0)) as (client, _):
        await ingest(client, admin, [item("a", "2026-11-03T10:00:00Z")])
        assert await volumes(client, admin) == ({("unassigned", 1)}, None)
        await ingest(client, admin, [item("b", "2026-11-04T10:00:00Z")])
        await asyncio.sleep(1.2)  # past REPORT_REUSE_MAX_S

        # another reader is rebuilding it: this one is served the stored report, age and all
        await db.execute("UPDATE report_cache SET refreshing_until = now() + interval '1 minute'")
        rows, age = await volumes(client, admin)
        assert rows == {("unassigned", 1)} and age is not None and int(age) >= 1

        # the rebuild's claim lapsed (the rebuilder died): the next reader rebuilds it
        await db.execute("UPDATE report_cache SET refreshing_until = now() - interval '1 second'")
        assert await volumes(client, admin) == ({("unassigned", 2)}, None)
        rows, age = await volumes(client, admin)
        assert rows == {("unassigned", 2)} and age is not None


async def test_cheap_reports_are_never_stored_only_noted_and_their_readers_do_not_take_turns(
    app_client: httpx.AsyncClient, db: asyncpg.Connection, admin: dict[str, str], migrated: Settings
) -> None:
    assert migrated.report_reuse_min_ms == 100  # the default; these few items take a few ms
    await ingest(app_client, admin, [item("a", "2026-11-03T10:00:00Z")])
    assert await volumes(app_client, admin) == ({("unassigned", 1)}, None)
    await ingest(app_client, admin, [item("b", "2026-11-04T10:00:00Z")])
    assert await volumes(app_client, admin) == ({("unassigned", 2)}, None)
    for name, params in [
        ("reopen-rate", {"group_by": "theme"}),
        ("resolution-times", {"metric": "first_response"}),
        ("feature-requests", {}),
    ]:
        resp = await app_client.get(f"/v1/reports/{name}", params={**WEEK, **params}, headers=admin)
        assert resp.status_code == 200 and "age" not in resp.headers
    # each report is noted as cheap (no body, cost 0), nothing more
    notes = await db.fetch("SELECT body, cost_ms FROM report_cache")
    assert len(notes) == 4 and {(r["body"], r["cost_ms"]) for r in notes} == {("", 0.0)}

    # noted as cheap: every reader builds it at once, none waits for another
    waits, results = await reads_while_items_locked(app_client, db, admin, 3)
    assert waits == ["relation", "relation", "relation"]
    assert [rows for rows, _ in results] == [{("unassigned", 2)}] * 3


async def test_every_cached_report_is_served_again_as_json_and_csv(
    migrated: Settings, db: asyncpg.Connection, admin: dict[str, str]
) -> None:
    async with running_app(reusing(migrated, 3600)) as (client, _):
        await ingest(client, admin, [item("a", "2026-11-03T10:00:00Z")])
        await db.execute("UPDATE item SET intent = 'feature_request'")
        for name, params in [
            ("reopen-rate", {"group_by": "theme"}),
            ("resolution-times", {"metric": "first_response"}),
            ("feature-requests", {}),
        ]:
            url, query = f"/v1/reports/{name}", {**WEEK, **params}
            first = await client.get(url, params=query, headers=admin)
            again = await client.get(url, params=query, headers=admin)
            as_csv = await client.get(url, params=query, headers={**admin, "Accept": "text/csv"})
            assert first.status_code == again.status_code == as_csv.status_code == 200, name
            assert "age" not in first.headers and again.headers["age"] and as_csv.headers["age"], name
            assert again.json() == first.json(), name
            assert as_csv.headers["content-type"].startswith("text/csv"), name
    assert await db.fetchval("SELECT count(*) FROM report_cache") == 3


async def test_the_weekly_pages_are_reused_alike_for_every_viewer_and_theme_pages_never(
    migrated: Settings, db: asyncpg.Connection, admin: dict[str, str]
) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    week = {"week": at.date().isoformat(), "tz": "UTC"}
    async with running_app(reusing(migrated, 3600)) as (client, _):
        client.base_url = httpx.URL("http://127.0.0.1")  # loopback: the session cookie is kept
        await ingest(client, admin, [item("a", at.isoformat())])
        refunds = await theme(db, "Refund not received", ["a"])
        _, key = await new_key(client, admin, "read")
        assert (await sign_in(client, key)).status_code == 303
        first = {path: await client.get(path, params=week) for path in WEEKLY_PAGES}
        assert all(r.status_code == 200 and "age" not in r.headers for r in first.values())
        assert "Refund not received" in first["/"].text

        # not a curation change: the stored pages are served, headers and all, to any viewer
        await db.execute("UPDATE theme SET label = 'Changed behind its back' WHERE theme_id = $1", refunds)
        _, other = await new_key(client, admin, "read")
        assert (await sign_in(client, other)).status_code == 303
        for path in WEEKLY_PAGES:
            again = await client.get(path, params=week)
            assert again.status_code == 200 and again.headers["age"] and again.text == first[path].text, path
            assert "default-src 'none'" in again.headers["content-security-policy"], path
        # a theme page differs by viewer (personal data, curation controls): always built
        for _ in range(2):
            page = await client.get(f"/themes/{refunds}", params=week)
            assert page.status_code == 200 and "age" not in page.headers and "Changed behind its back" in page.text

        # a curation change shows at once
        resp = await client.patch(f"/v1/themes/{refunds}", json={"label": "Refund late"}, headers=admin)
        assert resp.status_code == 200, resp.text
        fresh = await client.get("/", params=week)
        assert "age" not in fresh.headers and "Refund late" in fresh.text
    assert await db.fetchval("SELECT count(*) FROM report_cache") == len(WEEKLY_PAGES)


async def test_after_a_clustering_run_one_reader_rebuilds_while_the_others_get_the_stored_one(
    migrated: Settings, db: asyncpg.Connection, admin: dict[str, str]
) -> None:
    async with running_app(reusing(migrated, 3600)) as (client, _):
        await ingest(client, admin, [item("a", "2026-11-03T10:00:00Z")])
        assert await volumes(client, admin) == ({("unassigned", 1)}, None)
        await ingest(client, admin, [item("b", "2026-11-04T10:00:00Z")])
        await db.execute("INSERT INTO clustering_run (status, finished_at) VALUES ('done', now())")

        # the stored report predates the run: while another reader rebuilds it, this one gets it
        await db.execute("UPDATE report_cache SET refreshing_until = now() + interval '1 minute'")
        rows, age = await volumes(client, admin)
        assert rows == {("unassigned", 1)} and age is not None
        # nobody is rebuilding it: this reader does, and the run's state is stored with it
        await db.execute("UPDATE report_cache SET refreshing_until = NULL")
        assert await volumes(client, admin) == ({("unassigned", 2)}, None)
        rows, age = await volumes(client, admin)
        assert rows == {("unassigned", 2)} and age is not None


async def test_a_rebuild_that_runs_out_of_time_serves_the_stored_report_not_a_503(
    migrated: Settings, db: asyncpg.Connection, admin: dict[str, str]
) -> None:
    quick = reusing(migrated, 1.0).model_copy(update={"db_statement_timeout_ms": 500})
    async with running_app(quick) as (client, _):
        await ingest(client, admin, [item("a", "2026-11-03T10:00:00Z")])
        assert await volumes(client, admin) == ({("unassigned", 1)}, None)
        await ingest(client, admin, [item("b", "2026-11-04T10:00:00Z")])
        await asyncio.sleep(1.2)  # stale: this reader claims the rebuild
        async with db.transaction():  # the items are locked: the rebuild's scan hits the statement timeout
            await db.execute("LOCK TABLE item IN ACCESS EXCLUSIVE MODE")
            rows, age = await volumes(client, admin)
        assert rows == {("unassigned", 1)} and age is not None and int(age) >= 1
        # with no stored report to fall back on, the timeout is still a 503
        await db.execute("TRUNCATE report_cache")
        async with db.transaction():
            await db.execute("LOCK TABLE item IN ACCESS EXCLUSIVE MODE")
            resp = await client.get("/v1/reports/theme-trends", params=WEEK, headers=admin)
        assert resp.status_code == 503 and resp.json()["error"] == "service_unavailable"


async def built_once_while_the_others_wait(
    client: httpx.AsyncClient, db: asyncpg.Connection, admin: dict[str, str], expected: set[tuple[str, int]]
) -> None:
    waits, results = await reads_while_items_locked(client, db, admin, 4)
    # one reader scans (waits for the table); three wait for its build, not scanning themselves
    assert waits == ["advisory", "advisory", "advisory", "relation"]
    assert all(rows == expected for rows, _ in results)
    assert sorted(age is None for _, age in results) == [False, False, False, True]  # built once
    assert await db.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0


async def test_a_report_not_built_for_minutes_is_built_by_one_reader_while_the_others_wait(
    migrated: Settings, db: asyncpg.Connection, admin: dict[str, str]
) -> None:
    async with running_app(reusing(migrated, 3600)) as (client, _):
        await ingest(client, admin, [item("a", "2026-11-03T10:00:00Z")])
        await built_once_while_the_others_wait(client, db, admin, {("unassigned", 1)})


async def test_after_a_curation_change_one_reader_builds_and_the_others_wait_for_it(
    migrated: Settings, db: asyncpg.Connection, admin: dict[str, str]
) -> None:
    async with running_app(reusing(migrated, 3600)) as (client, _):
        refunds = await refunds_read_once(client, db, admin, 2)
        await rename(client, admin, refunds, "Refund not received")
        await built_once_while_the_others_wait(client, db, admin, {("Refund not received", 2), ("unassigned", 0)})


async def test_a_report_that_was_expensive_and_is_now_cheap_becomes_a_note(
    app_client: httpx.AsyncClient, db: asyncpg.Connection, admin: dict[str, str]
) -> None:
    refunds = await refunds_read_once(app_client, db, admin, 1)
    # as if its last build had taken 10 s (a larger install, before a purge)
    await db.execute("UPDATE report_cache SET body = '{}', cost_ms = 10000")
    await rename(app_client, admin, refunds, "Refund not received")
    assert await volumes(app_client, admin) == ({("Refund not received", 1), ("unassigned", 0)}, None)
    assert await db.fetchval("SELECT (body, cost_ms) = ('', 0) FROM report_cache") is True
    assert await db.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0


async def test_a_build_lock_a_request_left_goes_with_the_connection_and_other_releases_skip_the_reset(
    migrated: Settings, db: asyncpg.Connection
) -> None:
    pool = await create_pool(migrated.model_copy(update={"db_pool_min": 1, "db_pool_max": 1}))
    advisory = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
    try:
        async with pool.acquire() as conn:
            await lock_report_build(conn, "ab" * 32)  # as if the request's own unlock never ran
            assert await db.fetchval(advisory) == 1
        assert await db.fetchval(advisory) == 0
        # a connection that took no session state goes back without the reset's round trip
        async with pool.acquire() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            await conn.execute("SET work_mem = '7MB'")  # the API never does this: it shows the skip
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") == pid
            assert await conn.fetchval("SHOW work_mem") == "7MB"
            await lock_report_build(conn, "cd" * 32)
        async with pool.acquire() as conn:  # marked, so reset in full: the lock and the setting go
            assert await conn.fetchval("SELECT pg_backend_pid()") == pid
            assert await conn.fetchval("SHOW work_mem") != "7MB"
            assert await db.fetchval(advisory) == 0
    finally:
        await pool.close()
