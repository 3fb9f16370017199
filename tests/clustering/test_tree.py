"""Parent themes over leaf themes, on synthetic leaves: two areas of three leaves, one loner."""

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
