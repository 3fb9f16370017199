"""Help Scout: conversations modified since a time, with their threads embedded.

GET /v2/conversations?status=all&modifiedSince=<iso>&sortField=modifiedAt&sortOrder=asc
&embed=threads&page=N, while `page.number` < `page.totalPages`. Each conversation maps through the
webhook connector (as a `convo.created` body). Auth: HELPSCOUT_TOKEN, an OAuth2 access token
(client credentials, POST /v2/oauth2/token). Budget: 200 requests a minute (the Standard plan's).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from imports.client import VendorClient
from imports.sources import Cursor, Page, mapped, required


class HelpScout:
    vendor = "helpscout"
    rate_per_minute = 200.0
    default_url: str | None = "https://api.helpscout.net"

    def headers(self, env: Mapping[str, str]) -> dict[str, str]:
        (token,) = required(env, "HELPSCOUT_TOKEN")
        return {"Authorization": f"Bearer {token}", "Accept": "application/hal+json"}

    async def pages(self, client: VendorClient, *, since: datetime, cursor: Cursor | None) -> AsyncIterator[Page]:
        page = int((cursor or {}).get("page", 1))
        modified = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        while True:
            params = {
                "status": "all",
                "modifiedSince": modified,
                "sortField": "modifiedAt",
                "sortOrder": "asc",
                "embed": "threads",
                "page": page,
            }
            body = (await client.get("/v2/conversations", params=params)).json()
            items: list[dict[str, Any]] = []
            for conversation in (body.get("_embedded") or {}).get("conversations") or []:
                if isinstance(conversation, dict):
                    items.extend(mapped(self.vendor, conversation, {"X-HelpScout-Event": "convo.created"}))
            total = int((body.get("page") or {}).get("totalPages") or 0)
            done = page >= total
            page += 1
            yield Page(items, None if done else {"page": page})
            if done:
                return
