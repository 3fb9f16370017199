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
