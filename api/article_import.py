"""`python -m api.cli import-articles PATH --vendor zendesk-guide|intercom`: a help-centre export
into the article table, through the same upsert as `POST /v1/articles/bulk`, then the embed job."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from redis import Redis
from redis.exceptions import RedisError

from api.routes.articles import EMBED_JOB
from connectors.articles import ArticleVendor, parse_article_export
from db.pool import connect
from db.queries.articles import upsert_articles
from outbox.queues import ITEMS_QUEUE, enqueue
from schemas.articles import MAX_BULK_ARTICLES, ArticleCreate
from schemas.settings import Settings


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    drafts: int
    rejected: list[str]
    enqueued: bool


async def import_articles(path: Path, vendor: ArticleVendor, settings: Settings) -> ImportResult:
    """Read, map and validate the export, upsert it in one transaction, enqueue the embedding.

    An article the API would refuse (no title, no body once its HTML is stripped) is reported and
    left out; the rest are stored.
    """
    raw, drafts = parse_article_export(vendor, json.loads(path.read_bytes()))
    articles, rejected = [], []
    for n, article in enumerate(raw):
        try:
            articles.append(ArticleCreate.model_validate(article))
        except ValidationError as exc:
            reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            rejected.append(f"#{n} (id {article.get('external_id') or '?'}): {reasons}")
    created = updated = 0
    conn = await connect(settings, role="cli")
    try:
        async with conn.transaction():
            for start in range(0, len(articles), MAX_BULK_ARTICLES):
                c, u = await upsert_articles(conn, articles=articles[start : start + MAX_BULK_ARTICLES])
                created, updated = created + c, updated + u
    finally:
        await conn.close()
    enqueued = False
    if articles:
        redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
        try:
            enqueue(redis, settings, ITEMS_QUEUE, EMBED_JOB, job_id=f"embed-articles-{secrets.token_hex(6)}")
            enqueued = True
        except RedisError:
            pass  # stored; the next article upsert's job embeds these too
        finally:
            redis.close()
    return ImportResult(created, updated, drafts, rejected, enqueued)
