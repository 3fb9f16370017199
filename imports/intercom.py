"""Intercom: conversations updated since a time through conversation search, each fetched whole
for its parts (status changes and the first admin reply).

POST /conversations/search {"query": {"field": "updated_at", "operator": ">", "value": <unix>},
"pagination": {"per_page": 150, "starting_after": <cursor>}}; `pages.next.starting_after` is the
next page. GET /conversations/{id} gives `conversation_parts`. The REST object's `source` is the
opening message, which the webhook payload calls `conversation_message`. Auth: INTERCOM_TOKEN
(Bearer). Budget: 10,000 requests a minute per app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from imports.client import VendorClient
from imports.sources import Cursor, Page, mapped, required


class Intercom:
    vendor = "intercom"
    rate_per_minute = 10_000.0
    default_url: str | None = "https://api.intercom.io"

    def headers(self, env: Mapping[str, str]) -> dict[str, str]:
        (token,) = required(env, "INTERCOM_TOKEN")
        return {"Authorization": f"Bearer {token}", "Accept": "application/json", "Intercom-Version": "2.11"}

    async def pages(self, client: VendorClient, *, since: datetime, cursor: Cursor | None) -> AsyncIterator[Page]:
        after = (cursor or {}).get("starting_after")
        while True:
            pagination: dict[str, Any] = {"per_page": 150}
            if after:
                pagination["starting_after"] = after
            query = {"field": "updated_at", "operator": ">", "value": int(since.timestamp())}
            body = (
                await client.request("POST", "/conversations/search", json={"query": query, "pagination": pagination})
            ).json()
            items: list[dict[str, Any]] = []
            for found in body.get("conversations") or []:
                if not isinstance(found, dict):
                    continue
                whole = (await client.get(f"/conversations/{found['id']}")).json()
                whole.setdefault("conversation_message", whole.get("source") or {})
                envelope = {"type": "notification_event", "topic": "conversation.user.created", "data": {"item": whole}}
                items.extend(mapped(self.vendor, envelope))
            after = ((body.get("pages") or {}).get("next") or {}).get("starting_after")
            yield Page(items, {"starting_after": after} if after else None)
            if not after:
                return
