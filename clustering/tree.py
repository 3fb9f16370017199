"""Leaf themes -> parent themes: agglomerate the leaves' centroids into areas.

Average linkage on cosine distance between leaf centroids, cut at a fixed distance: two groups
of leaves join while the mean cosine between their centroids is at least
``1 - MAX_DISTANCE``. A leaf far from every other leaf becomes a parent of one leaf.
"""

import numpy as np
from numpy.typing import NDArray
from scipy.cluster.hierarchy import fcluster, linkage

from clustering.cluster import centroids

# Mean cosine 0.5 between leaf centroids: with all-MiniLM-L6-v2, leaves of one area (lost card,
# card arrival) sit at 0.5-0.7 and leaves of different areas below 0.4.
MAX_DISTANCE = 0.5


def parent_groups(vectors: NDArray[np.floating], labels: NDArray[np.integer], *, seed: int = 42) -> dict[int, int]:
    """Group leaf themes into parent themes.

    Args:
        vectors: Embeddings, shape ``(n, d)``.
        labels: Leaf label per row, shape ``(n,)``, ``-1`` for unassigned.
        seed: Unused by the agglomeration (deterministic); kept for a seeded alternative.

    Returns:
        ``{leaf label: parent label}`` for every leaf label >= 0; parent labels are ``0..p-1``,
        numbered by the smallest leaf label they hold.
    """
    del seed
    ids, centres = centroids(vectors, np.asarray(labels))
    if ids.size == 0:
        return {}
    if ids.size == 1:
        return {int(ids[0]): 0}
    unit = np.asarray(centres, dtype=np.float64)
    distances = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)
    condensed = distances[np.triu_indices(ids.size, k=1)]
    groups = fcluster(linkage(condensed, method="average"), t=MAX_DISTANCE, criterion="distance")
    order: dict[int, int] = {}
    for group in groups.tolist():
        order.setdefault(group, len(order))
    return {int(leaf): order[group] for leaf, group in zip(ids.tolist(), groups.tolist(), strict=True)}
