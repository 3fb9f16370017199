"""Reports against hand-computed numbers: every figure of every row is written out below, with the
arithmetic beside it. Tickets go in through POST /v1/items/bulk; themes are set with SQL (the
clustering job is not under test here)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from typing import Any

import asyncpg
import httpx
import pytest

import api.csv_export as csv_export
from schemas.settings import Settings
from tests.conftest import ROOT

Row = dict[str, Any]


def item(external_id: str, created_at: str, **fields: Any) -> Row:
    return {
        "source": "zendesk",
        "external_id": external_id,
        "kind": "ticket",
        "body": f"ticket {external_id}",
        "created_at": created_at,
        **fields,
    }


def ev(at: str, to: str, frm: str | None = None) -> Row:
    return {"at": at, "from_status": frm, "to_status": to}


async def ingest(client: httpx.AsyncClient, admin: dict[str, str], items: list[Row]) -> None:
    resp = await client.post("/v1/items/bulk", json=items, headers=admin)
    assert resp.status_code == 202, resp.text
    assert resp.json()["rejected"] == [] and resp.json()["accepted"] == len(items)


async def theme(db: asyncpg.Connection, label: str, external_ids: list[str]) -> int:
    theme_id: int = await db.fetchval("INSERT INTO theme (label) VALUES ($1) RETURNING theme_id", label)
    await db.execute("UPDATE item SET theme_id = $1 WHERE external_id = ANY($2)", theme_id, external_ids)
    return theme_id


async def report(client: httpx.AsyncClient, admin: dict[str, str], name: str, **params: Any) -> Row:
    params = {k.rstrip("_"): v for k, v in params.items()}
    resp = await client.get(f"/v1/reports/{name}", params=params, headers=admin)
    assert resp.status_code == 200, resp.text
    body: Row = resp.json()
    assert set(body) == {"definition", "window", "generated_at", "rows"}
    return body


def trend(body: Row) -> list[tuple[Any, ...]]:
    keys = ("week", "theme_id", "label", "volume", "wow_change", "is_spike", "is_emerging")
    assert all(list(r) == list(keys) for r in body["rows"])
    return [tuple(r[k] for k in keys) for r in body["rows"]]


def assert_rows(actual: list[Row], expected: list[Row]) -> None:
    """Same fields in the same order, numbers equal up to float rounding."""
    assert [list(r) for r in actual] == [list(r) for r in expected]
    for got, want in zip(actual, expected, strict=True):
        assert got == {k: pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for k, v in want.items()}


# --- theme trends: week boundaries in three time zones, DST ---------------------------------------

# Weeks of each item (Monday dates). LA is UTC-7 until Sun 2026-11-01 09:00Z, then UTC-8; Kolkata
# is UTC+5:30 (Monday 00:00 IST = Sunday 18:30Z).
#                                          UTC     America/Los_Angeles        Asia/Kolkata
BOUNDARY_ITEMS = [
    ("a1", "2026-10-20T12:00:00Z", "refunds"),  # 10-19   10-19 (Tue 05:00 PDT)    10-19
    ("a2", "2026-10-26T06:59:59Z", "refunds"),  # 10-26   10-19 (Sun 23:59:59 PDT) 10-26 (12:29 IST)
    ("a3", "2026-10-26T07:00:00Z", "refunds"),  # 10-26   10-26 (Mon 00:00 PDT)    10-26
    ("a4", "2026-11-01T18:29:59Z", "refunds"),  # 10-26   10-26 (Sun 10:29 PST)    10-26 (Sun 23:59:59 IST)
    ("a5", "2026-11-01T18:30:00Z", None),  # ------- 10-26   10-26                    11-02 (Mon 00:00 IST)
    ("a6", "2026-11-01T23:59:59Z", "refunds"),  # 10-26   10-26 (Sun 15:59 PST)    11-02
    ("a7", "2026-11-02T00:00:00Z", "refunds"),  # 11-02   10-26 (Sun 16:00 PST)    11-02
    ("a8", "2026-11-02T07:30:00Z", None),  # ------- 11-02   10-26 (Sun 23:30 PST: -7 would say Mon)  11-02
    ("a9", "2026-11-02T08:00:00Z", "refunds"),  # 11-02   11-02 (Mon 00:00 PST)    11-02
    ("a10", "2026-11-09T00:00:00Z", "refunds"),  # 11-09*  11-02 (Sun 16:00 PST)   11-09* (*outside the window)
    ("a11", "2026-10-27T12:00:00Z", "refunds"),  # deleted: never counted
]


@pytest.fixture
async def boundary_items(app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection) -> int:
    items = [item(ext, at) for ext, at, _ in BOUNDARY_ITEMS]
    # a12: a forum post (counted in trends; dropped by kind=ticket), 10-26 in all three zones
    items.append(item("a12", "2026-10-28T12:00:00Z", source="discourse", kind="post"))
    await ingest(app_client, admin, items)
    await db.execute("UPDATE item SET deleted_at = now() WHERE external_id = 'a11'")
    return await theme(db, "refunds", [ext for ext, _, label in BOUNDARY_ITEMS if label] + ["a12"])


async def test_theme_trends_weeks_in_utc(
    app_client: httpx.AsyncClient, admin: dict[str, str], boundary_items: int
) -> None:
    body = await report(app_client, admin, "theme-trends", from_="2026-10-26", to="2026-11-09")
    assert body["definition"] == "theme_volume"
    assert body["window"] == {"from": "2026-10-26T00:00:00Z", "to": "2026-11-09T00:00:00Z", "tz": "UTC"}
    refunds = boundary_items
    # refunds: 10-19 = a1 (1); 10-26 = a2 a3 a4 a6 a12 (5); 11-02 = a7 a9 (2). unassigned: 0, a5 (1), a8 (1)
    # spikes: 10-26 mean 1/8, 5 < 1/8 + 5; 11-02 mean 6/8, 2 < 5.75. First item 10-20: 20 days old at 11-09.
    assert trend(body) == [
        ("2026-10-26", refunds, "refunds", 5, 4.0, False, False),  # (5 - 1) / 1
        ("2026-10-26", None, "unassigned", 1, 1.0, False, False),  # (1 - 0) / max(0, 1)
        ("2026-11-02", refunds, "refunds", 2, -0.6, False, False),  # (2 - 5) / 5
        ("2026-11-02", None, "unassigned", 1, 0.0, False, False),  # (1 - 1) / 1
    ]


async def test_theme_trends_weeks_in_los_angeles_across_the_dst_change(
    app_client: httpx.AsyncClient, admin: dict[str, str], boundary_items: int
) -> None:
    body = await report(
        app_client, admin, "theme-trends", from_="2026-10-26", to="2026-11-09", tz="America/Los_Angeles"
    )
    # the week of 10-26 is 169 hours long: Monday 00:00 PDT to Monday 00:00 PST
    assert body["window"] == {
        "from": "2026-10-26T00:00:00-07:00",
        "to": "2026-11-09T00:00:00-08:00",
        "tz": "America/Los_Angeles",
    }
    refunds = boundary_items
    # refunds: 10-19 = a1 a2 (2); 10-26 = a3 a4 a6 a7 a12 (5); 11-02 = a9 a10 (2); unassigned 10-26 = a5 a8
    assert trend(body) == [
        ("2026-10-26", refunds, "refunds", 5, 1.5, False, False),  # (5 - 2) / 2; mean 2/8: 5 < 5.25
        ("2026-10-26", None, "unassigned", 2, 2.0, False, False),  # (2 - 0) / 1; 2 < 0 + 5
        ("2026-11-02", refunds, "refunds", 2, -0.6, False, False),  # (2 - 5) / 5
        ("2026-11-02", None, "unassigned", 0, -1.0, False, False),  # (0 - 2) / 2
    ]


async def test_theme_trends_widens_the_window_to_whole_kolkata_weeks(
    app_client: httpx.AsyncClient, admin: dict[str, str], boundary_items: int
) -> None:
    # Tue 10-27 10:00 IST .. Sun 11-08 17:30 IST widens to Mon 10-26 .. Mon 11-09 (IST)
    body = await report(
        app_client,
        admin,
        "theme-trends",
        from_="2026-10-27T10:00:00+05:30",
        to="2026-11-08T12:00:00Z",
        tz="Asia/Kolkata",
    )
    assert body["window"] == {
        "from": "2026-10-26T00:00:00+05:30",
        "to": "2026-11-09T00:00:00+05:30",
        "tz": "Asia/Kolkata",
    }
    refunds = boundary_items
    # refunds: 10-19 = a1 (1); 10-26 = a2 a3 a4 a12 (4); 11-02 = a6 a7 a9 (3). unassigned 11-02 = a5 a8
    assert trend(body) == [
        ("2026-10-26", refunds, "refunds", 4, 3.0, False, False),  # (4 - 1) / 1
        ("2026-10-26", None, "unassigned", 0, 0.0, False, False),  # (0 - 0) / 1
        ("2026-11-02", refunds, "refunds", 3, -0.25, False, False),  # (3 - 4) / 4
        ("2026-11-02", None, "unassigned", 2, 2.0, False, False),  # (2 - 0) / 1
    ]


async def test_theme_trends_filters_by_kind_and_source(
    app_client: httpx.AsyncClient, admin: dict[str, str], boundary_items: int
) -> None:
    refunds = boundary_items
    tickets = await report(app_client, admin, "theme-trends", from_="2026-10-26", to="2026-11-09", kind="ticket")
    assert trend(tickets) == [  # the UTC report without the post a12
        ("2026-10-26", refunds, "refunds", 4, 3.0, False, False),  # (4 - 1) / 1
        ("2026-10-26", None, "unassigned", 1, 1.0, False, False),
        ("2026-11-02", refunds, "refunds", 2, -0.5, False, False),  # (2 - 4) / 4
        ("2026-11-02", None, "unassigned", 1, 0.0, False, False),
    ]
    forum = await report(app_client, admin, "theme-trends", from_="2026-10-26", to="2026-11-09", source="discourse")
    assert trend(forum) == [  # only a12; empty weeks still get their rows
        ("2026-10-26", refunds, "refunds", 1, 1.0, False, False),  # (1 - 0) / 1
        ("2026-10-26", None, "unassigned", 0, 0.0, False, False),
        ("2026-11-02", refunds, "refunds", 0, -1.0, False, False),  # (0 - 1) / 1
        ("2026-11-02", None, "unassigned", 0, 0.0, False, False),
    ]


async def test_theme_trends_as_csv(app_client: httpx.AsyncClient, admin: dict[str, str], boundary_items: int) -> None:
    resp = await app_client.get(
        "/v1/reports/theme-trends",
        params={"from": "2026-10-26", "to": "2026-11-09"},
        headers={**admin, "Accept": "text/csv"},
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.text.splitlines() == [
        "week,theme_id,label,volume,wow_change,is_spike,is_emerging",
        f"2026-10-26,{boundary_items},refunds,5,4.0,false,false",
        "2026-10-26,,unassigned,1,1.0,false,false",
        f"2026-11-02,{boundary_items},refunds,2,-0.6,false,false",
        "2026-11-02,,unassigned,1,0.0,false,false",
    ]


# --- theme trends: spikes, emerging themes, top N ---------------------------------------------------

TRAILING_TUESDAYS = ["2026-09-08", "2026-09-15", "2026-09-22", "2026-09-29", "2026-10-06", "2026-10-13", "2026-10-20"]
TRAILING_TUESDAYS.append("2026-10-27")  # the 8 weeks before the week of 11-02


def burst(prefix: str, day: str, n: int) -> list[Row]:
    return [item(f"{prefix}-{day}-{k}", f"{day}T10:{k // 60:02d}:{k % 60:02d}Z") for k in range(n)]


async def test_theme_trends_spikes_emerging_and_top(
    app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection
) -> None:
    groups: dict[str, list[Row]] = {
        # 1 a week for 8 weeks, then 9: mean 1, 9 >= 1 + 5 and P(X >= 9 | 1) = 1.1e-6 < 0.01 -> spike
        "refunds": [r for d in TRAILING_TUESDAYS for r in burst("rf", d, 1)] + burst("rf", "2026-11-03", 9),
        # 20 a week, then 26: 26 >= 20 + 5 but P(X >= 26 | 20) = 0.112 -> no spike
        "login": [r for d in TRAILING_TUESDAYS for r in burst("lg", d, 20)] + burst("lg", "2026-11-03", 26),
        # first item 10-28 (12 days before 11-09), 2 + 4 = 6 items -> emerging; mean 2/8, 4 < 5.25
        "dark mode": burst("dm", "2026-10-28", 2) + burst("dm", "2026-11-04", 4),
        # 4 items, all new: P(X >= 4 | 0) = 0 but 4 < 0 + 5 -> no spike; 4 < 5 items -> not emerging
        "export": burst("ex", "2026-11-03", 4),
        # first item exactly 14 days before 11-09 00:00 -> not "< 14 days": not emerging; mean 1/8, 5 < 5.125
        "invoices": [item("iv-0", "2026-10-26T00:00:00Z")] + burst("iv", "2026-11-05", 5),
        # 5 items, all new: P(X >= 5 | 0) = 0 and 5 >= 0 + 5 -> spike; 5 items, 3 days old -> emerging
        "shipping": burst("sh", "2026-11-06", 5),
    }
    unassigned = [item("un-0", "2026-10-27T09:00:00Z")] + burst("un", "2026-11-07", 3)
    await ingest(app_client, admin, [r for rows in groups.values() for r in rows] + unassigned)
    ids = {label: await theme(db, label, [r["external_id"] for r in rows]) for label, rows in groups.items()}

    body = await report(app_client, admin, "theme-trends", from_="2026-11-02", to="2026-11-09")
    # ranked by volume in the window, ties by theme id; unassigned last
    assert trend(body) == [
        ("2026-11-02", ids["login"], "login", 26, 0.3, False, False),  # (26 - 20) / 20
        ("2026-11-02", ids["refunds"], "refunds", 9, 8.0, True, False),  # (9 - 1) / 1
        ("2026-11-02", ids["invoices"], "invoices", 5, 4.0, False, False),  # (5 - 1) / 1
        ("2026-11-02", ids["shipping"], "shipping", 5, 5.0, True, True),  # (5 - 0) / 1
        ("2026-11-02", ids["dark mode"], "dark mode", 4, 1.0, False, True),  # (4 - 2) / 2
        ("2026-11-02", ids["export"], "export", 4, 4.0, False, False),  # (4 - 0) / 1
        ("2026-11-02", None, "unassigned", 3, 2.0, False, False),  # (3 - 1) / 1; mean 1/8, 3 < 5.125
    ]

    top = await report(app_client, admin, "theme-trends", from_="2026-11-02", to="2026-11-09", top=3)
    assert trend(top) == [  # login 26, refunds 9, then invoices beats shipping (5 each) on theme id
        ("2026-11-02", ids["login"], "login", 26, 0.3, False, False),
        ("2026-11-02", ids["refunds"], "refunds", 9, 8.0, True, False),
        ("2026-11-02", ids["invoices"], "invoices", 5, 4.0, False, False),
        ("2026-11-02", None, "unassigned", 3, 2.0, False, False),  # never dropped
    ]


# --- reopen rate and resolution times --------------------------------------------------------------

# The window [2026-11-02, 2026-11-09) UTC. Per ticket: first solve (FS), last solve (LS), reopens (R),
# first reply (FR), status now. Durations in seconds.
LIFECYCLES = [
    # r1 reopened twice: FS 11-02 09:00, LS 11-06 09:00, R 2, FR +1800, closed
    item("r1", "2026-11-02T08:00:00Z", status="closed", updated_at="2026-11-06T09:00:00Z",
         first_response_at="2026-11-02T08:30:00Z", channel="email", priority="high", product="billing",
         tags=["refund", "vip"], status_events=[
             ev("2026-11-02T09:00:00Z", "solved", "open"), ev("2026-11-03T09:00:00Z", "open", "solved"),
             ev("2026-11-04T09:00:00Z", "solved", "open"), ev("2026-11-05T09:00:00Z", "open", "solved"),
             ev("2026-11-06T09:00:00Z", "closed", "open")]),
    # r2 reopened, never solved again: FS = LS 11-03 10:00, R 1, FR +7200, pending now
    item("r2", "2026-11-02T10:00:00Z", status="pending", updated_at="2026-11-04T10:00:00Z",
         first_response_at="2026-11-02T12:00:00Z", channel="email", priority="normal", product="billing",
         tags=["refund"], status_events=[
             ev("2026-11-03T10:00:00Z", "solved", "open"), ev("2026-11-04T10:00:00Z", "pending", "solved")]),
    # r3 events out of order, one twice, no from_status (inferred from the previous event):
    # open 11-03 06:00, solved 11-04, open 11-04 12:00, solved 11-05 -> FS 11-04, LS 11-05, R 1; no reply
    item("r3", "2026-11-03T00:00:00Z", source="freshdesk", status="solved", updated_at="2026-11-05T00:00:00Z",
         channel="chat", priority="normal", product="billing", status_events=[
             ev("2026-11-05T00:00:00Z", "solved"), ev("2026-11-04T00:00:00Z", "solved"),
             ev("2026-11-04T12:00:00Z", "open"), ev("2026-11-04T00:00:00Z", "solved"),
             ev("2026-11-03T06:00:00Z", "open")]),
    # r4 closed without a reply: FS = LS 11-04 06:00 (+21600), R 0, no channel
    item("r4", "2026-11-04T00:00:00Z", source="freshdesk", status="solved", updated_at="2026-11-04T06:00:00Z",
         priority="normal", product="app", tags=["spam"],
         status_events=[ev("2026-11-04T06:00:00Z", "solved", "new")]),
    # r5 no history, the source's counter: FS = LS = updated_at 11-06 00:00 (+604800), R 3
    item("r5", "2026-10-30T00:00:00Z", status="closed", updated_at="2026-11-06T00:00:00Z", reopens=3,
         first_response_at="2026-10-30T01:00:00Z", channel="email", priority="high", product="billing",
         tags=["vip", "vip"]),
    # r6 first solved before the window (10-21), reopened 11-03, solved again 11-04: LS in window (+1296000)
    item("r6", "2026-10-20T00:00:00Z", status="solved", updated_at="2026-11-04T00:00:00Z",
         first_response_at="2026-10-20T00:10:00Z", channel="email", priority="normal", product="billing",
         tags=["refund"], status_events=[
             ev("2026-10-21T00:00:00Z", "solved", "open"), ev("2026-11-03T00:00:00Z", "open", "solved"),
             ev("2026-11-04T00:00:00Z", "solved", "open")]),
    # r7 open, answered after 900 s
    item("r7", "2026-11-05T00:00:00Z", source="freshdesk", status="open", first_response_at="2026-11-05T00:15:00Z",
         channel="chat", priority="normal", product="billing", tags=["refund"]),
    # r8 solved in the window but deleted in the source: never counted
    item("r8", "2026-11-02T00:00:00Z", status="solved", first_response_at="2026-11-02T00:01:00Z",
         status_events=[ev("2026-11-02T01:00:00Z", "solved", "open")]),
    # r9 a forum post: not a ticket
    item("r9", "2026-11-03T00:00:00Z", source="discourse", kind="post"),
    # r10 solved exactly at the window's end (excluded: half-open), answered after 3600 s
    item("r10", "2026-11-08T00:00:00Z", status="solved", first_response_at="2026-11-08T01:00:00Z",
         channel="email", priority="normal", product="billing",
         status_events=[ev("2026-11-09T00:00:00Z", "solved", "open")]),
    # r11 solved exactly at the window's start (included): +43200
    item("r11", "2026-11-01T12:00:00Z", source="freshdesk", status="solved",
         first_response_at="2026-11-01T12:05:00Z", channel="chat", priority="normal", product="billing",
         tags=["refund"], status_events=[ev("2026-11-02T00:00:00Z", "solved", "new")]),
]  # fmt: skip

WEEK = {"from_": "2026-11-02", "to": "2026-11-09"}
UTC_WEEK = {"from": "2026-11-02T00:00:00Z", "to": "2026-11-09T00:00:00Z", "tz": "UTC"}


@pytest.fixture
async def lifecycles(app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection) -> dict[str, int]:
    await ingest(app_client, admin, LIFECYCLES)
    # r3's history again, partly: a duplicate delivery changes nothing
    again = [
        {**LIFECYCLES[2], "status_events": [ev("2026-11-04T12:00:00Z", "open"), ev("2026-11-05T00:00:00Z", "solved")]}
    ]
    await ingest(app_client, admin, again)
    await db.execute("UPDATE item SET deleted_at = now() WHERE external_id = 'r8'")
    return {
        "refunds": await theme(db, "refunds", ["r1", "r2", "r6", "r11"]),
        "spam": await theme(db, "spam", ["r4"]),
    }


async def test_reopen_rate_ungrouped(app_client: httpx.AsyncClient, admin: dict[str, str], lifecycles: Row) -> None:
    body = await report(app_client, admin, "reopen-rate", **WEEK)
    assert body["definition"] == "reopen_rate"
    assert body["window"] == UTC_WEEK
    # first solved in the window: r1 r2 r3 r4 r5 r11 (r6 before, r10 at the end, r8 deleted, r7 unsolved)
    # reopens: r1 2 + r2 1 + r3 1 + r5 3 = 7; reopened: r1 r2 r3 r5
    assert_rows(
        body["rows"],
        [{"solved": 6, "reopened": 4, "reopen_rate": 4 / 6, "reopens": 7, "reopens_per_solved": 7 / 6}],
    )


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("source", [  # freshdesk: r3 r4 r11; zendesk: r1 r2 r5
            {"source": "freshdesk", "solved": 3, "reopened": 1, "reopen_rate": 1 / 3, "reopens": 1,
             "reopens_per_solved": 1 / 3},
            {"source": "zendesk", "solved": 3, "reopened": 3, "reopen_rate": 1.0, "reopens": 6,  # 2 + 1 + 3
             "reopens_per_solved": 2.0},
        ]),
        ("channel", [  # chat: r3 r11; email: r1 r2 r5; none: r4
            {"channel": "chat", "solved": 2, "reopened": 1, "reopen_rate": 0.5, "reopens": 1,
             "reopens_per_solved": 0.5},
            {"channel": "email", "solved": 3, "reopened": 3, "reopen_rate": 1.0, "reopens": 6,
             "reopens_per_solved": 2.0},
            {"channel": None, "solved": 1, "reopened": 0, "reopen_rate": 0.0, "reopens": 0, "reopens_per_solved": 0.0},
        ]),
        ("priority", [  # high: r1 r5 (2 + 3); normal: r2 r3 r4 r11 (1 + 1)
            {"priority": "high", "solved": 2, "reopened": 2, "reopen_rate": 1.0, "reopens": 5,
             "reopens_per_solved": 2.5},
            {"priority": "normal", "solved": 4, "reopened": 2, "reopen_rate": 0.5, "reopens": 2,
             "reopens_per_solved": 0.5},
        ]),
        ("product", [  # app: r4; billing: r1 r2 r3 r5 r11
            {"product": "app", "solved": 1, "reopened": 0, "reopen_rate": 0.0, "reopens": 0, "reopens_per_solved": 0.0},
            {"product": "billing", "solved": 5, "reopened": 4, "reopen_rate": 0.8, "reopens": 7,
             "reopens_per_solved": 1.4},
        ]),
        ("tag", [  # a ticket counts under each tag: refund r1 r2 r11; spam r4; vip r1 r5 (once); none r3
            {"tag": "refund", "solved": 3, "reopened": 2, "reopen_rate": 2 / 3, "reopens": 3,
             "reopens_per_solved": 1.0},
            {"tag": "spam", "solved": 1, "reopened": 0, "reopen_rate": 0.0, "reopens": 0, "reopens_per_solved": 0.0},
            {"tag": "vip", "solved": 2, "reopened": 2, "reopen_rate": 1.0, "reopens": 5, "reopens_per_solved": 2.5},
            {"tag": None, "solved": 1, "reopened": 1, "reopen_rate": 1.0, "reopens": 1, "reopens_per_solved": 1.0},
        ]),
    ],
)  # fmt: skip
async def test_reopen_rate_grouped(
    app_client: httpx.AsyncClient, admin: dict[str, str], lifecycles: Row, group_by: str, expected: list[Row]
) -> None:
    body = await report(app_client, admin, "reopen-rate", **WEEK, group_by=group_by)
    assert_rows(body["rows"], expected)


async def test_reopen_rate_by_theme(app_client: httpx.AsyncClient, admin: dict[str, str], lifecycles: Row) -> None:
    body = await report(app_client, admin, "reopen-rate", **WEEK, group_by="theme")
    assert_rows(
        body["rows"],
        [  # refunds: r1 r2 r11 (r6 first solved before); spam: r4; unassigned: r3 r5 (1 + 3)
            {"theme_id": lifecycles["refunds"], "label": "refunds", "solved": 3, "reopened": 2, "reopen_rate": 2 / 3,
             "reopens": 3, "reopens_per_solved": 1.0},
            {"theme_id": lifecycles["spam"], "label": "spam", "solved": 1, "reopened": 0, "reopen_rate": 0.0,
             "reopens": 0, "reopens_per_solved": 0.0},
            {"theme_id": None, "label": "unassigned", "solved": 2, "reopened": 2, "reopen_rate": 1.0, "reopens": 4,
             "reopens_per_solved": 2.0},
        ],
    )  # fmt: skip


async def test_reopen_rate_of_an_empty_window_is_one_row_of_zeros(
    app_client: httpx.AsyncClient, admin: dict[str, str], lifecycles: Row
) -> None:
    body = await report(app_client, admin, "reopen-rate", from_="2020-01-01", to="2020-02-01")
    assert body["rows"] == [{"solved": 0, "reopened": 0, "reopen_rate": None, "reopens": 0, "reopens_per_solved": None}]


async def test_reopen_rate_as_csv(app_client: httpx.AsyncClient, admin: dict[str, str], lifecycles: Row) -> None:
    resp = await app_client.get(
        "/v1/reports/reopen-rate",
        params={"from": "2026-11-02", "to": "2026-11-09", "group_by": "source"},
        headers={**admin, "Accept": "text/csv"},
    )
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert resp.text.splitlines() == [
        "source,solved,reopened,reopen_rate,reopens,reopens_per_solved",
        "freshdesk,3,1,0.3333333333333333,1,0.3333333333333333",
        "zendesk,3,3,1.0,6,2.0",
    ]


async def test_first_response_times(app_client: httpx.AsyncClient, admin: dict[str, str], lifecycles: Row) -> None:
    body = await report(app_client, admin, "resolution-times", metric="first_response", **WEEK)
    assert body["definition"] == "first_response"
    assert body["window"] == UTC_WEEK
    # created in the window: r1 1800, r2 7200, r7 900, r10 3600; r3 r4 never answered
    # sorted 900 1800 3600 7200: median (1800 + 3600) / 2; p90 at 0.9 * 3 = 2.7: 3600 + 0.7 * 3600
    assert_rows(
        body["rows"],
        [{"count": 4, "median_s": 2700.0, "p90_s": 6120.0, "mean_s": 3375.0,  # 13500 / 4
          "median_human": "45m 0s", "p90_human": "1h 42m", "mean_human": "56m 15s", "awaiting_first_response": 2}],
    )  # fmt: skip


async def test_first_response_times_by_tag(
    app_client: httpx.AsyncClient, admin: dict[str, str], lifecycles: Row
) -> None:
    body = await report(app_client, admin, "resolution-times", metric="first_response", **WEEK, group_by="tag")
    assert_rows(
        body["rows"],
        [
            # refund: r1 1800, r2 7200, r7 900 -> sorted 900 1800 7200; p90 at 1.8: 1800 + 0.8 * 5400
            {"tag": "refund", "count": 3, "median_s": 1800.0, "p90_s": 6120.0, "mean_s": 3300.0,  # 9900 / 3
             "median_human": "30m 0s", "p90_human": "1h 42m", "mean_human": "55m 0s", "awaiting_first_response": 0},
            {"tag": "spam", "count": 0, "median_s": None, "p90_s": None, "mean_s": None,  # r4, unanswered
             "median_human": None, "p90_human": None, "mean_human": None, "awaiting_first_response": 1},
            {"tag": "vip", "count": 1, "median_s": 1800.0, "p90_s": 1800.0, "mean_s": 1800.0,  # r1
             "median_human": "30m 0s", "p90_human": "30m 0s", "mean_human": "30m 0s", "awaiting_first_response": 0},
            {"tag": None, "count": 1, "median_s": 3600.0, "p90_s": 3600.0, "mean_s": 3600.0,  # r10; r3 unanswered
             "median_human": "1h 0m", "p90_human": "1h 0m", "mean_human": "1h 0m", "awaiting_first_response": 1},
        ],
    )  # fmt: skip


async def test_first_resolution_times(app_client: httpx.AsyncClient, admin: dict[str, str], lifecycles: Row) -> None:
    body = await report(app_client, admin, "resolution-times", metric="first_resolution", **WEEK)
    assert body["definition"] == "first_resolution"
    # first solved in the window: r1 3600, r2 86400, r3 86400, r4 21600, r5 604800, r11 43200
    # sorted 3600 21600 43200 86400 86400 604800: median at 2.5 = (43200 + 86400) / 2;
    # p90 at 4.5 = 86400 + 0.5 * (604800 - 86400); mean 846000 / 6
    assert_rows(
        body["rows"],
        [{"count": 6, "median_s": 64800.0, "p90_s": 345600.0, "mean_s": 141000.0,
          "median_human": "18h 0m", "p90_human": "4d 0h", "mean_human": "1d 15h"}],
    )  # fmt: skip


async def test_first_resolution_times_in_los_angeles(
    app_client: httpx.AsyncClient, admin: dict[str, str], lifecycles: Row
) -> None:
    body = await report(
        app_client, admin, "resolution-times", metric="first_resolution", **WEEK, tz="America/Los_Angeles"
    )
    assert body["window"] == {
        "from": "2026-11-02T00:00:00-08:00",
        "to": "2026-11-09T00:00:00-08:00",
        "tz": "America/Los_Angeles",
    }
    # [11-02 08:00Z, 11-09 08:00Z): r11 (11-02 00:00Z) drops out, r10 (11-09 00:00Z, 86400) comes in
    # sorted 3600 21600 86400 86400 86400 604800: median 86400; p90 86400 + 0.5 * 518400; mean 889200 / 6
    assert_rows(
        body["rows"],
        [{"count": 6, "median_s": 86400.0, "p90_s": 345600.0, "mean_s": 148200.0,
          "median_human": "1d 0h", "p90_human": "4d 0h", "mean_human": "1d 17h"}],
    )  # fmt: skip


async def test_full_resolution_times(app_client: httpx.AsyncClient, admin: dict[str, str], lifecycles: Row) -> None:
    body = await report(app_client, admin, "resolution-times", metric="full_resolution", **WEEK)
    assert body["definition"] == "full_resolution"
    # last solved in the window: r1 349200, r3 172800, r4 21600, r5 604800, r6 1296000, r11 43200;
    # r2 (pending since its reopen) is reopened_open.
    # sorted 21600 43200 172800 349200 604800 1296000: median (172800 + 349200) / 2;
    # p90 at 4.5 = 604800 + 0.5 * 691200; mean 2487600 / 6
    assert_rows(
        body["rows"],
        [{"count": 6, "median_s": 261000.0, "p90_s": 950400.0, "mean_s": 414600.0,
          "median_human": "3d 0h", "p90_human": "11d 0h", "mean_human": "4d 19h", "reopened_open": 1}],
    )  # fmt: skip


async def test_full_resolution_times_by_source(
    app_client: httpx.AsyncClient, admin: dict[str, str], lifecycles: Row
) -> None:
    body = await report(app_client, admin, "resolution-times", metric="full_resolution", **WEEK, group_by="source")
    assert_rows(
        body["rows"],
        [
            # freshdesk: r4 21600, r11 43200, r3 172800; p90 at 1.8: 43200 + 0.8 * 129600; mean 237600 / 3
            {"source": "freshdesk", "count": 3, "median_s": 43200.0, "p90_s": 146880.0, "mean_s": 79200.0,
             "median_human": "12h 0m", "p90_human": "1d 16h", "mean_human": "22h 0m", "reopened_open": 0},
            # zendesk: r1 349200, r5 604800, r6 1296000 (+ r2 reopened_open);
            # p90 at 1.8: 604800 + 0.8 * 691200; mean 2250000 / 3
            {"source": "zendesk", "count": 3, "median_s": 604800.0, "p90_s": 1157760.0, "mean_s": 750000.0,
             "median_human": "7d 0h", "p90_human": "13d 9h", "mean_human": "8d 16h", "reopened_open": 1},
        ],
    )  # fmt: skip


async def test_resolution_times_as_csv(app_client: httpx.AsyncClient, admin: dict[str, str], lifecycles: Row) -> None:
    resp = await app_client.get(
        "/v1/reports/resolution-times",
        params={"metric": "full_resolution", "from": "2026-11-02", "to": "2026-11-09"},
        headers={**admin, "Accept": "text/csv"},
    )
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert resp.text.splitlines() == [
        "count,median_s,p90_s,mean_s,median_human,p90_human,mean_human,reopened_open",
        "6,261000.0,950400.0,414600.0,3d 0h,11d 0h,4d 19h,1",
    ]


# --- the per-item CSV, rebuilding a report from it ---------------------------------------------------


async def test_items_csv_streams_every_matching_item(
    app_client: httpx.AsyncClient, admin: dict[str, str], lifecycles: Row, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_export, "EXPORT_CHUNK", 2)  # several pages through one response
    resp = await app_client.get("/v1/items", params={"source": "freshdesk"}, headers={**admin, "Accept": "text/csv"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    # in item_id order; a bulk request numbers its new items by (source, external_id)
    assert [r["external_id"] for r in rows] == ["r11", "r3", "r4", "r7"]
    r3, r4 = rows[1], rows[2]
    assert list(r3) == [
        "item_id", "source", "external_id", "kind", "theme_id", "theme_label", "intent", "status", "created_at",
        "first_response_at", "first_solved_at", "last_solved_at", "reopen_count", "channel", "priority",
        "product", "tags",
    ]  # fmt: skip
    assert {k: v for k, v in r3.items() if k != "item_id"} == {
        "source": "freshdesk", "external_id": "r3", "kind": "ticket", "theme_id": "", "theme_label": "",
        "intent": "", "status": "solved", "created_at": "2026-11-03T00:00:00Z", "first_response_at": "",
        "first_solved_at": "2026-11-04T00:00:00Z", "last_solved_at": "2026-11-05T00:00:00Z", "reopen_count": "1",
        "channel": "chat", "priority": "normal", "product": "billing", "tags": "",
    }  # fmt: skip
    assert (r4["theme_id"], r4["theme_label"], r4["tags"]) == (str(lifecycles["spam"]), "spam", "spam")


async def test_items_csv_rebuilds_the_reopen_rate(
    app_client: httpx.AsyncClient, admin: dict[str, str], lifecycles: Row
) -> None:
    """docs/metrics.md tells users how to rebuild each number from this export; check the recipe."""
    resp = await app_client.get("/v1/items", params={"kind": "ticket"}, headers={**admin, "Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    solved = [r for r in rows if "2026-11-02" <= r["first_solved_at"][:10] < "2026-11-09"]
    assert len(solved) == 6
    assert sum(int(r["reopen_count"]) > 0 for r in solved) == 4
    assert sum(int(r["reopen_count"]) for r in solved) == 7


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("reopen-rate", {"from": "2026-11-09", "to": "2026-11-02"}, "to"),  # from after to
        ("reopen-rate", {"from": "2026-11-02", "to": "2026-11-02"}, "to"),  # empty window
        ("reopen-rate", {"from": "last tuesday", "to": "2026-11-02"}, "from"),  # unparsable
        ("reopen-rate", {"from": "2026-11-02", "to": "2026-13-01"}, "to"),  # no such month
        ("reopen-rate", {"from": "2026-11-02T10:00:00", "to": "2026-11-09"}, "from"),  # no UTC offset
        ("theme-trends", {"from": "0001-01-01", "to": "0001-01-08"}, "from"),  # out of range
        ("theme-trends", {"from": "9999-12-01", "to": "9999-12-31"}, "from"),  # out of range
        ("theme-trends", {"from": "2020-01-01", "to": "2026-01-01"}, "to"),  # longer than 3 years
        ("reopen-rate", {"from": "2026-11-02", "to": "2026-11-09", "group_by": "weekday"}, "group_by"),
        ("theme-trends", {"from": "2026-11-02", "to": "2026-11-09", "tz": "Mars/Olympus_Mons"}, "tz"),
        ("theme-trends", {"from": "2026-11-02", "to": "2026-11-09", "tz": "UTC+3"}, "tz"),  # not IANA
        ("theme-trends", {"from": "2026-11-02", "to": "2026-11-09", "top": "0"}, "top"),
        ("resolution-times", {"from": "2026-11-02", "to": "2026-11-09", "metric": "time_to_coffee"}, "metric"),
        ("resolution-times", {"from": "2026-11-02", "to": "2026-11-09"}, "metric"),  # metric is required
        ("reopen-rate", {"to": "2026-11-09"}, "from"),  # from is required
    ],
)
async def test_bad_report_requests_are_422_in_the_envelope(
    app_client: httpx.AsyncClient, admin: dict[str, str], path: str, params: dict[str, str], field: str
) -> None:
    resp = await app_client.get(f"/v1/reports/{path}", params=params, headers=admin)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"] == "validation_error"
    assert [d["loc"] for d in body["detail"]] == [["query", field]]


async def test_reports_need_a_read_key(app_client: httpx.AsyncClient) -> None:
    resp = await app_client.get("/v1/reports/reopen-rate", params={"from": "2026-11-02", "to": "2026-11-09"})
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"


# --- the CLI -----------------------------------------------------------------------------------------


async def test_cli_prints_the_report_as_a_table(migrated: Settings, lifecycles: Row) -> None:
    env = {**os.environ, "DATABASE_URL": migrated.database_url}
    args = ["report", "reopen-rate", "--from", "2026-11-02", "--to", "2026-11-09", "--group-by", "source"]
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "reopen_rate: [2026-11-02T00:00:00+00:00, 2026-11-09T00:00:00+00:00) UTC",
        "source     solved  reopened  reopen_rate  reopens  reopens_per_solved",
        "---------  ------  --------  -----------  -------  ------------------",
        "freshdesk       3         1        0.333        1               0.333",
        "zendesk         3         3        1.000        6               2.000",
    ]
    bad = subprocess.run(
        [sys.executable, "-m", "api.cli", "report", "reopen-rate", "--from", "2026-11-09", "--to", "2026-11-02"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("error: The window is empty")
