"""Zendesk: the cursor-based incremental ticket export with ticket metrics side-loaded, and each
solved or reopened ticket's audits for its status history.

GET /api/v2/incremental/tickets/cursor.json?start_time=<unix>&include=metric_sets, then
?cursor=<after_cursor> until `end_of_stream`; the export endpoint allows 10 requests a minute,
other endpoints (audits) 200 a minute on the smallest plan. Auth: ZENDESK_EMAIL and
ZENDESK_API_TOKEN (Basic `email/token:token`), or ZENDESK_OAUTH_TOKEN (Bearer).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from connectors.item import status_event
from imports.client import VendorClient
from imports.sources import Cursor, Page, basic, mapped, required, with_events

EXPORT_PER_MINUTE = 10


class Zendesk:
    vendor = "zendesk"
    rate_per_minute = 200.0
    default_url: str | None = None

    def headers(self, env: Mapping[str, str]) -> dict[str, str]:
        if env.get("ZENDESK_OAUTH_TOKEN"):
            return {"Authorization": f"Bearer {env['ZENDESK_OAUTH_TOKEN']}"}
        email, token = required(env, "ZENDESK_EMAIL", "ZENDESK_API_TOKEN")
        return {"Authorization": basic(f"{email}/token", token)}

    async def pages(self, client: VendorClient, *, since: datetime, cursor: Cursor | None) -> AsyncIterator[Page]:
        export = VendorClient(client.http, rate_per_minute=EXPORT_PER_MINUTE, sleep=client._sleep)
        params: dict[str, Any] = {"include": "metric_sets"}
        if cursor and cursor.get("cursor"):
            params["cursor"] = cursor["cursor"]
        else:
            params["start_time"] = int(since.timestamp())
        while True:
            body = (await export.get("/api/v2/incremental/tickets/cursor.json", params=params)).json()
            metrics = {m.get("ticket_id"): m for m in body.get("metric_sets") or [] if isinstance(m, dict)}
            items: list[dict[str, Any]] = []
            for ticket in body.get("tickets") or []:
                if not isinstance(ticket, dict) or ticket.get("status") == "deleted":
                    continue
                payload: dict[str, Any] = {"ticket": ticket}
                metric = metrics.get(ticket.get("id"))
                if metric is not None:
                    payload["ticket_metric"] = metric
                found = mapped(self.vendor, payload)
                if found and _has_history(ticket, metric):
                    found = with_events(found, await _status_events(client, ticket["id"]))
                items.extend(found)
            next_cursor = body.get("after_cursor")
            yield Page(items, {"cursor": next_cursor} if next_cursor else cursor)
            if body.get("end_of_stream", True) or not next_cursor:
                return
            params = {"include": "metric_sets", "cursor": next_cursor}


def _has_history(ticket: dict[str, Any], metric: dict[str, Any] | None) -> bool:
    reopened = bool(metric and (metric.get("reopens") or 0) > 0)
    return ticket.get("status") in ("solved", "closed") or reopened


async def _status_events(client: VendorClient, ticket_id: Any) -> list[dict[str, Any]]:
    """Status changes from the ticket's audits (`Change` events on the `status` field)."""
    events: list[dict[str, Any]] = []
    url: str | None = f"/api/v2/tickets/{ticket_id}/audits.json"
    for _ in range(100):  # 100 pages of 100 audits is far past any real ticket
        if url is None:
            break
        body = (await client.get(url)).json()
        for audit in body.get("audits") or []:
            for event in audit.get("events") or []:
                if event.get("type") == "Change" and event.get("field_name") == "status":
                    events.append(
                        status_event(audit.get("created_at"), event.get("previous_value"), event.get("value"))
                    )
        url = body.get("next_page")
    return events
