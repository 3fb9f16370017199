"""The operations page: reopen rate and resolution-time distributions per week, then broken down
by source, channel and priority over the 12 weeks shown.

Two scans in all (db/queries/dashboard.py): one for reopens, one for the chosen time metric,
each grouped by week and by every breakdown at once; the figures follow the report endpoints'
definitions (tests/api/test_dashboard.py compares them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from api.dashboard.charts import Chart, Series, pick_duration_unit, week_label
from api.dashboard.weeks import Weeks
from api.windows import invalid
from db.queries.dashboard import (
    Dimension,
    ReopenGroup,
    TimesGroup,
    select_reopen_groups,
    select_times_groups,
)
from schemas.reports import TimeMetric

BREAKDOWNS: tuple[Dimension, ...] = ("source", "channel", "priority")
METRIC_NAMES: dict[TimeMetric, str] = {
    "first_response": "First response time",
    "first_resolution": "First resolution time",
    "full_resolution": "Full resolution time",
}


def parse_metric(value: str | None) -> TimeMetric:
    for metric in METRIC_NAMES:
        if metric == (value or "full_resolution"):
            return metric
    raise invalid("metric", f"Unknown metric {value!r}: use first_response, first_resolution or full_resolution.")


@dataclass(frozen=True)
class Row:
    """One line of a table: a week or a breakdown key, with its reopen and time figures."""

    key: date | str | None
    reopen: ReopenGroup | None
    times: TimesGroup | None

    @property
    def reopen_rate(self) -> float | None:
        return self.reopen.reopened / self.reopen.solved if self.reopen and self.reopen.solved else None

    @property
    def reopens_per_solved(self) -> float | None:
        return self.reopen.reopens / self.reopen.solved if self.reopen and self.reopen.solved else None


def _rows(dimension: Dimension, reopens: list[ReopenGroup], times: list[TimesGroup]) -> list[Row]:
    by_reopen = {g.key: g for g in reopens if g.dimension == dimension}
    by_times = {g.key: g for g in times if g.dimension == dimension}
    keys = sorted(by_reopen.keys() | by_times.keys(), key=lambda k: (k is None, str(k)))
    return [Row(k, by_reopen.get(k), by_times.get(k)) for k in keys]


async def build_operations(conn: asyncpg.Connection, *, weeks: Weeks, metric: TimeMetric) -> dict[str, Any]:
    reopens = await select_reopen_groups(conn, tz=weeks.tz, start_at=weeks.start_at, end_at=weeks.end_at)
    times = await select_times_groups(conn, metric=metric, tz=weeks.tz, start_at=weeks.start_at, end_at=weeks.end_at)
    by_week = {row.key: row for row in _rows("week", reopens, times)}
    weekly = [by_week.get(m) or Row(m, None, None) for m in weeks.mondays]
    labels = [week_label(m) for m in weeks.mondays]
    x_title = f"Week starting Monday ({weeks.tz})"
    rate_chart = Chart(
        chart_id="reopen-rate",
        kind="bar",
        title="Reopen rate by week of first solve",
        x_title=x_title,
        y_title="Reopened tickets (% of solved)",
        labels=labels,
        series=[Series("Reopen rate", [row.reopen_rate for row in weekly])],
        value_format="pct",
    )
    medians = [row.times.median_s if row.times else None for row in weekly]
    p90s = [row.times.p90_s if row.times else None for row in weekly]
    unit, per = pick_duration_unit(p90s + medians)
    times_chart = Chart(
        chart_id="resolution-times",
        kind="line",
        title=f"{METRIC_NAMES[metric]}: median and p90 per week",
        x_title=x_title,
        y_title=f"Calendar time ({unit})",
        labels=labels,
        series=[
            Series("Median", [v / per if v is not None else None for v in medians]),
            Series("p90", [v / per if v is not None else None for v in p90s]),
        ],
        value_format="dec1",
    )
    return {
        "metric": metric,
        "rate_chart": rate_chart,
        "times_chart": times_chart,
        "weekly_rows": weekly,
        "breakdowns": {dimension: _rows(dimension, reopens, times) for dimension in BREAKDOWNS},
    }
