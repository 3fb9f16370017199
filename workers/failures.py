"""Record a job's final failure in Postgres (RQ keeps failed jobs for a while; we keep them)."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any

from rq.job import Job

from db.pool import connect
from db.queries.work import insert_job_failure
from schemas.settings import get_settings

log = logging.getLogger(__name__)


def record_final_failure(
    job: Job,
    exc_type: type[BaseException],
    exc_value: BaseException,
    tb: TracebackType | None,
    *_: Any,
) -> bool:
    """RQ exception handler: on the last attempt, write the failure row; always fall through."""
    retries_left = job.retries_left or 0
    if retries_left > 0:
        return True
    attempts = len(job.retry_intervals or []) + 1 if job.retry_intervals else 1

    async def write() -> None:
        conn = await connect(get_settings())
        try:
            await insert_job_failure(
                conn,
                job_id=job.id,
                func_name=job.func_name or "?",
                args=list(job.args or []),
                error=f"{exc_type.__name__}: {exc_value}",
                attempts=attempts,
            )
        finally:
            await conn.close()

    try:
        asyncio.run(write())
    except Exception:
        log.exception("could not record the failure of job %s", job.id)
    return True
