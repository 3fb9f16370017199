"""The alerts page: incidents (acknowledge, resolve), rules and destinations."""

from __future__ import annotations

from typing import Any

import asyncpg

from api.routes.alerts import shown_url
from db.queries.alerts import select_destinations, select_incidents, select_rules

INCIDENTS_SHOWN = 50


async def build_alerts(conn: asyncpg.Connection, *, status: str | None) -> dict[str, Any]:
    destinations = await select_destinations(conn)
    names = {d.destination_id: d.name for d in destinations}
    return {
        "incidents": await select_incidents(conn, before=None, status=status, limit=INCIDENTS_SHOWN),
        "rules": await select_rules(conn),
        "destinations": [
            {
                "id": d.destination_id,
                "kind": d.kind,
                "name": d.name,
                "target": shown_url(d.url) or ", ".join(d.email_to),
            }
            for d in destinations
        ],
        "destination_names": names,
        "status": status,
    }
