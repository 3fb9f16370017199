"""Item writes: upsert (single and COPY-staged bulk) with the status history, delete, erase.

Reads are in item_reads.py."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from db.queries.status import REFRESH_DERIVED, derive
from schemas.items import ItemCreate, normalise_status
from schemas.language import infer_language

# Columns written from an ItemCreate, in staging-table order.
_COLUMNS = (
    "source", "external_id", "kind", "title", "body", "created_at", "source_updated_at",
    "status", "status_raw", "first_response_at", "reopens_reported", "channel", "priority",
    "product", "tags", "requester_id", "votes", "url", "intent_hint", "payload_hash",
    "first_solved_at", "last_solved_at", "reopen_count",
    "csat", "customer_replies", "agent_replies", "assignee_changes", "language",
)  # fmt: skip
_STAGE_TYPES = (
    "text", "text", "text", "text", "text", "timestamptz", "timestamptz", "text", "text",
    "timestamptz", "integer", "text", "text", "text", "text[]", "text", "integer", "text",
    "text", "bytea", "timestamptz", "timestamptz", "integer",
    "smallint", "integer", "integer", "integer", "text",
)  # fmt: skip

# Satisfaction and effort often arrive apart from the ticket (a survey answer, a metrics body):
# a version that does not carry them keeps the stored values.
_KEPT = ("csat", "customer_replies", "agent_replies", "assignee_changes", "language")

# One upsert for both paths. An older version never overwrites a newer one: the stored row
# changes only when (updated_at, payload_hash) grows, so replays and reordered deliveries are
# no-ops and equal timestamps resolve the same way whatever the arrival order.
_UPSERT = f"""
INSERT INTO item AS i ({", ".join(_COLUMNS)})
SELECT {", ".join(_COLUMNS)} FROM {{source}}
ON CONFLICT (source, external_id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[2:] if c != "first_response_at" and c not in _KEPT)},
    {", ".join(f"{c} = coalesce(EXCLUDED.{c}, i.{c})" for c in _KEPT)},
    first_response_at = coalesce(least(i.first_response_at, EXCLUDED.first_response_at), i.first_response_at),
    deleted_at = NULL, changed_at = now(), pending = true, enqueued_at = NULL
WHERE (coalesce(EXCLUDED.source_updated_at, '-infinity'), EXCLUDED.payload_hash)
    > (coalesce(i.source_updated_at, '-infinity'), i.payload_hash)
RETURNING item_id, source, external_id, (xmax = 0) AS created
"""

# Emptied at every commit, and at the start of each use, so two bulk upserts in one transaction
# stay apart. A larger work_mem keeps the key-order sort of a big batch in memory.
_CREATE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS item_stage ("
    + ", ".join(f"{c} {t}" for c, t in zip(_COLUMNS, _STAGE_TYPES, strict=True))
    + ") ON COMMIT DELETE ROWS; TRUNCATE item_stage; SET LOCAL work_mem = '64MB'"
)

# The upsert plus the ids of the rows it left alone, in one round trip.
_UPSERT_ALL = f"""
WITH src AS (SELECT * FROM {{source}}),
up AS ({_UPSERT.replace("{source}", "src")})
SELECT item_id, source, external_id, created, true AS changed FROM up
UNION ALL
SELECT i.item_id, i.source, i.external_id, false, false FROM item i JOIN src USING (source, external_id)
WHERE NOT EXISTS (SELECT 1 FROM up WHERE up.source = i.source AND up.external_id = i.external_id)
"""

# NOTIFY is delivered at commit, so the relay never wakes for a row it cannot see yet.
_REFRESH_AND_NOTIFY = f"""
WITH refreshed AS ({REFRESH_DERIVED.strip()} RETURNING 1)
SELECT pg_notify('work_ready', '') FROM (SELECT count(*) FROM refreshed) AS done
"""


@dataclass(frozen=True)
class UpsertOutcome:
    item_id: int
    created: bool
    changed: bool


_TO_JSON = ItemCreate.__pydantic_serializer__.to_json


def payload_hash(item: ItemCreate) -> bytes:
    # pydantic serialises fields in declaration order: a stable canonical form, made in Rust. The
    # serializer's bytes are model_dump_json()'s, without its Python wrapper.
    return hashlib.sha256(_TO_JSON(item)).digest()


def item_row(item: ItemCreate) -> tuple[Any, ...]:
    """The row as stored, derived fields included: complete for a new item (see status.py)."""
    d = derive(item)
    return (
        item.source, item.external_id, item.kind, item.title, item.body, item.created_at,
        item.updated_at, d.status, d.status_raw, item.first_response_at,
        item.reopens, item.channel, item.priority, item.product, list(item.tags),
        item.requester_id, item.votes, item.url, item.intent, payload_hash(item),
        d.first_solved_at, d.last_solved_at, d.reopen_count,
        item.csat, item.customer_replies, item.agent_replies, item.assignee_changes,
        item.language or infer_language(item.body),
    )  # fmt: skip


def event_rows(item: ItemCreate) -> list[tuple[Any, ...]]:
    return [
        (
            e.at,
            normalise_status(e.from_status),
            normalise_status(e.to_status),
            e.from_status,
            e.to_status,
        )
        for e in item.status_events
    ]


_KEY_ORDER = 'source COLLATE "C", external_id COLLATE "C"'
_STAGED = f"(SELECT * FROM item_stage ORDER BY {_KEY_ORDER}) AS s"
_STAGED_NEWEST = (
    f"(SELECT DISTINCT ON ({_KEY_ORDER}) * FROM item_stage ORDER BY {_KEY_ORDER},"
    " source_updated_at DESC NULLS LAST, payload_hash DESC) AS s"
)
# Two pieces overlap Python and Postgres best: each extra statement costs Postgres more than the
# overlap saves (measured: 1,250-item pieces were slower than 2,500-item ones).
_SPLIT_FROM = 2_000


async def _stage_and_upsert(
    conn: asyncpg.Connection, items: Sequence[ItemCreate], *, repeats: bool
) -> list[asyncpg.Record]:
    """COPY into the staging table, then one INSERT ... SELECT per piece; returns the rows written.

    Rows go in key order, so two requests sharing keys lock them in the same order and never
    deadlock; repeats of one key in a batch keep the newest version (Python's string order is the
    "C" collation's byte order, so Postgres finds its input sorted). A big batch goes in two pieces
    split between keys: while Postgres writes the first, Python makes the rows of the second, and
    the two cores work at once. Only the rows written come back; the ids of the rest come from a
    lookup, so an import of new items pays nothing for replays it does not contain.
    """
    await conn.execute(_CREATE_STAGE)
    ordered = sorted(items, key=_key)
    pieces = _pieces(ordered, 2 if len(ordered) >= _SPLIT_FROM else 1)
    upsert = _UPSERT.format(source=_STAGED_NEWEST if repeats else _STAGED)
    written: list[asyncpg.Record] = []
    rows = [item_row(it) for it in pieces[0]]
    for following in [*pieces[1:], []]:
        await conn.copy_records_to_table("item_stage", records=rows, columns=_COLUMNS)
        writing = asyncio.ensure_future(conn.fetch(upsert))
        await asyncio.sleep(0)  # the statement leaves now; Postgres runs it while we go on
        try:
            rows = [item_row(it) for it in following]
        finally:
            written.extend(await writing)
        if following:
            await conn.execute("TRUNCATE item_stage")
    return written


def _key(item: ItemCreate) -> tuple[str, str]:
    return (item.source, item.external_id)


def _pieces(ordered: list[ItemCreate], count: int) -> list[list[ItemCreate]]:
    """`count` runs of about equal length, never splitting the versions of one key."""
    pieces, start = [], 0
    for n in range(1, count + 1):
        cut = len(ordered) * n // count
        while 0 < cut < len(ordered) and _key(ordered[cut]) == _key(ordered[cut - 1]):
            cut += 1
        if cut > start:
            pieces.append(ordered[start:cut])
            start = cut
    return pieces


async def upsert_items(conn: asyncpg.Connection, *, items: Sequence[ItemCreate]) -> list[UpsertOutcome]:
    """Upsert items and merge their status events; call inside a transaction.

    One row goes through a VALUES list; many go through COPY into a temporary staging table and
    INSERT ... SELECT (see _stage_and_upsert), so 5,000 items cost a handful of round trips. Within
    one batch the same (source, external_id) keeps its newest version.
    """
    if not items:
        return []
    seen = Counter(map(_key, items))
    if len(items) == 1:
        values = ", ".join(f"${n}::{t}" for n, t in enumerate(_STAGE_TYPES, start=1))
        source = f"(VALUES ({values})) AS v({', '.join(_COLUMNS)})"
        rows = await conn.fetch(_UPSERT_ALL.format(source=source), *item_row(items[0]))
    else:
        rows = await _stage_and_upsert(conn, items, repeats=len(seen) < len(items))

    # (source, external_id) -> (item_id, created, changed)
    found = {(r["source"], r["external_id"]): (r["item_id"], r["created"], r.get("changed", True)) for r in rows}
    keys = list(seen)
    missing = [k for k in keys if k not in found]
    if missing:
        # Rows the upsert left alone (an older or equal version), and rows a concurrent writer
        # committed after this statement's snapshot (ON CONFLICT saw them, a SELECT could not).
        for r in await conn.fetch(
            "SELECT item_id, source, external_id FROM item"
            " WHERE (source, external_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
            [k[0] for k in missing],
            [k[1] for k in missing],
        ):
            found[(r["source"], r["external_id"])] = (r["item_id"], False, False)
    ids = {key: item_id for key, (item_id, _, _) in found.items()}
    touched = {item_id for item_id, _, changed in found.values() if changed}
    # A row this statement created from a key seen once in the batch was written complete: its
    # stored history is exactly its own events. Every other touched row is refreshed from its
    # stored history below.
    fresh = {item_id for key, (item_id, created, _) in found.items() if created and seen[key] == 1}

    events = [(ids[_key(it)], *ev) for it in items for ev in event_rows(it)]
    if events:
        columns = list(zip(*events, strict=True))
        touched.update(
            r["item_id"]
            for r in await conn.fetch(
                "INSERT INTO status_event (item_id, at, from_status, to_status, from_status_raw, to_status_raw)"
                " SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[],"
                " $5::text[], $6::text[]) ON CONFLICT ON CONSTRAINT status_event_key DO NOTHING RETURNING item_id",
                *[list(c) for c in columns],
            )
        )
    # The first reply is the earliest one any delivery showed, whatever its version: webhooks
    # often carry only the reply they are about. A fresh row already holds its only one.
    replies = [(ids[_key(it)], it.first_response_at) for it in items if it.first_response_at]
    replies = [(item_id, at) for item_id, at in replies if item_id not in fresh]
    if replies:
        await conn.execute(
            "UPDATE item i SET first_response_at = r.at"
            " FROM (SELECT id, min(at) AS at FROM unnest($1::bigint[], $2::timestamptz[]) AS t(id, at) GROUP BY id) r"
            " WHERE i.item_id = r.id AND (i.first_response_at IS NULL OR r.at < i.first_response_at)",
            [r[0] for r in replies],
            [r[1] for r in replies],
        )
    stale = touched - fresh
    if stale:
        await conn.execute(_REFRESH_AND_NOTIFY, sorted(stale))
    elif touched:
        await conn.execute("SELECT pg_notify('work_ready', '')")

    return [UpsertOutcome(item_id=ids[k], created=bool(found[k][1]), changed=bool(found[k][2])) for k in keys]


async def update_items_csat(conn: asyncpg.Connection, *, ratings: Sequence[tuple[str, str, int]]) -> int:
    """Set CSAT on stored items from survey answers that arrive alone; unknown items are skipped."""
    status: str = await conn.execute(
        "UPDATE item i SET csat = r.csat, changed_at = now()"
        " FROM unnest($1::text[], $2::text[], $3::smallint[]) AS r(source, external_id, csat)"
        " WHERE i.source = r.source AND i.external_id = r.external_id AND i.csat IS DISTINCT FROM r.csat",
        [r[0] for r in ratings],
        [r[1] for r in ratings],
        [r[2] for r in ratings],
    )
    return int(status.split()[-1])


async def delete_item(conn: asyncpg.Connection, *, item_id: int) -> bool:
    """Erase the item with its text, events and embeddings (cascade)."""
    deleted = await conn.fetchval("DELETE FROM item WHERE item_id = $1 RETURNING item_id", item_id)
    return deleted is not None


async def select_bodies_for_update(
    conn: asyncpg.Connection, *, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """The stored body of each of these items that exists, its row locked until commit."""
    rows = await conn.fetch(
        "SELECT source, external_id, body FROM item"
        " WHERE (source, external_id) IN (SELECT * FROM unnest($1::text[], $2::text[])) FOR UPDATE",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["source"], r["external_id"]): r["body"] for r in rows}


async def mark_items_deleted(conn: asyncpg.Connection, *, keys: Sequence[tuple[str, str]]) -> int:
    """A source deleted these items: hide them (kept for a recovery that may follow)."""
    if not keys:
        return 0
    result: str = await conn.execute(
        "UPDATE item SET deleted_at = now(), theme_id = NULL, feature_theme_id = NULL"
        " WHERE deleted_at IS NULL AND (source, external_id) IN"
        " (SELECT * FROM unnest($1::text[], $2::text[]))",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return int(result.split()[-1])


async def delete_requester_items(conn: asyncpg.Connection, *, requester_id: str, source: str | None) -> int:
    """Erase every item of one requester (right to erasure), with events and embeddings."""
    status: str = await conn.execute(
        "DELETE FROM item WHERE requester_id = $1 AND ($2::text IS NULL OR source = $2)", requester_id, source
    )
    return int(status.split()[-1])
