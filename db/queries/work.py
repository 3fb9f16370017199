"""Work-state statements: claiming pending rows for the relay, heartbeats, failures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg
from pydantic import BaseModel

# A row is claimed when it is pending and was never enqueued, or was enqueued so long ago
# that its job must have been lost (Redis restarted, worker killed): the sweeper path.
_CLAIM_ITEMS = """
UPDATE item SET enqueued_at = now()
WHERE item_id IN (
    SELECT item_id FROM item
    WHERE pending AND (enqueued_at IS NULL OR enqueued_at < now() - make_interval(secs => $1))
    ORDER BY item_id LIMIT $2
    FOR UPDATE SKIP LOCKED)
RETURNING item_id
"""


async def claim_pending_items(conn: asyncpg.Connection, *, stale_after_s: float, limit: int) -> list[int]:
    rows = await conn.fetch(_CLAIM_ITEMS, float(stale_after_s), limit)
    return sorted(r["item_id"] for r in rows)


async def release_items(conn: asyncpg.Connection, *, item_ids: Sequence[int]) -> None:
    """Enqueueing failed: make the rows claimable again at the next poll."""
    await conn.execute("UPDATE item SET enqueued_at = NULL WHERE item_id = ANY($1::bigint[])", list(item_ids))


# Webhook deliveries follow the same claim/sweep pattern; status 'pending' plays item.pending.
_CLAIM_DELIVERIES = """
UPDATE delivery SET enqueued_at = now()
WHERE delivery_id IN (
    SELECT delivery_id FROM delivery
    WHERE status = 'pending' AND (enqueued_at IS NULL OR enqueued_at < now() - make_interval(secs => $1))
    ORDER BY delivery_id LIMIT $2
    FOR UPDATE SKIP LOCKED)
RETURNING delivery_id
"""


async def claim_pending_deliveries(conn: asyncpg.Connection, *, stale_after_s: float, limit: int) -> list[int]:
    rows = await conn.fetch(_CLAIM_DELIVERIES, float(stale_after_s), limit)
    return sorted(r["delivery_id"] for r in rows)


async def release_deliveries(conn: asyncpg.Connection, *, delivery_ids: Sequence[int]) -> None:
    """Enqueueing failed: make the deliveries claimable again at the next poll."""
    await conn.execute(
        "UPDATE delivery SET enqueued_at = NULL WHERE delivery_id = ANY($1::bigint[])", list(delivery_ids)
    )


async def upsert_worker_heartbeat(conn: asyncpg.Connection, *, worker_name: str) -> None:
    await conn.execute(
        "INSERT INTO worker_heartbeat (worker_name) VALUES ($1)"
        " ON CONFLICT (worker_name) DO UPDATE SET seen_at = now()",
        worker_name,
    )


async def insert_job_failure(
    conn: asyncpg.Connection,
    *,
    job_id: str,
    func_name: str,
    args: list[Any],
    error: str,
    attempts: int,
) -> None:
    await conn.execute(
        "INSERT INTO job_failure (job_id, func_name, args, error, attempts) VALUES ($1, $2, $3::jsonb, $4, $5)",
        job_id, func_name, json.dumps(args, default=str), error[:4000], attempts,
    )  # fmt: skip


async def update_items_pending(conn: asyncpg.Connection, *, model_version: str, only_missing: bool) -> int:
    """Mark items for processing again: those without a vector for `model_version`, or all of them.

    The relay then enqueues them in batches; the job embeds what has no vector for the current
    model version and skips the rest by content hash, so running this twice costs nothing extra.
    """
    status: str = await conn.execute(
        "UPDATE item i SET pending = true, enqueued_at = NULL, changed_at = now() WHERE deleted_at IS NULL"
        " AND (NOT $2 OR NOT EXISTS (SELECT 1 FROM embedding e WHERE e.item_id = i.item_id AND e.model_version = $1))",
        model_version,
        only_missing,
    )
    return int(status.split()[-1])


class WorkLag(BaseModel):
    """The backlog: pending items (counted up to a cap, so a huge backlog stays cheap to read),
    the age of the oldest one, and pending webhook deliveries."""

    pending_items: int
    pending_items_capped: bool
    oldest_pending_item_s: float | None
    pending_deliveries: int


LAG_COUNT_CAP = 10_000

# Both read partial indexes (item_pending_idx, delivery_pending_idx) and stop at the cap, so a
# backlog of millions costs /readyz no more than one of ten thousand. The oldest age is taken over
# the first pending rows by id: rows become pending roughly in id order, so those are the ones
# waiting longest (a row re-opened by an update waits less than its id suggests).
_LAG = f"""
SELECT i.items, extract(epoch FROM now() - i.oldest) AS oldest,
       (SELECT count(*) FROM (SELECT 1 FROM delivery WHERE status = 'pending' LIMIT {LAG_COUNT_CAP + 1}) d)
           AS deliveries
FROM (SELECT count(*) AS items, min(changed_at) AS oldest
      FROM (SELECT changed_at FROM item WHERE pending ORDER BY item_id LIMIT {LAG_COUNT_CAP + 1}) p) i
"""


async def select_work_lag(conn: asyncpg.Connection) -> WorkLag:
    row = await conn.fetchrow(_LAG)
    assert row is not None
    return WorkLag(
        pending_items=min(row["items"], LAG_COUNT_CAP),
        pending_items_capped=row["items"] > LAG_COUNT_CAP,
        oldest_pending_item_s=round(float(row["oldest"]), 1) if row["oldest"] is not None else None,
        pending_deliveries=min(row["deliveries"], LAG_COUNT_CAP),
    )
