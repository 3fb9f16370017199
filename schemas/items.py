"""Item request/response models: the public shape of a ticket or forum post (spec/api.md)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from clustering.redact import mask_at_rest
from schemas.language import TAG_SHAPE, normalise_language_tag
from schemas.patterns import NOT_BLANK, SPACE

MAX_BODY_CHARS = 64 * 1024
MAX_BULK_ITEMS = 10_000

Kind = Literal["ticket", "post"]
Status = Literal["new", "open", "pending", "on_hold", "solved", "closed"]
Intent = Literal["feature_request", "bug", "question", "other"]

SOLVED_STATUSES: frozenset[str] = frozenset({"solved", "closed"})
OPEN_STATUSES: frozenset[str] = frozenset({"new", "open", "pending", "on_hold"})

# Raw status words from sources and what they mean (metrics.md: statuses are normalised, the raw
# value is kept). Connectors map vendor codes to words first; words not here normalise to None.
_STATUS_WORDS: dict[str, str] = {
    "new": "new",
    "open": "open",
    "opened": "open",
    "active": "open",
    "reopened": "open",
    "in_progress": "open",
    "waiting_for_support": "open",
    "pending": "pending",
    "waiting": "pending",
    "awaiting": "pending",
    "pending_reminder": "pending",
    "pending_close": "pending",
    "waiting_on_customer": "pending",
    "waiting_on_third_party": "pending",
    "waiting_for_customer": "pending",
    "snoozed": "on_hold",
    "hold": "on_hold",
    "on_hold": "on_hold",
    "solved": "solved",
    "resolved": "solved",
    "done": "solved",
    "answered": "solved",
    "closed": "closed",
    "merged": "closed",
    "canceled": "closed",
    "cancelled": "closed",
}


@functools.lru_cache(maxsize=4096)  # a handful of words, looked up for every event of every item
def normalise_status(raw: str | None) -> str | None:
    """Map a source's status word onto the six normalised statuses (None if unknown).

    Case, spaces and dashes do not matter: "On-Hold", "on hold" and "ON_HOLD" are one word.
    """
    if raw is None:
        return None
    word = "_".join(raw.strip().lower().replace("-", " ").split())
    return _STATUS_WORDS.get(word)


def clean_str(value: str) -> str:
    """Postgres text cannot hold NUL; lone surrogates cannot be encoded as UTF-8."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if value.isascii():  # the common case, checked in C without a copy
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


# Length limits sit before the cleaning so they are checked in pydantic's core, not in Python:
# cleaning only ever shortens a string.
CleanStr = Annotated[str, AfterValidator(clean_str)]
ShortStr = Annotated[str, Field(max_length=512), AfterValidator(clean_str)]
# CSAT on the 1..5 scale (vendors' scales are mapped by the connectors) and the effort counters.
Csat = Annotated[int, Field(ge=1, le=5, description="1..5; good -> 5, bad -> 1, a 3-step scale -> 1, 3, 5")]
EffortCount = Annotated[int, Field(ge=0, le=1_000_000)]
LanguageTag = Annotated[
    str,
    AfterValidator(normalise_language_tag),
    Field(
        description="a BCP 47 tag such as 'en' or 'pt-BR', at most 35 characters",
        json_schema_extra={"pattern": rf"^[{SPACE}]*{TAG_SHAPE}[{SPACE}]*$"},
    ),
]
# Every stored time falls in this range once converted to UTC (spec/api.md "The item"): Postgres
# would keep -infinity or year 1, and the readers and the clustering compare these times.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_SPAN = LATEST - EARLIEST
_EPOCH_NAIVE = EARLIEST.replace(tzinfo=None)


def bounded_time(value: datetime) -> datetime:
    """Refuse a time outside 1970-01-01..2100-01-01 UTC (naive times are read as UTC).

    Checked on the wall-clock time minus its offset, as timedeltas: converting
    0001-01-01T00:00:00+14:00 to UTC would itself overflow.
    """
    offset = value.utcoffset() or timedelta(0)
    since_epoch = value.replace(tzinfo=None) - _EPOCH_NAIVE - offset
    if not timedelta(0) <= since_epoch <= _SPAN:
        raise ValueError("time must fall between 1970-01-01T00:00:00Z and 2100-01-01T00:00:00Z once converted to UTC")
    return value


_RANGE = "between 1970-01-01T00:00:00Z and 2100-01-01T00:00:00Z once converted to UTC"
# A timestamp must carry a time zone (RFC 3339, e.g. 2026-11-02T10:00:00Z) and fall in the range.
Timestamp = Annotated[
    AwareDatetime, AfterValidator(bounded_time), Field(description=f"RFC 3339 with an offset, {_RANGE}")
]
# A time in a query (filters): naive ones are read as UTC, but the range holds as for items.
QueryTime = Annotated[datetime, AfterValidator(bounded_time), Field(description=f"RFC 3339, {_RANGE}")]


class StatusEventIn(BaseModel):
    """One status change as the source reports it; raw statuses are kept beside normalised ones."""

    model_config = ConfigDict(extra="forbid")

    at: Timestamp
    from_status: ShortStr | None = None
    to_status: ShortStr


class ItemCreate(BaseModel):
    """A ticket or forum post as ingested (POST /v1/items, bulk rows, mapped webhooks)."""

    model_config = ConfigDict(extra="forbid")

    source: Annotated[CleanStr, Field(min_length=1, max_length=64)]
    external_id: Annotated[CleanStr, Field(min_length=1, max_length=256)]
    kind: Kind
    # Cards, IBANs and tokens are masked here, before any path stores them (spec/api.md).
    title: Annotated[str, Field(max_length=2048), AfterValidator(clean_str), AfterValidator(mask_at_rest)] | None = None
    # What the validator below enforces, written into the schema: some text that is not blank.
    body: Annotated[
        str,
        Field(
            description=f"Non-empty after trimming; at most {MAX_BODY_CHARS} characters",
            json_schema_extra={"minLength": 1, "maxLength": MAX_BODY_CHARS, "pattern": NOT_BLANK},
        ),
    ]
    created_at: Timestamp
    updated_at: Timestamp | None = None
    status: ShortStr | None = None
    # default_factory, not `= []`: pydantic deep-copies a mutable default for every item that omits
    # it (about 1 us an item each, 7 % of a bulk request's validation); the schema keeps `default`.
    status_events: Annotated[
        list[StatusEventIn], Field(max_length=1000, default_factory=list, json_schema_extra={"default": []})
    ]
    first_response_at: Timestamp | None = None
    reopens: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    channel: ShortStr | None = None
    priority: ShortStr | None = None
    product: ShortStr | None = None
    tags: Annotated[
        list[Annotated[str, Field(max_length=256), AfterValidator(clean_str)]],
        Field(max_length=200, default_factory=list, json_schema_extra={"default": []}),
    ]
    requester_id: ShortStr | None = None
    votes: Annotated[int, Field(ge=0, le=2_000_000_000)] | None = None
    url: Annotated[str, Field(max_length=2048), AfterValidator(clean_str)] | None = None
    intent: Intent | None = None
    csat: Csat | None = None
    customer_replies: EffortCount | None = None
    agent_replies: EffortCount | None = None
    assignee_changes: EffortCount | None = None
    language: LanguageTag | None = None

    @field_validator("reopens", "votes", "csat", "customer_replies", "agent_replies", "assignee_changes", mode="before")
    @classmethod
    def _count_not_bool(cls, value: object) -> object:
        # Lax mode would read true as 1: a boolean where a count belongs is a sender's mistake.
        if isinstance(value, bool):
            raise ValueError("expected a number, not true or false")
        return value

    @field_validator("body")
    @classmethod
    def _body_not_blank(cls, value: str) -> str:
        value = clean_str(value)
        if not value.strip():
            raise ValueError("body must not be empty")
        if len(value) > MAX_BODY_CHARS:
            raise ValueError(f"body is longer than the limit of {MAX_BODY_CHARS} characters")
        return mask_at_rest(value)


class StatusEvent(BaseModel):
    at: datetime
    from_status: str | None
    to_status: str
    from_status_raw: str | None
    to_status_raw: str


class Item(BaseModel):
    """An item as stored, with what the pipeline derived for it."""

    item_id: int
    source: str
    external_id: str
    kind: Kind
    title: str | None
    body: str
    created_at: datetime
    updated_at: datetime | None
    status: str | None
    status_raw: str | None
    status_events: list[StatusEvent]
    first_response_at: datetime | None
    first_solved_at: datetime | None
    last_solved_at: datetime | None
    reopen_count: int
    channel: str | None
    priority: str | None
    product: str | None
    tags: list[str]
    requester_id: str | None
    votes: int | None
    url: str | None
    embedded_at: datetime | None
    theme_id: int | None
    feature_theme_id: int | None
    intent: str | None
    intent_confidence: float | None
    intent_source: str | None
    ingested_at: datetime
    csat: int | None = None
    customer_replies: int | None = None
    agent_replies: int | None = None
    assignee_changes: int | None = None
    language: str | None = None


class ItemPage(BaseModel):
    data: list[Item]
    next_cursor: str | None


class ItemAccepted(BaseModel):
    item_id: int
    created: bool


class BulkRejection(BaseModel):
    index: int
    error: str
    detail: str | list[dict[str, object]]


class BulkResult(BaseModel):
    accepted: int
    created: int
    updated: int
    rejected: list[BulkRejection]
