"""level=parent and hidden themes in every report with a theme in it, against hand-computed numbers.

The tree: parent "cards" holds the leaves "lost card" and "card declined"; "login" is a leaf
without a parent (at level=parent it stands for itself); "spam" is hidden. One item has no theme.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import asyncpg
import httpx
import pytest

from schemas.settings import Settings
from tests.api.test_reports import assert_rows, ev, ingest, item, report
from tests.conftest import ROOT

WINDOW = {"from_": "2026-11-02", "to": "2026-11-09"}


def solved(created: str, solved_at: str, *, reopened_at: str | None = None) -> dict[str, Any]:
    events = [ev(solved_at, "solved", "open")]
    if reopened_at:
        events.append(ev(reopened_at, "open", "solved"))
    return {"created_at": created, "status_events": events}


async def insert_theme(
    db: asyncpg.Connection, label: str, *, level: str = "leaf", parent: int | None = None, hidden: bool = False
) -> int:
    theme_id: int = await db.fetchval(
        "INSERT INTO theme (label, level, parent_id, hidden) VALUES ($1, $2, $3, $4) RETURNING theme_id",
        label, level, parent, hidden,
    )  # fmt: skip
    return theme_id


@pytest.fixture
async def tree(app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection) -> dict[str, int]:
    # first_resolution: c1 1 h, c2 2 h, d1 3 h; c1 reopens after its first solve.
    items = [
        item("c1", **solved("2026-11-02T10:00:00Z", "2026-11-02T11:00:00Z", reopened_at="2026-11-02T12:00:00Z")),
        item("c2", **solved("2026-11-03T10:00:00Z", "2026-11-03T12:00:00Z")),
        item("c3", "2026-11-03T11:00:00Z"),
        item("d1", **solved("2026-11-04T10:00:00Z", "2026-11-04T13:00:00Z")),
        item("d2", "2026-11-04T11:00:00Z"),
        item("g1", **solved("2026-11-05T10:00:00Z", "2026-11-05T10:30:00Z")),
        item("h1", **solved("2026-11-05T10:00:00Z", "2026-11-05T14:00:00Z")),
        item("h2", "2026-11-05T11:00:00Z"),
        item("u1", **solved("2026-11-06T10:00:00Z", "2026-11-06T10:10:00Z")),
    ]
    await ingest(app_client, admin, items)
    ids = {"cards": await insert_theme(db, "cards", level="parent")}
    ids["lost"] = await insert_theme(db, "lost card", parent=ids["cards"])
    ids["declined"] = await insert_theme(db, "card declined", parent=ids["cards"])
    ids["login"] = await insert_theme(db, "login")
    ids["spam"] = await insert_theme(db, "spam", hidden=True)
    members = {"lost": ["c1", "c2", "c3"], "declined": ["d1", "d2"], "login": ["g1"], "spam": ["h1", "h2"]}
    for key, external_ids in members.items():
        await db.execute("UPDATE item SET theme_id = $1 WHERE external_id = ANY($2)", ids[key], external_ids)
    return ids


async def test_theme_trends_by_leaf_drop_hidden_themes_into_a_hidden_row(
    app_client: httpx.AsyncClient, admin: dict[str, str], tree: dict[str, int]
) -> None:
    body = await report(app_client, admin, "theme-trends", **WINDOW)
    rows = [(r["theme_id"], r["label"], r["volume"]) for r in body["rows"]]
    assert rows == [
        (tree["lost"], "lost card", 3),
        (tree["declined"], "card declined", 2),
        (tree["login"], "login", 1),
        (None, "unassigned", 1),
        (None, "hidden", 2),  # spam's h1 h2: not unassigned, and spam is not shown
    ]


async def test_theme_trends_by_parent_count_each_item_once_under_its_parent(
    app_client: httpx.AsyncClient, admin: dict[str, str], tree: dict[str, int]
) -> None:
    body = await report(app_client, admin, "theme-trends", **WINDOW, level="parent")
    rows = [(r["theme_id"], r["label"], r["volume"], r["wow_change"]) for r in body["rows"]]
    assert rows == [
        (tree["cards"], "cards", 5, 5.0),  # c1 c2 c3 d1 d2; (5 - 0) / max(0, 1)
        (tree["login"], "login", 1, 1.0),  # no parent: stands for itself
        (None, "unassigned", 1, 1.0),
        (None, "hidden", 2, 2.0),
    ]


async def test_reopen_rate_by_parent_is_computed_over_its_items(
    app_client: httpx.AsyncClient, admin: dict[str, str], tree: dict[str, int]
) -> None:
    def row(theme_id: int | None, label: str, solved: int, reopened: int) -> dict[str, Any]:
        rate = reopened / solved
        return {"theme_id": theme_id, "label": label, "solved": solved, "reopened": reopened,
                "reopen_rate": rate, "reopens": reopened, "reopens_per_solved": rate}  # fmt: skip

    leaf = await report(app_client, admin, "reopen-rate", **WINDOW, group_by="theme")
    assert_rows(
        leaf["rows"],
        [
            row(tree["lost"], "lost card", 2, 1),  # c1 (reopened), c2
            row(tree["declined"], "card declined", 1, 0),
            row(tree["login"], "login", 1, 0),
            row(None, "hidden", 1, 0),  # h1
            row(None, "unassigned", 1, 0),  # u1
        ],
    )
    parent = await report(app_client, admin, "reopen-rate", **WINDOW, group_by="theme", level="parent")
    assert_rows(
        parent["rows"],
        [
            row(tree["cards"], "cards", 3, 1),  # 1/3 over c1 c2 d1, not the mean of 1/2 and 0/1
            row(tree["login"], "login", 1, 0),
            row(None, "hidden", 1, 0),
            row(None, "unassigned", 1, 0),
        ],
    )


async def test_resolution_times_by_parent_take_the_median_of_its_items(
    app_client: httpx.AsyncClient, admin: dict[str, str], tree: dict[str, int]
) -> None:
    body = await report(
        app_client, admin, "resolution-times", **WINDOW, metric="first_resolution", group_by="theme", level="parent"
    )
    by_label = {r["label"]: r for r in body["rows"]}
    cards = by_label["cards"]
    # c1 3600, c2 7200, d1 10800: median 7200; p90 at rank 0.9 * 2 = 1.8 -> 7200 + 0.8 * 3600
    assert (cards["theme_id"], cards["count"], cards["median_s"], cards["mean_s"]) == (tree["cards"], 3, 7200, 7200)
    assert cards["p90_s"] == pytest.approx(10080)
    assert (by_label["hidden"]["theme_id"], by_label["hidden"]["count"]) == (None, 1)  # h1
    assert [r["label"] for r in body["rows"]] == ["cards", "login", "hidden", "unassigned"]
    leaf = await report(app_client, admin, "resolution-times", **WINDOW, metric="first_resolution", group_by="theme")
    assert {r["label"]: r["median_s"] for r in leaf["rows"]}["lost card"] == 5400  # c1 c2


async def test_feature_requests_by_parent_theme_and_hidden(
    app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection, tree: dict[str, int]
) -> None:
    exports = await insert_theme(db, "exports", level="parent")
    csv_theme = await insert_theme(db, "csv export", parent=exports)
    pdf_theme = await insert_theme(db, "pdf export", parent=exports)
    secret = await insert_theme(db, "secret roadmap", hidden=True)
    assignments = {"c1": csv_theme, "c2": pdf_theme, "c3": pdf_theme, "d1": secret, "d2": None}
    for external_id, theme_id in assignments.items():
        await db.execute(
            "UPDATE item SET intent = 'feature_request', feature_theme_id = $2 WHERE external_id = $1",
            external_id, theme_id,
        )  # fmt: skip
    body = await report(app_client, admin, "feature-requests", **WINDOW, group_by="theme", level="parent")
    assert [(r["theme_id"], r["label"], r["count"]) for r in body["rows"]] == [
        (exports, "exports", 3),  # c1 c2 c3 under their leaves' parent
        (None, "hidden", 1),  # d1
        (None, "unassigned", 1),  # d2
    ]
    leaf = await report(app_client, admin, "feature-requests", **WINDOW, group_by="theme")
    assert [(r["theme_id"], r["count"]) for r in leaf["rows"]] == [(pdf_theme, 2), (csv_theme, 1), (None, 1), (None, 1)]


async def test_level_must_be_leaf_or_parent(app_client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    resp = await app_client.get(
        "/v1/reports/theme-trends", params={"from": "2026-11-02", "to": "2026-11-09", "level": "root"}, headers=admin
    )
    assert resp.status_code == 422 and resp.json()["error"] == "validation_error"


async def test_the_cli_prints_the_same_parent_rows(migrated: Settings, tree: dict[str, int]) -> None:
    env = {**os.environ, "DATABASE_URL": migrated.database_url}
    args = ["report", "reopen-rate", "--from", "2026-11-02", "--to", "2026-11-09", "--group-by", "theme"]
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", *args, "--level", "parent"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].split() == [
        "theme_id",
        "label",
        "solved",
        "reopened",
        "reopen_rate",
        "reopens",
        "reopens_per_solved",
    ]
    assert lines[3].split() == [str(tree["cards"]), "cards", "3", "1", "0.333", "1", "0.333"]
    assert [line.split()[1] for line in lines[3:]] == ["cards", "login", "hidden", "unassigned"]


async def test_hiding_a_parent_hides_its_leaves_at_either_level(
    app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection, tree: dict[str, int]
) -> None:
    await db.execute("UPDATE theme SET hidden = true WHERE theme_id = $1", tree["cards"])
    for level in ("leaf", "parent"):
        body = await report(app_client, admin, "theme-trends", **WINDOW, level=level)
        rows = [(r["theme_id"], r["label"], r["volume"]) for r in body["rows"]]
        # c1 c2 c3 d1 d2 (under cards) and h1 h2 (spam) are hidden; login and u1 stay
        assert rows == [(tree["login"], "login", 1), (None, "unassigned", 1), (None, "hidden", 7)], level
