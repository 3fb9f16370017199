"""`python -m workers`: configure logging, preload the model, run the relay and an RQ worker."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import types

from redis import Redis
from threadpoolctl import threadpool_limits

from outbox.queues import ALL_QUEUES, CLUSTERING_QUEUE, redis_problem
from outbox.relay import start_relay_thread
from schemas.settings import get_settings
from workers.failures import record_final_failure
from workers.jobs import get_embedder
from workers.scheduler import MAINTENANCE_INTERVAL_S, Worker

log = logging.getLogger("workers")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers")
    parser.add_argument("--queues", default=",".join(ALL_QUEUES), help="comma-separated queue names")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--no-relay", action="store_true", help="do not run the outbox relay here")
    args = parser.parse_args(argv)
    # One BLAS thread for the process's life: jobs multiply small matrices (a batch of items
    # against the theme centroids, the intent model), and on a host whose cores are busy with
    # the API, Postgres or another worker, OpenBLAS's extra threads wait for a core: a
    # 64 x 384 by 384 x 300 product took 16 ms instead of 0.13 ms at load 7 on 2 cores
    # (bench/RESULTS.md, 2026-12-05 session 6). Parallelism comes from more workers.
    threadpool_limits(limits=1, user_api="blas")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    # Loaded once here: SimpleWorker runs jobs in this process, so no job pays for it again,
    # and onnxruntime's thread pools never cross a fork.
    embedder = get_embedder(settings)
    log.info("model ready: %s", embedder.model_version)
    queues = [q for q in args.queues.split(",") if q]
    redis = Redis.from_url(settings.redis_url)
    problem = redis_problem(redis)
    if problem:
        log.error("refusing to start: Redis %s", problem)
        return 2
    warming = None
    if CLUSTERING_QUEUE in queues:
        # UMAP, NN-descent and HDBSCAN compile numba code on first use: pay it now, not in a run.
        # It takes 15-50 s (over 2 minutes on a busy host). A long-running worker compiles in a
        # thread and meanwhile embeds, delivers and back-fills; a clustering run that starts
        # before the end waits for it (clustering.cluster). A burst worker compiles first.
        if args.burst:
            _warm_up()
        else:
            warming = threading.Thread(target=_warm_up, name="clustering-warm-up", daemon=True)
            warming.start()
    stop_relay = None if args.no_relay else start_relay_thread(settings)
    worker = Worker(
        queues,
        connection=redis,
        exception_handlers=[record_final_failure],
        job_monitoring_interval=10,
        maintenance_interval=MAINTENANCE_INTERVAL_S,
    )

    def on_sigterm(signum: int, frame: types.FrameType | None) -> None:
        # RQ's own handler finishes the current job and stops; make sure the relay stops too.
        if stop_relay is not None:
            stop_relay.set()
        raise SystemExit(0)

    if args.burst:
        signal.signal(signal.SIGTERM, on_sigterm)
    worker.work(burst=args.burst, with_scheduler=True)
    if stop_relay is not None:
        stop_relay.set()
    if warming is not None and warming.is_alive():
        # Stopped while still compiling. The thread may be inside LLVM, and a normal exit would
        # run the library's static destructors under it; no job is running, nothing is left to
        # save. Flush the logs and leave at once.
        log.info("stopping before the clustering code finished compiling")
        logging.shutdown()
        os._exit(0)
    return 0


def _warm_up() -> None:
    from clustering.cluster import warm_up

    started = time.perf_counter()
    warm_up()
    log.info("clustering code compiled in %.1f s", time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
