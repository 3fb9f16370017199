"""Incidents: one row per detected event, not per item (spec/api.md "Alerts and incidents")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import Principal
from api.deps import DbConn, ReadKey, RowId, require
from api.errors import BadRequest, NotFound
from db.queries.alerts import select_incident, select_incidents, update_incident_status
from schemas.alerts import Incident, IncidentPage, IncidentStatus, IncidentUpdate

router = APIRouter(prefix="/v1/incidents", tags=["incidents"])

CurateKey = Annotated[Principal, Depends(require("curate"))]


def _cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 19:
        raise BadRequest("cursor is not one this service issued")
    return int(cursor)


@router.get("")
async def list_incidents(
    conn: DbConn,
    _: ReadKey,
    status: IncidentStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> IncidentPage:
    """Newest first, each with its over-represented segments, example items and deliveries."""
    rows = await select_incidents(conn, before=_cursor(cursor), status=status, limit=limit)
    next_cursor = str(rows[-1].incident_id) if len(rows) == limit else None
    return IncidentPage(data=rows, next_cursor=next_cursor)


@router.patch("/{incident_id}")
async def update_incident(incident_id: RowId, body: IncidentUpdate, conn: DbConn, _: CurateKey) -> Incident:
    """Acknowledge or resolve (or reopen) an incident."""
    async with conn.transaction():
        found = await update_incident_status(conn, incident_id=incident_id, status=body.status)
    incident = await select_incident(conn, incident_id=incident_id) if found else None
    if incident is None:
        raise NotFound(f"Incident {incident_id} does not exist.")
    return incident
