"""The dashboard's alerts page and its two actions (incident status, rule removal).

Actions are plain form posts: the session cookie is SameSite=Lax (no cross-site posts carry it)
and the Origin is checked as on sign-in. Changing an incident needs a key with curate, removing a
rule admin, as through the API.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from api.dashboard.alerts import build_alerts
from api.dashboard.render import render
from api.dashboard.session import Viewer
from api.dashboard.weeks import parse_weeks
from api.deps import DbConn, RowId
from api.errors import BadRequest, Forbidden, NotFound
from api.routes.dashboard import MAX_FORM_BYTES, DashboardRoute, _check_same_origin, _page_context
from db.queries.alerts import delete_rule, update_incident_status

router = APIRouter(tags=["dashboard"], route_class=DashboardRoute, include_in_schema=False)

STATUSES = ("open", "acknowledged", "resolved")


@router.get("/alerts", response_class=HTMLResponse)
async def get_alerts_page(
    request: Request,
    conn: DbConn,
    viewer: Viewer,
    tz: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    if status not in (None, "", *STATUSES):
        raise BadRequest(f"Unknown status {status!r}: use open, acknowledged or resolved.")
    weeks = parse_weeks(tz, None)
    context = await _page_context(conn, weeks=weeks, source=None, week=None)
    context.update(await build_alerts(conn, status=status or None))
    context["can_curate"] = viewer.allows("curate")
    context["can_admin"] = viewer.allows("admin")
    return render(request, "alerts.html", {**context, "nav": "alerts"})


async def _form(request: Request) -> dict[str, str]:
    _check_same_origin(request)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadRequest("That form is too large.")
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


@router.post("/alerts/incidents/{incident_id}")
async def post_incident_status(request: Request, incident_id: RowId, conn: DbConn, viewer: Viewer) -> Response:
    if not viewer.allows("curate"):
        raise Forbidden("Acknowledging or resolving an incident needs a key with the curate scope.")
    status = (await _form(request)).get("status")
    if status not in STATUSES:
        raise BadRequest("status must be open, acknowledged or resolved.")
    async with conn.transaction():
        found = await update_incident_status(conn, incident_id=incident_id, status=status)
    if not found:
        raise NotFound(f"Incident {incident_id} does not exist.")
    return RedirectResponse("/alerts", status_code=303)


@router.post("/alerts/rules/{rule_id}/delete")
async def post_rule_delete(request: Request, rule_id: RowId, conn: DbConn, viewer: Viewer) -> Response:
    if not viewer.allows("admin"):
        raise Forbidden("Removing a rule needs an admin key.")
    await _form(request)
    async with conn.transaction():
        deleted = await delete_rule(conn, rule_id=rule_id)
    if not deleted:
        raise NotFound(f"Rule {rule_id} does not exist.")
    return RedirectResponse("/alerts", status_code=303)
