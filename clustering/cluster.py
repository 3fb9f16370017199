"""Vectors -> leaf theme labels: UMAP + HDBSCAN at two sizes, then merge and re-home noise.

The pipeline, for ``n`` normalised vectors (above ``sample_threshold`` it runs on a random
sample and the rest is assigned to the nearest centroid)::

    UMAP (cosine, 5-d, min_dist 0)
    -> coarse HDBSCAN (clusters of at least area_share * n, and of twice min_cluster_size):
       the common themes
    -> merge clusters whose 384-d centroids are near-duplicates
    -> fine HDBSCAN (clusters of min_cluster_size = 10): each fine cluster that the coarse
       cut left mostly unassigned, or that sits in a coarse cluster but is not similar to
       the rest of it (centroid cosine below assign_similarity), becomes a theme of its own
       (a small, distinct issue)
    -> noise, and members far from their own centroid, go to the nearest centroid if the
       cosine is high enough, else stay unassigned
    -> two rounds of a vote among each item's 15 nearest neighbours (original space)

Beside the leaves, a third HDBSCAN cut on the same UMAP map, at clusters of at least
``parent_share`` of the items, finds the areas that parent themes are made of
(:func:`cluster_map`, ``clustering/tree.py``).

Fewer distinct vectors than two themes' worth (identical texts) skip UMAP: each group of
identical vectors of at least ``min_cluster_size`` is a theme. Fewer items than
``min_cluster_size`` are all unassigned.

Everything is seeded and single-threaded where order matters, so the same input gives the
same labels. BLAS runs on one thread too: on a busy 2-core host OpenBLAS's second thread made
the 384 x 384 eigendecomposition of the PCA start take 2.4 s instead of 0.03 s, and a whole
HWU64 run 4.3-6.8 s instead of 3.8 s (bench/RESULTS.md, 2026-12-05 session 6).
Labels are ``0..k-1`` by decreasing size; ``-1`` means unassigned.
"""

import logging
import math
import threading
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)

Labels = NDArray[np.int64]
_CHUNK = 16_384
# One run at a time in a process. A worker runs one job at a time, but compiles this code in a
# thread while it already serves other jobs (workers/__main__.py): numba's parallel layer is not
# made for kernels launched from two threads at once, and threadpool_limits sets process-wide
# state. A run that starts during the warm-up waits for it, then runs compiled code.
_ONE_RUN = threading.Lock()


@dataclass(frozen=True)
class ClusterParams:
    """Settings of :func:`cluster_vectors`; none of them is tuned to one data set.

    Attributes:
        min_cluster_size: The smallest theme, in items: a recurring issue this small can be a
            theme of its own at any data size (there is no share-of-volume floor). Density
            clumps smaller than this are never themes.
        min_samples: HDBSCAN's density smoothing (neighbours counted for a core distance).
        area_share: The first, coarse cut of HDBSCAN uses clusters of at least this share
            of the items; it finds the common themes at a steady count as data grows (at the
            smallest size, UMAP's clumps shatter a large set: 311 themes for Banking77 train).
            It is not a floor: a fine cluster (``min_cluster_size``) that is distinct from
            the coarse theme around it, or sits in its noise, becomes a theme of its own.
            The coarse cut is always at least twice ``min_cluster_size``, so a small set (a
            new install, a scoped map) gets both cuts too: with one cut at the smallest size,
            the top issue of a 700-item queue came out as 4-5 leaves (bench/RESULTS.md,
            2026-12-08).
        parent_share: The areas (the cut that parent themes come from, clustering/tree.py) are
            clusters of at least this share of the items, and at least the coarse cut's size:
            at most ``1 / parent_share`` areas, a top level a person can read at any volume.
            Leaves have no such floor. On HWU64 1/30 to 1/60 gave the same quality and 1/80
            fell off (its areas were single intents); 1/40 is the middle of that plateau
            (bench/RESULTS.md, 2026-12-08).
        n_neighbors: UMAP neighbourhood; larger favours global structure, is slower.
        n_components: UMAP output dimensions; HDBSCAN works well in 5-10.
        n_epochs: UMAP optimisation epochs; 100 is as good as 200-500 here and 2-3x faster.
        merge_similarity: Clusters whose centroids (original space) have at least this
            cosine (average linkage) are merged. Lower merges related issues together.
        assign_similarity: Noise points (and, on the sampled path, items outside the sample)
            join the nearest centroid when its cosine is at least this. Lower leaves fewer
            items unassigned but admits looser matches. The same floor splits a fine
            cluster out of the coarse cluster around it (:func:`add_small_themes`): a piece
            whose centroid the rest of its theme would not admit is a theme of its own.
        member_similarity: A clustered item whose cosine to its own centroid is below this
            is treated as noise (then re-homed as above); the neighbour vote may admit items
            down to this floor. Catches off-topic items that UMAP pulled into a dense
            region; higher also drops the fuzzy fringe of real themes.
        smoothing_rounds: Rounds of the neighbour vote that repairs cluster boundaries in the
            original space; 0 turns it off, more than 2 changes little.
        sample_threshold: Above this many items, fit on a random sample of this size and
            assign the rest by nearest centroid. Bounds time and memory at a small cost.
    """

    min_cluster_size: int = 10
    min_samples: int = 5
    area_share: float = 1 / 200
    parent_share: float = 1 / 40
    n_neighbors: int = 15
    n_components: int = 5
    n_epochs: int = 100
    merge_similarity: float = 0.9
    assign_similarity: float = 0.5
    member_similarity: float = 0.35
    smoothing_rounds: int = 2
    sample_threshold: int = 20_000

    def area_size(self, n: int) -> int:
        """``min_cluster_size`` of the coarse cut for ``n`` fitted items."""
        return max(2 * self.min_cluster_size, round(self.area_share * n))

    def parent_area_size(self, n: int) -> int:
        """``min_cluster_size`` of the cut that finds the areas, for ``n`` fitted items."""
        return max(self.area_size(n), round(self.parent_share * n))


@dataclass(frozen=True)
class ClusterMap:
    """What one clustering of the vectors gives.

    Attributes:
        labels: Leaf theme per item, shape ``(n,)``, int64: ``0..k-1`` by decreasing size,
            ``-1`` unassigned.
        areas: Density area per item on the same map, shape ``(n,)``, int64; ``-1`` for an item
            in no area, and for every item outside the fitted sample. Parent themes are made
            from them (:func:`clustering.tree.parent_groups`).
    """

    labels: Labels
    areas: Labels


def cluster_vectors(vectors: NDArray[np.floating], *, seed: int = 42, params: ClusterParams | None = None) -> Labels:
    """Cluster embeddings into leaf themes (the labels of :func:`cluster_map`).

    Args:
        vectors: Embeddings, shape ``(n, d)``; any scale (they are L2-normalised here).
        seed: Seeds UMAP and the sample; the same input and seed give identical labels.
        params: Pipeline settings; the defaults adapt to ``n`` by rule.

    Returns:
        Labels, shape ``(n,)``, int64: ``0..k-1`` by decreasing cluster size, ``-1`` for
        unassigned. Too few items for two minimum-size clusters gives all ``-1``.

    Examples:
        >>> labels = cluster_vectors(embeddings)
        >>> ids, centres = centroids(embeddings, labels)
    """
    return cluster_map(vectors, seed=seed, params=params).labels


def cluster_map(vectors: NDArray[np.floating], *, seed: int = 42, params: ClusterParams | None = None) -> ClusterMap:
    """Cluster embeddings into leaf themes, and the areas that parent themes are made of.

    Args:
        vectors: Embeddings, shape ``(n, d)``; any scale (they are L2-normalised here).
        seed: Seeds UMAP and the sample; the same input and seed give identical results.
        params: Pipeline settings; the defaults adapt to ``n`` by rule.

    Returns:
        The :class:`ClusterMap`. Too few items for two minimum-size clusters gives all ``-1``.
    """
    with _ONE_RUN, threadpool_limits(limits=1, user_api="blas"):
        return _cluster(np.asarray(vectors), seed=seed, params=params or ClusterParams())


def _cluster(vectors: NDArray[np.floating], *, seed: int, params: ClusterParams) -> ClusterMap:
    n = vectors.shape[0]
    if n > params.sample_threshold:
        rng = np.random.default_rng(seed)
        fit_rows = np.sort(rng.choice(n, size=params.sample_threshold, replace=False))
    else:
        fit_rows = np.arange(n)
    fitted = _fit(_normalised(vectors[fit_rows]), seed=seed, params=params)
    if len(fit_rows) == n:
        return fitted
    ids, centres = centroids(vectors[fit_rows], fitted.labels)
    # Scoring every row (the sample too) avoids copying the other rows out of a large input.
    labels = assign_to_nearest(vectors, centres, params.assign_similarity, label_ids=ids)
    labels[fit_rows] = fitted.labels
    areas = np.full(n, -1, dtype=np.int64)
    areas[fit_rows] = fitted.areas
    return ClusterMap(labels, areas)


def _fit(unit: NDArray[np.float32], *, seed: int, params: ClusterParams) -> ClusterMap:
    n = unit.shape[0]
    no_areas = np.full(n, -1, dtype=np.int64)
    if n < params.min_cluster_size:
        return ClusterMap(no_areas.copy(), no_areas)
    _, copy_of, copies = np.unique(np.round(unit, 5), axis=0, return_inverse=True, return_counts=True)
    if copies.size < 2 * params.min_cluster_size:
        # Too few distinct vectors for a density estimate (identical texts): each group of
        # identical vectors large enough is a theme, the rest unassigned.
        themes = np.where(copies >= params.min_cluster_size, np.arange(copies.size), -1)
        return ClusterMap(_by_size(themes[copy_of.ravel()]), no_areas)
    reduced, neighbours = _reduce(unit, seed=seed, params=params)
    parent_area = params.parent_area_size(n)
    areas = _hdbscan(reduced, parent_area, max(3, round(math.sqrt(parent_area))))
    area = params.area_size(n)
    labels = _hdbscan(reduced, area, max(3, round(math.sqrt(area))))
    labels = merge_near_duplicates(unit, labels, params.merge_similarity)
    fine = _hdbscan(reduced, params.min_cluster_size, params.min_samples)
    labels = add_small_themes(labels, fine, vectors=unit, max_similarity=params.assign_similarity)
    return ClusterMap(_by_size(_tidy(unit, labels, neighbours, params)), areas)


def add_small_themes(
    coarse: NDArray[np.integer],
    fine: NDArray[np.integer],
    min_noise_share: float = 0.5,
    *,
    vectors: NDArray[np.floating] | None = None,
    max_similarity: float = 0.5,
) -> Labels:
    """Make each fine cluster that is not part of the coarse theme around it a theme of its own.

    The coarse cut only sees clusters of its (share-of-n) size; a small, distinct issue is
    noise to it, or is swallowed by a larger coarse cluster next to it in the UMAP picture,
    but is a dense cluster of its own at the smallest theme size.

    Args:
        coarse: Labels of the coarse map, shape ``(n,)``, ``-1`` unassigned.
        fine: Labels of the fine map (HDBSCAN at the smallest theme size), shape ``(n,)``.
        min_noise_share: A fine cluster becomes a theme when at least this share of its
            items is unassigned in the coarse map; only those items move to it.
        vectors: Embeddings, shape ``(n, d)``. When given, a fine cluster that lies mostly
            inside one coarse cluster also becomes a theme when its centroid has a cosine
            below ``max_similarity`` to the centroid of the rest of that coarse cluster; its
            items in that coarse cluster and in the noise move to it.
        max_similarity: See ``vectors``; :func:`cluster_vectors` passes
            ``assign_similarity``, the cosine below which an item is not admitted to a
            theme: a piece that the theme would not admit is not part of it.

    Returns:
        Labels, shape ``(n,)``, int64: the coarse labels plus new labels above them.
    """
    labels = np.asarray(coarse, dtype=np.int64).copy()
    fine = np.asarray(fine, dtype=np.int64)
    ids = np.unique(fine[fine >= 0])
    next_label = int(labels.max()) + 1 if labels.size else 0
    in_fine = fine >= 0
    noise = labels < 0
    share = np.bincount(fine[noise & in_fine], minlength=int(ids.max()) + 1 if ids.size else 0)
    size = np.bincount(fine[in_fine], minlength=share.size)
    unit = _normalised(vectors) if vectors is not None else None
    coarse_ids, coarse_sums = _sums(unit, labels) if unit is not None else (np.zeros(0, np.int64), None)
    original = labels.copy()
    for theme in ids.tolist():
        members = fine == theme
        if share[theme] >= min_noise_share * size[theme]:
            move = members & noise
        elif unit is not None and coarse_sums is not None:
            hosts = original[members & ~noise]
            host = int(np.bincount(hosts).argmax())
            inside = members & (original == host)
            rest_count = int((original == host).sum()) - int(inside.sum())
            if rest_count < int(inside.sum()):
                continue  # the fine cluster is most of its coarse cluster: it is that theme
            piece = unit[inside].sum(axis=0, dtype=np.float64)
            rest = coarse_sums[int(np.searchsorted(coarse_ids, host))] - piece
            cosine = float(piece @ rest) / max(float(np.linalg.norm(piece) * np.linalg.norm(rest)), 1e-12)
            if cosine >= max_similarity:
                continue
            move = inside | (members & noise)
        else:
            continue
        labels[move] = next_label
        next_label += 1
    return labels


def _sums(unit: NDArray[np.float32], labels: Labels) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Sorted label ids and the sum of their members' vectors, shape ``(k, d)``."""
    ids = np.unique(labels[labels >= 0]).astype(np.int64)
    sums = np.zeros((ids.size, unit.shape[1]), dtype=np.float64)
    assigned = labels >= 0
    np.add.at(sums, np.searchsorted(ids, labels[assigned]), unit[assigned].astype(np.float64))
    return ids, sums


def _tidy(unit: NDArray[np.float32], labels: Labels, neighbours: NDArray[np.int64], params: ClusterParams) -> Labels:
    """Re-home noise and stray members, then repair boundaries by a neighbour vote."""
    ids, centres = centroids(unit, labels)
    if not ids.size:
        return labels
    # Noise, and members too far from their own centroid (off-topic items that UMAP pulled
    # into a dense region, where HDBSCAN cannot tell them apart), go to the nearest
    # centroid if it is close enough, else stay unassigned.
    labels = labels.copy()
    own = _own_similarity(unit, labels, ids, centres)
    loose = np.flatnonzero((labels < 0) | (own < params.member_similarity))
    labels[loose] = assign_to_nearest(unit[loose], centres, params.assign_similarity, label_ids=ids)
    labels = _smooth(labels, neighbours, params.smoothing_rounds)
    # The vote must not pull an off-topic item (whose neighbours are all far) back in.
    labels[_own_similarity(unit, labels, ids, centres) < params.member_similarity] = -1
    return _rehome_small(unit, labels, params)


def _rehome_small(unit: NDArray[np.float32], labels: Labels, params: ClusterParams) -> Labels:
    """Dissolve clusters that the repairs left below ``min_cluster_size``.

    The vote and the member floor can shrink a cluster after HDBSCAN sized it (HWU64 had
    leaves of 1, 3 and 7 items); a theme that small is not a recurring issue. Its members go
    to the nearest remaining centroid that would admit them, else they are unassigned.
    """
    sizes = np.bincount(labels[labels >= 0], minlength=1)
    small = np.flatnonzero((sizes > 0) & (sizes < params.min_cluster_size))
    if not small.size:
        return labels
    labels = labels.copy()
    loose = np.flatnonzero(np.isin(labels, small))
    labels[loose] = -1
    ids, centres = centroids(unit, labels)
    labels[loose] = assign_to_nearest(unit[loose], centres, params.assign_similarity, label_ids=ids)
    return labels


def _own_similarity(
    unit: NDArray[np.float32], labels: Labels, ids: NDArray[np.int64], centres: NDArray[np.float32]
) -> NDArray[np.float32]:
    """Cosine of each item to its own cluster's centroid (meaningless where label is -1)."""
    rows = np.searchsorted(ids, np.maximum(labels, ids[0]))
    similarity: NDArray[np.float32] = np.einsum("ij,ij->i", unit, centres[rows])
    return similarity


def _smooth(labels: Labels, neighbours: NDArray[np.integer], rounds: int, min_share: float = 0.4) -> Labels:
    """Give each item the label most of its original-space neighbours hold.

    UMAP's 5-d picture cuts some boundaries in the wrong place; a vote among the 15 nearest
    neighbours in the embedding space moves those items back (+0.01 NMI at 10k).
    Unassigned neighbours do not vote; without a ``min_share`` majority the label stays.
    """
    n, k = neighbours.shape
    for _ in range(rounds):
        votes = labels[neighbours]
        counted = votes >= 0
        tally = sparse.csr_matrix(
            (np.ones(int(counted.sum())), (np.nonzero(counted)[0], votes[counted])),
            shape=(n, int(labels.max()) + 1),
        )
        best = np.asarray(tally.argmax(axis=1)).ravel()
        strong = np.asarray(tally.max(axis=1).todense()).ravel() >= min_share * k
        labels = np.where(strong, best, labels)
    return labels


def _reduce(
    unit: NDArray[np.float32], *, seed: int, params: ClusterParams
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """UMAP to ``n_components`` dimensions; also returns its ``(n, k)`` nearest-neighbour rows."""
    with warnings.catch_warnings():
        # umap announces at import that its optional TensorFlow extra is missing.
        warnings.filterwarnings("ignore", message="Tensorflow not installed", category=ImportWarning)
        import umap  # heavy (numba); imported on first use

    model = umap.UMAP(
        n_neighbors=min(params.n_neighbors, unit.shape[0] - 1),
        n_components=params.n_components,
        min_dist=0.0,
        metric="cosine",
        init=_pca_init(unit, params.n_components),
        n_epochs=params.n_epochs,
        negative_sample_rate=3,  # 5 by default; 3 is 25 % faster at equal quality (measured)
        random_state=seed,
        n_jobs=1,  # a seed makes UMAP single-threaded anyway; saying so avoids its warning
        # One nearest-neighbour code path (NN-descent) for every n, so warm_up compiles it.
        force_approximation_algorithm=True,
    )
    with warnings.catch_warnings():
        # NN-descent on tiny inputs warns that it fell back to a full search.
        warnings.filterwarnings("ignore", message=".*graph is not fully connected.*")
        reduced: NDArray[np.float32] = model.fit_transform(unit)
    return reduced, np.asarray(model._knn_indices, dtype=np.int64)


def _pca_init(unit: NDArray[np.float32], n_components: int) -> NDArray[np.float32]:
    """Principal-component coordinates to start UMAP from.

    Same start as UMAP's ``init="pca"`` but from the ``d x d`` covariance (about 0.05 s at 10k
    instead of 0.8 s for a full SVD); spectral init costs ~10 s there and gains nothing.
    """
    centred = unit.astype(np.float64) - unit.mean(axis=0, dtype=np.float64)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    axes = vectors[:, ::-1][:, :n_components]
    axes *= np.where(axes[np.abs(axes).argmax(axis=0), np.arange(n_components)] < 0, -1.0, 1.0)
    coords = centred @ axes
    start: NDArray[np.float32] = (10.0 * coords / max(float(np.abs(coords).max()), 1e-12)).astype(np.float32)
    return start


def _hdbscan(reduced: NDArray[np.float32], min_size: int, min_samples: int) -> Labels:
    import fast_hdbscan
    import numba

    model = fast_hdbscan.HDBSCAN(
        min_cluster_size=min_size,
        min_samples=min_samples,
        cluster_selection_method="eom",
        reproducible=True,
    )
    # One thread: in 5-d the spanning tree takes ~0.2 s CPU at 10k, while numba's parallel
    # Boruvka on a busy 2-core machine waited 4-8 s for its threads (measured).
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return np.asarray(model.fit_predict(reduced), dtype=np.int64)
    finally:
        numba.set_num_threads(threads)


def merge_near_duplicates(vectors: NDArray[np.floating], labels: NDArray[np.integer], min_similarity: float) -> Labels:
    """Join clusters whose centroids are near-duplicates (average-linkage on cosine).

    HDBSCAN in a 5-d UMAP space sometimes cuts one issue into pieces that are plainly the
    same in the original space; this puts them back together.

    Args:
        vectors: Embeddings, shape ``(n, d)``.
        labels: Labels, shape ``(n,)``, ``-1`` for noise (left as is).
        min_similarity: Groups of clusters whose average pairwise centroid cosine is at
            least this are merged. 0.9 joins only near-duplicates for all-MiniLM-L6-v2,
            where distinct but related issues sit around 0.8; lower merges related issues.

    Returns:
        Labels, shape ``(n,)``, int64; merged clusters share the label of their group
        (labels are not renumbered by size here).
    """
    original = np.asarray(labels, dtype=np.int64)
    ids, centres = centroids(vectors, original)
    if ids.size < 2:
        return original
    distance = np.clip(1.0 - centres.astype(np.float64) @ centres.T.astype(np.float64), 0, 2)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    groups = fcluster(tree, t=1.0 - min_similarity, criterion="distance")
    lookup = np.full(int(ids.max()) + 1, -1, dtype=np.int64)
    lookup[ids] = groups - 1
    merged = original.copy()
    assigned = original >= 0
    merged[assigned] = lookup[original[assigned]]
    return merged


def _by_size(labels: Labels) -> Labels:
    """Relabel to ``0..k-1`` by decreasing size, ties by first occurrence."""
    ids, first, counts = np.unique(labels[labels >= 0], return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))
    lookup = np.full(int(ids.max()) + 1 if ids.size else 1, -1, dtype=np.int64)
    lookup[ids[order]] = np.arange(ids.size)
    result = np.full(labels.shape, -1, dtype=np.int64)
    assigned = labels >= 0
    result[assigned] = lookup[labels[assigned]]
    return result


def _normalised(vectors: NDArray[np.floating]) -> NDArray[np.float32]:
    unit = np.array(vectors, dtype=np.float32)
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    return unit


def centroids(
    vectors: NDArray[np.floating], labels: NDArray[np.integer]
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Mean direction of each cluster.

    Args:
        vectors: Embeddings, shape ``(n, d)`` (normalised here before averaging).
        labels: Labels, shape ``(n,)``; ``-1`` rows are ignored.

    Returns:
        ``(label_ids, centres)``: the sorted labels present, shape ``(k,)``, and their
        L2-normalised mean vectors, shape ``(k, d)``, row ``i`` belonging to ``label_ids[i]``.
    """
    labels = np.asarray(labels)
    ids = np.unique(labels[labels >= 0]).astype(np.int64)
    dim = vectors.shape[1]
    centres = np.zeros((ids.size, dim), dtype=np.float64)
    for start in range(0, len(labels) if ids.size else 0, _CHUNK):
        part = labels[start : start + _CHUNK]
        keep = np.flatnonzero(part >= 0)
        member_of = sparse.csr_matrix(
            (np.ones(keep.size), (np.searchsorted(ids, part[keep]), keep)), shape=(ids.size, part.size)
        )
        centres += member_of @ _normalised(vectors[start : start + _CHUNK]).astype(np.float64)
    norm = np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    return ids, (centres / norm).astype(np.float32)


def assign_to_nearest(
    vectors: NDArray[np.floating],
    centres: NDArray[np.floating],
    min_similarity: float,
    *,
    label_ids: NDArray[np.integer] | None = None,
) -> Labels:
    """Give each vector the label of its most similar centroid, if similar enough.

    Used for noise points, for items outside the fitted sample, and online for items that
    arrive between clustering runs. Works in chunks, so memory stays flat for large ``n``.

    Args:
        vectors: Embeddings, shape ``(n, d)``.
        centres: Centroids, shape ``(k, d)``, L2-normalised (as from :func:`centroids`).
        min_similarity: Cosine floor; below it the vector stays ``-1``. 0.5 suits
            all-MiniLM-L6-v2: higher leaves more unassigned, lower admits off-topic items.
        label_ids: Label of each centroid row, shape ``(k,)``; defaults to ``0..k-1``.

    Returns:
        Labels, shape ``(n,)``, int64, ``-1`` where no centroid is close enough. Ties go to
        the lower row.
    """
    ids = np.arange(len(centres)) if label_ids is None else np.asarray(label_ids)
    labels = np.full(vectors.shape[0], -1, dtype=np.int64)
    if len(centres) == 0:
        return labels
    centres32 = np.asarray(centres, dtype=np.float32)
    for start in range(0, vectors.shape[0], _CHUNK):
        sims = _normalised(vectors[start : start + _CHUNK]) @ centres32.T
        best = sims.argmax(axis=1)
        ok = sims[np.arange(len(best)), best] >= min_similarity
        labels[start : start + len(best)] = np.where(ok, ids[best], -1)
    return labels


def representatives(vectors: NDArray[np.floating], labels: NDArray[np.integer], k: int = 5) -> dict[int, list[int]]:
    """The members closest to each cluster's centre, for showing examples of a theme.

    Args:
        vectors: Embeddings, shape ``(n, d)``.
        labels: Labels, shape ``(n,)``; ``-1`` rows are never chosen.
        k: Members per cluster (fewer if the cluster is smaller).

    Returns:
        ``{label: [row indices]}``, most central first; ties go to the lower row.
    """
    labels = np.asarray(labels)
    ids, centres = centroids(vectors, labels)
    members = np.flatnonzero(labels >= 0)
    members = members[np.argsort(labels[members], kind="stable")]
    bounds = np.searchsorted(labels[members], ids, side="right")
    result: dict[int, list[int]] = {}
    start = 0
    for label, centre, end in zip(ids.tolist(), centres, bounds.tolist(), strict=True):
        rows = members[start:end]
        sims = _normalised(vectors[rows]) @ centre
        result[label] = rows[np.lexsort((rows, -sims))[:k]].tolist()
        start = end
    return result


def warm_up(seed: int = 0) -> None:
    """Compile the numba code of UMAP, NN-descent and HDBSCAN on a small synthetic input.

    Call once when a worker starts: a fresh process otherwise spends 20-40 s compiling in
    its first clustering run. Takes about as long as that compilation. Safe to run in a thread
    beside other work: a `cluster_vectors` call meanwhile waits for it.

    Args:
        seed: Seed of the synthetic data.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, 32))
    points = np.repeat(centres, 64, axis=0) + 0.3 * rng.normal(size=(8 * 64, 32))
    cluster_vectors(points.astype(np.float32), seed=seed)
    log.info("clustering warmed up")
