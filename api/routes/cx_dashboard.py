"""The dashboard's customer-experience page (session cookie, like every dashboard page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from api.dashboard.cx import build_cx
from api.dashboard.render import render
from api.dashboard.session import Viewer
from api.dashboard.weeks import parse_weeks
from api.deps import DbConn
from api.routes.dashboard import DashboardRoute, Tz, Week, page_context, reused
from schemas.reports import ThemeLevel

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


@router.get("/customer", response_class=HTMLResponse)
async def get_customer_page(
    request: Request,
    conn: DbConn,
    _: Viewer,
    tz: Tz = None,
    week: Week = None,
    level: Annotated[ThemeLevel, Query()] = "leaf",
) -> Response:
    weeks = parse_weeks(tz, week)

    async def build() -> Response:
        context = await page_context(conn, weeks=weeks, source=None, week=week)
        context.update(await build_cx(conn, weeks=weeks, level=level))
        return render(request, "cx.html", {**context, "nav": "customer"})

    return await reused(request, conn, build)
