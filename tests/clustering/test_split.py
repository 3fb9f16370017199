"""Sub-clustering one theme: spherical k-means on synthetic blobs, k chosen by silhouette."""

from __future__ import annotations

import numpy as np
import pytest

from clustering.split import cosine_silhouette, nearest_group, propose_split, spherical_kmeans

DIM = 32


def blobs(sizes: list[int], seed: int = 0, spread: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(sizes), DIM))
    points = np.concatenate([c + spread * rng.standard_normal((n, DIM)) for c, n in zip(centres, sizes, strict=True)])
    truth = np.repeat(np.arange(len(sizes)), sizes)
    return points.astype(np.float32), truth


def test_k_by_silhouette_finds_the_planted_groups_largest_first_with_labels_from_their_texts() -> None:
    vectors, truth = blobs([40, 25, 15])
    words = np.array(["refund", "login", "delivery"])[truth]
    texts = [f"{w} problem again with my {w}" for w in words]
    proposal = propose_split(vectors, texts)
    assert [len(g.rows) for g in proposal.groups] == [40, 25, 15]
    for group, word in zip(proposal.groups, ["refund", "login", "delivery"], strict=True):
        assert set(truth[group.rows]) == {["refund", "login", "delivery"].index(word)}
        assert word in group.label.lower() and len(group.examples) == 5 and set(group.examples) <= set(group.rows)
        assert np.isclose(np.linalg.norm(group.centroid), 1.0, atol=1e-5)
    assert proposal.silhouette > 0.5
    again = propose_split(vectors, texts)  # deterministic for the same input
    assert [g.rows for g in again.groups] == [g.rows for g in proposal.groups]


def test_a_given_k_is_used_and_bad_inputs_are_refused() -> None:
    vectors, truth = blobs([20, 20])
    texts = ["card lost"] * 20 + ["card arrival"] * 20
    assert len(propose_split(vectors, texts, k=4).groups) == 4
    with pytest.raises(ValueError, match="at least 6"):
        propose_split(vectors[:5], texts[:5])
    with pytest.raises(ValueError, match="k must be"):
        propose_split(vectors, texts, k=21)
    with pytest.raises(ValueError, match="texts"):
        propose_split(vectors, texts[:-1])


def test_silhouette_prefers_the_true_partition_and_nearest_group_follows_centroids() -> None:
    vectors, truth = blobs([30, 30])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    labels, centres = spherical_kmeans(unit, 2, seed=1)
    assert len(set(zip(labels.tolist(), truth.tolist(), strict=True))) == 2  # the same partition
    shuffled = np.random.default_rng(3).permutation(truth)
    assert cosine_silhouette(unit, truth) > 0.5 > cosine_silhouette(unit, shuffled)
    assert nearest_group(vectors, centres).tolist() == labels.tolist()
    assert nearest_group(np.zeros((0, DIM), np.float32), centres).shape == (0,)
