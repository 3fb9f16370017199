"""Report windows and local weeks: the one time-zone check (422 in the envelope), the window
parser, and the week helper that reports, the dashboard and the CLI all use.

A week starts Monday 00:00 in the chosen zone; windows are half-open, [from, to).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from api.errors import Unprocessable
from schemas.reports import ReportWindow
from schemas.timezones import monday_of, zone, zone_problem

MAX_WINDOW = timedelta(days=3 * 366)
MIN_YEAR, MAX_YEAR = 1970, 2999  # keeps the week arithmetic (trailing weeks, next Monday) in range


def invalid(field: str, msg: str) -> Unprocessable:
    return Unprocessable([{"type": "value_error", "loc": ["query", field], "msg": msg}])


def parse_tz(name: str, field: str = "tz") -> ZoneInfo:
    problem = zone_problem(name)
    if problem:
        raise invalid(field, problem)
    return zone(name)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """Local midnight as an aware instant (zoneinfo applies that day's offset, DST included)."""
    return datetime.combine(day, time(), tzinfo=tz)


def parse_day(value: str, field: str) -> date:
    """A date (YYYY-MM-DD) within MIN_YEAR..MAX_YEAR."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise invalid(field, f"{value[:40]!r} is not a date: write it as YYYY-MM-DD") from None
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise invalid(field, f"{value!r} is outside the years {MIN_YEAR}-{MAX_YEAR}")
    return day


@dataclass(frozen=True)
class Window:
    """A half-open window [start, end) of aware datetimes written in `tz`."""

    start: datetime
    end: datetime
    tz: str

    def model(self) -> ReportWindow:
        return ReportWindow(from_=self.start, to=self.end, tz=self.tz)

    def whole_weeks(self) -> Window:
        """Widened to whole local weeks: the Monday before `start` and the Monday after `end`."""
        first, end = week_bounds(self)
        tz = ZoneInfo(self.tz)
        return Window(local_midnight(first, tz), local_midnight(end, tz), self.tz)


def parse_instant(value: str, field: str, tz: ZoneInfo) -> datetime:
    """An RFC 3339 timestamp (with offset), or a date meaning local midnight in `tz`."""
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), time(), tzinfo=tz)
        else:
            parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise invalid(field, f"{value!r} has no UTC offset; write e.g. 2026-11-02T10:00:00Z or a date")
        local = parsed.astimezone(tz)
    except (ValueError, OverflowError):
        raise invalid(field, f"{value!r} is neither a date (YYYY-MM-DD) nor an RFC 3339 timestamp") from None
    if not MIN_YEAR <= local.year <= MAX_YEAR:
        raise invalid(field, f"{value!r} is outside the years {MIN_YEAR}-{MAX_YEAR}")
    return local


def parse_window(from_: str, to: str, tz: str) -> Window:
    zone_info = parse_tz(tz)
    start, end = parse_instant(from_, "from", zone_info), parse_instant(to, "to", zone_info)
    if start >= end:
        raise invalid("to", "The window is empty: `from` must be before `to` (the window is [from, to))")
    if end - start > MAX_WINDOW:
        raise invalid("to", f"The window is longer than {MAX_WINDOW.days} days; ask for a shorter one")
    return Window(start, end, tz)


def week_bounds(window: Window) -> tuple[date, date]:
    """The Mondays (local) of the first week touching the window and of the week after the last."""
    first = monday_of(window.start.date())
    last_day = window.end.date() - timedelta(days=1 if window.end.time() == time() else 0)
    return first, monday_of(last_day) + timedelta(weeks=1)
