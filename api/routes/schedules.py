"""Business-hours schedules, used by `GET /v1/reports/resolution-times?hours=business`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from api.business_hours import clock_for
from api.cursors import decode_after, encode_after
from api.deps import AdminKey, DbConn, ReadKey
from db.queries.schedules import insert_schedule, select_schedules
from schemas.schedules import Schedule, ScheduleCreate, SchedulePage

router = APIRouter(prefix="/v1/schedules", tags=["schedules"])


@router.post("", status_code=201)
async def create_schedule(body: ScheduleCreate, conn: DbConn, _: AdminKey) -> Schedule:
    """Weekly hours per weekday (`mon`..`sun`, each a list of `["HH:MM", "HH:MM"]` shifts, "24:00"
    for midnight), an IANA time zone and holiday dates. Overlapping or inverted shifts are a 422."""
    clock = await run_in_threadpool(clock_for, body)  # ~0.5 s of CPU: off the event loop
    async with conn.transaction():
        return await insert_schedule(conn, schedule=body, clock=(clock.starts, clock.lengths, clock.before))


@router.get("")
async def list_schedules(
    conn: DbConn,
    _: ReadKey,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SchedulePage:
    data = await select_schedules(conn, after_id=decode_after(cursor), limit=limit)
    return SchedulePage(data=data, next_cursor=encode_after(data[-1].schedule_id) if len(data) == limit else None)
