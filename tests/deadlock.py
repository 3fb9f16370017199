"""A real Postgres deadlock between a job's many-row UPDATE and another writer of the same rows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import asyncpg

T = TypeVar("T")


async def through_a_deadlock(dsn: str, item_ids: list[int], job: Awaitable[T], *, statement: str) -> T:
    """Run `job` while another session closes a lock cycle with it, and return its result.

    The other session holds the middle item row; the job's UPDATE (its text starts `statement`)
    waits for it, holding the rows on one side; the other session then takes all the others.
    Postgres aborts the job's side (the other session's `deadlock_timeout` is 60 s), then the
    other session commits.
    """
    other = await asyncpg.connect(dsn)
    watch = await asyncpg.connect(dsn)  # pg_stat_activity keeps one snapshot within a transaction
    try:
        await other.execute("SET deadlock_timeout = '60s'")
        updates = other.transaction()
        await updates.start()
        middle = item_ids[len(item_ids) // 2]
        await other.execute("UPDATE item SET changed_at = changed_at WHERE item_id = $1", middle)
        task = asyncio.ensure_future(job)

        async def job_waits() -> bool:
            query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1"
            return bool(await watch.fetchval(query, statement + "%"))

        for _ in range(600):
            if await job_waits() or task.done():
                break
            await asyncio.sleep(0.1)
        assert await job_waits(), "the job never waited for the row"
        rest = [i for i in item_ids if i != middle]
        await other.execute("UPDATE item SET changed_at = changed_at WHERE item_id = ANY($1::bigint[])", rest)
        await updates.commit()
        return await asyncio.wait_for(task, timeout=120)
    finally:
        await other.close()
        await watch.close()
