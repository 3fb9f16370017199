"""The webhook job: stored deliveries → connectors.parse → item upserts, one transaction each.

Every delivery ends with a recorded outcome, never only a crashed job:

- processed: items upserted and/or deletes applied, in the same transaction as the status;
- ignored: a shape or event type we keep but do not map (user events, pings, trigger bodies);
- failed: MalformedPayload, items that do not validate as ItemCreate, a data error from Postgres,
  an unexpected error inside a connector, or MAX_ATTEMPTS runs that never finished; `error` says why.

Only trouble that a later run can fix (the database going away, a statement timeout) escapes as
an exception: the delivery stays pending, RQ retries the job and the relay's sweep re-enqueues it.
Idempotent: each delivery is locked and re-checked as pending inside its transaction, and the
item upserts are version-guarded, so a second run of the same ids changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from pydantic import ValidationError

from connectors import MalformedPayload, parse
from db.pool import connect
from db.queries.deliveries import (
    Outcome,
    PendingDelivery,
    select_pending_delivery_for_update,
    update_delivery_attempts,
    update_delivery_outcome,
)
from db.queries.items import mark_items_deleted, select_bodies_for_update, update_items_csat, upsert_items
from schemas.items import ItemCreate
from schemas.settings import get_settings

log = logging.getLogger(__name__)

# A delivery whose job keeps dying (not failing cleanly) is given up after this many runs.
MAX_ATTEMPTS = 5

# Postgres refusing the data itself: retrying cannot help, so the delivery is marked failed.
_DATA_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


@dataclass(frozen=True)
class Mapped:
    status: Outcome
    event_type: str | None
    items: list[ItemCreate] = field(default_factory=list)
    deletes: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    ratings: list[tuple[str, str, int]] = field(default_factory=list)


def map_delivery(delivery: PendingDelivery) -> Mapped:
    """Parse and validate one delivery; pure, never raises. The body is decoded once, and the
    dedupe key the API stored is passed on rather than computed again."""
    try:
        parsed = parse(delivery.vendor, delivery.headers, delivery.body, delivery.dedupe_key)
    except MalformedPayload as exc:
        return Mapped("failed", None, error=f"malformed payload: {exc}")
    except Exception as exc:  # a connector bug on odd input must not cost the delivery its record
        log.exception("connector %s crashed on delivery %d", delivery.vendor, delivery.delivery_id)
        return Mapped("failed", None, error=f"connector error: {type(exc).__name__}: {exc}")
    try:
        items = [ItemCreate.model_validate(raw) for raw in parsed.items]
    except ValidationError as exc:
        return Mapped("failed", parsed.event_type, error=_validation_summary(exc))
    deletes = [(str(source), str(external_id)) for source, external_id in parsed.deletes]
    if parsed.ignored and not items and not deletes:
        return Mapped("ignored", parsed.event_type)
    return Mapped("processed", parsed.event_type, items=items, deletes=deletes, ratings=parsed.ratings)


def _validation_summary(exc: ValidationError) -> str:
    errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]]
    return f"invalid item ({exc.error_count()} error(s)): " + "; ".join(errors)


async def handle_deliveries(conn: asyncpg.Connection, delivery_ids: Sequence[int]) -> dict[str, int]:
    """Process the still-pending deliveries among `delivery_ids`; returns a count per outcome."""
    counts: dict[str, int] = {}
    async with conn.transaction():
        attempts = await update_delivery_attempts(conn, delivery_ids=delivery_ids)
    for delivery_id in sorted(attempts):
        outcome = await _handle_one(conn, delivery_id)
        if outcome is not None:
            counts[outcome] = counts.get(outcome, 0) + 1
    log.info("deliveries: %s", counts or "nothing pending")
    return counts


async def _handle_one(conn: asyncpg.Connection, delivery_id: int) -> Outcome | None:
    try:
        async with conn.transaction():
            delivery = await select_pending_delivery_for_update(conn, delivery_id=delivery_id)
            if delivery is None:
                return None  # done already, or another job holds it right now
            if delivery.attempts > MAX_ATTEMPTS:
                mapped = Mapped("failed", None, error=f"gave up after {MAX_ATTEMPTS} attempts that did not finish")
            else:
                mapped = map_delivery(delivery)
            await _apply(conn, delivery_id, mapped)
            return mapped.status
    except _DATA_ERRORS as exc:
        # Rolled back: record the failure on its own so the delivery is not retried forever.
        log.warning("delivery %d refused by the database: %s", delivery_id, type(exc).__name__)
        async with conn.transaction():
            if await select_pending_delivery_for_update(conn, delivery_id=delivery_id) is None:
                return None
            await update_delivery_outcome(
                conn, delivery_id=delivery_id, status="failed", event_type=None,
                error=f"database refused the items: {type(exc).__name__}: {exc}",
            )  # fmt: skip
        return "failed"


async def _apply(conn: asyncpg.Connection, delivery_id: int, mapped: Mapped) -> None:
    if mapped.items:
        await upsert_items(conn, items=await _keep_stored_text(conn, mapped.items))
    deleted = await mark_items_deleted(conn, keys=mapped.deletes) if mapped.deletes else 0
    if mapped.ratings:
        await update_items_csat(conn, ratings=mapped.ratings)
    await update_delivery_outcome(
        conn,
        delivery_id=delivery_id,
        status=mapped.status,
        event_type=mapped.event_type,
        error=mapped.error,
        items=len(mapped.items),
        deletes=deleted,
    )


async def _keep_stored_text(conn: asyncpg.Connection, items: list[ItemCreate]) -> list[ItemCreate]:
    """A delivery with no text of its own (a later reply, a state change) keeps the stored text.

    Connectors fall back to the title when a payload carries no body, since an item needs text; for
    an item we already hold, that fallback would overwrite its real opening text with its title.
    """

    def bare(it: ItemCreate) -> bool:
        return it.title is not None and it.body == it.title

    if not any(bare(it) for it in items):
        return items
    stored = await select_bodies_for_update(conn, keys=[(it.source, it.external_id) for it in items if bare(it)])
    kept = []
    for it in items:
        body = stored.get((it.source, it.external_id)) if bare(it) else None
        kept.append(it.model_copy(update={"body": body}) if body is not None else it)
    return kept


async def process_deliveries(delivery_ids: list[int]) -> dict[str, Any]:
    """RQ job: process these deliveries on a connection of its own (a fresh event loop per job)."""
    conn = await connect(get_settings())
    try:
        return dict(await handle_deliveries(conn, delivery_ids))
    finally:
        await conn.close()
