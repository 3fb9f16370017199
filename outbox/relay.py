"""The relay: turns committed pending rows into RQ jobs (Postgres is the record, Redis the doorbell).

Woken by LISTEN work_ready (NOTIFY is delivered only after the writer commits) with a polling
fallback. Claims use FOR UPDATE SKIP LOCKED, so any number of relays on any number of hosts can
run side by side. Rows enqueued long ago and still pending are claimed again (the sweeper), which
recovers jobs lost with a Redis restart or a killed worker.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable

import asyncpg
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from db.pool import connect
from db.queries.work import (
    claim_pending_deliveries,
    claim_pending_items,
    release_deliveries,
    release_items,
    upsert_worker_heartbeat,
)
from outbox.queues import DELIVERIES_QUEUE, ITEMS_QUEUE, enqueue
from outbox.schedule import schedule_alerts, schedule_clustering, schedule_reconciles
from schemas.settings import Settings

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 10.0
# Deliveries are small to parse; a few dozen per job keeps one poison body from delaying many.
DELIVERY_BATCH = 50


async def _relay(
    conn: asyncpg.Connection,
    redis: Redis,
    settings: Settings,
    *,
    queue: str,
    func: str,
    claim: Callable[..., Awaitable[list[int]]],
    release: Callable[[list[int]], Awaitable[None]],
    batch: int,
) -> int:
    """Claim pending rows and enqueue them in batches; returns how many rows were enqueued.

    Backpressure: while enough jobs already wait in the queue, rows stay pending in Postgres and
    are claimed later as fuller batches; enqueueing a job per notification would make thousands of
    one-item jobs under load.
    """
    total = 0
    waiting = Queue(queue, connection=redis)
    while True:
        try:
            if waiting.count >= settings.relay_max_waiting_jobs:
                return total
        except RedisError:
            return total
        async with conn.transaction():
            ids = await claim(conn, stale_after_s=settings.sweep_after_s, limit=batch)
        if not ids:
            return total
        try:
            enqueue(redis, settings, queue, func, ids, job_id=f"{queue}-{ids[0]}-{len(ids)}-{time.time_ns()}")
        except RedisError as exc:
            log.warning("enqueue on %s failed (%s); %d rows stay pending", queue, type(exc).__name__, len(ids))
            await release(ids)
            return total
        total += len(ids)


async def relay_once(conn: asyncpg.Connection, redis: Redis, settings: Settings) -> int:
    """Pending items to the items queue; returns how many were enqueued."""
    return await _relay(
        conn, redis, settings, queue=ITEMS_QUEUE, func="workers.jobs.process_items", claim=claim_pending_items,
        release=lambda ids: release_items(conn, item_ids=ids), batch=settings.embed_batch_size,
    )  # fmt: skip


async def relay_deliveries_once(conn: asyncpg.Connection, redis: Redis, settings: Settings) -> int:
    """Pending webhook deliveries to the deliveries queue; returns how many were enqueued."""
    return await _relay(
        conn, redis, settings, queue=DELIVERIES_QUEUE, func="workers.deliveries.process_deliveries",
        claim=claim_pending_deliveries, release=lambda ids: release_deliveries(conn, delivery_ids=ids),
        batch=DELIVERY_BATCH,
    )  # fmt: skip


async def run_relay(settings: Settings, stop: threading.Event, worker_name: str) -> None:
    redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    woken = asyncio.Event()
    last_beat = 0.0
    conn: asyncpg.Connection | None = None
    while not stop.is_set():
        try:
            if conn is None or conn.is_closed():
                conn = await connect(settings, role="relay")
                await conn.add_listener("work_ready", lambda *_: woken.set())
            if time.monotonic() - last_beat > HEARTBEAT_EVERY_S:
                await upsert_worker_heartbeat(conn, worker_name=worker_name)
                await schedule_clustering(conn, redis, settings)
                await schedule_reconciles(conn, redis, settings)
                await schedule_alerts(conn, redis, settings)
                last_beat = time.monotonic()
            await relay_deliveries_once(conn, redis, settings)
            await relay_once(conn, redis, settings)
            woken.clear()
            try:
                await asyncio.wait_for(woken.wait(), timeout=settings.relay_poll_s)
            except TimeoutError:
                pass
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("relay: database trouble (%s); retrying", type(exc).__name__)
            if conn is not None:
                conn.terminate()
            conn = None
            await asyncio.sleep(1.0)
    if conn is not None:
        await conn.close()
    redis.close()


def start_relay_thread(settings: Settings) -> threading.Event:
    """Run the relay beside the worker in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    name = f"{socket.gethostname()}:{threading.get_native_id()}"
    thread = threading.Thread(target=lambda: asyncio.run(run_relay(settings, stop, name)), name="relay", daemon=True)
    thread.start()
    return stop
