"""Time zone and local weeks for the pages: a week starts Monday 00:00 in the chosen zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from api.errors import BadRequest

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


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def parse_tz(value: str | None) -> str:
    name = (value or "UTC").strip() or "UTC"
    if name not in _known_zones():
        raise BadRequest(f"Unknown time zone {name!r}: use an IANA name such as America/Los_Angeles.")
    return name


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


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
        """Local midnight as an aware instant (zoneinfo applies that day's offset, DST included)."""
        return datetime.combine(day, time(), tzinfo=self.zone)

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
    zone_name = parse_tz(tz)
    now = now or datetime.now(UTC)
    if week:
        try:
            day = date.fromisoformat(week)
        except ValueError:
            raise BadRequest(f"{week!r} is not a date: write the week as YYYY-MM-DD.") from None
    else:
        day = now.astimezone(ZoneInfo(zone_name)).date()
    return Weeks(tz=zone_name, selected=monday_of(day), now=now)
