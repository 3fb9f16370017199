"""Business-hours schedules: insert and read (schedules never change once written)."""

from __future__ import annotations

import json

import asyncpg

from schemas.schedules import Schedule, ScheduleCreate

_COLUMNS = "schedule_id, name, tz, hours, holidays, created_at"


def _schedule(row: asyncpg.Record) -> Schedule:
    return Schedule(**{**dict(row), "hours": json.loads(row["hours"])})


async def insert_schedule(
    conn: asyncpg.Connection, *, schedule: ScheduleCreate, clock: tuple[list[float], list[float], list[float]]
) -> Schedule:
    """Store a schedule with its clock arrays (starts, lengths, open seconds before each start)."""
    row = await conn.fetchrow(
        "INSERT INTO schedule (name, tz, hours, holidays, clock_starts, clock_lengths, clock_before)"
        f" VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7) RETURNING {_COLUMNS}",
        schedule.name,
        schedule.tz,
        json.dumps(schedule.hours),
        sorted(set(schedule.holidays)),
        *clock,
    )
    assert row is not None
    return _schedule(row)


async def select_schedule(conn: asyncpg.Connection, *, schedule_id: int) -> Schedule | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM schedule WHERE schedule_id = $1", schedule_id)
    return _schedule(row) if row else None


async def select_schedules(conn: asyncpg.Connection, *, after_id: int, limit: int) -> list[Schedule]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM schedule WHERE schedule_id > $1 ORDER BY schedule_id LIMIT $2", after_id, limit
    )
    return [_schedule(r) for r in rows]
