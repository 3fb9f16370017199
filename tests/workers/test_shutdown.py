"""Q6: a deploy's SIGTERM lets the worker finish the job in hand, then it exits 0; a second
SIGTERM stops it at once (the work it held is picked up again: Q1, the fault suite's kill -9).

The job is a plain sleep on the items queue, so "mid-job" is certain rather than a race with a
fast embedding batch.
"""

from __future__ import annotations

import signal
import subprocess
import time

from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from schemas.settings import Settings

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
