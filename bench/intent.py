"""Intent classifier on the held-out 25 % of issues.csv, against two baselines, plus timing.

    python -m bench.intent --data-dir ../shared/data [--model clustering/models/intent_v1.npz]

The split is recomputed with the training command's function and seed, so these rows were
never seen by training, cross-validation or temperature fitting. Texts and embeddings are
what the worker feeds the classifier (`prepare_text`, then the int8 ONNX all-MiniLM-L6-v2),
cached in `/tmp/intent_cache`.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clustering.intent import DEFAULT_MODEL_PATH, LABELS, FloatArray, IntentClassifier
from workers.train_intent import ONNX_DIR, SCORED_LABELS, embed_texts, load_issues, split_issues

# Keyword rules written before looking at any data, checked in this order.
_BUG_RE = re.compile(
    r"\b(bug|error|exception|traceback|crash\w*|fail\w*|broken|segfault|not work\w*"
    r"|doesn'?t work|does not work|wrong|incorrect)\b"
)
_FEATURE_RE = re.compile(
    r"\b(feature|enhancement|add|adding|support for|would be (nice|great|useful)|allow"
    r"|option to|request|suggest\w*|proposal|implement)\b"
)
_QUESTION_RE = re.compile(r"\?|\b(how (do|can|to)|is (it|there) (a way|possible)|what is)\b")


def keyword_rule(text: str, fallback: str) -> str:
    """Bug words win, then feature words, then question cues; otherwise `fallback`."""
    lowered = text.lower()
    if _BUG_RE.search(lowered):
        return "bug"
    if _FEATURE_RE.search(lowered):
        return "feature_request"
    if _QUESTION_RE.search(lowered):
        return "question"
    return fallback


def report(name: str, y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Print macro-F1 over the three scored classes and per-class precision/recall/F1."""
    from sklearn.metrics import precision_recall_fscore_support

    labels = list(SCORED_LABELS)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    macro = float(np.mean(f1))
    predicted = Counter(y_pred)
    print(f"\n{name}: macro-F1 {macro:.3f}  (predicted 'other': {predicted.get('other', 0)})")
    print(f"  {'class':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for i, label in enumerate(labels):
        print(f"  {label:<16}{precision[i]:>10.3f}{recall[i]:>10.3f}{f1[i]:>10.3f}{support[i]:>9d}")
    return macro


def expected_calibration_error(correct: FloatArray, confidence: FloatArray, bins: int = 10) -> float:
    """Top-label ECE: mean |accuracy - confidence| over equal-width confidence bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def time_per_item(
    clf: IntentClassifier, vectors: FloatArray, texts: Sequence[str], repeats: int
) -> tuple[float, float, float]:
    """(batch µs/item as the median over repeats, single-item median µs, single-item p95 µs)."""
    batch = []
    for _ in range(repeats):
        started = time.perf_counter()
        clf.predict(vectors, texts)
        batch.append((time.perf_counter() - started) / len(texts))
    single = []
    for _ in range(repeats):
        for i in range(len(texts)):
            started = time.perf_counter()
            clf.predict(vectors[i : i + 1], texts[i : i + 1])
            single.append(time.perf_counter() - started)
    single.sort()
    return (
        statistics.median(batch) * 1e6,
        statistics.median(single) * 1e6,
        single[int(0.95 * (len(single) - 1))] * 1e6,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/intent_cache"))
    parser.add_argument("--onnx-dir", type=Path, default=ONNX_DIR)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    texts, labels = load_issues(args.data_dir)
    train_rows, test_rows = split_issues(labels)
    test_texts = [texts[i] for i in test_rows]
    vectors = embed_texts(test_texts, args.cache_dir, args.onnx_dir)
    y_true = [labels[i] for i in test_rows]
    train_counts = Counter(labels[i] for i in train_rows)
    majority = max(sorted(train_counts), key=lambda y: train_counts[y])
    clf = IntentClassifier.load(args.model)

    print(f"held-out split: {len(test_rows)} issues {dict(sorted(Counter(y_true).items()))}")
    print(f"model: {clf.model_version}  config: {clf.metadata.get('config')}")
    print(f"temperature: {clf.temperature:.2f}")
    report(
        f"majority class baseline ('{majority}' from the train split)",
        y_true,
        [majority] * len(y_true),
    )
    report("keyword-rule baseline", y_true, [keyword_rule(t, majority) for t in test_texts])
    predicted, confidence = clf.predict(vectors, test_texts)
    report("intent classifier", y_true, predicted)

    correct = np.asarray([p == y for p, y in zip(predicted, y_true, strict=True)], dtype=float)
    print(
        f"\ncalibration (held-out): mean confidence {confidence.mean():.3f}, "
        f"accuracy {correct.mean():.3f}, ECE(10 bins) "
        f"{expected_calibration_error(correct, confidence):.3f}"
    )
    for threshold in (0.5, 0.7, 0.9):
        kept = confidence >= threshold
        print(
            f"  confidence >= {threshold}: {kept.mean():.0%} of items, "
            f"accuracy {correct[kept].mean() if kept.any() else float('nan'):.3f}"
        )

    batch_us, single_us, single_p95 = time_per_item(clf, vectors, test_texts, args.repeats)
    print(
        f"\ninference time per item ({len(test_texts)} items x {args.repeats} repeats, "
        f"embedding excluded): batch {batch_us:.1f} µs/item, "
        f"single-item median {single_us:.1f} µs, single-item p95 {single_p95:.1f} µs"
    )
    lengths = sorted(len(t) for t in test_texts)
    print(f"  text length chars: median {lengths[len(lengths) // 2]}, max {lengths[-1]}")
    huge = [(test_texts[-1] + " ") * (64 * 1024 // (len(test_texts[-1]) + 1) + 1)]
    _, huge_us, _ = time_per_item(clf, vectors[-1:], huge, 50)
    print(f"  single 64 KiB item (features read the first 4,000 chars): {huge_us:.1f} µs")
    cv = clf.metadata.get("cv", {})
    chosen = [r for r in cv.get("results", []) if r["config"] == cv.get("chosen")]
    if chosen:
        r = chosen[0]
        print(
            f"\ntraining CV (train split only) for the chosen config: macro-F1 "
            f"{r['macro_f1_mean']:.3f} ± {r['macro_f1_std']:.3f}; hand-written/Banking77 helper "
            f"rows out-of-fold accuracy {r['helper_accuracy']:.3f}, 'other' recall "
            f"{r['other_recall']:.3f}"
        )
    assert set(predicted) <= set(LABELS)


if __name__ == "__main__":
    main()
