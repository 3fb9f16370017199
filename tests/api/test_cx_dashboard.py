"""The customer-experience dashboard page: "What to fix first" and "Missing articles" show the
report figures, each chart with its numbers beside it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import numpy as np
import pytest

from db.queries.articles import update_article_vectors


@pytest.fixture
async def client(app_client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    app_client.base_url = httpx.URL("http://127.0.0.1")
    yield app_client


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_customer_page_ranks_what_to_fix_and_lists_missing_articles(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection
) -> None:
    # Ten days back: inside the weeks the page shows by default, which end with the last complete week.
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=10)
    # Slow theme: 3 tickets of 30 h each, two reopened, csat 1. Fast theme: 3 tickets of 2 h, csat 5.
    tickets = []
    for n, (hours, csat, reopens) in enumerate([(30, 1, 1), (30, 1, 1), (30, 2, 0), (2, 5, 0), (2, 5, 0), (2, 4, 0)]):
        created, solved = base + timedelta(minutes=n), base + timedelta(minutes=n, hours=hours)
        if solved > datetime.now(UTC):
            solved = datetime.now(UTC) - timedelta(minutes=10 - n)
            created = solved - timedelta(hours=hours)
        # No status history: the solve is the update time of a solved ticket, reopens the counter.
        tickets.append({
            "source": "api", "external_id": f"c{n}", "kind": "ticket", "body": f"ticket {n}",
            "created_at": _at(created), "updated_at": _at(solved), "status": "solved", "csat": csat,
            "reopens": reopens, "customer_replies": 1, "assignee_changes": 0,
        })  # fmt: skip
    assert (await client.post("/v1/items/bulk", json=tickets, headers=admin)).status_code == 202
    slow = await db.fetchval(
        "INSERT INTO theme (label, centroid) VALUES ('Card declined', $1) RETURNING theme_id",
        np.asarray([1, 0, 0], "<f4").tobytes(),
    )
    fast = await db.fetchval(
        "INSERT INTO theme (label, centroid) VALUES ('Password reset', $1) RETURNING theme_id",
        np.asarray([0, 1, 0], "<f4").tobytes(),
    )
    await db.execute("UPDATE item SET theme_id = $1 WHERE external_id IN ('c0', 'c1', 'c2')", slow)
    await db.execute("UPDATE item SET theme_id = $1 WHERE external_id IN ('c3', 'c4', 'c5')", fast)
    article = [{"source": "guide", "external_id": "1", "title": "Resetting your password", "body": "Steps."}]
    assert (await client.post("/v1/articles/bulk", json=article, headers=admin)).status_code == 202
    article_id, digest = await db.fetchrow("SELECT article_id, content_hash FROM article")
    await update_article_vectors(
        db, article_ids=[article_id], hashes=[digest], vectors=np.asarray([[0, 1, 0]], "<f4"), model_version="t"
    )

    key = (await client.post("/v1/keys", json={"name": "d", "scopes": ["read"]}, headers=admin)).json()["key"]
    assert (await client.post("/login", data={"api_key": key, "next": "/"})).status_code == 303
    resp = await client.get("/customer")
    assert resp.status_code == 200, resp.text
    page = resp.text
    fix = page[page.index('id="fix-first-table"') : page.index("</table>", page.index('id="fix-first-table"'))]
    # Only the slow theme is slower than the rest: 3 x (30 h - 2 h) = 84 excess hours; its reopen
    # rate is 2/3 against 0 (+66.7 pts) and its CSAT 0 against 1 (-100.0 pts).
    assert "Card declined" in fix and "Password reset" not in fix
    assert re.search(r">84\.0<", fix) and "+66.7 pts" in fix and "-100.0 pts" in fix
    missing = page[page.index('id="missing-articles-table"') :]
    missing = missing[: missing.index("</table>")]
    assert "Card declined" in missing and "Password reset" not in missing
    # Every chart keeps its numbers beside it.
    for chart_id in ("cx-fix-first", "cx-csat", "cx-effort", "cx-gaps"):
        figure = page[page.index(f'id="{chart_id}"') :]
        assert "Numbers behind this chart" in figure[: figure.index("</figure>")]
