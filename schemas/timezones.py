"""Time zones and local weeks: the one check of an IANA name, used by every route, page and the
CLI, and the one week rule (a week starts on Monday), used by the API and the SQL layer alike.

A name is accepted when the zone database that ships with the service (tzdata) has it and
Postgres, which does the week arithmetic (`AT TIME ZONE`), knows it too. `localtime` and
`posixrules` are files of the system zone directory, not zones: Postgres refuses them.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from typing import Annotated
from zoneinfo import ZoneInfo, available_timezones

from pydantic import AfterValidator

_NOT_ZONES = frozenset({"localtime", "posixrules"})


@cache
def known_zones() -> frozenset[str]:
    return (frozenset(available_timezones()) | {"UTC"}) - _NOT_ZONES


def zone_problem(name: str) -> str | None:
    """Why `name` is not a time zone we accept, or None when it is one."""
    if name not in known_zones():
        shown = name if len(name) <= 64 else name[:61] + "..."
        return f"Unknown time zone {shown!r}: use an IANA name such as 'America/Los_Angeles'"
    return None


def check_zone(name: str) -> str:
    problem = zone_problem(name)
    if problem:
        raise ValueError(problem)
    return name


def zone(name: str) -> ZoneInfo:
    """The ZoneInfo of a name that passed check_zone."""
    return ZoneInfo(check_zone(name))


TimeZone = Annotated[str, AfterValidator(check_zone)]


def monday_of(day: date) -> date:
    """The Monday that starts `day`'s week."""
    return day - timedelta(days=day.weekday())
