"""The feature-requests page: feature themes ranked by requests over the 12 weeks shown, with
distinct requesters, summed votes and a weekly trend line; each links to its requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from api.dashboard.charts import Chart, Series, Sparkline, sparkline, week_label
from api.dashboard.theme import items_link
from api.dashboard.weeks import Weeks
from db.queries.dashboard import FeatureStat, select_feature_request_stats, select_theme_summaries

MAX_THEMES = 100
CHARTED_THEMES = 10


@dataclass(frozen=True)
class FeatureLine:
    rank: int
    theme_id: int
    label: str
    keywords: list[str]
    count: int
    requesters: int
    votes: int
    this_week: int
    spark: Sparkline


async def build_features(conn: asyncpg.Connection, *, weeks: Weeks, source: str | None) -> dict[str, Any]:
    stats = await select_feature_request_stats(
        conn, tz=weeks.tz, start_at=weeks.start_at, end_at=weeks.end_at, source=source
    )
    totals = [s for s in stats if s.week is None and not s.is_week_total]
    cells: dict[int | None, dict[date, FeatureStat]] = {}
    for s in stats:
        if s.week is not None and not s.is_week_total:
            cells.setdefault(s.theme_id, {})[s.week] = s
    per_week = {s.week: s for s in stats if s.is_week_total and s.week is not None}

    ranked = sorted((s for s in totals if s.theme_id is not None), key=lambda s: (-s.count, -s.votes, s.theme_id or 0))[
        :MAX_THEMES
    ]
    summaries = await select_theme_summaries(conn, theme_ids=[s.theme_id for s in ranked if s.theme_id is not None])
    mondays = weeks.mondays
    lines = []
    for rank, total in enumerate(ranked, start=1):
        assert total.theme_id is not None
        weekly = [cells.get(total.theme_id, {}).get(m) for m in mondays]
        counts = [w.count if w else 0 for w in weekly]
        summary = summaries.get(total.theme_id)
        lines.append(
            FeatureLine(
                rank=rank,
                theme_id=total.theme_id,
                label=summary.label if summary else f"Theme {total.theme_id}",
                keywords=summary.keywords[:6] if summary else [],
                count=total.count,
                requesters=total.requesters,
                votes=total.votes,
                this_week=counts[-1],
                spark=sparkline(mondays, counts),
            )
        )
    unthemed = next((s for s in totals if s.theme_id is None and not s.is_hidden), None)
    hidden = next((s for s in totals if s.is_hidden), None)
    weekly_chart = Chart(
        chart_id="feature-weekly",
        kind="line",
        title="Feature requests per week",
        x_title=f"Week starting Monday ({weeks.tz})",
        y_title="Count",
        labels=[week_label(m) for m in mondays],
        series=[
            Series("Requests", [float(per_week[m].count) if m in per_week else 0.0 for m in mondays]),
            Series("Distinct requesters", [float(per_week[m].requesters) if m in per_week else 0.0 for m in mondays]),
        ],
    )
    charted = lines[:CHARTED_THEMES]
    top_chart = Chart(
        chart_id="feature-top",
        kind="hbar",
        title=f"Top {len(charted)} feature themes over {weeks.count} weeks",
        x_title="Feature theme",
        y_title="Count",
        labels=[line.label for line in charted],
        series=[
            Series("Requests", [float(line.count) for line in charted]),
            Series("Distinct requesters", [float(line.requesters) for line in charted]),
        ],
        links=[[items_link(line.theme_id, weeks) for line in charted]] * 2,
    )
    return {
        "lines": lines,
        "weekly_chart": weekly_chart,
        "top_chart": top_chart,
        "total": sum(s.count for s in totals),
        "unthemed": unthemed.count if unthemed else 0,
        "hidden": hidden.count if hidden else 0,
        "votes": sum(s.votes for s in totals),
    }
