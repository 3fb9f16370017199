"""Clustering on synthetic blobs: well-separated Gaussian clusters on the unit sphere.

numba compiles UMAP/NN-descent/HDBSCAN on first use (20-40 s); the module fixture pays that
once through ``warm_up`` and the clustered blobs are shared by the tests that only read them.
"""

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.metrics import adjusted_rand_score

from clustering.cluster import (
    ClusterParams,
    _rehome_small,
    add_small_themes,
    assign_to_nearest,
    centroids,
    cluster_map,
    cluster_vectors,
    merge_near_duplicates,
    representatives,
    warm_up,
)

DIM = 64
N_BLOBS = 6
PER_BLOB = 80

Vectors = npt.NDArray[np.float32]


def blobs(
    seed: int, n_blobs: int = N_BLOBS, per_blob: int = PER_BLOB, spread: float = 0.08
) -> tuple[Vectors, npt.NDArray[np.int64]]:
    """Points around random unit directions (cosine to their centre about 0.8)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_blobs, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.repeat(np.arange(n_blobs), per_blob)
    points = centres[truth] + spread * rng.normal(size=(len(truth), DIM))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32), truth


def assert_last_items_are_a_theme_of_their_own(
    labels: npt.NDArray[np.int64], truth: npt.NDArray[np.int64], k: int, share: float = 0.9
) -> None:
    """The last ``k`` items share a theme (``share`` of them at least) that no other item is in,
    and the other items are clustered as ``truth`` says."""
    own = labels[-k:]
    assert own[0] >= 0 and (own == own[0]).mean() >= share
    assert not np.isin(own[0], labels[:-k])
    assert adjusted_rand_score(truth, labels[:-k]) > 0.98


@pytest.fixture(scope="module")
def clustered() -> tuple[Vectors, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    warm_up()
    points, truth = blobs(seed=1)
    return points, truth, cluster_vectors(points, seed=7)


@pytest.mark.slow
def test_cluster_vectors_finds_the_blobs(
    clustered: tuple[Vectors, npt.NDArray[np.int64], npt.NDArray[np.int64]],
) -> None:
    _, truth, labels = clustered
    assert len(set(labels[labels >= 0])) == N_BLOBS
    assert (labels < 0).mean() <= 0.02
    assert adjusted_rand_score(truth, labels) > 0.98


@pytest.mark.slow
def test_labels_are_numbered_by_decreasing_size(
    clustered: tuple[Vectors, npt.NDArray[np.int64], npt.NDArray[np.int64]],
) -> None:
    _, _, labels = clustered
    sizes = np.bincount(labels[labels >= 0])
    assert list(sizes) == sorted(sizes, reverse=True)


@pytest.mark.slow
def test_same_input_twice_gives_identical_labels(
    clustered: tuple[Vectors, npt.NDArray[np.int64], npt.NDArray[np.int64]],
) -> None:
    points, _, labels = clustered
    np.testing.assert_array_equal(cluster_vectors(points, seed=7), labels)


@pytest.mark.slow
def test_unrelated_points_stay_unassigned(
    clustered: tuple[Vectors, npt.NDArray[np.int64], npt.NDArray[np.int64]],
) -> None:
    points, truth, _ = clustered
    rng = np.random.default_rng(3)
    junk = rng.normal(size=(12, DIM)).astype(np.float32)
    labels = cluster_vectors(np.vstack([points, junk]), seed=7)
    assert (labels[-12:] == -1).all()
    assert adjusted_rand_score(truth, labels[:-12]) > 0.98


@pytest.mark.slow
def test_large_input_fits_a_sample_and_assigns_the_rest(
    clustered: tuple[Vectors, npt.NDArray[np.int64], npt.NDArray[np.int64]],
) -> None:
    points, truth, _ = clustered
    labels = cluster_vectors(points, seed=7, params=ClusterParams(sample_threshold=300))
    assert (labels >= 0).all()
    assert adjusted_rand_score(truth, labels) > 0.98


@pytest.mark.slow
def test_a_small_distinct_issue_is_a_theme_below_the_coarse_size(
    clustered: tuple[Vectors, npt.NDArray[np.int64], npt.NDArray[np.int64]],
) -> None:
    points, truth, _ = clustered
    rare, _ = blobs(seed=9, n_blobs=1, per_blob=14)
    # The coarse cut needs 10 % of the items (50): the 14-item blob is noise to it.
    params = ClusterParams(area_share=0.1)
    assert params.area_size(len(points) + 14) == 49
    labels = cluster_vectors(np.vstack([points, rare]), seed=7, params=params)
    assert_last_items_are_a_theme_of_their_own(labels, truth, 14)


def one_issue_in_two_phrasings(seed: int, per_phrasing: int = 15) -> Vectors:
    """Two tight clumps of ``per_phrasing`` points, off one direction to either side: one issue
    that customers word in two ways (the clumps' centres have a cosine of about 0.8)."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=DIM)
    centre /= np.linalg.norm(centre)
    clumps = []
    for _ in range(2):
        side = rng.normal(size=DIM)
        side -= side @ centre * centre
        side /= np.linalg.norm(side)
        clumps.append(centre + 0.5 * side + 0.05 * rng.normal(size=(per_phrasing, DIM)))
    points = np.vstack(clumps)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.slow
def test_in_a_small_set_one_issue_worded_two_ways_is_one_theme() -> None:
    # 270 items: the coarse cut is at its floor of twice the smallest theme. With one cut at the
    # smallest theme size (before 2026-12-08) each wording was a theme of its own.
    warm_up()
    points, truth = blobs(seed=0, n_blobs=6, per_blob=40)
    labels = cluster_vectors(np.vstack([points, one_issue_in_two_phrasings(100)]), seed=7)
    assert_last_items_are_a_theme_of_their_own(labels, truth, 30, share=1.0)


@pytest.mark.slow
def test_in_a_small_set_a_distinct_issue_of_a_dozen_items_is_a_theme() -> None:
    warm_up()
    points, truth = blobs(seed=0, n_blobs=6, per_blob=40)
    rare, _ = blobs(seed=9, n_blobs=1, per_blob=12)
    labels = cluster_vectors(np.vstack([points, rare]), seed=7)
    assert_last_items_are_a_theme_of_their_own(labels, truth, 12)


@pytest.mark.slow
def test_the_map_holds_areas_that_each_leaf_lies_within(
    clustered: tuple[Vectors, npt.NDArray[np.int64], npt.NDArray[np.int64]],
) -> None:
    points, _, labels = clustered
    result = cluster_map(points, seed=7)
    np.testing.assert_array_equal(result.labels, labels)
    assert result.areas.shape == labels.shape and result.areas.dtype == np.int64
    assert (result.areas >= 0).mean() > 0.5
    for leaf in np.unique(labels[labels >= 0]):
        inside = result.areas[labels == leaf]
        assert (inside == np.bincount(inside[inside >= 0]).argmax()).mean() >= 0.9


@pytest.mark.slow
def test_areas_cover_only_the_fitted_sample_of_a_large_input(
    clustered: tuple[Vectors, npt.NDArray[np.int64], npt.NDArray[np.int64]],
) -> None:
    points, _, _ = clustered
    result = cluster_map(points, seed=7, params=ClusterParams(sample_threshold=300))
    assert (result.labels >= 0).all()
    assert (result.areas >= 0).sum() <= 300 and (result.areas == -1).sum() >= len(points) - 300


@pytest.mark.parametrize("n", [0, 1, 5, 9])
def test_too_few_items_are_all_unassigned(n: int) -> None:
    points, _ = blobs(seed=2, n_blobs=1, per_blob=max(n, 1))
    labels = cluster_vectors(points[:n])
    assert labels.shape == (n,) and labels.dtype == np.int64
    assert (labels == -1).all()


def test_identical_vectors_are_one_theme() -> None:
    point, _ = blobs(seed=5, n_blobs=1, per_blob=1)
    np.testing.assert_array_equal(cluster_vectors(np.repeat(point, 40, axis=0)), np.zeros(40))
    np.testing.assert_array_equal(cluster_vectors(np.zeros((25, DIM), dtype=np.float32)), np.zeros(25))


def test_a_few_repeated_texts_make_a_theme_each_when_large_enough() -> None:
    points, _ = blobs(seed=6, n_blobs=3, per_blob=1)
    vectors = np.repeat(points, [30, 12, 4], axis=0)
    expected = np.repeat([0, 1, -1], [30, 12, 4])
    np.testing.assert_array_equal(cluster_vectors(vectors), expected)


def test_small_themes_come_from_the_coarse_noise_only() -> None:
    coarse = np.array([0, 0, 0, 0, -1, -1, -1, -1, 1, 1, -1, 1])
    fine = np.array([3, 3, 3, 3, 5, 5, 5, 5, 7, 7, 7, -1])
    labels = add_small_themes(coarse, fine)
    # fine 5 is all noise: a new theme; fine 7 is mostly coarse theme 1: no new theme.
    assert labels.tolist() == [0, 0, 0, 0, 2, 2, 2, 2, 1, 1, -1, 1]
    assert add_small_themes(np.full(3, -1), np.array([0, 0, -1])).tolist() == [0, 0, -1]


def test_a_fine_cluster_unlike_the_rest_of_its_coarse_cluster_becomes_a_theme() -> None:
    points, _ = blobs(seed=8, n_blobs=3, per_blob=20)
    # Coarse theme 0 swallowed blobs 0 and 1 (unrelated directions); blob 2 is theme 1.
    coarse = np.repeat([0, 0, 1], 20)
    coarse[-1] = -1
    fine = np.repeat([4, 6, 8], 20)  # the fine cut keeps all three apart
    labels = add_small_themes(coarse, fine, vectors=points, max_similarity=0.5)
    assert len(set(labels[:20].tolist())) == 1 and len(set(labels[20:40].tolist())) == 1
    assert labels[0] != labels[20] and labels[0] >= 0 and labels[20] >= 0
    # Fine 8 is (all of) theme 1: nothing changes; its noise item is left to the re-homing.
    assert labels[40:].tolist() == [1] * 19 + [-1]
    # A piece as similar to the rest as the floor allows stays in its theme.
    kept = add_small_themes(coarse, fine, vectors=points, max_similarity=-1.0)
    assert kept[:40].tolist() == [0] * 40


def test_merge_joins_near_duplicate_clusters_only() -> None:
    points, truth = blobs(seed=4, n_blobs=3, per_blob=40, spread=0.1)
    # Cut blob 0 in two: its halves have near-identical centroids.
    labels = truth.copy()
    labels[:20] = 5
    labels[-3:] = -1
    merged = merge_near_duplicates(points, labels, min_similarity=0.9)
    assert merged[0] == merged[25]
    assert len(set(merged[merged >= 0])) == 3
    assert (merged[-3:] == -1).all()
    kept_apart = merge_near_duplicates(points, labels, min_similarity=0.995)
    assert len(set(kept_apart[kept_apart >= 0])) == 4


def test_a_cluster_left_below_the_smallest_theme_size_is_dissolved() -> None:
    points, truth = blobs(seed=5, n_blobs=3, per_blob=40)
    labels = truth.copy()
    labels[:3] = 7  # three items of blob 0 left as a cluster of their own by the repairs
    labels[40:44] = 8  # four items of blob 1, but given an unrelated centre below
    points[40:44] = -points[100]  # opposite to blob 2's items: no theme admits them
    rehomed = _rehome_small(points, labels, ClusterParams(min_cluster_size=10))
    assert (rehomed[:3] == 0).all()  # back to the theme that admits them
    assert (rehomed[40:44] == -1).all()  # nothing admits them: unassigned
    assert np.array_equal(rehomed[44:], truth[44:])  # the other themes are untouched
    sizes = np.bincount(rehomed[rehomed >= 0])
    assert sizes[sizes > 0].min() >= 10


def test_assign_to_nearest_respects_the_floor() -> None:
    centres = np.eye(3, dtype=np.float32)
    vectors = np.array([[2.0, 0.1, 0.0], [0.0, 0.0, 5.0], [1.0, 1.0, 1.0]], dtype=np.float32)
    assert assign_to_nearest(vectors, centres, 0.9).tolist() == [0, 2, -1]
    labelled = assign_to_nearest(vectors, centres, 0.5, label_ids=np.array([10, 20, 30]))
    assert labelled.tolist() == [10, 30, 10]  # a tie goes to the lower row


def test_centroids_are_normalised_member_means() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, -1.0]], dtype=np.float32)
    ids, centres = centroids(vectors, np.array([4, 4, 9, -1]))
    assert ids.tolist() == [4, 9]
    np.testing.assert_allclose(centres, [[0.5**0.5, 0.5**0.5], [1.0, 0.0]], rtol=1e-6)


def test_representatives_are_the_members_closest_to_the_centre() -> None:
    vectors = np.array(
        [[1.0, 0.0], [0.9, 0.44], [0.9, -0.44], [0.5, 0.87], [0.0, 1.0], [-1.0, 0.0]],
        dtype=np.float32,
    )
    labels = np.array([0, 0, 0, 0, 1, -1])
    reps = representatives(vectors, labels, k=2)
    assert reps[0][0] in (0, 1)
    assert 3 not in reps[0]
    assert reps[1] == [4]
    assert -1 not in reps
