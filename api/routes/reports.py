"""Report routes (spec/api.md), their window parsing, and CSV answers.

The `build_*` functions are shared with `python -m api.cli report ...`, so the CLI prints exactly
what the API returns. Definitions: docs/metrics.md.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, available_timezones

import asyncpg
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from api.deps import AppSettings, DbConn, ReadKey
from api.errors import Unprocessable
from db.queries.item_reads import ItemFilter
from db.queries.reports import (
    select_feature_requests,
    select_item_export_rows,
    select_reopen_rates,
    select_resolution_times,
    select_theme_trends,
)
from schemas.items import Kind
from schemas.reports import (
    ITEM_EXPORT_COLUMNS,
    THEME_TREND_COLUMNS,
    FeatureGroupBy,
    FeatureRequestsReport,
    GroupBy,
    ReopenRateReport,
    ReportWindow,
    ResolutionTimesReport,
    ThemeTrendsReport,
    TimeMetric,
    feature_request_columns,
    reopen_rate_columns,
    resolution_time_columns,
)

router = APIRouter(prefix="/v1/reports", tags=["reports"])

MAX_WINDOW = timedelta(days=3 * 366)
MIN_YEAR, MAX_YEAR = 1970, 2999  # keeps the week arithmetic (trailing weeks, next Monday) in range
EXPORT_CHUNK = 5_000


@dataclass(frozen=True)
class Window:
    """A half-open window [start, end) of aware datetimes written in `tz`."""

    start: datetime
    end: datetime
    tz: str

    def model(self) -> ReportWindow:
        return ReportWindow(from_=self.start, to=self.end, tz=self.tz)


def _invalid(field: str, msg: str) -> Unprocessable:
    return Unprocessable([{"type": "value_error", "loc": ["query", field], "msg": msg}])


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def parse_tz(tz: str) -> ZoneInfo:
    if tz not in _known_zones():
        raise _invalid("tz", f"Unknown time zone {tz!r}: use an IANA name such as 'America/Los_Angeles'")
    return ZoneInfo(tz)


def parse_instant(value: str, field: str, zone: ZoneInfo) -> datetime:
    """An RFC 3339 timestamp (with offset), or a date meaning local midnight in `zone`."""
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), time(), tzinfo=zone)
        else:
            parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise _invalid(field, f"{value!r} has no UTC offset; write e.g. 2026-11-02T10:00:00Z or a date")
        local = parsed.astimezone(zone)
    except (ValueError, OverflowError):
        raise _invalid(field, f"{value!r} is neither a date (YYYY-MM-DD) nor an RFC 3339 timestamp") from None
    if not MIN_YEAR <= local.year <= MAX_YEAR:
        raise _invalid(field, f"{value!r} is outside the years {MIN_YEAR}-{MAX_YEAR}")
    return local


def parse_window(from_: str, to: str, tz: str) -> Window:
    zone = parse_tz(tz)
    start, end = parse_instant(from_, "from", zone), parse_instant(to, "to", zone)
    if start >= end:
        raise _invalid("to", "The window is empty: `from` must be before `to` (the window is [from, to))")
    if end - start > MAX_WINDOW:
        raise _invalid("to", f"The window is longer than {MAX_WINDOW.days} days; ask for a shorter one")
    return Window(start, end, tz)


def week_bounds(window: Window) -> tuple[date, date]:
    """The Mondays (local) of the first week touching the window and of the week after the last."""
    first = window.start.date() - timedelta(days=window.start.weekday())
    last_day = window.end.date() - timedelta(days=1 if window.end.time() == time() else 0)
    return first, last_day - timedelta(days=last_day.weekday()) + timedelta(weeks=1)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


async def build_theme_trends(
    conn: asyncpg.Connection,
    *,
    window: Window,
    source: str | None = None,
    kind: str | None = None,
    top: int | None = None,
    now: datetime | None = None,
) -> ThemeTrendsReport:
    """Whole local weeks: the window widens to the Monday before `from` and the Monday after `to`."""
    zone = ZoneInfo(window.tz)
    first_week, end_week = week_bounds(window)
    weeks = Window(_local_midnight(first_week, zone), _local_midnight(end_week, zone), window.tz)
    generated_at = now or datetime.now(UTC)
    rows = await select_theme_trends(
        conn,
        first_week=first_week,
        end_week=end_week,
        tz=window.tz,
        as_of=min(weeks.end, generated_at),
        source=source,
        kind=kind,
        top=top,
    )
    return ThemeTrendsReport(definition="theme_volume", window=weeks.model(), generated_at=generated_at, rows=rows)


async def build_reopen_rate(
    conn: asyncpg.Connection, *, window: Window, group_by: GroupBy | None = None
) -> ReopenRateReport:
    rows = await select_reopen_rates(conn, start_at=window.start, end_at=window.end, group_by=group_by)
    return ReopenRateReport(definition="reopen_rate", window=window.model(), generated_at=datetime.now(UTC), rows=rows)


async def build_resolution_times(
    conn: asyncpg.Connection, *, window: Window, metric: TimeMetric, group_by: GroupBy | None = None
) -> ResolutionTimesReport:
    rows = await select_resolution_times(
        conn, metric=metric, start_at=window.start, end_at=window.end, group_by=group_by
    )
    return ResolutionTimesReport(definition=metric, window=window.model(), generated_at=datetime.now(UTC), rows=rows)


async def build_feature_requests(
    conn: asyncpg.Connection,
    *,
    window: Window,
    group_by: FeatureGroupBy = "week,theme",
    top: int | None = None,
    uncertain_below: float,
) -> FeatureRequestsReport:
    """Grouped by week, the window widens to whole local weeks like theme-trends."""
    if "week" in group_by:
        zone = ZoneInfo(window.tz)
        first_week, end_week = week_bounds(window)
        window = Window(_local_midnight(first_week, zone), _local_midnight(end_week, zone), window.tz)
    rows = await select_feature_requests(
        conn, start_at=window.start, end_at=window.end, tz=window.tz, group_by=group_by, top=top,
        uncertain_below=uncertain_below,
    )  # fmt: skip
    return FeatureRequestsReport(
        definition="feature_request_frequency", window=window.model(), generated_at=datetime.now(UTC), rows=rows
    )


def wants_csv(request: Request) -> bool:
    return "text/csv" in request.headers.get("accept", "").lower()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return value


def csv_text(columns: list[str], rows: Iterable[Mapping[str, Any]], *, header: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def respond(request: Request, report: BaseModel, rows: list[Any], columns: list[str], name: str) -> Response:
    """The report as JSON, or as CSV (header row = field names) when the request accepts text/csv."""
    if wants_csv(request):
        body = csv_text(columns, (r.model_dump(mode="json", exclude_unset=True) for r in rows), header=True)
        headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    return JSONResponse(report.model_dump(mode="json", exclude_unset=True, by_alias=True))


def items_csv_response(conn: asyncpg.Connection, filters: ItemFilter) -> StreamingResponse:
    """Every matching item as CSV, read in keyset pages so no export holds a long transaction."""

    async def chunks() -> AsyncIterator[str]:
        yield csv_text(ITEM_EXPORT_COLUMNS, [], header=True)
        after_id = 0
        while True:
            page = await select_item_export_rows(conn, filters=filters, after_id=after_id, limit=EXPORT_CHUNK)
            if page:
                yield csv_text(ITEM_EXPORT_COLUMNS, (r.model_dump(mode="json") for r in page))
            if len(page) < EXPORT_CHUNK:
                return
            after_id = page[-1].item_id

    headers = {"Content-Disposition": 'attachment; filename="items.csv"'}
    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8", headers=headers)


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "JSON, or CSV with Accept: text/csv"}
}
From = Annotated[str, Query(alias="from", description="Window start (inclusive): RFC 3339, or a date in `tz`")]
To = Annotated[str, Query(description="Window end (exclusive): RFC 3339, or a date in `tz`")]
Tz = Annotated[str, Query(description="IANA time zone for dates, weeks and the echoed window")]
GroupByParam = Annotated[GroupBy | None, Query(description="Split rows by this key; one row when absent")]


@router.get("/theme-trends", response_model=ThemeTrendsReport, responses=CSV_RESPONSE)
async def get_theme_trends(
    request: Request,
    conn: DbConn,
    _: ReadKey,
    from_: From,
    to: To,
    tz: Tz = "UTC",
    source: str | None = None,
    kind: Kind | None = None,
    top: Annotated[int | None, Query(ge=1, le=1000, description="Keep the N biggest themes")] = None,
) -> Response:
    """Volume per local week and theme, with week-over-week change, spikes and emerging themes.

    The window widens to whole weeks (Monday 00:00 in `tz`); the response echoes the weeks
    covered. Unassigned items are always their own row (`theme_id` null).
    """
    window = parse_window(from_, to, tz)
    report = await build_theme_trends(conn, window=window, source=source, kind=kind, top=top)
    return respond(request, report, report.rows, THEME_TREND_COLUMNS, "theme-trends")


@router.get("/reopen-rate", response_model=ReopenRateReport, responses=CSV_RESPONSE)
async def get_reopen_rate(
    request: Request, conn: DbConn, _: ReadKey, from_: From, to: To, tz: Tz = "UTC", group_by: GroupByParam = None
) -> Response:
    """Of the tickets first solved in the window, how many reopened, and how often."""
    report = await build_reopen_rate(conn, window=parse_window(from_, to, tz), group_by=group_by)
    return respond(request, report, report.rows, reopen_rate_columns(group_by), "reopen-rate")


@router.get("/resolution-times", response_model=ResolutionTimesReport, responses=CSV_RESPONSE)
async def get_resolution_times(
    request: Request,
    conn: DbConn,
    _: ReadKey,
    metric: TimeMetric,
    from_: From,
    to: To,
    tz: Tz = "UTC",
    group_by: GroupByParam = None,
) -> Response:
    """Count, median, p90 and mean in seconds. first_response takes the tickets created in the
    window; first_resolution / full_resolution those first / last solved in it."""
    report = await build_resolution_times(conn, window=parse_window(from_, to, tz), metric=metric, group_by=group_by)
    return respond(request, report, report.rows, resolution_time_columns(metric, group_by), "resolution-times")


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
) -> Response:
    """How often features are requested (items with intent feature_request), by how many distinct
    requesters, with forum votes summed; per week and/or feature theme. `group_by=theme` ranks the
    most requested features of the window. `uncertain`: how many of `count` a model labelled with
    a confidence below the INTENT_UNCERTAIN_BELOW setting."""
    report = await build_feature_requests(
        conn, window=parse_window(from_, to, tz), group_by=group_by, top=top,
        uncertain_below=settings.intent_uncertain_below,
    )  # fmt: skip
    return respond(request, report, report.rows, feature_request_columns(group_by), "feature-requests")
