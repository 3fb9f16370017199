"""Would MiniLM's inner layers tell issue types apart better than its last one? (#16)

    python bench/intent_layers.py --data-dir ../shared/data

The intent classifier reads the sentence vector (the mean of MiniLM's last layer) beside TF-IDF
terms and cues. Probing studies find that middle layers of a transformer often carry more of the
surface cues (tense, mood, "please add", "fails with") that separate a bug from a feature
request, so a cheap way to a better classifier, with no second encoder pass, would be to keep
one more layer's mean from the pass the worker already runs.

This script measures that. Each GitHub issue, prepared as the worker prepares it, is encoded
once with the fp32 model (transformers, every layer's hidden states), then each layer set is
mean-pooled over the tokens, L2-normalised per layer and concatenated. The service's own fit
(`fit_classifier`, one model, no expert, the shipped `ModelConfig` otherwise) learns from the
training issues only. Figures: macro-F1 over the scored labels by 5-fold cross-validation on
the 75 % training split, and on the 25 % held-out split that bench/intent.py reports.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clustering.embed import default_model_path
from clustering.intent import FloatArray
from clustering.intent_train import LabelledSet, ModelConfig, cross_validate, fit_classifier, macro_f1
from training.intent import load_issues, split_issues

LAYER_SETS = ("6", "5", "4", "6+5", "6+4", "6+5+4+3", "mean1-6")


def hidden_means(texts: list[str], batch: int = 32) -> FloatArray:
    """Shape `(layers + 1, n, dim)`: each layer's (0: the embeddings') mean over real tokens."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = default_model_path()
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    out: list[FloatArray] = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch):
            enc = tokenizer(texts[start : start + batch], padding=True, truncation=True, max_length=256,
                            return_tensors="pt")  # fmt: skip
            states = model(**enc, output_hidden_states=True).hidden_states
            mask = enc["attention_mask"].unsqueeze(-1).float()
            out.append(np.stack([((h * mask).sum(1) / mask.sum(1)).numpy() for h in states]))
    return np.concatenate(out, axis=1).astype(np.float64)


def _unit(x: FloatArray) -> FloatArray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    unit: FloatArray = x / np.where(norms == 0, 1.0, norms)
    return unit


def features(means: FloatArray, layer_set: str) -> FloatArray:
    """The vectors one layer set gives: normalised layers side by side, then normalised again."""
    if layer_set == "mean1-6":
        return _unit(_unit(means[1:]).mean(axis=0))
    return _unit(np.hstack([_unit(means[int(layer)]) for layer in layer_set.split("+")]))


def scores(rows: LabelledSet, train: list[int], test: list[int], folds: int = 5) -> tuple[float, float]:
    """Cross-validated macro-F1 on `train`, and macro-F1 on `test` of a fit on all of `train`."""
    config = ModelConfig(expert_source=None)
    fit, held = rows.subset(train), rows.subset(test)
    cv = cross_validate(rows.subset([]), fit, config, k=folds, seed=0)
    predicted, _ = fit_classifier(fit, config).predict(held.vectors, held.texts)
    return cv.macro_f1, macro_f1(held.labels, predicted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--only", default=",".join(LAYER_SETS), help="layer sets, comma-separated")
    args = parser.parse_args()
    texts, labels = load_issues(args.data_dir)  # prepared as the worker prepares them
    train, test = split_issues(labels)
    started = time.perf_counter()
    means = hidden_means(texts)
    print(f"encoded {len(texts)} issues, {means.shape[0] - 1} layers, in {time.perf_counter() - started:.0f} s")
    for layer_set in args.only.split(","):
        vectors = features(means, layer_set)
        rows = LabelledSet(texts, labels, [1.0] * len(texts), vectors, ["ticket_tagger"] * len(texts))
        cv, held = scores(rows, train, test)
        print(f"layers {layer_set:8s} dim {vectors.shape[1]:4d}  macro-F1 cv {cv:.3f}  held-out {held:.3f}", flush=True)


if __name__ == "__main__":
    main()
