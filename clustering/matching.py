"""Stable theme identities across clustering runs.

A new run labels clusters 0..k-1 afresh; this module decides which previous theme each new
cluster continues (it keeps that theme's id), which clusters are new, and what happened to
the previous themes that no cluster continues::

    previous theme --(most of its items, one new cluster)--> kept id
    previous theme --(absorbed by a cluster that kept another id)--> merged_into
    previous theme --(broke into several new clusters)--> split_into (largest part keeps id)
    previous theme --(nothing left)--> disappeared

Shared members decide first (greedy on Jaccard similarity); centroid cosine breaks ties and
is the fallback for themes that share few members (e.g. when the items were re-ingested).
The hysteresis that follows a match lives in :mod:`clustering.hysteresis`; :func:`stability`
measures how much of the previous assignment survived.
"""

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import adjusted_rand_score

ItemId = Hashable
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class PreviousTheme:
    """A theme from the previous run.

    Attributes:
        theme_id: Its stable id.
        centroid: Its centroid, shape ``(d,)``, in the same embedding space as the new run.
        member_ids: Ids of the items it held.
    """

    theme_id: int
    centroid: NDArray[np.floating]
    member_ids: frozenset[ItemId]


@dataclass(frozen=True)
class MatchParams:
    """Thresholds of :func:`match_themes`.

    Attributes:
        min_overlap: A new cluster may continue a previous theme when the shared items are at
            least this share of the smaller of the two. Lower keeps more ids across big
            reshuffles but lets a small new theme steal the id of a large old one.
        min_centroid_similarity: Cosine between centroids for the fallback match of themes
            that share too few members. Higher mints more new ids.
        min_part_share: A new cluster counts as a part of a split (or as the receiver of a
            merge) when it took at least this share of the previous theme's items.
    """

    min_overlap: float = 0.5
    min_centroid_similarity: float = 0.9
    min_part_share: float = 0.2


@dataclass(frozen=True)
class ThemeMatch:
    """How one run's clusters relate to the previous themes.

    Attributes:
        theme_ids: New cluster label -> theme id (kept or newly minted).
        kept: New cluster label -> the previous theme id it continues (a subset of the above).
        new_ids: Theme ids minted in this run, ascending.
        merged_into: Previous theme id -> theme id of the cluster that absorbed it.
        split_into: Previous theme id -> theme ids of its parts; the part that kept the old
            id comes first.
        disappeared: Previous theme ids with no successor, ascending.
    """

    theme_ids: dict[int, int]
    kept: dict[int, int]
    new_ids: list[int]
    merged_into: dict[int, int] = field(default_factory=dict)
    split_into: dict[int, list[int]] = field(default_factory=dict)
    disappeared: list[int] = field(default_factory=list)


def match_themes(
    previous: Sequence[PreviousTheme],
    item_ids: Sequence[ItemId],
    labels: NDArray[np.integer],
    cluster_labels: NDArray[np.integer],
    cluster_centroids: NDArray[np.floating],
    *,
    first_new_id: int,
    params: MatchParams | None = None,
) -> ThemeMatch:
    """Carry theme ids from the previous run over to a new clustering.

    Args:
        previous: The themes of the previous run.
        item_ids: Id of each clustered item, shape ``(n,)``, aligned with ``labels``.
        labels: New cluster label per item, shape ``(n,)``, ``-1`` for unassigned.
        cluster_labels: Labels of the new clusters, shape ``(k,)`` (from ``centroids``).
        cluster_centroids: Their centroids, shape ``(k, d)``.
        first_new_id: Ids for new themes are minted from here upwards, in label order; pass
            one more than the largest theme id ever used so ids are never reused.
        params: Thresholds; the defaults suit normalised sentence embeddings.

    Returns:
        A :class:`ThemeMatch`. Deterministic: ties go to the higher centroid cosine, then to
        the lower theme id and label.
    """
    params = params or MatchParams()
    labels = np.asarray(labels)
    new_labels = [int(v) for v in cluster_labels]
    members: dict[int, set[ItemId]] = {lab: set() for lab in new_labels}
    for item_id, lab in zip(item_ids, labels.tolist(), strict=True):
        if lab >= 0:
            members.setdefault(lab, set()).add(item_id)
    present = set(item_ids)
    prev_present = [theme.member_ids & present for theme in previous]
    overlap = np.array([[len(p & members[lab]) for lab in new_labels] for p in prev_present], dtype=np.float64).reshape(
        len(previous), len(new_labels)
    )
    cosine = _cosine(previous, cluster_centroids).reshape(len(previous), len(new_labels))

    prev_sizes = np.array([len(p) for p in prev_present], dtype=np.float64)
    new_sizes = np.array([len(members[lab]) for lab in new_labels], dtype=np.float64)
    union = prev_sizes[:, None] + new_sizes[None, :] - overlap
    jaccard = np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
    smaller = np.minimum(prev_sizes[:, None], new_sizes[None, :])
    overlap_share = np.divide(overlap, smaller, out=np.zeros_like(overlap), where=smaller > 0)

    kept: dict[int, int] = {}
    matched_prev: set[int] = set()
    eligible = (overlap_share >= params.min_overlap) & (overlap > 0)
    _greedy(jaccard, cosine, eligible, previous, new_labels, kept, matched_prev)
    unmatched_prev = [i for i in range(len(previous)) if i not in matched_prev]
    # A previous theme whose items mostly went elsewhere is a merge, not a centroid match.
    went_elsewhere = np.divide(overlap.sum(axis=1), prev_sizes, out=np.zeros(len(previous)), where=prev_sizes > 0)
    fallback = np.zeros_like(eligible)
    for i in unmatched_prev:
        if went_elsewhere[i] < params.min_overlap:
            fallback[i] = cosine[i] >= params.min_centroid_similarity
    _greedy(cosine, cosine, fallback, previous, new_labels, kept, matched_prev)

    theme_ids = dict(kept)
    new_ids: list[int] = []
    for lab in sorted(new_labels):
        if lab not in theme_ids:
            theme_ids[lab] = first_new_id + len(new_ids)
            new_ids.append(theme_ids[lab])

    label_of = {theme_ids[lab]: lab for lab in kept}
    col = {lab: j for j, lab in enumerate(new_labels)}
    merged_into: dict[int, int] = {}
    split_into: dict[int, list[int]] = {}
    disappeared: list[int] = []
    for i, theme in enumerate(previous):
        share = np.divide(overlap[i], prev_sizes[i]) if prev_sizes[i] else np.zeros(len(col))
        if i in matched_prev:
            own = col[label_of[theme.theme_id]]
            parts = [
                j
                for j in np.argsort(-share, kind="stable")
                if j != own
                and share[j] >= params.min_part_share
                and new_labels[j] not in kept
                and overlap[i, j] >= params.min_overlap * new_sizes[j]
            ]
            if parts:
                split_into[theme.theme_id] = [theme.theme_id] + [theme_ids[new_labels[j]] for j in parts]
            continue
        best = int(np.argmax(share)) if share.size else -1
        if best >= 0 and share[best] >= params.min_part_share:
            merged_into[theme.theme_id] = theme_ids[new_labels[best]]
        else:
            disappeared.append(theme.theme_id)
    return ThemeMatch(
        theme_ids=theme_ids,
        kept=kept,
        new_ids=new_ids,
        merged_into=merged_into,
        split_into=split_into,
        disappeared=sorted(disappeared),
    )


def _cosine(previous: Sequence[PreviousTheme], centroids: NDArray[np.floating]) -> NDArray[np.float64]:
    if not previous or len(centroids) == 0:
        return np.zeros((len(previous), len(centroids)))
    old = np.stack([np.asarray(t.centroid, dtype=np.float64) for t in previous])
    new = np.asarray(centroids, dtype=np.float64)
    old /= np.maximum(np.linalg.norm(old, axis=1, keepdims=True), 1e-12)
    new = new / np.maximum(np.linalg.norm(new, axis=1, keepdims=True), 1e-12)
    result: NDArray[np.float64] = old @ new.T
    return result


def _greedy(
    score: NDArray[np.float64],
    tie_break: NDArray[np.float64],
    eligible: NDArray[np.bool_],
    previous: Sequence[PreviousTheme],
    new_labels: list[int],
    kept: dict[int, int],
    matched_prev: set[int],
) -> None:
    """One-to-one matching, best score first; fills ``kept`` and ``matched_prev``."""
    pairs = sorted(
        zip(*np.nonzero(eligible), strict=True),
        key=lambda ij: (
            -score[ij],
            -tie_break[ij],
            previous[ij[0]].theme_id,
            new_labels[ij[1]],
        ),
    )
    for i, j in pairs:
        if i in matched_prev or new_labels[j] in kept:
            continue
        kept[new_labels[j]] = previous[i].theme_id
        matched_prev.add(int(i))


def stability(
    prev_assignment: Mapping[K, int | None],
    new_assignment: Mapping[K, int | None],
) -> tuple[float, float]:
    """How much of the previous theme assignment survived a re-clustering.

    Args:
        prev_assignment: Item id -> theme id (``None`` = unassigned) before.
        new_assignment: Item id -> theme id after (ids already matched by
            :func:`match_themes`).

    Returns:
        ``(kept_share, ari)``: the share of items that had a theme before, are still present
        and keep the same theme id (1.0 when no such item existed); and the adjusted Rand
        index between both assignments over the items present in both, with unassigned
        counted as one more group (1.0 when fewer than two items are shared).
    """
    common = [item for item in prev_assignment if item in new_assignment]
    had_theme = [item for item in common if prev_assignment[item] is not None]
    kept_share = (
        sum(new_assignment[item] == prev_assignment[item] for item in had_theme) / len(had_theme) if had_theme else 1.0
    )
    if len(common) < 2:
        return kept_share, 1.0
    before = [_group(prev_assignment[item]) for item in common]
    after = [_group(new_assignment[item]) for item in common]
    return kept_share, float(adjusted_rand_score(before, after))


def _group(theme_id: int | None) -> int:
    # Theme ids are non-negative database ids, so -1 is free to mean "unassigned".
    return -1 if theme_id is None else theme_id
