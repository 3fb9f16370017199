"""Leaf themes -> parent themes: the density areas of the leaves' map, then agglomeration.

A parent is an area ("cards") over related leaves ("card not arrived", "card declined").

1. Each leaf goes under the density area (``ClusterMap.areas``: a coarser HDBSCAN cut on the
   same UMAP map as the leaves) that holds most of its items.
2. A leaf with no item in an area joins the area whose centroid is closest to its own, if the
   cosine is at least ``min_similarity``.
3. The leaves still without an area, and every leaf when no areas are given, are joined
   bottom-up by complete linkage on the cosine distance of their centroids, cut where every two
   leaves of a group have a cosine of at least ``min_similarity``. A leaf that nothing is close
   to is a parent of its own. Complete linkage keeps a group from chaining through a leaf that
   sits between two areas.

Why areas first: on HWU64 against its 18 scenarios, agglomerating the leaf centroids alone gave
30-32 parents at NMI 0.69-0.72 and ARI 0.41-0.45; the areas gave 14-20 parents at NMI
0.71-0.73 and ARI 0.53-0.60, over two seeds and a 77 % subsample (bench/RESULTS.md, 2026-12-08).
Centroid cosines cannot tell a topic that a few leaves share from one that many leaves share;
the density of the map can.
"""

import numpy as np
from numpy.typing import NDArray
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from clustering.cluster import centroids

# Least cosine between the centroids of two leaves in one agglomerated parent, and between a leaf
# and an area it joins. For all-MiniLM-L6-v2, sentences on one topic sit above ~0.3 and unrelated
# ones near 0-0.2; the parents found are steady between 0.25 and 0.4.
PARENT_SIMILARITY = 0.3


def parent_groups(
    vectors: NDArray[np.floating],
    labels: NDArray[np.integer],
    *,
    areas: NDArray[np.integer] | None = None,
    seed: int = 42,
    min_similarity: float = PARENT_SIMILARITY,
) -> dict[int, int]:
    """Group leaf themes under parent themes.

    Args:
        vectors: Embeddings, shape ``(n, d)``.
        labels: Leaf label per item, shape ``(n,)``; ``-1`` (unassigned) is ignored.
        areas: Density area per item, shape ``(n,)``, ``-1`` for none (``ClusterMap.areas``).
            ``None`` groups by agglomeration alone.
        seed: Accepted for symmetry with :func:`clustering.cluster.cluster_vectors`; the
            grouping itself is deterministic and uses no randomness.
        min_similarity: The cosine a leaf outside every area needs to join one, and that every
            two agglomerated leaves of a parent need. Lower gives fewer, broader parents.

    Returns:
        ``{leaf label: parent label}`` for every leaf label >= 0; parents are ``0..p-1``,
        numbered by decreasing total size (ties by the lowest leaf label). A parent may hold a
        single leaf.
    """
    del seed  # deterministic by construction
    leaf_of = np.asarray(labels, dtype=np.int64)
    ids, centres = centroids(vectors, leaf_of)
    if ids.size == 0:
        return {}
    groups = np.full(ids.size, -1, dtype=np.int64)
    if areas is not None:
        groups = _majority_area(leaf_of, np.asarray(areas, dtype=np.int64), ids)
        _join_nearest_area(vectors, leaf_of, ids, centres, groups, min_similarity)
    left = np.flatnonzero(groups < 0)
    if left.size:
        groups[left] = _agglomerate(centres[left], min_similarity) + groups.max() + 1
    sizes = np.bincount(np.searchsorted(ids, leaf_of[leaf_of >= 0]), minlength=ids.size)
    _, groups = np.unique(groups, return_inverse=True)
    group_size = np.bincount(groups, weights=sizes)
    first_leaf = np.full(group_size.size, np.iinfo(np.int64).max)
    np.minimum.at(first_leaf, groups, ids)
    order = np.lexsort((first_leaf, -group_size))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return {int(leaf): int(rank[group]) for leaf, group in zip(ids.tolist(), groups.tolist(), strict=True)}


def _majority_area(labels: NDArray[np.int64], areas: NDArray[np.int64], ids: NDArray[np.int64]) -> NDArray[np.int64]:
    """The area that holds most of each leaf's items (the lowest on a tie), ``-1`` for none."""
    both = (labels >= 0) & (areas >= 0)
    result = np.full(ids.size, -1, dtype=np.int64)
    if not both.any():
        return result
    counts = np.zeros((ids.size, int(areas.max()) + 1), dtype=np.int64)
    np.add.at(counts, (np.searchsorted(ids, labels[both]), areas[both]), 1)
    has = counts.sum(axis=1) > 0
    result[has] = counts[has].argmax(axis=1)
    return result


def _join_nearest_area(
    vectors: NDArray[np.floating],
    labels: NDArray[np.int64],
    ids: NDArray[np.int64],
    centres: NDArray[np.float32],
    groups: NDArray[np.int64],
    min_similarity: float,
) -> None:
    """A leaf with no item in an area joins the closest area (by centroid) if it is close enough."""
    left = np.flatnonzero(groups < 0)
    if not left.size or (groups < 0).all():
        return
    assigned = labels >= 0
    area_rows = np.full(labels.shape, -1, dtype=np.int64)
    area_rows[assigned] = groups[np.searchsorted(ids, labels[assigned])]
    area_ids, area_centres = centroids(vectors, area_rows)
    similarity = centres[left].astype(np.float64) @ area_centres.T.astype(np.float64)
    best = similarity.argmax(axis=1)
    near = similarity[np.arange(left.size), best] >= min_similarity
    groups[left[near]] = area_ids[best[near]]


def _agglomerate(centres: NDArray[np.float32], min_similarity: float) -> NDArray[np.int64]:
    """Complete-linkage groups ``0..g-1`` of unit centroids, cut at ``min_similarity``."""
    if centres.shape[0] == 1:
        return np.zeros(1, dtype=np.int64)
    distance = np.clip(1.0 - centres.astype(np.float64) @ centres.T.astype(np.float64), 0.0, 2.0)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="complete")
    return np.asarray(fcluster(tree, t=1.0 - min_similarity, criterion="distance") - 1, dtype=np.int64)
