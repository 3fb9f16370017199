"""What the relay loop starts on a schedule: clustering runs (every CLUSTER_EVERY_NEW_ITEMS newly
embedded items, or when the last run is older than CLUSTER_EVERY_S; queued runs whose job Redis
lost are enqueued again), alert detection and due alert deliveries, and the reconciler of imports.

Called from the relay loop. Safe with many relays: the run row is inserted under the partial unique
index (one queued or running run per scope), so only one of them creates it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import asyncpg
from redis import Redis
from redis.exceptions import RedisError

from db.queries.imports import claim_due_reconciles
from db.queries.incidents import claim_due_deliveries, insert_detection, select_detection_due
from db.queries.runs import insert_run, select_clustering_due, select_stale_queued_runs
from outbox.queues import CLUSTERING_QUEUE, DELIVERIES_QUEUE, ITEMS_QUEUE, enqueue
from schemas.settings import Settings

log = logging.getLogger(__name__)

SCOPES = ("all", "feature")
STALE_QUEUED_S = 300
# Longer than every retry interval together: an alert delivery still pending after this was lost.
LOST_AFTER_S = 600


def _enqueue_run(redis: Redis, settings: Settings, run_id: int) -> None:
    enqueue(
        redis, settings, CLUSTERING_QUEUE, "workers.themes.cluster_items", run_id,
        job_id=f"cluster-{run_id}", timeout=settings.cluster_job_timeout_s,
    )  # fmt: skip


async def schedule_clustering(conn: asyncpg.Connection, redis: Redis, settings: Settings) -> list[int]:
    """Start the runs that are due; returns their ids."""
    started = []
    for scope in SCOPES:
        if not await select_clustering_due(
            conn, scope=scope, every_new_items=settings.cluster_every_new_items, every_s=settings.cluster_every_s
        ):
            continue
        run_id = await insert_run(conn, scope=scope, trigger="auto")
        if run_id is None:
            continue
        try:
            _enqueue_run(redis, settings, run_id)
        except RedisError:
            log.warning("run %s queued in Postgres; Redis unavailable, it will be enqueued again", run_id)
        started.append(run_id)
    for run in await select_stale_queued_runs(conn, older_than_s=STALE_QUEUED_S):
        try:  # the same job id: RQ replaces nothing that still exists, and the job skips a finished run
            _enqueue_run(redis, settings, run.run_id)
        except RedisError:
            pass
    return started


async def schedule_reconciles(conn: asyncpg.Connection, redis: Redis, settings: Settings) -> list[int]:
    """Enqueue the reconciler for accounts that are due (RECONCILE_EVERY_S; 0 turns it off)."""
    if settings.reconcile_every_s <= 0:
        return []
    due = await claim_due_reconciles(conn, every_s=settings.reconcile_every_s)
    if due:
        try:
            enqueue(
                redis, settings, ITEMS_QUEUE, "workers.reconcile.reconcile_imports", due,
                job_id=f"reconcile-{'-'.join(map(str, due))}-{int(time.time())}", timeout=settings.job_timeout_s * 10,
            )  # fmt: skip
        except RedisError:
            log.warning("reconcile of %s not enqueued: Redis unavailable; it comes round again", due)
    return due


def enqueue_deliveries(redis: Redis, settings: Settings, pairs: Sequence[tuple[int, int]]) -> None:
    for incident_id, destination_id in pairs:
        enqueue(
            redis, settings, DELIVERIES_QUEUE, "workers.alerts.deliver_incident", incident_id, destination_id,
            job_id=f"alert-{incident_id}-{destination_id}",
        )  # fmt: skip


async def enqueue_due_deliveries(conn: asyncpg.Connection, redis: Redis, settings: Settings) -> int:
    """Enqueue the deliveries whose time has come (after quiet hours, or whose job was lost)."""
    async with conn.transaction():
        pairs = await claim_due_deliveries(conn, lost_after_s=LOST_AFTER_S)
        try:
            enqueue_deliveries(redis, settings, pairs)
        except RedisError:
            log.warning("alerts: Redis unavailable; %d deliveries stay pending", len(pairs))
            raise
    return len(pairs)


async def schedule_alerts(conn: asyncpg.Connection, redis: Redis, settings: Settings) -> int | None:
    """Called from the relay loop: start a detection run when one is due (after a clustering run,
    or every ALERTS_DETECT_EVERY_S), and enqueue due deliveries. Returns the run id, if any."""
    detection_id = None
    trigger = await select_detection_due(conn, every_s=settings.alerts_detect_every_s)
    if trigger is not None:
        detection_id = await insert_detection(conn, trigger=trigger)
        try:
            enqueue(
                redis, settings, DELIVERIES_QUEUE, "workers.alerts.detect_incidents", detection_id,
                job_id=f"alerts-detect-{detection_id}",
            )  # fmt: skip
        except RedisError:
            log.warning("alerts: Redis unavailable; detection run %s will be started again", detection_id)
    try:
        await enqueue_due_deliveries(conn, redis, settings)
    except RedisError:
        pass
    return detection_id
