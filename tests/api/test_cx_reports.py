"""Satisfaction, effort, theme impact, business-hours times and knowledge gaps against
hand-computed numbers (docs/metrics.md). Tickets go in through POST /v1/items/bulk; themes,
centroids and article vectors are set with SQL (clustering and embedding are not under test).

The window is [2026-11-02, 2026-11-09) UTC (Mon to Mon); the schedule is Mon-Fri 09:00-17:00 UTC.

ticket  created          reply  solved (last)    theme  csat  cust/agent/assign  reopens  calendar  business
t1      Mon 11-02 10:00  12:00  Mon 11-02 16:00  A      5     2 / 3 / 1          0        6 h       6 h
t2      Fri 10-30 16:00  -      Mon 11-02 10:00  A      2     4 / 2 / 0          0        66 h      1 + 1 h
t3      Tue 11-03 09:00  -      Thu 11-05 09:00  B      4     3 / 3 / 2          1        48 h      8 + 8 h
t4      Wed 11-04 20:00  -      Thu 11-05 11:00  -      -     1 / 1 / -          0        15 h      2 h
t5      Sat 11-07 10:00  -      Sun 11-08 10:00  B      1     0 / 1 / 0          0        24 h      0
t6      Mon 11-09 10:00  -      Mon 11-09 12:00  A      5     9 / 9 / 9          0        (outside the window)
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest

from db.queries.articles import update_article_vectors
from db.queries.cx_metrics import median_sorted, medians_without
from schemas.settings import Settings
from tests.conftest import ROOT

Row = dict[str, Any]
H = 3600.0
WINDOW = {"from": "2026-11-02", "to": "2026-11-09"}


def ticket(external_id: str, created: str, solved: str, **fields: Any) -> Row:
    events = [
        {"at": f"{created}Z", "to_status": "open"},
        {"at": f"{solved}Z", "from_status": "open", "to_status": "solved"},
    ]
    return {
        "source": "zendesk", "external_id": external_id, "kind": "ticket", "body": f"ticket {external_id} is broken",
        "created_at": f"{created}Z", "status": "solved", "status_events": events, **fields,
    }  # fmt: skip


TICKETS = [
    ticket("t1", "2026-11-02T10:00:00", "2026-11-02T16:00:00", first_response_at="2026-11-02T12:00:00Z", csat=5,
           customer_replies=2, agent_replies=3, assignee_changes=1),
    ticket("t2", "2026-10-30T16:00:00", "2026-11-02T10:00:00", csat=2, customer_replies=4, agent_replies=2,
           assignee_changes=0),
    {**ticket("t3", "2026-11-03T09:00:00", "2026-11-05T09:00:00", csat=4, customer_replies=3, agent_replies=3,
              assignee_changes=2),
     "status_events": [
         {"at": "2026-11-03T09:00:00Z", "to_status": "open"},
         {"at": "2026-11-03T10:00:00Z", "from_status": "open", "to_status": "solved"},
         {"at": "2026-11-04T09:00:00Z", "from_status": "solved", "to_status": "open"},
         {"at": "2026-11-05T09:00:00Z", "from_status": "open", "to_status": "solved"},
     ]},
    ticket("t4", "2026-11-04T20:00:00", "2026-11-05T11:00:00", customer_replies=1, agent_replies=1),
    ticket("t5", "2026-11-07T10:00:00", "2026-11-08T10:00:00", csat=1, customer_replies=0, agent_replies=1,
           assignee_changes=0),
    ticket("t6", "2026-11-09T10:00:00", "2026-11-09T12:00:00", csat=5, customer_replies=9, agent_replies=9,
           assignee_changes=9),
]  # fmt: skip


async def seed(client: httpx.AsyncClient, db: asyncpg.Connection, admin: dict[str, str]) -> dict[str, int]:
    resp = await client.post("/v1/items/bulk", json=TICKETS, headers=admin)
    assert resp.status_code == 202 and resp.json()["rejected"] == [], resp.text
    parent = await db.fetchval("INSERT INTO theme (label, level) VALUES ('payments', 'parent') RETURNING theme_id")
    ids = {"P": parent}
    for label, members, centroid in (("A", ["t1", "t2", "t6"], [1, 0, 0, 0]), ("B", ["t3", "t5"], [0, 1, 0, 0])):
        ids[label] = await db.fetchval(
            "INSERT INTO theme (label, parent_id, centroid) VALUES ($1, $2, $3) RETURNING theme_id",
            label, parent, np.asarray(centroid, "<f4").tobytes(),
        )  # fmt: skip
        await db.execute("UPDATE item SET theme_id = $1 WHERE external_id = ANY($2)", ids[label], members)
    return ids


async def report(client: httpx.AsyncClient, admin: dict[str, str], name: str, **params: Any) -> list[Row]:
    resp = await client.get(f"/v1/reports/{name}", params={**WINDOW, **params}, headers=admin)
    assert resp.status_code == 200, resp.text
    rows: list[Row] = resp.json()["rows"]
    return rows


async def test_satisfaction_overall_and_by_theme(app_client: httpx.AsyncClient, db: asyncpg.Connection,
                                                 admin: dict[str, str]) -> None:  # fmt: skip
    ids = await seed(app_client, db, admin)
    # t1..t5 solved in the window; rated t1 5, t2 2, t3 4, t5 1; satisfied (4 or 5): t1, t3.
    assert await report(app_client, admin, "satisfaction") == [
        {"solved": 5, "rated": 4, "satisfied": 2, "csat": 0.5, "mean_score": 3.0}
    ]
    assert await report(app_client, admin, "satisfaction", group_by="theme") == [
        {"theme_id": ids["A"], "label": "A", "solved": 2, "rated": 2, "satisfied": 1, "csat": 0.5, "mean_score": 3.5},
        {"theme_id": ids["B"], "label": "B", "solved": 2, "rated": 2, "satisfied": 1, "csat": 0.5, "mean_score": 2.5},
        {"theme_id": None, "label": "unassigned", "solved": 1, "rated": 0, "satisfied": 0, "csat": None,
         "mean_score": None},
    ]  # fmt: skip
    # A hidden theme's tickets make a "hidden" row, apart from the unassigned ones.
    await db.execute("UPDATE theme SET hidden = true WHERE theme_id = $1", ids["B"])
    hidden = await report(app_client, admin, "satisfaction", group_by="theme")
    assert [(r["theme_id"], r["label"], r["solved"]) for r in hidden] == [
        (ids["A"], "A", 2), (None, "hidden", 2), (None, "unassigned", 1),
    ]  # fmt: skip
    await db.execute("UPDATE theme SET hidden = false WHERE theme_id = $1", ids["B"])
    # level=parent: A and B are one parent, computed over its four tickets (t1, t2, t3, t5).
    assert (await report(app_client, admin, "satisfaction", group_by="theme", level="parent"))[0] == {
        "theme_id": ids["P"], "label": "payments", "solved": 4, "rated": 4, "satisfied": 2, "csat": 0.5,
        "mean_score": 3.0,
    }  # fmt: skip


async def test_effort_means_and_index(app_client: httpx.AsyncClient, db: asyncpg.Connection,
                                      admin: dict[str, str]) -> None:  # fmt: skip
    await seed(app_client, db, admin)
    # customer (2+4+3+1+0)/5 = 2.0; agent (3+2+3+1+1)/5 = 2.0; assignee over the four that say
    # (1+0+2+0)/4 = 0.75; reopens 1/5 = 0.2; index 2.0 + 2 x 0.2 + 0.75 = 3.15.
    [row] = await report(app_client, admin, "effort")
    assert row == {
        "tickets": 5, "customer_replies_mean": 2.0, "agent_replies_mean": 2.0, "assignee_changes_mean": 0.75,
        "reopens_mean": 0.2, "effort_index": pytest.approx(3.15),
    }  # fmt: skip
    by_source = await report(app_client, admin, "effort", group_by="source")
    assert [r["source"] for r in by_source] == ["zendesk"] and by_source[0]["tickets"] == 5


async def test_theme_impact_ranks_by_excess_hours(app_client: httpx.AsyncClient, db: asyncpg.Connection,
                                                  admin: dict[str, str]) -> None:  # fmt: skip
    ids = await seed(app_client, db, admin)
    # Full resolution: t1 6 h, t2 66 h (A); t3 48 h, t5 24 h (B); t4 15 h (unassigned).
    # B: median 36 h, others (6, 15, 66) 15 h -> 2 x 21 = 42 h. A: median 36 h, others (15, 24, 48)
    # 24 h -> 2 x 12 = 24 h. Unassigned: 15 h vs others (6, 24, 48, 66) 36 h -> 1 x -21 = -21 h.
    rows = await report(app_client, admin, "theme-impact")
    assert rows == [
        {"theme_id": ids["B"], "label": "B", "volume": 2, "share": 0.4, "reopen_rate": 0.5, "reopen_rate_others": 0.0,
         "median_resolution_s": 36 * H, "median_resolution_s_others": 15 * H, "csat": 0.5, "csat_others": 0.5,
         "excess_hours": 42.0},
        {"theme_id": ids["A"], "label": "A", "volume": 2, "share": 0.4, "reopen_rate": 0.0,
         "reopen_rate_others": pytest.approx(1 / 3), "median_resolution_s": 36 * H,
         "median_resolution_s_others": 24 * H, "csat": 0.5, "csat_others": 0.5, "excess_hours": 24.0},
        {"theme_id": None, "label": "unassigned", "volume": 1, "share": 0.2, "reopen_rate": 0.0,
         "reopen_rate_others": 0.25, "median_resolution_s": 15 * H, "median_resolution_s_others": 36 * H,
         "csat": None, "csat_others": 0.5, "excess_hours": -21.0},
    ]  # fmt: skip
    # Parent: four tickets, median (24 + 48) / 2 = 36 h against t4's 15 h -> 4 x 21 = 84 h.
    parent = await report(app_client, admin, "theme-impact", level="parent")
    assert (parent[0]["theme_id"], parent[0]["volume"], parent[0]["excess_hours"]) == (ids["P"], 4, 84.0)
    # A hidden theme has no row; its tickets stay among the others.
    await db.execute("UPDATE theme SET hidden = true WHERE theme_id = $1", ids["B"])
    rows = await report(app_client, admin, "theme-impact")
    assert [r["theme_id"] for r in rows] == [ids["A"], None] and rows[0]["median_resolution_s_others"] == 24 * H


async def test_theme_impact_as_csv(app_client: httpx.AsyncClient, db: asyncpg.Connection,
                                   admin: dict[str, str]) -> None:  # fmt: skip
    await seed(app_client, db, admin)
    resp = await app_client.get("/v1/reports/theme-impact", params=WINDOW, headers={**admin, "Accept": "text/csv"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["label"] for r in rows] == ["B", "A", "unassigned"] and rows[0]["excess_hours"] == "42.0"


def test_median_without_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    values = np.sort(rng.integers(0, 50, 41).astype(np.float64))  # ties included
    for size in (0, 1, 2, 7, 20, 40):
        removed = np.sort(rng.choice(41, size=size, replace=False))
        kept = np.delete(values, removed)
        assert medians_without(values, removed) == (float(np.median(kept)) if len(kept) else None)
        assert median_sorted(values[removed]) == (float(np.median(values[removed])) if size else None)


async def schedule(client: httpx.AsyncClient, admin: dict[str, str], **fields: Any) -> httpx.Response:
    body = {
        "name": "EU support",
        "tz": "UTC",
        "hours": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    }
    return await client.post("/v1/schedules", json={**body, **fields}, headers=admin)


async def test_business_hours_resolution_times(app_client: httpx.AsyncClient, db: asyncpg.Connection,
                                               admin: dict[str, str]) -> None:  # fmt: skip
    await seed(app_client, db, admin)
    created = await schedule(app_client, admin)
    assert created.status_code == 201, created.text
    schedule_id = created.json()["schedule_id"]
    listed = await app_client.get("/v1/schedules", headers=admin)
    assert [s["name"] for s in listed.json()["data"]] == ["EU support"]
    # Business seconds: t1 6 h, t2 2 h, t3 16 h, t4 2 h, t5 0 -> sorted 0, 2, 2, 6, 16 h:
    # median 2 h, p90 at 0.9 x 4 = 3.6 -> 6 + 0.6 x 10 = 12 h, mean 26 / 5 = 5.2 h.
    params = {"metric": "full_resolution", "hours": "business", "schedule_id": schedule_id}
    resp = await app_client.get("/v1/reports/resolution-times", params={**WINDOW, **params}, headers=admin)
    assert resp.status_code == 200, resp.text
    assert resp.json()["definition"] == "full_resolution_business"
    [row] = resp.json()["rows"]
    assert (row["count"], row["reopened_open"]) == (5, 0)
    assert row["median_s"] == pytest.approx(2 * H, abs=1) and row["p90_s"] == pytest.approx(12 * H, abs=1)
    assert row["mean_s"] == pytest.approx(5.2 * H, abs=1)
    # First response (tickets created in the window): only t1 replied, after 2 business hours.
    first = await report(app_client, admin, "resolution-times", metric="first_response", hours="business",
                         schedule_id=schedule_id)  # fmt: skip
    assert (first[0]["count"], first[0]["median_s"], first[0]["awaiting_first_response"]) == (1, 2 * H, 3)
    # The calendar report is unchanged: median of 6, 15, 24, 48, 66 h.
    calendar = await report(app_client, admin, "resolution-times", metric="full_resolution")
    assert calendar[0]["median_s"] == 24 * H
    missing = await app_client.get("/v1/reports/resolution-times", params={**WINDOW, **params, "schedule_id": 999},
                                   headers=admin)  # fmt: skip
    assert missing.status_code == 404
    no_id = await app_client.get("/v1/reports/resolution-times", params={**WINDOW, "metric": "first_response",
                                 "hours": "business"}, headers=admin)  # fmt: skip
    assert no_id.status_code == 422 and "schedule_id" in str(no_id.json()["detail"])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hours": {"mon": [["17:00", "09:00"]]}}, "inverted"),
        ({"hours": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}}, "overlap"),
        ({"tz": "Mars/Olympus_Mons"}, "Unknown time zone"),
    ],
)
async def test_bad_schedules_are_422(app_client: httpx.AsyncClient, admin: dict[str, str], fields: Row,
                                     message: str) -> None:  # fmt: skip
    resp = await schedule(app_client, admin, **fields)
    assert resp.status_code == 422 and resp.json()["error"] == "validation_error"
    assert message in str(resp.json()["detail"])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"csat": 6}, "less than or equal to 5"),
        ({"csat": 0}, "greater than or equal to 1"),
        ({"customer_replies": -1}, "greater than or equal to 0"),
        ({"assignee_changes": -3}, "greater than or equal to 0"),
        ({"language": "not a tag"}, "BCP 47"),
    ],
)
async def test_bad_item_fields_are_422(app_client: httpx.AsyncClient, admin: dict[str, str], fields: Row,
                                       message: str) -> None:  # fmt: skip
    resp = await app_client.post("/v1/items", json={**TICKETS[0], **fields}, headers=admin)
    assert resp.status_code == 422 and message in str(resp.json()["detail"])


async def test_item_fields_are_stored_and_language_inferred(app_client: httpx.AsyncClient,
                                                            admin: dict[str, str]) -> None:  # fmt: skip
    german = {**TICKETS[0], "external_id": "de1", "body": "Die Rechnung ist nicht korrekt und ich kann sie nicht"
              " herunterladen, bitte helfen Sie mir."}  # fmt: skip
    english = {
        **TICKETS[0],
        "external_id": "en1",
        "body": "The invoice is wrong and I can not download it, please help",
    }
    tagged = {**TICKETS[0], "external_id": "pt1", "language": "PT-br"}
    for body in (TICKETS[0], german, english, tagged):
        assert (await app_client.post("/v1/items", json=body, headers=admin)).status_code == 202
    items = {i["external_id"]: i for i in (await app_client.get("/v1/items", headers=admin)).json()["data"]}
    assert (items["t1"]["csat"], items["t1"]["customer_replies"], items["t1"]["assignee_changes"]) == (5, 2, 1)
    languages = [items[k]["language"] for k in ("t1", "de1", "en1", "pt1")]
    assert languages == [None, "de", "en", "pt-BR"]  # "ticket t1 is broken" is too little to tell


async def test_articles_and_knowledge_gaps(app_client: httpx.AsyncClient, db: asyncpg.Connection,
                                           admin: dict[str, str]) -> None:  # fmt: skip
    ids = await seed(app_client, db, admin)
    articles = [
        {"source": "zendesk_guide", "external_id": "x", "title": "Refunds", "body": "How refunds work."},
        {"source": "zendesk_guide", "external_id": "y", "title": "Login", "body": "Resetting a password.",
         "url": "https://help.example.com/y"},
    ]  # fmt: skip
    resp = await app_client.post("/v1/articles/bulk", json=articles, headers=admin)
    assert resp.status_code == 202 and resp.json() == {"accepted": 2, "created": 2, "updated": 0}
    listed = (await app_client.get("/v1/articles", headers=admin)).json()["data"]
    assert [(a["external_id"], a["embedded_at"]) for a in listed] == [("x", None), ("y", None)]
    # Vectors as the worker would store them: x is cos 0.9 to A and 0.4359 to B; y is far from both.
    x = np.asarray([0.9, np.sqrt(1 - 0.81), 0, 0], "<f4")
    await update_article_vectors(
        db, article_ids=[listed[0]["article_id"], listed[1]["article_id"]],
        hashes=[r["content_hash"] for r in await db.fetch("SELECT content_hash FROM article ORDER BY article_id")],
        vectors=np.stack([x, np.asarray([0, 0, 1, 0], "<f4")]), model_version="test",
    )  # fmt: skip
    # Items created in the window: B has t3, t5 (2); A has t1 (t2 is older, t6 after).
    rows = await report(app_client, admin, "knowledge-gaps")
    assert [(r["theme_id"], r["volume"], r["covered"], r["gap_volume"]) for r in rows] == [
        (ids["B"], 2, False, 2), (ids["A"], 1, True, 0),
    ]  # fmt: skip
    assert rows[0]["best_article"]["title"] == "Refunds" and rows[0]["best_article"]["id"] == listed[0]["article_id"]
    assert rows[0]["best_article"]["similarity"] == pytest.approx(0.4359, abs=1e-4)
    assert rows[1]["best_article"]["similarity"] == pytest.approx(0.9, abs=1e-6)
    resp = await app_client.get("/v1/reports/knowledge-gaps", params=WINDOW, headers={**admin, "Accept": "text/csv"})
    lines = list(csv.DictReader(io.StringIO(resp.text)))
    assert (lines[0]["best_article_title"], lines[0]["covered"], lines[0]["gap_volume"]) == ("Refunds", "false", "2")
    # A changed text clears the vector: the workers embed it again.
    changed = [{**articles[0], "body": "Refunds take five days."}]
    assert (await app_client.post("/v1/articles/bulk", json=changed, headers=admin)).json()["updated"] == 1
    assert await db.fetchval("SELECT embedded_at FROM article WHERE external_id = 'x'") is None


async def test_article_without_body_is_422(app_client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    bad = [{"source": "guide", "external_id": "1", "title": "Empty", "body": "  "}]
    resp = await app_client.post("/v1/articles/bulk", json=bad, headers=admin)
    assert resp.status_code == 422 and "needs a body" in str(resp.json()["detail"])
    assert (await app_client.get("/v1/articles", headers=admin)).json()["data"] == []


async def test_cli_prints_the_same_reports(app_client: httpx.AsyncClient, db: asyncpg.Connection,
                                           admin: dict[str, str], migrated: Settings) -> None:  # fmt: skip
    await seed(app_client, db, admin)
    env = {**os.environ, "DATABASE_URL": migrated.database_url, "REDIS_URL": migrated.redis_url,
           "SECRET_KEY": "x" * 40, "ENVIRONMENT": "test"}  # fmt: skip
    args = ["--from", "2026-11-02", "--to", "2026-11-09"]
    out = subprocess.run([sys.executable, "-m", "api.cli", "report", "theme-impact", *args],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("theme_impact:") and "excess_hours" in lines[1]
    assert lines[3].split()[1] == "B" and "42.000" in lines[3]
    out = subprocess.run([sys.executable, "-m", "api.cli", "report", "satisfaction", *args, "--group-by", "source"],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0 and "zendesk" in out.stdout and "0.500" in out.stdout, out.stderr
