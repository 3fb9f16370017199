"""The runs-and-health page: clustering runs, queues, failed jobs, workers, webhook senders and imports."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.registry import FailedJobRegistry, StartedJobRegistry

from api.dashboard.charts import Chart, Series
from db.queries.alerts import select_dead_letters
from db.queries.health import select_connection_health, select_job_failures, select_worker_heartbeats
from db.queries.imports import select_import_states
from db.queries.runs import select_runs
from db.queries.work import select_work_lag
from outbox.queues import ALL_QUEUES

log = logging.getLogger(__name__)

RUNS_SHOWN = 20
FAILURES_SHOWN = 20
REDIS_TIMEOUT_S = 3.0
WORKER_ALIVE_S = 60


@dataclass(frozen=True)
class QueueDepth:
    name: str
    queued: int
    started: int
    failed: int


def queue_depths(redis: Redis) -> list[QueueDepth]:
    """Blocking RQ calls: run in a thread."""
    depths = []
    for name in ALL_QUEUES:
        queue = Queue(name, connection=redis)
        depths.append(
            QueueDepth(
                name=name,
                queued=queue.count,
                started=StartedJobRegistry(queue=queue).count,
                failed=FailedJobRegistry(queue=queue).count,
            )
        )
    return depths


async def _queues(redis: Redis) -> tuple[list[QueueDepth], str | None]:
    """The queue figures, or why they are missing: the page still shows what Postgres knows."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(queue_depths, redis), timeout=REDIS_TIMEOUT_S), None
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("queue depths unavailable: %s", type(exc).__name__)
        return [], f"Redis unreachable ({type(exc).__name__})"


async def build_health(conn: asyncpg.Connection, *, redis: Redis) -> dict[str, Any]:
    runs = await select_runs(conn, before_id=None, limit=RUNS_SHOWN)
    failures = await select_job_failures(conn, limit=FAILURES_SHOWN)
    workers = await select_worker_heartbeats(conn)
    connections = await select_connection_health(conn)
    imports = await select_import_states(conn)
    dead_letters = await select_dead_letters(conn)
    queues, queue_error = await _queues(redis)
    lag = await select_work_lag(conn)
    charted = [r for r in reversed(runs) if r.started_at and r.finished_at]
    durations = Chart(
        chart_id="run-durations",
        kind="bar",
        title="Clustering run duration",
        x_title="Run",
        y_title="Duration (seconds)",
        labels=[f"#{r.run_id} {r.scope}" for r in charted],
        series=[
            Series(
                "Duration",
                [(r.finished_at - r.started_at).total_seconds() for r in charted if r.finished_at and r.started_at],
            )
        ],
        value_format="dec1",
    )
    return {
        "runs": runs,
        "durations": durations,
        "failures": failures,
        "workers": workers,
        "workers_alive": sum(1 for w in workers if w.age_s <= WORKER_ALIVE_S),
        "worker_alive_s": WORKER_ALIVE_S,
        "connections": connections,
        "imports": imports,
        "dead_letters": dead_letters,
        "queues": queues,
        "queue_error": queue_error,
        "lag": lag,
    }
