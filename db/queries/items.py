"""Item statements: upsert (single and COPY-staged bulk), status history, reads, erase."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from schemas.items import Item, ItemCreate, StatusEvent, normalise_status

# Columns written from an ItemCreate, in staging-table order.
_COLUMNS = (
    "source", "external_id", "kind", "title", "body", "created_at", "source_updated_at",
    "status", "status_raw", "first_response_at", "reopens_reported", "channel", "priority",
    "product", "tags", "requester_id", "votes", "url", "intent_hint", "payload_hash",
)  # fmt: skip
_STAGE_TYPES = (
    "text", "text", "text", "text", "text", "timestamptz", "timestamptz", "text", "text",
    "timestamptz", "integer", "text", "text", "text", "text[]", "text", "integer", "text",
    "text", "bytea",
)  # fmt: skip

# One upsert for both paths. An older version never overwrites a newer one: the stored row
# changes only when (updated_at, payload_hash) grows, so replays and reordered deliveries are
# no-ops and equal timestamps resolve the same way whatever the arrival order.
_UPSERT = f"""
INSERT INTO item AS i ({", ".join(_COLUMNS)})
SELECT {", ".join(_COLUMNS)} FROM {{source}}
ON CONFLICT (source, external_id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[2:] if c != "first_response_at")},
    first_response_at = coalesce(least(i.first_response_at, EXCLUDED.first_response_at), i.first_response_at),
    deleted_at = NULL, changed_at = now(), pending = true, enqueued_at = NULL
WHERE (coalesce(EXCLUDED.source_updated_at, '-infinity'), EXCLUDED.payload_hash)
    > (coalesce(i.source_updated_at, '-infinity'), i.payload_hash)
RETURNING item_id, source, external_id, (xmax = 0) AS created
"""

# The upsert plus the ids of the rows it left alone, in one round trip.
_UPSERT_ALL = f"""
WITH src AS (SELECT * FROM {{source}}),
up AS ({_UPSERT.replace("{source}", "src")})
SELECT item_id, source, external_id, created, true AS changed FROM up
UNION ALL
SELECT i.item_id, i.source, i.external_id, false, false FROM item i JOIN src USING (source, external_id)
WHERE NOT EXISTS (SELECT 1 FROM up WHERE up.source = i.source AND up.external_id = i.external_id)
"""

_REFRESH_DERIVED = """
WITH ev AS (
    SELECT item_id, at, to_status, to_status_raw,
           coalesce(from_status, lag(to_status) OVER w) AS prev
    FROM status_event WHERE item_id = ANY($1::bigint[])
    WINDOW w AS (PARTITION BY item_id ORDER BY at, to_status_raw)
), agg AS (
    SELECT item_id,
           min(at) FILTER (WHERE to_status IN ('solved', 'closed')
                           AND (prev IS NULL OR prev NOT IN ('solved', 'closed'))) AS first_solved,
           max(at) FILTER (WHERE to_status IN ('solved', 'closed')
                           AND (prev IS NULL OR prev NOT IN ('solved', 'closed'))) AS last_solved,
           count(*) FILTER (WHERE prev IN ('solved', 'closed')
                            AND to_status IN ('new', 'open', 'pending', 'on_hold')) AS reopens,
           (array_agg(to_status ORDER BY at DESC, to_status_raw DESC))[1] AS latest_status,
           (array_agg(to_status_raw ORDER BY at DESC, to_status_raw DESC))[1] AS latest_raw,
           max(at) AS latest_at
    FROM ev GROUP BY item_id
),
calc AS (
    SELECT ids.item_id,
           CASE WHEN agg.item_id IS NOT NULL THEN agg.first_solved
                WHEN i.status IN ('solved', 'closed') THEN i.source_updated_at END AS first_solved_at,
           CASE WHEN agg.item_id IS NOT NULL THEN agg.last_solved
                WHEN i.status IN ('solved', 'closed') THEN i.source_updated_at END AS last_solved_at,
           CASE WHEN agg.item_id IS NOT NULL THEN agg.reopens
                ELSE coalesce(i.reopens_reported, 0) END AS reopen_count,
           CASE WHEN agg.latest_status IS NOT NULL AND agg.latest_at >= coalesce(i.source_updated_at, '-infinity')
                THEN agg.latest_status ELSE i.status END AS status,
           CASE WHEN agg.latest_status IS NOT NULL AND agg.latest_at >= coalesce(i.source_updated_at, '-infinity')
                THEN agg.latest_raw ELSE i.status_raw END AS status_raw
    FROM (SELECT unnest($1::bigint[]) AS item_id) ids
    JOIN item i ON i.item_id = ids.item_id
    LEFT JOIN agg ON agg.item_id = ids.item_id
)
-- Only rows whose derived values change are written: every write touches all of item's indexes.
UPDATE item i SET first_solved_at = c.first_solved_at, last_solved_at = c.last_solved_at,
    reopen_count = c.reopen_count, status = c.status, status_raw = c.status_raw
FROM calc c
WHERE i.item_id = c.item_id
  AND (i.first_solved_at, i.last_solved_at, i.reopen_count, i.status, i.status_raw)
      IS DISTINCT FROM (c.first_solved_at, c.last_solved_at, c.reopen_count, c.status, c.status_raw)
"""

# NOTIFY is delivered at commit, so the relay never wakes for a row it cannot see yet.
_REFRESH_AND_NOTIFY = f"""
WITH refreshed AS ({_REFRESH_DERIVED.strip()} RETURNING 1)
SELECT pg_notify('work_ready', '') FROM (SELECT count(*) FROM refreshed) AS done
"""


@dataclass(frozen=True)
class UpsertOutcome:
    item_id: int
    created: bool
    changed: bool


def payload_hash(item: ItemCreate) -> bytes:
    # pydantic serialises fields in declaration order: a stable canonical form, made in Rust.
    return hashlib.sha256(item.model_dump_json().encode()).digest()


def item_row(item: ItemCreate) -> tuple[Any, ...]:
    status_raw = item.status
    return (
        item.source, item.external_id, item.kind, item.title, item.body, item.created_at,
        item.updated_at, normalise_status(status_raw), status_raw, item.first_response_at,
        item.reopens, item.channel, item.priority, item.product, list(item.tags),
        item.requester_id, item.votes, item.url, item.intent, payload_hash(item),
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


async def upsert_items(conn: asyncpg.Connection, *, items: Sequence[ItemCreate]) -> list[UpsertOutcome]:
    """Upsert items and merge their status events; call inside a transaction.

    One row goes through a VALUES list; many go through COPY into a temporary staging table and
    one INSERT ... SELECT, so 5,000 items cost a handful of round trips. Within one batch the same
    (source, external_id) keeps its newest version.
    """
    if not items:
        return []
    if len(items) == 1:
        values = ", ".join(f"${n}::{t}" for n, t in enumerate(_STAGE_TYPES, start=1))
        source = f"(VALUES ({values})) AS v({', '.join(_COLUMNS)})"
        rows = await conn.fetch(_UPSERT_ALL.format(source=source), *item_row(items[0]))
    else:
        await conn.execute(
            "CREATE TEMP TABLE item_stage ("
            + ", ".join(f"{c} {t}" for c, t in zip(_COLUMNS, _STAGE_TYPES, strict=True))
            + ") ON COMMIT DROP"
        )
        await conn.copy_records_to_table("item_stage", records=[item_row(it) for it in items], columns=_COLUMNS)
        source = (
            "(SELECT DISTINCT ON (source, external_id) * FROM item_stage ORDER BY source, external_id,"
            " source_updated_at DESC NULLS LAST, payload_hash DESC) AS s"
        )
        rows = await conn.fetch(_UPSERT_ALL.format(source=source))
        await conn.execute("DROP TABLE item_stage")

    found = {(r["source"], r["external_id"]): r for r in rows}
    keys = list(dict.fromkeys((it.source, it.external_id) for it in items))
    missing = [k for k in keys if k not in found]
    if missing:
        # Committed by a concurrent writer after this statement's snapshot: ON CONFLICT saw it, the
        # SELECT half of the statement could not. One more look finds it.
        for r in await conn.fetch(
            "SELECT item_id, source, external_id, false AS created, false AS changed FROM item"
            " WHERE (source, external_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
            [k[0] for k in missing],
            [k[1] for k in missing],
        ):
            found[(r["source"], r["external_id"])] = r
    ids = {key: row["item_id"] for key, row in found.items()}
    touched = {row["item_id"] for row in found.values() if row["changed"]}

    events = [(ids[(it.source, it.external_id)], *ev) for it in items for ev in event_rows(it)]
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
    # often carry only the reply they are about.
    replies = [(ids[(it.source, it.external_id)], it.first_response_at) for it in items if it.first_response_at]
    if replies:
        await conn.execute(
            "UPDATE item i SET first_response_at = r.at"
            " FROM (SELECT id, min(at) AS at FROM unnest($1::bigint[], $2::timestamptz[]) AS t(id, at) GROUP BY id) r"
            " WHERE i.item_id = r.id AND (i.first_response_at IS NULL OR r.at < i.first_response_at)",
            [r[0] for r in replies],
            [r[1] for r in replies],
        )
    if touched:
        await conn.execute(_REFRESH_AND_NOTIFY, sorted(touched))

    return [
        UpsertOutcome(item_id=ids[k], created=bool(found[k]["created"]), changed=bool(found[k]["changed"]))
        for k in keys
    ]


_ITEM_COLUMNS = """
    item_id, source, external_id, kind, title, body, created_at, source_updated_at AS updated_at,
    status, status_raw, first_response_at, first_solved_at, last_solved_at, reopen_count, channel,
    priority, product, tags, requester_id, votes, url, embedded_at, theme_id, feature_theme_id,
    intent, intent_confidence, intent_source, ingested_at
"""


async def _events_for(conn: asyncpg.Connection, item_ids: list[int]) -> dict[int, list[StatusEvent]]:
    rows = await conn.fetch(
        "SELECT item_id, at, from_status, to_status, from_status_raw, to_status_raw FROM status_event"
        " WHERE item_id = ANY($1::bigint[]) ORDER BY item_id, at, to_status_raw",
        item_ids,
    )
    events: dict[int, list[StatusEvent]] = {}
    for r in rows:
        events.setdefault(r["item_id"], []).append(
            StatusEvent(
                at=r["at"],
                from_status=r["from_status"],
                to_status=r["to_status"] or r["to_status_raw"],
                from_status_raw=r["from_status_raw"],
                to_status_raw=r["to_status_raw"],
            )
        )
    return events


def _to_items(rows: list[asyncpg.Record], events: dict[int, list[StatusEvent]]) -> list[Item]:
    return [Item(**dict(r), status_events=events.get(r["item_id"], [])) for r in rows]


async def select_item(conn: asyncpg.Connection, *, item_id: int) -> Item | None:
    row = await conn.fetchrow(f"SELECT {_ITEM_COLUMNS} FROM item WHERE item_id = $1 AND deleted_at IS NULL", item_id)
    if row is None:
        return None
    return _to_items([row], await _events_for(conn, [item_id]))[0]


@dataclass(frozen=True)
class ItemFilter:
    source: str | None = None
    kind: str | None = None
    theme_id: int | None = None
    unassigned: bool = False
    intent: str | None = None
    status: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


def filter_clauses(filters: ItemFilter, *, after_id: int, alias: str = "") -> tuple[list[str], list[Any]]:
    """WHERE clauses and their arguments for the item list filters, after `after_id` (keyset)."""
    a = f"{alias}." if alias else ""
    clauses = [f"{a}deleted_at IS NULL", f"{a}item_id > $1"]
    args: list[Any] = [after_id]

    def add(sql: str, value: Any) -> None:
        args.append(value)
        clauses.append(sql.format(a=a, n=len(args)))

    if filters.source is not None:
        add("{a}source = ${n}", filters.source)
    if filters.kind is not None:
        add("{a}kind = ${n}", filters.kind)
    if filters.unassigned:
        clauses.append(f"{a}theme_id IS NULL")
    elif filters.theme_id is not None:
        add("({a}theme_id = ${n} OR {a}feature_theme_id = ${n})", filters.theme_id)
    if filters.intent is not None:
        add("{a}intent = ${n}", filters.intent)
    if filters.status is not None:
        add("{a}status = ${n}", filters.status)
    if filters.created_from is not None:
        add("{a}created_at >= ${n}", filters.created_from)
    if filters.created_to is not None:
        add("{a}created_at < ${n}", filters.created_to)
    return clauses, args


async def select_items(conn: asyncpg.Connection, *, filters: ItemFilter, after_id: int, limit: int) -> list[Item]:
    """Items in id order after `after_id` (keyset pagination), at most `limit`."""
    clauses, args = filter_clauses(filters, after_id=after_id)
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {_ITEM_COLUMNS} FROM item WHERE {' AND '.join(clauses)} ORDER BY item_id LIMIT ${len(args)}",
        *args,
    )
    return _to_items(rows, await _events_for(conn, [r["item_id"] for r in rows]))


async def delete_item(conn: asyncpg.Connection, *, item_id: int) -> bool:
    """Erase the item with its text, events and embeddings (cascade)."""
    deleted = await conn.fetchval("DELETE FROM item WHERE item_id = $1 RETURNING item_id", item_id)
    return deleted is not None


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
