"""A person's intent (PATCH /v1/items/{id}) and intent retrains (/v1/intent/models), through the API
on real Postgres and Redis."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from redis import Redis
from rq import Queue

from db.queries.embeddings import ItemResult, update_items_processed
from outbox.queues import CLUSTERING_QUEUE
from schemas.settings import Settings
from tests.api.test_items import make_key, ticket
from tests.conftest import auth, running_app


async def new_item(client: httpx.AsyncClient, external_id: str = "1") -> int:
    resp = await client.post("/v1/items", json=ticket(external_id), headers=auth())
    assert resp.status_code == 202, resp.text
    item_id: int = resp.json()["item_id"]
    return item_id


async def as_model_labelled(db: asyncpg.Connection, item_id: int, intent: str, confidence: float) -> None:
    await db.execute(
        "UPDATE item SET intent = $2, intent_confidence = $3, intent_source = 'model', pending = false"
        " WHERE item_id = $1",
        item_id,
        intent,
        confidence,
    )


async def test_a_person_corrects_an_intent_and_the_change_is_audited_with_its_undo(
    app_client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    item_id = await new_item(app_client)
    await as_model_labelled(db, item_id, "bug", 0.62)
    curator = await make_key(app_client, "curate")

    resp = await app_client.patch(f"/v1/items/{item_id}", json={"intent": "feature_request"}, headers=auth(curator))

    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["intent"], body["intent_confidence"], body["intent_source"]) == ("feature_request", 1.0, "person")
    change = await db.fetchrow("SELECT * FROM curation_change WHERE action = 'intent'")
    assert change is not None and change["item_ids"] == [item_id] and change["api_key_id"] is not None
    undo = json.loads(change["undo"])
    assert undo["item_id"] == item_id and undo["intent"] == "bug" and undo["intent_source"] == "model"
    assert undo["intent_confidence"] == pytest.approx(0.62)


async def test_bad_corrections_are_refused_and_change_nothing(
    app_client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    item_id = await new_item(app_client)
    await as_model_labelled(db, item_id, "bug", 0.9)
    reader = await make_key(app_client, "read")

    unknown_value = await app_client.patch(f"/v1/items/{item_id}", json={"intent": "praise"}, headers=auth())
    extra_field = await app_client.patch(f"/v1/items/{item_id}", json={"intent": "bug", "theme_id": 3}, headers=auth())
    read_only = await app_client.patch(f"/v1/items/{item_id}", json={"intent": "question"}, headers=auth(reader))
    missing = await app_client.patch("/v1/items/999999", json={"intent": "question"}, headers=auth())

    assert unknown_value.status_code == 422 and unknown_value.json()["error"] == "validation_error"
    assert extra_field.status_code == 422
    assert read_only.status_code == 403 and read_only.json()["error"] == "forbidden"
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    row = await db.fetchrow("SELECT intent, intent_source FROM item WHERE item_id = $1", item_id)
    assert row is not None and (row["intent"], row["intent_source"]) == ("bug", "model")
    assert await db.fetchval("SELECT count(*) FROM curation_change") == 0


async def test_a_persons_intent_survives_the_item_being_processed_again(
    app_client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    item_id = await new_item(app_client)
    await app_client.patch(f"/v1/items/{item_id}", json={"intent": "question"}, headers=auth())
    changed_at = await db.fetchval("SELECT changed_at FROM item WHERE item_id = $1", item_id)

    done = await update_items_processed(
        db,
        results=[
            ItemResult(
                item_id=item_id,
                changed_at=changed_at,
                content_hash=b"h",
                clean_text="text",
                intent="bug",
                intent_confidence=0.97,
                intent_source="model",
                theme_id=None,
                feature_theme_id=None,
            )  # fmt: skip
        ],
    )

    assert done == 1
    row = await db.fetchrow("SELECT intent, intent_confidence, intent_source FROM item WHERE item_id = $1", item_id)
    assert row is not None and (row["intent"], row["intent_confidence"], row["intent_source"]) == (
        "question",
        1.0,
        "person",
    )


async def test_a_retrain_is_queued_once_and_listed(
    app_client: httpx.AsyncClient, db: asyncpg.Connection, migrated: Settings
) -> None:
    reader = await make_key(app_client, "read")
    curator = await make_key(app_client, "curate")

    first = await app_client.post("/v1/intent/models", headers=auth())
    second = await app_client.post("/v1/intent/models", headers=auth())
    not_admin = await app_client.post("/v1/intent/models", headers=auth(curator))
    listed = await app_client.get("/v1/intent/models", headers=auth(reader))

    assert first.status_code == 202, first.text
    model_id = first.json()["model_id"]
    assert second.status_code == 409 and second.json()["error"] == "conflict"
    assert not_admin.status_code == 403
    assert listed.status_code == 200
    page = listed.json()
    assert page["default_in_use"] is True and page["next_cursor"] is None
    [row] = page["data"]
    assert row["model_id"] == model_id and row["status"] == "queued" and row["current"] is False
    assert row["trigger"] == "manual" and row["macro_f1"] is None
    queue = Queue(CLUSTERING_QUEUE, connection=Redis.from_url(migrated.redis_url))
    job = queue.fetch_job(f"intent-{model_id}")
    assert job is not None and job.func_name == "workers.intent.retrain_intent" and job.args == (model_id,)
    one = await app_client.get(f"/v1/intent/models/{model_id}", headers=auth(reader))
    assert one.status_code == 200 and one.json() == row
    assert (await app_client.get("/v1/intent/models/424242", headers=auth(reader))).status_code == 404


async def test_a_finished_retrain_frees_the_slot_for_the_next(
    app_client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    first = (await app_client.post("/v1/intent/models", headers=auth())).json()["model_id"]
    await db.execute("UPDATE intent_model SET status = 'failed', error = 'boom' WHERE model_id = $1", first)

    again = await app_client.post("/v1/intent/models", headers=auth())
    await db.execute("UPDATE intent_model SET created_at = now() - interval '1 day' WHERE status = 'queued'")
    after_a_lost_worker = await app_client.post("/v1/intent/models", headers=auth())

    assert again.status_code == 202 and again.json()["model_id"] != first
    assert after_a_lost_worker.status_code == 202
    lost = await db.fetchrow("SELECT status, error FROM intent_model WHERE model_id = $1", again.json()["model_id"])
    assert lost is not None and lost["status"] == "failed" and "worker lost" in lost["error"]


@pytest.fixture
async def auto_client(migrated: Settings, db: asyncpg.Connection) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(migrated.model_copy(update={"intent_retrain_every_corrections": 3})) as (client, _):
        yield client


async def test_enough_new_corrections_start_a_retrain_on_their_own(
    auto_client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    ids = [await new_item(auto_client, str(n)) for n in range(4)]

    for item_id in ids[:2]:
        await auto_client.patch(f"/v1/items/{item_id}", json={"intent": "bug"}, headers=auth())
    assert await db.fetchval("SELECT count(*) FROM intent_model") == 0
    await auto_client.patch(f"/v1/items/{ids[2]}", json={"intent": "question"}, headers=auth())
    await auto_client.patch(f"/v1/items/{ids[3]}", json={"intent": "question"}, headers=auth())

    rows = await db.fetch("SELECT trigger, status FROM intent_model")
    assert [(r["trigger"], r["status"]) for r in rows] == [("auto", "queued")]


async def test_the_feature_request_report_counts_uncertain_model_labels_apart(
    app_client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    ids = [await new_item(app_client, str(n)) for n in range(4)]
    await as_model_labelled(db, ids[0], "feature_request", 0.35)  # uncertain (default threshold 0.5)
    await as_model_labelled(db, ids[1], "feature_request", 0.91)
    await as_model_labelled(db, ids[2], "feature_request", 0.42)
    await app_client.patch(f"/v1/items/{ids[2]}", json={"intent": "feature_request"}, headers=auth())  # a person's
    await as_model_labelled(db, ids[3], "bug", 0.2)

    resp = await app_client.get(
        "/v1/reports/feature-requests",
        params={"from": "2026-11-01T00:00:00Z", "to": "2026-11-09T00:00:00Z", "group_by": "week"},
        headers=auth(),
    )

    assert resp.status_code == 200, resp.text
    [row] = resp.json()["rows"]
    assert (row["count"], row["uncertain"]) == (3, 1)


async def test_the_dashboard_marks_a_models_uncertain_intent(
    app_client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    app_client.base_url = httpx.URL("http://127.0.0.1")
    unsure, sure = await new_item(app_client, "1"), await new_item(app_client, "2")
    await as_model_labelled(db, unsure, "feature_request", 0.31)
    await as_model_labelled(db, sure, "feature_request", 0.88)
    theme_id = await db.fetchval("INSERT INTO theme (scope, label) VALUES ('all', 'exports') RETURNING theme_id")
    await db.execute("UPDATE item SET theme_id = $1", theme_id)
    signed_in = await app_client.post("/login", data={"api_key": await make_key(app_client, "read"), "next": "/"})
    assert signed_in.status_code == 303

    html = (await app_client.get(f"/themes/{theme_id}")).text

    rows = dict(re.findall(r'<tr data-item-id="(\d+)">(.*?)</tr>', html, re.S))
    assert 'class="badge badge-uncertain" title="model confidence 0.31">uncertain<' in rows[str(unsure)]
    assert "uncertain" not in rows[str(sure)]
