"""One clustering run as a pure plan: the previous map and the new vectors in, the theme tree out.

:func:`recluster` takes the items (vectors, ids, dates, texts), their theme before the run, the
current themes (leaves and parents) and what people decided about them, and returns what to
write: leaf and parent themes with kept or new ids, the merged / split / gone lineage, each
item's leaf and the stability of the run. The order of a run::

    person's themes claim the unpinned items near their seed      (ahead of the clustering)
    -> cluster the rest into leaves and density areas (cluster.cluster_map)
    -> clusters holding pinned members continue those curated themes
    -> the other clusters match the uncurated previous leaves (ids kept), then hysteresis
    -> leaves grouped into parents by area (tree.parent_groups), pinned parents kept,
       parents matched to the previous parents by their leaves' members
    -> labels, keywords, representatives, lifecycle (a parent is named after the area its
       leaves' labels share)

A **curated** theme is one with pinned members, a pinned label or parent, hidden, or a person's
theme. Its previous members are pinned to it, so a run never splits, merges or empties it; it
may gain items. Themes a person retired are not current and are never matched, so never revived.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from clustering.cluster import ClusterParams, centroids, cluster_map, representatives
from clustering.hysteresis import keep_merged_apart, stick_to_previous
from clustering.keywords import EmbedTexts, TextCounts, area_labels, count_texts, label_themes
from clustering.matching import PreviousTheme, ThemeMatch, match_themes, stability
from clustering.tree import parent_groups
from clustering.trends import EMERGING_MAX_AGE, EMERGING_MIN_ITEMS

# Keys of new themes are minted from here up, far above any database id; the writer swaps in
# the ids Postgres gives the inserted rows.
NEW_KEY_BASE = 2**62
_UNLABELLED = "unlabelled theme"


@dataclass(frozen=True)
class CurrentTheme:
    """A current theme before the run, with what people decided about it.

    Attributes:
        theme_id: Its id.
        level: ``"leaf"`` or ``"parent"``.
        centroid: Unit vector, shape ``(d,)``, or ``None`` when it never had one.
        parent_id: A leaf's parent theme id.
        label: Its label (kept when ``label_pinned``).
        label_pinned, parent_pinned, hidden: A person's decisions (migration 0008).
        origin: ``"clustered"`` or ``"person"``.
        seed_centroid: A person's theme: unit vector, shape ``(d,)``; unpinned items at cosine
            ``>= seed_threshold`` join it.
        keywords, size, status, first_seen_at, last_seen_at: Kept for a curated theme that holds
            no item in this run.
    """

    theme_id: int
    level: str = "leaf"
    centroid: NDArray[np.float32] | None = None
    parent_id: int | None = None
    label: str = ""
    label_pinned: bool = False
    parent_pinned: bool = False
    hidden: bool = False
    origin: str = "clustered"
    seed_centroid: NDArray[np.float32] | None = None
    seed_threshold: float | None = None
    keywords: list[str] = field(default_factory=list)
    size: int = 0
    status: str = "active"
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None

    @property
    def is_decided(self) -> bool:
        """A person decided something about this theme itself (pins aside)."""
        return self.label_pinned or self.parent_pinned or self.hidden or self.origin == "person"


@dataclass(frozen=True)
class PlannedTheme:
    """One theme row to write.

    Attributes:
        key: The kept theme id, or a key ``>= NEW_KEY_BASE`` for a new theme.
        level: ``"leaf"`` or ``"parent"``.
        parent_key: A leaf's parent (a key as above), ``None`` for none.
        representative_item_ids: Item ids, most central first.
    """

    key: int
    level: str
    parent_key: int | None
    label: str
    keywords: list[str]
    size: int
    status: str
    centroid: NDArray[np.float32]
    representative_item_ids: list[int]
    first_seen_at: datetime | None
    last_seen_at: datetime | None

    @property
    def is_new(self) -> bool:
        return self.key >= NEW_KEY_BASE


@dataclass(frozen=True)
class ThemePlan:
    """What a run writes. Ids are keys (see :class:`PlannedTheme`).

    Attributes:
        themes: Parents first, then leaves.
        assignment: Leaf key per item, aligned with the input, ``None`` for unassigned.
        merged_into, split_into, gone: Previous themes (both levels) that no longer stand alone.
        kept_share, ari: Leaf stability against the previous assignment (see
            :func:`clustering.matching.stability`); ``None`` on a first run.
        parent_kept_share: Share of previously assigned items that keep their parent id.
        timings: Seconds per step (``cluster_s``, ``match_s`` with the tree, ``keywords_s``).
    """

    themes: list[PlannedTheme]
    assignment: list[int | None]
    merged_into: dict[int, int]
    split_into: dict[int, list[int]]
    gone: list[int]
    kept_share: float | None
    ari: float | None
    parent_kept_share: float | None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def leaves(self) -> list[PlannedTheme]:
        return [t for t in self.themes if t.level == "leaf"]


def lifecycle(first_seen: datetime, last_seen: datetime, size: int, recent: int, before: int, now: datetime) -> str:
    """emerging: first item younger than EMERGING_MAX_AGE and at least EMERGING_MIN_ITEMS items
    (the trend rule of metrics.md); fading: nothing in the last 28 days, or under half the volume
    of the 28 days before; otherwise active."""
    if first_seen > now - EMERGING_MAX_AGE and size >= EMERGING_MIN_ITEMS:
        return "emerging"
    if last_seen < now - timedelta(days=28) or (before >= 5 and recent < before / 2):
        return "fading"
    return "active"


def recluster(
    vectors: NDArray[np.floating],
    item_ids: Sequence[int],
    created_at: Sequence[datetime],
    texts: Sequence[str],
    previous_assignment: Sequence[int | None],
    current_themes: Sequence[CurrentTheme],
    pins: Mapping[int, int],
    *,
    now: datetime,
    params: ClusterParams | None = None,
    seed: int = 42,
    embed: EmbedTexts | None = None,
) -> ThemePlan:
    """Cluster the items into a two-level theme tree that continues the previous one.

    Args:
        vectors: Embeddings, shape ``(n, d)``.
        item_ids: Item id per row, length ``n``.
        created_at: Item date per row; naive ones are read as UTC. Only compared, never
            shifted, so a date at the ends of the calendar (±infinity) cannot fail the run.
        texts: Cleaned text per row (labels and keywords).
        previous_assignment: Each item's leaf theme id before the run, ``None`` for none.
        current_themes: The current themes of the scope, leaves and parents.
        pins: Pinned members, item id -> leaf theme id (a person put the item there). Pins to
            themes that are not current leaves are ignored.
        now: The run's clock (lifecycle).
        params: Clustering parameters.
        seed: Seed of the clustering.
        embed: The model that made ``vectors``; with it, leaf labels are chosen among a leaf's
            distinctive phrases by closeness in meaning (``keywords.label_themes``).

    Returns:
        The :class:`ThemePlan`.
    """
    n = len(item_ids)
    ids = [int(i) for i in item_ids]
    # Postgres' ±infinity arrives as a naive datetime.min / max: read every date as UTC.
    created_at = [c if c.tzinfo is not None else c.replace(tzinfo=UTC) for c in created_at]
    vectors = np.asarray(vectors, dtype=np.float32).reshape(n, -1) if n else np.zeros((0, 1), np.float32)
    leaves_before = {t.theme_id: t for t in current_themes if t.level == "leaf"}
    parents_before = {t.theme_id: t for t in current_themes if t.level == "parent"}
    before = [t if t in leaves_before else None for t in previous_assignment]

    forced = _forced_themes(vectors, ids, before, leaves_before, pins)
    curated = {t for t, theme in leaves_before.items() if theme.is_decided} | {int(t) for t in forced[forced >= 0]}
    labels = np.full(n, -1, dtype=np.int64)
    areas = np.full(n, -1, dtype=np.int64)
    step = time.perf_counter()
    # A person's theme claims its items ahead of the clustering: they are not clustered at all.
    free = np.flatnonzero(~_seed_claimed(forced, ids, pins, before, leaves_before))
    if free.size:
        clustered = cluster_map(vectors[free], seed=seed, params=params)
        labels[free], areas[free] = clustered.labels, clustered.areas

    timings = {"cluster_s": time.perf_counter() - step}
    step = time.perf_counter()
    curated_label = {t: int(labels.max(initial=-1)) + 1 + k for k, t in enumerate(sorted(curated))}
    had_theme = np.array([t is not None for t in before], dtype=np.int8)
    labels = _give_clusters_to_curated(vectors, labels, forced, curated_label, had_theme)
    free_ids, free_centres = centroids(vectors, np.where(np.isin(labels, list(curated_label.values())), -1, labels))
    uncurated = [
        PreviousTheme(theme_id=t, centroid=_vector(theme.centroid, vectors.shape[1]), member_ids=frozenset())
        for t, theme in sorted(leaves_before.items())
        if t not in curated
    ]
    uncurated = _with_members(uncurated, ids, before)
    match = match_themes(uncurated, ids, labels, free_ids, free_centres, first_new_id=NEW_KEY_BASE)
    if n and uncurated:
        labels, match = keep_merged_apart(vectors, labels, before, match)
        labels = stick_to_previous(vectors, labels, before, match)
    has_force = forced >= 0
    labels[has_force] = [curated_label[int(t)] for t in forced[has_force]]

    key_of = {**match.theme_ids, **{label: t for t, label in curated_label.items()}}
    present = set(np.unique(labels[labels >= 0]).tolist())
    assignment = [key_of[int(label)] if label >= 0 else None for label in labels.tolist()]
    merged, split, gone = _leaf_lineage(match, key_of, present, ids, before, assignment, curated)

    parent_of_leaf, parent_plan = _plan_parents(
        vectors, ids, labels, areas, key_of, present, before, leaves_before, parents_before
    )
    parent_key = {key_of[leaf]: parent_plan.key_of[p] for leaf, p in parent_of_leaf.items() if p >= 0}
    timings["match_s"] = time.perf_counter() - step
    step = time.perf_counter()
    # Leaves and parents are named from the same texts: read them once.
    counted = count_texts(texts, (labels >= 0) | (parent_plan.row_labels >= 0))
    leaf_themes = _leaf_themes(
        vectors, ids, texts, counted, created_at, labels, key_of, parent_of_leaf, parent_key, now, leaves_before, embed
    )
    leaf_themes += _untouched_curated(curated - {key_of[label] for label in present}, leaves_before, parent_key)
    # Parents first (the writer gives each leaf its parent's real id); they are named after
    # their leaves, so the leaves are named first.
    themes = parent_plan.themes(vectors, ids, texts, counted, created_at, now, parents_before, leaf_themes)
    themes += leaf_themes

    timings["keywords_s"] = time.perf_counter() - step
    had_any = bool(current_themes)
    kept_share, ari = stability(dict(zip(ids, before, strict=True)), dict(zip(ids, assignment, strict=True)))
    parent_before = [leaves_before[t].parent_id if t is not None else None for t in before]
    leaf_parent = {t.key: t.parent_key for t in themes if t.level == "leaf"}
    parent_after = [leaf_parent.get(t) if t is not None else None for t in assignment]
    parent_kept, _ = stability(dict(zip(ids, parent_before, strict=True)), dict(zip(ids, parent_after, strict=True)))
    return ThemePlan(
        themes=themes,
        assignment=assignment,
        merged_into={**merged, **parent_plan.merged_into},
        split_into={**split, **parent_plan.split_into},
        gone=sorted({*gone, *parent_plan.gone}),
        kept_share=kept_share if had_any else None,
        ari=ari if had_any else None,
        parent_kept_share=parent_kept if parents_before else None,
        timings={k: round(v, 3) for k, v in timings.items()},
    )


def assign_new_items(
    vectors: NDArray[np.floating],
    theme_ids: Sequence[int],
    theme_centroids: NDArray[np.floating],
    seeds: Sequence[CurrentTheme],
    min_similarity: float,
) -> list[int | None]:
    """The leaf for items that arrive between runs: a person's theme whose seed is close enough
    first, else the nearest leaf centroid at cosine ``>= min_similarity``, else none.

    Args:
        vectors: Embeddings, shape ``(n, d)``.
        theme_ids: Current leaf ids, aligned with ``theme_centroids`` (shape ``(k, d)``).
        seeds: The person's themes (``seed_centroid`` and ``seed_threshold`` set).
        min_similarity: Cosine floor of the nearest-centroid step.
    """
    from clustering.cluster import assign_to_nearest

    n = len(vectors)
    if n == 0:
        return []
    result: list[int | None] = [None] * n
    if len(theme_ids):
        labels = assign_to_nearest(vectors, theme_centroids, min_similarity)
        result = [theme_ids[label] if label >= 0 else None for label in labels.tolist()]
    claimed = _seed_claims(np.asarray(vectors, dtype=np.float32), seeds)
    return [int(c) if c >= 0 else r for c, r in zip(claimed.tolist(), result, strict=True)]


def _forced_themes(
    vectors: NDArray[np.float32],
    ids: list[int],
    before: list[int | None],
    leaves_before: Mapping[int, CurrentTheme],
    pins: Mapping[int, int],
) -> NDArray[np.int64]:
    """The theme each row must end in (-1: free): its pin, else its previous theme when that
    theme is curated, else a person's theme whose seed claims it."""
    pinned_themes = {t for t in pins.values() if t in leaves_before}
    decided = {t for t, theme in leaves_before.items() if theme.is_decided} | pinned_themes
    forced = np.full(len(ids), -1, dtype=np.int64)
    for row, (item_id, had) in enumerate(zip(ids, before, strict=True)):
        pin = pins.get(item_id)
        if pin is not None and pin in leaves_before:
            forced[row] = pin
        elif had is not None and had in decided:
            forced[row] = had
    free = forced < 0
    claims = _seed_claims(vectors[free], [t for t in leaves_before.values() if t.origin == "person"])
    forced[free] = claims
    return forced


def _seed_claimed(
    forced: NDArray[np.int64],
    ids: list[int],
    pins: Mapping[int, int],
    before: list[int | None],
    leaves_before: Mapping[int, CurrentTheme],
) -> NDArray[np.bool_]:
    """Rows that a person's theme claims by its seed (not by a pin or previous membership)."""
    persons = {t for t, theme in leaves_before.items() if theme.origin == "person"}
    claimed = np.zeros(len(ids), dtype=bool)
    for row, item_id in enumerate(ids):
        target = int(forced[row])
        if target in persons and pins.get(item_id) != target and before[row] != target:
            claimed[row] = True
    return claimed


def _seed_claims(vectors: NDArray[np.float32], seeds: Sequence[CurrentTheme]) -> NDArray[np.int64]:
    usable = [t for t in seeds if t.seed_centroid is not None and t.seed_threshold is not None]
    claims = np.full(len(vectors), -1, dtype=np.int64)
    if not usable or len(vectors) == 0:
        return claims
    centres = np.stack([_vector(t.seed_centroid, vectors.shape[1]) for t in usable])
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sims = unit @ centres.T
    floors = np.array([float(t.seed_threshold or 0.0) for t in usable], dtype=np.float32)
    sims = np.where(sims >= floors, sims, -np.inf)
    best = sims.argmax(axis=1)
    ok = np.isfinite(sims[np.arange(len(best)), best])
    claims[ok] = np.array([t.theme_id for t in usable], dtype=np.int64)[best[ok]]
    return claims


def _give_clusters_to_curated(
    vectors: NDArray[np.float32],
    labels: NDArray[np.int64],
    forced: NDArray[np.int64],
    curated_label: Mapping[int, int],
    had_theme: NDArray[np.int8],
) -> NDArray[np.int64]:
    """A cluster made mostly of curated themes' members (at least half of its rows that had a theme
    or a pin) continues them: of one theme, the whole cluster joins it; of several, each unpinned
    member joins the nearest of their pinned-member centroids. A few pinned items (a person moved
    them) do not take a cluster over. Pinned rows always end in their own theme."""
    result = labels.copy()
    has_force = forced >= 0
    if not has_force.any():
        return result
    forced_labels = np.full(len(labels), -1, dtype=np.int64)
    forced_labels[has_force] = [curated_label[int(t)] for t in forced[has_force]]
    pin_ids, pin_centres = centroids(vectors, forced_labels)
    for cluster in np.unique(labels[has_force & (labels >= 0)]).tolist():
        rows = np.flatnonzero(labels == cluster)
        owners = np.unique(forced_labels[rows][forced_labels[rows] >= 0])
        loose = rows[forced_labels[rows] < 0]
        if 2 * (rows.size - loose.size) < rows.size - (had_theme[loose] == 0).sum():
            continue
        if owners.size == 1:
            result[loose] = owners[0]
        elif loose.size:
            centres = pin_centres[np.searchsorted(pin_ids, owners)]
            unit = vectors[loose] / np.maximum(np.linalg.norm(vectors[loose], axis=1, keepdims=True), 1e-12)
            result[loose] = owners[np.argmax(unit @ centres.T, axis=1)]
    result[has_force] = forced_labels[has_force]
    return result


def _with_members(previous: list[PreviousTheme], ids: list[int], before: list[int | None]) -> list[PreviousTheme]:
    members: dict[int, set[int]] = defaultdict(set)
    for item_id, theme_id in zip(ids, before, strict=True):
        if theme_id is not None:
            members[theme_id].add(item_id)
    return [
        PreviousTheme(theme_id=p.theme_id, centroid=p.centroid, member_ids=frozenset(members.get(p.theme_id, ())))
        for p in previous
    ]


def _leaf_lineage(
    match: ThemeMatch,
    key_of: Mapping[int, int],
    present: set[int],
    ids: list[int],
    before: list[int | None],
    assignment: list[int | None],
    curated: set[int],
) -> tuple[dict[int, int], dict[int, list[int]], list[int]]:
    """Merged / split / gone leaves. A theme whose items all went back to their previous themes
    (hysteresis) is gone too; successors that no longer exist are dropped from the lineage. An
    uncurated theme absorbed by a curated one is merged into it."""
    alive = {key_of[label] for label in present}
    vanished = [t for t in match.theme_ids.values() if t not in alive and t < NEW_KEY_BASE]
    merged = {old: new for old, new in match.merged_into.items() if new in alive}
    split = {old: [p for p in parts if p in alive] for old, parts in match.split_into.items()}
    split = {old: parts for old, parts in split.items() if parts}
    gone = {*match.disappeared, *vanished, *(o for o in match.merged_into if o not in merged)}
    gone |= {o for o in match.split_into if o not in split}
    gone -= alive
    went: dict[int, dict[int | None, int]] = defaultdict(lambda: defaultdict(int))
    for had, now in zip(before, assignment, strict=True):
        if had in gone:
            went[had][now] += 1
    for old in sorted(gone):
        counts = went.get(old, {})
        target = max(counts, key=lambda t: (counts[t], -(t or 0)), default=None)
        if target in curated and target in alive and counts[target] >= 0.5 * sum(counts.values()):
            merged[old] = target
    return merged, split, sorted(gone - set(merged))


@dataclass(frozen=True)
class _ParentPlan:
    row_labels: NDArray[np.int64]
    key_of: dict[int, int]
    merged_into: dict[int, int]
    split_into: dict[int, list[int]]
    gone: list[int]
    kept_empty: list[int]

    def themes(
        self,
        vectors: NDArray[np.float32],
        ids: list[int],
        texts: Sequence[str],
        counted: TextCounts,
        created_at: Sequence[datetime],
        now: datetime,
        parents_before: Mapping[int, CurrentTheme],
        leaf_themes: Sequence[PlannedTheme],
    ) -> list[PlannedTheme]:
        reps = representatives(vectors, self.row_labels, k=5)
        # A parent's own phrase is the fallback of its area label: c-TF-IDF's order is enough there.
        named = _names(texts, counted, self.row_labels, reps, vectors, None, None)
        # A parent names the area its leaves share ("Top up" over "Top up failed", "Top up limit").
        label_of_key = {key: label for label, key in self.key_of.items()}
        leaves: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for leaf in leaf_themes:
            if leaf.parent_key in label_of_key:
                leaves[label_of_key[leaf.parent_key]].append((leaf.label, leaf.size))
        sizes = dict(enumerate(np.bincount(self.row_labels[self.row_labels >= 0]).tolist()))
        areas = area_labels(leaves, {label: text for label, (text, _) in named.items()}, sizes)
        named = {label: (areas.get(label, text), keywords) for label, (text, keywords) in named.items()}
        result = _themes_of(
            vectors, ids, created_at, self.row_labels, self.key_of, named, now, parents_before, "parent", {}
        )
        return result + _untouched_curated(set(self.kept_empty), parents_before, {})


def _plan_parents(
    vectors: NDArray[np.float32],
    ids: list[int],
    labels: NDArray[np.int64],
    areas: NDArray[np.int64],
    key_of: Mapping[int, int],
    present: set[int],
    before: list[int | None],
    leaves_before: Mapping[int, CurrentTheme],
    parents_before: Mapping[int, CurrentTheme],
) -> tuple[dict[int, int], _ParentPlan]:
    """Parents: a leaf that lives on keeps its parent (a pinned parent always); new leaves are
    placed by the grouping (tree.parent_groups): with the settled leaves of their group, or as
    a group of their own matched to the previous parents by the items under it. Curated parents
    never disappear."""
    curated = {p for p, theme in parents_before.items() if theme.is_decided}
    grouping = parent_groups(vectors, labels, areas=areas) if present else {}
    next_label = max(grouping.values(), default=-1) + 1
    forced_label: dict[int, int] = {}
    parent_of_leaf: dict[int, int] = {}
    fresh: list[int] = []
    for label in sorted(present):
        theme = leaves_before.get(key_of[label])
        # Hysteresis: a leaf that lives on keeps its parent while that parent lives (a pinned one
        # always); only new leaves are placed by the grouping.
        keeps = theme is not None and (theme.parent_pinned or theme.parent_id in parents_before)
        if theme is None or not keeps:
            fresh.append(label)
        elif theme.parent_id is None or theme.parent_id not in parents_before:
            parent_of_leaf[label] = -1  # pinned as a top-level theme
        else:
            if theme.parent_id not in forced_label:
                forced_label[theme.parent_id] = next_label
                next_label += 1
            parent_of_leaf[label] = forced_label[theme.parent_id]
    for label in fresh:
        # A new leaf joins the parent that most of its group's settled leaves keep, else its group.
        group = grouping.get(label, -1)
        settled = [parent_of_leaf[o] for o in parent_of_leaf if grouping.get(o) == group and parent_of_leaf[o] >= 0]
        parent_of_leaf[label] = min(settled, key=lambda p: (-settled.count(p), p)) if settled else group
    row_labels = np.array([parent_of_leaf.get(int(label), -1) if label >= 0 else -1 for label in labels], np.int64)
    free = np.where(np.isin(row_labels, list(forced_label.values())), -1, row_labels)
    free_ids, free_centres = centroids(vectors, free)
    parent_before = [leaves_before[t].parent_id if t is not None else None for t in before]
    previous = _with_members(
        [
            PreviousTheme(theme_id=p, centroid=_vector(theme.centroid, vectors.shape[1]), member_ids=frozenset())
            for p, theme in sorted(parents_before.items())
        ],
        ids,
        parent_before,
    )
    match = match_themes(previous, ids, free, free_ids, free_centres, first_new_id=NEW_KEY_BASE + 2**40)
    # A group that continues a kept or curated parent joins it rather than taking its id apart.
    joined: dict[int, int] = {}
    for label, parent in sorted(match.kept.items()):
        if parent in forced_label or parent in curated:
            if parent not in forced_label:
                forced_label[parent] = next_label
                next_label += 1
            joined[label] = forced_label[parent]
    if joined:
        parent_of_leaf = {leaf: joined.get(p, p) for leaf, p in parent_of_leaf.items()}
        row_labels = np.array([joined.get(int(v), int(v)) for v in row_labels], np.int64)
    keys = {label: t for label, t in match.theme_ids.items() if label not in joined}
    keys.update({label: p for p, label in forced_label.items()})
    alive = {keys[int(label)] for label in np.unique(row_labels[row_labels >= 0]).tolist()}
    merged = {old: new for old, new in match.merged_into.items() if new in alive and old not in curated}
    split = {old: [p for p in parts if p in alive] for old, parts in match.split_into.items() if old not in curated}
    split = {old: parts for old, parts in split.items() if parts}
    retired = {*match.disappeared, *match.merged_into, *match.split_into}
    gone = sorted(retired - set(merged) - set(split) - alive - curated)
    empty = sorted(curated - alive)
    return parent_of_leaf, _ParentPlan(row_labels, keys, merged, split, gone, empty)


def _leaf_themes(
    vectors: NDArray[np.float32],
    ids: list[int],
    texts: Sequence[str],
    counted: TextCounts,
    created_at: Sequence[datetime],
    labels: NDArray[np.int64],
    key_of: Mapping[int, int],
    parent_of_leaf: Mapping[int, int],
    parent_key: Mapping[int, int],
    now: datetime,
    leaves_before: Mapping[int, CurrentTheme],
    embed: EmbedTexts | None,
) -> list[PlannedTheme]:
    reps = representatives(vectors, labels, k=5)
    named = _names(texts, counted, labels, reps, vectors, parent_of_leaf, embed)
    return _themes_of(vectors, ids, created_at, labels, key_of, named, now, leaves_before, "leaf", parent_key)


def _names(
    texts: Sequence[str],
    counted: TextCounts,
    labels: NDArray[np.int64],
    reps: Mapping[int, list[int]],
    vectors: NDArray[np.float32],
    siblings: Mapping[int, int] | None,
    embed: EmbedTexts | None,
) -> dict[int, tuple[str, list[str]]]:
    if not (labels >= 0).any():
        return {}
    # Central items speak for the theme; siblings (leaves of one parent) get unique labels.
    return label_themes(list(texts), labels, reps, vectors=vectors, siblings=siblings, counted=counted, embed=embed)


def _themes_of(
    vectors: NDArray[np.float32],
    ids: list[int],
    created_at: Sequence[datetime],
    labels: NDArray[np.int64],
    key_of: Mapping[int, int],
    named: Mapping[int, tuple[str, list[str]]],
    now: datetime,
    before: Mapping[int, CurrentTheme],
    level: str,
    parent_key: Mapping[int, int],
) -> list[PlannedTheme]:
    label_ids, centres = centroids(vectors, labels)
    reps = representatives(vectors, labels, k=5)
    rows_of: dict[int, list[int]] = defaultdict(list)
    for row, label in enumerate(labels.tolist()):
        if label >= 0:
            rows_of[label].append(row)
    recent_from, before_from = now - timedelta(days=28), now - timedelta(days=56)
    result = []
    for position, label in enumerate(label_ids.tolist()):
        rows = rows_of[label]
        created = [created_at[r] for r in rows]
        first, last = min(created), max(created)
        recent = sum(c >= recent_from for c in created)
        earlier = sum(before_from <= c < recent_from for c in created)
        key = key_of[label]
        previous = before.get(key)
        text, keywords = named.get(label, ("", []))
        if previous is not None and previous.label_pinned:
            text = previous.label
        result.append(
            PlannedTheme(
                key=key,
                level=level,
                parent_key=parent_key.get(key),
                label=text or _UNLABELLED,
                keywords=keywords,
                size=len(rows),
                status=lifecycle(first, last, len(rows), recent, earlier, now),
                centroid=centres[position],
                representative_item_ids=[ids[r] for r in reps.get(label, [])],
                first_seen_at=first,
                last_seen_at=last,
            )
        )
    return result


def _untouched_curated(
    theme_ids: set[int], before: Mapping[int, CurrentTheme], parent_of: Mapping[int, int]
) -> list[PlannedTheme]:
    """Curated themes that hold no item in this run stay as they were (never disappear)."""
    result = []
    for theme_id in sorted(theme_ids):
        theme = before[theme_id]
        result.append(
            PlannedTheme(
                key=theme_id,
                level=theme.level,
                parent_key=parent_of.get(theme_id, theme.parent_id),
                label=theme.label or _UNLABELLED,
                keywords=theme.keywords,
                size=0,
                status=theme.status,
                centroid=_vector(theme.centroid if theme.centroid is not None else theme.seed_centroid, 0),
                representative_item_ids=[],
                first_seen_at=theme.first_seen_at,
                last_seen_at=theme.last_seen_at,
            )
        )
    return result


def _vector(value: NDArray[np.float32] | None, dim: int) -> NDArray[np.float32]:
    if value is None:
        return np.zeros(dim, dtype=np.float32)
    vector = np.asarray(value, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
