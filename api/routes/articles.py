"""Help-centre articles: bulk upsert (embedded by the workers) and the list."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Body, Query
from redis.exceptions import RedisError

from api.cursors import decode_after, encode_after
from api.deps import AppSettings, DbConn, IngestKey, ReadKey, RedisClient
from db.queries.articles import select_articles, upsert_articles
from outbox.queues import ITEMS_QUEUE, enqueue
from schemas.articles import MAX_BULK_ARTICLES, ArticleBulkResult, ArticleCreate, ArticlePage

router = APIRouter(prefix="/v1/articles", tags=["articles"])
EMBED_JOB = "workers.articles.embed_articles"


@router.post("/bulk", status_code=202)
async def create_articles(
    conn: DbConn,
    redis: RedisClient,
    settings: AppSettings,
    _: IngestKey,
    articles: Annotated[list[ArticleCreate], Body(max_length=MAX_BULK_ARTICLES)],
) -> ArticleBulkResult:
    """Upsert articles by (source, external_id), all or none: one invalid article (e.g. without a
    body) is a 422 naming its index. The workers embed new and changed articles."""
    async with conn.transaction():
        created, updated = await upsert_articles(conn, articles=articles)
    try:  # after the commit; a lost enqueue is caught up by the next one (the job sweeps)
        enqueue(redis, settings, ITEMS_QUEUE, EMBED_JOB, job_id=f"embed-articles-{secrets.token_hex(6)}")
    except RedisError:
        pass
    return ArticleBulkResult(accepted=len(articles), created=created, updated=updated)


@router.get("")
async def list_articles(
    conn: DbConn,
    _: ReadKey,
    source: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ArticlePage:
    data = await select_articles(conn, after_id=decode_after(cursor), limit=limit, source=source)
    return ArticlePage(data=data, next_cursor=encode_after(data[-1].article_id) if len(data) == limit else None)
