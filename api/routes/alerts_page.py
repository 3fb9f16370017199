"""The dashboard's alerts page and its actions: incident status (curate); adding a destination or
a rule, sending a test message and removing a rule (admin), each through the same code as the API.

Actions are plain form posts: the session cookie is SameSite=Lax (no cross-site posts carry it)
and the Origin is checked as on sign-in.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

import asyncpg
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from api.auth import Principal
from api.dashboard.alerts import build_alerts
from api.dashboard.render import render
from api.dashboard.session import Viewer
from api.dashboard.weeks import parse_weeks
from api.deps import AppSettings, DbConn, RowId
from api.errors import BadRequest, Forbidden, NotFound, Unprocessable
from api.routes.alerts import create_destination, create_rule, test_destination
from api.routes.dashboard import MAX_FORM_BYTES, DashboardRoute, check_same_origin, page_context
from db.queries.alerts import delete_rule, update_incident_status
from schemas.alerts import DestinationCreate, RuleCreate

router = APIRouter(tags=["dashboard"], route_class=DashboardRoute, include_in_schema=False)

STATUSES = ("open", "acknowledged", "resolved")


async def _page(
    request: Request,
    conn: asyncpg.Connection,
    viewer: Principal,
    *,
    tz: str | None = None,
    status: str | None = None,
    notice: str | None = None,
    secret: str | None = None,
    status_code: int = 200,
) -> Response:
    weeks = parse_weeks(tz, None)
    context = await page_context(conn, weeks=weeks, source=None, week=None)
    context.update(await build_alerts(conn, status=status or None))
    context.update(
        can_curate=viewer.allows("curate"), can_admin=viewer.allows("admin"), notice=notice, secret=secret,
        kinds=("spike", "emerging", "feature_surge"),
    )  # fmt: skip
    return render(request, "alerts.html", {**context, "nav": "alerts"}, status_code=status_code)


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
    return await _page(request, conn, viewer, tz=tz, status=status)


async def _form_lists(request: Request) -> dict[str, list[str]]:
    check_same_origin(request)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadRequest("That form is too large.")
    return parse_qs(body.decode("utf-8", "replace"))


async def _form(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in (await _form_lists(request)).items()}


def _problems(exc: Unprocessable | ValidationError) -> str:
    errors = exc.errors() if isinstance(exc, ValidationError) else exc.detail
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in errors)


def _ids(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@router.post("/alerts/destinations", response_class=HTMLResponse)
async def post_destination(request: Request, conn: DbConn, settings: AppSettings, viewer: Viewer) -> Response:
    if not viewer.allows("admin"):
        raise Forbidden("Adding a destination needs an admin key.")
    form = await _form(request)
    fields: dict[str, object] = {"kind": form.get("kind"), "name": form.get("name")}
    if form.get("kind") == "email":
        fields["to"] = _ids(form.get("to", ""))
    else:
        fields["url"] = form.get("url") or None
    try:
        created = await create_destination(DestinationCreate.model_validate(fields), conn, settings, viewer)
    except (Unprocessable, ValidationError) as exc:
        return await _page(request, conn, viewer, notice=f"Not added: {_problems(exc)}", status_code=422)
    return await _page(request, conn, viewer, notice=f"Destination {created.name!r} added.", secret=created.secret)


@router.post("/alerts/destinations/{destination_id}/test", response_class=HTMLResponse)
async def post_destination_test(
    request: Request, destination_id: RowId, conn: DbConn, settings: AppSettings, viewer: Viewer
) -> Response:
    if not viewer.allows("admin"):
        raise Forbidden("Sending a test message needs an admin key.")
    await _form(request)
    result = await test_destination(destination_id, conn, settings, viewer)
    if result.status == "sent":
        notice = f"Test message to destination {destination_id} sent."
    else:
        notice = f"Test message to destination {destination_id} failed: {result.error}"
    return await _page(request, conn, viewer, notice=notice)


@router.post("/alerts/rules", response_class=HTMLResponse)
async def post_rule(request: Request, conn: DbConn, viewer: Viewer) -> Response:
    if not viewer.allows("admin"):
        raise Forbidden("Adding a rule needs an admin key.")
    form = await _form_lists(request)

    def one(name: str) -> str:
        return form.get(name, [""])[0].strip()

    fields: dict[str, object] = {
        "name": one("name"),
        "on": form.get("on", []),
        "level": one("level") or None,
        "theme_ids": _ids(one("theme_ids")),
        "min_volume": one("min_volume") or 0,
        "destination_ids": form.get("destination_ids", []),
    }
    if one("quiet_start") or one("quiet_end"):
        fields["quiet_hours"] = {"start": one("quiet_start"), "end": one("quiet_end"), "tz": one("quiet_tz") or "UTC"}
    try:
        rule = await create_rule(RuleCreate.model_validate(fields), conn, viewer)
    except (Unprocessable, ValidationError) as exc:
        return await _page(request, conn, viewer, notice=f"Not added: {_problems(exc)}", status_code=422)
    return await _page(request, conn, viewer, notice=f"Rule {rule.name!r} added.")


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
