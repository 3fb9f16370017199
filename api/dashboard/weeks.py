"""Time zone and local weeks for the pages: a week starts Monday 00:00 in the chosen zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from api.windows import local_midnight, parse_day, parse_tz
from schemas.timezones import monday_of

WEEKS_SHOWN = 12

# Offered in the selector; any other IANA name works through the query string (and is then
# added to the list), so this is a convenience, not a limit.
COMMON_ZONES = (
    "UTC",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Kyiv",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


@dataclass(frozen=True)
class Weeks:
    """The selected local week and the WEEKS_SHOWN weeks that end with it."""

    tz: str
    selected: date  # the Monday of the selected week
    now: datetime
    count: int = WEEKS_SHOWN

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def mondays(self) -> list[date]:
        return [self.selected - timedelta(weeks=self.count - 1 - n) for n in range(self.count)]

    def midnight(self, day: date) -> datetime:
        return local_midnight(day, self.zone)

    @property
    def start_at(self) -> datetime:
        return self.midnight(self.mondays[0])

    @property
    def end_at(self) -> datetime:
        return self.midnight(self.selected + timedelta(weeks=1))

    @property
    def week_start_at(self) -> datetime:
        return self.midnight(self.selected)

    @property
    def is_current(self) -> bool:
        return self.week_start_at <= self.now < self.end_at

    @property
    def previous(self) -> date:
        return self.selected - timedelta(weeks=1)

    @property
    def next(self) -> date | None:
        following = self.selected + timedelta(weeks=1)
        return following if self.midnight(following) <= self.now else None

    @property
    def boundary_utc(self) -> str:
        """Where the selected week starts, written in UTC: shows how the zone moves the boundary."""
        return self.week_start_at.astimezone(UTC).strftime("%a %Y-%m-%d %H:%M UTC")


def parse_weeks(tz: str | None, week: str | None, now: datetime | None = None) -> Weeks:
    """The week asked for, or by default the last complete local week: a week in progress,
    compared with a whole previous one, would look like a fall in everything."""
    zone_name = (tz or "UTC").strip() or "UTC"
    zone = parse_tz(zone_name)
    now = now or datetime.now(UTC)
    if week:
        selected = monday_of(parse_day(week, "week"))
    else:
        selected = monday_of(now.astimezone(zone).date()) - timedelta(weeks=1)
    return Weeks(tz=zone_name, selected=selected, now=now)
