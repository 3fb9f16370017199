"""Bake-off only: leaves from Louvain communities of the nearest-neighbour graph, no UMAP layout.

Tried in session 19 as a replacement for the service's UMAP + HDBSCAN leaves, and not adopted
(bench/RESULTS.md, 2026-12-07 session 19). Its leaves take a third of the time, and it scores
as well on Banking77 and HWU64, whose intents are all small shares of the data. But modularity
weighs a community's share of the graph against it, so on a small set every theme shatters
(two issues of 40 items: no theme at all).

The pipeline: NN-descent (cosine, 15 neighbours) weighted as UMAP weighs it (its fuzzy
simplicial set), a coarse cut by Louvain on modularity at ``resolution``, the service's merge
of near-duplicate centroids, a fine cut by Louvain on the Potts model at ``fine_resolution``
(communities denser than that many times the graph's mean) whose distinct pieces become
themes, then the service's repairs (`clustering.cluster`). Needs the `bakeoff` extra
(scikit-network).
"""

import warnings

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from threadpoolctl import threadpool_limits

from clustering.cluster import (
    ClusterParams,
    _by_size,
    _normalised,
    _tidy,
    add_small_themes,
    assign_to_nearest,
    centroids,
    merge_near_duplicates,
)

Labels = NDArray[np.int64]


def graph_leaves(
    vectors: NDArray[np.floating],
    params: ClusterParams,
    *,
    resolution: float = 4.0,
    fine_resolution: float = 10.0,
    seed: int = 42,
) -> Labels:
    """Leaf labels (``-1`` unassigned), with the service's sample above ``sample_threshold``."""
    n = len(vectors)
    with threadpool_limits(limits=1, user_api="blas"):
        if n <= params.sample_threshold:
            return _fit(_normalised(vectors), params, resolution, fine_resolution, seed)
        rows = np.sort(np.random.default_rng(seed).choice(n, size=params.sample_threshold, replace=False))
        fitted = _fit(_normalised(vectors[rows]), params, resolution, fine_resolution, seed)
        ids, centres = centroids(vectors[rows], fitted)
        labels = assign_to_nearest(vectors, centres, params.assign_similarity, label_ids=ids)
        labels[rows] = fitted
        return labels


def _fit(unit: NDArray[np.float32], params: ClusterParams, resolution: float, fine: float, seed: int) -> Labels:
    if len(unit) < params.min_cluster_size:
        return np.full(len(unit), -1, dtype=np.int64)
    graph, neighbours = neighbour_graph(unit, params.n_neighbors, seed)
    labels = communities(graph, resolution, "newman", params.min_cluster_size, seed)
    labels = merge_near_duplicates(unit, labels, params.merge_similarity)
    pieces = communities(graph, fine, "potts", params.min_cluster_size, seed)
    labels = add_small_themes(labels, pieces, vectors=unit, max_similarity=params.assign_similarity)
    return _by_size(_tidy(unit, labels, neighbours, params))


def neighbour_graph(unit: NDArray[np.float32], k: int, seed: int) -> tuple[sparse.csr_matrix, Labels]:
    """UMAP's weighted k-nearest-neighbour graph, ``(n, n)``, and the ``(n, k)`` neighbour rows."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tensorflow not installed", category=ImportWarning)
        from umap.umap_ import fuzzy_simplicial_set, nearest_neighbors

    k = min(k, len(unit) - 1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*graph is not fully connected.*")
        indices, distances, _ = nearest_neighbors(
            unit, k, "cosine", {}, False, np.random.RandomState(seed), low_memory=True, n_jobs=1, verbose=False
        )
        graph, _, _ = fuzzy_simplicial_set(
            np.zeros((len(unit), 1), dtype=np.float32),  # unused: the neighbours are given
            k,
            np.random.RandomState(seed),
            "cosine",
            knn_indices=indices,
            knn_dists=distances,
        )
    return sparse.csr_matrix(graph), np.asarray(indices, dtype=np.int64)


def communities(graph: sparse.csr_matrix, resolution: float, model: str, min_size: int, seed: int) -> Labels:
    """Louvain (nodes in order: deterministic) on ``model``; communities under ``min_size`` are -1."""
    from sknetwork.clustering import Louvain

    louvain = Louvain(resolution=resolution, modularity=model, shuffle_nodes=False, random_state=seed)
    labels = np.asarray(louvain.fit_predict(graph), dtype=np.int64)
    return np.where(np.bincount(labels)[labels] >= min_size, labels, -1)
