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

import asyncpg
from redis import Redis
from redis.exceptions import RedisError

from db.pool import connect
from db.queries.work import (
    claim_pending_deliveries,
    claim_pending_items,
    release_deliveries,
    release_items,
    upsert_worker_heartbeat,
)
from schemas.settings import Settings
from workers.queues import DELIVERIES_QUEUE, ITEMS_QUEUE, enqueue
from workers.schedule import schedule_clustering

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 10.0
# Deliveries are small to parse; a few dozen per job keeps one poison body from delaying many.
DELIVERY_BATCH = 50


async def relay_once(conn: asyncpg.Connection, redis: Redis, settings: Settings) -> int:
    """Claim and enqueue every pending batch available now; returns the number of items enqueued."""
    total = 0
    while True:
        async with conn.transaction():
            ids = await claim_pending_items(conn, stale_after_s=settings.sweep_after_s, limit=settings.embed_batch_size)
        if not ids:
            return total
        try:
            enqueue(
                redis, settings, ITEMS_QUEUE, "workers.jobs.process_items", ids,
                job_id=f"items-{ids[0]}-{len(ids)}-{time.time_ns()}",
            )  # fmt: skip
        except RedisError as exc:
            log.warning("enqueue failed (%s); %d items stay pending", type(exc).__name__, len(ids))
            await release_items(conn, item_ids=ids)
            return total
        total += len(ids)


async def relay_deliveries_once(conn: asyncpg.Connection, redis: Redis, settings: Settings) -> int:
    """Claim and enqueue every pending webhook delivery available now; returns how many were enqueued."""
    total = 0
    while True:
        async with conn.transaction():
            ids = await claim_pending_deliveries(conn, stale_after_s=settings.sweep_after_s, limit=DELIVERY_BATCH)
        if not ids:
            return total
        try:
            enqueue(
                redis, settings, DELIVERIES_QUEUE, "workers.deliveries.process_deliveries", ids,
                job_id=f"deliveries-{ids[0]}-{len(ids)}-{time.time_ns()}",
            )  # fmt: skip
        except RedisError as exc:
            log.warning("enqueue failed (%s); %d deliveries stay pending", type(exc).__name__, len(ids))
            await release_deliveries(conn, delivery_ids=ids)
            return total
        total += len(ids)


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
