"""A worker outlives a Redis restart that catches it finishing a job.

RQ leaves its loop on a Redis error outside the blocking dequeue, and its teardown then raises
too, so the process used to exit. The 2-hour soak of 2026-12-07 (session 19) lost both workers
this way when Valkey restarted. A real worker process, a real Valkey stopped and started again.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.job import JobStatus

from embedded.stores import Valkey, free_port
from tests.conftest import ROOT, stop


def _wait(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _start_worker(env: dict[str, str], valkey: Valkey, log: Path) -> subprocess.Popen[bytes]:
    """A deliveries worker on ``valkey``; its output goes to ``log`` (a full pipe would block it)."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "workers", "--queues", "deliveries", "--no-relay"],
            env=env | {"REDIS_URL": valkey.url(0)},
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def _worker_on_valkey(
    env: dict[str, str], tmp_path: Path, *, valkey_up: bool = True
) -> Iterator[tuple[Valkey, Redis, subprocess.Popen[bytes], Path]]:
    """A Valkey (started or not), a client of it, and a deliveries worker on it; all stopped after."""
    valkey = Valkey(tmp_path / "valkey", free_port())
    if valkey_up:
        valkey.start()
    redis = Redis.from_url(valkey.url(0))
    log = tmp_path / "worker.log"
    worker = _start_worker(env, valkey, log)
    try:
        yield valkey, redis, worker, log
    finally:
        if worker.poll() is None:
            stop(worker)
        redis.close()
        valkey.stop()


def _lose_redis_as_a_job_ends(valkey: Valkey, redis: Redis) -> None:
    """Stop Valkey while a job runs, and keep it down until the job has ended."""
    slow = Queue("deliveries", connection=redis).enqueue("time.sleep", 4)
    _wait(lambda: slow.get_status(refresh=True) == JobStatus.STARTED, "the slow job to start")
    valkey.stop()
    time.sleep(10)  # the job ends, RQ cannot record it, and redis-py's retries run out


@pytest.mark.slow
def test_a_worker_caught_by_a_redis_restart_as_a_job_ends_runs_on_in_the_same_process(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    with _worker_on_valkey(worker_env, tmp_path) as (valkey, redis, worker, log):
        _lose_redis_as_a_job_ends(valkey, redis)
        assert worker.poll() is None, "the worker exited while Redis was down"
        valkey.start()

        after = Queue("deliveries", connection=redis).enqueue("os.getpid")
        _wait(lambda: after.get_status(refresh=True) == JobStatus.FINISHED, "a job after the restart")
        assert after.return_value() == worker.pid
    assert "starting the worker loop again" in log.read_text(errors="replace")


@pytest.mark.slow
def test_a_worker_waiting_for_redis_stops_with_0_on_sigterm(worker_env: dict[str, str], tmp_path: Path) -> None:
    with _worker_on_valkey(worker_env, tmp_path) as (valkey, redis, worker, log):
        _lose_redis_as_a_job_ends(valkey, redis)
        assert "starting the worker loop again" in log.read_text(errors="replace")
        worker.terminate()
        assert worker.wait(timeout=10) == 0, log.read_text(errors="replace")


@pytest.mark.slow
def test_a_worker_started_while_redis_is_down_waits_for_it_and_then_serves(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    with _worker_on_valkey(worker_env, tmp_path, valkey_up=False) as (valkey, redis, worker, log):
        _wait(lambda: "model ready" in log.read_text(errors="replace"), "the model to load")
        time.sleep(3)
        assert worker.poll() is None, log.read_text(errors="replace")
        valkey.start()
        job = Queue("deliveries", connection=redis).enqueue("os.getpid")
        _wait(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, "the job")
        assert job.return_value() == worker.pid
