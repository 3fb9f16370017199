"""Regression tests for what an outside probe found (issue 17, findings 3, 5 and 7), each with the
probe's exact input, through the public API and the dashboard's pages."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx
import pytest

from tests.api.test_dashboard import client, seeded  # noqa: F401
from tests.api.test_items import ticket
from tests.api.test_reports import ingest, item, theme

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(A1:A2)", "\tcmd", "\rcmd"]


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def is_neutral(cell: str) -> bool:
    return not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


# --- finding 3: CSV exports ---------------------------------------------------------------------


async def test_items_csv_neutralises_cells_that_a_spreadsheet_would_run(
    app_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    items = [ticket(value, product=value, tags=[value, "ok"], channel=value) for value in FORMULAS]
    resp = await app_client.post("/v1/items/bulk", json=items, headers=admin)
    assert resp.status_code == 202 and resp.json()["accepted"] == len(FORMULAS), resp.text
    resp = await app_client.get("/v1/items", headers={**admin, "Accept": "text/csv"})
    assert resp.status_code == 200
    rows = rows_of(resp.text)
    assert sorted(r["external_id"] for r in rows) == sorted("'" + v for v in FORMULAS)
    for row in rows:
        assert all(is_neutral(row[k]) for k in ("external_id", "product", "tags", "channel")), row
        assert row["product"] == row["external_id"]  # the same text, one apostrophe in front


async def test_report_csv_neutralises_labels_and_tags_but_not_negative_numbers(
    app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection
) -> None:
    items = [item("t1", "2026-11-02T10:00:00Z", tags=["=cmd|' /C calc'!A0"])]
    items += [item("t2", "2026-10-27T10:00:00Z"), item("t3", "2026-10-28T10:00:00Z")]
    await ingest(app_client, admin, items)
    await theme(db, "=1+1", ["t1", "t2", "t3"])
    csv_accept = {**admin, "Accept": "text/csv"}
    params = {"from": "2026-11-02", "to": "2026-11-09"}
    trends = rows_of((await app_client.get("/v1/reports/theme-trends", params=params, headers=csv_accept)).text)
    assert [(r["label"], r["volume"], r["wow_change"]) for r in trends] == [
        ("'=1+1", "1", "-0.5"),  # (1 - 2) / 2 stays a number
        ("unassigned", "0", "0.0"),
    ]
    await db.execute("UPDATE item SET status = 'solved', first_solved_at = created_at + interval '1 hour'")
    by_tag = await app_client.get("/v1/reports/reopen-rate", params={**params, "group_by": "tag"}, headers=csv_accept)
    assert [r["tag"] for r in rows_of(by_tag.text)] == ["'=cmd|' /C calc'!A0"]


# --- finding 5: dashboard 500s, cursors --------------------------------------------------------


async def test_a_theme_page_with_an_item_dated_9999_12_31_renders_east_of_utc(
    client: httpx.AsyncClient,  # noqa: F811
    db: asyncpg.Connection,
    seeded: dict[str, object],  # noqa: F811
) -> None:
    themes = seeded["themes"]
    assert isinstance(themes, dict)
    refund = themes["refund"]
    # Items are bounded to 2100-01-01 by ingest and by a CHECK (migration 0010); a theme's times have
    # no such constraint, and the page must render both edges east of UTC.
    await db.execute(
        "UPDATE item SET created_at = '2100-01-01T00:00:00Z' WHERE item_id = (SELECT min(item_id) FROM item"
        " WHERE theme_id = $1)",
        refund,
    )
    await db.execute("UPDATE theme SET last_seen_at = '9999-12-31T23:59:59Z' WHERE theme_id = $1", refund)
    for tz in ("Asia/Tokyo", "Pacific/Kiritimati", "UTC"):
        resp = await client.get(f"/themes/{refund}", params={"tz": tz})
        assert resp.status_code == 200, resp.text[-500:]
        assert "9999-12-31 23:59" in resp.text


@pytest.mark.parametrize(
    "params",
    [
        {"week": "0001-01-01"},
        {"week": "9999-12-31"},
        {"week": "1969-12-31"},
        {"tz": "localtime"},
        {"tz": "posixrules"},
        {"tz": "a" * 300},
        {"tz": "../../../etc/passwd"},
    ],
    ids=["week-0001", "week-9999", "week-1969", "tz-localtime", "tz-posixrules", "tz-300-chars", "tz-path"],
)
async def test_bad_week_and_tz_are_a_422_page_on_every_dashboard_page(
    client: httpx.AsyncClient,  # noqa: F811
    seeded: dict[str, object],  # noqa: F811
    params: dict[str, str],
) -> None:
    themes = seeded["themes"]
    assert isinstance(themes, dict)
    for path in ("/", "/features", "/operations", f"/themes/{themes['refund']}"):
        resp = await client.get(path, params=params)
        assert resp.status_code == 422, (path, resp.status_code)
        assert resp.headers["content-type"].startswith("text/html")
        assert "connection" not in resp.headers or resp.headers["connection"] != "close"


@pytest.mark.parametrize("tz", ["localtime", "a" * 300, "Mars/Olympus_Mons"])
async def test_bad_tz_is_a_422_envelope_on_the_api(
    app_client: httpx.AsyncClient, admin: dict[str, str], tz: str
) -> None:
    window = {"from": "2026-11-02", "to": "2026-11-09", "tz": tz}
    for path, params in (("/v1/reports/theme-trends", window), ("/v1/reports/reopen-rate", window),
                         ("/v1/themes/1", {"tz": tz})):  # fmt: skip
        resp = await app_client.get(path, params=params, headers=admin)
        assert resp.status_code == 422, (path, resp.status_code, resp.text)
        body = resp.json()
        assert body["error"] == "validation_error" and "time zone" in json.dumps(body["detail"])


async def test_every_zone_we_accept_is_one_postgres_knows(db: asyncpg.Connection) -> None:
    from schemas.timezones import known_zones

    postgres = {r["name"] for r in await db.fetch("SELECT name FROM pg_timezone_names")}
    assert sorted(known_zones() - postgres) == []


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CURSORS = {
    "oversized": b64(b"[" + b"1," * 400 + b"1]"),
    "nested": b64(b"[" * 60 + b"1" + b"]" * 60),
    "nested-object": b64(json.dumps({"after": {"after": {"after": 1}}}).encode()),
    "past-bigint": b64(b"[99999999999999999999999999]"),
    "negative": b64(b"[-1]"),
    "float": b64(b"[1.5]"),
    "not-base64": "!!!",
}


@pytest.mark.parametrize("cursor", list(CURSORS.values()), ids=list(CURSORS))
async def test_bad_cursors_are_a_422_on_every_list(
    app_client: httpx.AsyncClient, admin: dict[str, str], cursor: str
) -> None:
    for path in ("/v1/items", "/v1/themes", "/v1/connections"):
        resp = await app_client.get(path, params={"cursor": cursor}, headers=admin)
        assert resp.status_code == 422, (path, resp.status_code, resp.text)
        assert resp.json()["error"] == "validation_error"


@pytest.mark.parametrize("cursor", [CURSORS["nested"], b64(b"[99999999999999999999,1]"), b64(b"[1,1,1]")])
async def test_bad_cursors_are_a_422_page_on_a_theme_page(
    client: httpx.AsyncClient,  # noqa: F811
    seeded: dict[str, object],  # noqa: F811
    cursor: str,
) -> None:
    themes = seeded["themes"]
    assert isinstance(themes, dict)
    resp = await client.get(f"/themes/{themes['refund']}", params={"cursor": cursor})
    assert resp.status_code == 422 and resp.headers["content-type"].startswith("text/html")


# --- finding 7: dashboard faults ---------------------------------------------------------------


async def test_the_default_week_is_the_last_complete_one(
    client: httpx.AsyncClient,  # noqa: F811
    seeded: dict[str, object],  # noqa: F811
) -> None:
    today = datetime.now(UTC).date()
    last_monday = today - timedelta(days=today.weekday()) - timedelta(weeks=1)
    html = (await client.get("/", params={"tz": "UTC"})).text
    assert f"<h1>Week of {last_monday.isoformat()}</h1>" in html
    # ...and the week in progress is still one click away
    assert re.search(rf'href="/\?[^"]*week={(last_monday + timedelta(weeks=1)).isoformat()}', html)


async def test_chart_bars_link_to_the_items_of_their_theme_and_week(
    client: httpx.AsyncClient,  # noqa: F811
    seeded: dict[str, object],  # noqa: F811
) -> None:
    week, themes = seeded["week"], seeded["themes"]
    assert isinstance(week, date) and isinstance(themes, dict)
    html = (await client.get("/", params={"tz": "UTC", "week": week.isoformat()})).text
    spec = json.loads(re.search(r'id="top-themes-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    refund = spec["labels"].index("Refund not received")
    this_week, last_week = spec["links"][0][refund], spec["links"][1][refund]
    previous = week - timedelta(weeks=1)
    assert this_week.startswith(f"/themes/{themes['refund']}?") and f"items_week={week}" in this_week
    assert f"items_week={previous}" in last_week
    page = (await client.get(this_week.split("#")[0])).text
    dates = re.findall(r'<td class="nowrap">(\d{4}-\d{2}-\d{2}) \d\d:\d\d</td>', page.split('id="items"')[1])
    assert len(dates) == spec["series"][0]["values"][refund] == 20
    assert all(week <= date.fromisoformat(d) < week + timedelta(weeks=1) for d in dates)
    assert 'id="items-week-note"' in page
    theme_page = (await client.get(f"/themes/{themes['refund']}", params={"tz": "UTC", "week": week.isoformat()})).text
    volume = json.loads(re.search(r'id="theme-volume-data">(.*?)</script>', theme_page, re.S).group(1))  # type: ignore[union-attr]
    assert len(volume["links"][0]) == 12 and f"items_week={week}" in volume["links"][0][-1]


async def test_the_numbers_under_a_chart_link_the_same_items(
    client: httpx.AsyncClient,  # noqa: F811
    seeded: dict[str, object],  # noqa: F811
) -> None:
    week, themes = seeded["week"], seeded["themes"]
    assert isinstance(week, date) and isinstance(themes, dict)
    html = (await client.get(f"/themes/{themes['refund']}", params={"tz": "UTC", "week": week.isoformat()})).text
    table = html.split('id="theme-volume"')[1].split("</figure>")[0]
    links = re.findall(r'<th scope="row"><a href="([^"]+)">(\d{4}-\d{2}-\d{2})</a></th>', table)
    assert len(links) == 12
    assert all(f"items_week={monday}" in href.replace("&amp;", "&") for href, monday in links)
