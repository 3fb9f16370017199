from __future__ import annotations

import asyncpg
import httpx

from tests.api.test_items import ticket


async def test_a_second_run_while_one_is_queued_is_409(app_client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    first = await app_client.post("/v1/clustering/runs", headers=admin)
    assert first.status_code == 202
    run_id = first.json()["run_id"]
    second = await app_client.post("/v1/clustering/runs", headers=admin)
    assert second.status_code == 409 and second.json()["error"] == "conflict"
    # another scope is independent
    feature = await app_client.post("/v1/clustering/runs", json={"scope": "feature"}, headers=admin)
    assert feature.status_code == 202
    run = (await app_client.get(f"/v1/clustering/runs/{run_id}", headers=admin)).json()
    assert run["status"] == "queued" and run["items"] is None
    listed = (await app_client.get("/v1/clustering/runs", headers=admin)).json()["data"]
    assert [r["run_id"] for r in listed] == [feature.json()["run_id"], run_id]
    assert (await app_client.get("/v1/clustering/runs/999", headers=admin)).status_code == 404


async def test_themes_list_detail_lineage_and_weekly_volume(
    app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection
) -> None:
    rows = [ticket(str(n), created_at=f"2026-11-0{2 + n % 2}T10:00:00Z") for n in range(3)]
    rows.append(ticket("3", created_at="2026-11-10T10:00:00Z"))
    await app_client.post("/v1/items/bulk", json=rows, headers=admin)
    old = await db.fetchval(
        "INSERT INTO theme (label, status, is_current) VALUES ('old', 'active', false) RETURNING theme_id"
    )
    new = await db.fetchval(
        "INSERT INTO theme (label, keywords, size) VALUES ('refunds', '{refund}', 4) RETURNING theme_id"
    )
    await db.execute("UPDATE theme SET status = 'merged_into', merged_into = $1 WHERE theme_id = $2", new, old)
    await db.execute("UPDATE item SET theme_id = $1", new)

    listed = (await app_client.get("/v1/themes", headers=admin)).json()["data"]
    assert [t["theme_id"] for t in listed] == [new]
    retired = (await app_client.get("/v1/themes", params={"status": "merged_into"}, headers=admin)).json()["data"]
    assert [t["theme_id"] for t in retired] == [old]
    assert (await app_client.get("/v1/themes", params={"kind": "post"}, headers=admin)).json()["data"] == []

    detail = (await app_client.get(f"/v1/themes/{new}", headers=admin)).json()
    assert detail["label"] == "refunds" and detail["merged_from"] == [old]
    assert detail["weekly_volume"] == [{"week": "2026-11-02", "volume": 3}, {"week": "2026-11-09", "volume": 1}]
    bad_tz = await app_client.get(f"/v1/themes/{new}", params={"tz": "Mars/Olympus"}, headers=admin)
    assert bad_tz.status_code == 422
    assert (await app_client.get("/v1/themes/424242", headers=admin)).status_code == 404


async def test_themes_show_the_tree_and_filter_by_level_parent_and_hidden(
    app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection
) -> None:
    await app_client.post("/v1/items/bulk", json=[ticket(str(n)) for n in range(3)], headers=admin)
    parent = await db.fetchval(
        "INSERT INTO theme (label, level, size) VALUES ('cards', 'parent', 3) RETURNING theme_id"
    )
    lost, arrived, spam = [
        await db.fetchval(
            "INSERT INTO theme (label, size, parent_id, hidden, label_pinned) VALUES ($1, $2, $3, $4, $5)"
            " RETURNING theme_id",
            label, size, parent, hidden, pinned,
        )  # fmt: skip
        for label, size, hidden, pinned in (("Lost card", 2, False, True), ("Card arrival", 1, False, False),
                                            ("Thanks", 5, True, False))
    ]  # fmt: skip
    item_ids = [r["item_id"] for r in await db.fetch("SELECT item_id FROM item ORDER BY item_id")]
    await db.execute("UPDATE item SET theme_id = $1 WHERE item_id = ANY($2::bigint[])", lost, item_ids[:2])
    await db.execute("UPDATE item SET theme_id = $1 WHERE item_id = $2", arrived, item_ids[2])

    def ids(response: httpx.Response) -> list[int]:
        assert response.status_code == 200, response.text
        return [t["theme_id"] for t in response.json()["data"]]

    listed = (await app_client.get("/v1/themes", headers=admin)).json()["data"]
    assert [t["theme_id"] for t in listed] == [parent, lost, arrived]  # hidden left out by default
    assert {k: listed[1][k] for k in ("parent_id", "level", "label_pinned", "hidden", "origin")} == {
        "parent_id": parent, "level": "leaf", "label_pinned": True, "hidden": False, "origin": "clustered",
    }  # fmt: skip
    assert listed[0]["parent_id"] is None and listed[0]["level"] == "parent"
    assert ids(await app_client.get("/v1/themes", params={"level": "parent"}, headers=admin)) == [parent]
    assert ids(await app_client.get("/v1/themes", params={"parent_id": parent}, headers=admin)) == [lost, arrived]
    assert ids(await app_client.get("/v1/themes", params={"hidden": "true"}, headers=admin)) == [spam]
    assert ids(await app_client.get("/v1/themes", params={"level": "parent", "kind": "ticket"}, headers=admin)) == [
        parent
    ]
    bad = await app_client.get("/v1/themes", params={"level": "root"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"] == "validation_error"

    detail = (await app_client.get(f"/v1/themes/{parent}", headers=admin)).json()
    assert detail["parent"] is None
    assert detail["children"] == [
        {"theme_id": spam, "label": "Thanks", "size": 5},
        {"theme_id": lost, "label": "Lost card", "size": 2},
        {"theme_id": arrived, "label": "Card arrival", "size": 1},
    ]
    assert sum(w["volume"] for w in detail["weekly_volume"]) == 3  # over its leaves' items
    leaf = (await app_client.get(f"/v1/themes/{lost}", headers=admin)).json()
    assert leaf["parent"] == {"theme_id": parent, "label": "cards", "size": 3} and leaf["children"] == []
