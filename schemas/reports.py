"""Report models (spec/api.md "report response"; definitions in docs/metrics.md).

A report row holds its group's key fields beside the figures. Key fields are set only for the
chosen `group_by` and the routes dump with `exclude_unset`, so an ungrouped row has no keys and
a `group_by=source` row has only `source`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

GroupBy = Literal["theme", "source", "channel", "priority", "product", "tag"]
TimeMetric = Literal["first_response", "first_resolution", "full_resolution"]
# leaf: an item counts under its own theme; parent: under its leaf's parent (metrics.md "Theme tree").
ThemeLevel = Literal["leaf", "parent"]

# The key fields each grouping adds to a row, in column order.
GROUP_KEYS: dict[GroupBy | None, tuple[str, ...]] = {
    None: (),
    "theme": ("theme_id", "label"),
    "source": ("source",),
    "channel": ("channel",),
    "priority": ("priority",),
    "product": ("product",),
    "tag": ("tag",),
}

# The count of tickets left out of each time distribution (metrics.md "Times").
EXCLUDED_COUNT: dict[TimeMetric, str | None] = {
    "first_response": "awaiting_first_response",
    "first_resolution": None,
    "full_resolution": "reopened_open",
}

UNASSIGNED_LABEL = "unassigned"  # items no theme holds (theme_id null)
HIDDEN_LABEL = "hidden"  # items of a hidden theme (theme_id null): out of reports, still counted


class ReportWindow(BaseModel):
    """The half-open window `[from, to)` the report covered, written in the request's time zone."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    from_: datetime = Field(alias="from")
    to: datetime
    tz: str


RowT = TypeVar("RowT", bound=BaseModel)


class Report(BaseModel, Generic[RowT]):
    definition: str
    window: ReportWindow
    generated_at: datetime
    rows: list[RowT]


class GroupKeys(BaseModel):
    """Key fields; only those of the request's `group_by` are present in a response row."""

    theme_id: int | None = None
    label: str | None = None
    source: str | None = None
    channel: str | None = None
    priority: str | None = None
    product: str | None = None
    tag: str | None = None


class ThemeTrendRow(BaseModel):
    week: date
    theme_id: int | None
    label: str
    volume: int
    wow_change: float
    is_spike: bool
    is_emerging: bool


class ReopenRateRow(GroupKeys):
    solved: int
    reopened: int
    reopen_rate: float | None
    reopens: int
    reopens_per_solved: float | None


class ResolutionTimeRow(GroupKeys):
    count: int
    median_s: float | None
    p90_s: float | None
    mean_s: float | None
    median_human: str | None
    p90_human: str | None
    mean_human: str | None
    awaiting_first_response: int | None = None  # first_response only
    reopened_open: int | None = None  # full_resolution only


ThemeTrendsReport = Report[ThemeTrendRow]
ReopenRateReport = Report[ReopenRateRow]
ResolutionTimesReport = Report[ResolutionTimeRow]


class ItemExportRow(BaseModel):
    """One row of the per-item CSV (`GET /v1/items` with `Accept: text/csv`)."""

    item_id: int
    source: str
    external_id: str
    kind: str
    theme_id: int | None
    theme_label: str | None
    intent: str | None
    status: str | None
    created_at: datetime
    first_response_at: datetime | None
    first_solved_at: datetime | None
    last_solved_at: datetime | None
    reopen_count: int
    channel: str | None
    priority: str | None
    product: str | None
    tags: list[str]


def reopen_rate_columns(group_by: GroupBy | None) -> list[str]:
    figures = ["solved", "reopened", "reopen_rate", "reopens", "reopens_per_solved"]
    return [*GROUP_KEYS[group_by], *figures]


def resolution_time_columns(metric: TimeMetric, group_by: GroupBy | None) -> list[str]:
    figures = ["count", "median_s", "p90_s", "mean_s", "median_human", "p90_human", "mean_human"]
    excluded = EXCLUDED_COUNT[metric]
    return [*GROUP_KEYS[group_by], *figures, *([excluded] if excluded else [])]


THEME_TREND_COLUMNS = list(ThemeTrendRow.model_fields)
ITEM_EXPORT_COLUMNS = list(ItemExportRow.model_fields)


def human_duration(seconds: float | None) -> str | None:
    """Two units from the largest: "45s", "12m 5s", "3h 12m", "2d 4h" (rounded to whole seconds)."""
    if seconds is None:
        return None
    total = round(abs(seconds))
    sign = "-" if seconds < 0 and total else ""
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes}m"
    if minutes:
        return f"{sign}{minutes}m {secs}s"
    return f"{sign}{secs}s"


FeatureGroupBy = Literal["week", "theme", "week,theme"]


class FeatureRequestRow(BaseModel):
    """Feature requests of one week and/or one feature theme (metrics.md "Feature requests")."""

    week: date | None = None
    theme_id: int | None = None
    label: str | None = None
    count: int
    votes: int
    distinct_requesters: int
    wow_change: float
    uncertain: int = 0  # of `count`: a model's label below INTENT_UNCERTAIN_BELOW confidence


FeatureRequestsReport = Report[FeatureRequestRow]


def feature_request_columns(group_by: FeatureGroupBy) -> list[str]:
    keys = {"week": ["week"], "theme": ["theme_id", "label"], "week,theme": ["week", "theme_id", "label"]}[group_by]
    return [*keys, "count", "votes", "distinct_requesters", "wow_change", "uncertain"]
