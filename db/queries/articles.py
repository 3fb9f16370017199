"""Help-centre articles: upsert, list, and the vectors the workers write and knowledge gaps read."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import numpy as np
from numpy.typing import NDArray

from schemas.articles import Article, ArticleCreate

_OLDEST = datetime.min.replace(tzinfo=UTC)
_ARTICLE_COLUMNS = (
    "article_id, source, external_id, title, url, source_updated_at AS updated_at, embedded_at, ingested_at"
)


def _content_hash(article: ArticleCreate) -> bytes:
    return hashlib.sha256(f"{article.title}\n{article.body}".encode()).digest()


async def upsert_articles(conn: asyncpg.Connection, *, articles: Sequence[ArticleCreate]) -> tuple[int, int]:
    """Insert or update by (source, external_id); (created, updated). An older version never
    overwrites a newer one; a changed text clears the vector so the workers embed it again."""
    newest: dict[tuple[str, str], ArticleCreate] = {}
    for a in sorted(articles, key=lambda a: a.updated_at or _OLDEST):  # the newest version of a key wins
        newest[(a.source, a.external_id)] = a
    rows = list(newest.values())
    result = await conn.fetch(
        """
        INSERT INTO article AS a (source, external_id, title, body, url, source_updated_at, content_hash)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                             $7::bytea[])
        ON CONFLICT (source, external_id) DO UPDATE SET
            title = EXCLUDED.title, body = EXCLUDED.body, url = EXCLUDED.url,
            source_updated_at = EXCLUDED.source_updated_at, content_hash = EXCLUDED.content_hash,
            changed_at = now(),
            vector = CASE WHEN a.content_hash = EXCLUDED.content_hash THEN a.vector END,
            embedded_at = CASE WHEN a.content_hash = EXCLUDED.content_hash THEN a.embedded_at END
        WHERE coalesce(EXCLUDED.source_updated_at, 'infinity') >= coalesce(a.source_updated_at, '-infinity')
        RETURNING (xmax = 0) AS created
        """,
        [a.source for a in rows],
        [a.external_id for a in rows],
        [a.title for a in rows],
        [a.body for a in rows],
        [a.url for a in rows],
        [a.updated_at for a in rows],
        [_content_hash(a) for a in rows],
    )
    created = sum(1 for r in result if r["created"])
    return created, len(result) - created


async def select_articles(conn: asyncpg.Connection, *, after_id: int, limit: int, source: str | None) -> list[Article]:
    rows = await conn.fetch(
        f"SELECT {_ARTICLE_COLUMNS} FROM article WHERE article_id > $1 AND ($3::text IS NULL OR source = $3)"
        " ORDER BY article_id LIMIT $2",
        after_id,
        limit,
        source,
    )
    return [Article(**dict(r)) for r in rows]


async def select_unembedded_articles(conn: asyncpg.Connection, *, limit: int) -> list[tuple[int, str, bytes]]:
    """(article_id, text to embed, content hash) of articles without a current vector."""
    rows = await conn.fetch(
        "SELECT article_id, title || E'\\n' || body AS text, content_hash FROM article"
        " WHERE embedded_at IS NULL ORDER BY article_id LIMIT $1",
        limit,
    )
    return [(r["article_id"], r["text"], r["content_hash"]) for r in rows]


async def update_article_vectors(
    conn: asyncpg.Connection,
    *,
    article_ids: Sequence[int],
    hashes: Sequence[bytes],
    vectors: NDArray[np.float32],
    model_version: str,
) -> int:
    """Store vectors, unless the article's text changed since it was read (its hash differs)."""
    status: str = await conn.execute(
        "UPDATE article a SET vector = v.vector, model_version = $4, embedded_at = now()"
        " FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS v(id, hash, vector)"
        " WHERE a.article_id = v.id AND a.content_hash = v.hash",
        list(article_ids),
        list(hashes),
        [np.ascontiguousarray(v, "<f4").tobytes() for v in vectors],
        model_version,
    )
    return int(status.split()[-1])


async def select_article_vectors(
    conn: asyncpg.Connection,
) -> tuple[list[tuple[int, str, str | None]], NDArray[np.float32]]:
    """Every embedded article of the newest model version: (id, title, url) and a vector matrix."""
    rows = await conn.fetch(
        "SELECT article_id, title, url, vector FROM article WHERE vector IS NOT NULL AND model_version ="
        " (SELECT model_version FROM article WHERE vector IS NOT NULL ORDER BY embedded_at DESC LIMIT 1)"
        " ORDER BY article_id"
    )
    if not rows:
        return [], np.zeros((0, 0), dtype=np.float32)
    refs = [(r["article_id"], r["title"], r["url"]) for r in rows]
    return refs, np.stack([np.frombuffer(r["vector"], dtype="<f4") for r in rows])
