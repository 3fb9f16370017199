"""Splitting one theme into sub-groups: spherical k-means over its stored vectors.

The API proposes splits while a person waits, so this stays in numpy (no UMAP, no numba): on
all-MiniLM-L6-v2 vectors of one theme, spherical k-means (cosine k-means on the unit sphere) finds
the sub-topics a person means by "this theme is two things", and the number of groups, when not
given, is the one with the best cosine silhouette on a sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

MIN_SPLIT_SIZE = 6
MAX_GROUPS = 8
_SILHOUETTE_SAMPLE = 1_000
_MAX_ITER = 60
_N_INIT = 3


@dataclass(frozen=True)
class SplitGroup:
    """One proposed sub-group; row indices refer to the input arrays."""

    rows: list[int]
    centroid: NDArray[np.float32]
    examples: list[int]  # the rows closest to the centroid, most central first
    label: str
    keywords: list[str]


@dataclass(frozen=True)
class SplitProposal:
    groups: list[SplitGroup]  # largest first
    silhouette: float


def _unit(vectors: NDArray[np.floating]) -> NDArray[np.float32]:
    unit = np.array(vectors, dtype=np.float32)
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    return unit


def spherical_kmeans(
    unit: NDArray[np.float32], k: int, *, seed: int = 0, max_iter: int = _MAX_ITER, n_init: int = _N_INIT
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Cosine k-means on unit vectors, k-means++ seeding, best of `n_init` starts.

    Args:
        unit: L2-normalised vectors, shape ``(n, d)``, ``n >= k``.
        k: Number of groups, ``>= 2``.
        seed: Seed of the random starts; the same input and seed give the same groups.
        max_iter: Iterations per start; it usually settles in under 20.
        n_init: Starts; the one with the highest total cosine to its centres wins.

    Returns:
        ``(labels, centres)``: labels in ``0..k-1``, shape ``(n,)``, and unit centres, shape
        ``(k, d)``. No group is empty.
    """
    n = unit.shape[0]
    if not 2 <= k <= n:
        raise ValueError(f"k must be between 2 and the number of vectors ({n}), not {k}")
    rng = np.random.default_rng(seed)
    best: tuple[float, NDArray[np.int64], NDArray[np.float32]] | None = None
    for _ in range(n_init):
        centres = _plus_plus(unit, k, rng)
        labels = np.zeros(n, dtype=np.int64)
        for _ in range(max_iter):
            sims = unit @ centres.T
            new = sims.argmax(axis=1).astype(np.int64)
            centres = _recentre(unit, new, k, sims)
            if np.array_equal(new, labels):
                break
            labels = new
        score = float((unit * centres[labels]).sum())
        if best is None or score > best[0]:
            best = (score, labels, centres)
    assert best is not None
    return best[1], best[2]


def _plus_plus(unit: NDArray[np.float32], k: int, rng: np.random.Generator) -> NDArray[np.float32]:
    n = unit.shape[0]
    chosen = [int(rng.integers(n))]
    distance = 1.0 - unit @ unit[chosen[0]]
    for _ in range(1, k):
        weights = np.clip(distance, 0.0, None) ** 2
        total = float(weights.sum())
        pick = int(rng.choice(n, p=weights / total)) if total > 0 else int(rng.integers(n))
        chosen.append(pick)
        distance = np.minimum(distance, 1.0 - unit @ unit[pick])
    return unit[chosen].copy()


def _recentre(
    unit: NDArray[np.float32], labels: NDArray[np.int64], k: int, sims: NDArray[np.float32]
) -> NDArray[np.float32]:
    counts = np.bincount(labels, minlength=k)
    for empty in np.flatnonzero(counts == 0).tolist():
        # An empty group restarts on the point its own centre explains worst.
        worst = int(sims.max(axis=1).argmin())
        labels[worst] = empty
    member = np.zeros((k, unit.shape[0]), dtype=np.float32)
    member[labels, np.arange(unit.shape[0])] = 1.0
    return _unit(member @ unit)


def cosine_silhouette(
    unit: NDArray[np.float32], labels: NDArray[np.int64], *, sample: int = _SILHOUETTE_SAMPLE, seed: int = 0
) -> float:
    """Mean silhouette with cosine distance, on at most `sample` points (a fixed random subset).

    Returns:
        A value in ``[-1, 1]``; higher means tighter, better separated groups. ``-1`` when
        fewer than two groups are present in the sample.
    """
    n = unit.shape[0]
    rows = np.arange(n) if n <= sample else np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))
    part, lab = unit[rows], labels[rows]
    groups = np.unique(lab)
    if groups.size < 2:
        return -1.0
    distance = 1.0 - part @ part.T
    member = (lab[:, None] == groups[None, :]).astype(np.float32)
    counts = member.sum(axis=0)
    mean_to = distance @ member  # (m, g): summed distance to each group
    own = np.searchsorted(groups, lab)
    own_count = counts[own] - 1
    a = np.where(own_count > 0, mean_to[np.arange(len(lab)), own] / np.maximum(own_count, 1), 0.0)
    other = mean_to / np.maximum(counts, 1)
    other[np.arange(len(lab)), own] = np.inf
    b = other.min(axis=1)
    s = np.where(own_count > 0, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def propose_split(
    vectors: NDArray[np.floating],
    texts: Sequence[str],
    *,
    k: int | None = None,
    seed: int = 0,
    examples: int = 5,
) -> SplitProposal:
    """Propose sub-groups of one theme, each with a label, keywords and its most central rows.

    Args:
        vectors: The theme's item embeddings, shape ``(n, d)``; ``n >= MIN_SPLIT_SIZE``.
        texts: The items' cleaned texts, shape ``(n,)``, for the labels (c-TF-IDF).
        k: Number of groups; when None, the k in ``2..min(MAX_GROUPS, n // 3)`` with the best
            cosine silhouette. More groups fit finer sub-topics but each gets fewer items.
        seed: Seed for k-means and the silhouette sample.
        examples: Rows per group in `SplitGroup.examples`.

    Returns:
        The groups, largest first, and the silhouette of the chosen k.
    """
    # One BLAS thread: these products are small, and on a busy machine a thread pool per call
    # oversubscribes the cores (measured 30x slower at load 4 on 2 cores).
    with threadpool_limits(limits=1):
        return _propose(vectors, texts, k=k, seed=seed, examples=examples)


def _propose(
    vectors: NDArray[np.floating], texts: Sequence[str], *, k: int | None, seed: int, examples: int
) -> SplitProposal:

    n = len(texts)
    if vectors.shape[0] != n:
        raise ValueError(f"{vectors.shape[0]} vectors but {n} texts")
    if n < MIN_SPLIT_SIZE:
        raise ValueError(f"A theme needs at least {MIN_SPLIT_SIZE} items to split, not {n}")
    unit = _unit(vectors)
    if k is not None:
        if not 2 <= k <= n // 2:
            raise ValueError(f"k must be between 2 and {n // 2} for a theme of {n} items, not {k}")
        labels, _ = spherical_kmeans(unit, k, seed=seed)
        score = cosine_silhouette(unit, labels, seed=seed)
    else:
        # k is chosen on a sample (the silhouette is sampled anyway), then fitted on every item.
        rng = np.random.default_rng(seed)
        sample = unit if n <= _SILHOUETTE_SAMPLE else unit[np.sort(rng.choice(n, _SILHOUETTE_SAMPLE, replace=False))]
        best_k, best_score = 2, -2.0
        for candidate in range(2, max(2, min(MAX_GROUPS, n // 3)) + 1):
            found, _ = spherical_kmeans(sample, candidate, seed=seed, n_init=2)
            score = cosine_silhouette(sample, found, seed=seed)
            if score > best_score:
                best_k, best_score = candidate, score
        labels, _ = spherical_kmeans(unit, best_k, seed=seed)
        score = cosine_silhouette(unit, labels, seed=seed)
    groups = _describe(unit, texts, labels, examples=examples)
    order = np.argsort([-len(g.rows) for g in groups], kind="stable")
    return SplitProposal(groups=[groups[g] for g in order.tolist()], silhouette=score)


def describe_groups(
    vectors: NDArray[np.floating], texts: Sequence[str], labels: NDArray[np.integer], *, examples: int = 5
) -> list[SplitGroup]:
    """Centroid, most central rows, label and keywords of each group ``0..max(labels)``.

    Args:
        vectors: Embeddings, shape ``(n, d)``.
        texts: Cleaned texts, shape ``(n,)``, for c-TF-IDF labels.
        labels: Group per row, shape ``(n,)``, every group ``0..max`` present at least once.
        examples: Rows per group in `SplitGroup.examples`.

    Returns:
        One `SplitGroup` per label, in label order.
    """
    with threadpool_limits(limits=1):
        return _describe(vectors, texts, labels, examples=examples)


def _describe(
    vectors: NDArray[np.floating], texts: Sequence[str], labels: NDArray[np.integer], *, examples: int
) -> list[SplitGroup]:
    from clustering.keywords import label_themes

    unit = _unit(vectors)
    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1
    member = np.zeros((k, unit.shape[0]), dtype=np.float32)
    member[labels, np.arange(unit.shape[0])] = 1.0
    centres = _unit(member @ unit)
    central: dict[int, list[int]] = {}
    for g in range(k):
        rows = np.flatnonzero(labels == g)
        sims = unit[rows] @ centres[g]
        central[g] = rows[np.lexsort((rows, -sims))[:examples]].tolist()
    named = label_themes(list(texts), labels, central)
    return [
        SplitGroup(
            rows=np.flatnonzero(labels == g).tolist(),
            centroid=centres[g],
            examples=central[g],
            label=named[g][0],
            keywords=named[g][1],
        )
        for g in range(k)
    ]


def nearest_group(vectors: NDArray[np.floating], centroids: NDArray[np.floating]) -> NDArray[np.int64]:
    """The index of the most similar centroid for each vector (items that reached the theme after
    its preview, or that a person left out of explicit groups, go where they fit best)."""
    if vectors.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    result: NDArray[np.int64] = (_unit(vectors) @ _unit(centroids).T).argmax(axis=1).astype(np.int64)
    return result
