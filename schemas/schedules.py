"""Business-hours schedules (spec/api.md "Reports added"; docs/metrics.md "Times")."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.items import clean_str
from schemas.patterns import DIGIT
from schemas.timezones import TimeZone

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# "24:00" closes a shift at the end of its day (Zendesk writes a day open to midnight that way).
END_OF_DAY = "24:00"

Clock = Annotated[str, Field(pattern=rf"^([01]{DIGIT}|2[0-3]):[0-5]{DIGIT}$|^24:00$", examples=["09:00"])]
Shift = tuple[Clock, Clock]


def minutes(clock: str) -> int:
    """Minutes after local midnight: "09:30" -> 570, "24:00" -> 1440."""
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


class ScheduleCreate(BaseModel):
    """Weekly opening hours in a time zone, with holidays (whole local days closed)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(clean_str)]
    tz: TimeZone
    hours: dict[Weekday, Annotated[list[Shift], Field(max_length=24)]]
    holidays: Annotated[list[date], Field(max_length=2000)] = []

    @field_validator("hours")
    @classmethod
    def _shifts_in_order(cls, hours: dict[Weekday, list[Shift]]) -> dict[Weekday, list[Shift]]:
        for day, shifts in hours.items():
            for start, end in shifts:
                if start == END_OF_DAY:
                    raise ValueError(f"{day}: a shift cannot start at 24:00")
                if minutes(start) >= minutes(end):
                    raise ValueError(f"{day}: the shift {start}-{end} ends before it starts (inverted hours)")
            ordered = sorted(shifts, key=lambda s: minutes(s[0]))
            for (s1, e1), (s2, e2) in zip(ordered, ordered[1:], strict=False):
                if minutes(s2) < minutes(e1):
                    raise ValueError(f"{day}: the shifts {s1}-{e1} and {s2}-{e2} overlap")
        return {day: sorted(shifts, key=lambda s: minutes(s[0])) for day, shifts in hours.items()}

    @model_validator(mode="after")
    def _some_hours(self) -> ScheduleCreate:
        if not any(self.hours.values()):
            raise ValueError("hours: a schedule needs at least one open shift in the week")
        return self


class Schedule(ScheduleCreate):
    schedule_id: int
    created_at: datetime


class SchedulePage(BaseModel):
    data: list[Schedule]
    next_cursor: str | None


def shift_times(shift: Shift) -> tuple[time, int]:
    """A shift's local start time and its length in minutes."""
    start = minutes(shift[0])
    return time(start // 60, start % 60), minutes(shift[1]) - start
