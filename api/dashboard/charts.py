"""Chart data for the pages: what Chart.js draws (api/static/js/dashboard.js) and, always beside
it, the same numbers as a table, so no figure depends on seeing colours or on JavaScript.

Sparklines are drawn here as SVG geometry instead: a page can hold hundreds of them, and a
polyline costs nothing while a Chart.js instance each would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

ChartKind = Literal["line", "bar", "hbar"]
ValueFormat = Literal["int", "pct", "dec1"]


@dataclass(frozen=True)
class Series:
    label: str
    values: list[float | None]


@dataclass(frozen=True)
class Chart:
    """One chart. Series are told apart by marker shape, dash pattern or hatching as well as by
    colour (dashboard.js), every point carries its value as a label, and `table()` gives the
    numbers for the <details> under the chart."""

    chart_id: str
    kind: ChartKind
    title: str
    x_title: str
    y_title: str
    labels: list[str]
    series: list[Series]
    value_format: ValueFormat = "int"
    # Where a click on a bar or point goes (the tickets behind it): links[series][label], or None.
    links: list[list[str | None]] | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "xTitle": self.x_title,
            "yTitle": self.y_title,
            "labels": self.labels,
            "series": [{"label": s.label, "values": s.values} for s in self.series],
            "format": self.value_format,
            "links": self.links,
        }

    def table(self) -> Table:
        rows = [
            [label, *(format_value(s.values[n], self.value_format) for s in self.series)]
            for n, label in enumerate(self.labels)
        ]
        # The first series' links on the row labels: the click-through without a mouse.
        links = self.links[0] if self.links else None
        return Table(columns=[self.x_title, *(s.label for s in self.series)], rows=rows, row_links=links)

    @property
    def is_empty(self) -> bool:
        return not any(v for s in self.series for v in s.values)


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]
    row_links: list[str | None] | None = None


def format_value(value: float | None, fmt: ValueFormat) -> str:
    if value is None:
        return "–"
    if fmt == "pct":
        return f"{value * 100:.1f} %"
    if fmt == "dec1":
        return f"{value:,.1f}"
    return f"{round(value):,}"


@dataclass(frozen=True)
class Sparkline:
    """A 12-week volume line as SVG coordinates, with a marker on the latest week."""

    points: str
    last_x: float
    last_y: float
    peak: int
    label: str  # read by screen readers and shown as the SVG <title>
    width: int
    height: int


def sparkline(weeks: Sequence[date], volumes: Sequence[int], *, width: int = 120, height: int = 28) -> Sparkline:
    pad = 3.0
    peak = max(volumes, default=0)
    step = (width - 2 * pad) / max(len(volumes) - 1, 1)
    coords = [
        (pad + n * step, height - pad - (v / peak if peak else 0) * (height - 2 * pad)) for n, v in enumerate(volumes)
    ]
    text = ", ".join(f"{w:%b %d}: {v}" for w, v in zip(weeks, volumes, strict=True))
    last_x, last_y = coords[-1] if coords else (pad, height - pad)
    return Sparkline(
        points=" ".join(f"{x:.1f},{y:.1f}" for x, y in coords),
        last_x=round(last_x, 1),
        last_y=round(last_y, 1),
        peak=peak,
        label=f"Items per week, {len(volumes)} weeks: {text}",
        width=width,
        height=height,
    )


def week_label(monday: date) -> str:
    """Week labels on axes and in tables: the Monday's date, as the report API writes weeks."""
    return monday.isoformat()


def pick_duration_unit(seconds: Sequence[float | None]) -> tuple[str, float]:
    """One unit for a whole chart, chosen by its largest value, so the axis reads in plain numbers."""
    largest = max((s for s in seconds if s is not None), default=0.0)
    if largest >= 3 * 86_400:
        return "days", 86_400.0
    if largest >= 2 * 3_600:
        return "hours", 3_600.0
    return "minutes", 60.0
