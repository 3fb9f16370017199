"""#17 finding 6: after kill -9 of a worker, its RQ scheduler child used to live on holding the
scheduler lock, and the replacement worker ran without a scheduler. A real worker process, a real
kill -9, real Valkey."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import asyncpg
import psutil
from redis import Redis

from schemas.settings import Settings
from tests.conftest import ROOT, stop

LOCK = "rq:scheduler-lock:items"


def _scheduler_holding_lock(redis: Redis, worker: subprocess.Popen[bytes], timeout: float = 120.0) -> psutil.Process:
    """The worker's scheduler child, once it holds the lock for the items queue."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.poll() is None, "the worker exited"
        owner = redis.get(LOCK)
        if owner is not None:
            pid = redis.hget(f"rq:scheduler:{owner.decode()}", "pid")
            children = {c.pid: c for c in psutil.Process(worker.pid).children()}
            if pid is not None and int(pid) in children:
                return children[int(pid)]
        time.sleep(0.2)
    raise AssertionError("no scheduler child took the lock")


def _start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "workers", "--queues", "deliveries,items"], env=env, cwd=ROOT)


def test_kill_9_of_a_worker_takes_its_scheduler_with_it_and_the_next_worker_schedules(
    migrated: Settings, worker_env: dict[str, str], db: asyncpg.Connection
) -> None:
    redis = Redis.from_url(migrated.redis_url)
    first = _start_worker(worker_env)
    replacement = None
    try:
        child = _scheduler_holding_lock(redis, first)
        old_owner = redis.get(LOCK)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        # The child stops on its own and gives the lock back (not by expiry, which takes 61 s).
        gone, alive = psutil.wait_procs([child], timeout=30)
        assert child in gone and not alive, "the scheduler child outlived its worker"
        deadline = time.monotonic() + 30
        while redis.get(LOCK) == old_owner:
            assert time.monotonic() < deadline, "the dead worker's scheduler lock was not released"
            time.sleep(0.2)

        replacement = _start_worker(worker_env)
        new_child = _scheduler_holding_lock(redis, replacement)
        assert new_child.pid != child.pid and redis.get(LOCK) != old_owner
    finally:
        for proc in (first, replacement):
            if proc is not None and proc.poll() is None:
                stop(proc)
        redis.close()
