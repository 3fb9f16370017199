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
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from threadpoolctl import threadpool_limits

from outbox.queues import ALL_QUEUES, CLUSTERING_QUEUE, redis_problem
from outbox.relay import start_relay_thread
from schemas.settings import get_settings
from workers.failures import record_final_failure
from workers.jobs import get_embedder
from workers.scheduler import MAINTENANCE_INTERVAL_S, Worker

log = logging.getLogger("workers")
# How long a worker waits for Redis to come back before it exits and leaves the restart to its
# supervisor (compose's restart policy, `make run`'s loop). A Redis restart takes seconds.
REDIS_GONE_S = 300.0
# More restarts of the worker loop than this within a minute mean the loop is failing for a
# reason that waiting does not cure: exit and let the supervisor show it.
LOOP_RESTARTS_PER_MINUTE = 5


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
    if not _wait_for_redis(redis, REDIS_GONE_S, threading.Event()):  # Redis may be restarting
        log.error("refusing to start: Redis did not answer for %.0f s", REDIS_GONE_S)
        return 1
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

    def on_sigterm(signum: int, frame: types.FrameType | None) -> None:
        # RQ's own handler finishes the current job and stops; make sure the relay stops too.
        if stop_relay is not None:
            stop_relay.set()
        raise SystemExit(0)

    if args.burst:
        signal.signal(signal.SIGTERM, on_sigterm)
    code = _work(queues, redis, burst=args.burst)
    if stop_relay is not None:
        stop_relay.set()
    if warming is not None and warming.is_alive():
        # Stopped while still compiling. The thread may be inside LLVM, and a normal exit would
        # run the library's static destructors under it; no job is running, nothing is left to
        # save. Flush the logs and leave at once.
        log.info("stopping before the clustering code finished compiling")
        logging.shutdown()
        os._exit(code)
    return code


def _work(queues: list[str], redis: Redis, *, burst: bool) -> int:
    """Run the RQ worker loop until asked to stop; run it again after Redis comes back.

    RQ leaves its loop on any error outside its blocking dequeue, and a Redis that restarts
    while a job finishes is such an error: RQ logs "unhandled exception, quitting", and its
    teardown then raises because it cannot reach Redis either. The process would exit, and a
    supervisor would restart it after a model load and, on the clustering queue, 15-50 s of
    compilation. Nothing is lost either way (the outbox re-enqueues what was in flight), so
    this waits for Redis and starts a new loop in the same process.
    """
    restarts: list[float] = []
    stop = threading.Event()

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        stop.set()

    while True:
        worker = Worker(
            queues,
            connection=redis,
            exception_handlers=[record_final_failure],
            job_monitoring_interval=10,
            maintenance_interval=MAINTENANCE_INTERVAL_S,
        )
        try:
            worker.work(burst=burst, with_scheduler=True)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            reason = f"Redis was lost ({exc})"
        else:
            # A SIGTERM or SIGINT ends the loop through RQ's handler, which notes the time
            # (and, if a job is running, sets the flag that stops the loop after it).
            if burst or worker._stop_requested or worker._shutdown_requested_date is not None:
                return 0
            reason = "the worker loop ended without a stop request"
        _drop_pubsub(worker)
        now = time.monotonic()
        restarts = [t for t in restarts if t > now - 60] + [now]
        if len(restarts) > LOOP_RESTARTS_PER_MINUTE:
            log.error("%s, %d times within a minute; exiting", reason, len(restarts))
            return 1
        log.warning("%s; starting the worker loop again once Redis answers", reason)
        # RQ's signal handlers are still installed and would call Redis; while waiting, a
        # SIGTERM or SIGINT just ends the wait and the worker stops with 0.
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if not _wait_for_redis(redis, REDIS_GONE_S, stop):
            log.error("Redis did not answer for %.0f s; exiting", REDIS_GONE_S)
            return 1
        if stop.is_set():
            return 0


def _drop_pubsub(worker: Worker) -> None:
    """Stop the pubsub thread of a loop whose teardown failed, so a new loop does not leak it.

    RQ unsubscribes in teardown after it registers the death, which is what raises when Redis
    is gone; the thread would then retry its connection for the life of the process.
    """
    if worker.pubsub_thread is not None:
        worker.pubsub_thread.stop()  # local: it leaves its loop and closes its own connection
        worker.pubsub_thread.join(timeout=1)


def _wait_for_redis(redis: Redis, timeout: float, stop: threading.Event) -> bool:
    """Ping until Redis answers (True), ``stop`` is set (True), or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        try:
            redis.ping()
            return True
        except RedisError:
            if time.monotonic() > deadline:
                return False
        stop.wait(1.0)
    return True


def _warm_up() -> None:
    from clustering.cluster import warm_up

    started = time.perf_counter()
    warm_up()
    log.info("clustering code compiled in %.1f s", time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
