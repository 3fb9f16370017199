"""Leaf themes -> parent themes: complete-linkage agglomeration of the leaf centroids.

A parent is an area ("cards") over related leaves ("card not arrived", "card declined").
Leaf centroids (mean directions in the embedding space) are joined bottom-up by complete
linkage on cosine distance, and the tree is cut where leaves stop being about one area: in a
parent, every two leaves' centroids have a cosine of at least ``min_similarity``. A leaf that
nothing is close to is a parent of its own. Complete linkage keeps an area from chaining
through a leaf that sits between two areas, which average linkage does (measured on HWU64
intents against its scenarios: complete 0.859 NMI / 0.680 ARI at 19 parents, average
0.811 / 0.600 at 16; bench/RESULTS.md).
"""

import numpy as np
from numpy.typing import NDArray
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from clustering.cluster import centroids

# Least cosine between the centroids of two leaves in one parent. For all-MiniLM-L6-v2,
# sentences on one topic sit above ~0.3 and unrelated ones near 0-0.2; the parents found are
# steady between 0.25 and 0.4 (16-26 parents for HWU64's 18 scenarios).
PARENT_SIMILARITY = 0.3


def parent_groups(
    vectors: NDArray[np.floating],
    labels: NDArray[np.integer],
    *,
    seed: int = 42,
    min_similarity: float = PARENT_SIMILARITY,
) -> dict[int, int]:
    """Group leaf themes under parent themes.

    Args:
        vectors: Embeddings, shape ``(n, d)``.
        labels: Leaf label per item, shape ``(n,)``; ``-1`` (unassigned) is ignored.
        seed: Accepted for symmetry with :func:`clustering.cluster.cluster_vectors`; the
            agglomeration itself is deterministic and uses no randomness.
        min_similarity: Leaves share a parent only if every two of their centroids have
            at least this cosine. Lower gives fewer, broader parents.

    Returns:
        ``{leaf label: parent label}`` for every leaf label >= 0; parents are ``0..p-1``,
        numbered by decreasing total size (ties by the lowest leaf label). A parent may hold a
        single leaf.
    """
    del seed  # deterministic by construction
    labels = np.asarray(labels, dtype=np.int64)
    ids, centres = centroids(vectors, labels)
    if ids.size == 0:
        return {}
    if ids.size == 1:
        return {int(ids[0]): 0}
    distance = np.clip(1.0 - centres.astype(np.float64) @ centres.T.astype(np.float64), 0.0, 2.0)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="complete")
    groups = fcluster(tree, t=1.0 - min_similarity, criterion="distance") - 1
    sizes = np.bincount(np.searchsorted(ids, labels[labels >= 0]), minlength=ids.size)
    group_size = np.bincount(groups, weights=sizes)
    first_leaf = np.full(group_size.size, np.iinfo(np.int64).max)
    np.minimum.at(first_leaf, groups, ids)
    order = np.lexsort((first_leaf, -group_size))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return {int(leaf): int(rank[group]) for leaf, group in zip(ids.tolist(), groups.tolist(), strict=True)}
