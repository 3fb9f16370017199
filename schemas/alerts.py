"""Alert destinations, rules and incidents (spec/api.md "Alerts and incidents")."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.patterns import SPACE
from schemas.reports import ThemeLevel
from schemas.timezones import TimeZone

DestinationKind = Literal["slack", "teams", "webhook", "email"]
IncidentKind = Literal["spike", "emerging", "feature_surge"]
IncidentStatus = Literal["open", "acknowledged", "resolved"]
DeliveryStatus = Literal["pending", "sent", "dead"]
SegmentField = Literal["source", "channel", "priority", "product", "tag", "language"]

Name = Annotated[str, Field(min_length=1, max_length=200)]
# Deliberately loose: the SMTP server is the judge; this only refuses what cannot be an address:
# no @, angle bracket, list separator, control character or white space inside a part.
_PART = rf"[^@<>,;\x00-\x1f\x7f-\x9f{SPACE}]+"
Email = Annotated[str, Field(min_length=3, max_length=254, pattern=rf"^{_PART}@{_PART}\.{_PART}$")]


class DestinationCreate(BaseModel):
    """An `email` destination takes `to` and no `url`; every other kind takes `url` and no `to` (422)."""

    model_config = ConfigDict(extra="forbid")

    kind: DestinationKind
    name: Name
    url: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    to: Annotated[list[Email], Field(min_length=1, max_length=50)] | None = None

    @field_validator("to", mode="before")
    @classmethod
    def _one_address_is_a_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _target_matches_kind(self) -> DestinationCreate:
        if self.kind == "email":
            if self.to is None or self.url is not None:
                raise ValueError("an email destination takes `to` (one or more addresses) and no `url`")
        elif self.url is None or self.to is not None:
            raise ValueError(f"a {self.kind} destination takes a `url` and no `to`")
        return self


class Destination(BaseModel):
    """A destination as listed: its URL shortened to scheme and host (the path is often a credential)."""

    destination_id: int
    kind: DestinationKind
    name: str
    url: str | None
    to: list[str]
    created_at: datetime


class DestinationCreated(Destination):
    secret: str | None = None  # a webhook destination's signing secret, shown here only


class DestinationList(BaseModel):
    data: list[Destination]


class DeliveryResult(BaseModel):
    destination_id: int
    status: Literal["sent", "failed"]
    http_status: int | None = None
    error: str | None = None


class QuietHours(BaseModel):
    """Messages wait while the local time is in [start, end); end before start spans midnight.
    `start` and `end` must differ (422)."""

    model_config = ConfigDict(extra="forbid")

    start: time
    end: time
    tz: TimeZone = "UTC"

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours need start != end")
        return self


class RuleCreate(BaseModel):
    """Every id in `destination_ids` must name an existing destination (422 otherwise)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    on: Annotated[list[IncidentKind], Field(min_length=1, max_length=3)]
    level: ThemeLevel | None = None  # both levels when absent
    theme_ids: Annotated[list[Annotated[int, Field(ge=1, le=2**63 - 1)]], Field(max_length=1000)] = []
    min_volume: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    destination_ids: Annotated[list[Annotated[int, Field(ge=1, le=2**63 - 1)]], Field(min_length=1, max_length=50)]
    quiet_hours: QuietHours | None = None


class Rule(BaseModel):
    rule_id: int
    name: str
    on: list[IncidentKind]
    level: ThemeLevel | None
    theme_ids: list[int]
    min_volume: int
    destination_ids: list[int]
    quiet_hours: QuietHours | None
    created_at: datetime


class RuleList(BaseModel):
    data: list[Rule]


class Segment(BaseModel):
    field: SegmentField
    value: str
    count: int
    share: float
    baseline_share: float
    lift: float


class IncidentDelivery(BaseModel):
    destination_id: int
    status: DeliveryStatus
    attempts: int
    last_error: str | None


class Incident(BaseModel):
    incident_id: int
    kind: IncidentKind
    theme_id: int
    theme_label: str
    level: ThemeLevel
    granularity: Literal["day", "week", "new"]
    window_start: datetime
    window_end: datetime
    observed: int
    expected: float
    score: float
    segments: list[Segment]
    example_item_ids: list[int]
    status: IncidentStatus
    detected_at: datetime
    updated_at: datetime
    deliveries: list[IncidentDelivery]


class IncidentPage(BaseModel):
    data: list[Incident]
    next_cursor: str | None


class IncidentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: IncidentStatus
