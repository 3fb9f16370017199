"""Incident detection, pure: daily theme counts in, events out (spec/metrics.md "Incidents").

Days are integer indices (day 0 is the first day of the arrays); the caller maps them to dates.
Three kinds of event:

- **spike** (and **feature_surge**, the same test on feature-request themes): checked daily over
  the trailing 7-day window against the 8 windows of 7 days before it, and weekly over the week to
  date against the same weekdays of the 8 weeks before. Both baselines are whole weeks or the same
  weekdays, so a theme busy on Mondays is not a Monday spike. A spike has a Poisson upper tail
  below `p_value` with the baseline mean as rate, and at least `min_excess` items above the mean.
- **emerging**: a theme whose first item is less than 14 days old and that has at least 5 items.

One event makes one incident: `merge` matches a new event to an incident of the same kind, theme
and level whose window overlaps or touches it, so the rolling daily windows and the weekly window
of one surge are one incident that later checks update.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import poisson

SEGMENT_FIELDS = ("source", "channel", "priority", "product", "tag", "language")


@dataclass(frozen=True)
class Thresholds:
    """Detection knobs.

    Args:
        p_value: Poisson upper-tail probability below which a window is a spike. metrics.md says
            0.01 for a report's weekly spike; alerts check every theme daily and weekly at two
            levels, so the bench (bench/alerts.py) measures what this costs in false incidents.
        min_excess: Items above the baseline mean a spike needs (metrics.md: 5).
        baseline_weeks: Trailing weeks the baseline mean is taken over (8).
        min_baseline_weeks: A theme younger than this many weeks before the window is not tested
            for spikes (its baseline is not a baseline); young themes are what `emerging` is for.
        emerging_days: A theme whose first item is younger than this is emerging (14).
        emerging_min_items: ...once it holds this many items (5).
    """

    p_value: float = 0.01
    min_excess: float = 5.0
    baseline_weeks: int = 8
    min_baseline_weeks: int = 2
    emerging_days: int = 14
    emerging_min_items: int = 5


@dataclass(frozen=True)
class Series:
    """One theme's daily item counts.

    Args:
        theme_id: The theme (leaf or parent).
        level: "leaf" or "parent".
        kind: What a spike on this series is called: "spike", or "feature_surge" for themes
            computed over feature requests (those have no "emerging" events).
        first_day: Day index of the theme's first item; negative when before day 0.
        counts: Items per day, shape (n_days,), day 0 first.
    """

    theme_id: int
    level: str
    kind: str
    first_day: int
    counts: NDArray[np.int64]


@dataclass(frozen=True)
class Event:
    """A detected event. Days are inclusive indices; `score` is -log10 of the tail probability."""

    kind: str
    theme_id: int
    level: str
    granularity: str  # "day" (trailing 7 days), "week" (week to date) or "new" (emerging)
    start_day: int
    end_day: int
    observed: int
    expected: float
    score: float


def poisson_tail(observed: int, expected: float) -> float:
    """P(X >= observed) for X ~ Poisson(expected); a zero rate is floored at 0.1 items."""
    return float(poisson.sf(observed - 1, max(expected, 0.1)))


def _score(p: float) -> float:
    return -math.log10(max(p, 1e-300))


def _spike(
    series: Series, start: int, end: int, baselines: list[tuple[int, int]], th: Thresholds, granularity: str
) -> Event | None:
    usable = [(s, e) for s, e in baselines if s >= max(series.first_day, 0)]
    if len(usable) < th.min_baseline_weeks:
        return None
    observed = int(series.counts[start : end + 1].sum())
    expected = float(np.mean([series.counts[s : e + 1].sum() for s, e in usable]))
    if observed - expected < th.min_excess:
        return None
    p = poisson_tail(observed, expected)
    if p >= th.p_value:
        return None
    return Event(series.kind, series.theme_id, series.level, granularity, start, end, observed, expected, _score(p))


def detect(series: Iterable[Series], day: int, weekday: int, th: Thresholds = Thresholds()) -> list[Event]:
    """Events as of `day` (the day being checked, usually today; its counts may be partial).

    Args:
        series: Themes to check, leaf and parent (see `roll_up`), each with counts covering at
            least `day` and the 8 weeks plus 7 days before it.
        day: Index of the day being checked.
        weekday: Its weekday, Monday = 0; the weekly check covers Monday..day.
        th: Thresholds.

    Returns:
        At most one event per theme, level and granularity.
    """
    events = []
    for s in series:
        if s.kind == "spike" and day - s.first_day < th.emerging_days:
            total = int(s.counts[max(s.first_day, 0) : day + 1].sum())
            if total >= th.emerging_min_items:
                events.append(Event("emerging", s.theme_id, s.level, "new", s.first_day, day, total, 0.0, 0.0))
            continue
        weeks = range(1, th.baseline_weeks + 1)
        daily = _spike(s, day - 6, day, [(day - 6 - 7 * k, day - 7 * k) for k in weeks], th, "day")
        start = day - weekday
        weekly = _spike(s, start, day, [(start - 7 * k, day - 7 * k) for k in weeks], th, "week")
        events.extend(e for e in (daily, weekly) if e is not None)
    return events


def roll_up(leaves: Sequence[Series], parent_of: Mapping[int, int]) -> list[Series]:
    """Parent series: the item counts of each parent's leaves added day by day (integer counts,
    so this is the count over the parent's items), first day the earliest of its leaves'."""
    grouped: dict[tuple[int, str], list[Series]] = {}
    for leaf in leaves:
        parent = parent_of.get(leaf.theme_id)
        if parent is not None:
            grouped.setdefault((parent, leaf.kind), []).append(leaf)
    return [
        Series(
            theme_id=parent,
            level="parent",
            kind=kind,
            first_day=min(c.first_day for c in children),
            counts=np.sum([c.counts for c in children], axis=0),
        )
        for (parent, kind), children in sorted(grouped.items())
    ]


@dataclass(frozen=True)
class OpenIncident:
    """What `merge` needs of an incident already recorded."""

    incident_id: int
    kind: str
    theme_id: int
    level: str
    start_day: int
    end_day: int
    score: float


@dataclass(frozen=True)
class Decision:
    """Record `event`: as a new incident when `incident_id` is None, else as an update of it."""

    event: Event
    incident_id: int | None


def merge(events: Iterable[Event], incidents: Iterable[OpenIncident]) -> list[Decision]:
    """One decision per event (kind, theme, level): the strongest of today's windows, matched to a
    recorded incident whose window overlaps or touches it. An emerging theme matches any earlier
    emerging incident of the theme (a theme emerges once)."""
    strongest: dict[tuple[str, int, str], Event] = {}
    for e in events:
        key = (e.kind, e.theme_id, e.level)
        if key not in strongest or e.score > strongest[key].score:
            strongest[key] = e
    known: dict[tuple[str, int, str], list[OpenIncident]] = {}
    for i in incidents:
        known.setdefault((i.kind, i.theme_id, i.level), []).append(i)
    decisions = []
    for key, e in sorted(strongest.items()):
        match = next(
            (
                i
                for i in sorted(known.get(key, []), key=lambda i: -i.end_day)
                if e.kind == "emerging" or (i.start_day <= e.end_day and e.start_day <= i.end_day + 1)
            ),
            None,
        )
        decisions.append(Decision(e, match.incident_id if match else None))
    return decisions


@dataclass(frozen=True)
class SegmentLift:
    field: str
    value: str
    count: int
    share: float
    baseline_share: float
    lift: float


def over_represented(
    window: Sequence[Mapping[str, Sequence[str]]],
    baseline: Sequence[Mapping[str, Sequence[str]]],
    *,
    min_count: int = 5,
    min_lift: float = 2.0,
) -> list[SegmentLift]:
    """Segment values at least `min_lift` times as common inside the incident as in the theme's
    trailing weeks, held by at least `min_count` incident items; highest lift first.

    Args:
        window: One mapping per incident item, field name to its values (one for `source`, any
            number for `tag`; empty when unknown).
        baseline: The same for the theme's items of the trailing 8 weeks before the window.
        min_count: Items a segment needs inside the incident (metrics.md: 5).
        min_lift: Share inside / share in the baseline (metrics.md: 2).

    Returns:
        Segments with their share, baseline share and lift. A value absent from the baseline has
        its baseline share taken as half an item, so its lift is large but finite.
    """
    if not window:
        return []
    inside = _value_counts(window)
    before = _value_counts(baseline)
    n_in, n_base = len(window), max(len(baseline), 1)
    found = []
    for (field, value), count in inside.items():
        if count < min_count:
            continue
        share = count / n_in
        base_share = max(before.get((field, value), 0), 0.5) / n_base
        lift = share / base_share
        if lift >= min_lift:
            found.append(SegmentLift(field, value, count, share, before.get((field, value), 0) / n_base, lift))
    return sorted(found, key=lambda s: (-s.lift, -s.count, s.field, s.value))


def _value_counts(rows: Sequence[Mapping[str, Sequence[str]]]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for row in rows:
        for field in SEGMENT_FIELDS:
            for value in set(row.get(field, ())):
                counts[(field, value)] += 1
    return counts
