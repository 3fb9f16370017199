"""The dashboard's pages, its sign-in and sign-out, and its one JSON read (an item).

Pages authenticate with the session cookie (api/dashboard/session.py), never a bearer key. Every
failure on these routes answers HTML: no session gives 401 with the sign-in form, a bad filter
422 (as the API answers it), a missing theme 404 (DashboardRoute below), so a person never lands
on a JSON envelope.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from api.dashboard.curation import build_theme_curation
from api.dashboard.features import build_features
from api.dashboard.health import build_health
from api.dashboard.operations import METRIC_NAMES, build_operations, parse_metric
from api.dashboard.overview import build_overview
from api.dashboard.render import SECURITY_HEADERS, render
from api.dashboard.session import (
    SignInRequired,
    Viewer,
    clear_session_cookie,
    close_session,
    is_secure_cookie,
    open_session,
    set_session_cookie,
)
from api.dashboard.theme import build_theme
from api.dashboard.weeks import COMMON_ZONES, Weeks, parse_weeks
from api.deps import AppSettings, DbConn, RedisClient, RowId, authenticate
from api.errors import AppError, Forbidden, NotFound, Unauthorized, code_for_status, envelope
from api.report_cache import cached_page
from api.windows import parse_day
from db.queries.dashboard import select_sources
from db.queries.item_reads import select_item
from schemas.items import Item

MAX_FORM_BYTES = 8 * 1024


def _safe_next(value: str | None) -> str:
    """Only a path on this site: an open redirect would turn the sign-in page into a phishing aid."""
    if not value or not value.startswith("/") or value.startswith("//") or value.startswith("/\\"):
        return "/"
    return value


def sign_in_page(
    request: Request, *, message: str | None, status_code: int, next_path: str | None = None
) -> HTMLResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return render(
        request,
        "signin.html",
        {
            "message": message,
            "next_path": _safe_next(next_path or (here if request.url.path not in ("/login", "/logout") else "/")),
            "cookie_will_be_dropped": request.url.scheme != "https"
            and is_secure_cookie(request, request.state.settings),
        },
        status_code=status_code,
    )


def _message(detail: Any) -> str:
    """A validation error's problems as one sentence; any other detail as it is."""
    if isinstance(detail, list):
        return "; ".join(str(p.get("msg", p)) if isinstance(p, dict) else str(p) for p in detail)
    return str(detail)


def error_page(request: Request, status_code: int, detail: str) -> Response:
    if request.url.path.endswith(".json"):
        return envelope(status_code, code_for_status(status_code), detail, dict(SECURITY_HEADERS))
    return render(request, "error.html", {"status_code": status_code, "detail": detail}, status_code=status_code)


class DashboardRoute(APIRoute):
    """Turns the errors of a dashboard route (raised in its dependencies too) into HTML pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            started = time.perf_counter()
            response = await respond(request)
            # Server-Timing shows the page's server time in the browser's devtools and to bench/dashboard.py.
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            return response

        async def respond(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                if request.url.path.endswith(".json"):
                    return error_page(request, 401, exc.message or "Sign in to the dashboard first.")
                return sign_in_page(request, message=exc.message, status_code=401)
            except AppError as exc:
                return error_page(request, exc.status_code, _message(exc.detail))
            except RequestValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors())
                return error_page(request, 422, f"Bad request: {problems}")

        return guarded


router = APIRouter(tags=["dashboard"], route_class=DashboardRoute, include_in_schema=False)

Tz = Annotated[str | None, Query(description="IANA time zone: weeks start Monday 00:00 here")]
Source = Annotated[str | None, Query(max_length=64)]
Week = Annotated[str | None, Query(max_length=10, description="Any date in the week, YYYY-MM-DD")]


async def page_context(conn: DbConn, *, weeks: Weeks, source: str | None, week: str | None) -> dict[str, Any]:
    """What the layout needs on every page: the filters (kept in every link) and their choices.
    A week is carried in links only when one was chosen, so "this week" keeps moving with time."""
    zones = list(COMMON_ZONES) if weeks.tz in COMMON_ZONES else [weeks.tz, *COMMON_ZONES]
    return {
        "weeks": weeks,
        "source": source,
        "sources": await select_sources(conn),
        "zones": zones,
        "filters": {"tz": weeks.tz, "source": source, "week": weeks.selected.isoformat() if week else None},
        "signed_in": True,
    }


def _filters(tz: str | None, source: str | None, week: str | None) -> tuple[Weeks, str | None]:
    return parse_weeks(tz, week), (source or None)


def reused(request: Request, conn: DbConn, build: Callable[[], Awaitable[Response]]) -> Awaitable[Response]:
    """A page that every signed-in viewer sees alike, reused while fresh like a report
    (api/report_cache.py)."""
    return cached_page(request, conn, request.state.settings, build, SECURITY_HEADERS)


@router.get("/", response_class=HTMLResponse)
async def get_overview(
    request: Request, conn: DbConn, _: Viewer, tz: Tz = None, source: Source = None, week: Week = None
) -> Response:
    weeks, source = _filters(tz, source, week)

    async def build() -> Response:
        context = await page_context(conn, weeks=weeks, source=source, week=week)
        context.update(await build_overview(conn, weeks=weeks, source=source))
        return render(request, "overview.html", {**context, "nav": "overview"})

    return await reused(request, conn, build)


@router.get("/themes/{theme_id}", response_class=HTMLResponse)
async def get_theme_page(
    request: Request,
    conn: DbConn,
    viewer: Viewer,
    theme_id: RowId,
    tz: Tz = None,
    week: Week = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    items_week: Annotated[str | None, Query(max_length=10, description="Only the items of this week")] = None,
) -> Response:
    weeks = parse_weeks(tz, week)
    context = await page_context(conn, weeks=weeks, source=None, week=week)
    only = parse_day(items_week, "items_week") if items_week else None
    pii = viewer.allows("pii")
    context.update(await build_theme(conn, theme_id=theme_id, weeks=weeks, cursor=cursor, pii=pii, items_week=only))
    context.update(await build_theme_curation(conn, viewer=viewer, theme=context["theme"]))
    nav = "features" if context["theme"].scope == "feature" else "overview"
    return render(request, "theme.html", {**context, "nav": nav})


@router.get("/features", response_class=HTMLResponse)
async def get_features(
    request: Request, conn: DbConn, _: Viewer, tz: Tz = None, source: Source = None, week: Week = None
) -> Response:
    weeks, source = _filters(tz, source, week)

    async def build() -> Response:
        context = await page_context(conn, weeks=weeks, source=source, week=week)
        context.update(await build_features(conn, weeks=weeks, source=source))
        return render(request, "features.html", {**context, "nav": "features"})

    return await reused(request, conn, build)


@router.get("/operations", response_class=HTMLResponse)
async def get_operations(
    request: Request,
    conn: DbConn,
    _: Viewer,
    tz: Tz = None,
    week: Week = None,
    metric: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    weeks = parse_weeks(tz, week)
    chosen = parse_metric(metric)

    async def build() -> Response:
        context = await page_context(conn, weeks=weeks, source=None, week=week)
        context.update(await build_operations(conn, weeks=weeks, metric=chosen))
        context["filters"]["metric"] = metric
        return render(request, "operations.html", {**context, "nav": "operations", "metric_names": METRIC_NAMES})

    return await reused(request, conn, build)


@router.get("/runs", response_class=HTMLResponse)
async def get_runs(request: Request, conn: DbConn, redis: RedisClient, _: Viewer, tz: Tz = None) -> Response:
    weeks = parse_weeks(tz, None)
    context = await page_context(conn, weeks=weeks, source=None, week=None)
    context.update(await build_health(conn, redis=redis))
    return render(request, "runs.html", {**context, "nav": "runs"})


@router.get("/items/{item_id}.json")
async def get_item_json(item_id: RowId, conn: DbConn, viewer: Viewer) -> Item:
    """The item as GET /v1/items/{item_id} returns it, for the signed-in dashboard."""
    item = await select_item(conn, item_id=item_id, pii=viewer.allows("pii"))
    if item is None:
        raise NotFound(f"Item {item_id} does not exist.")
    return item


@router.get("/favicon.ico")
async def get_favicon() -> Response:
    """Browsers ask for it on every non-HTML page (the JSON item); answer without a 404."""
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/login", response_class=HTMLResponse)
async def get_login(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    message = "You are signed out." if request.query_params.get("signed_out") else None
    return sign_in_page(request, message=message, status_code=200, next_path=next)


def check_same_origin(request: Request) -> None:
    """Refuse form posts made from another site's page (login CSRF); SameSite=Lax already keeps
    the cookie off cross-site posts, so this only matters for signing someone in."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise Forbidden("This form can only be sent from the dashboard's own pages.")


@router.post("/login", response_class=HTMLResponse)
async def create_session(request: Request, conn: DbConn, settings: AppSettings) -> Response:
    check_same_origin(request)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return sign_in_page(request, message="That form is too large.", status_code=400)
    form = parse_qs(body.decode("utf-8", "replace"))
    key = form.get("api_key", [""])[0].strip()
    next_path = _safe_next(form.get("next", ["/"])[0])
    if not key:
        return sign_in_page(request, message="Paste an API key to sign in.", status_code=401, next_path=next_path)
    try:
        principal = await authenticate(request, conn, key)
    except Unauthorized:
        return sign_in_page(
            request, message="That key is not valid, or it has been revoked.", status_code=401, next_path=next_path
        )
    if not principal.allows("read"):
        return sign_in_page(
            request,
            message="That key lacks the read scope: ask an admin for a key with read (or admin).",
            status_code=403,
            next_path=next_path,
        )
    token = await open_session(conn, principal=principal, settings=settings)
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, request, settings, token)
    return response


async def _sign_out(request: Request, conn: DbConn, settings: AppSettings) -> Response:
    await close_session(conn, request)
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    clear_session_cookie(response, request, settings)
    return response


@router.post("/logout")
async def delete_session(request: Request, conn: DbConn, settings: AppSettings) -> Response:
    check_same_origin(request)
    return await _sign_out(request, conn, settings)


@router.get("/logout")
async def get_logout(request: Request, conn: DbConn, settings: AppSettings) -> Response:
    return await _sign_out(request, conn, settings)
