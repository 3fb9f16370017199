"""Dashboard statements: the page aggregates the report queries do not give.

Sign-in sessions are in dashboard_sessions.py, the runs-and-health page's reads in health.py.

Every page figure is one aggregate over an indexed range (created_at, theme_id / feature_theme_id,
first_solved_at, last_solved_at); nothing loops a query per theme. The figures' definitions and
local weeks are db/queries/metrics.py's, the same fragments the report statements use, so a
dashboard number and the report endpoint's number agree. Definitions: docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import asyncpg

from clustering.redact import mask_contacts
from db.queries.item_reads import mask_contacts_of
from db.queries.metrics import (
    IS_HIDDEN,
    PERCENTILES,
    REOPEN_FIGURES,
    REOPEN_WINDOW_COLUMN,
    TICKETS,
    TIME_METRICS,
    local_week,
    theme_join,
)
from schemas.reports import TimeMetric

ThemeColumn = Literal["theme_id", "feature_theme_id"]


# --- shared lookups -------------------------------------------------------------------------


async def select_sources(conn: asyncpg.Connection) -> list[str]:
    """Distinct item sources by skipping through the (source, external_id) index: a handful of
    index probes instead of a scan of every item."""
    rows = await conn.fetch(
        "WITH RECURSIVE s AS ("
        " (SELECT source FROM item ORDER BY source LIMIT 1)"
        " UNION ALL"
        " SELECT (SELECT i.source FROM item i WHERE i.source > s.source ORDER BY i.source LIMIT 1)"
        " FROM s WHERE s.source IS NOT NULL)"
        " SELECT source FROM s WHERE source IS NOT NULL"
    )
    return [r["source"] for r in rows]


@dataclass(frozen=True, slots=True)
class ThemeSummary:
    theme_id: int
    scope: str
    label: str
    keywords: list[str]
    status: str
    size: int
    first_seen_at: datetime | None


async def select_theme_summaries(conn: asyncpg.Connection, *, theme_ids: Sequence[int]) -> dict[int, ThemeSummary]:
    rows = await conn.fetch(
        "SELECT theme_id, scope, label, keywords, status, size, first_seen_at FROM theme"
        " WHERE theme_id = ANY($1::bigint[])",
        list(theme_ids),
    )
    return {r["theme_id"]: ThemeSummary(**dict(r)) for r in rows}


async def select_weekly_volumes(
    conn: asyncpg.Connection,
    *,
    theme_ids: Sequence[int],
    column: ThemeColumn,
    tz: str,
    start_at: datetime,
    end_at: datetime,
    source: str | None = None,
) -> dict[int, dict[date, int]]:
    """Items per (theme, local week) for many themes at once: every sparkline of a page in one
    query over the (theme_id, created_at) index. Weeks without items are absent."""
    rows = await conn.fetch(
        f"SELECT {column} AS theme_id, {local_week('created_at', '$2')} AS week,"
        " count(*)::int AS volume FROM item"
        f" WHERE {column} = ANY($1::bigint[]) AND created_at >= $3 AND created_at < $4"
        " AND deleted_at IS NULL AND ($5::text IS NULL OR source = $5)"
        " GROUP BY 1, 2",
        list(theme_ids), tz, start_at, end_at, source,
    )  # fmt: skip
    volumes: dict[int, dict[date, int]] = {}
    for r in rows:
        volumes.setdefault(r["theme_id"], {})[r["week"]] = r["volume"]
    return volumes


@dataclass(frozen=True, slots=True)
class WindowCounts:
    total: int
    unassigned: int
    hidden: int  # items of hidden themes: assigned, but out of the pages


async def select_window_counts(
    conn: asyncpg.Connection, *, start_at: datetime, end_at: datetime, source: str | None = None
) -> WindowCounts:
    row = await conn.fetchrow(
        "SELECT count(*)::int AS total, count(*) FILTER (WHERE i.theme_id IS NULL)::int AS unassigned,"
        f" count(*) FILTER (WHERE {IS_HIDDEN})::int AS hidden FROM item i {theme_join()}"
        " WHERE i.created_at >= $1 AND i.created_at < $2 AND i.deleted_at IS NULL"
        " AND ($3::text IS NULL OR i.source = $3)",
        start_at, end_at, source,
    )  # fmt: skip
    assert row is not None
    return WindowCounts(row["total"], row["unassigned"], row["hidden"])


# --- items ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemBrief:
    item_id: int
    source: str
    external_id: str
    kind: str
    title: str | None
    snippet: str
    url: str | None
    created_at: datetime
    status: str | None
    intent: str | None
    votes: int | None
    intent_confidence: float | None = None
    intent_source: str | None = None


# The redacted text when the worker has prepared it; the raw body only before that.
_BRIEF = """i.item_id, i.source, i.external_id, i.kind, i.title,
    left(coalesce(i.clean_text, i.body), 240) AS snippet, i.url, i.created_at, i.status, i.intent, i.votes,
    i.intent_confidence, i.intent_source"""


def _to_brief(row: asyncpg.Record, *, pii: bool) -> ItemBrief:
    data = dict(row) if pii else mask_contacts_of(dict(row) | {"snippet": mask_contacts(row["snippet"])})
    title, snippet = data["title"], data["snippet"]
    # Prepared text starts with the title; shown under the title it would say it twice.
    if title and snippet.startswith(title):
        data["snippet"] = snippet[len(title) :].lstrip(" .:-\n")
    return ItemBrief(**data)


async def select_item_briefs(conn: asyncpg.Connection, *, item_ids: Sequence[int], pii: bool) -> list[ItemBrief]:
    """The items in the order given (representative items are ordered by the clustering)."""
    rows = await conn.fetch(
        f"SELECT {_BRIEF} FROM unnest($1::bigint[]) WITH ORDINALITY AS o(item_id, n)"
        " JOIN item i USING (item_id) WHERE i.deleted_at IS NULL ORDER BY o.n",
        list(item_ids),
    )
    return [_to_brief(r, pii=pii) for r in rows]


async def select_theme_items(
    conn: asyncpg.Connection,
    *,
    theme_id: int,
    column: ThemeColumn,
    before: tuple[datetime, int] | None,
    limit: int,
    pii: bool,
    within: tuple[datetime, datetime] | None = None,
) -> list[ItemBrief]:
    """A theme's items newest first, keyset-paginated on (created_at, item_id); only those created
    in [start, end) when `within` is given (a chart's week)."""
    before_at, before_id = before if before else (None, None)
    start_at, end_at = within if within else (None, None)
    rows = await conn.fetch(
        f"SELECT {_BRIEF} FROM item i WHERE i.{column} = $1 AND i.deleted_at IS NULL"
        " AND ($2::timestamptz IS NULL OR (i.created_at, i.item_id) < ($2, $3))"
        " AND ($5::timestamptz IS NULL OR i.created_at >= $5) AND ($6::timestamptz IS NULL OR i.created_at < $6)"
        " ORDER BY i.created_at DESC, i.item_id DESC LIMIT $4",
        theme_id, before_at, before_id, limit, start_at, end_at,
    )  # fmt: skip
    return [_to_brief(r, pii=pii) for r in rows]


# --- feature requests -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeatureStat:
    """One grouping of feature requests: a (theme, week) cell, a theme's window total
    (week None), or a week's total over all themes (`is_week_total`). theme_id None: no theme,
    or a hidden one (`is_hidden`)."""

    theme_id: int | None
    is_hidden: bool
    week: date | None
    is_week_total: bool
    count: int
    votes: int
    requesters: int


async def select_feature_request_stats(
    conn: asyncpg.Connection, *, tz: str, start_at: datetime, end_at: datetime, source: str | None = None
) -> list[FeatureStat]:
    """Count, summed votes and distinct requesters of feature requests per (theme, week), per theme
    and per week, in one pass. Distinct requesters do not add up across weeks, hence the grouping
    sets rather than sums in Python."""
    week = local_week("i.created_at", "$1")
    theme = f"CASE WHEN {IS_HIDDEN} THEN NULL ELSE i.feature_theme_id END"
    rows = await conn.fetch(
        f"SELECT {theme} AS theme_id, {IS_HIDDEN} AS is_hidden, {week} AS week,"
        f" GROUPING({theme}) = 1 AS is_week_total, count(*)::int AS count,"
        " coalesce(sum(i.votes), 0)::bigint AS votes, count(DISTINCT i.requester_id)::int AS requesters"
        f" FROM item i {theme_join('i.feature_theme_id')}"
        " WHERE i.intent = 'feature_request' AND i.created_at >= $2 AND i.created_at < $3"
        " AND i.deleted_at IS NULL AND ($4::text IS NULL OR i.source = $4)"
        f" GROUP BY GROUPING SETS (({theme}, {IS_HIDDEN}, {week}), ({theme}, {IS_HIDDEN}), ({week}))",
        tz, start_at, end_at, source,
    )  # fmt: skip
    return [
        FeatureStat(
            r["theme_id"], bool(r["is_hidden"]), r["week"], r["is_week_total"], r["count"], r["votes"], r["requesters"]
        )
        for r in rows
    ]


# --- operations and a theme's tickets ------------------------------------------------------

Dimension = Literal["week", "source", "channel", "priority"]
# GROUPING(week, source, channel, priority) is a bit mask, week the highest bit: the one
# grouping set a row belongs to has a 0 in its own place and 1 everywhere else.
_DIMENSIONS = (
    "CASE GROUPING(week, source, channel, priority) WHEN 7 THEN 'week' WHEN 11 THEN 'source'"
    " WHEN 13 THEN 'channel' ELSE 'priority' END AS dimension"
)
_GROUPING_SETS = "GROUPING SETS ((week), (source), (channel), (priority))"


@dataclass(frozen=True, slots=True)
class ReopenGroup:
    dimension: Dimension
    key: date | str | None  # the week's Monday, or the source / channel / priority (None: not set)
    solved: int
    reopened: int
    reopens: int


@dataclass(frozen=True, slots=True)
class TimesGroup:
    dimension: Dimension
    key: date | str | None
    count: int
    median_s: float | None
    p90_s: float | None


def _key(row: asyncpg.Record) -> date | str | None:
    value: date | str | None = row[row["dimension"]]
    return value


async def select_reopen_groups(
    conn: asyncpg.Connection, *, tz: str, start_at: datetime, end_at: datetime
) -> list[ReopenGroup]:
    """Tickets first solved in the window and how many reopened (the reopen-rate definition), per
    local week of the first solve and per source, channel and priority: one scan, not four."""
    column = REOPEN_WINDOW_COLUMN
    rows = await conn.fetch(
        f"SELECT {_DIMENSIONS}, week, source, channel, priority, {REOPEN_FIGURES}"
        f" FROM (SELECT {local_week(column, '$1')} AS week, i.source, i.channel, i.priority, i.reopen_count"
        f"      FROM item i WHERE {TICKETS} AND {column} >= $2 AND {column} < $3) t"
        f" GROUP BY {_GROUPING_SETS}",
        tz, start_at, end_at,
    )  # fmt: skip
    return [ReopenGroup(r["dimension"], _key(r), r["solved"], r["reopened"], r["reopens"]) for r in rows]


async def select_times_groups(
    conn: asyncpg.Connection, *, metric: TimeMetric, tz: str, start_at: datetime, end_at: datetime
) -> list[TimesGroup]:
    """Median and p90 (linear interpolation, seconds) of one time metric, per local week and per
    source, channel and priority, in one scan."""
    m = TIME_METRICS[metric]
    rows = await conn.fetch(
        f"SELECT {_DIMENSIONS}, week, source, channel, priority, count(duration)::int AS n,"
        f" {PERCENTILES.format(duration='duration')} AS pct"
        f" FROM (SELECT {local_week(m.column, '$1')} AS week, i.source, i.channel,"
        f"       i.priority, {m.duration} AS duration FROM item i"
        f"      WHERE {TICKETS} AND {m.column} >= $2 AND {m.column} < $3) t"
        f" GROUP BY {_GROUPING_SETS}",
        tz, start_at, end_at,
    )  # fmt: skip
    result = []
    for r in rows:
        median, p90 = r["pct"] if r["n"] else (None, None)
        result.append(TimesGroup(r["dimension"], _key(r), r["n"], median, p90))
    return result


@dataclass(frozen=True, slots=True)
class MetricFigures:
    metric: TimeMetric
    count: int
    median_s: float | None
    p90_s: float | None
    mean_s: float | None


@dataclass(frozen=True, slots=True)
class ThemeTicketFigures:
    solved: int
    reopened: int
    reopens: int
    times: list[MetricFigures]

    @property
    def reopen_rate(self) -> float | None:
        return self.reopened / self.solved if self.solved else None


async def select_theme_ticket_figures(
    conn: asyncpg.Connection, *, theme_id: int, start_at: datetime, end_at: datetime
) -> ThemeTicketFigures:
    """Reopen rate and the three time metrics for one theme's tickets, each over its own window
    column, from the theme's rows alone (the theme index) rather than a report over all themes."""
    figures = []
    for n, m in enumerate(TIME_METRICS.values()):
        window = f"{m.column} >= $2 AND {m.column} < $3"
        figures.append(
            f"count({m.duration}) FILTER (WHERE {window}) AS n{n},"
            f" {PERCENTILES.format(duration=m.duration)} FILTER (WHERE {window}) AS pct{n},"
            f" avg({m.duration}) FILTER (WHERE {window}) AS mean{n}"
        )
    solved = f"{REOPEN_WINDOW_COLUMN} >= $2 AND {REOPEN_WINDOW_COLUMN} < $3"
    row = await conn.fetchrow(
        f"SELECT count(*) FILTER (WHERE {solved})::int AS solved,"
        f" count(*) FILTER (WHERE {solved} AND i.reopen_count > 0)::int AS reopened,"
        f" coalesce(sum(i.reopen_count) FILTER (WHERE {solved}), 0)::int AS reopens, {', '.join(figures)}"
        f" FROM item i WHERE i.theme_id = $1 AND {TICKETS}",
        theme_id, start_at, end_at,
    )  # fmt: skip
    assert row is not None
    times = []
    for n, metric in enumerate(TIME_METRICS):
        median, p90 = row[f"pct{n}"] if row[f"n{n}"] else (None, None)
        times.append(MetricFigures(metric, row[f"n{n}"], median, p90, row[f"mean{n}"]))
    return ThemeTicketFigures(row["solved"], row["reopened"], row["reopens"], times)
