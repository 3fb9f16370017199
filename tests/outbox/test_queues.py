"""The order in which a worker takes its queues (outbox/queues.py `ALL_QUEUES`), and what a
finished job leaves in Redis."""

from __future__ import annotations

import time

from redis import Redis
from rq import Queue
from rq.registry import FinishedJobRegistry

from outbox.queues import ALL_QUEUES, CLUSTERING_QUEUE, DELIVERIES_QUEUE, ITEMS_QUEUE, enqueue
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


def test_a_finished_job_leaves_nothing_in_redis(migrated: Settings) -> None:
    # Its outcome is in Postgres. Kept for 300 s, finished jobs were 98 % of Valkey's memory in
    # the soak, and that memory grew with the rate of jobs.
    redis = Redis.from_url(migrated.redis_url)
    enqueue(redis, migrated, ITEMS_QUEUE, "time.sleep", 0, job_id="finished-job-leaves-nothing")
    assert redis.exists("rq:job:finished-job-leaves-nothing")
    Worker([ITEMS_QUEUE], connection=redis).work(burst=True)
    assert not redis.exists("rq:job:finished-job-leaves-nothing")
    assert not redis.keys("rq:results:finished-job-leaves-nothing*")
    assert "finished-job-leaves-nothing" not in FinishedJobRegistry(ITEMS_QUEUE, connection=redis).get_job_ids()
    redis.close()
