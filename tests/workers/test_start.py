"""A new worker serves its queues while it compiles the clustering code, and stops at once if told
to during that compilation (workers/__main__.py).

The compilation takes 15-50 s (over two minutes on a busy host); the job here takes a fraction of
a second, so under the old order (compile, then serve) the log always said "compiled" first.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from redis import Redis
from rq import Queue
from rq.job import JobStatus

from schemas.settings import Settings
from tests.conftest import ROOT, stop

COMPILED = "clustering code compiled"


def test_a_new_worker_takes_jobs_while_it_compiles_and_a_sigterm_then_stops_it_with_0(
    migrated: Settings, worker_env: dict[str, str], tmp_path: Path
) -> None:
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "workers"], env=worker_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        job = Queue("items", connection=Redis.from_url(migrated.redis_url)).enqueue(time.sleep, 0.1, job_timeout=60)
        deadline = time.monotonic() + 120
        while job.get_status(refresh=True) != JobStatus.FINISHED:
            assert worker.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the worker never finished the job"
            time.sleep(0.05)
        assert COMPILED not in log_path.read_text()  # served before the compilation ended

        worker.terminate()
        assert worker.wait(timeout=30) == 0
        text = log_path.read_text()
        assert "stopping before the clustering code finished compiling" in text, text
        assert COMPILED not in text and "Traceback" not in text, text
    finally:
        stop(worker)
