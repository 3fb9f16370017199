"""Report routes (spec/api.md) and their builders; windows in api/windows.py, CSV in api/csv_export.py.

The `build_*` functions are shared with `python -m api.cli report ...` and the dashboard, so the
CLI and the pages show exactly what the API returns. CSV answers: api/csv_export.py. Definitions: docs/metrics.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Query, Request, Response

from api.csv_export import CSV_RESPONSE, respond
from api.deps import AppSettings, DbConn, ReadKey
from api.report_cache import cached_report
from api.windows import Window, invalid, parse_window
from db.queries.reports import (
    select_feature_requests,
    select_reopen_rates,
    select_resolution_times,
    select_theme_trends,
)
from schemas.cx_reports import Hours
from schemas.items import Kind
from schemas.reports import (
    THEME_TREND_COLUMNS,
    FeatureGroupBy,
    FeatureRequestsReport,
    GroupBy,
    ReopenRateReport,
    ResolutionTimesReport,
    ThemeLevel,
    ThemeTrendsReport,
    TimeMetric,
    feature_request_columns,
    reopen_rate_columns,
    resolution_time_columns,
)

router = APIRouter(prefix="/v1/reports", tags=["reports"])


async def build_theme_trends(
    conn: asyncpg.Connection,
    *,
    window: Window,
    source: str | None = None,
    kind: str | None = None,
    top: int | None = None,
    level: ThemeLevel = "leaf",
    now: datetime | None = None,
) -> ThemeTrendsReport:
    """Whole local weeks: the window widens to the Monday before `from` and the Monday after `to`.
    The dashboard's "This week" page is this report over one week."""
    weeks = window.whole_weeks()
    generated_at = now or datetime.now(UTC)
    rows = await select_theme_trends(
        conn,
        first_week=weeks.start.date(),
        end_week=weeks.end.date(),
        tz=window.tz,
        as_of=min(weeks.end, generated_at),
        source=source,
        kind=kind,
        top=top,
        level=level,
    )
    return ThemeTrendsReport(definition="theme_volume", window=weeks.model(), generated_at=generated_at, rows=rows)


async def build_reopen_rate(
    conn: asyncpg.Connection, *, window: Window, group_by: GroupBy | None = None, level: ThemeLevel = "leaf"
) -> ReopenRateReport:
    rows = await select_reopen_rates(conn, start_at=window.start, end_at=window.end, group_by=group_by, level=level)
    return ReopenRateReport(definition="reopen_rate", window=window.model(), generated_at=datetime.now(UTC), rows=rows)


async def build_resolution_times(
    conn: asyncpg.Connection,
    *,
    window: Window,
    metric: TimeMetric,
    group_by: GroupBy | None = None,
    level: ThemeLevel = "leaf",
) -> ResolutionTimesReport:
    rows = await select_resolution_times(
        conn, metric=metric, start_at=window.start, end_at=window.end, group_by=group_by, level=level
    )
    return ResolutionTimesReport(definition=metric, window=window.model(), generated_at=datetime.now(UTC), rows=rows)


async def build_feature_requests(
    conn: asyncpg.Connection,
    *,
    window: Window,
    group_by: FeatureGroupBy = "week,theme",
    top: int | None = None,
    uncertain_below: float,
    level: ThemeLevel = "leaf",
) -> FeatureRequestsReport:
    """Grouped by week, the window widens to whole local weeks like theme-trends."""
    if "week" in group_by:
        window = window.whole_weeks()
    rows = await select_feature_requests(
        conn, start_at=window.start, end_at=window.end, tz=window.tz, group_by=group_by, top=top, level=level,
        uncertain_below=uncertain_below,
    )  # fmt: skip
    return FeatureRequestsReport(
        definition="feature_request_frequency", window=window.model(), generated_at=datetime.now(UTC), rows=rows
    )


From = Annotated[str, Query(alias="from", description="Window start (inclusive): RFC 3339, or a date in `tz`")]
To = Annotated[str, Query(description="Window end (exclusive): RFC 3339, or a date in `tz`")]
Tz = Annotated[str, Query(description="IANA time zone for dates, weeks and the echoed window")]
GroupByParam = Annotated[GroupBy | None, Query(description="Split rows by this key; one row when absent")]
Level = Annotated[
    ThemeLevel,
    Query(description="leaf: each item under its theme; parent: under its theme's parent (figures over its items)"),
]


@router.get("/theme-trends", response_model=ThemeTrendsReport, responses=CSV_RESPONSE)
async def get_theme_trends(
    request: Request,
    conn: DbConn,
    settings: AppSettings,
    _: ReadKey,
    from_: From,
    to: To,
    tz: Tz = "UTC",
    source: str | None = None,
    kind: Kind | None = None,
    top: Annotated[int | None, Query(ge=1, le=1000, description="Keep the N biggest themes")] = None,
    level: Level = "leaf",
) -> Response:
    """Volume per local week and theme, with week-over-week change, spikes and emerging themes.

    The window widens to whole weeks (Monday 00:00 in `tz`); the response echoes the weeks
    covered. Unassigned items are always their own row (`theme_id` null), and the items of hidden
    themes one row labelled `hidden` when there are any.
    """
    window = parse_window(from_, to, tz)
    return await cached_report(
        request, conn, settings, ThemeTrendsReport,
        lambda: build_theme_trends(conn, window=window, source=source, kind=kind, top=top, level=level),
        lambda report: respond(request, report, report.rows, THEME_TREND_COLUMNS, "theme-trends"),
    )  # fmt: skip


@router.get("/reopen-rate", response_model=ReopenRateReport, responses=CSV_RESPONSE)
async def get_reopen_rate(
    request: Request,
    conn: DbConn,
    settings: AppSettings,
    _: ReadKey,
    from_: From,
    to: To,
    tz: Tz = "UTC",
    group_by: GroupByParam = None,
    level: Level = "leaf",
) -> Response:
    """Of the tickets first solved in the window, how many reopened, and how often."""
    window = parse_window(from_, to, tz)
    return await cached_report(
        request, conn, settings, ReopenRateReport,
        lambda: build_reopen_rate(conn, window=window, group_by=group_by, level=level),
        lambda report: respond(request, report, report.rows, reopen_rate_columns(group_by), "reopen-rate"),
    )  # fmt: skip


@router.get("/resolution-times", response_model=ResolutionTimesReport, responses=CSV_RESPONSE)
async def get_resolution_times(
    request: Request,
    conn: DbConn,
    settings: AppSettings,
    _: ReadKey,
    metric: TimeMetric,
    from_: From,
    to: To,
    tz: Tz = "UTC",
    group_by: GroupByParam = None,
    level: Level = "leaf",
    hours: Annotated[Hours, Query(description="calendar time, or only a schedule's business hours")] = "calendar",
    schedule_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="the schedule, with hours=business")
    ] = None,
) -> Response:
    """Count, median, p90 and mean in seconds. first_response takes the tickets created in the
    window; first_resolution / full_resolution those first / last solved in it."""
    window = parse_window(from_, to, tz)
    columns = resolution_time_columns(metric, group_by)
    if hours == "business":
        from api.routes.cx_reports import build_business_times  # the CX module imports this one

        if schedule_id is None:
            raise invalid("schedule_id", "hours=business needs schedule_id (see GET /v1/schedules)")
        report = await build_business_times(
            conn, window=window, metric=metric, schedule_id=schedule_id, group_by=group_by, level=level
        )
        return respond(request, report, report.rows, columns, "resolution-times")
    return await cached_report(
        request, conn, settings, ResolutionTimesReport,
        lambda: build_resolution_times(conn, window=window, metric=metric, group_by=group_by, level=level),
        lambda report: respond(request, report, report.rows, columns, "resolution-times"),
    )  # fmt: skip


@router.get("/feature-requests", response_model=FeatureRequestsReport, responses=CSV_RESPONSE)
async def get_feature_requests(
    request: Request,
    conn: DbConn,
    settings: AppSettings,
    _: ReadKey,
    from_: From,
    to: To,
    tz: Tz = "UTC",
    group_by: Annotated[FeatureGroupBy, Query(description="week, theme, or week,theme")] = "week,theme",
    top: Annotated[int | None, Query(ge=1, le=1000, description="theme only: the N most requested")] = None,
    level: Level = "leaf",
) -> Response:
    """How often features are requested (items with intent feature_request), by how many distinct
    requesters, with forum votes summed; per week and/or feature theme. `group_by=theme` ranks the
    most requested features of the window. `uncertain`: how many of `count` a model labelled with
    a confidence below the INTENT_UNCERTAIN_BELOW setting."""
    window = parse_window(from_, to, tz)
    return await cached_report(
        request, conn, settings, FeatureRequestsReport,
        lambda: build_feature_requests(
            conn, window=window, group_by=group_by, top=top, level=level,
            uncertain_below=settings.intent_uncertain_below,
        ),
        lambda report: respond(request, report, report.rows, feature_request_columns(group_by), "feature-requests"),
    )  # fmt: skip
