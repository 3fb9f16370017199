"""The runs-and-health page's reads: failed jobs, worker heartbeats, webhook connection health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class JobFailureRow:
    job_failure_id: int
    job_id: str
    func_name: str
    error: str
    attempts: int
    failed_at: datetime
    replayed_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobFailures:
    total: int
    unreplayed: int
    last_day: int
    latest: list[JobFailureRow]


async def select_job_failures(conn: asyncpg.Connection, *, limit: int) -> JobFailures:
    counts = await conn.fetchrow(
        "SELECT count(*)::int AS total, count(*) FILTER (WHERE replayed_at IS NULL)::int AS unreplayed,"
        " count(*) FILTER (WHERE failed_at > now() - interval '1 day')::int AS last_day FROM job_failure"
    )
    assert counts is not None
    rows = await conn.fetch(
        "SELECT job_failure_id, job_id, func_name, left(error, 400) AS error, attempts, failed_at, replayed_at"
        " FROM job_failure ORDER BY failed_at DESC, job_failure_id DESC LIMIT $1",
        limit,
    )
    return JobFailures(
        counts["total"], counts["unreplayed"], counts["last_day"], [JobFailureRow(**dict(r)) for r in rows]
    )


@dataclass(frozen=True, slots=True)
class WorkerSeen:
    worker_name: str
    seen_at: datetime
    age_s: float


async def select_worker_heartbeats(conn: asyncpg.Connection) -> list[WorkerSeen]:
    rows = await conn.fetch(
        "SELECT worker_name, seen_at, extract(epoch FROM now() - seen_at)::float8 AS age_s FROM worker_heartbeat"
        " ORDER BY seen_at DESC LIMIT 50"
    )
    return [WorkerSeen(**dict(r)) for r in rows]


@dataclass(frozen=True, slots=True)
class ConnectionHealth:
    connection_id: str
    vendor: str
    name: str
    created_at: datetime
    last_received_at: datetime | None
    last_status: str | None
    last_error: str | None
    last_day: int
    failed_last_day: int


async def select_connection_health(conn: asyncpg.Connection) -> list[ConnectionHealth] | None:
    """Webhook connections with their last delivery; None while the webhooks migration is absent,
    so the page degrades instead of failing on a database that has not been migrated yet."""
    present = await conn.fetchval(
        "SELECT to_regclass('connection') IS NOT NULL AND to_regclass('delivery') IS NOT NULL"
    )
    if not present:
        return None
    rows = await conn.fetch(
        "SELECT c.connection_id::text AS connection_id, c.vendor, c.name, c.created_at,"
        " d.received_at AS last_received_at, d.status AS last_status, left(d.error, 200) AS last_error,"
        " coalesce(n.last_day, 0)::int AS last_day, coalesce(n.failed, 0)::int AS failed_last_day"
        " FROM connection c"
        " LEFT JOIN LATERAL (SELECT received_at, status, error FROM delivery"
        "   WHERE connection_id = c.connection_id ORDER BY received_at DESC LIMIT 1) d ON true"
        " LEFT JOIN LATERAL (SELECT count(*) AS last_day, count(*) FILTER (WHERE status = 'failed') AS failed"
        "   FROM delivery WHERE connection_id = c.connection_id AND received_at > now() - interval '1 day') n ON true"
        " ORDER BY c.created_at, c.connection_id"
    )
    return [ConnectionHealth(**dict(r)) for r in rows]
