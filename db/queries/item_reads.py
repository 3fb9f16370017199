"""Item reads: one item, and the filtered, keyset-paginated list (also the CSV export's filters).

Every read takes `pii`: whether the key may see e-mail addresses and phone numbers. Without it the
item's text comes back through `mask_contacts` (spec/api.md, "Additions of 2026-12"); card
numbers, IBANs and tokens were masked before the item was stored and are not here to unmask.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from clustering.redact import mask_contacts
from schemas.items import Item, StatusEvent

_ITEM_COLUMNS = """
    item_id, source, external_id, kind, title, body, created_at, source_updated_at AS updated_at,
    status, status_raw, first_response_at, first_solved_at, last_solved_at, reopen_count, channel,
    priority, product, tags, requester_id, votes, url, embedded_at, theme_id, feature_theme_id,
    intent, intent_confidence, intent_source, ingested_at, csat, customer_replies, agent_replies,
    assignee_changes, language
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


# The free-text fields a person may have written an address or a number into.
_TEXT_FIELDS = ("title", "body", "url", "requester_id")


def mask_contacts_of(data: dict[str, Any]) -> dict[str, Any]:
    """An item's fields as a key without `pii` sees them (every place that serves item text)."""
    for name in _TEXT_FIELDS:
        if isinstance(data.get(name), str):
            data[name] = mask_contacts(data[name])
    if data.get("tags"):
        data["tags"] = [mask_contacts(t) for t in data["tags"]]
    return data


def _to_items(rows: list[asyncpg.Record], events: dict[int, list[StatusEvent]], *, pii: bool) -> list[Item]:
    items = []
    for r in rows:
        data = dict(r) if pii else mask_contacts_of(dict(r))
        items.append(Item(**data, status_events=events.get(r["item_id"], [])))
    return items


async def select_item(conn: asyncpg.Connection, *, item_id: int, pii: bool) -> Item | None:
    row = await conn.fetchrow(f"SELECT {_ITEM_COLUMNS} FROM item WHERE item_id = $1 AND deleted_at IS NULL", item_id)
    if row is None:
        return None
    return _to_items([row], await _events_for(conn, [item_id]), pii=pii)[0]


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


async def select_items(
    conn: asyncpg.Connection, *, filters: ItemFilter, after_id: int, limit: int, pii: bool
) -> list[Item]:
    """Items in id order after `after_id` (keyset pagination), at most `limit`."""
    clauses, args = filter_clauses(filters, after_id=after_id)
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {_ITEM_COLUMNS} FROM item WHERE {' AND '.join(clauses)} ORDER BY item_id LIMIT ${len(args)}",
        *args,
    )
    return _to_items(rows, await _events_for(conn, [r["item_id"] for r in rows]), pii=pii)
