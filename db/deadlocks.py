"""One transaction run again when Postgres aborted it to break a deadlock.

A job that writes many item rows in one statement (a clustering run's plan, a page of re-labelled
intents) locks them in the order of its join; a writer of the same rows (a delivery batch
updating tickets, a bulk upsert in key order, the embedder) may lock them in another. Postgres
then aborts one side. Nothing of the aborted transaction is committed, so running it again is safe,
and a job that computed for minutes must not fail for that.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

log = logging.getLogger(__name__)

T = TypeVar("T")
TRIES = 3


async def again_after_deadlock(transaction: Callable[[], Awaitable[T]], *, what: str, tries: int = TRIES) -> T:
    """Await `transaction()` (one whole transaction); after a deadlock abort, up to `tries` times."""
    for attempt in range(1, tries):
        try:
            return await transaction()
        except asyncpg.exceptions.DeadlockDetectedError:
            log.warning("%s met a deadlock (try %d of %d); running it again", what, attempt, tries)
    return await transaction()
