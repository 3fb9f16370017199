"""The order in which a worker takes its queues (outbox/queues.py `ALL_QUEUES`)."""

from __future__ import annotations

import time

from redis import Redis
from rq import Queue

from outbox.queues import ALL_QUEUES, CLUSTERING_QUEUE, DELIVERIES_QUEUE, ITEMS_QUEUE
from schemas.settings import Settings
from workers.scheduler import Worker


def test_a_worker_takes_a_clustering_run_before_a_backlog_of_items_and_deliveries_before_both(
    migrated: Settings,
) -> None:
    # Behind a backlog that never drains (sustained load, a long import), a run, a retrain or a
    # back-fill that a person asked for would wait for ever.
    redis = Redis.from_url(migrated.redis_url)
    backlog = [Queue(ITEMS_QUEUE, connection=redis).enqueue(time.sleep, 0) for _ in range(5)]
    run = Queue(CLUSTERING_QUEUE, connection=redis).enqueue(time.sleep, 0)
    delivery = Queue(DELIVERIES_QUEUE, connection=redis).enqueue(time.sleep, 0)
    Worker(list(ALL_QUEUES), connection=redis).work(burst=True)
    started = {job.id: job.fetch(job.id, connection=redis).started_at for job in [*backlog, run, delivery]}
    assert all(started.values())
    order = sorted(started, key=lambda job_id: started[job_id])
    assert order[:2] == [delivery.id, run.id]
    redis.close()
