"""Curation statements: locked theme rows, item assignments, pins, and the audit of changes.

The undo data every change records is a snapshot of what it overwrites (see `Snapshot`): the
touched themes' curated fields, the touched items' theme column, and the pins it replaced.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from schemas.curation import CuratedTheme, CurationChange

ThemeColumn = Literal["theme_id", "feature_theme_id"]

_THEME = """theme_id, scope, label, label_pinned, hidden, parent_id, parent_pinned, level, origin, status,
    is_current, size, version"""
# What a change may overwrite on a theme, and an undo puts back.
RESTORED = (
    "label", "label_pinned", "hidden", "parent_id", "parent_pinned", "status", "is_current", "merged_into",
    "split_into", "keywords", "representative_item_ids",
)  # fmt: skip


def column_for(scope: str) -> ThemeColumn:
    return "feature_theme_id" if scope == "feature" else "theme_id"


@dataclass(frozen=True)
class LockedTheme:
    theme: CuratedTheme
    saved: dict[str, Any]  # the RESTORED fields and the centroid (hex), as the undo keeps them
    centroid: bytes | None


async def lock_themes(conn: asyncpg.Connection, *, theme_ids: Sequence[int]) -> dict[int, LockedTheme]:
    """Lock the rows in id order without waiting: a concurrent curation of the same theme raises
    LockNotAvailableError (the route's 409) instead of queueing behind it."""
    rows = await conn.fetch(
        f"SELECT {_THEME}, merged_into, split_into, keywords, representative_item_ids, centroid FROM theme"
        " WHERE theme_id = ANY($1::bigint[]) ORDER BY theme_id FOR UPDATE NOWAIT",
        sorted(set(theme_ids)),
    )
    locked = {}
    for r in rows:
        saved = {name: r[name] for name in RESTORED}
        saved["centroid"] = r["centroid"].hex() if r["centroid"] is not None else None
        theme = CuratedTheme(**{k: r[k] for k in CuratedTheme.model_fields})
        locked[r["theme_id"]] = LockedTheme(theme=theme, saved=saved, centroid=r["centroid"])
    return locked


async def select_curated_theme(conn: asyncpg.Connection, *, theme_id: int) -> CuratedTheme | None:
    row = await conn.fetchrow(f"SELECT {_THEME} FROM theme WHERE theme_id = $1", theme_id)
    return CuratedTheme(**dict(row)) if row else None


async def select_curated_themes(conn: asyncpg.Connection, *, theme_ids: Sequence[int]) -> list[CuratedTheme]:
    rows = await conn.fetch(
        f"SELECT {_THEME} FROM theme WHERE theme_id = ANY($1::bigint[]) ORDER BY theme_id", list(theme_ids)
    )
    return [CuratedTheme(**dict(r)) for r in rows]


async def update_theme_curated(conn: asyncpg.Connection, *, theme_id: int, fields: dict[str, Any]) -> None:
    """Set curated fields (names from RESTORED, plus size and centroid) on one theme."""
    allowed = {*RESTORED, "size", "centroid"}
    if not fields or not set(fields) <= allowed:
        raise ValueError(f"Not curated fields: {sorted(set(fields) - allowed)}")
    names = sorted(fields)
    assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(names, start=2))
    await conn.execute(
        f"UPDATE theme SET {assignments}, updated_at = now() WHERE theme_id = $1",
        theme_id,
        *[fields[name] for name in names],
    )


async def update_theme_versions(conn: asyncpg.Connection, *, theme_ids: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE theme SET version = version + 1 WHERE theme_id = ANY($1::bigint[])", sorted(set(theme_ids))
    )


async def update_theme_sizes(conn: asyncpg.Connection, *, theme_ids: Sequence[int], column: ThemeColumn) -> None:
    """Sizes from the items themselves; a retired theme holds none."""
    await conn.execute(
        f"UPDATE theme t SET size = CASE WHEN t.is_current THEN (SELECT count(*) FROM item i"
        f" WHERE i.{column} = t.theme_id AND i.deleted_at IS NULL) ELSE 0 END"
        " WHERE t.theme_id = ANY($1::bigint[])",
        sorted(set(theme_ids)),
    )


async def insert_theme(
    conn: asyncpg.Connection,
    *,
    scope: str,
    label: str,
    keywords: list[str],
    origin: str,
    label_pinned: bool,
    parent_id: int | None,
    centroid: bytes | None,
    representative_item_ids: list[int],
    description: str | None = None,
    seed_threshold: float | None = None,
) -> int:
    theme_id: int = await conn.fetchval(
        "INSERT INTO theme (scope, label, keywords, status, origin, label_pinned, parent_id, centroid,"
        " representative_item_ids, description, seed_threshold, level, version)"
        " VALUES ($1, $2, $3, 'emerging', $4, $5, $6, $7, $8, $9, $10, 'leaf', 1) RETURNING theme_id",
        scope, label, keywords, origin, label_pinned, parent_id, centroid, representative_item_ids,
        description, seed_threshold,
    )  # fmt: skip
    return theme_id


async def update_theme_seen(conn: asyncpg.Connection, *, theme_ids: Sequence[int], column: ThemeColumn) -> None:
    """first_seen_at / last_seen_at of new themes, from their items."""
    await conn.execute(
        f"UPDATE theme t SET first_seen_at = s.first, last_seen_at = s.last FROM"
        f" (SELECT {column} AS theme_id, min(created_at) AS first, max(created_at) AS last FROM item"
        f"  WHERE {column} = ANY($1::bigint[]) AND deleted_at IS NULL GROUP BY 1) s WHERE t.theme_id = s.theme_id",
        list(theme_ids),
    )


@dataclass(frozen=True)
class ItemRow:
    item_id: int
    theme_id: int | None  # in the column of the scope asked for
    intent: str | None


async def select_items_for_curation(
    conn: asyncpg.Connection, *, item_ids: Sequence[int], column: ThemeColumn
) -> dict[int, ItemRow]:
    """The live items among these ids (missing or deleted ones are left out)."""
    rows = await conn.fetch(
        f"SELECT item_id, {column} AS theme_id, intent FROM item"
        " WHERE item_id = ANY($1::bigint[]) AND deleted_at IS NULL",
        list(item_ids),
    )
    return {r["item_id"]: ItemRow(r["item_id"], r["theme_id"], r["intent"]) for r in rows}


async def select_member_ids(
    conn: asyncpg.Connection, *, theme_ids: Sequence[int], column: ThemeColumn, scope: str
) -> dict[int, int | None]:
    """Items in these themes, and items pinned to them: {item_id: its current theme}."""
    rows = await conn.fetch(
        f"SELECT item_id, {column} AS theme_id FROM item WHERE {column} = ANY($1::bigint[]) AND deleted_at IS NULL"
        f" UNION SELECT i.item_id, i.{column} FROM theme_pin p JOIN item i USING (item_id)"
        "  WHERE p.theme_id = ANY($1::bigint[]) AND p.scope = $2 AND i.deleted_at IS NULL",
        list(theme_ids),
        scope,
    )
    return {r["item_id"]: r["theme_id"] for r in rows}


async def update_items_theme(
    conn: asyncpg.Connection, *, item_ids: Sequence[int], theme_ids: Sequence[int | None], column: ThemeColumn
) -> None:
    """Item i gets theme_ids[i] (None: unassigned)."""
    await conn.execute(
        f"UPDATE item i SET {column} = t.theme_id FROM unnest($1::bigint[], $2::bigint[]) AS t(item_id, theme_id)"
        f" WHERE i.item_id = t.item_id AND i.{column} IS DISTINCT FROM t.theme_id",
        list(item_ids),
        list(theme_ids),
    )


async def update_items_leaving(
    conn: asyncpg.Connection, *, theme_ids: Sequence[int], to_theme_id: int | None, column: ThemeColumn
) -> None:
    """Every item still in these themes goes to another (None: unassigned)."""
    await conn.execute(
        f"UPDATE item SET {column} = $2 WHERE {column} = ANY($1::bigint[])", list(theme_ids), to_theme_id
    )


async def select_pins(conn: asyncpg.Connection, *, item_ids: Sequence[int], scope: str) -> list[tuple[int, int, int]]:
    """(item_id, theme_id, change_id) of the pins these items have in this scope."""
    rows = await conn.fetch(
        "SELECT item_id, theme_id, change_id FROM theme_pin WHERE item_id = ANY($1::bigint[]) AND scope = $2"
        " ORDER BY item_id",
        list(item_ids),
        scope,
    )
    return [(r["item_id"], r["theme_id"], r["change_id"]) for r in rows]


async def upsert_pins(
    conn: asyncpg.Connection,
    *,
    item_ids: Sequence[int],
    theme_ids: Sequence[int],
    change_ids: Sequence[int],
    scope: str,
) -> None:
    await conn.execute(
        "INSERT INTO theme_pin (item_id, scope, theme_id, change_id)"
        " SELECT item_id, $4, theme_id, change_id FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])"
        "   AS t(item_id, theme_id, change_id)"
        " ON CONFLICT (item_id, scope) DO UPDATE SET theme_id = excluded.theme_id, change_id = excluded.change_id",
        list(item_ids), list(theme_ids), list(change_ids), scope,
    )  # fmt: skip


async def update_items_pinned(
    conn: asyncpg.Connection,
    *,
    item_ids: Sequence[int],
    theme_ids: Sequence[int],
    change_id: int,
    scope: str,
    column: ThemeColumn,
) -> None:
    """Item i goes to theme_ids[i] and is pinned there by this change, in one round trip (items
    already there are not rewritten)."""
    await conn.execute(
        "WITH t AS (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS t(item_id, theme_id)),"
        f" moved AS (UPDATE item i SET {column} = t.theme_id FROM t"
        f"  WHERE i.item_id = t.item_id AND i.{column} IS DISTINCT FROM t.theme_id)"
        " INSERT INTO theme_pin (item_id, scope, theme_id, change_id) SELECT item_id, $3, theme_id, $4 FROM t"
        " ON CONFLICT (item_id, scope) DO UPDATE SET theme_id = excluded.theme_id, change_id = excluded.change_id",
        list(item_ids), list(theme_ids), scope, change_id,
    )  # fmt: skip


async def delete_pins_of_change(conn: asyncpg.Connection, *, change_id: int) -> None:
    await conn.execute("DELETE FROM theme_pin WHERE change_id = $1", change_id)


async def insert_change(
    conn: asyncpg.Connection,
    *,
    action: str,
    api_key_id: int | None,
    theme_ids: Sequence[int],
    item_ids: Sequence[int],
    detail: dict[str, Any],
    undo: dict[str, Any],
) -> int:
    change_id: int = await conn.fetchval(
        "INSERT INTO curation_change (action, api_key_id, theme_ids, item_ids, detail, undo)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb) RETURNING change_id",
        action, api_key_id, sorted(set(theme_ids)), sorted(set(item_ids)), json.dumps(detail), json.dumps(undo),
    )  # fmt: skip
    return change_id


async def update_change_themes(conn: asyncpg.Connection, *, change_id: int, theme_ids: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE curation_change SET theme_ids = $2 WHERE change_id = $1", change_id, sorted(set(theme_ids))
    )


@dataclass(frozen=True)
class StoredChange:
    change_id: int
    action: str
    theme_ids: list[int]
    item_ids: list[int]
    detail: dict[str, Any]
    undo: dict[str, Any]
    undone: bool


async def lock_change(conn: asyncpg.Connection, *, change_id: int) -> StoredChange | None:
    row = await conn.fetchrow(
        "SELECT change_id, action, theme_ids, item_ids, detail, undo, undone_at IS NOT NULL AS undone"
        " FROM curation_change WHERE change_id = $1 FOR UPDATE NOWAIT",
        change_id,
    )
    if row is None:
        return None
    data = dict(row)
    for name in ("detail", "undo"):
        data[name] = json.loads(data[name]) if isinstance(data[name], str) else data[name]
    return StoredChange(**data)


async def update_change_undo(
    conn: asyncpg.Connection, *, change_id: int, undo: dict[str, Any], item_ids: Sequence[int]
) -> None:
    await conn.execute(
        "UPDATE curation_change SET undo = $2::jsonb, item_ids = $3 WHERE change_id = $1",
        change_id,
        json.dumps(undo),
        sorted(set(item_ids)),
    )


async def select_dependent_change(conn: asyncpg.Connection, *, change: StoredChange) -> int | None:
    """A later change, not undone, that touches the same themes or items: undoing `change` first
    would pull the ground from under it."""
    found: int | None = await conn.fetchval(
        "SELECT change_id FROM curation_change WHERE change_id > $1 AND undone_at IS NULL AND action <> 'undo'"
        " AND (theme_ids && $2::bigint[] OR item_ids && $3::bigint[]) ORDER BY change_id LIMIT 1",
        change.change_id,
        change.theme_ids,
        change.item_ids,
    )
    return found


async def update_change_undone(conn: asyncpg.Connection, *, change_id: int) -> None:
    await conn.execute("UPDATE curation_change SET undone_at = now() WHERE change_id = $1", change_id)


async def update_item_intent(
    conn: asyncpg.Connection, *, item_id: int, intent: str | None, confidence: float | None, source: str | None
) -> None:
    await conn.execute(
        "UPDATE item SET intent = $2, intent_confidence = $3, intent_source = $4 WHERE item_id = $1",
        item_id,
        intent,
        confidence,
        source,
    )


async def select_theme_history(
    conn: asyncpg.Connection, *, theme_id: int, before_id: int | None, limit: int
) -> list[CurationChange]:
    rows = await conn.fetch(
        "SELECT change_id, at, api_key_id AS key_id, action, detail, theme_ids, undone_at FROM curation_change"
        " WHERE theme_ids @> ARRAY[$1]::bigint[] AND ($2::bigint IS NULL OR change_id < $2)"
        " ORDER BY change_id DESC LIMIT $3",
        theme_id,
        before_id,
        limit,
    )
    result = []
    for r in rows:
        data = dict(r)
        data["detail"] = json.loads(data["detail"]) if isinstance(data["detail"], str) else data["detail"]
        result.append(CurationChange(**data))
    return result


async def select_current_leaf_themes(conn: asyncpg.Connection, *, limit: int) -> list[CuratedTheme]:
    """Current leaf themes, hidden ones included, largest first (the dashboard's curation lists)."""
    rows = await conn.fetch(
        f"SELECT {_THEME} FROM theme WHERE is_current AND level = 'leaf' ORDER BY scope, size DESC, theme_id LIMIT $1",
        limit,
    )
    return [CuratedTheme(**dict(r)) for r in rows]


# Curation changes and a clustering run's write exclude each other: every curation transaction
# holds this advisory lock shared from its first statement, a run takes it exclusively to read its
# mark (the last change id) and again to write its result. So a change that commits while the run
# computes has a larger id than the mark, and the write sees it (workers/themes.py re-plans).
CURATION_LOCK = 7_301_015


async def lock_curation_shared(conn: asyncpg.Connection, *, timeout_s: float) -> bool:
    """Take the curation lock shared for this transaction; False when a clustering run held it
    for `timeout_s` (it writes its result, or re-plans holding it)."""
    if await conn.fetchval("SELECT pg_try_advisory_xact_lock_shared($1)", CURATION_LOCK):
        return True
    await conn.execute(f"SET LOCAL lock_timeout = '{int(timeout_s * 1000)}ms'")
    try:
        async with conn.transaction():  # a savepoint: the timeout must not abort the caller's transaction
            await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", CURATION_LOCK)
    except asyncpg.exceptions.LockNotAvailableError:
        return False
    finally:
        await conn.execute("SET LOCAL lock_timeout = DEFAULT")
    return True


async def lock_curation(conn: asyncpg.Connection) -> None:
    """A run's side, for this transaction: waits out the curation transactions in flight."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", CURATION_LOCK)


async def lock_curation_session(conn: asyncpg.Connection) -> None:
    """A run's side, until unlock_curation_session: curation calls wait, then get 409."""
    await conn.execute("SELECT pg_advisory_lock($1)", CURATION_LOCK)


async def unlock_curation_session(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", CURATION_LOCK)


async def select_last_change_id(conn: asyncpg.Connection) -> int:
    """The mark of a run's read; take it under lock_curation."""
    last: int = await conn.fetchval("SELECT coalesce(max(change_id), 0) FROM curation_change")
    return last


async def select_changes_since(conn: asyncpg.Connection, *, after_id: int, scope: str) -> list[int]:
    """Changes after the mark that touch a theme of the scope (intent corrections touch none: a
    run's write keeps feature themes to feature requests by itself)."""
    rows = await conn.fetch(
        "SELECT c.change_id FROM curation_change c WHERE c.change_id > $1 AND EXISTS"
        " (SELECT 1 FROM theme t WHERE t.theme_id = ANY(c.theme_ids) AND t.scope = $2) ORDER BY c.change_id",
        after_id,
        scope,
    )
    return [r["change_id"] for r in rows]
