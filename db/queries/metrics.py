"""Metric SQL: the one home of each figure's definition (docs/metrics.md), used by the report
statements (reports.py) and the dashboard's (dashboard.py), so a dashboard number and the report
endpoint's number are the same SQL, not two copies kept equal by a test.

Everything here is a fragment over `item i`; callers put them into their own statements.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.reports import HIDDEN_LABEL, UNASSIGNED_LABEL, ThemeLevel, TimeMetric

# The tickets every ticket metric counts: not posts, not deleted.
TICKETS = "i.kind = 'ticket' AND i.deleted_at IS NULL"

# Reopen rate (metrics.md "Status lifecycle and reopens"): over tickets first solved in a window.
REOPEN_WINDOW_COLUMN = "i.first_solved_at"
REOPEN_FIGURES = (
    "count(*)::int AS solved, count(*) FILTER (WHERE reopen_count > 0)::int AS reopened,"
    " coalesce(sum(reopen_count), 0)::int AS reopens"
)


@dataclass(frozen=True, slots=True)
class TimeMetricSql:
    column: str  # the timestamp whose window (and local week) a ticket counts in
    duration: str  # seconds, NULL when the ticket is left out of the distribution
    excluded: str  # the left-out tickets that are counted beside the distribution


# date_part, not extract: it stays in float8, where extract (Postgres 14+) computes in numeric,
# which is slower over many tickets (reports used date_part before metrics.py; the dashboard extract).
TIME_METRICS: dict[TimeMetric, TimeMetricSql] = {
    "first_response": TimeMetricSql(
        "i.created_at",
        "date_part('epoch', i.first_response_at - i.created_at)",
        "i.first_response_at IS NULL",
    ),
    "first_resolution": TimeMetricSql(
        "i.first_solved_at", "date_part('epoch', i.first_solved_at - i.created_at)", "false"
    ),
    "full_resolution": TimeMetricSql(
        "i.last_solved_at",
        "CASE WHEN i.status IN ('solved', 'closed') THEN date_part('epoch', i.last_solved_at - i.created_at) END",
        "i.status IS NULL OR i.status NOT IN ('solved', 'closed')",
    ),
}

# Median and p90 with linear interpolation, in one sort.
PERCENTILES = "percentile_cont(ARRAY[0.5, 0.9]::float8[]) WITHIN GROUP (ORDER BY {duration})"


def local_week(column: str, tz_param: str) -> str:
    """The Monday of the local week `column` falls in, `tz_param` naming the zone's parameter."""
    return f"date_trunc('week', {column} AT TIME ZONE {tz_param})::date"


# --- themes: level and hidden ---------------------------------------------------------------
# `lt` is the item's leaf theme and `pt` its parent. At level=parent an item belongs to its
# leaf's parent (a leaf without a parent stands for itself); a parent's figures are aggregated
# over its items, never summed from its children's rows. An item whose leaf or parent theme is
# hidden belongs to no shown theme and is counted as `hidden`, not `unassigned`.


def theme_join(column: str = "i.theme_id") -> str:
    return f"LEFT JOIN theme lt ON lt.theme_id = {column} LEFT JOIN theme pt ON pt.theme_id = lt.parent_id"


IS_HIDDEN = "coalesce(lt.hidden OR coalesce(pt.hidden, false), false)"


def theme_key(level: ThemeLevel) -> str:
    """The reported theme id: NULL for an unassigned or a hidden item."""
    own = "lt.theme_id" if level == "leaf" else "coalesce(lt.parent_id, lt.theme_id)"
    return f"CASE WHEN {IS_HIDDEN} THEN NULL ELSE {own} END"


def theme_label(level: ThemeLevel) -> str:
    own = "lt.label" if level == "leaf" else "coalesce(pt.label, lt.label)"
    return (
        f"CASE WHEN lt.theme_id IS NULL THEN '{UNASSIGNED_LABEL}' WHEN {IS_HIDDEN} THEN '{HIDDEN_LABEL}' ELSE {own} END"
    )


def theme_bucket(level: ThemeLevel) -> str:
    """The theme key as one integer: the theme id, 0 for unassigned, -1 for hidden (ids start at 1)."""
    return f"CASE WHEN lt.theme_id IS NULL THEN 0 WHEN {IS_HIDDEN} THEN -1 ELSE {theme_key(level)} END"


def theme_members(level: ThemeLevel, theme: str) -> str:
    """A condition on `i`: the item belongs to theme `theme` (an SQL expression) at this level."""
    if level == "leaf":
        return f"i.theme_id = {theme}"
    return f"i.theme_id IN (SELECT m.theme_id FROM theme m WHERE m.theme_id = {theme} OR m.parent_id = {theme})"


def bucket_label(bucket: str, label: str) -> str:
    """The label of a theme_bucket value, `label` being the theme's own for a positive bucket."""
    return f"CASE {bucket} WHEN 0 THEN '{UNASSIGNED_LABEL}' WHEN -1 THEN '{HIDDEN_LABEL}' ELSE {label} END"
