"""Customer-experience metric statements: business-hours times, satisfaction, effort, theme impact,
and the theme volumes behind knowledge gaps. Definitions: docs/metrics.md.

Satisfaction, effort and theme impact take the tickets whose (last) solve falls in the window,
from the covering index item_report_last_solved_idx (0011). Deleted items are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
from numpy.typing import NDArray

from schemas.cx_reports import EffortRow, SatisfactionRow, ThemeImpactRow
from schemas.reports import (
    EXCLUDED_COUNT,
    GROUP_KEYS,
    UNASSIGNED_LABEL,
    GroupBy,
    ResolutionTimeRow,
    ThemeLevel,
    TimeMetric,
    human_duration,
)

_TICKETS = "i.kind = 'ticket' AND i.deleted_at IS NULL"
_SOLVED_IN_WINDOW = f"{_TICKETS} AND i.last_solved_at >= $1 AND i.last_solved_at < $2"
_IS_SOLVED = "i.status IN ('solved', 'closed')"

# An item's theme at each level: its leaf, or its leaf's parent (a leaf without a parent stands
# for itself). Whitelisted SQL, never user text.
_THEME_KEY = {"leaf": "i.theme_id", "parent": "coalesce(t.parent_id, i.theme_id)"}
_THEME_JOIN = {
    "leaf": "LEFT JOIN theme t ON t.theme_id = i.theme_id",
    "parent": "LEFT JOIN theme t ON t.theme_id = i.theme_id"
    " LEFT JOIN theme p ON p.theme_id = coalesce(t.parent_id, i.theme_id)",
}
_THEME_LABEL = {"leaf": "t.label", "parent": "p.label"}


_HIDDEN = {"leaf": "coalesce(t.hidden, false)", "parent": "(coalesce(t.hidden, false) OR coalesce(p.hidden, false))"}


def _groups(group_by: GroupBy, level: ThemeLevel) -> tuple[str, str, str]:
    """(key columns, joins, GROUP BY) of a grouping; rows come in key order, the null key last.

    By theme, the items of a hidden theme make one row of their own: theme_id null, label "hidden"."""
    if group_by == "theme":
        key, label, hidden = _THEME_KEY[level], _THEME_LABEL[level], _HIDDEN[level]
        keys = (
            f"CASE WHEN {hidden} THEN NULL ELSE {key} END AS theme_id,"
            f" CASE WHEN {hidden} THEN 'hidden' ELSE coalesce({label}, '{UNASSIGNED_LABEL}') END AS label"
        )
        return keys, _THEME_JOIN[level], "1, 2"
    if group_by == "tag":
        join = "LEFT JOIN LATERAL (SELECT DISTINCT u.tag FROM unnest(i.tags) AS u(tag)) g ON true"
        return "g.tag", join, "g.tag"
    return f"i.{group_by}", "", f"i.{group_by}"


def _grouped(select: str, where: str, group_by: GroupBy | None, level: ThemeLevel, rows: str = "item i") -> str:
    if group_by is None:
        return f"SELECT {select} FROM {rows} WHERE {where}"
    keys, join, group = _groups(group_by, level)
    return f"SELECT {keys}, {select} FROM {rows} {join} WHERE {where} GROUP BY {group} ORDER BY 1 NULLS LAST, 2"


def _keys(row: asyncpg.Record, group_by: GroupBy | None) -> dict[str, Any]:
    return {key: row[key] for key in GROUP_KEYS[group_by]}


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# ---- business-hours times -------------------------------------------------------------------

# metric -> (window column, end of the span, condition for the ticket to have a span, excluded)
_SPANS: dict[TimeMetric, tuple[str, str, str, str]] = {
    "first_response": ("i.created_at", "i.first_response_at", "true", "i.first_response_at IS NULL"),
    "first_resolution": ("i.first_solved_at", "i.first_solved_at", "true", "false"),
    "full_resolution": (
        "i.last_solved_at", "i.last_solved_at", _IS_SOLVED, "i.status IS NULL OR i.status NOT IN ('solved', 'closed')",
    ),
}  # fmt: skip


# The schedule's clock arrays, read once per statement into a one-row CTE that every item row
# joins. `|| '{}'` makes a detoasted copy in memory: a stored array is compressed, and each use of
# it would be decompressed again for every row.
_CLOCK = """WITH clock AS MATERIALIZED (
    SELECT clock_starts || '{}'::float8[] AS starts, clock_lengths || '{}'::float8[] AS lengths,
           clock_before || '{}'::float8[] AS before
    FROM schedule WHERE schedule_id = $3
) """


def _open_seconds(x: str, k: str) -> str:
    """Open seconds of the clock up to the instant x (epoch seconds), k being its interval."""
    return (
        f"(CASE WHEN {k} = 0 THEN 0 ELSE c.before[{k}] + least(greatest({x} - c.starts[{k}], 0), c.lengths[{k}]) END)"
    )


async def select_business_times(
    conn: asyncpg.Connection,
    *,
    metric: TimeMetric,
    start_at: datetime,
    end_at: datetime,
    schedule_id: int,
    group_by: GroupBy | None = None,
    level: ThemeLevel = "leaf",
) -> list[ResolutionTimeRow]:
    """Like the calendar-time report (same windows, groups and exclusions), counting only the
    seconds schedule `schedule_id` is open: each end of a span is located in the schedule's
    interval array by binary search (width_bucket), and a span's business seconds are the
    difference of the open seconds up to its two ends."""
    column, end, has_span, excluded = _SPANS[metric]
    # Each ticket's business seconds are computed in a subquery that hands on only narrow columns
    # (OFFSET 0 keeps it apart): were the expression left to the aggregates, every row would
    # carry the clock's arrays into the sort of the GROUP BY.
    spans = f"""(
        SELECT i.theme_id, i.source, i.channel, i.priority, i.product, i.tags, ({excluded}) AS is_excluded,
               CASE WHEN {has_span} THEN {_open_seconds("x.xb", "k.kb")} - {_open_seconds("x.xa", "k.ka")} END AS d
        FROM clock c CROSS JOIN item i
        CROSS JOIN LATERAL (SELECT date_part('epoch', i.created_at) AS xa, date_part('epoch', {end}) AS xb) x
        CROSS JOIN LATERAL (SELECT width_bucket(x.xa, c.starts) AS ka, width_bucket(x.xb, c.starts) AS kb) k
        WHERE {_TICKETS} AND {column} >= $1 AND {column} < $2
        OFFSET 0
    ) AS i"""
    sql = _grouped(
        "count(i.d) AS n, percentile_cont(ARRAY[0.5, 0.9]::float8[]) WITHIN GROUP (ORDER BY i.d) AS pct,"
        " avg(i.d) AS mean, count(*) FILTER (WHERE i.is_excluded) AS excluded",
        "true",
        group_by,
        level,
        rows=spans,
    )
    rows = await conn.fetch(_CLOCK + sql, start_at, end_at, schedule_id)
    excluded_field = EXCLUDED_COUNT[metric]
    result = []
    for r in rows:
        median, p90 = r["pct"] if r["n"] else (None, None)
        result.append(
            ResolutionTimeRow(
                **_keys(r, group_by),
                count=r["n"],
                median_s=median,
                p90_s=p90,
                mean_s=r["mean"],
                median_human=human_duration(median),
                p90_human=human_duration(p90),
                mean_human=human_duration(r["mean"]),
                **({excluded_field: r["excluded"]} if excluded_field else {}),
            )
        )
    return result


# ---- satisfaction and effort ----------------------------------------------------------------


async def select_satisfaction(
    conn: asyncpg.Connection,
    *,
    start_at: datetime,
    end_at: datetime,
    group_by: GroupBy | None,
    level: ThemeLevel = "leaf",
) -> list[SatisfactionRow]:
    """CSAT = tickets rated 4 or 5 / tickets rated, among tickets last solved in the window."""
    sql = _grouped(
        "count(*) AS solved, count(i.csat) AS rated, count(*) FILTER (WHERE i.csat >= 4) AS satisfied,"
        " avg(i.csat)::float8 AS mean_score",
        _SOLVED_IN_WINDOW,
        group_by,
        level,
    )
    rows = await conn.fetch(sql, start_at, end_at)
    return [
        SatisfactionRow(
            **_keys(r, group_by),
            solved=r["solved"],
            rated=r["rated"],
            satisfied=r["satisfied"],
            csat=_ratio(r["satisfied"], r["rated"]),
            mean_score=r["mean_score"],
        )
        for r in rows
    ]


async def select_effort(
    conn: asyncpg.Connection,
    *,
    start_at: datetime,
    end_at: datetime,
    group_by: GroupBy | None,
    level: ThemeLevel = "leaf",
) -> list[EffortRow]:
    """Means per ticket last solved in the window. A counter the source did not send is left out
    of that counter's mean (not taken as zero); reopens are always known (events or counter). The
    effort index is the sum of the parts' means: customer replies + 2 x reopens + assignee changes."""
    sql = _grouped(
        "count(*) AS tickets, avg(i.customer_replies)::float8 AS customer, avg(i.agent_replies)::float8 AS agent,"
        " avg(i.assignee_changes)::float8 AS assignees, avg(i.reopen_count)::float8 AS reopens",
        _SOLVED_IN_WINDOW,
        group_by,
        level,
    )
    rows = await conn.fetch(sql, start_at, end_at)
    result = []
    for r in rows:
        parts = (r["customer"], r["reopens"], r["assignees"])
        index = None if any(p is None for p in parts) else r["customer"] + 2 * r["reopens"] + r["assignees"]
        result.append(
            EffortRow(
                **_keys(r, group_by),
                tickets=r["tickets"],
                customer_replies_mean=r["customer"],
                agent_replies_mean=r["agent"],
                assignee_changes_mean=r["assignees"],
                reopens_mean=r["reopens"],
                effort_index=index,
            )
        )
    return result


# ---- theme impact ---------------------------------------------------------------------------

# One pass over the window's tickets: per theme, the counts and the full resolution times of
# those solved or closed now (the others' figures are derived from the totals and these).
_IMPACT = """
SELECT {key} AS theme_id, {label} AS label, coalesce(t.hidden, false) AS hidden,
       count(*) AS volume, count(*) FILTER (WHERE i.reopen_count > 0) AS reopened,
       count(i.csat) AS rated, count(*) FILTER (WHERE i.csat >= 4) AS satisfied,
       coalesce(array_agg(date_part('epoch', i.last_solved_at - i.created_at)) FILTER (WHERE {solved}), '{{}}')
           AS seconds
FROM item i {join}
WHERE {where}
GROUP BY 1, 2, 3
"""


def median_sorted(values: NDArray[np.float64]) -> float | None:
    """percentile_cont(0.5) of ascending values."""
    n = len(values)
    if n == 0:
        return None
    return float(values[(n - 1) // 2] + values[n // 2]) / 2


def medians_without(ordered: NDArray[np.float64], positions: NDArray[np.int64]) -> float | None:
    """percentile_cont(0.5) of `ordered` (ascending) without the elements at `positions`
    (ascending, distinct), in O(len(positions) + log n).

    With q_i = positions_i - i, the k-th remaining element (0-based) sits at index
    k + #{i : q_i <= k}: each removed element at or before it shifts it one place right.
    """
    remaining = len(ordered) - len(positions)
    if remaining <= 0:
        return None
    shifted = positions - np.arange(len(positions))

    def kth(k: int) -> float:
        return float(ordered[k + int(np.searchsorted(shifted, k, side="right"))])

    return (kth((remaining - 1) // 2) + kth(remaining // 2)) / 2


async def select_theme_impact(
    conn: asyncpg.Connection, *, start_at: datetime, end_at: datetime, level: ThemeLevel = "leaf"
) -> list[ThemeImpactRow]:
    """Per theme (and unassigned), its tickets last solved in the window against all the others:
    reopen rate, median full resolution time (currently solved tickets), CSAT, and excess hours =
    volume x (theme median - others' median) / 3600. Ranked by excess hours, largest first. A
    hidden theme has no row; its tickets count among the others of every theme."""
    fmt = {"key": _THEME_KEY[level], "label": _THEME_LABEL[level], "join": _THEME_JOIN[level]}
    counts = await conn.fetch(_IMPACT.format(**fmt, where=_SOLVED_IN_WINDOW, solved=_IS_SOLVED), start_at, end_at)
    # Every time, ascending, and for each theme the positions of its own times in that order.
    sizes = [len(r["seconds"]) for r in counts]
    seconds = np.fromiter((v for r in counts for v in r["seconds"]), dtype=np.float64, count=sum(sizes))
    owner = np.repeat(np.arange(len(counts)), sizes)
    order = np.argsort(seconds, kind="stable")
    ordered = seconds[order]
    by_owner = np.argsort(owner[order], kind="stable")  # positions grouped by theme, ascending within
    bounds = np.cumsum([0, *(sizes[n] for n in range(len(counts)))])
    positions = [by_owner[bounds[n] : bounds[n + 1]] for n in range(len(counts))]

    totals = {f: sum(r[f] for r in counts) for f in ("volume", "reopened", "rated", "satisfied")}
    rows = []
    for n, r in enumerate(counts):
        if r["hidden"]:
            continue
        pos = positions[n]
        median = median_sorted(ordered[pos])
        others = medians_without(ordered, pos)
        excess = r["volume"] * (median - others) / 3600 if median is not None and others is not None else None
        rows.append(
            ThemeImpactRow(
                theme_id=r["theme_id"],
                label=r["label"] if r["theme_id"] is not None else UNASSIGNED_LABEL,
                volume=r["volume"],
                share=r["volume"] / totals["volume"],
                reopen_rate=_ratio(r["reopened"], r["volume"]),
                reopen_rate_others=_ratio(totals["reopened"] - r["reopened"], totals["volume"] - r["volume"]),
                median_resolution_s=median,
                median_resolution_s_others=others,
                csat=_ratio(r["satisfied"], r["rated"]),
                csat_others=_ratio(totals["satisfied"] - r["satisfied"], totals["rated"] - r["rated"]),
                excess_hours=excess,
            )
        )
    rows.sort(key=lambda row: (row.excess_hours is None, -(row.excess_hours or 0), row.theme_id or 0))
    return rows


# ---- knowledge gaps -------------------------------------------------------------------------


@dataclass(frozen=True)
class ThemeVolume:
    theme_id: int
    label: str
    volume: int
    centroid: NDArray[np.float32] | None


async def select_theme_volumes(
    conn: asyncpg.Connection, *, start_at: datetime, end_at: datetime, level: ThemeLevel = "leaf"
) -> list[ThemeVolume]:
    """Items created in the window per visible theme at this level, the biggest first, with the
    theme's centroid (a parent without its own centroid gets the mean of its leaves')."""
    # Count per theme key first, then join the themes: grouping by a centroid (1.5 kB) would hash it
    # for every item.
    join = "LEFT JOIN theme t ON t.theme_id = i.theme_id" if level == "parent" else ""
    rows = await conn.fetch(
        f"WITH v AS (SELECT {_THEME_KEY[level]} AS theme_id, count(*) AS volume FROM item i {join}"
        " WHERE i.deleted_at IS NULL AND i.created_at >= $1 AND i.created_at < $2 AND i.theme_id IS NOT NULL"
        " GROUP BY 1)"
        " SELECT v.theme_id, th.label, v.volume, th.centroid FROM v JOIN theme th ON th.theme_id = v.theme_id"
        " WHERE NOT th.hidden ORDER BY v.volume DESC, v.theme_id",
        start_at,
        end_at,
    )
    missing = [r["theme_id"] for r in rows if r["centroid"] is None]
    child_means: dict[int, NDArray[np.float32]] = {}
    if missing and level == "parent":
        for c in await conn.fetch(
            "SELECT parent_id, centroid FROM theme WHERE parent_id = ANY($1::bigint[]) AND centroid IS NOT NULL",
            missing,
        ):
            vector = np.frombuffer(c["centroid"], dtype="<f4")
            child_means[c["parent_id"]] = child_means.get(c["parent_id"], np.zeros_like(vector)) + vector
    result = []
    for r in rows:
        centroid = np.frombuffer(r["centroid"], dtype="<f4") if r["centroid"] is not None else None
        if centroid is None:
            centroid = child_means.get(r["theme_id"])
        result.append(ThemeVolume(r["theme_id"], r["label"], r["volume"], centroid))
    return result
