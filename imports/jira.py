"""Jira Cloud: issues updated since a time through JQL search, with their changelog for the
status history.

GET /rest/api/3/search/jql?jql=updated >= "<yyyy-MM-dd HH:mm>" ORDER BY updated ASC
&expand=changelog&fields=*navigable&maxResults=100, then &nextPageToken=<token> until `isLast`.
Each issue maps through the webhook connector; each changelog history with a status change maps
too, which gives its status event at the history's `created` time. Auth: JIRA_EMAIL and
JIRA_API_TOKEN (Basic). Jira Cloud publishes no fixed budget (it answers 429 with Retry-After);
we pace at 100 requests a minute.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.timeparse import parse_time
from imports.client import VendorClient
from imports.sources import Cursor, Page, basic, mapped, required, with_events


class Jira:
    vendor = "jira"
    rate_per_minute = 100.0
    default_url: str | None = None

    def headers(self, env: Mapping[str, str]) -> dict[str, str]:
        email, token = required(env, "JIRA_EMAIL", "JIRA_API_TOKEN")
        return {"Authorization": basic(email, token), "Accept": "application/json"}

    async def pages(self, client: VendorClient, *, since: datetime, cursor: Cursor | None) -> AsyncIterator[Page]:
        jql = f'updated >= "{since.astimezone(UTC):%Y-%m-%d %H:%M}" ORDER BY updated ASC'
        token = (cursor or {}).get("next")
        while True:
            params: dict[str, Any] = {"jql": jql, "expand": "changelog", "fields": "*navigable", "maxResults": 100}
            if token:
                params["nextPageToken"] = token
            body = (await client.get("/rest/api/3/search/jql", params=params)).json()
            items: list[dict[str, Any]] = []
            for issue in body.get("issues") or []:
                if isinstance(issue, dict):
                    items.extend(_issue_items(issue))
            token = body.get("nextPageToken")
            last = bool(body.get("isLast", True)) or not token
            yield Page(items, None if last else {"next": token})
            if last:
                return


def _issue_items(issue: dict[str, Any]) -> list[dict[str, Any]]:
    found = mapped("jira", {"webhookEvent": "jira:issue_updated", "issue": issue})
    events: list[dict[str, Any]] = []
    histories = (issue.get("changelog") or {}).get("histories") or []
    for history in histories:
        at = parse_time(history.get("created")) if isinstance(history, dict) else None
        if at is None or not any(_is_status(i) for i in history.get("items") or []):
            continue
        stamp = int(at.timestamp() * 1000)
        payload = {"webhookEvent": "jira:issue_updated", "timestamp": stamp, "issue": issue, "changelog": history}
        for item in mapped("jira", payload):
            events.extend(item["status_events"])
    return with_events(found, events)


def _is_status(change: Any) -> bool:
    return isinstance(change, dict) and "status" in (
        str(change.get("field")).lower(),
        str(change.get("fieldId")).lower(),
    )
