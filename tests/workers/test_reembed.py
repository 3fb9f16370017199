from __future__ import annotations

import asyncpg
import pytest

from clustering.embed import OnnxInt8Embedder, SentenceTransformerEmbedder
from db.queries.work import update_items_pending
from schemas.settings import Settings


async def test_a_model_change_marks_exactly_the_items_without_its_vectors(
    migrated: Settings, db: asyncpg.Connection
) -> None:
    for n in range(3):
        item_id = await db.fetchval(
            "INSERT INTO item (source, external_id, kind, body, created_at, payload_hash, pending)"
            " VALUES ('api', $1, 'ticket', 'b', now(), 'h', false) RETURNING item_id",
            str(n),
        )
        if n < 2:
            await db.execute(
                "INSERT INTO embedding (item_id, model_version, content_hash, vector) VALUES ($1, $2, 'h', 'v')",
                item_id,
                OnnxInt8Embedder.model_version,
            )
    assert await update_items_pending(db, model_version=OnnxInt8Embedder.model_version, only_missing=True) == 1
    assert await db.fetchval("SELECT count(*) FROM item WHERE pending AND enqueued_at IS NULL") == 1
    changed = await update_items_pending(db, model_version=SentenceTransformerEmbedder.model_version, only_missing=True)
    assert changed == 3
    assert await db.fetchval("SELECT count(*) FROM item WHERE pending") == 3


@pytest.mark.parametrize("only_missing", [True, False])
async def test_nothing_to_do_on_an_empty_database(
    migrated: Settings, db: asyncpg.Connection, only_missing: bool
) -> None:
    assert await update_items_pending(db, model_version="m", only_missing=only_missing) == 0
