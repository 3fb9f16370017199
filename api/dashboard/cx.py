"""The customer-experience page: what to fix first (theme impact), satisfaction and effort by
theme, and the themes with no help-centre article. Each chart keeps its numbers beside it; the
figures are the API's reports (api/routes/cx_reports.py) over the weeks shown."""

from __future__ import annotations

from typing import Any

import asyncpg

from api.dashboard.charts import Chart, Series
from api.dashboard.weeks import Weeks
from api.routes.cx_reports import build_effort, build_knowledge_gaps, build_satisfaction, build_theme_impact
from api.windows import Window
from schemas.reports import ThemeLevel

TOP = 10


def _delta(theme: float | None, others: float | None) -> float | None:
    return theme - others if theme is not None and others is not None else None


async def build_cx(conn: asyncpg.Connection, *, weeks: Weeks, level: ThemeLevel = "leaf") -> dict[str, Any]:
    window = Window(weeks.start_at, weeks.end_at, weeks.tz)
    impact = await build_theme_impact(conn, window=window, level=level)
    fix_first = [r for r in impact.rows if r.theme_id is not None and (r.excess_hours or 0) > 0][:TOP]
    fix_rows: list[dict[str, Any]] = [
        {
            "theme_id": r.theme_id,
            "label": r.label,
            "volume": r.volume,
            "excess_hours": r.excess_hours,
            "median_h": (r.median_resolution_s or 0) / 3600,
            "median_h_others": (r.median_resolution_s_others or 0) / 3600,
            "reopen_delta": _delta(r.reopen_rate, r.reopen_rate_others),
            "csat_delta": _delta(r.csat, r.csat_others),
        }
        for r in fix_first
    ]
    fix_chart = Chart(
        chart_id="cx-fix-first",
        kind="hbar",
        title=f"What to fix first: excess hours over {weeks.count} weeks",
        x_title="Theme",
        y_title="Excess hours",
        labels=[r["label"] for r in fix_rows],
        series=[Series("Excess hours", [round(r["excess_hours"] or 0, 1) for r in fix_rows])],
        value_format="dec1",
    )
    satisfaction = await build_satisfaction(conn, window=window, group_by="theme", level=level)
    rated = sorted((r for r in satisfaction.rows if r.rated), key=lambda r: -r.rated)[:TOP]
    csat_chart = Chart(
        chart_id="cx-csat",
        kind="hbar",
        title="CSAT by theme (the most rated)",
        x_title="Theme",
        y_title="CSAT (share rated 4 or 5)",
        labels=[r.label or "unassigned" for r in rated],
        series=[Series("CSAT", [r.csat for r in rated])],
        value_format="pct",
    )
    effort = await build_effort(conn, window=window, group_by="theme", level=level)
    hardest = sorted((r for r in effort.rows if r.effort_index is not None), key=lambda r: -(r.effort_index or 0))
    hardest = hardest[:TOP]
    effort_chart = Chart(
        chart_id="cx-effort",
        kind="hbar",
        title="Customer effort by theme (the highest)",
        x_title="Theme",
        y_title="Effort index per ticket",
        labels=[r.label or "unassigned" for r in hardest],
        series=[
            Series("Effort index", [r.effort_index for r in hardest]),
            Series("Customer replies", [r.customer_replies_mean for r in hardest]),
            Series("Reopens", [r.reopens_mean for r in hardest]),
        ],
        value_format="dec1",
    )
    gaps = await build_knowledge_gaps(conn, window=window, level=level)
    missing = sorted((r for r in gaps.rows if not r.covered), key=lambda r: -r.gap_volume)[:TOP]
    gap_chart = Chart(
        chart_id="cx-gaps",
        kind="hbar",
        title="Missing articles: the biggest themes no article covers",
        x_title="Theme",
        y_title="Items in the weeks shown",
        labels=[r.label for r in missing],
        series=[Series("Gap volume", [float(r.gap_volume) for r in missing])],
    )
    return {
        "level": level,
        "fix_chart": fix_chart,
        "fix_rows": fix_rows,
        "csat_chart": csat_chart,
        "effort_chart": effort_chart,
        "gap_chart": gap_chart,
        "missing": missing,
        "gap_total": sum(r.gap_volume for r in gaps.rows),
        "themes_total": len(gaps.rows),
    }
