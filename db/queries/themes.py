"""Theme statements: the clustering job's input and output, and the theme reads of the API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import numpy as np
from numpy.typing import NDArray

from schemas.themes import Theme, ThemeBrief, ThemeDetail, WeekVolume

if TYPE_CHECKING:
    from clustering.themes import CurrentTheme

_COLUMNS = """theme_id, scope, label, keywords, size, status, is_current, first_seen_at, last_seen_at,
    representative_item_ids, merged_into, split_into, parent_id, level, label_pinned, hidden, origin"""


@dataclass(frozen=True)
class ClusteringInput:
    item_ids: NDArray[np.int64]
    vectors: NDArray[np.float32]
    texts: list[str]
    created_at: list[datetime]
    theme_ids: list[int | None]  # the assignment before this run
    content_hashes: list[bytes]


async def select_clustering_input(
    conn: asyncpg.Connection, *, scope: str, model_version: str, window_days: int | None
) -> ClusteringInput:
    theme_column = "theme_id" if scope == "all" else "feature_theme_id"
    rows = await conn.fetch(
        f"SELECT i.item_id, e.vector, e.content_hash, coalesce(i.clean_text, '') AS text, i.created_at,"
        f" i.{theme_column} AS theme_id"
        " FROM embedding e JOIN item i USING (item_id)"
        " WHERE e.model_version = $1 AND i.deleted_at IS NULL"
        " AND ($2 = 'all' OR i.intent = 'feature_request')"
        " AND ($3::integer IS NULL OR i.created_at >= now() - make_interval(days => $3))"
        " ORDER BY i.item_id",
        model_version,
        scope,
        window_days,
    )
    dim = len(rows[0]["vector"]) // 4 if rows else 0
    vectors = np.empty((len(rows), dim), dtype=np.float32)
    for n, r in enumerate(rows):
        vectors[n] = np.frombuffer(r["vector"], dtype="<f4")
    return ClusteringInput(
        item_ids=np.array([r["item_id"] for r in rows], dtype=np.int64),
        vectors=vectors,
        texts=[r["text"] for r in rows],
        created_at=[r["created_at"] for r in rows],
        theme_ids=[r["theme_id"] for r in rows],
        content_hashes=[bytes(r["content_hash"]) for r in rows],
    )


async def select_theme_centroids(conn: asyncpg.Connection, *, scope: str) -> tuple[list[int], NDArray[np.float32]]:
    """Current leaf themes' centroids (items join leaves; a parent's items are its leaves')."""
    rows = await conn.fetch(
        "SELECT theme_id, centroid FROM theme WHERE scope = $1 AND is_current AND level = 'leaf'"
        " AND centroid IS NOT NULL AND length(centroid) > 0 ORDER BY theme_id",
        scope,
    )
    if not rows:
        return [], np.zeros((0, 0), dtype=np.float32)
    return [r["theme_id"] for r in rows], np.stack([np.frombuffer(r["centroid"], dtype="<f4") for r in rows])


async def select_current_themes(conn: asyncpg.Connection, *, scope: str) -> list[CurrentTheme]:
    """The scope's current themes, leaves and parents, with what people decided about them."""
    from clustering.themes import CurrentTheme  # the job's reads only: the API never loads clustering

    rows = await conn.fetch(
        "SELECT theme_id, level, centroid, parent_id, label, label_pinned, parent_pinned, hidden, origin,"
        " seed_centroid, seed_threshold, keywords, size, status, first_seen_at, last_seen_at"
        " FROM theme WHERE scope = $1 AND is_current ORDER BY theme_id",
        scope,
    )
    return [
        CurrentTheme(
            **{k: r[k] for k in r.keys() if k not in ("centroid", "seed_centroid")},
            centroid=_vector(r["centroid"]),
            seed_centroid=_vector(r["seed_centroid"]),
        )
        for r in rows
    ]


async def select_seeded_themes(conn: asyncpg.Connection, *, scope: str) -> list[CurrentTheme]:
    """A person's current themes with a seed: new items near the seed join them."""
    return [t for t in await select_current_themes(conn, scope=scope) if t.seed_centroid is not None]


async def select_curation_constraints(conn: asyncpg.Connection, *, scope: str) -> dict[int, int]:
    """Pinned members of the scope's current leaves: item id -> theme id."""
    rows = await conn.fetch(
        "SELECT p.item_id, p.theme_id FROM theme_pin p JOIN theme t USING (theme_id)"
        " WHERE t.scope = $1 AND t.is_current AND t.level = 'leaf' ORDER BY p.item_id",
        scope,
    )
    return {r["item_id"]: r["theme_id"] for r in rows}


def _vector(value: bytes | None) -> NDArray[np.float32] | None:
    return np.frombuffer(value, dtype="<f4") if value else None


@dataclass(frozen=True)
class ThemeWrite:
    theme_id: int | None  # None: a new theme
    level: str
    parent_id: int | None
    label: str
    keywords: list[str]
    size: int
    status: str
    centroid: NDArray[np.float32]
    representative_item_ids: list[int]
    first_seen_at: datetime | None
    last_seen_at: datetime | None


async def upsert_theme(conn: asyncpg.Connection, *, scope: str, run_id: int, theme: ThemeWrite) -> int:
    args: list[Any] = [
        theme.label, theme.keywords, theme.size, theme.status, np.ascontiguousarray(theme.centroid, "<f4").tobytes(),
        theme.representative_item_ids, theme.first_seen_at, theme.last_seen_at, run_id, theme.parent_id,
    ]  # fmt: skip
    if theme.theme_id is None:
        theme_id: int = await conn.fetchval(
            "INSERT INTO theme (scope, label, keywords, size, status, centroid, representative_item_ids,"
            " first_seen_at, last_seen_at, created_run_id, updated_run_id, parent_id, level)"
            " VALUES ($11, $1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $12) RETURNING theme_id",
            *args,
            scope,
            theme.level,
        )
        return theme_id
    # A person's decisions hold whatever the plan says: a pinned label or parent is never rewritten.
    await conn.execute(
        "UPDATE theme SET label = CASE WHEN label_pinned THEN label ELSE $1 END, keywords = $2, size = $3,"
        " status = $4, centroid = $5, representative_item_ids = $6, first_seen_at = $7, last_seen_at = $8,"
        " updated_run_id = $9, parent_id = CASE WHEN parent_pinned THEN parent_id ELSE $10 END,"
        " is_current = true, merged_into = NULL, split_into = NULL, updated_at = now() WHERE theme_id = $11",
        *args,
        theme.theme_id,
    )
    return theme.theme_id


async def update_themes_retired(
    conn: asyncpg.Connection,
    *,
    run_id: int,
    merged: dict[int, int],
    split: dict[int, list[int]],
    gone: Sequence[int],
) -> None:
    """Themes that no longer stand on their own: merged into another, split apart, or emptied."""
    for old, new in merged.items():
        await conn.execute(
            "UPDATE theme SET is_current = false, status = 'merged_into', merged_into = $2, size = 0,"
            " updated_run_id = $3, updated_at = now() WHERE theme_id = $1",
            old, new, run_id,
        )  # fmt: skip
    for old, parts in split.items():
        if old in parts:  # its largest part kept the id: it stands, and records what split off
            await conn.execute("UPDATE theme SET split_into = $2 WHERE theme_id = $1", old, parts)
            continue
        await conn.execute(
            "UPDATE theme SET is_current = false, status = 'split_into', split_into = $2, size = 0,"
            " updated_run_id = $3, updated_at = now() WHERE theme_id = $1",
            old, parts, run_id,
        )  # fmt: skip
    if gone:
        await conn.execute(
            "UPDATE theme SET is_current = false, status = 'fading', size = 0, updated_run_id = $2,"
            " updated_at = now() WHERE theme_id = ANY($1::bigint[])",
            list(gone),
            run_id,
        )


async def update_item_themes(
    conn: asyncpg.Connection, *, scope: str, item_ids: Sequence[int], theme_ids: Sequence[int | None]
) -> None:
    column = "theme_id" if scope == "all" else "feature_theme_id"
    # A person may correct an item's intent while the run computes: a feature theme still holds
    # feature requests only (the condition is checked again on the row the correction wrote).
    await conn.execute(
        f"UPDATE item i SET {column} = t.theme_id FROM unnest($1::bigint[], $2::bigint[]) AS t(item_id, theme_id)"
        f" WHERE i.item_id = t.item_id AND i.{column} IS DISTINCT FROM t.theme_id"
        " AND ($3 = 'all' OR i.intent = 'feature_request')",
        list(item_ids),
        list(theme_ids),
        scope,
    )


def _to_theme(row: asyncpg.Record) -> Theme:
    return Theme(**dict(row))


async def select_themes(
    conn: asyncpg.Connection,
    *,
    scope: str | None,
    status: str | None,
    item_kind: str | None,
    include_retired: bool,
    after_id: int,
    limit: int,
    level: str | None = None,
    parent_id: int | None = None,
    hidden: bool | None = False,
) -> list[Theme]:
    """Themes by id. ``hidden`` None lists hidden and shown themes alike. A parent holds items
    through its leaves, so the ``item_kind`` filter looks through them."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM theme t WHERE theme_id > $1"
        " AND ($2::text IS NULL OR scope = $2) AND ($3::text IS NULL OR status = $3)"
        " AND ($4 OR is_current OR $3 IS NOT NULL)"
        " AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM item i WHERE i.kind = $5"
        "      AND (i.theme_id = t.theme_id OR i.feature_theme_id = t.theme_id"
        "           OR i.theme_id IN (SELECT c.theme_id FROM theme c WHERE c.parent_id = t.theme_id))))"
        " AND ($7::text IS NULL OR level = $7) AND ($8::bigint IS NULL OR parent_id = $8)"
        " AND ($9::boolean IS NULL OR hidden = $9)"
        " ORDER BY theme_id LIMIT $6",
        after_id, scope, status, include_retired, item_kind, limit, level, parent_id, hidden,
    )  # fmt: skip
    return [_to_theme(r) for r in rows]


async def select_theme(conn: asyncpg.Connection, *, theme_id: int, tz: str = "UTC") -> ThemeDetail | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM theme WHERE theme_id = $1", theme_id)
    if row is None:
        return None
    merged_from = await conn.fetch("SELECT theme_id FROM theme WHERE merged_into = $1 ORDER BY theme_id", theme_id)
    split_from = await conn.fetch("SELECT theme_id FROM theme WHERE $1 = ANY(split_into) ORDER BY theme_id", theme_id)
    # A parent's volume is over its leaves' items (never summed from its children's figures).
    weeks = await conn.fetch(
        "SELECT date_trunc('week', created_at AT TIME ZONE $2)::date AS week, count(*) AS volume FROM item"
        " WHERE (theme_id = $1 OR feature_theme_id = $1"
        "        OR theme_id IN (SELECT c.theme_id FROM theme c WHERE c.parent_id = $1)"
        "        OR feature_theme_id IN (SELECT c.theme_id FROM theme c WHERE c.parent_id = $1))"
        " AND deleted_at IS NULL GROUP BY 1 ORDER BY 1",
        theme_id,
        tz,
    )
    children = await conn.fetch(
        "SELECT theme_id, label, size FROM theme WHERE parent_id = $1 AND is_current ORDER BY size DESC, theme_id",
        theme_id,
    )
    parent = await conn.fetchrow("SELECT theme_id, label, size FROM theme WHERE theme_id = $1", row["parent_id"])
    return ThemeDetail(
        **dict(row),
        merged_from=[r["theme_id"] for r in merged_from],
        split_from=[r["theme_id"] for r in split_from],
        weekly_volume=[WeekVolume(week=r["week"], volume=r["volume"]) for r in weeks],
        children=[ThemeBrief(**dict(r)) for r in children],
        parent=ThemeBrief(**dict(parent)) if parent is not None else None,
    )


@dataclass(frozen=True)
class TreePlace:
    parent_id: int | None
    parent_label: str | None
    hidden: bool


async def select_tree_places(conn: asyncpg.Connection, *, theme_ids: Sequence[int]) -> dict[int, TreePlace]:
    """Each theme's parent (id and label) and whether a person hid it."""
    rows = await conn.fetch(
        "SELECT t.theme_id, t.parent_id, p.label AS parent_label, t.hidden OR coalesce(p.hidden, false) AS hidden"
        " FROM theme t LEFT JOIN theme p ON p.theme_id = t.parent_id WHERE t.theme_id = ANY($1::bigint[])",
        list(theme_ids),
    )
    return {r["theme_id"]: TreePlace(r["parent_id"], r["parent_label"], r["hidden"]) for r in rows}


async def select_parent_volumes(
    conn: asyncpg.Connection, *, parent_ids: Sequence[int], start_at: datetime, end_at: datetime, source: str | None
) -> dict[int, int]:
    """Items in [start_at, end_at) under each parent, counted over the items (not summed from leaves)."""
    rows = await conn.fetch(
        "SELECT t.parent_id, count(*)::int AS volume FROM item i JOIN theme t ON t.theme_id = i.theme_id"
        " WHERE t.parent_id = ANY($1::bigint[]) AND i.created_at >= $2 AND i.created_at < $3"
        " AND i.deleted_at IS NULL AND ($4::text IS NULL OR i.source = $4) GROUP BY t.parent_id",
        list(parent_ids), start_at, end_at, source,
    )  # fmt: skip
    return {r["parent_id"]: r["volume"] for r in rows}
