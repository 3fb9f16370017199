"""A person's theme back-fill: its progress row, and the scan over past items' vectors."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import numpy as np
from numpy.typing import NDArray

from schemas.curation import Backfill

_COLUMNS = "theme_id, status, scanned, total, joined, error, created_at, started_at, finished_at"


async def insert_backfill(conn: asyncpg.Connection, *, theme_id: int, change_id: int) -> Backfill:
    row = await conn.fetchrow(
        f"INSERT INTO theme_backfill (theme_id, change_id) VALUES ($1, $2) RETURNING {_COLUMNS}", theme_id, change_id
    )
    assert row is not None
    return Backfill(**dict(row))


async def select_backfill(conn: asyncpg.Connection, *, theme_id: int) -> Backfill | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM theme_backfill WHERE theme_id = $1", theme_id)
    return Backfill(**dict(row)) if row else None


@dataclass(frozen=True)
class BackfillJob:
    theme_id: int
    change_id: int
    status: str
    scope: str
    label: str
    description: str | None
    seed_threshold: float
    is_current: bool


async def select_backfill_job(conn: asyncpg.Connection, *, theme_id: int) -> BackfillJob | None:
    row = await conn.fetchrow(
        "SELECT b.theme_id, b.change_id, b.status, t.scope, t.label, t.description,"
        " coalesce(t.seed_threshold, 0) AS seed_threshold, t.is_current"
        " FROM theme_backfill b JOIN theme t USING (theme_id) WHERE b.theme_id = $1",
        theme_id,
    )
    return BackfillJob(**dict(row)) if row else None


async def update_backfill_started(conn: asyncpg.Connection, *, theme_id: int, total: int) -> None:
    await conn.execute(
        "UPDATE theme_backfill SET status = 'running', started_at = now(), total = $2, scanned = 0, joined = 0,"
        " error = NULL WHERE theme_id = $1",
        theme_id,
        total,
    )


async def update_backfill_progress(conn: asyncpg.Connection, *, theme_id: int, scanned: int, joined: int) -> None:
    await conn.execute(
        "UPDATE theme_backfill SET scanned = $2, joined = $3 WHERE theme_id = $1", theme_id, scanned, joined
    )


async def update_backfill_finished(
    conn: asyncpg.Connection, *, theme_id: int, status: str, error: str | None = None
) -> None:
    await conn.execute(
        "UPDATE theme_backfill SET status = $2, error = $3, finished_at = now() WHERE theme_id = $1",
        theme_id,
        status,
        error[:2000] if error else None,
    )


async def update_backfill_cancelled(conn: asyncpg.Connection, *, theme_id: int) -> None:
    await conn.execute(
        "UPDATE theme_backfill SET status = 'cancelled', finished_at = now()"
        " WHERE theme_id = $1 AND status IN ('queued', 'running')",
        theme_id,
    )


async def update_theme_seed(conn: asyncpg.Connection, *, theme_id: int, seed: NDArray[np.float32]) -> None:
    """The seed is the theme's centroid too, so items arriving between runs join it."""
    blob = np.ascontiguousarray(seed, "<f4").tobytes()
    await conn.execute(
        "UPDATE theme SET seed_centroid = $2, centroid = $2, updated_at = now() WHERE theme_id = $1", theme_id, blob
    )


async def select_scan_total(conn: asyncpg.Connection, *, scope: str, model_version: str) -> int:
    total: int = await conn.fetchval(
        "SELECT count(*) FROM embedding e JOIN item i USING (item_id) WHERE e.model_version = $1"
        " AND i.deleted_at IS NULL AND ($2 = 'all' OR i.intent = 'feature_request')",
        model_version,
        scope,
    )
    return total


@dataclass(frozen=True)
class ScanBatch:
    item_ids: NDArray[np.int64]
    vectors: NDArray[np.float32]


async def select_scan_batch(
    conn: asyncpg.Connection, *, scope: str, model_version: str, after_id: int, limit: int
) -> ScanBatch:
    """Past items in id order, keyset-paged: their vectors of this model."""
    rows = await conn.fetch(
        "SELECT e.item_id, e.vector FROM embedding e JOIN item i USING (item_id) WHERE e.model_version = $1"
        " AND e.item_id > $2 AND i.deleted_at IS NULL AND ($3 = 'all' OR i.intent = 'feature_request')"
        " ORDER BY e.item_id LIMIT $4",
        model_version,
        after_id,
        scope,
        limit,
    )
    if not rows:
        return ScanBatch(np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32))
    vectors = np.frombuffer(b"".join(r["vector"] for r in rows), dtype="<f4").reshape(len(rows), -1)
    return ScanBatch(np.array([r["item_id"] for r in rows], dtype=np.int64), vectors.astype(np.float32))
