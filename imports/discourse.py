"""Discourse: the latest topics (most recent activity first) and every post of those active since
a time.

GET /latest.json?order=activity&page=N until a page holds no topic bumped since `since` (or no
`more_topics_url`); GET /t/{id}.json for a topic's posts, and /t/{id}/posts.json?post_ids[]=...
for the rest of a long topic (20 at a time). Each post maps through the webhook connector. Auth:
DISCOURSE_API_KEY and DISCOURSE_API_USERNAME headers. Budget: 60 admin API requests a minute
(Discourse's default).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.timeparse import parse_time
from imports.client import VendorClient
from imports.sources import Cursor, Page, mapped, required

_CHUNK = 20


class Discourse:
    vendor = "discourse"
    rate_per_minute = 60.0
    default_url: str | None = None

    def headers(self, env: Mapping[str, str]) -> dict[str, str]:
        key, user = required(env, "DISCOURSE_API_KEY", "DISCOURSE_API_USERNAME")
        return {"Api-Key": key, "Api-Username": user, "Accept": "application/json"}

    async def pages(self, client: VendorClient, *, since: datetime, cursor: Cursor | None) -> AsyncIterator[Page]:
        page = int((cursor or {}).get("page", 0))
        instance = str(client.http.base_url).rstrip("/")
        for _ in range(10_000):
            body = (await client.get("/latest.json", params={"order": "activity", "page": page})).json()
            topic_list = body.get("topic_list") or {}
            topics = [t for t in topic_list.get("topics") or [] if isinstance(t, dict)]
            active = [t for t in topics if _at(t.get("bumped_at") or t.get("last_posted_at")) >= since]
            items: list[dict[str, Any]] = []
            for topic in active:
                for post in await _posts(client, topic["id"]):
                    headers = {"X-Discourse-Event": "post_created", "X-Discourse-Instance": instance}
                    items.extend(mapped(self.vendor, {"post": post}, headers))
            done = not active or not topic_list.get("more_topics_url")
            page += 1
            yield Page(items, None if done else {"page": page})
            if done:
                return


def _at(value: Any) -> datetime:
    return parse_time(value) or datetime(1970, 1, 1, tzinfo=UTC)


async def _posts(client: VendorClient, topic_id: Any) -> list[dict[str, Any]]:
    body = (await client.get(f"/t/{topic_id}.json")).json()
    stream = body.get("post_stream") or {}
    posts = [p for p in stream.get("posts") or [] if isinstance(p, dict)]
    have = {p.get("id") for p in posts}
    missing = [pid for pid in stream.get("stream") or [] if pid not in have]
    for start in range(0, len(missing), _CHUNK):
        chunk = missing[start : start + _CHUNK]
        more = (await client.get(f"/t/{topic_id}/posts.json", params={"post_ids[]": chunk})).json()
        posts.extend(p for p in (more.get("post_stream") or {}).get("posts") or [] if isinstance(p, dict))
    return posts
