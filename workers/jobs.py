"""Job functions. Arguments are ids only; heavy imports stay inside functions so the API can
enqueue by name without loading torch. Every job is idempotent: running it twice on the same
ids writes the same rows once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from db.pool import connect
from db.queries.embeddings import (
    ItemResult,
    select_embedding_hashes,
    select_pending_item_texts,
    update_items_processed,
    upsert_embeddings,
)
from schemas.settings import Settings, get_settings

if TYPE_CHECKING:
    from clustering.embed import Embedder

log = logging.getLogger(__name__)

_embedder: Embedder | None = None


def get_embedder(settings: Settings) -> Embedder:
    """The worker's one model, loaded on first use (the worker preloads it at start)."""
    global _embedder
    if _embedder is None:
        from clustering.embed import build_embedder

        _embedder = build_embedder(settings.embedder, settings.model_cache_dir)
    return _embedder


async def process_items(item_ids: list[int]) -> int:
    """Prepare, embed and classify pending items; returns how many were marked processed."""
    from clustering.text import content_hash, prepare_text

    settings = get_settings()
    embedder = get_embedder(settings)
    conn = await connect(settings)
    try:
        items = await select_pending_item_texts(conn, item_ids=item_ids)
        if not items:
            return 0
        texts = [prepare_text(it.title, it.body) for it in items]
        hashes = [content_hash(t) for t in texts]
        known = await select_embedding_hashes(
            conn, item_ids=[it.item_id for it in items], model_version=embedder.model_version
        )
        todo = [n for n, it in enumerate(items) if known.get(it.item_id) != hashes[n]]
        vectors = embedder.embed([texts[n] for n in todo]) if todo else None
        results = [
            ItemResult(
                item_id=it.item_id,
                changed_at=it.changed_at,
                content_hash=hashes[n],
                intent=it.intent_hint,
                intent_confidence=1.0 if it.intent_hint else None,
                intent_source="source" if it.intent_hint else None,
                theme_id=None,
            )
            for n, it in enumerate(items)
        ]
        async with conn.transaction():
            if vectors is not None:
                await upsert_embeddings(
                    conn,
                    item_ids=[items[n].item_id for n in todo],
                    hashes=[hashes[n] for n in todo],
                    vectors=vectors,
                    model_version=embedder.model_version,
                )
            done = await update_items_processed(conn, results=results)
        log.info("processed %d items (%d embedded)", done, len(todo))
        return done
    finally:
        await conn.close()
