"""Parent themes over leaf themes, on synthetic leaves: two areas of three leaves, one loner.

With density areas given (``ClusterMap.areas``), a leaf goes under the area that holds most of its
items, whatever its centroid says; without them, the leaf centroids are agglomerated."""

import numpy as np
import numpy.typing as npt

from clustering.tree import parent_groups

DIM = 32


def areas(seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Leaves 0-2 around area A, 3-5 around area B, 6 alone; ``(vectors, leaf, area)``."""
    rng = np.random.default_rng(seed)
    area_dirs = np.linalg.qr(rng.normal(size=(DIM, 3)))[0].T  # three orthogonal unit directions
    leaf_area = np.array([0, 0, 0, 1, 1, 1, 2])
    # A leaf is its area's direction plus its own offset: leaf centroids in one area ~0.7 cosine.
    leaf_dirs = area_dirs[leaf_area] + 0.6 * rng.normal(size=(7, DIM)) / np.sqrt(DIM)
    sizes = [40, 30, 20, 35, 25, 15, 12]
    leaf = np.repeat(np.arange(7), sizes)
    points = leaf_dirs[leaf] + 0.05 * rng.normal(size=(len(leaf), DIM))
    leaf[-3:] = -1  # a few unassigned items
    return points.astype(np.float32), leaf, leaf_area


def test_leaves_of_one_area_share_a_parent() -> None:
    vectors, leaf, leaf_area = areas(seed=1)
    groups = parent_groups(vectors, leaf)
    assert sorted(groups) == list(range(7))
    # Parents are numbered by total size: area A (90) > area B (75) > the loner.
    assert [groups[i] for i in range(7)] == leaf_area.tolist()


def test_parents_are_deterministic_and_ignore_unassigned_items() -> None:
    vectors, leaf, _ = areas(seed=2)
    first = parent_groups(vectors, leaf, seed=1)
    assert first == parent_groups(vectors, leaf, seed=2)
    assert -1 not in first


def test_a_stricter_similarity_gives_more_parents() -> None:
    vectors, leaf, _ = areas(seed=3)
    loose = set(parent_groups(vectors, leaf, min_similarity=0.3).values())
    strict = set(parent_groups(vectors, leaf, min_similarity=0.99).values())
    assert len(strict) == 7 > len(loose)


def test_no_leaves_or_one_leaf() -> None:
    vectors = np.eye(3, dtype=np.float32)
    assert parent_groups(vectors, np.array([-1, -1, -1])) == {}
    assert parent_groups(vectors, np.array([4, 4, -1])) == {4: 0}
    assert parent_groups(np.zeros((0, 3), dtype=np.float32), np.zeros(0, dtype=np.int64)) == {}


def test_a_leaf_goes_under_the_area_that_holds_most_of_its_items() -> None:
    vectors, leaf, _ = areas(seed=4)
    # The density cut put leaves 0 and 3 in one area, and leaves 1, 2, 4 and 5 in another, which
    # the leaf centroids alone would not; leaf 3 has a few items in the second area too.
    area = np.select([np.isin(leaf, [0, 3]), np.isin(leaf, [1, 2, 4, 5])], [7, 9], default=-1)
    area[np.flatnonzero(leaf == 3)[:5]] = 9
    groups = parent_groups(vectors, leaf, areas=area)
    assert groups[0] == groups[3] != groups[1]
    assert groups[1] == groups[2] == groups[4] == groups[5]
    assert groups[6] not in (groups[0], groups[1])  # the loner is in no area and close to none


def test_a_leaf_outside_every_area_joins_the_closest_if_close_enough() -> None:
    vectors, leaf, leaf_area = areas(seed=5)
    area = np.where(leaf_area[np.maximum(leaf, 0)] == 0, 0, 1)
    area[(leaf == 2) | (leaf == 6) | (leaf < 0)] = -1  # leaf 2 (of area A) and the loner: in no area
    groups = parent_groups(vectors, leaf, areas=area)
    assert groups[2] == groups[0] == groups[1]  # by its centroid, leaf 2 belongs with area A
    assert groups[6] not in (groups[0], groups[3])
    assert len(set(groups.values())) == 3


def test_no_area_at_all_falls_back_to_the_agglomeration() -> None:
    vectors, leaf, _ = areas(seed=6)
    assert parent_groups(vectors, leaf, areas=np.full(leaf.shape, -1)) == parent_groups(vectors, leaf)
