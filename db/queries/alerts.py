"""Alert destinations and rules, incidents and their deliveries (the API's side and the list reads).

The detection job's statements are in db/queries/incidents.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from schemas.alerts import Incident, IncidentDelivery, QuietHours, Rule, Segment


@dataclass(frozen=True)
class DestinationRow:
    destination_id: int
    kind: str
    name: str
    url: str | None
    email_to: list[str]
    sealed_secret: bytes | None
    created_at: datetime


def _destination(r: asyncpg.Record) -> DestinationRow:
    return DestinationRow(
        destination_id=r["alert_destination_id"],
        kind=r["kind"],
        name=r["name"],
        url=r["url"],
        email_to=list(r["email_to"]),
        sealed_secret=r["sealed_secret"],
        created_at=r["created_at"],
    )


async def insert_destination(
    conn: asyncpg.Connection, *, kind: str, name: str, url: str | None, email_to: list[str]
) -> DestinationRow:
    row = await conn.fetchrow(
        "INSERT INTO alert_destination (kind, name, url, email_to) VALUES ($1, $2, $3, $4) RETURNING *",
        kind, name, url, email_to,
    )  # fmt: skip
    assert row is not None
    return _destination(row)


async def update_destination_secret(conn: asyncpg.Connection, *, destination_id: int, sealed: bytes) -> None:
    await conn.execute(
        "UPDATE alert_destination SET sealed_secret = $2 WHERE alert_destination_id = $1", destination_id, sealed
    )


async def select_destinations(conn: asyncpg.Connection) -> list[DestinationRow]:
    rows = await conn.fetch("SELECT * FROM alert_destination ORDER BY alert_destination_id")
    return [_destination(r) for r in rows]


async def select_destination(conn: asyncpg.Connection, *, destination_id: int) -> DestinationRow | None:
    row = await conn.fetchrow("SELECT * FROM alert_destination WHERE alert_destination_id = $1", destination_id)
    return _destination(row) if row else None


async def select_missing_destination_ids(conn: asyncpg.Connection, *, ids: list[int]) -> list[int]:
    rows = await conn.fetch(
        "SELECT id FROM unnest($1::bigint[]) id WHERE NOT EXISTS"
        " (SELECT 1 FROM alert_destination WHERE alert_destination_id = id) ORDER BY id",
        ids,
    )
    return [r["id"] for r in rows]


async def select_missing_theme_ids(conn: asyncpg.Connection, *, ids: list[int]) -> list[int]:
    rows = await conn.fetch(
        "SELECT id FROM unnest($1::bigint[]) id WHERE NOT EXISTS (SELECT 1 FROM theme WHERE theme_id = id) ORDER BY id",
        ids,
    )
    return [r["id"] for r in rows]


def _rule(r: asyncpg.Record) -> Rule:
    quiet = r["quiet_hours"]
    return Rule(
        rule_id=r["alert_rule_id"],
        name=r["name"],
        on=list(r["kinds"]),
        level=r["level"],
        theme_ids=list(r["theme_ids"]),
        min_volume=r["min_volume"],
        destination_ids=list(r["destination_ids"]),
        quiet_hours=QuietHours.model_validate_json(quiet) if quiet else None,
        created_at=r["created_at"],
    )


async def insert_rule(
    conn: asyncpg.Connection,
    *,
    name: str,
    kinds: list[str],
    level: str | None,
    theme_ids: list[int],
    min_volume: int,
    destination_ids: list[int],
    quiet_hours: QuietHours | None,
) -> Rule:
    row = await conn.fetchrow(
        "INSERT INTO alert_rule (name, kinds, level, theme_ids, min_volume, destination_ids, quiet_hours)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING *",
        name, kinds, level, theme_ids, min_volume, destination_ids,
        quiet_hours.model_dump_json() if quiet_hours else None,
    )  # fmt: skip
    assert row is not None
    return _rule(row)


async def select_rules(conn: asyncpg.Connection) -> list[Rule]:
    return [_rule(r) for r in await conn.fetch("SELECT * FROM alert_rule ORDER BY alert_rule_id")]


async def delete_rule(conn: asyncpg.Connection, *, rule_id: int) -> bool:
    deleted = await conn.fetchval("DELETE FROM alert_rule WHERE alert_rule_id = $1 RETURNING 1", rule_id)
    return deleted is not None


_INCIDENTS = """
SELECT i.*, t.label AS theme_label,
       coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'destination_id', d.alert_destination_id, 'status', d.status,
                    'attempts', d.attempts, 'last_error', d.last_error) ORDER BY d.alert_destination_id)
                 FROM incident_delivery d WHERE d.incident_id = i.incident_id), '[]') AS deliveries
FROM incident i JOIN theme t USING (theme_id)
WHERE i.incident_id < $1 AND ($2::text IS NULL OR i.status = $2) AND ($3::bigint IS NULL OR i.incident_id = $3)
ORDER BY i.incident_id DESC
LIMIT $4
"""


def _incident(r: asyncpg.Record) -> Incident:
    return Incident(
        incident_id=r["incident_id"],
        kind=r["kind"],
        theme_id=r["theme_id"],
        theme_label=r["theme_label"],
        level=r["level"],
        granularity=r["granularity"],
        window_start=r["window_start"],
        window_end=r["window_end"],
        observed=r["observed"],
        expected=r["expected"],
        score=r["score"],
        segments=[Segment.model_validate(s) for s in json.loads(r["segments"])],
        example_item_ids=list(r["example_item_ids"]),
        status=r["status"],
        detected_at=r["detected_at"],
        updated_at=r["updated_at"],
        deliveries=[IncidentDelivery.model_validate(d) for d in json.loads(r["deliveries"])],
    )


async def select_incidents(
    conn: asyncpg.Connection, *, before: int | None, status: str | None, limit: int
) -> list[Incident]:
    """Newest first, keyset-paginated on incident_id."""
    rows = await conn.fetch(_INCIDENTS, before or 2**63 - 1, status, None, limit)
    return [_incident(r) for r in rows]


async def select_incident(conn: asyncpg.Connection, *, incident_id: int) -> Incident | None:
    rows = await conn.fetch(_INCIDENTS, 2**63 - 1, None, incident_id, 1)
    return _incident(rows[0]) if rows else None


async def update_incident_status(conn: asyncpg.Connection, *, incident_id: int, status: str) -> bool:
    found = await conn.fetchval(
        "UPDATE incident SET status = $2, updated_at = now() WHERE incident_id = $1 RETURNING 1", incident_id, status
    )
    return found is not None


@dataclass(frozen=True)
class DeadLetter:
    incident_id: int
    destination_id: int
    destination_name: str
    attempts: int
    last_error: str | None
    created_at: datetime


async def select_dead_letters(conn: asyncpg.Connection, *, limit: int = 50) -> list[DeadLetter]:
    """Deliveries whose retries ran out, newest first (the health view)."""
    rows = await conn.fetch(
        "SELECT d.incident_id, d.alert_destination_id, a.name, d.attempts, d.last_error, d.created_at"
        " FROM incident_delivery d JOIN alert_destination a USING (alert_destination_id)"
        " WHERE d.status = 'dead' ORDER BY d.created_at DESC LIMIT $1",
        limit,
    )
    return [DeadLetter(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]
