import numpy as np
import numpy.typing as npt
import pytest

from clustering.hysteresis import keep_merged_apart, stick_to_previous
from clustering.matching import PreviousTheme, ThemeMatch, match_themes, stability


def unit(*values: float) -> npt.NDArray[np.float64]:
    vector = np.array(values, dtype=np.float64)
    return vector / np.linalg.norm(vector)


def theme(theme_id: int, centroid: npt.NDArray[np.float64], members: range) -> PreviousTheme:
    return PreviousTheme(theme_id=theme_id, centroid=centroid, member_ids=frozenset(members))


def run(
    previous: list[PreviousTheme],
    groups: list[range],
    centres: list[npt.NDArray[np.float64]],
    first_new_id: int = 100,
    unassigned: range = range(0),
) -> ThemeMatch:
    """Match a new clustering given as one range of item ids per cluster (label = position)."""
    item_ids = [item for group in groups for item in group] + list(unassigned)
    labels = np.array([label for label, group in enumerate(groups) for _ in group] + [-1] * len(unassigned))
    return match_themes(
        previous,
        item_ids,
        labels,
        np.arange(len(groups)),
        np.stack(centres),
        first_new_id=first_new_id,
    )


A, B, C = unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)


def test_same_themes_keep_their_ids_whatever_the_new_labels() -> None:
    previous = [theme(7, A, range(0, 10)), theme(9, B, range(10, 20))]
    match = run(previous, [range(10, 20), range(0, 10)], [B, A])
    assert match.theme_ids == {0: 9, 1: 7}
    assert match.kept == {0: 9, 1: 7}
    assert match.new_ids == []
    assert (match.merged_into, match.split_into, match.disappeared) == ({}, {}, [])


def test_a_cluster_with_new_items_only_gets_a_fresh_id() -> None:
    previous = [theme(7, A, range(0, 10))]
    match = run(previous, [range(0, 10), range(50, 60)], [A, C], first_new_id=42)
    assert match.theme_ids == {0: 7, 1: 42}
    assert match.new_ids == [42]


def test_two_themes_absorbed_by_one_cluster_is_a_merge() -> None:
    previous = [theme(7, A, range(0, 12)), theme(9, B, range(12, 20))]
    match = run(previous, [range(0, 20)], [unit(1, 0.8, 0)])
    assert match.theme_ids == {0: 7}  # the larger share keeps its id
    assert match.merged_into == {9: 7}
    assert match.disappeared == []


def test_a_theme_broken_in_two_is_a_split_and_the_largest_part_keeps_the_id() -> None:
    previous = [theme(7, A, range(0, 20))]
    match = run(previous, [range(0, 8), range(8, 20)], [unit(1, 0.2, 0), unit(1, 0, 0.2)])
    assert match.theme_ids == {1: 7, 0: 100}
    assert match.split_into == {7: [7, 100]}
    assert match.merged_into == {}


def test_a_theme_whose_items_are_gone_is_matched_by_centroid_or_disappears() -> None:
    previous = [theme(7, A, range(0, 10)), theme(9, B, range(10, 20))]
    match = run(previous, [range(30, 40)], [unit(1, 0.1, 0)])
    assert match.theme_ids == {0: 7}
    assert match.disappeared == [9]


def test_a_small_overlap_does_not_carry_an_id_over() -> None:
    previous = [theme(7, A, range(0, 20))]
    # Only 2 of the 20 old members land in an otherwise new, unrelated cluster.
    match = run(previous, [range(18, 40)], [C], unassigned=range(0, 18))
    assert match.theme_ids == {0: 100}
    assert match.disappeared == [7]


def test_matching_is_deterministic_on_ties() -> None:
    previous = [theme(9, A, range(0, 10)), theme(7, A, range(10, 20))]
    first = run(previous, [range(0, 20)], [A])
    assert first == run(previous, [range(0, 20)], [A])
    assert first.theme_ids == {0: 7}  # equal overlap and cosine: the lower id wins
    assert first.merged_into == {9: 7}


def test_stability_counts_kept_ids_and_compares_partitions() -> None:
    before = {1: 10, 2: 10, 3: 20, 4: 20, 5: None, 6: 30}
    after = {1: 10, 2: 10, 3: 20, 4: 21, 5: 20, 7: 20}  # 6 is gone, 7 is new
    kept_share, ari = stability(before, after)
    assert kept_share == pytest.approx(3 / 4)  # items 1, 2, 3 of 1, 2, 3, 4
    assert 0.0 < ari < 1.0
    assert stability(before, before) == (1.0, 1.0)


def test_renamed_themes_keep_no_ids_but_the_same_partition() -> None:
    before = {1: 10, 2: 10, 3: 20, 4: 20}
    after = {1: 20, 2: 20, 3: 10, 4: 10}
    assert stability(before, after) == (0.0, 1.0)


def test_stability_with_nothing_in_common_is_trivially_stable() -> None:
    assert stability({1: 5}, {2: 5}) == (1.0, 1.0)


def test_boundary_items_stick_to_their_previous_theme() -> None:
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.55, 0.45], [0.0, 1.0], [0.1, 0.9], [0.6, 0.4]])
    # Item 2 moved to theme 9's cluster although it is nearly as close to theme 7's (cosine
    # 0.80 against 0.85); item 5 fell out of every cluster but is close to theme 7's centroid.
    labels = np.array([0, 0, 1, 1, 1, -1])
    previous = [theme(7, A, range(0, 3)), theme(9, B, range(3, 5))]
    match = run(previous, [range(0, 2), range(2, 5)], [A, B])
    before: list[int | None] = [7, 7, 7, 9, 9, 7]
    stuck = stick_to_previous(vectors, labels, before, match, margin=0.1)
    assert stuck.tolist() == [0, 0, 0, 1, 1, 0]
    strict = stick_to_previous(vectors, labels, before, match, margin=0.0, min_similarity=0.99)
    assert strict.tolist() == [0, 0, 1, 1, 1, -1]


def blob(centre: npt.NDArray[np.float64], n: int, seed: int, spread: float = 0.05) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    points = centre + spread * rng.standard_normal((n, centre.size))
    result: npt.NDArray[np.float64] = points / np.linalg.norm(points, axis=1, keepdims=True)
    return result


def swallowed(b_centre: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], list[int | None], ThemeMatch]:
    """Theme 7 (items 0-39) and theme 9 (40-59, around ``b_centre``) before; 20 new items
    (60-79, half near each) arrive and the new run puts all 80 in one cluster."""
    a_centre = unit(1, 0, 0, 0)
    vectors = np.vstack(
        [blob(a_centre, 40, seed=1), blob(b_centre, 20, seed=2), blob(a_centre, 10, seed=3), blob(b_centre, 10, seed=4)]
    )
    previous = [theme(7, a_centre, range(0, 40)), theme(9, b_centre, range(40, 60))]
    match = run(previous, [range(0, 80)], [unit(1, 0.4, 0, 0)])
    assert match.merged_into == {9: 7}
    before: list[int | None] = [7] * 40 + [9] * 20 + [None] * 20
    return vectors, before, match


def test_a_distinct_theme_swallowed_by_a_grown_cluster_keeps_its_id() -> None:
    vectors, before, match = swallowed(unit(1, 1, 0, 0))  # cosine 0.71 to theme 7: distinct
    labels, kept_apart = keep_merged_apart(vectors, np.zeros(80, dtype=np.int64), before, match)
    assert labels.tolist() == [0] * 40 + [1] * 20 + [0] * 10 + [1] * 10  # new items by nearest part
    assert kept_apart.theme_ids == {0: 7, 1: 9}
    assert kept_apart.kept == {0: 7, 1: 9}
    assert kept_apart.merged_into == {}
    again = keep_merged_apart(vectors, np.zeros(80, dtype=np.int64), before, match)
    assert again[0].tolist() == labels.tolist() and again[1] == kept_apart


def test_a_near_duplicate_or_broken_up_theme_stays_merged() -> None:
    vectors, before, match = swallowed(unit(1, 0.1, 0, 0))  # cosine 0.995: the same issue
    labels, same = keep_merged_apart(vectors, np.zeros(80, dtype=np.int64), before, match)
    assert labels.tolist() == [0] * 80 and same == match
    # Theme 9 was distinct, but only 5 of its 20 items are in the cluster: it broke up.
    vectors, before, match = swallowed(unit(1, 1, 0, 0))
    scattered = np.array([0] * 45 + [-1] * 15 + [0] * 20)
    labels, same = keep_merged_apart(vectors, scattered, before, match)
    assert labels.tolist() == scattered.tolist() and same == match
