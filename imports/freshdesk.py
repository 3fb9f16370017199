"""Freshdesk: tickets updated since a time, oldest first, each with its conversations.

GET /api/v2/tickets?updated_since=<iso>&order_by=updated_at&order_type=asc&per_page=100&page=N
&include=description,stats; a `link` header with rel="next" means there is more. Freshdesk serves
at most 300 pages of one query, so past page 300 the query restarts from the last ticket's
`updated_at` (repeats are harmless: the upsert is idempotent). GET /api/v2/tickets/{id}/conversations
gives the replies. Auth: FRESHDESK_API_KEY (Basic `key:X`). Budget: 50 requests a minute, the
smallest plan's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from imports.client import VendorClient
from imports.sources import Cursor, Page, basic, mapped, required

MAX_PAGE = 300


class Freshdesk:
    vendor = "freshdesk"
    rate_per_minute = 50.0
    default_url: str | None = None

    def headers(self, env: Mapping[str, str]) -> dict[str, str]:
        (key,) = required(env, "FRESHDESK_API_KEY")
        return {"Authorization": basic(key, "X")}

    async def pages(self, client: VendorClient, *, since: datetime, cursor: Cursor | None) -> AsyncIterator[Page]:
        updated_since = str(cursor["updated_since"]) if cursor else _iso(since)
        page = int(cursor["page"]) if cursor else 1
        while True:
            params = {
                "updated_since": updated_since,
                "order_by": "updated_at",
                "order_type": "asc",
                "per_page": 100,
                "page": page,
                "include": "description,stats",
            }
            response = await client.get("/api/v2/tickets", params=params)
            tickets = [t for t in response.json() if isinstance(t, dict)]
            items: list[dict[str, Any]] = []
            for ticket in tickets:
                conversations = (await client.get(f"/api/v2/tickets/{ticket['id']}/conversations")).json()
                items.extend(mapped(self.vendor, {"ticket": {**ticket, "conversations": conversations}}))
            more = 'rel="next"' in response.headers.get("link", "")
            if more and page < MAX_PAGE:
                page += 1
            elif more and tickets:
                updated_since, page = str(tickets[-1]["updated_at"]), 1
            else:
                last = str(tickets[-1]["updated_at"]) if tickets else updated_since
                yield Page(items, {"updated_since": last, "page": 1})
                return
            yield Page(items, {"updated_since": updated_since, "page": page})


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
