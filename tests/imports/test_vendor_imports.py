"""History imports against a local server that answers like each vendor's API (127.0.0.1 only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from db.queries.imports import select_import_states
from imports.client import ImportFailed, TokenRejected
from imports.run import import_account, reconcile_account
from tests.conftest import ADMIN_KEY
from tests.imports.vendor_server import TOKEN, VendorState, vendor_server

SINCE = datetime(2025, 12, 1, tzinfo=UTC)
ENV = {
    "ZENDESK_EMAIL": "admin@acme.test",
    "ZENDESK_API_TOKEN": TOKEN,
    "FRESHDESK_API_KEY": TOKEN,
    "JIRA_EMAIL": "admin@acme.test",
    "JIRA_API_TOKEN": TOKEN,
    "GITHUB_TOKEN": TOKEN,
    "DISCOURSE_API_KEY": TOKEN,
    "DISCOURSE_API_USERNAME": "system",
    "INTERCOM_TOKEN": TOKEN,
    "HELPSCOUT_TOKEN": TOKEN,
}


class Sleeps:
    """Records the waits the client asks for instead of sleeping them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def _items(db: asyncpg.Connection, source: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT i.external_id, i.title, i.body, i.status, i.reopen_count, i.reopens_reported, i.votes, i.intent_hint,"
        " (SELECT count(*) FROM status_event e WHERE e.item_id = i.item_id) AS events"
        " FROM item i WHERE source = $1 ORDER BY external_id",
        source,
    )


async def _run(db: asyncpg.Connection, base: str, vendor: str, **kwargs: Any) -> Any:
    sleeps = kwargs.pop("sleep", Sleeps())
    return await import_account(db, vendor, url=base, repo=kwargs.pop("repo", None), since=SINCE, env=ENV,
                                sleep=sleeps, **kwargs)  # fmt: skip


async def test_zendesk_import_pages_through_the_export_with_metrics_and_audits(db: asyncpg.Connection) -> None:
    state = VendorState()
    sleeps = Sleeps()
    with vendor_server(state) as base:
        progress = await _run(db, base, "zendesk", sleep=sleeps)
    assert (progress.pages, progress.created) == (2, 3)
    rows = {r["external_id"]: r for r in await _items(db, "zendesk")}
    assert sorted(rows) == ["1", "2", "3"]
    assert rows["2"]["status"] == "solved" and rows["2"]["reopens_reported"] == 2
    assert rows["2"]["events"] == 1  # the audit's open -> solved change
    assert rows["1"]["events"] == 0  # an open ticket that was never solved: no audits fetched
    # The first request met a 429 with Retry-After: 1, and waited that second.
    assert 1.0 in sleeps.waits
    # The export endpoint is paced at its documented 10 requests a minute (6 s apart).
    assert any(5.5 <= w <= 6.0 for w in sleeps.waits)
    [saved] = await select_import_states(db)
    assert saved.status == "done" and saved.cursor == {"cursor": "c3"} and saved.items_created == 3


async def test_rerun_is_idempotent_and_resumes_from_the_saved_cursor(db: asyncpg.Connection) -> None:
    state = VendorState()
    with vendor_server(state) as base:
        await _run(db, base, "zendesk")
        before = await db.fetchval("SELECT count(*) FROM item")
        state.requests.clear()
        again = await _run(db, base, "zendesk")
    assert before == 3 and await db.fetchval("SELECT count(*) FROM item") == 3
    assert again.created == 0
    # The second run started at the saved cursor: one export page, not two.
    assert state.requests[1:] and all("cursor.json" in path or "audits" in path for _, path in state.requests)
    assert sum("cursor.json" in path for _, path in state.requests) == 2  # the 429'd try and its retry


async def test_revoked_token_stops_with_a_clear_error_and_a_cursor_to_resume(db: asyncpg.Connection) -> None:
    state = VendorState(revoked_after=2)  # 429, page 1; then the token stops working mid-page
    with vendor_server(state) as base:
        with pytest.raises(TokenRejected, match="token was refused"):
            await _run(db, base, "zendesk")
        [stopped] = await select_import_states(db)
        assert stopped.status == "failed" and "token was refused" in (stopped.last_error or "")
        assert await db.fetchval("SELECT count(*) FROM item") == 0  # page 1 was not complete: not written
        state.revoked_after = None
        state.requests.clear()
        resumed = await _run(db, base, "zendesk")
    assert resumed.created == 3 and await db.fetchval("SELECT count(*) FROM item") == 3


async def test_crash_after_a_page_loses_nothing_and_duplicates_nothing(db: asyncpg.Connection) -> None:
    state = VendorState(throttle_first=False, revoked_after=2)  # page 1 and its audit, then page 2 fails
    with vendor_server(state) as base:
        with pytest.raises(ImportFailed):
            await _run(db, base, "zendesk")
        [stopped] = await select_import_states(db)
        assert stopped.cursor == {"cursor": "c2"}
        assert await db.fetchval("SELECT count(*) FROM item") == 2
        state.revoked_after = None
        resumed = await _run(db, base, "zendesk")
    assert resumed.pages == 1 and resumed.created == 1
    assert await db.fetchval("SELECT count(*), count(DISTINCT external_id) FROM item") == 3


async def test_missing_token_is_refused_before_any_request(db: asyncpg.Connection) -> None:
    with pytest.raises(ImportFailed, match="ZENDESK_EMAIL"):
        await import_account(db, "zendesk", url="http://127.0.0.1:9", repo=None, since=SINCE, env={})


async def test_freshdesk_import_takes_tickets_and_their_conversations(db: asyncpg.Connection) -> None:
    with vendor_server(VendorState()) as base:
        progress = await _run(db, base, "freshdesk")
    assert progress.pages == 2
    rows = await _items(db, "freshdesk")
    assert [r["external_id"] for r in rows] == ["1", "2"]
    assert all("login page spins" in r["body"] for r in rows)


async def test_jira_import_follows_next_page_tokens_and_maps_the_changelog(db: asyncpg.Connection) -> None:
    with vendor_server(VendorState()) as base:
        progress = await _run(db, base, "jira")
    assert progress.pages == 2
    rows = await _items(db, "jira")
    assert [r["external_id"] for r in rows] == ["10001", "10002"]
    assert all(r["events"] == 1 for r in rows)


async def test_github_import_skips_pull_requests_and_counts_reopens(db: asyncpg.Connection) -> None:
    with vendor_server(VendorState()) as base:
        progress = await _run(db, base, "github", repo="acme/app")
    assert progress.pages == 2
    rows = {r["external_id"]: r for r in await _items(db, "github")}
    assert sorted(rows) == ["issue:acme/app#1", "issue:acme/app#2"]  # #5 is a pull request
    first = rows["issue:acme/app#1"]
    assert first["reopen_count"] == 1 and first["events"] == 3
    assert first["intent_hint"] == "feature_request" and first["votes"] == 3


async def test_discourse_import_reads_every_post_of_active_topics(db: asyncpg.Connection) -> None:
    with vendor_server(VendorState()) as base:
        progress = await _run(db, base, "discourse")
    rows = await _items(db, "discourse")
    assert [r["external_id"] for r in rows] == ["70", "71"]
    assert progress.pages == 2  # the second page held only a topic older than --since: the end


async def test_intercom_import_searches_then_fetches_each_conversation(db: asyncpg.Connection) -> None:
    state = VendorState()
    with vendor_server(state) as base:
        progress = await _run(db, base, "intercom")
    assert progress.pages == 2
    assert [r["external_id"] for r in await _items(db, "intercom")] == ["1", "2"]
    assert ("POST", "/conversations/search") in state.requests


async def test_helpscout_import_pages_until_total_pages(db: asyncpg.Connection) -> None:
    with vendor_server(VendorState()) as base:
        progress = await _run(db, base, "helpscout")
    assert progress.pages == 2
    rows = await _items(db, "helpscout")
    assert [r["external_id"] for r in rows] == ["11", "12"]
    assert all("charged twice" in r["body"] for r in rows)


async def test_reconciler_counts_items_the_webhooks_missed_and_keeps_the_cursor(db: asyncpg.Connection) -> None:
    with vendor_server(VendorState()) as base:
        await _run(db, base, "freshdesk", reconcile=True)
        await db.execute("DELETE FROM item WHERE external_id = '2'")  # a webhook that never came
        [state] = await select_import_states(db, reconcile_only=True)
        missed = await reconcile_account(db, state, hours=24 * 365 * 10, env=ENV, sleep=Sleeps())
    assert missed == 1
    [after] = await select_import_states(db)
    assert after.reconcile_runs == 1 and after.reconcile_missed == 1 and after.cursor == state.cursor


async def test_operations_view_shows_imports_and_reconciler_counts(
    app_client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    with vendor_server(VendorState()) as base:
        await _run(db, base, "helpscout", reconcile=True)
    await db.execute("UPDATE import_state SET reconcile_runs = 4, reconcile_missed = 17")
    app_client.base_url = httpx.URL("http://127.0.0.1")
    signed = await app_client.post("/login", data={"api_key": ADMIN_KEY, "next": "/runs"})
    assert signed.status_code == 303
    html = (await app_client.get("/runs")).text
    imports = html.split('id="imports"')[1].split("</table>")[0]
    assert base in imports and "<td>helpscout</td>" in imports and "<td>done" in imports
    assert '<td class="num">17</td>' in imports and '<td class="num">4</td>' in imports
