"""Spike and emerging: the trend rules of docs/metrics.md, shared by the reports, the dashboard
and the theme lifecycle (a theme's `emerging` status uses the same age and size)."""

from __future__ import annotations

from datetime import timedelta

from scipy.special import pdtrc

TRAILING_WEEKS = 8
"""Weeks before the current one that a spike is judged against."""
SPIKE_P_VALUE = 0.01
"""A week is a spike when its volume is this improbable under Poisson(trailing mean)..."""
SPIKE_MIN_EXCESS = 5
"""...and at least this many items above the trailing mean."""
EMERGING_MAX_AGE = timedelta(days=14)
"""A theme is emerging while its first item is younger than this..."""
EMERGING_MIN_ITEMS = 5
"""...and it has at least this many items."""


def poisson_upper_tail(volume: int, rate: float) -> float:
    """P(X >= volume) for X ~ Poisson(rate).

    Args:
        volume: the observed count.
        rate: the expected count (the trailing mean).

    Returns:
        The upper-tail probability, 1.0 for a volume of 0 and 0.0 for a positive volume at rate 0.
    """
    if volume <= 0:
        return 1.0
    if rate <= 0:
        return 0.0
    return float(pdtrc(volume - 1, rate))


def is_spike(volume: int, trailing_mean: float) -> bool:
    """Whether a week's volume is a spike against the mean of the trailing weeks."""
    return volume >= trailing_mean + SPIKE_MIN_EXCESS and poisson_upper_tail(volume, trailing_mean) < SPIKE_P_VALUE
