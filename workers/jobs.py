"""Item job functions. Arguments are ids only; heavy imports stay inside functions so the API can
enqueue by name without loading torch. Every job is idempotent: running it twice on the same ids
writes the same rows once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from db.pool import connect
from db.queries.embeddings import (
    ItemResult,
    select_embedding_hashes,
    select_pending_item_texts,
    select_vectors,
    update_items_processed,
    upsert_embeddings,
)
from db.queries.themes import select_seeded_themes, select_theme_centroids
from schemas.settings import Settings, get_settings
from workers.intent import current_classifier

if TYPE_CHECKING:
    from clustering.embed import Embedder

log = logging.getLogger(__name__)

_embedder: Embedder | None = None


def get_embedder(settings: Settings) -> Embedder:
    """The worker's one model, the one `settings.embedder` names, loaded on first use (the worker
    preloads it at start). A process asked for the other model (tests) loads that one instead."""
    global _embedder
    from clustering.embed import build_embedder, model_version_of

    if _embedder is None or _embedder.model_version != model_version_of(settings.embedder):
        _embedder = build_embedder(settings.embedder, settings.model_cache_dir)
    return _embedder


async def process_items(item_ids: list[int]) -> int:
    """Prepare, redact, embed and classify pending items, and give each the nearest current theme
    when it is close enough (new items between clustering runs; a person's theme whose seed is close
    enough comes first). Read -> compute -> write: one read of the items, their stored vectors and
    the current themes, pure computing, one write transaction. Returns how many were marked
    processed; an item changed meanwhile stays pending and is picked up again."""
    from clustering.intent import resolve_intent
    from clustering.text import content_hash, prepare_text
    from clustering.themes import assign_new_items

    settings = get_settings()
    embedder = get_embedder(settings)
    conn = await connect(settings)
    try:
        items = await select_pending_item_texts(conn, item_ids=item_ids)
        if not items:
            return 0
        ids = [it.item_id for it in items]
        known = await select_embedding_hashes(conn, item_ids=ids, model_version=embedder.model_version)
        stored = await select_vectors(conn, item_ids=ids, model_version=embedder.model_version)
        themes = {scope: await select_theme_centroids(conn, scope=scope) for scope in ("all", "feature")}
        seeds = {scope: await select_seeded_themes(conn, scope=scope) for scope in ("all", "feature")}
        # The current intent model, checked in Postgres on every batch (workers/intent.py).
        classifier = await current_classifier(conn, settings)

        texts = [prepare_text(it.title, it.body) for it in items]
        hashes = [content_hash(t) for t in texts]
        todo = [n for n, it in enumerate(items) if known.get(it.item_id) != hashes[n]]
        fresh = embedder.embed([texts[n] for n in todo]) if todo else np.zeros((0, embedder.dim), np.float32)
        vectors = np.zeros((len(items), embedder.dim), dtype=np.float32)
        for n, item_id in enumerate(ids):
            if item_id in stored:
                vectors[n] = stored[item_id]
        for row, n in enumerate(todo):
            vectors[n] = fresh[row]
        predicted, confidence = classifier.predict(vectors, texts)
        floor = settings.assign_min_similarity
        theme_ids = assign_new_items(vectors, *themes["all"], seeds["all"], floor)
        feature_ids = assign_new_items(vectors, *themes["feature"], seeds["feature"], floor)
        results = []
        for n, it in enumerate(items):
            intent, conf, decided_by = resolve_intent(it.intent_hint, predicted[n], float(confidence[n]))
            results.append(
                ItemResult(
                    item_id=it.item_id,
                    changed_at=it.changed_at,
                    content_hash=hashes[n],
                    clean_text=texts[n],
                    intent=intent,
                    intent_confidence=conf,
                    intent_source=decided_by,
                    theme_id=theme_ids[n],
                    feature_theme_id=feature_ids[n] if intent == "feature_request" else None,
                )
            )

        async with conn.transaction():
            if todo:
                await upsert_embeddings(
                    conn,
                    item_ids=[ids[n] for n in todo],
                    hashes=[hashes[n] for n in todo],
                    vectors=fresh,
                    model_version=embedder.model_version,
                )
            done = await update_items_processed(conn, results=results)
        log.info("processed %d items (%d embedded)", done, len(todo))
        return done
    finally:
        await conn.close()
