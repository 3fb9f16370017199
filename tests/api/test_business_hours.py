"""Business seconds against hand-counted spans (api/business_hours.py; docs/metrics.md "Times").

The first cases are the worked examples that Zendesk-oriented guides give for business-hours SLA
clocks (Mon-Fri 09:00-17:00): a ticket that arrives Friday at 17:00 starts counting on Monday at
09:00; one that arrives Thursday at 15:00 has used 2 h by 17:00 and 4 h by Friday 11:00; one that
arrives Wednesday at 18:00 starts Thursday at 09:00. The rest cover holidays, DST changes in the
schedule's zone, tickets created outside hours and split shifts.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from api.business_hours import build_clock, business_seconds, clock_for, open_intervals
from schemas.schedules import ScheduleCreate

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
H = 3600.0


def schedule(tz: str = "UTC", shifts: list[tuple[str, str]] | None = None, **kwargs: object) -> ScheduleCreate:
    hours = kwargs.pop("hours", None) or {d: shifts or [("09:00", "17:00")] for d in WEEKDAYS}
    return ScheduleCreate.model_validate({"name": "support", "tz": tz, "hours": hours, **kwargs})


def seconds(s: ScheduleCreate, start: datetime, end: datetime) -> float:
    """Both implementations (the reference sum and the clock the SQL uses) must agree."""
    intervals = open_intervals(s, start.date() - timedelta(days=2), end.date() + timedelta(days=2))
    reference = business_seconds(intervals, start, end)
    assert clock_for(s).seconds(start, end) == pytest.approx(reference, abs=1e-6)
    return reference


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# 2026-12-04 is a Friday.
@pytest.mark.parametrize(
    ("created", "replied", "hours"),
    [
        ("2026-12-04T17:00:00+00:00", "2026-12-07T09:00:00+00:00", 0.0),  # Fri 17:00 -> Mon 09:00: nothing yet
        ("2026-12-04T17:00:00+00:00", "2026-12-07T11:00:00+00:00", 2.0),  # ... Mon 11:00: 2 h
        ("2026-12-03T15:00:00+00:00", "2026-12-03T17:00:00+00:00", 2.0),  # Thu 15:00 -> 17:00
        ("2026-12-03T15:00:00+00:00", "2026-12-04T11:00:00+00:00", 4.0),  # Thu 15:00 -> Fri 11:00
        ("2026-12-02T18:00:00+00:00", "2026-12-03T10:00:00+00:00", 1.0),  # Wed 18:00 -> Thu 10:00
        ("2026-12-05T10:00:00+00:00", "2026-12-06T16:00:00+00:00", 0.0),  # all weekend
        ("2026-11-30T09:00:00+00:00", "2026-12-07T09:00:00+00:00", 40.0),  # one whole week
    ],
)
def test_zendesk_style_examples(created: str, replied: str, hours: float) -> None:
    assert seconds(schedule(), utc(created), utc(replied)) == hours * H


def test_holidays_are_closed_all_day() -> None:
    # Thu 2026-12-24 15:00 -> Mon 12-28 10:00 with Fri 12-25 a holiday: Thu 2 h + Mon 1 h.
    s = schedule(holidays=["2026-12-25"])
    assert seconds(s, utc("2026-12-24T15:00:00+00:00"), utc("2026-12-28T10:00:00+00:00")) == 3 * H
    # Created on the holiday itself: counting starts on the next opening (Mon 09:00).
    assert seconds(s, utc("2026-12-25T10:00:00+00:00"), utc("2026-12-28T09:30:00+00:00")) == 0.5 * H


def test_holidays_are_local_days_of_the_schedule() -> None:
    # Tokyo (UTC+9): the holiday 2026-12-25 is 12-24T15:00Z to 12-25T15:00Z.
    s = schedule("Asia/Tokyo", holidays=["2026-12-25"])
    # Thu 24th 16:00-17:00 JST (07:00-08:00Z) counts; Fri 25th JST is closed; Mon 28th 09:00-10:00 JST counts.
    assert seconds(s, utc("2026-12-24T07:00:00+00:00"), utc("2026-12-28T01:00:00+00:00")) == 2 * H


def test_dst_start_moves_the_opening_instant() -> None:
    # New York: EST (UTC-5) until Sun 2026-03-08 02:00, then EDT (UTC-4). Fri 03-06 16:00 EST
    # (21:00Z) -> Mon 03-09 10:00 EDT (14:00Z): 1 h on Friday + 1 h on Monday, 65 h of calendar.
    s = schedule("America/New_York")
    assert seconds(s, utc("2026-03-06T21:00:00+00:00"), utc("2026-03-09T14:00:00+00:00")) == 2 * H
    # Monday opens at 13:00Z (09:00 EDT), not 14:00Z as in winter.
    assert seconds(s, utc("2026-03-09T13:00:00+00:00"), utc("2026-03-09T13:30:00+00:00")) == 0.5 * H


def test_dst_days_are_shorter_and_longer_for_a_round_the_clock_shift() -> None:
    s = schedule("America/New_York", hours={"sat": [("00:00", "24:00")], "sun": [("00:00", "24:00")]})
    spring = (utc("2026-03-07T00:00:00-05:00"), utc("2026-03-09T00:00:00-04:00"))  # Sat + a 23-hour Sunday
    autumn = (utc("2026-10-31T00:00:00-04:00"), utc("2026-11-02T00:00:00-05:00"))  # Sat + a 25-hour Sunday
    assert seconds(s, *spring) == 47 * H
    assert seconds(s, *autumn) == 49 * H


def test_created_outside_hours_starts_at_the_next_opening() -> None:
    s = schedule()
    # Created Tue 06:00, solved Tue 09:45: 45 minutes, not 3 h 45.
    assert seconds(s, utc("2026-12-01T06:00:00+00:00"), utc("2026-12-01T09:45:00+00:00")) == 0.75 * H
    # Created and solved in the same night: zero.
    assert seconds(s, utc("2026-12-01T20:00:00+00:00"), utc("2026-12-01T23:00:00+00:00")) == 0.0


def test_split_shifts_skip_the_break() -> None:
    s = schedule(shifts=[("09:00", "12:00"), ("13:00", "17:30")])
    assert seconds(s, utc("2026-12-01T11:00:00+00:00"), utc("2026-12-01T14:00:00+00:00")) == 2 * H
    assert seconds(s, utc("2026-12-01T12:30:00+00:00"), utc("2026-12-01T13:30:00+00:00")) == 0.5 * H
    assert seconds(s, utc("2026-12-01T00:00:00+00:00"), utc("2026-12-02T00:00:00+00:00")) == 7.5 * H


def test_touching_shifts_and_overnight_hours_join() -> None:
    # Fri 22:00-24:00 and Sat 00:00-02:00 make one four-hour stretch across midnight.
    s = schedule(hours={"fri": [("22:00", "24:00")], "sat": [("00:00", "02:00")]})
    assert seconds(s, utc("2026-12-04T21:00:00+00:00"), utc("2026-12-05T03:00:00+00:00")) == 4 * H
    assert len(build_clock(open_intervals(s, date(2026, 12, 4), date(2026, 12, 5))).starts) == 1


def test_clock_matches_the_reference_on_random_spans() -> None:
    rng = random.Random(19)
    s = schedule("Europe/Berlin", shifts=[("08:30", "12:00"), ("12:45", "18:00")], holidays=["2026-10-26"])
    base = datetime(2026, 9, 20, tzinfo=UTC)
    for _ in range(300):
        start = base + timedelta(seconds=rng.randrange(0, 60 * 86_400))
        seconds(s, start, start + timedelta(seconds=rng.randrange(0, 20 * 86_400)))


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({"mon": [["17:00", "09:00"]]}, "inverted"),
        ({"mon": [["09:00", "09:00"]]}, "inverted"),
        ({"tue": [["09:00", "13:00"], ["12:00", "17:00"]]}, "overlap"),
        ({"wed": [["24:00", "24:00"]]}, "24:00"),
        ({"mon": []}, "at least one"),
        ({"mon": [["9:00", "17:00"]]}, "pattern"),
    ],
)
def test_bad_hours_are_refused(hours: dict[str, list[list[str]]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScheduleCreate.model_validate({"name": "x", "tz": "UTC", "hours": hours})
