"""The "This week" page: the week's top themes with their 12-week sparklines, change and badges.

Three queries whatever the number of themes: the theme-trends report for the selected week
(ranking, week-over-week change, spike and emerging, by the report's own definitions), one
aggregate for every sparkline, and the week's totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from api.dashboard.charts import Chart, Series, Sparkline, Table, sparkline, week_label
from api.dashboard.theme import items_link
from api.dashboard.weeks import Weeks
from api.routes.reports import build_theme_trends
from api.windows import Window
from db.queries.dashboard import select_theme_summaries, select_weekly_volumes, select_window_counts
from db.queries.themes import TreePlace, select_parent_volumes, select_tree_places
from schemas.reports import UNASSIGNED_LABEL

TOP_THEMES = 25
CHARTED_THEMES = 10


@dataclass(frozen=True)
class ThemeLine:
    rank: int
    theme_id: int
    label: str
    keywords: list[str]
    status: str
    volume: int
    last_week: int
    wow_change: float
    is_spike: bool
    is_emerging: bool
    spark: Sparkline
    weekly: list[int]


@dataclass(frozen=True)
class Area:
    """A parent theme with the week's leaves folded inside; ``parent_id`` None gathers the leaves
    without a parent."""

    parent_id: int | None
    label: str
    volume: int
    lines: list[ThemeLine]


async def build_overview(conn: asyncpg.Connection, *, weeks: Weeks, source: str | None) -> dict[str, Any]:
    week = Window(weeks.week_start_at, weeks.end_at, weeks.tz)
    report = await build_theme_trends(conn, window=week, source=source, top=TOP_THEMES, now=weeks.now)
    trends = report.rows
    places = await select_tree_places(conn, theme_ids=[r.theme_id for r in trends if r.theme_id is not None])
    # A theme a person hid is out of the dashboard.
    ranked = [r for r in trends if r.theme_id is not None and r.volume > 0 and not _is_hidden(places, r.theme_id)]
    unassigned = next((r.volume for r in trends if r.theme_id is None and r.label == UNASSIGNED_LABEL), 0)
    theme_ids = [r.theme_id for r in ranked if r.theme_id is not None]
    volumes = await select_weekly_volumes(
        conn,
        theme_ids=theme_ids,
        column="theme_id",
        tz=weeks.tz,
        start_at=weeks.start_at,
        end_at=weeks.end_at,
        source=source,
    )
    summaries = await select_theme_summaries(conn, theme_ids=theme_ids)
    counts = await select_window_counts(conn, start_at=weeks.week_start_at, end_at=weeks.end_at, source=source)

    mondays = weeks.mondays
    lines = []
    for rank, row in enumerate(ranked, start=1):
        assert row.theme_id is not None
        by_week = volumes.get(row.theme_id, {})
        weekly = [by_week.get(m, 0) for m in mondays]
        summary = summaries.get(row.theme_id)
        lines.append(
            ThemeLine(
                rank=rank,
                theme_id=row.theme_id,
                label=row.label,
                keywords=summary.keywords[:6] if summary else [],
                status=summary.status if summary else "",
                volume=row.volume,
                last_week=weekly[-2],
                wow_change=row.wow_change,
                is_spike=row.is_spike,
                is_emerging=row.is_emerging,
                spark=sparkline(mondays, weekly),
                weekly=weekly,
            )
        )
    charted = lines[:CHARTED_THEMES]
    chart = Chart(
        chart_id="top-themes",
        kind="hbar",
        title=f"Top {len(charted)} themes: items this week and last week",
        x_title="Theme",
        y_title="Items (count)",
        labels=[line.label for line in charted],
        series=[
            Series(f"Week of {week_label(weeks.selected)}", [float(line.volume) for line in charted]),
            Series(f"Week of {week_label(weeks.previous)}", [float(line.last_week) for line in charted]),
        ],
        links=[
            [items_link(line.theme_id, weeks, week) for line in charted] for week in (weeks.selected, weeks.previous)
        ],
    )
    weekly_table = Table(
        columns=["Theme", *(f"{m:%b %d}" for m in mondays)],
        rows=[[line.label, *(str(v) for v in line.weekly)] for line in lines],
    )
    parent_ids = sorted({p.parent_id for p in places.values() if p.parent_id is not None})
    parent_volumes = await select_parent_volumes(
        conn, parent_ids=parent_ids, start_at=weeks.week_start_at, end_at=weeks.end_at, source=source
    )
    return {
        "lines": lines,
        "areas": _areas(lines, places, parent_volumes),
        "chart": chart,
        "weekly_table": weekly_table,
        "total": counts.total,
        "unassigned": unassigned,
        "hidden": counts.hidden,
        "assigned_share": (counts.total - counts.unassigned) / counts.total if counts.total else None,
    }


def _is_hidden(places: dict[int, TreePlace], theme_id: int) -> bool:
    place = places.get(theme_id)
    return place is not None and place.hidden


def _areas(lines: list[ThemeLine], places: dict[int, TreePlace], parent_volumes: dict[int, int]) -> list[Area]:
    """The week's leaves under their parents, biggest parent first (by its own items' volume)."""
    grouped: dict[int | None, list[ThemeLine]] = {}
    for line in lines:
        place = places.get(line.theme_id)
        grouped.setdefault(place.parent_id if place else None, []).append(line)
    areas = []
    for parent_id, members in grouped.items():
        place = places.get(members[0].theme_id)
        label = (place.parent_label if place else None) or "Themes without an area"
        volume = parent_volumes.get(parent_id, 0) if parent_id is not None else sum(m.volume for m in members)
        areas.append(Area(parent_id=parent_id, label=label, volume=volume, lines=members))
    return sorted(areas, key=lambda a: (a.parent_id is None, -a.volume, a.parent_id or 0))
