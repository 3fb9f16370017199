"""Intent models: retrain from the shipped data plus people's corrections, and list the retrains."""

from __future__ import annotations

import logging
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Query
from redis import Redis
from redis.exceptions import RedisError

from api.deps import AdminKey, AppSettings, DbConn, ReadKey, RedisClient, RowId
from api.errors import Conflict, NotFound, ServiceUnavailable
from db.queries.intent import (
    count_corrections_since_last_model,
    insert_intent_model,
    select_current_intent_model_id,
    select_intent_model,
    select_intent_models,
    update_intent_model_failed,
    update_item_intent_by_person,
)
from outbox.queues import CLUSTERING_QUEUE, enqueue
from schemas.intent import IntentModel, IntentModelCreated, IntentModelPage
from schemas.items import Intent
from schemas.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/intent", tags=["intent"])


def enqueue_retrain(redis: Redis, settings: Settings, model_id: int) -> None:
    """The same enqueue path as clustering runs; the job reads everything else from Postgres."""
    enqueue(
        redis, settings, CLUSTERING_QUEUE, "workers.intent.retrain_intent", model_id,
        job_id=f"intent-{model_id}", timeout=settings.intent_job_timeout_s,
    )  # fmt: skip


async def start_retrain(conn: asyncpg.Connection, redis: Redis, settings: Settings, *, trigger: str) -> int | None:
    """Queue a retrain and enqueue its job after the commit; None when one is already queued or
    running. A job Redis never took is marked failed so it cannot block the next retrain."""
    async with conn.transaction():
        model_id = await insert_intent_model(conn, trigger=trigger, stale_after_s=2 * settings.intent_job_timeout_s)
    if model_id is None:
        return None
    try:
        enqueue_retrain(redis, settings, model_id)
    except RedisError as exc:
        await update_intent_model_failed(conn, model_id=model_id, error=f"could not enqueue the job: {exc}")
        raise ServiceUnavailable("The job queue is unavailable; try again shortly.") from exc
    return model_id


async def retrain_if_due(conn: asyncpg.Connection, redis: Redis, settings: Settings) -> None:
    """After a correction: retrain on our own once enough new corrections have come in."""
    every = settings.intent_retrain_every_corrections
    if every <= 0 or await count_corrections_since_last_model(conn) < every:
        return
    try:
        model_id = await start_retrain(conn, redis, settings, trigger="auto")
    except ServiceUnavailable:
        log.warning("automatic intent retrain not started: the job queue is unavailable")
        return
    if model_id is not None:
        log.info("automatic intent retrain %s queued after %d corrections", model_id, every)


async def correct_item_intent(
    conn: asyncpg.Connection, redis: Redis, settings: Settings, *, item_id: int, intent: Intent, api_key_id: int | None
) -> None:
    """A person's intent for one item (the API's PATCH and the dashboard's one-click correction):
    audited as a curation change, then a retrain once enough corrections have come in."""
    async with conn.transaction():
        before = await update_item_intent_by_person(conn, item_id=item_id, intent=intent, api_key_id=api_key_id)
        if before is None:
            raise NotFound(f"Item {item_id} does not exist.")
    await retrain_if_due(conn, redis, settings)


@router.post("/models", status_code=202)
async def create_intent_model(
    conn: DbConn, redis: RedisClient, settings: AppSettings, _: AdminKey
) -> IntentModelCreated:
    """Train a new intent model from the shipped data plus every person's intent (a background
    job; progress and figures in `GET /v1/intent/models`). It becomes current only when it beats
    the current model on held-back corrections; 409 while a retrain is queued or running."""
    model_id = await start_retrain(conn, redis, settings, trigger="manual")
    if model_id is None:
        raise Conflict("An intent retrain is already queued or running.")
    return IntentModelCreated(model_id=model_id)


@router.get("/models")
async def list_intent_models(
    conn: DbConn,
    _: ReadKey,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="list models older than this id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> IntentModelPage:
    """Retrains, newest first. `default_in_use` is true while no trained model is current."""
    data = await select_intent_models(conn, before_id=cursor, limit=limit)
    return IntentModelPage(
        data=data,
        next_cursor=str(data[-1].model_id) if len(data) == limit else None,
        default_in_use=await select_current_intent_model_id(conn) is None,
    )


@router.get("/models/{model_id}")
async def get_intent_model(model_id: RowId, conn: DbConn, _: ReadKey) -> IntentModel:
    model = await select_intent_model(conn, model_id=model_id)
    if model is None:
        raise NotFound(f"Intent model {model_id} does not exist.")
    return model
