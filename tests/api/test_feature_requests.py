"""GET /v1/reports/feature-requests against hand-computed values."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.test_items import ticket

WINDOW = {"from": "2026-11-02", "to": "2026-11-16"}  # two ISO weeks: Nov 2 and Nov 9


def post(external_id: str, at: str, requester: str | None, votes: int | None = None, **extra: Any) -> dict[str, Any]:
    item = ticket(external_id, kind="post", source="discourse", created_at=at, requester_id=requester, votes=votes)
    item.pop("status")
    item.update(extra)
    return item


@pytest.fixture
async def feature_data(app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection) -> dict[str, int]:
    rows = [
        post("a1", "2026-11-03T10:00:00Z", "u1", 3),  # theme A, week 1
        post("a2", "2026-11-04T10:00:00Z", "u1"),  # the same requester asks again
        post("a3", "2026-11-10T10:00:00Z", "u1", 10),  # theme A, week 2
        post("a4", "2026-11-11T10:00:00Z", "u2"),
        post("a5", "2026-11-12T10:00:00Z", None),  # no requester id: counted, not a requester
        post("b1", "2026-11-13T10:00:00Z", "u3", 5),  # theme B, week 2
        post("n1", "2026-11-05T10:00:00Z", "u4"),  # a feature request in no theme yet
        post("bug", "2026-11-05T10:00:00Z", "u5", 50),  # not a feature request
        post("del", "2026-11-05T10:00:00Z", "u6", 50),  # deleted at the source
        post("old", "2026-10-20T10:00:00Z", "u7", 50),  # before the window
    ]
    resp = await app_client.post("/v1/items/bulk", json=rows, headers=admin)
    assert resp.json()["accepted"] == len(rows)
    theme_a = await db.fetchval("INSERT INTO theme (scope, label) VALUES ('feature', 'dark mode') RETURNING theme_id")
    theme_b = await db.fetchval("INSERT INTO theme (scope, label) VALUES ('feature', 'sso login') RETURNING theme_id")
    # what the worker would have written: intents and feature themes
    await db.execute("UPDATE item SET intent = CASE WHEN external_id = 'bug' THEN 'bug' ELSE 'feature_request' END")
    await db.execute("UPDATE item SET feature_theme_id = $1 WHERE external_id LIKE 'a%'", theme_a)
    await db.execute("UPDATE item SET feature_theme_id = $1 WHERE external_id = 'b1'", theme_b)
    await db.execute("UPDATE item SET deleted_at = now() WHERE external_id = 'del'")
    return {"a": theme_a, "b": theme_b}


async def report(client: httpx.AsyncClient, admin: dict[str, str], **params: Any) -> dict[str, Any]:
    resp = await client.get("/v1/reports/feature-requests", params={**WINDOW, **params}, headers=admin)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_per_week_and_theme(
    app_client: httpx.AsyncClient, admin: dict[str, str], feature_data: dict[str, int]
) -> None:
    body = await report(app_client, admin)
    assert body["definition"] == "feature_request_frequency"
    a, b = feature_data["a"], feature_data["b"]
    assert body["rows"] == [
        # week 1: A = a1 + a2 (one requester, 3 votes); wow (2 - 0) / max(0, 1)
        {"week": "2026-11-02", "theme_id": a, "label": "dark mode", "count": 2, "votes": 3,
         "distinct_requesters": 1, "wow_change": 2.0, "uncertain": 0},
        {"week": "2026-11-02", "theme_id": None, "label": "unassigned", "count": 1, "votes": 0,
         "distinct_requesters": 1, "wow_change": 1.0, "uncertain": 0},
        # week 2: A = a3 + a4 + a5 (u1, u2 and one without id; 10 votes); wow (3 - 2) / 2
        {"week": "2026-11-09", "theme_id": a, "label": "dark mode", "count": 3, "votes": 10,
         "distinct_requesters": 2, "wow_change": 0.5, "uncertain": 0},
        {"week": "2026-11-09", "theme_id": b, "label": "sso login", "count": 1, "votes": 5,
         "distinct_requesters": 1, "wow_change": 1.0, "uncertain": 0},
    ]  # fmt: skip


async def test_per_week(app_client: httpx.AsyncClient, admin: dict[str, str], feature_data: dict[str, int]) -> None:
    rows = (await report(app_client, admin, group_by="week"))["rows"]
    assert rows == [
        # a1 a2 n1: requesters u1, u4; votes 3
        {"week": "2026-11-02", "count": 3, "votes": 3, "distinct_requesters": 2, "wow_change": 3.0, "uncertain": 0},
        # a3 a4 a5 b1: requesters u1 u2 u3; votes 10 + 5; wow (4 - 3) / 3
        {
            "week": "2026-11-09",
            "count": 4,
            "votes": 15,
            "distinct_requesters": 3,
            "wow_change": pytest.approx(1 / 3),
            "uncertain": 0,
        },
    ]


async def test_top_features_of_the_window(
    app_client: httpx.AsyncClient, admin: dict[str, str], feature_data: dict[str, int]
) -> None:
    rows = (await report(app_client, admin, group_by="theme"))["rows"]
    a, b = feature_data["a"], feature_data["b"]
    assert rows == [
        # u1 asked three times and counts once among A's requesters; last week vs the one before: (3 - 2) / 2
        {
            "theme_id": a,
            "label": "dark mode",
            "count": 5,
            "votes": 13,
            "distinct_requesters": 2,
            "wow_change": 0.5,
            "uncertain": 0,
        },
        {
            "theme_id": b,
            "label": "sso login",
            "count": 1,
            "votes": 5,
            "distinct_requesters": 1,
            "wow_change": 1.0,
            "uncertain": 0,
        },
        {
            "theme_id": None,
            "label": "unassigned",
            "count": 1,
            "votes": 0,
            "distinct_requesters": 1,
            "wow_change": -1.0,
            "uncertain": 0,
        },
    ]
    top = (await report(app_client, admin, group_by="theme", top=1))["rows"]
    assert [r["theme_id"] for r in top] == [a]
    csv = await app_client.get(
        "/v1/reports/feature-requests", params={**WINDOW, "group_by": "theme"}, headers={**admin, "Accept": "text/csv"}
    )
    assert csv.text.splitlines()[:2] == [
        "theme_id,label,count,votes,distinct_requesters,wow_change,uncertain",
        f"{a},dark mode,5,13,2,0.5,0",
    ]


async def test_bad_parameters_are_422(app_client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for params in ({"group_by": "tag"}, {"tz": "Nowhere/Land"}, {"from": "2026-11-16", "to": "2026-11-02"}):
        resp = await app_client.get("/v1/reports/feature-requests", params={**WINDOW, **params}, headers=admin)
        assert resp.status_code == 422 and resp.json()["error"] == "validation_error", params
