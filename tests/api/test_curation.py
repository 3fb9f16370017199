"""Curation through the public API: rename, hide, re-parent, merge, split (with its preview), move,
undo, history, the scope, bad input and races. Items and vectors are written with SQL (synthetic
blobs); every curation goes through the routes, and the tests read the rows they wrote."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest

from schemas.settings import Settings
from tests.api.test_items import make_key
from tests.conftest import auth, running_app

DIM = 16
MODEL = "test-model"


async def add_theme(db: asyncpg.Connection, label: str, *, level: str = "leaf", scope: str = "all") -> int:
    theme_id: int = await db.fetchval(
        "INSERT INTO theme (label, level, scope, status) VALUES ($1, $2, $3, 'active') RETURNING theme_id",
        label,
        level,
        scope,
    )
    return theme_id


async def add_items(
    db: asyncpg.Connection, theme_id: int | None, words: list[str], centre: np.ndarray, *, seed: int
) -> list[int]:
    """Items in a theme, each with a vector near `centre` and a text made of its words."""
    rng = np.random.default_rng(seed)
    ids = []
    for n, word in enumerate(words):
        vector = centre + 0.05 * rng.standard_normal(DIM)
        vector = (vector / np.linalg.norm(vector)).astype("<f4")
        item_id: int = await db.fetchval(
            "INSERT INTO item (source, external_id, kind, body, clean_text, created_at, payload_hash, theme_id,"
            " pending) VALUES ('api', $1, 'ticket', $2, $2, $3, 'h', $4, false) RETURNING item_id",
            f"{seed}-{n}", f"{word} problem with {word}", datetime.now(UTC) - timedelta(days=n % 9), theme_id,
        )  # fmt: skip
        await db.execute(
            "INSERT INTO embedding (item_id, model_version, content_hash, vector) VALUES ($1, $2, 'h', $3)",
            item_id, MODEL, vector.tobytes(),
        )  # fmt: skip
        ids.append(item_id)
    if theme_id is not None:
        await db.execute(
            "UPDATE theme SET size = (SELECT count(*) FROM item WHERE theme_id = $1) WHERE theme_id = $1", theme_id
        )
    return ids


def direction(n: int) -> np.ndarray:
    v = np.zeros(DIM)
    v[n] = 1.0
    return v


async def snapshot(db: asyncpg.Connection) -> dict[str, Any]:
    """Everything curation may write, to compare before and after."""
    return {
        "themes": [
            dict(r)
            for r in await db.fetch(
                "SELECT theme_id, label, label_pinned, hidden, parent_id, parent_pinned, status, is_current,"
                " merged_into, split_into, size FROM theme ORDER BY theme_id"
            )
        ],
        "items": [tuple(r) for r in await db.fetch("SELECT item_id, theme_id FROM item ORDER BY item_id")],
        "pins": [tuple(r) for r in await db.fetch("SELECT item_id, theme_id FROM theme_pin ORDER BY item_id")],
    }


@pytest.fixture
async def curator(app_client: httpx.AsyncClient) -> dict[str, str]:
    return auth(await make_key(app_client, "curate"))


async def test_rename_pins_the_label_history_names_the_key_and_undo_restores(
    app_client: httpx.AsyncClient, db: asyncpg.Connection, curator: dict[str, str]
) -> None:
    theme = await add_theme(db, "refund, money")
    key_id = await db.fetchval("SELECT max(api_key_id) FROM api_key")
    resp = await app_client.patch(f"/v1/themes/{theme}", json={"label": "Refund not received"}, headers=curator)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["theme"]["label"] == "Refund not received" and body["theme"]["label_pinned"] is True
    assert body["theme"]["version"] == 1 and len(body["change_ids"]) == 1

    history = (await app_client.get(f"/v1/themes/{theme}/history", headers=curator)).json()["data"]
    assert [(h["action"], h["key_id"], h["detail"]) for h in history] == [
        ("rename", key_id, {"from": "refund, money", "to": "Refund not received"})
    ]
    assert history[0]["change_id"] == body["change_ids"][0] and history[0]["at"]

    undone = await app_client.post(f"/v1/curation/{body['change_ids'][0]}/undo", headers=curator)
    assert undone.status_code == 200, undone.text
    row = await db.fetchrow("SELECT label, label_pinned, version FROM theme WHERE theme_id = $1", theme)
    assert dict(row) == {"label": "refund, money", "label_pinned": False, "version": 2}
    again = await app_client.post(f"/v1/curation/{body['change_ids'][0]}/undo", headers=curator)
    assert again.status_code == 409 and "already undone" in again.json()["detail"]
    history = (await app_client.get(f"/v1/themes/{theme}/history", headers=curator)).json()["data"]
    assert [h["action"] for h in history] == ["undo", "rename"] and history[1]["undone_at"] is not None


async def test_hide_and_reparent_pin_the_parent_and_check_it(
    app_client: httpx.AsyncClient, db: asyncpg.Connection, curator: dict[str, str]
) -> None:
    leaf = await add_theme(db, "thanks")
    other_leaf = await add_theme(db, "login")
    parent = await add_theme(db, "account", level="parent")
    feature_parent = await add_theme(db, "ideas", level="parent", scope="feature")

    resp = await app_client.patch(f"/v1/themes/{leaf}", json={"hidden": True, "parent_id": parent}, headers=curator)
    assert resp.status_code == 200, resp.text
    theme = resp.json()["theme"]
    assert theme["hidden"] is True and theme["parent_id"] == parent and theme["parent_pinned"] is True
    actions = [
        h["action"] for h in (await app_client.get(f"/v1/themes/{leaf}/history", headers=curator)).json()["data"]
    ]
    assert actions == ["reparent", "hide"]

    for bad_parent in (other_leaf, feature_parent):  # not a parent; another scope
        resp = await app_client.patch(f"/v1/themes/{leaf}", json={"parent_id": bad_parent}, headers=curator)
        assert resp.status_code == 422, resp.text
    assert (await app_client.patch(f"/v1/themes/{leaf}", json={"parent_id": 99999}, headers=curator)).status_code == 404
    assert (await app_client.patch(f"/v1/themes/{leaf}", json={}, headers=curator)).status_code == 422
    assert (await app_client.patch(f"/v1/themes/{leaf}", json={"label": "  "}, headers=curator)).status_code == 422

    top = await app_client.patch(f"/v1/themes/{leaf}", json={"parent_id": None, "hidden": False}, headers=curator)
    assert top.json()["theme"]["parent_id"] is None and top.json()["theme"]["hidden"] is False


async def test_merge_pins_every_member_retires_the_others_and_undo_puts_all_back(
    app_client: httpx.AsyncClient, db: asyncpg.Connection, curator: dict[str, str]
) -> None:
    a, b, c = [await add_theme(db, name) for name in ("refund late", "refund missing", "login")]
    items_a = await add_items(db, a, ["refund"] * 4, direction(0), seed=1)
    items_b = await add_items(db, b, ["money"] * 3, direction(1), seed=2)
    await add_items(db, c, ["login"] * 3, direction(2), seed=3)
    for theme, axis in ((a, 0), (b, 1)):
        await db.execute(
            "UPDATE theme SET centroid = $2 WHERE theme_id = $1", theme, direction(axis).astype("<f4").tobytes()
        )
    centroids = dict(await db.fetch("SELECT theme_id, centroid FROM theme ORDER BY theme_id"))
    before = await snapshot(db)

    resp = await app_client.post("/v1/themes/merge", json={"theme_ids": [b], "into": a}, headers=curator)
    assert resp.status_code == 200, resp.text
    assert resp.json()["into"]["size"] == 7 and resp.json()["merged"] == [b]
    retired = await db.fetchrow("SELECT status, merged_into, is_current, size FROM theme WHERE theme_id = $1", b)
    assert dict(retired) == {"status": "merged_into", "merged_into": a, "is_current": False, "size": 0}
    assert await db.fetchval("SELECT array_agg(item_id ORDER BY item_id) FROM item WHERE theme_id = $1", a) == sorted(
        items_a + items_b
    )
    pins = await db.fetch("SELECT item_id, theme_id, change_id FROM theme_pin ORDER BY item_id")
    assert [p["item_id"] for p in pins] == sorted(items_a + items_b) and {p["theme_id"] for p in pins} == {a}
    assert {p["change_id"] for p in pins} == {resp.json()["change_id"]}
    listed = (await app_client.get("/v1/themes", headers=curator)).json()["data"]
    assert sorted(t["theme_id"] for t in listed) == [a, c]
    for theme in (a, b):  # the history of both themes shows the merge
        history = (await app_client.get(f"/v1/themes/{theme}/history", headers=curator)).json()["data"]
        assert history[0]["action"] == "merge" and history[0]["detail"]["into"] == a

    merged = np.frombuffer(await db.fetchval("SELECT centroid FROM theme WHERE theme_id = $1", a), "<f4")
    assert merged[0] > 0 and merged[1] > 0 and merged[0] > merged[1]  # weighted by size: 4 items to 3

    undone = await app_client.post(f"/v1/curation/{resp.json()['change_id']}/undo", headers=curator)
    assert undone.status_code == 200, undone.text
    assert await snapshot(db) == before
    assert dict(await db.fetch("SELECT theme_id, centroid FROM theme ORDER BY theme_id")) == centroids


async def test_bad_merges_are_refused_and_change_nothing(
    app_client: httpx.AsyncClient, db: asyncpg.Connection, curator: dict[str, str]
) -> None:
    a, b = await add_theme(db, "a"), await add_theme(db, "b")
    feature = await add_theme(db, "dark mode", scope="feature")
    parent = await add_theme(db, "parent", level="parent")
    await add_items(db, a, ["refund"] * 3, direction(0), seed=1)
    await add_items(db, b, ["money"] * 3, direction(1), seed=2)
    before = await snapshot(db)
    cases = [
        ({"theme_ids": [a], "into": a}, 422),  # into itself
        ({"theme_ids": [a, b], "into": b}, 422),
        ({"theme_ids": [a, 99999], "into": b}, 404),  # one unknown theme: nothing of the rest is applied
        ({"theme_ids": [a], "into": 99999}, 404),
        ({"theme_ids": [a], "into": feature}, 422),  # another scope
        ({"theme_ids": [a], "into": parent}, 422),  # parents are not merged
        ({"theme_ids": [], "into": b}, 422),
        ({"theme_ids": [a], "into": 0}, 422),
    ]
    for body, status in cases:
        resp = await app_client.post("/v1/themes/merge", json=body, headers=curator)
        assert resp.status_code == status, (body, resp.text)
        assert resp.json()["error"] in ("validation_error", "not_found")
    assert await snapshot(db) == before
    assert await db.fetchval("SELECT count(*) FROM curation_change") == 0


async def test_split_preview_is_stored_changes_nothing_and_any_process_applies_it(
    app_client: httpx.AsyncClient, db: asyncpg.Connection, curator: dict[str, str], migrated: Settings
) -> None:
    theme = await add_theme(db, "cards")
    lost = await add_items(db, theme, ["lost"] * 8, direction(0), seed=1)
    arrived = await add_items(db, theme, ["arrival"] * 6, direction(1), seed=2)
    small = await add_theme(db, "small")
    await add_items(db, small, ["tiny"] * 5, direction(3), seed=3)
    before = await snapshot(db)

    resp = await app_client.post(f"/v1/themes/{theme}/split-preview", json={}, headers=curator)
    assert resp.status_code == 200, resp.text
    preview = resp.json()
    assert preview["k"] == 2 and [g["size"] for g in preview["groups"]] == [8, 6]
    assert "lost" in preview["groups"][0]["label"].lower() and "arrival" in preview["groups"][1]["label"].lower()
    assert all(len(g["examples"]) == 5 for g in preview["groups"])
    assert {e["item_id"] for e in preview["groups"][0]["examples"]} <= set(lost)
    assert await snapshot(db) == before  # a preview changes nothing
    assert await db.fetchval("SELECT count(*) FROM curation_change") == 0

    too_small = await app_client.post(f"/v1/themes/{small}/split-preview", json={}, headers=curator)
    assert too_small.status_code == 422 and "at least 6" in too_small.json()["detail"]
    assert (
        await app_client.post(f"/v1/themes/{small}/split", json={"groups": [[1], [2]]}, headers=curator)
    ).status_code == 422
    assert (await app_client.post("/v1/themes/99999/split-preview", json={}, headers=curator)).status_code == 404
    assert (
        await app_client.post(f"/v1/themes/{theme}/split-preview", json={"k": 1}, headers=curator)
    ).status_code == 422

    # Another API process (a new app, its own pool) applies the preview: it lives in Postgres.
    async with running_app(migrated) as (other, _):
        resp = await other.post(
            f"/v1/themes/{theme}/split", json={"preview_id": preview["preview_id"]}, headers=curator
        )
    assert resp.status_code == 200, resp.text
    parts = resp.json()["split_into"]
    assert [p["size"] for p in parts] == [8, 6]
    old = await db.fetchrow("SELECT status, split_into, is_current FROM theme WHERE theme_id = $1", theme)
    assert dict(old) == {"status": "split_into", "split_into": [p["theme_id"] for p in parts], "is_current": False}
    for part, members in zip(parts, (lost, arrived), strict=True):
        assert (
            await db.fetchval(
                "SELECT array_agg(item_id ORDER BY item_id) FROM item WHERE theme_id = $1", part["theme_id"]
            )
            == members
        )
        pinned = await db.fetchval(
            "SELECT array_agg(item_id ORDER BY item_id) FROM theme_pin WHERE theme_id = $1", part["theme_id"]
        )
        assert pinned == members
    again = await app_client.post(
        f"/v1/themes/{theme}/split", json={"preview_id": preview["preview_id"]}, headers=curator
    )
    assert again.status_code == 409  # the theme is split already

    undone = await app_client.post(f"/v1/curation/{resp.json()['change_id']}/undo", headers=curator)
    assert undone.status_code == 200, undone.text
    after = await snapshot(db)
    assert after["items"] == before["items"] and after["pins"] == []
    assert [t for t in after["themes"] if t["theme_id"] in (theme, small)] == before["themes"]
    assert all(not t["is_current"] for t in after["themes"] if t["theme_id"] not in (theme, small))


async def test_split_by_explicit_groups_places_the_items_left_out_and_a_stale_preview_is_409(
    app_client: httpx.AsyncClient, db: asyncpg.Connection, curator: dict[str, str]
) -> None:
    theme = await add_theme(db, "cards")
    lost = await add_items(db, theme, ["lost"] * 5, direction(0), seed=1)
    arrived = await add_items(db, theme, ["arrival"] * 4, direction(1), seed=2)
    preview = (await app_client.post(f"/v1/themes/{theme}/split-preview", json={"k": 2}, headers=curator)).json()
    renamed = await app_client.patch(f"/v1/themes/{theme}", json={"label": "Card trouble"}, headers=curator)
    assert renamed.status_code == 200
    stale = await app_client.post(
        f"/v1/themes/{theme}/split", json={"preview_id": preview["preview_id"]}, headers=curator
    )
    assert stale.status_code == 409 and "changed since preview" in stale.json()["detail"]

    stray = await app_client.post(f"/v1/themes/{theme}/split", json={"groups": [lost[:2], [999]]}, headers=curator)
    assert stray.status_code == 422
    both = await app_client.post(
        f"/v1/themes/{theme}/split", json={"groups": [lost[:2], lost[1:3]]}, headers=curator
    )  # one item in two groups
    assert both.status_code == 422
    resp = await app_client.post(f"/v1/themes/{theme}/split", json={"groups": [lost[:2], arrived[:1]]}, headers=curator)
    assert resp.status_code == 200, resp.text
    parts = resp.json()["split_into"]
    members = [
        await db.fetchval("SELECT array_agg(item_id ORDER BY item_id) FROM item WHERE theme_id = $1", p["theme_id"])
        for p in parts
    ]
    assert members == [lost, arrived]  # the items not listed went to the group they are closest to
    assert "lost" in parts[0]["label"].lower()


async def test_move_items_pins_them_replaces_an_earlier_pin_and_undo_is_409_while_a_later_change_depends(
    app_client: httpx.AsyncClient, db: asyncpg.Connection, curator: dict[str, str]
) -> None:
    a, b, c = [await add_theme(db, name) for name in ("refund", "login", "billing")]
    items_a = await add_items(db, a, ["refund"] * 3, direction(0), seed=1)
    items_b = await add_items(db, b, ["login"] * 3, direction(1), seed=2)
    loose = await add_items(db, None, ["misc"], direction(2), seed=3)
    before = await snapshot(db)

    first = await app_client.post(f"/v1/themes/{c}/items", json={"item_ids": [items_a[0], *loose]}, headers=curator)
    assert first.status_code == 200, first.text
    assert first.json()["moved"] == 2 and first.json()["theme"]["size"] == 2
    second = await app_client.post(f"/v1/themes/{b}/items", json={"item_ids": [items_a[0]]}, headers=curator)
    assert second.status_code == 200
    pin = await db.fetchrow("SELECT theme_id, change_id FROM theme_pin WHERE item_id = $1", items_a[0])
    assert dict(pin) == {"theme_id": b, "change_id": second.json()["change_id"]}
    sizes = dict(await db.fetch("SELECT theme_id, size FROM theme ORDER BY theme_id"))
    assert sizes == {a: 2, b: 4, c: 1}

    blocked = await app_client.post(f"/v1/curation/{first.json()['change_id']}/undo", headers=curator)
    assert blocked.status_code == 409 and str(second.json()["change_id"]) in blocked.json()["detail"]
    for change in (second.json()["change_id"], first.json()["change_id"]):  # newest first: both go through
        resp = await app_client.post(f"/v1/curation/{change}/undo", headers=curator)
        assert resp.status_code == 200, resp.text
    assert await snapshot(db) == before

    assert (
        await app_client.post(f"/v1/themes/{c}/items", json={"item_ids": [99999]}, headers=curator)
    ).status_code == 404
    assert (
        await app_client.post("/v1/themes/99999/items", json={"item_ids": items_b}, headers=curator)
    ).status_code == 404
    assert (await app_client.post(f"/v1/themes/{c}/items", json={"item_ids": []}, headers=curator)).status_code == 422
    feature = await add_theme(db, "dark mode", scope="feature")
    not_requests = await app_client.post(f"/v1/themes/{feature}/items", json={"item_ids": items_b}, headers=curator)
    assert not_requests.status_code == 422
    assert (await app_client.post("/v1/curation/99999/undo", headers=curator)).status_code == 404
    assert await snapshot(db) == {**before, "themes": (await snapshot(db))["themes"]}


async def test_two_concurrent_edits_of_one_theme_one_wins_the_other_is_409(
    app_client: httpx.AsyncClient, db: asyncpg.Connection, curator: dict[str, str]
) -> None:
    theme = await add_theme(db, "refund")
    bodies = [{"label": f"Refunds {n}", "version": 0} for n in range(2)]
    answers = await asyncio.gather(*(app_client.patch(f"/v1/themes/{theme}", json=b, headers=curator) for b in bodies))
    assert sorted(a.status_code for a in answers) == [200, 409]
    winner = next(a for a in answers if a.status_code == 200).json()["theme"]["label"]
    assert await db.fetchval("SELECT label FROM theme WHERE theme_id = $1", theme) == winner
    assert await db.fetchval("SELECT count(*) FROM curation_change") == 1

    # A change in flight holds the row: the next one is refused at once, not queued behind it.
    async with db.transaction():
        await db.execute("SELECT 1 FROM theme WHERE theme_id = $1 FOR UPDATE", theme)
        held = await app_client.patch(f"/v1/themes/{theme}", json={"hidden": True}, headers=curator)
        assert held.status_code == 409 and held.json()["error"] == "conflict"
    assert await db.fetchval("SELECT hidden FROM theme WHERE theme_id = $1", theme) is False
    assert await db.fetchval("SELECT count(*) FROM curation_change") == 1


async def test_a_read_key_gets_403_on_every_curation_route(
    app_client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    theme = await add_theme(db, "refund")
    reader = auth(await make_key(app_client, "read"))
    calls = [
        ("PATCH", f"/v1/themes/{theme}", {"label": "x"}),
        ("POST", "/v1/themes/merge", {"theme_ids": [theme], "into": theme}),
        ("POST", f"/v1/themes/{theme}/split-preview", {}),
        ("POST", f"/v1/themes/{theme}/split", {"groups": [[1], [2]]}),
        ("POST", f"/v1/themes/{theme}/items", {"item_ids": [1]}),
        ("POST", "/v1/themes", {"label": "x"}),
        ("POST", "/v1/curation/1/undo", None),
    ]
    for method, url, body in calls:
        resp = await app_client.request(method, url, json=body, headers=reader)
        assert resp.status_code == 403 and resp.json()["error"] == "forbidden", (url, resp.text)
    assert (await app_client.get(f"/v1/themes/{theme}/history", headers=reader)).status_code == 200
    assert (await app_client.get("/v1/themes/99999/history", headers=reader)).status_code == 404
    assert await db.fetchval("SELECT label FROM theme WHERE theme_id = $1", theme) == "refund"


async def test_an_intent_correction_is_undone_through_the_same_route(
    app_client: httpx.AsyncClient, db: asyncpg.Connection, curator: dict[str, str]
) -> None:
    (item,) = await add_items(db, None, ["refund"], direction(0), seed=1)
    await db.execute(
        "UPDATE item SET intent = 'feature_request', intent_confidence = 1, intent_source = 'person'"
        " WHERE item_id = $1",
        item,
    )
    # The row PATCH /v1/items/{id} writes (the intent branch owns that route; the format is the contract).
    change = await db.fetchval(
        "INSERT INTO curation_change (action, item_ids, detail, undo) VALUES ('intent', $1, $2::jsonb, $3::jsonb)"
        " RETURNING change_id",
        [item],
        '{"intent": "feature_request"}',
        f'{{"item_id": {item}, "intent": "bug", "intent_confidence": 0.75, "intent_source": "model"}}',
    )
    resp = await app_client.post(f"/v1/curation/{change}/undo", headers=curator)
    assert resp.status_code == 200, resp.text
    assert resp.json()["action"] == "intent"
    row = await db.fetchrow("SELECT intent, intent_confidence, intent_source FROM item WHERE item_id = $1", item)
    assert dict(row) == {"intent": "bug", "intent_confidence": 0.75, "intent_source": "model"}
    assert (await app_client.post(f"/v1/curation/{change}/undo", headers=curator)).status_code == 409
    undo_row = await db.fetchval("SELECT change_id FROM curation_change WHERE action = 'undo'")
    assert (await app_client.post(f"/v1/curation/{undo_row}/undo", headers=curator)).status_code == 422


async def test_every_curation_route_answers_404_for_an_unknown_theme_and_403_for_a_read_key(
    app_client: httpx.AsyncClient, db: asyncpg.Connection, curator: dict[str, str]
) -> None:
    theme = await add_theme(db, "refund")
    items = await add_items(db, theme, ["refund"] * 6, direction(0), seed=3)
    before = await snapshot(db)
    unknown = [
        ("PATCH", "/v1/themes/99999", {"label": "x"}),
        ("POST", "/v1/themes/99999/split", {"groups": [items[:3], items[3:]]}),
        ("POST", "/v1/themes/99999/split-preview", {}),
        ("POST", "/v1/themes/99999/items", {"item_ids": items[:1]}),
        ("GET", "/v1/themes/99999/backfill", None),
        ("POST", "/v1/themes/99999/backfill", None),
        ("GET", "/v1/themes/99999/history", None),
        ("POST", "/v1/curation/99999/undo", None),
        ("PATCH", "/v1/items/99999", {"intent": "feature_request"}),
    ]
    for method, url, body in unknown:
        resp = await app_client.request(method, url, json=body, headers=curator)
        assert resp.status_code == 404 and resp.json()["error"] == "not_found", (url, resp.text)
    reader = auth(await make_key(app_client, "read"))
    for method, url, body in [
        ("POST", f"/v1/themes/{theme}/backfill", None),
        ("PATCH", f"/v1/items/{items[0]}", {"intent": "feature_request"}),
    ]:
        resp = await app_client.request(method, url, json=body, headers=reader)
        assert resp.status_code == 403 and resp.json()["error"] == "forbidden", (url, resp.text)
    assert await snapshot(db) == before
    assert await db.fetchval("SELECT count(*) FROM curation_change") == 0


async def test_a_change_while_a_clustering_run_writes_waits_then_gets_409_and_changes_nothing(
    app_client: httpx.AsyncClient, db: asyncpg.Connection, curator: dict[str, str]
) -> None:
    from db.queries.curation import lock_curation_session, unlock_curation_session

    theme = await add_theme(db, "refund")
    await lock_curation_session(db)  # what a run's write (or its last attempt) holds
    try:
        held = await app_client.patch(f"/v1/themes/{theme}", json={"label": "Refunds"}, headers=curator)
    finally:
        await unlock_curation_session(db)
    assert held.status_code == 409 and "clustering run" in held.json()["detail"]
    assert await db.fetchval("SELECT label FROM theme WHERE theme_id = $1", theme) == "refund"
    assert await db.fetchval("SELECT count(*) FROM curation_change") == 0
    # once the run has written, the same change goes through
    resp = await app_client.patch(f"/v1/themes/{theme}", json={"label": "Refunds"}, headers=curator)
    assert resp.status_code == 200
