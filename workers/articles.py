"""Article job: embed help-centre articles with the workers' model (knowledge gaps).

Separate from the item job: articles are few and change rarely, and an article is never
clustered. The job takes no ids: it embeds every article still without a vector, so one run
catches up on any enqueue that was lost.
"""

from __future__ import annotations

import logging

from db.pool import connect
from db.queries.articles import select_unembedded_articles, update_article_vectors
from schemas.settings import get_settings
from workers.jobs import get_embedder

log = logging.getLogger(__name__)

BATCH = 256
MAX_BATCHES = 200  # bounded: 51,200 articles a run; the next enqueue continues


async def embed_articles() -> int:
    """Embed title + body of unembedded articles; returns how many vectors were stored."""
    settings = get_settings()
    embedder = get_embedder(settings)
    conn = await connect(settings)
    stored = 0
    try:
        for _ in range(MAX_BATCHES):
            batch = await select_unembedded_articles(conn, limit=BATCH)
            if not batch:
                break
            vectors = embedder.embed([text for _, text, _ in batch])
            async with conn.transaction():
                stored += await update_article_vectors(
                    conn,
                    article_ids=[a for a, _, _ in batch],
                    hashes=[h for _, _, h in batch],
                    vectors=vectors,
                    model_version=embedder.model_version,
                )
            if len(batch) < BATCH:
                break
        log.info("embedded %d articles", stored)
        return stored
    finally:
        await conn.close()
