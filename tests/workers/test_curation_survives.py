"""People's decisions, made through the API, hold through clustering runs on grown data (#15).

Ten decisions of every kind (rename, hide, re-parent, merge, split, move, a person's theme, an
intent correction) on a map of 70 synthetic issues; then 30 % more items and two runs of the real
clustering job. Every decision must still hold, and the issues nobody touched must keep their map.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import asyncpg
import httpx
import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from schemas.settings import Settings
from tests.conftest import auth
from tests.workers.test_themes import add_items, blobs, centres, run

ISSUES = 70
PER_ISSUE = 18
GROWTH = 6  # 30 % more items per issue
UNTOUCHED = range(60, 70)


@pytest.fixture
def job_settings(migrated: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("DATABASE_URL", migrated.database_url)
    monkeypatch.setenv("REDIS_URL", migrated.redis_url)
    from schemas.settings import get_settings

    get_settings.cache_clear()
    yield migrated
    get_settings.cache_clear()


async def _leaf_of_issue(db: asyncpg.Connection, ids: list[int]) -> list[int]:
    """The leaf holding most of each issue's items."""
    rows = dict(await db.fetch("SELECT item_id, theme_id FROM item"))
    leaves = []
    for issue in range(ISSUES):
        got = [rows[i] for i in ids[issue * PER_ISSUE : (issue + 1) * PER_ISSUE] if rows[i] is not None]
        leaves.append(max(set(got), key=got.count))
    return leaves


async def _untouched_nmi(db: asyncpg.Connection, truth: dict[int, int]) -> float:
    rows = dict(await db.fetch("SELECT item_id, theme_id FROM item"))
    kept = [i for i, t in truth.items() if t in UNTOUCHED]
    return float(normalized_mutual_info_score([truth[i] for i in kept], [rows[i] or -1 for i in kept]))


@pytest.mark.slow
async def test_ten_decisions_of_every_kind_hold_through_two_runs_on_grown_data(
    job_settings: Settings, db: asyncpg.Connection, app_client: httpx.AsyncClient
) -> None:
    admin = auth()
    c = centres(ISSUES, seed=11)
    ids = await add_items(db, blobs(PER_ISSUE, c, seed=2), [f"issue{n}" for n in range(ISSUES)], start=0)
    truth = {item: n // PER_ISSUE for n, item in enumerate(ids)}
    await run(db)
    leaf = await _leaf_of_issue(db, ids)
    assert len(set(leaf)) == ISSUES, "one leaf per synthetic issue before any decision"
    before = await _untouched_nmi(db, truth)

    async def call(method: str, path: str, body: dict[str, object]) -> dict[str, object]:
        resp = await app_client.request(method, path, json=body, headers=admin)
        assert resp.status_code in (200, 201), (path, resp.text)
        result: dict[str, object] = resp.json()
        return result

    def members(issue: int) -> list[int]:
        return ids[issue * PER_ISSUE : (issue + 1) * PER_ISSUE]

    parents = [
        r["theme_id"] for r in await db.fetch("SELECT theme_id FROM theme WHERE is_current AND level = 'parent'")
    ]
    assert parents
    renamed, hidden, reparented, merged, split, moved, person, intents = {}, [], {}, {}, {}, {}, {}, {}
    for n in range(10):
        renamed[leaf[n]] = f"Renamed issue {n}"
        await call("PATCH", f"/v1/themes/{leaf[n]}", {"label": renamed[leaf[n]]})
        hidden.append(leaf[10 + n])
        await call("PATCH", f"/v1/themes/{leaf[10 + n]}", {"hidden": True})
        current = await db.fetchval("SELECT parent_id FROM theme WHERE theme_id = $1", leaf[20 + n])
        target = next(p for p in parents if p != current)
        reparented[leaf[20 + n]] = target
        await call("PATCH", f"/v1/themes/{leaf[20 + n]}", {"parent_id": target})
        gone, into = leaf[30 + 2 * n], leaf[31 + 2 * n]
        await call("POST", "/v1/themes/merge", {"theme_ids": [gone], "into": into})
        merged[gone] = (into, members(30 + 2 * n) + members(31 + 2 * n))
        half = members(50 + n)
        done = await call("POST", f"/v1/themes/{leaf[50 + n]}/split", {"groups": [half[:9], half[9:]]})
        parts = [p["theme_id"] for p in done["split_into"]]  # type: ignore[union-attr]
        split[leaf[50 + n]] = {parts[0]: half[:9], parts[1]: half[9:]}
        moving = members(20 + n)[:2]
        await call("POST", f"/v1/themes/{leaf[n]}/items", {"item_ids": moving})
        moved.update({item: leaf[n] for item in moving})
        picked = members(10 + n)[2:5]
        made = await call("POST", "/v1/themes", {"label": f"Person theme {n}", "item_ids": picked})
        person[int(made["theme_id"])] = picked  # type: ignore[call-overload]
        item = members(40 + n)[0]
        await call("PATCH", f"/v1/items/{item}", {"intent": "feature_request"})
        intents[item] = "feature_request"

    more = await add_items(db, blobs(GROWTH, c, seed=3), [f"issue{n}" for n in range(ISSUES)], start=len(ids))
    truth.update({item: n // GROWTH for n, item in enumerate(more)})
    for _ in range(2):
        result = await run(db)
        assert result["status"] == "done"

        themes = {r["theme_id"]: r for r in await db.fetch("SELECT * FROM theme")}
        assignment = dict(await db.fetch("SELECT item_id, theme_id FROM item"))
        for theme_id, label in renamed.items():
            assert themes[theme_id]["is_current"] and themes[theme_id]["label"] == label
        assert all(themes[t]["is_current"] and themes[t]["hidden"] for t in hidden)
        assert all(themes[t]["is_current"] and themes[t]["parent_id"] == p for t, p in reparented.items())
        for gone, (into, items) in merged.items():
            assert not themes[gone]["is_current"] and themes[gone]["merged_into"] == into
            assert all(assignment[i] == into for i in items)
        for old, parts in split.items():
            assert not themes[old]["is_current"]
            assert all(themes[p]["is_current"] and all(assignment[i] == p for i in items) for p, items in parts.items())
        assert all(assignment[i] == t for i, t in moved.items())
        assert all(themes[t]["is_current"] and all(assignment[i] == t for i in items) for t, items in person.items())
        rows = await db.fetch("SELECT item_id, intent, intent_source FROM item WHERE item_id = ANY($1)", list(intents))
        assert all(r["intent"] == intents[r["item_id"]] and r["intent_source"] == "person" for r in rows)

    after = await _untouched_nmi(db, truth)
    assert abs(after - before) <= 0.01, (before, after)
    assert np.isfinite(after)


def _merge_in_another_session(database_url: str, gone: int, into: int) -> object:
    """A person's merge committed on its own connection (in a thread: the run blocks this loop)."""
    import asyncio
    import threading

    from api import curation
    from api.auth import Principal
    from schemas.curation import ThemeMerge

    outcome: list[object] = []

    async def merge() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            outcome.append(
                await curation.merge_themes(
                    conn, Principal(None, frozenset({"admin"})), ThemeMerge(theme_ids=[gone], into=into)
                )
            )
        except Exception as exc:  # the Conflict of a change made while the run holds the lock
            outcome.append(exc)
        finally:
            await conn.close()

    thread = threading.Thread(target=lambda: asyncio.run(merge()))
    thread.start()
    thread.join()
    return outcome[0]


async def _four_issues(db: asyncpg.Connection) -> tuple[list[int], list[int]]:
    ids = await add_items(db, blobs(30, centres(6, seed=21), seed=4), [f"topic{n}" for n in range(6)], start=0)
    assert (await run(db))["status"] == "done"
    leaf = sorted({r["theme_id"] for r in await db.fetch("SELECT theme_id FROM item WHERE theme_id IS NOT NULL")})
    assert len(leaf) == 6
    return ids, leaf


@pytest.mark.slow
async def test_a_merge_committed_while_a_run_computes_holds(
    job_settings: Settings, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    import clustering.themes
    from schemas.curation import Merged

    ids, leaf = await _four_issues(db)
    await add_items(db, blobs(8, centres(6, seed=21), seed=5), [f"topic{n}" for n in range(6)], start=len(ids))
    real = clustering.themes.recluster
    made: list[object] = []

    def recluster_while_a_person_merges(*args: object, **kwargs: object) -> object:
        plan = real(*args, **kwargs)  # type: ignore[arg-type]
        if not made:  # after the run's read, before its write
            made.append(_merge_in_another_session(job_settings.database_url, leaf[0], leaf[1]))
        return plan

    monkeypatch.setattr(clustering.themes, "recluster", recluster_while_a_person_merges)
    result = await run(db)
    assert result["status"] == "done"
    assert isinstance(made[0], Merged)
    gone = await db.fetchrow("SELECT is_current, merged_into FROM theme WHERE theme_id = $1", leaf[0])
    assert gone is not None and not gone["is_current"] and gone["merged_into"] == leaf[1]
    pinned = [r["item_id"] for r in await db.fetch("SELECT item_id FROM theme_pin WHERE theme_id = $1", leaf[1])]
    assignment = dict(await db.fetch("SELECT item_id, theme_id FROM item WHERE item_id = ANY($1)", pinned))
    assert len(pinned) >= 60 and set(assignment.values()) == {leaf[1]}
    assert json.loads(str(result["timings"]))["replans"] == 1.0


@pytest.mark.slow
async def test_a_run_that_keeps_meeting_changes_plans_holding_the_lock_and_the_change_gets_409(
    job_settings: Settings, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    import clustering.themes
    from api.errors import Conflict
    from schemas.curation import Merged

    ids, leaf = await _four_issues(db)
    await add_items(db, blobs(8, centres(6, seed=21), seed=5), [f"topic{n}" for n in range(6)], start=len(ids))
    real = clustering.themes.recluster
    made: list[object] = []
    pairs = [(leaf[0], leaf[1]), (leaf[2], leaf[3]), (leaf[4], leaf[5])]

    def recluster_while_people_merge(*args: object, **kwargs: object) -> object:
        plan = real(*args, **kwargs)  # type: ignore[arg-type]
        gone, into = pairs[len(made)]
        made.append(_merge_in_another_session(job_settings.database_url, gone, into))
        return plan

    monkeypatch.setattr(clustering.themes, "recluster", recluster_while_people_merge)
    result = await run(db)
    assert result["status"] == "done" and json.loads(str(result["timings"]))["replans"] == 2.0
    assert isinstance(made[0], Merged) and isinstance(made[1], Merged) and isinstance(made[2], Conflict)
    themes = {r["theme_id"]: r for r in await db.fetch("SELECT * FROM theme")}
    for gone, into in pairs[:2]:
        assert not themes[gone]["is_current"] and themes[gone]["merged_into"] == into
    assert themes[leaf[4]]["is_current"]  # the refused merge changed nothing
