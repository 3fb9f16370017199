"""Embedding statements: vectors are float32 bytes keyed by (item, model version)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class ItemText:
    item_id: int
    title: str | None
    body: str
    intent_hint: str | None
    changed_at: datetime


async def select_pending_item_texts(conn: asyncpg.Connection, *, item_ids: Sequence[int]) -> list[ItemText]:
    rows = await conn.fetch(
        "SELECT item_id, title, body, intent_hint, changed_at FROM item"
        " WHERE item_id = ANY($1::bigint[]) AND pending AND deleted_at IS NULL ORDER BY item_id",
        list(item_ids),
    )
    return [ItemText(**dict(r)) for r in rows]


async def select_embedding_hashes(
    conn: asyncpg.Connection, *, item_ids: Sequence[int], model_version: str
) -> dict[int, bytes]:
    rows = await conn.fetch(
        "SELECT item_id, content_hash FROM embedding WHERE item_id = ANY($1::bigint[]) AND model_version = $2",
        list(item_ids),
        model_version,
    )
    return {r["item_id"]: bytes(r["content_hash"]) for r in rows}


async def upsert_embeddings(
    conn: asyncpg.Connection,
    *,
    item_ids: Sequence[int],
    hashes: Sequence[bytes],
    vectors: NDArray[np.float32],
    model_version: str,
) -> None:
    if not item_ids:
        return
    blobs = [np.ascontiguousarray(v, dtype="<f4").tobytes() for v in vectors]
    await conn.execute(
        "INSERT INTO embedding (item_id, model_version, content_hash, vector)"
        " SELECT i, $2, h, v FROM unnest($1::bigint[], $3::bytea[], $4::bytea[]) AS t(i, h, v)"
        " ON CONFLICT (item_id, model_version) DO UPDATE"
        " SET content_hash = EXCLUDED.content_hash, vector = EXCLUDED.vector, created_at = now()"
        " WHERE embedding.content_hash <> EXCLUDED.content_hash",
        list(item_ids), model_version, list(hashes), blobs,
    )  # fmt: skip


async def select_vectors(
    conn: asyncpg.Connection, *, item_ids: Sequence[int], model_version: str
) -> dict[int, NDArray[np.float32]]:
    rows = await conn.fetch(
        "SELECT item_id, vector FROM embedding WHERE item_id = ANY($1::bigint[]) AND model_version = $2",
        list(item_ids),
        model_version,
    )
    return {r["item_id"]: np.frombuffer(r["vector"], dtype="<f4") for r in rows}


@dataclass(frozen=True)
class ItemResult:
    item_id: int
    changed_at: datetime
    content_hash: bytes
    clean_text: str
    intent: str | None
    intent_confidence: float | None
    intent_source: str | None
    theme_id: int | None
    feature_theme_id: int | None


async def update_items_processed(conn: asyncpg.Connection, *, results: Sequence[ItemResult]) -> int:
    """Mark items processed, unless they changed since the job read them (then they stay pending)."""
    if not results:
        return 0
    status: str = await conn.execute(
        # A person's intent (PATCH /v1/items/{id}) is kept over any model's or source's.
        "UPDATE item i SET embedded_at = now(), content_hash = r.h, clean_text = r.txt,"
        " intent = CASE WHEN i.intent_source = 'person' THEN i.intent ELSE r.intent END,"
        " intent_confidence = CASE WHEN i.intent_source = 'person' THEN i.intent_confidence ELSE r.conf END,"
        " intent_source = CASE WHEN i.intent_source = 'person' THEN i.intent_source ELSE r.src END,"
        " theme_id = coalesce(i.theme_id, r.theme),"
        " feature_theme_id = CASE WHEN CASE WHEN i.intent_source = 'person' THEN i.intent ELSE r.intent END"
        " = 'feature_request' THEN coalesce(i.feature_theme_id, r.ftheme) END,"
        " pending = false, processed_at = now()"
        " FROM unnest($1::bigint[], $2::timestamptz[], $3::bytea[], $4::text[], $5::real[],"
        " $6::text[], $7::bigint[], $8::text[], $9::bigint[])"
        " AS r(id, changed, h, intent, conf, src, theme, txt, ftheme)"
        " WHERE i.item_id = r.id AND i.changed_at = r.changed",
        [r.item_id for r in results], [r.changed_at for r in results],
        [r.content_hash for r in results], [r.intent for r in results],
        [r.intent_confidence for r in results], [r.intent_source for r in results],
        [r.theme_id for r in results], [r.clean_text for r in results], [r.feature_theme_id for r in results],
    )  # fmt: skip
    return int(status.split()[-1])
