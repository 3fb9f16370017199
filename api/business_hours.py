"""Business seconds: how much of a span falls inside a schedule's open hours (docs/metrics.md "Times").

Pure functions, no I/O. A schedule opens on the local days and hours it names, in its own time
zone, except on its holidays (whole local days). Local times become instants through the zone
database, so a DST change moves the instants of a 09:00 opening, and a shift across the change
is an hour shorter or longer, as the clock on the wall says. A span starting outside hours counts
from the next opening.

The reports compute business time in SQL from a `BusinessClock`: the open intervals from 1970 to
2100 (the range the API accepts timestamps in) as three arrays, start, length and the open
seconds before each start. The open seconds up to an instant t are then
`before[k] + clamp(t - start[k], 0, length[k])` with k the last interval starting at or before t
(a binary search, `width_bucket` in Postgres), and a span's business seconds are the difference
of its two ends.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.schedules import WEEKDAYS, ScheduleCreate, shift_times

FIRST_DAY = date(1969, 12, 31)
LAST_DAY = date(2100, 1, 1)

Interval = tuple[datetime, datetime]


def open_intervals(schedule: ScheduleCreate, first_day: date, last_day: date) -> list[Interval]:
    """The schedule's open intervals (aware UTC datetimes) on the local days [first_day, last_day]."""
    zone = ZoneInfo(schedule.tz)
    holidays = set(schedule.holidays)
    shifts = [[shift_times(s) for s in schedule.hours.get(day, [])] for day in WEEKDAYS]
    result: list[Interval] = []
    day = first_day
    while day <= last_day:
        if day not in holidays:
            for start, length in shifts[day.weekday()]:
                end = start.hour * 60 + start.minute + length  # minutes after local midnight, <= 1440
                end_day = day + timedelta(days=end // 1440)
                local_end = datetime.combine(end_day, time((end % 1440) // 60, end % 60), tzinfo=zone)
                local_start = datetime.combine(day, start, tzinfo=zone)
                opened, closed = local_start.astimezone(UTC), local_end.astimezone(UTC)
                if closed > opened:
                    result.append((opened, closed))
        day += timedelta(days=1)
    return result


def business_seconds(intervals: Sequence[Interval], start: datetime, end: datetime) -> float:
    """Seconds of [start, end) inside the intervals (0 when end <= start). The reference definition."""
    total = 0.0
    for opened, closed in intervals:
        overlap = (min(end, closed) - max(start, opened)).total_seconds()
        if overlap > 0:
            total += overlap
    return total


@dataclass(frozen=True)
class BusinessClock:
    """Open intervals as epoch-second arrays: start, length, and open seconds before each start."""

    starts: list[float]
    lengths: list[float]
    before: list[float]

    def elapsed(self, at: datetime) -> float:
        """Open seconds from the first interval up to `at`."""
        k = bisect.bisect_right(self.starts, at.timestamp()) - 1
        if k < 0:
            return 0.0
        return self.before[k] + min(max(at.timestamp() - self.starts[k], 0.0), self.lengths[k])

    def seconds(self, start: datetime, end: datetime) -> float:
        return max(self.elapsed(end) - self.elapsed(start), 0.0)


def build_clock(intervals: Sequence[Interval]) -> BusinessClock:
    starts: list[float] = []
    lengths: list[float] = []
    before: list[float] = []
    total = 0.0
    for opened, closed in sorted(intervals):
        begin, length = opened.timestamp(), (closed - opened).total_seconds()
        if starts and begin <= starts[-1] + lengths[-1]:  # touching or overlapping: join them
            end = max(starts[-1] + lengths[-1], begin + length)
            total += end - (starts[-1] + lengths[-1])
            lengths[-1] = end - starts[-1]
            continue
        starts.append(begin)
        lengths.append(length)
        before.append(total)
        total += length
    return BusinessClock(starts, lengths, before)


@functools.lru_cache(maxsize=16)
def _clock_of(definition: str) -> BusinessClock:
    schedule = ScheduleCreate.model_validate_json(definition)
    return build_clock(open_intervals(schedule, FIRST_DAY, LAST_DAY))


def clock_for(schedule: ScheduleCreate) -> BusinessClock:
    """The schedule's clock over 1970-2100, built once per process per schedule (about 0.2 s)."""
    return _clock_of(schedule.model_dump_json(include=set(ScheduleCreate.model_fields)))
