"""Intent: held-out quality, end-user text, the corrections curve, calibration and timing.

    python -m bench.intent --data-dir ../shared/data [--variant gpl|permissive] [--skip-curve]

Every figure is on rows no model here was trained on: the held-out 25 % of the labelled GitHub
issues and of each Mini-BAR app's reviews (splits recomputed with the trainer's functions and
seed), and, for "apps never seen", a model refitted without that app. Texts and vectors are
what the worker feeds the classifier (`prepare_text`, then the int8 ONNX all-MiniLM-L6-v2),
cached in `/tmp/intent_cache`.

The corrections curve simulates one team correcting items: `k` corrections drawn at random from
one project (a Mini-BAR app the model never saw; the GitHub issues as random folds, since nearly
every issue comes from a different repository), a retrain as the service runs it (kept only if
it beats the model in place on the corrections), and that project's macro-F1 (over the classes
it has) measured on its rows that were not corrected. Beside it: the refit kept regardless, and
a team head over the model in place (`fit_team_head`, not used by the service: session 17 of
bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clustering.intent import GATE_POWER, LABELS, FloatArray, IntentClassifier, shipped_paths
from clustering.intent_train import (
    CORRECTION_WEIGHT,
    SCORED_LABELS,
    LabelledSet,
    ModelConfig,
    f1_by_class,
    fit_classifier,
    fit_team_head,
    macro_f1,
    retrain,
)
from training.intent import (
    MINI_BAR_APPS,
    ONNX_DIR,
    labelled,
    load_issues,
    load_mini_bar,
    split_issues,
    stratified_split,
)

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
CURVE_POINTS = (0, 50, 100, 300)


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
    """Print macro-F1 (the classes present among feature_request/bug/question, plus `other`
    when present) and per-class precision/recall/F1."""
    labels = [label for label in LABELS if label in set(y_true)]
    scored = [label for label in labels if label in SCORED_LABELS or label == "other"]
    macro = macro_f1(y_true, y_pred, scored)
    predicted = Counter(y_pred)
    print(f"\n{name}: macro-F1 {macro:.3f}  (predicted 'other': {predicted.get('other', 0)})")
    print(f"  {'class':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for label in labels:
        tp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == p == label)
        support = sum(1 for t in y_true if t == label)
        precision = tp / predicted[label] if predicted[label] else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * tp / (predicted[label] + support) if predicted[label] + support else 0.0
        print(f"  {label:<16}{precision:>10.3f}{recall:>10.3f}{f1:>10.3f}{support:>9d}")
    return macro


def reliability(correct: FloatArray, confidence: FloatArray, bins: int = 10) -> float:
    """Print the reliability curve (accuracy per confidence bin) and return the top-label ECE."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    print(f"  {'confidence':<12}{'items':>7}{'mean conf':>11}{'accuracy':>10}")
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
            print(
                f"  {edges[b]:.1f}-{edges[b + 1]:.1f}    {int(mask.sum()):>7}{confidence[mask].mean():>11.3f}"
                f"{correct[mask].mean():>10.3f}"
            )
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


def expert_share(clf: IntentClassifier, vectors: FloatArray) -> str:
    """How much of the items the issue-tracker expert answers for: mean mixing weight and the
    share of items it weighs more than the base model."""
    if clf.expert is None:
        return "no expert"
    share = (1.0 / (1.0 + np.exp(-(vectors @ clf.gate[:-1] + clf.gate[-1])))) ** GATE_POWER
    return f"expert weight mean {share.mean():.3f}, above 0.5 for {np.mean(share > 0.5):.1%} of items"


def all_classes_f1(clf: IntentClassifier, rows: LabelledSet) -> tuple[float, float]:
    """(macro-F1 over the classes present, feature-request F1) of `clf` on `rows`."""
    predicted, _ = clf.predict(rows.vectors, rows.texts)
    scores = f1_by_class(rows.labels, predicted)
    return float(np.mean(list(scores.values()))), scores.get("feature_request", float("nan"))


def corrections_curve(
    name: str,
    base: LabelledSet,
    prior: IntentClassifier,
    pool: LabelledSet,
    test: LabelledSet,
    config: ModelConfig,
    seed: int = 1,
) -> dict[int, float]:
    """Macro-F1 on `test` of the model the service leaves in place after k corrections drawn from
    `pool`: `retrain`'s refit, which replaces `prior` only when it beats it on the corrections.
    Printed beside it: the refit kept regardless, and a team head over `prior`."""
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    figures, parts = {}, []
    for k in CURVE_POINTS:
        if not k:
            figures[k] = all_classes_f1(prior, test)[0]
            parts.append(f"{k}: {figures[k]:.3f}")
            continue
        corrections = pool.subset(order[:k])
        outcome = retrain(base, corrections, prior, config=config)
        figures[k] = all_classes_f1(outcome.model if outcome.accepted else prior, test)[0]
        refit = all_classes_f1(outcome.model, test)[0]  # the retrain's final fit, kept or not
        head = all_classes_f1(fit_team_head(prior, corrections.reweighted(CORRECTION_WEIGHT)), test)[0]
        kept = "refit kept" if outcome.accepted else "prior kept"
        parts.append(f"{k}: {figures[k]:.3f} ({kept}; refit {refit:.3f}, head {head:.3f})")
    print(f"  {name}")
    print("    " + "\n    ".join(parts))
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--variant", choices=("gpl", "permissive"), default="gpl")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/intent_cache"))
    parser.add_argument("--onnx-dir", type=Path, default=ONNX_DIR)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-curve", action="store_true")
    parser.add_argument("--skip-retrain", action="store_true", help="do not time a retrain on 5,000 corrections")
    args = parser.parse_args(argv)
    cache, onnx = args.cache_dir, args.onnx_dir

    model_path, base_path = shipped_paths(args.variant)
    clf = IntentClassifier.load(model_path)
    base = LabelledSet.from_bytes(base_path.read_bytes())
    config = ModelConfig(**clf.metadata["config"])
    print(f"model: {clf.model_version} ({args.variant})  config: {clf.metadata.get('config')}")
    print(f"temperature: {clf.temperature:.2f}; trained on {clf.metadata.get('trained_on')}")

    texts, labels = load_issues(args.data_dir)
    train_rows, test_rows = split_issues(labels)
    issues = labelled(texts, labels, 1.0, "ticket_tagger", cache, onnx)
    issue_test = issues.subset(test_rows)
    train_counts = Counter(labels[i] for i in train_rows)
    majority = max(sorted(train_counts), key=lambda y: train_counts[y])
    print(f"\n== GitHub issues, held-out split: {len(test_rows)} {dict(sorted(Counter(issue_test.labels).items()))}")
    report(f"majority class ('{majority}')", issue_test.labels, [majority] * len(issue_test))
    report("keyword rules", issue_test.labels, [keyword_rule(t, majority) for t in issue_test.texts])
    issue_pred, issue_conf = clf.predict(issue_test.vectors, issue_test.texts)
    report("intent classifier", issue_test.labels, issue_pred)
    print(f"  {expert_share(clf, issue_test.vectors)}")

    apps = {}
    for app in MINI_BAR_APPS:
        app_texts, app_labels = load_mini_bar(app)
        app_train, app_test = stratified_split(app_labels)
        rows = labelled(app_texts, app_labels, 1.0, f"mini_bar/{app}", cache, onnx)
        apps[app] = (rows.subset(app_train), rows.subset(app_test))
    print("\n== End-user text: Mini-BAR app reviews (feature_request / bug / other), held-out 25 %")
    user_test = apps[MINI_BAR_APPS[0]][1] + apps[MINI_BAR_APPS[1]][1] + apps[MINI_BAR_APPS[2]][1]
    user_pred, user_conf = clf.predict(user_test.vectors, user_test.texts)
    report("intent classifier, three apps", user_test.labels, user_pred)
    print(f"  {expert_share(clf, user_test.vectors)}")
    print("\n  apps the model never saw (refitted without the app's rows):")
    for app, (_, test) in apps.items():
        unseen = fit_classifier(base.subset([i for i, s in enumerate(base.sources) if s != f"mini_bar/{app}"]), config)
        macro, fr = all_classes_f1(unseen, test)
        seen_macro, seen_fr = all_classes_f1(clf, test)
        print(
            f"  {app:<16} unseen: macro-F1 {macro:.3f}, feature-request F1 {fr:.3f};"
            f" seen (shipped model): {seen_macro:.3f}, {seen_fr:.3f}"
        )

    print("\n== Calibration (held-out issues and app reviews together); reliability curve:")
    truth = issue_test.labels + user_test.labels
    predicted = issue_pred + user_pred
    confidence = np.concatenate([issue_conf, user_conf])
    correct = np.asarray([p == y for p, y in zip(predicted, truth, strict=True)], dtype=float)
    ece = reliability(correct, confidence)
    print(f"  mean confidence {confidence.mean():.3f}, accuracy {correct.mean():.3f}, ECE(10 bins) {ece:.3f}")
    for threshold in (0.4, 0.5, 0.6, 0.7):
        below = confidence < threshold
        print(
            f"  uncertain below {threshold}: {below.mean():.0%} of items, accuracy {correct[below].mean():.3f}"
            f" (the rest: {correct[~below].mean():.3f})"
        )

    if not args.skip_curve:
        print(f"\n== Corrections curve: macro-F1 after k corrections (weight {CORRECTION_WEIGHT:g}), one project")
        rng = random.Random(3)
        folds = list(range(len(issue_test)))
        rng.shuffle(folds)
        pool_rows, eval_rows = folds[: len(folds) // 2 + 30], folds[len(folds) // 2 + 30 :]
        corrections_curve(
            f"GitHub issues ({len(eval_rows)} evaluated)", base, clf, issue_test.subset(pool_rows),
            issue_test.subset(eval_rows), config,
        )  # fmt: skip
        for app, (train, test) in apps.items():
            without = base.subset([i for i, s in enumerate(base.sources) if s != f"mini_bar/{app}"])
            prior = fit_classifier(without, config, temperature=clf.temperature)
            corrections_curve(f"{app} (never seen before)", without, prior, train, test, config)

    vectors, sample_texts = issue_test.vectors, issue_test.texts
    batch_us, single_us, single_p95 = time_per_item(clf, vectors, sample_texts, args.repeats)
    print(
        f"\n== Inference per item ({len(sample_texts)} items x {args.repeats}, embedding excluded): batch"
        f" {batch_us:.1f} µs, single-item median {single_us:.1f} µs, p95 {single_p95:.1f} µs"
    )
    if args.skip_retrain:
        return
    pool = issues + apps[MINI_BAR_APPS[0]][0] + apps[MINI_BAR_APPS[1]][0] + apps[MINI_BAR_APPS[2]][0]
    five_k = pool.subset(random.Random(5).sample(range(len(pool)), 5000))
    started = time.perf_counter()
    outcome = retrain(base, five_k, clf, config=config)
    seconds = time.perf_counter() - started
    print(
        f"== Retrain on {len(base)} shipped rows + 5,000 corrections"
        " (2-fold CV over the corrections, compared out of fold, final fit):"
        f" {seconds:.1f} s; accepted {outcome.accepted}; CV macro-F1 {outcome.cv.macro_f1:.3f}"
    )


if __name__ == "__main__":
    main()
