"""Webhook delivery statements: the durable insert behind every ack, and the job's bookkeeping."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import asyncpg

from schemas.items import clean_str

Outcome = Literal["processed", "ignored", "failed"]
_MAX_ERROR = 2000

# One statement is one transaction: the row and the relay's wake-up commit together, in one round
# trip (the ack path's latency is mostly round trips and the commit). DO NOTHING, not DO UPDATE: a
# duplicate changes nothing, not even a timestamp. The second SELECT finds the existing row for the
# duplicate's answer; racing a transaction that has just committed the same key it may see nothing
# (statement snapshot), hence delivery_id None. pg_notify is delivered at commit, and only for a
# new pending row.
_INSERT = """
WITH ins AS (
    INSERT INTO delivery (connection_id, dedupe_key, headers, body, status, error, processed_at)
    VALUES ($1, $2, $3::jsonb, $4, $5, $6, CASE WHEN $5 = 'pending' THEN NULL ELSE now() END)
    ON CONFLICT ON CONSTRAINT delivery_connection_dedupe_key DO NOTHING
    RETURNING delivery_id
)
SELECT delivery_id, true AS inserted, CASE WHEN $5 = 'pending' THEN pg_notify('work_ready', '') END AS notified
FROM ins
UNION ALL
SELECT delivery_id, false, NULL FROM delivery
WHERE connection_id = $1 AND dedupe_key = $2 AND NOT EXISTS (SELECT 1 FROM ins)
"""


@dataclass(frozen=True)
class StoredDelivery:
    delivery_id: int | None
    inserted: bool


@dataclass(frozen=True)
class PendingDelivery:
    delivery_id: int
    connection_id: UUID
    vendor: str
    headers: dict[str, str]
    body: bytes
    attempts: int
    dedupe_key: str


async def insert_delivery(
    conn: asyncpg.Connection,
    *,
    connection_id: UUID,
    dedupe_key: str,
    headers: Mapping[str, str],
    body: bytes,
    failed_error: str | None = None,
) -> StoredDelivery:
    """Store one delivery unless its dedupe key is already known, and wake the relays if it is new.

    A single autocommitted statement: do not wrap it in a transaction that does more, or the ack
    would wait for that too. `failed_error` stores it as already failed (refused at the door but
    kept for diagnosis): such a row is never claimed by the relay.
    """
    status = "pending" if failed_error is None else "failed"
    error = None if failed_error is None else _clean(failed_error)
    row = await conn.fetchrow(_INSERT, connection_id, dedupe_key, json.dumps(dict(headers)), body, status, error)
    if row is None:
        return StoredDelivery(delivery_id=None, inserted=False)
    return StoredDelivery(delivery_id=row["delivery_id"], inserted=row["inserted"])


async def update_delivery_attempts(conn: asyncpg.Connection, *, delivery_ids: Sequence[int]) -> dict[int, int]:
    """Count an attempt on each still-pending delivery, committed before any work, so a job that
    crashes mid-way still leaves its attempt on record. Returns {delivery_id: attempts}."""
    rows = await conn.fetch(
        "UPDATE delivery SET attempts = attempts + 1"
        " WHERE delivery_id = ANY($1::bigint[]) AND status = 'pending' RETURNING delivery_id, attempts",
        list(delivery_ids),
    )
    return {r["delivery_id"]: r["attempts"] for r in rows}


async def select_pending_delivery_for_update(conn: asyncpg.Connection, *, delivery_id: int) -> PendingDelivery | None:
    """Lock one pending delivery for processing; None if it is done or another job holds it.

    Call inside the transaction that records the outcome: the lock plus the status check are what
    make a second (or concurrent) run of the job change nothing.
    """
    row = await conn.fetchrow(
        "SELECT d.delivery_id, d.connection_id, c.vendor, d.headers, d.body, d.attempts, d.dedupe_key"
        " FROM delivery d JOIN connection c USING (connection_id)"
        " WHERE d.delivery_id = $1 AND d.status = 'pending'"
        " FOR UPDATE OF d SKIP LOCKED",
        delivery_id,
    )
    if row is None:
        return None
    return PendingDelivery(
        delivery_id=row["delivery_id"],
        connection_id=row["connection_id"],
        vendor=row["vendor"],
        headers=json.loads(row["headers"]),
        body=bytes(row["body"]),
        attempts=row["attempts"],
        dedupe_key=row["dedupe_key"],
    )


async def update_delivery_outcome(
    conn: asyncpg.Connection,
    *,
    delivery_id: int,
    status: Outcome,
    event_type: str | None,
    error: str | None = None,
    items: int = 0,
    deletes: int = 0,
) -> None:
    await conn.execute(
        "UPDATE delivery SET status = $2, event_type = $3, error = $4, items = $5, deletes = $6, processed_at = now()"
        " WHERE delivery_id = $1",
        delivery_id,
        status,
        _clean(event_type)[:200] if event_type is not None else None,
        _clean(error) if error is not None else None,
        items,
        deletes,
    )


def _clean(text: str) -> str:
    """Error and event texts come from untrusted payloads: no NUL, valid UTF-8, bounded."""
    return clean_str(text)[:_MAX_ERROR]
