"""The RQ worker class `python -m workers` runs: a SimpleWorker whose scheduler child dies with it."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from typing import Any

from rq import SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# A worker retries a scheduler lock it could not take at this interval (RQ's default is 10
# minutes): a lock left by a scheduler that died uncleanly expires after 61 s.
MAINTENANCE_INTERVAL_S = 60


class ParentBoundScheduler(RQScheduler):
    """RQ's scheduler, whose forked child process dies with its worker.

    RQ forks the scheduler into a child that holds the scheduler lock. When the worker is killed
    with -9, nothing tells the child: it lived on holding the lock, and the replacement workers
    ran without a scheduler. Here the kernel sends the child SIGTERM when its parent dies
    (PR_SET_PDEATHSIG), and its heartbeat also checks that the parent is still the one that
    forked it; either way the child stops cleanly and releases the lock for the next worker.
    """

    def start(self) -> Any:
        self._parent_pid = os.getpid()  # read in the child: fork copies the object
        return super().start()  # type: ignore[no-untyped-call]

    def _install_signal_handlers(self) -> None:
        # SIGTERM -> request_stop first, so the death signal can never find the default action.
        super()._install_signal_handlers()  # type: ignore[no-untyped-call]
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):  # not Linux: the heartbeat check below still holds
            log.debug("prctl(PR_SET_PDEATHSIG) unavailable")
        self._stop_if_orphaned()  # the parent may have died before prctl took effect

    def _stop_if_orphaned(self) -> None:
        if os.getppid() != getattr(self, "_parent_pid", os.getppid()):
            log.warning("scheduler: worker %s is gone; stopping and releasing the lock", self._parent_pid)
            self.request_stop()  # type: ignore[no-untyped-call]

    def heartbeat(self) -> None:
        self._stop_if_orphaned()
        super().heartbeat()  # type: ignore[no-untyped-call]


class Worker(SimpleWorker):
    """SimpleWorker with the parent-bound scheduler (RQ builds an RQScheduler in this method)."""

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        self.scheduler = ParentBoundScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()  # type: ignore[no-untyped-call]
        if self.scheduler.acquired_locks:
            if burst:
                try:
                    self.scheduler.register_birth()
                    self.scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
                finally:
                    self.scheduler.release_locks()  # type: ignore[no-untyped-call]
                    self.scheduler.register_death()
            else:
                self.scheduler.start()
