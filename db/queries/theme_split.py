"""Split previews (kept in Postgres: any API process may apply one) and the stored vectors of a
theme's items that a split works on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
from numpy.typing import NDArray

from db.queries.curation import ThemeColumn

PREVIEW_TTL_S = 24 * 3600


@dataclass(frozen=True)
class ThemeVectors:
    item_ids: list[int]
    vectors: NDArray[np.float32]  # (n, d); items without a stored vector are left out
    texts: list[str]


async def select_theme_vectors(
    conn: asyncpg.Connection, *, theme_id: int | None = None, item_ids: Sequence[int] | None = None,
    column: ThemeColumn = "theme_id",
) -> ThemeVectors:  # fmt: skip
    """The newest stored vector and the cleaned text of each item of a theme (or of these items)."""
    where, arg = (
        (f"i.{column} = $1", theme_id)
        if theme_id is not None
        else ("i.item_id = ANY($1::bigint[])", list(item_ids or []))
    )
    rows = await conn.fetch(
        "SELECT DISTINCT ON (i.item_id) i.item_id, e.vector, coalesce(i.clean_text, i.body) AS text"
        f" FROM item i JOIN embedding e USING (item_id) WHERE {where} AND i.deleted_at IS NULL"
        " ORDER BY i.item_id, e.created_at DESC",
        arg,
    )
    if not rows:
        return ThemeVectors([], np.zeros((0, 0), dtype=np.float32), [])
    vectors = np.frombuffer(b"".join(r["vector"] for r in rows), dtype="<f4").reshape(len(rows), -1)
    return ThemeVectors([r["item_id"] for r in rows], vectors.astype(np.float32), [r["text"] for r in rows])


async def select_theme_item_count(conn: asyncpg.Connection, *, theme_id: int, column: ThemeColumn) -> int:
    count: int = await conn.fetchval(f"SELECT count(*) FROM item WHERE {column} = $1 AND deleted_at IS NULL", theme_id)
    return count


async def insert_split_preview(
    conn: asyncpg.Connection,
    *,
    theme_id: int,
    theme_version: int,
    api_key_id: int | None,
    groups: list[dict[str, Any]],
) -> int:
    """Store a preview; previews older than a day are dropped on the way."""
    await conn.execute(
        "DELETE FROM split_preview WHERE created_at < now() - make_interval(secs => $1)", float(PREVIEW_TTL_S)
    )
    preview_id: int = await conn.fetchval(
        "INSERT INTO split_preview (theme_id, theme_version, api_key_id, k, groups) VALUES ($1, $2, $3, $4, $5::jsonb)"
        " RETURNING preview_id",
        theme_id,
        theme_version,
        api_key_id,
        len(groups),
        json.dumps(groups),
    )
    return preview_id


@dataclass(frozen=True)
class StoredPreview:
    preview_id: int
    theme_id: int
    theme_version: int
    groups: list[dict[str, Any]]


async def select_split_preview(conn: asyncpg.Connection, *, preview_id: int) -> StoredPreview | None:
    row = await conn.fetchrow(
        "SELECT preview_id, theme_id, theme_version, groups FROM split_preview WHERE preview_id = $1", preview_id
    )
    if row is None:
        return None
    groups = json.loads(row["groups"]) if isinstance(row["groups"], str) else row["groups"]
    return StoredPreview(row["preview_id"], row["theme_id"], row["theme_version"], groups)


async def select_item_texts(conn: asyncpg.Connection, *, item_ids: Sequence[int]) -> dict[int, str]:
    rows = await conn.fetch(
        "SELECT item_id, coalesce(i.clean_text, i.body) AS text FROM item i WHERE item_id = ANY($1::bigint[])",
        list(item_ids),
    )
    return {r["item_id"]: r["text"] for r in rows}
