"""The detection and delivery jobs' statements: theme counts per day, segment rows, incident
upserts, delivery claims, and the schedule's reads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from schemas.alerts import Segment as SegmentModel


@dataclass(frozen=True)
class DayCount:
    theme_id: int
    scope: str
    parent_id: int | None
    first_seen_at: datetime | None
    day: date
    items: int


# Leaf themes hold items; a parent's counts are rolled up from its leaves in clustering/incidents.py.
_COUNTS = """
SELECT t.theme_id, t.scope, t.parent_id, t.first_seen_at, c.day, c.items
FROM (
    SELECT i.theme_id AS theme_id, (i.created_at AT TIME ZONE 'UTC')::date AS day, count(*)::int AS items
    FROM item i
    WHERE i.created_at >= $1 AND i.created_at < $2 AND i.theme_id IS NOT NULL AND i.deleted_at IS NULL
    GROUP BY 1, 2
    UNION ALL
    SELECT i.feature_theme_id, (i.created_at AT TIME ZONE 'UTC')::date, count(*)::int
    FROM item i
    WHERE i.created_at >= $1 AND i.created_at < $2 AND i.feature_theme_id IS NOT NULL AND i.deleted_at IS NULL
    GROUP BY 1, 2
) c JOIN theme t ON t.theme_id = c.theme_id
WHERE t.is_current AND NOT t.hidden
"""


async def select_day_counts(conn: asyncpg.Connection, *, since: datetime, until: datetime) -> list[DayCount]:
    rows = await conn.fetch(_COUNTS, since, until)
    return [DayCount(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


@dataclass(frozen=True)
class RecordedIncident:
    incident_id: int
    kind: str
    theme_id: int
    level: str
    window_start: datetime
    window_end: datetime
    score: float


async def select_recent_incidents(conn: asyncpg.Connection, *, since: datetime) -> list[RecordedIncident]:
    """Incidents a new event may continue: windows ending after `since`, and every emerging one."""
    rows = await conn.fetch(
        "SELECT incident_id, kind, theme_id, level, window_start, window_end, score FROM incident"
        " WHERE window_end >= $1 OR kind = 'emerging'",
        since,
    )
    return [RecordedIncident(*r) for r in rows]


@dataclass(frozen=True)
class SegmentRow:
    item_id: int
    created_at: datetime
    values: dict[str, list[str]]


async def select_segment_rows(
    conn: asyncpg.Connection, *, theme_id: int, level: str, scope: str, since: datetime, until: datetime
) -> list[SegmentRow]:
    """The theme's items created in [since, until) with their segment fields (parents: their
    leaves' items). `language` is not an item column yet: it stays empty until one exists."""
    column = "feature_theme_id" if scope == "feature" else "theme_id"
    if level == "parent":
        where = f"i.{column} IN (SELECT theme_id FROM theme WHERE parent_id = $1)"
    else:
        where = f"i.{column} = $1"
    rows = await conn.fetch(
        "SELECT i.item_id, i.created_at, i.source, i.channel, i.priority, i.product, i.tags FROM item i"
        f" WHERE {where} AND i.created_at >= $2 AND i.created_at < $3 AND i.deleted_at IS NULL",
        theme_id, since, until,
    )  # fmt: skip

    def one(value: str | None) -> list[str]:
        return [value] if value else []

    return [
        SegmentRow(
            r["item_id"],
            r["created_at"],
            {
                "source": one(r["source"]),
                "channel": one(r["channel"]),
                "priority": one(r["priority"]),
                "product": one(r["product"]),
                "tag": list(r["tags"]),
                "language": [],
            },
        )
        for r in rows
    ]


@dataclass(frozen=True)
class IncidentWrite:
    dedupe_key: str
    kind: str
    theme_id: int
    level: str
    granularity: str
    window_start: datetime
    window_end: datetime
    observed: int
    expected: float
    score: float
    segments: list[SegmentModel]
    example_item_ids: list[int]


async def upsert_incident(conn: asyncpg.Connection, *, write: IncidentWrite, incident_id: int | None) -> int:
    """Create, or update the matched incident: its window grows, its figures are the strongest
    check's, its segments and examples are recomputed over the whole window."""
    segments = json.dumps([s.model_dump() for s in write.segments])
    if incident_id is None:
        new_id: int = await conn.fetchval(
            "INSERT INTO incident (dedupe_key, kind, theme_id, level, granularity, window_start, window_end,"
            " observed, expected, score, segments, example_item_ids)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12)"
            " ON CONFLICT (dedupe_key) DO UPDATE SET window_end = greatest(incident.window_end, excluded.window_end),"
            " updated_at = now()"
            " RETURNING incident_id",
            write.dedupe_key, write.kind, write.theme_id, write.level, write.granularity, write.window_start,
            write.window_end, write.observed, write.expected, write.score, segments, write.example_item_ids,
        )  # fmt: skip
        return new_id
    await conn.execute(
        "UPDATE incident SET window_start = least(window_start, $2), window_end = greatest(window_end, $3),"
        " observed = CASE WHEN $6 >= score THEN $4 ELSE observed END,"
        " expected = CASE WHEN $6 >= score THEN $5 ELSE expected END,"
        " score = greatest(score, $6), segments = $7::jsonb, example_item_ids = $8, updated_at = now()"
        " WHERE incident_id = $1",
        incident_id, write.window_start, write.window_end, write.observed, write.expected, write.score,
        segments, write.example_item_ids,
    )  # fmt: skip
    return incident_id


async def insert_deliveries(
    conn: asyncpg.Connection, *, incident_id: int, destinations: dict[int, datetime]
) -> list[int]:
    """One delivery per destination, once per incident (the idempotency record); returns new ones."""
    rows = await conn.fetch(
        "INSERT INTO incident_delivery (incident_id, alert_destination_id, not_before)"
        " SELECT $1, d, nb FROM unnest($2::bigint[], $3::timestamptz[]) AS x(d, nb)"
        " WHERE EXISTS (SELECT 1 FROM alert_destination WHERE alert_destination_id = d)"
        " ON CONFLICT DO NOTHING RETURNING alert_destination_id",
        incident_id, list(destinations), list(destinations.values()),
    )  # fmt: skip
    return [r[0] for r in rows]


async def claim_due_deliveries(conn: asyncpg.Connection, *, lost_after_s: int) -> list[tuple[int, int]]:
    """Pending deliveries whose time has come and that no job holds (never enqueued, or enqueued
    so long ago that its job was lost); marks them enqueued."""
    rows = await conn.fetch(
        "UPDATE incident_delivery SET enqueued_at = now()"
        " WHERE status = 'pending' AND not_before <= now()"
        " AND (enqueued_at IS NULL OR enqueued_at < now() - make_interval(secs => $1))"
        " RETURNING incident_id, alert_destination_id",
        lost_after_s,
    )
    return [(r[0], r[1]) for r in rows]


@dataclass(frozen=True)
class DeliveryWork:
    """A locked pending delivery with what its message needs."""

    status: str
    attempts: int
    not_before: datetime
    kind: str
    url: str | None
    email_to: list[str]
    sealed_secret: bytes | None
    incident_kind: str
    level: str
    theme_id: int
    theme_label: str
    observed: int
    expected: float
    window_start: datetime
    window_end: datetime
    segments: list[SegmentModel]
    example_item_ids: list[int]


async def lock_delivery(conn: asyncpg.Connection, *, incident_id: int, destination_id: int) -> DeliveryWork | None:
    """Lock one delivery row for this attempt (call inside a transaction); None if another job
    holds it or it does not exist."""
    r = await conn.fetchrow(
        "SELECT d.status, d.attempts, d.not_before, a.kind, a.url, a.email_to, a.sealed_secret,"
        " i.kind AS incident_kind, i.level, i.theme_id, t.label, i.observed, i.expected, i.window_start,"
        " i.window_end, i.segments, i.example_item_ids"
        " FROM incident_delivery d JOIN alert_destination a USING (alert_destination_id)"
        " JOIN incident i USING (incident_id) JOIN theme t ON t.theme_id = i.theme_id"
        " WHERE d.incident_id = $1 AND d.alert_destination_id = $2 FOR UPDATE OF d SKIP LOCKED",
        incident_id, destination_id,
    )  # fmt: skip
    if r is None:
        return None
    return DeliveryWork(
        r["status"], r["attempts"], r["not_before"], r["kind"], r["url"], list(r["email_to"]), r["sealed_secret"],
        r["incident_kind"], r["level"], r["theme_id"], r["label"], r["observed"], r["expected"], r["window_start"],
        r["window_end"], [SegmentModel.model_validate(s) for s in json.loads(r["segments"])],
        list(r["example_item_ids"]),
    )  # fmt: skip


async def update_delivery(
    conn: asyncpg.Connection, *, incident_id: int, destination_id: int, status: str, attempts: int, error: str | None
) -> None:
    await conn.execute(
        "UPDATE incident_delivery SET status = $3, attempts = $4, last_error = $5,"
        " sent_at = CASE WHEN $3 = 'sent' THEN now() END"
        " WHERE incident_id = $1 AND alert_destination_id = $2",
        incident_id, destination_id, status, attempts, error,
    )  # fmt: skip


async def select_detection_due(conn: asyncpg.Connection, *, every_s: int) -> str | None:
    """Why a detection run is due ("schedule" or "clustering"), or None."""
    row = await conn.fetchrow(
        "SELECT (SELECT max(started_at) FROM alert_detection) AS last,"
        " (SELECT max(finished_at) FROM clustering_run WHERE status = 'done') AS clustered,"
        " now() AS now"
    )
    assert row is not None
    last, clustered, now = row["last"], row["clustered"], row["now"]
    if last is not None and clustered is not None and clustered > last:
        return "clustering"
    if last is None or (now - last).total_seconds() >= every_s:
        return "schedule"
    return None


async def insert_detection(conn: asyncpg.Connection, *, trigger: str) -> int:
    """Record a new run (and forget runs older than a week: one starts every 30 s)."""
    await conn.execute("DELETE FROM alert_detection WHERE started_at < now() - interval '7 days'")
    detection_id: int = await conn.fetchval(
        "INSERT INTO alert_detection (trigger) VALUES ($1) RETURNING alert_detection_id", trigger
    )
    return detection_id


async def finish_detection(conn: asyncpg.Connection, *, detection_id: int, opened: int, updated: int) -> None:
    await conn.execute(
        "UPDATE alert_detection SET finished_at = now(), opened = $2, updated = $3 WHERE alert_detection_id = $1",
        detection_id, opened, updated,
    )  # fmt: skip
