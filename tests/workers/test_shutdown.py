"""Q4-Q6: a job past its deadline is retried, then recorded; a deploy's SIGTERM lets the worker
finish the job in hand, then it exits 0; a second SIGTERM stops it at once (the work it held is
picked up again: Q1, the fault suite's kill -9).

The job is a plain sleep on the items queue, so "mid-job" is certain rather than a race with a
fast embedding batch.
"""

from __future__ import annotations

import signal
import subprocess
import time

import asyncpg
from redis import Redis
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry

from schemas.settings import Settings
from tests.conftest import wait_for

JOB_S = 6.0


def started_sleep(redis: Redis, worker: subprocess.Popen[bytes]) -> Job:
    job = Queue("items", connection=redis).enqueue(time.sleep, JOB_S, job_timeout=60)
    deadline = time.monotonic() + 60
    while job.id not in StartedJobRegistry("items", connection=redis).get_job_ids():
        assert worker.poll() is None, "worker exited before it took the job"
        assert time.monotonic() < deadline, "the worker never started the job"
        time.sleep(0.05)
    return job


def test_sigterm_mid_job_finishes_the_job_then_exits_0(migrated: Settings, worker: subprocess.Popen[bytes]) -> None:
    redis = Redis.from_url(migrated.redis_url)
    job = started_sleep(redis, worker)
    signalled = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    assert time.monotonic() - signalled >= JOB_S - 1.0  # it waited for the job
    assert job.get_status(refresh=True) == JobStatus.FINISHED


def test_a_second_sigterm_stops_the_worker_at_once(migrated: Settings, worker: subprocess.Popen[bytes]) -> None:
    redis = Redis.from_url(migrated.redis_url)
    job = started_sleep(redis, worker)
    signalled = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    time.sleep(1.5)  # RQ takes a second signal within one second for a duplicate and ignores it
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)
    assert time.monotonic() - signalled < JOB_S - 1.5  # it did not wait for the job
    assert job.get_status(refresh=True) != JobStatus.FINISHED


async def test_a_job_past_its_deadline_is_retried_then_recorded_in_postgres(
    migrated: Settings, worker: subprocess.Popen[bytes], db: asyncpg.Connection
) -> None:
    # Q4 and Q5: every job has a deadline; past it the job fails, is retried with its back-off,
    # and after the last attempt the failure is a row in Postgres, not only an entry in Redis.
    redis = Redis.from_url(migrated.redis_url)
    job = Queue("items", connection=redis).enqueue(
        time.sleep, JOB_S, job_timeout=1, retry=Retry(max=1, interval=[1]), failure_ttl=600
    )
    row = await wait_for(lambda: db.fetchrow("SELECT * FROM job_failure WHERE job_id = $1", job.id), timeout=60)
    assert "JobTimeoutException" in row["error"] and row["attempts"] == 2

    async def in_failed_registry() -> bool:
        return job.id in FailedJobRegistry("items", connection=redis).get_job_ids()

    await wait_for(in_failed_registry, timeout=10)  # RQ moves it there after our handler ran
