"""Incident detection (clustering/incidents.py): spikes daily and weekly, weekday-aware; emerging;
parents; one incident per event; over-represented segments."""

from __future__ import annotations

import numpy as np

from clustering.incidents import (
    Event,
    OpenIncident,
    Series,
    Thresholds,
    detect,
    merge,
    over_represented,
    poisson_tail,
    roll_up,
)

DAYS = 70
TODAY = DAYS - 1  # day 0 is a Monday, so TODAY (69) is a Sunday
STRICT = Thresholds(p_value=1e-4)


def flat(rate: int, days: int = DAYS) -> np.ndarray:
    return np.full(days, rate, dtype=np.int64)


def test_poisson_tail_matches_the_definition() -> None:
    assert poisson_tail(0, 3.0) == 1.0
    assert abs(poisson_tail(1, 2.0) - (1 - np.exp(-2.0))) < 1e-12
    assert poisson_tail(20, 5.0) < 1e-5


def test_a_theme_tripled_for_three_days_is_a_daily_spike() -> None:
    counts = flat(4)
    counts[TODAY - 2 : TODAY + 1] = 12
    events = detect([Series(1, "leaf", "spike", 0, counts)], TODAY, TODAY % 7, STRICT)
    daily = [e for e in events if e.granularity == "day"]
    assert len(daily) == 1
    assert (daily[0].observed, daily[0].expected) == (7 * 4 + 3 * 8, 28.0)
    assert (daily[0].start_day, daily[0].end_day) == (TODAY - 6, TODAY)


def test_a_steady_theme_makes_no_event() -> None:
    assert detect([Series(1, "leaf", "spike", 0, flat(4))], TODAY, TODAY % 7) == []


def test_fewer_than_five_above_the_mean_is_no_spike_however_improbable() -> None:
    counts = np.zeros(DAYS, dtype=np.int64)
    counts[TODAY] = 4  # p is tiny against a zero rate, but only 4 items
    assert detect([Series(1, "leaf", "spike", 0, counts)], TODAY, TODAY % 7) == []
    counts[TODAY] = 5
    assert [e.granularity for e in detect([Series(1, "leaf", "spike", 0, counts)], TODAY, TODAY % 7)] == [
        "day",
        "week",
    ]


def test_the_weekly_check_compares_the_same_weekdays() -> None:
    """A theme busy every Monday: on a Monday the week to date is compared with past Mondays."""
    counts = flat(1)
    counts[np.arange(DAYS) % 7 == 0] = 20
    monday = 63
    assert detect([Series(1, "leaf", "spike", 0, counts[: monday + 1])], monday, 0) == []
    # the same Monday volume with the week's baseline taken over whole weeks would have been a spike
    quiet_mondays = counts.copy()
    quiet_mondays[:monday][np.arange(monday) % 7 == 0] = 1
    events = detect([Series(1, "leaf", "spike", 0, quiet_mondays[: monday + 1])], monday, 0)
    assert "week" in {e.granularity for e in events}


def test_a_young_theme_emerges_and_is_not_tested_for_spikes() -> None:
    counts = np.zeros(DAYS, dtype=np.int64)
    counts[TODAY - 3 :] = 2
    events = detect([Series(7, "leaf", "spike", TODAY - 3, counts)], TODAY, TODAY % 7)
    assert events == [Event("emerging", 7, "leaf", "new", TODAY - 3, TODAY, 8, 0.0, 0.0)]
    counts[TODAY - 3 :] = 1
    assert detect([Series(7, "leaf", "spike", TODAY - 3, counts)], TODAY, TODAY % 7) == []


def test_feature_request_themes_surge_but_do_not_emerge() -> None:
    counts = flat(2)
    counts[TODAY - 1 :] = 15
    events = detect([Series(3, "leaf", "feature_surge", 0, counts)], TODAY, TODAY % 7, STRICT)
    assert {e.kind for e in events} == {"feature_surge"}
    young = np.zeros(DAYS, dtype=np.int64)
    young[TODAY] = 9
    assert detect([Series(3, "leaf", "feature_surge", TODAY, young)], TODAY, TODAY % 7) == []


def test_parents_count_their_leaves_items() -> None:
    a, b = flat(2), flat(3)
    a[TODAY - 2 :] = 8  # a spike spread over two leaves shows at the parent
    parents = roll_up(
        [Series(1, "leaf", "spike", 0, a), Series(2, "leaf", "spike", 5, b), Series(3, "leaf", "spike", 0, flat(9))],
        {1: 10, 2: 10},
    )
    assert len(parents) == 1
    assert (parents[0].theme_id, parents[0].level, parents[0].first_day) == (10, "parent", 0)
    assert parents[0].counts.tolist() == (a + b).tolist()


def test_rolling_windows_and_the_weekly_window_of_one_surge_make_one_incident() -> None:
    day = Event("spike", 1, "leaf", "day", 60, 66, 40, 20.0, 6.0)
    week = Event("spike", 1, "leaf", "week", 63, 66, 30, 12.0, 7.0)
    first = merge([day, week], [])
    assert [(d.event.granularity, d.incident_id) for d in first] == [("week", None)]
    recorded = OpenIncident(5, "spike", 1, "leaf", 63, 66, 7.0)
    next_day = Event("spike", 1, "leaf", "day", 61, 67, 45, 20.0, 8.0)
    assert [d.incident_id for d in merge([next_day], [recorded])] == [5]
    weeks_later = Event("spike", 1, "leaf", "day", 80, 86, 45, 20.0, 8.0)
    assert [d.incident_id for d in merge([weeks_later], [recorded])] == [None]
    other_level = Event("spike", 1, "parent", "day", 61, 67, 45, 20.0, 8.0)
    assert [d.incident_id for d in merge([other_level], [recorded])] == [None]


def test_a_theme_emerges_once() -> None:
    recorded = OpenIncident(9, "emerging", 4, "leaf", 50, 52, 0.0)
    assert [d.incident_id for d in merge([Event("emerging", 4, "leaf", "new", 50, 60, 30, 0.0, 0.0)], [recorded])] == [
        9
    ]


def test_over_represented_segments_have_lift_and_enough_items() -> None:
    baseline = [{"channel": ["email"], "source": ["zendesk"], "tag": ["a"]} for _ in range(90)]
    baseline += [{"channel": ["chat"], "source": ["zendesk"], "tag": []} for _ in range(10)]
    window = [{"channel": ["chat"], "source": ["zendesk"], "tag": ["a", "b"]} for _ in range(12)]
    window += [{"channel": ["email"], "source": ["zendesk"], "tag": ["b"]} for _ in range(8)]
    found = over_represented(window, baseline)
    assert [(s.field, s.value) for s in found] == [("tag", "b"), ("channel", "chat")]
    chat = found[1]
    assert (chat.count, chat.share, chat.baseline_share) == (12, 0.6, 0.1)
    assert abs(chat.lift - 6.0) < 1e-9
    few = window[:4]  # 4 chat items: below the 5-item floor
    assert over_represented(few, baseline) == []
