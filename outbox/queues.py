"""Queue names and enqueue limits, shared by the API, the relay and the workers."""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis.exceptions import ResponseError
from rq import Queue, Retry

from schemas.settings import Settings

ITEMS_QUEUE = "items"
DELIVERIES_QUEUE = "deliveries"
CLUSTERING_QUEUE = "clustering"
# A worker takes jobs from the first non-empty queue in this order. Clustering runs, retrains and
# back-fills are few and asked for by a person, so they go before the items queue: behind it, a run
# waited until every backlogged item was embedded, which under sustained load or a long history
# import is never (a 10-minute mixed load left one queued the whole time, bench/RESULTS.md,
# 2026-12-07 session 18). Deliveries stay first: a job of theirs is short and turns acks into items.
ALL_QUEUES = (DELIVERIES_QUEUE, CLUSTERING_QUEUE, ITEMS_QUEUE)

# Retries back off; after the last one the failure is recorded in Postgres (job_failure).
RETRY_INTERVALS = [10, 30, 120]
# A finished job is deleted at once: its outcome is in Postgres, and nothing reads an RQ result.
# Kept for 300 s, each finished job held about 5 KB of Valkey (a result stream and the job hash),
# so Valkey grew with the rate of jobs: 62 MB at 30 units/s in the soak, 98 % of it finished jobs
# (bench/RESULTS.md, 2026-12-08). A failed job is still kept for `failure_ttl_s`.
RESULT_TTL_S = 0


def enqueue(
    redis: Redis,
    settings: Settings,
    queue: str,
    func: str,
    *args: Any,
    job_id: str,
    timeout: int | None = None,
) -> None:
    Queue(queue, connection=redis).enqueue_call(
        func,
        args=args,
        job_id=job_id,
        timeout=timeout or settings.job_timeout_s,
        result_ttl=RESULT_TTL_S,
        failure_ttl=settings.failure_ttl_s,
        retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
    )


def redis_problem(redis: Redis) -> str | None:
    """What is wrong with this Redis for a queue, or None. An evicting Redis loses jobs (RQ #1280)."""
    try:
        policy = redis.config_get("maxmemory-policy").get("maxmemory-policy")
    except ResponseError:
        return None  # CONFIG is disabled on some managed services; nothing to check
    if policy not in (None, "noeviction"):
        return f"maxmemory-policy is {policy}; a queue needs noeviction"
    return None
