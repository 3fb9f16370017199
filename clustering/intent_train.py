"""Fitting the intent classifier: from labelled (vector, text) rows to an `IntentClassifier`.

Used offline by `training/intent.py` (the shipped model) and by the retrain job in
`workers/intent.py` (a model per install, from the shipped rows plus people's corrections).
Arrays in, a classifier and figures out; nothing here touches the database.

The few-label method: the same logistic regression over [embedding, TF-IDF, cues], refitted on
the shipped rows plus the corrections, with the vocabulary rebuilt from both so a team's own
words become features. Weighting a correction more than a shipped row was measured in
`bench/intent.py` ("corrections curve", #16): weight 5 did no better than weight 1 at 300
corrections (GitHub issues 0.760 vs 0.781, an unseen app 0.775 vs 0.782 and 0.856 vs 0.855),
so `CORRECTION_WEIGHT` is 1 and stays a parameter for the next experiment.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from clustering.intent import (
    CUE_NAMES,
    GATE_POWER,
    LABELS,
    FloatArray,
    IntentClassifier,
    analyse,
    text_terms,
    tfidf_row,
)

SCORED_LABELS: tuple[str, ...] = ("feature_request", "bug", "question")
CORRECTION_WEIGHT = 1.0
HELD_BACK_SHARE = 0.2
# A retrain with this many corrections compares out of fold over all of them (a fit per fold +
# the final one); with fewer it holds back a fifth and cross-validates over the shipped rows.
MIN_CV_CORRECTIONS = 10
CV_FOLDS = 2
# A fold's model stands in for the final model on the corrections it did not learn, having learned
# (k-1)/k of them. With 2 folds it learns half, and at a few hundred corrections half teaches
# visibly less than all: the comparison then kept the current model in 5 of 8 draws at 300
# corrections where the new one was better on the team's other rows; 5 folds kept it in 2
# (bench/RESULTS.md, session 17). So 5 folds up to `FEW_CORRECTIONS`, where a fold is cheap; above
# it half the corrections already teach most of what all do, and 2 folds keep a 5k-correction
# retrain within its 60-s budget.
FEW_CORRECTIONS_FOLDS = 5
FEW_CORRECTIONS = 1000
RETRAIN_TOL = 1e-4
MODEL_VERSION_PREFIX = "intent_v2"
# Rows of this source train the expert for issue-tracker text and are the gate's positives
# (clustering/intent.py); corrections (`CORRECTION_SOURCE`) train both models, not the gate.
EXPERT_SOURCE = "ticket_tagger"
CORRECTION_SOURCE = "correction"
BASE_FORMAT = 1


def correction_folds(corrections: int) -> int:
    """Folds of the out-of-fold comparison over `corrections` corrections."""
    return FEW_CORRECTIONS_FOLDS if corrections <= FEW_CORRECTIONS else CV_FOLDS


@dataclass(frozen=True)
class ModelConfig:
    """The feature blocks and the logistic regression's settings.

    Attributes:
        use_text: Append TF-IDF uni/bigrams and the cue features to the embedding.
        c: Inverse regularisation strength.
        vocab_size: Most frequent terms kept (by document frequency).
        min_df: Terms in fewer documents are dropped.
        balanced: Re-weight classes to equal total weight.
        expert_source: Rows of this source (plus corrections) also train an expert model, and a
            gate over the embedding learns which items look like them (`IntentClassifier`);
            None, or training rows without it, give one model. Chosen by grouped
            cross-validation in #16 session 6: +0.02 macro-F1 on GitHub issues, app reviews
            unchanged (bench/RESULTS.md).
        tol: L-BFGS stopping tolerance. The shipped fit uses 1e-5; a retrain uses
            `RETRAIN_TOL` (1e-4: a 5k-correction retrain in 29 s instead of 91 s with the same
            cross-validated macro-F1, 0.870 vs 0.869; 1e-3 took 17 s but lost 0.02;
            bench/RESULTS.md 2026-12-05).
    """

    use_text: bool = True
    c: float = 1.0
    vocab_size: int = 5000
    min_df: int = 2
    balanced: bool = True
    tol: float = 1e-5
    expert_source: str | None = EXPERT_SOURCE


@dataclass(frozen=True)
class LabelledSet:
    """Labelled rows: prepared texts, labels from `LABELS`, training weights, L2-normalised
    vectors of shape `(n, dim)` and where each row came from (e.g. "mini_bar/garmin_connect")."""

    texts: list[str]
    labels: list[str]
    weights: list[float]
    vectors: FloatArray
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Check that every column has one entry per row and every label is known."""
        n = len(self.texts)
        if not (len(self.labels) == len(self.weights) == self.vectors.shape[0] == n):
            raise ValueError("texts, labels, weights and vectors differ in length")
        if self.sources and len(self.sources) != n:
            raise ValueError("sources differ in length")
        if unknown := set(self.labels) - set(LABELS):
            raise ValueError(f"unknown intent labels {sorted(unknown)}")

    def __len__(self) -> int:
        """Number of rows."""
        return len(self.texts)

    def subset(self, rows: Sequence[int]) -> LabelledSet:
        """The given rows, in that order."""
        rows = list(rows)
        return LabelledSet(
            [self.texts[i] for i in rows],
            [self.labels[i] for i in rows],
            [self.weights[i] for i in rows],
            self.vectors[rows] if rows else np.zeros((0, self.vectors.shape[1])),
            [self.sources[i] for i in rows] if self.sources else [],
        )

    def __add__(self, other: LabelledSet) -> LabelledSet:
        """Rows of both sets (sources are kept only when both have them or one set is empty)."""
        keep = (bool(self.sources) or not len(self)) and (bool(other.sources) or not len(other))
        return LabelledSet(
            self.texts + other.texts,
            self.labels + other.labels,
            self.weights + other.weights,
            np.vstack([self.vectors, other.vectors]),
            self.sources + other.sources if keep else [],
        )

    def reweighted(self, weight: float) -> LabelledSet:
        """The same rows, every weight set to `weight`."""
        return LabelledSet(self.texts, self.labels, [weight] * len(self), self.vectors, self.sources)

    def to_bytes(self) -> bytes:
        """An `.npz` archive (no pickle); vectors are stored as int8 with a scale per row."""
        scale = np.abs(self.vectors).max(axis=1, initial=1e-12) / 127.0
        scale[scale == 0] = 1.0
        quantised = np.round(self.vectors / scale[:, None]).astype(np.int8)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            format=np.asarray(BASE_FORMAT),
            texts=np.asarray(self.texts, dtype=np.str_).reshape(-1),
            labels=np.asarray(self.labels, dtype=np.str_).reshape(-1),
            weights=np.asarray(self.weights, dtype=np.float32),
            vectors=quantised,
            scale=scale.astype(np.float32),
            sources=np.asarray(self.sources, dtype=np.str_).reshape(-1),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> LabelledSet:
        """Read an archive written by `to_bytes`.

        Raises:
            ValueError: If the archive has another format version.
        """
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            if int(data["format"]) != BASE_FORMAT:
                raise ValueError(f"unsupported training-set format {int(data['format'])}")
            vectors = data["vectors"].astype(np.float64) * data["scale"].astype(np.float64)[:, None]
            return cls(
                [str(t) for t in data["texts"]],
                [str(y) for y in data["labels"]],
                [float(w) for w in data["weights"]],
                vectors,
                [str(s) for s in data["sources"]],
            )


def build_vocabulary(texts: Sequence[str], max_terms: int, min_df: int) -> tuple[tuple[str, ...], FloatArray]:
    """The `max_terms` most frequent uni/bigrams (by document frequency) and their smooth IDF.

    Args:
        texts: Prepared training texts.
        max_terms: Vocabulary size cap.
        min_df: Minimum document frequency.

    Returns:
        `(terms, idf)` with `idf[i] = ln((1 + n) / (1 + df_i)) + 1`.
    """
    df: dict[str, int] = {}
    for text in texts:
        for term in set(text_terms(text)):
            df[term] = df.get(term, 0) + 1
    kept = sorted((t for t, n in df.items() if n >= min_df), key=lambda t: (-df[t], t))
    terms = tuple(kept[:max_terms])
    counts = np.asarray([df[t] for t in terms], dtype=np.float64)
    idf = np.log((1.0 + len(texts)) / (1.0 + counts)) + 1.0
    return terms, idf


def design_matrix(
    vectors: npt.ArrayLike, texts: Sequence[str], vocabulary: tuple[str, ...], idf: FloatArray, use_cues: bool
) -> sparse.csr_matrix:
    """The raw feature matrix `[embedding, TF-IDF, cues]` as CSR (the TF-IDF block is sparse).

    Args:
        vectors: Shape `(n, dim)`.
        texts: Length `n`.
        vocabulary: TF-IDF terms in column order (may be empty).
        idf: One IDF per vocabulary term.
        use_cues: Append the `CUE_NAMES` features.

    Returns:
        CSR matrix of shape `(n, dim + len(vocabulary) + (len(CUE_NAMES) if use_cues else 0))`,
        equal to `IntentClassifier.features`.
    """
    matrix = np.asarray(vectors, dtype=np.float64)
    index = {t: i for i, t in enumerate(vocabulary)}
    rows: list[npt.NDArray[np.intp]] = []
    values: list[FloatArray] = []
    cues = np.zeros((len(texts), len(CUE_NAMES)), dtype=np.float64)
    for n, text in enumerate(texts):
        words, cues[n] = analyse(text)
        if vocabulary:
            columns, weights = tfidf_row(words, index, idf)
            rows.append(columns)
            values.append(weights)
    blocks: list[Any] = [sparse.csr_matrix(matrix)]
    if vocabulary:
        indptr = np.cumsum([0] + [len(r) for r in rows])
        indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.intp)
        data = np.concatenate(values) if values else np.zeros(0)
        blocks.append(sparse.csr_matrix((data, indices, indptr), shape=(len(texts), len(vocabulary))))
    if use_cues:
        blocks.append(sparse.csr_matrix(cues))
    return sparse.hstack(blocks, format="csr")


def fit_classifier(
    train: LabelledSet,
    config: ModelConfig,
    temperature: float = 1.0,
    metadata: dict[str, Any] | None = None,
) -> IntentClassifier:
    """Fit the multinomial logistic regression and return it as a numpy-only classifier.

    Args:
        train: Rows to fit, with their weights (a correction weighs more than a shipped row).
        config: Feature blocks and regularisation.
        temperature: Softmax temperature stored in the model (see `fit_temperature`).
        metadata: Provenance to store; `model_version` is set here from the weights.

    Returns:
        The classifier. Classes absent from `train` are absent from it too. When `train` has
        rows of `config.expert_source` and rows of other sources, it carries a gate fitted to tell
        the expert source's rows from the other shipped rows by their embedding, and an expert
        fitted on the expert source's rows plus the `CORRECTION_SOURCE` rows the gate gives it.
    """
    from sklearn.linear_model import LogisticRegression

    classes, coef, intercept, vocabulary, idf = _fit_linear(train, config)
    meta = dict(metadata or {})
    meta.setdefault("config", asdict(config))
    expert, gate = None, np.zeros(0)
    sources = train.sources
    gate_rows = [i for i, s in enumerate(sources) if s != CORRECTION_SOURCE]
    inside = [sources[i] == config.expert_source for i in gate_rows]
    if config.expert_source and any(inside) and not all(inside):
        router = LogisticRegression(C=1.0, max_iter=2000).fit(train.vectors[gate_rows], inside)
        gate = np.append(router.coef_[0], router.intercept_[0]).astype(np.float64)
        # The expert learns from the corrections it will answer for: those the gate gives it
        # more weight than the base model (this also keeps a 5k-correction retrain cheap).
        share = (1.0 / (1.0 + np.exp(-(train.vectors @ gate[:-1] + gate[-1])))) ** GATE_POWER
        expert_rows = [
            i for i, s in enumerate(sources) if s == config.expert_source or (s == CORRECTION_SOURCE and share[i] > 0.5)
        ]
        expert_set = train.subset(expert_rows)
        if len(set(expert_set.labels)) >= 2:
            e_classes, e_coef, e_intercept, e_vocabulary, e_idf = _fit_linear(expert_set, config)
            expert = IntentClassifier(
                e_classes, e_coef, e_intercept, np.zeros(e_coef.shape[1]), np.ones(e_coef.shape[1]),
                e_vocabulary, e_idf, config.use_text,
            )  # fmt: skip
        else:
            gate = np.zeros(0)
    return _classifier(classes, coef, intercept, vocabulary, idf, config.use_text, temperature, meta, expert, gate)


def _fit_linear(
    train: LabelledSet, config: ModelConfig
) -> tuple[tuple[str, ...], FloatArray, FloatArray, tuple[str, ...], FloatArray]:
    """One class-balanced logistic regression over `[embedding, TF-IDF, cues]` with its own
    vocabulary: `(classes in LABELS order, coef, intercept, vocabulary, idf)`."""
    from sklearn.linear_model import LogisticRegression

    if config.use_text:
        vocabulary, idf = build_vocabulary(train.texts, config.vocab_size, config.min_df)
    else:
        vocabulary, idf = (), np.zeros(0)
    x = design_matrix(train.vectors, train.texts, vocabulary, idf, config.use_text)
    lr = LogisticRegression(
        C=config.c, max_iter=3000, tol=config.tol, class_weight="balanced" if config.balanced else None
    )
    lr.fit(x, list(train.labels), sample_weight=np.asarray(train.weights))
    all_coef, all_intercept = lr.coef_, lr.intercept_
    if len(lr.classes_) == 2:  # sklearn fits one weight row for two classes
        all_coef = np.vstack([-lr.coef_[0] / 2, lr.coef_[0] / 2])
        all_intercept = np.asarray([-lr.intercept_[0] / 2, lr.intercept_[0] / 2])
    order = [list(lr.classes_).index(c) for c in LABELS if c in lr.classes_]
    classes = tuple(str(lr.classes_[i]) for i in order)
    return classes, all_coef[order].astype(np.float64), all_intercept[order].astype(np.float64), vocabulary, idf


def _classifier(
    classes: tuple[str, ...],
    coef: FloatArray,
    intercept: FloatArray,
    vocabulary: tuple[str, ...],
    idf: FloatArray,
    use_cues: bool,
    temperature: float,
    meta: dict[str, Any],
    expert: IntentClassifier | None = None,
    gate: FloatArray | None = None,
) -> IntentClassifier:
    """A classifier over raw features (no scaling), versioned by a digest of its weights."""
    parts = [coef, intercept] + (
        [expert.coef, expert.intercept, gate] if expert is not None and gate is not None else []
    )
    digest = hashlib.sha256(b"".join(p.tobytes() for p in parts)).hexdigest()[:8]
    meta["model_version"] = f"{MODEL_VERSION_PREFIX}-{digest}"
    n_features = coef.shape[1]
    return IntentClassifier(
        classes=classes,
        coef=coef,
        intercept=intercept,
        mean=np.zeros(n_features),
        scale=np.ones(n_features),
        vocabulary=vocabulary,
        idf=idf,
        use_cues=use_cues,
        temperature=temperature,
        metadata=meta,
        expert=expert,
        gate=gate if expert is not None and gate is not None else np.zeros(0),
    )


def log_proba(clf: IntentClassifier, vectors: FloatArray, texts: Sequence[str]) -> FloatArray:
    """Log-probabilities with columns in `LABELS` order (classes the model lacks get log 1e-12)."""
    out = np.full((len(texts), len(LABELS)), np.log(1e-12))
    if len(texts):
        probs = clf.predict_proba(vectors, texts)
        for j, label in enumerate(clf.classes):
            out[:, LABELS.index(label)] = np.log(np.clip(probs[:, j], 1e-12, None))
    return out


def f1_by_class(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, float]:
    """F1 per class of `LABELS` present in `y_true` (an absent class is left out)."""
    scores = {}
    for label in LABELS:
        tp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == label and p == label)
        fp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t != label and p == label)
        fn = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == label and p != label)
        if tp + fn:
            scores[label] = 2 * tp / (2 * tp + fp + fn)
    return scores


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] = SCORED_LABELS) -> float:
    """Mean F1 over `labels` that occur in `y_true` (0.0 when none does)."""
    scores = f1_by_class(y_true, y_pred)
    present = [scores[label] for label in labels if label in scores]
    return float(np.mean(present)) if present else 0.0


def stratified_folds(labels: Sequence[str], k: int, seed: int) -> list[int]:
    """Fold number (0..k-1) per row, stratified by label."""
    rng = random.Random(seed)
    fold = [0] * len(labels)
    for label in sorted(set(labels)):
        rows = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(rows)
        for position, row in enumerate(rows):
            fold[row] = position % k
    return fold


def fit_temperature(logp: FloatArray, labels: Sequence[str]) -> float:
    """Softmax temperature minimising the NLL of out-of-fold log-probabilities (grid search)."""
    target = np.asarray([LABELS.index(y) for y in labels])
    best_t, best_nll = 1.0, float("inf")
    for t in np.round(np.arange(0.5, 3.01, 0.05), 2):
        z = logp / t
        z -= z.max(axis=1, keepdims=True)
        nll = float(-(z[np.arange(len(z)), target] - np.log(np.exp(z).sum(axis=1))).mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold figures on the scored rows, and the temperature fitted on them."""

    macro_f1: float
    per_class_f1: dict[str, float]
    temperature: float
    scored_rows: int
    predicted: list[str] = field(default_factory=list)


def cross_validate(
    fixed: LabelledSet, scored: LabelledSet, config: ModelConfig, k: int = 3, seed: int = 0
) -> CrossValidation:
    """K-fold over `scored`; every fold also trains on all of `fixed`.

    Args:
        fixed: Rows always trained on (the shipped rows when a team's corrections are scored).
        scored: Rows folded and scored out of fold.
        config: The model to evaluate.
        k: Number of folds (at most the smallest class size, at least 2).
        seed: Fold assignment seed.

    Returns:
        Macro-F1 over feature_request/bug/question and F1 per class, out of fold, and a softmax
        temperature fitted on the out-of-fold log-probabilities.
    """
    folds = stratified_folds(scored.labels, k, seed)
    logp = np.zeros((len(scored), len(LABELS)))
    for f in range(k):
        train_rows = [i for i in range(len(scored)) if folds[i] != f]
        test_rows = [i for i in range(len(scored)) if folds[i] == f]
        if not test_rows:
            continue
        clf = fit_classifier(fixed + scored.subset(train_rows), config)
        test = scored.subset(test_rows)
        logp[test_rows] = log_proba(clf, test.vectors, test.texts)
    predicted = [LABELS[j] for j in logp.argmax(axis=1)]
    return CrossValidation(
        macro_f1=macro_f1(scored.labels, predicted),
        per_class_f1=f1_by_class(scored.labels, predicted),
        temperature=fit_temperature(logp, scored.labels),
        scored_rows=len(scored),
        predicted=predicted,
    )


def held_back_rows(
    labels: Sequence[str], share: float = HELD_BACK_SHARE, seed: int = 0, eligible: Sequence[bool] | None = None
) -> list[int]:
    """About `share` of the eligible rows, stratified by label, at least one when two or more
    rows are eligible.

    Args:
        labels: One label per row.
        share: Fraction held back.
        seed: Fold assignment seed.
        eligible: Which rows may be held back (all by default); the retrain passes the
            corrections the current model was not trained on, so the comparison is fair.

    Returns:
        Row indices into `labels`, ascending.
    """
    candidates = [i for i in range(len(labels)) if eligible is None or eligible[i]]
    if len(candidates) < 2:
        return []
    folds = stratified_folds([labels[i] for i in candidates], max(2, round(1 / share)), seed)
    rows = [candidates[n] for n, f in enumerate(folds) if f == 0]
    return rows or [candidates[0]]


@dataclass(frozen=True)
class RetrainOutcome:
    """What a retrain produced and whether it should become current."""

    model: IntentClassifier
    accepted: bool
    reason: str
    cv: CrossValidation
    held_back: dict[str, Any]
    corrections_used: int


def retrain(
    base: LabelledSet,
    corrections: LabelledSet,
    current: IntentClassifier,
    *,
    config: ModelConfig | None = None,
    correction_weight: float = CORRECTION_WEIGHT,
    unseen_by_current: Sequence[bool] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> RetrainOutcome:
    """Train a model from shipped rows plus corrections and decide whether it replaces `current`.

    Steps with at least `MIN_CV_CORRECTIONS` corrections: cross-validation over the corrections
    in `correction_folds` folds (every fold also trains on all shipped rows) gives the reported
    figures, the temperature and, at every correction the current model has not seen, a
    candidate answer from a model that never trained on it; candidate and current are compared
    on those (macro-F1 over the classes present, then accuracy); then one final fit on
    everything. With fewer corrections: hold back about a fifth of the unseen ones (stratified),
    fit a candidate without them, cross-validate over the shipped rows, fit the final model.

    Args:
        base: The shipped training rows (weights as shipped).
        corrections: People's corrections (weights are replaced by `correction_weight`).
        current: The model in use, to beat on the held-back corrections.
        config: Model settings; the shipped model's config by default.
        correction_weight: Weight of one correction relative to a shipped row.
        unseen_by_current: Per correction, whether the current model was trained without it;
            only those are held back (a model scored on rows it learned would always win).
            All by default.
        progress: Called with (share done in [0, 1], stage name) between steps.

    Returns:
        The final model, whether it is accepted (no held-back corrections: accepted, there is
        nothing to compare on), why, the cross-validated figures and the held-back comparison.
    """
    config = config or ModelConfig(**{k: v for k, v in current.metadata.get("config", {}).items() if k in _FIELDS})
    config = replace(config, tol=max(config.tol, RETRAIN_TOL))
    report = progress or (lambda share, stage: None)
    weighted = corrections.reweighted(correction_weight)
    # Corrections train the base model, and the expert where the gate sends them; never the gate.
    weighted = LabelledSet(
        weighted.texts, weighted.labels, weighted.weights, weighted.vectors, [CORRECTION_SOURCE] * len(weighted)
    )
    eligible = list(unseen_by_current) if unseen_by_current is not None else [True] * len(weighted)
    held_back: dict[str, Any] = {}
    candidate_pred: list[str] = []
    if len(weighted) >= MIN_CV_CORRECTIONS:
        # Cheap by design: the cross-validation's out-of-fold predictions are the candidate's
        # answers on corrections it never trained on, so no separate held-back fit is needed.
        report(0.1, "cross-validating over the corrections")
        cv = cross_validate(base, weighted, config, k=correction_folds(len(weighted)))
        held = [i for i in range(len(weighted)) if eligible[i]]
        candidate_pred = [cv.predicted[i] for i in held]
    else:
        held = held_back_rows(weighted.labels, eligible=eligible)
        if held:
            report(0.1, "fitting a candidate without the held-back corrections")
            kept = [i for i in range(len(weighted)) if i not in set(held)]
            test = weighted.subset(held)
            candidate_pred = fit_classifier(base + weighted.subset(kept), config).predict(test.vectors, test.texts)[0]
        report(0.4, "cross-validating over the shipped rows")
        cv = cross_validate(weighted, base, config, k=CV_FOLDS)
    held_back["corrections"] = len(held)
    accepted, reason = True, "no held-back corrections to compare on: trained from the shipped data"
    if held:
        test = weighted.subset(held)
        scores = {}
        for name, predicted in (
            ("candidate", candidate_pred),
            ("current", current.predict(test.vectors, test.texts)[0]),
        ):
            accuracy = float(np.mean([p == y for p, y in zip(predicted, test.labels, strict=True)]))
            scores[name] = (macro_f1(test.labels, predicted, LABELS), accuracy)
            held_back[name] = {"macro_f1": round(scores[name][0], 4), "accuracy": round(accuracy, 4)}
        accepted = scores["candidate"] >= scores["current"]
        reason = (
            "beats or ties the current model on the held-back corrections"
            if accepted
            else (
                f"scores worse than the current model on {len(held)} held-back corrections "
                f"(macro-F1 {scores['candidate'][0]:.3f} vs {scores['current'][0]:.3f})"
            )
        )
    report(0.8, "fitting the final model")
    model = fit_classifier(
        base + weighted,
        config,
        temperature=cv.temperature,
        metadata={
            **{k: v for k, v in current.metadata.items() if k in ("trained_on", "licence", "embedding_model")},
            "corrections": len(weighted),
            "correction_weight": correction_weight,
        },
    )
    return RetrainOutcome(model, accepted, reason, cv, held_back, len(weighted))


_FIELDS = frozenset(ModelConfig.__dataclass_fields__)


# --- The team head: a team's corrections on top of a fixed shipped model -----------------------

HEAD_PENALTY = 1.0


def _folded(clf: IntentClassifier) -> tuple[FloatArray, FloatArray]:
    """`clf`'s weights with its feature scaling and temperature folded in, rows in `LABELS`
    order: `(weights (len(LABELS), n_features), bias (len(LABELS),))`; a class the model lacks
    gets zero weights and a bias far below the others (the head can still learn it)."""
    weights = clf.coef / clf.scale / clf.temperature
    bias = (clf.intercept - (clf.mean / clf.scale) @ clf.coef.T) / clf.temperature
    full_w = np.zeros((len(LABELS), clf.coef.shape[1]))
    full_b = np.full(len(LABELS), float(bias.min()) - 10.0)
    for j, label in enumerate(clf.classes):
        full_w[LABELS.index(label)] = weights[j]
        full_b[LABELS.index(label)] = bias[j]
    return full_w, full_b


def balanced_weights(labels: Sequence[str], weights: Sequence[float]) -> FloatArray:
    """Row weights times `n / (classes present * rows of the class)`, as sklearn's "balanced"."""
    counts: dict[str, float] = {}
    for label, w in zip(labels, weights, strict=True):
        counts[label] = counts.get(label, 0.0) + w
    total = sum(counts.values())
    return np.asarray(
        [w * total / (len(counts) * counts[y]) for y, w in zip(labels, weights, strict=True)], dtype=np.float64
    )


def fit_team_head(
    shipped: IntentClassifier,
    corrections: LabelledSet,
    penalty: float = HEAD_PENALTY,
    temperature: float = 1.0,
    metadata: dict[str, Any] | None = None,
    mix_penalty: float = 1.0,
) -> IntentClassifier:
    """Adapt the shipped model to one team's corrections, as one linear model of the same form.

    The shipped model's logits are a fixed offset; on top of them a correction-trained head
    learns (a) a re-mixing of those logits (a `len(LABELS)`-square matrix: a team that files
    questions as bugs moves one into the other) and (b) a change of the weights of every
    feature (embedding, TF-IDF, cues) and of the biases. The loss is class-balanced cross-entropy
    on the corrections plus `penalty / 2` times the squared size of the change, so with few
    corrections the model stays the shipped one and with many it follows the team. Since the
    shipped logits are linear in the features, the result folds into one `IntentClassifier`
    with the shipped vocabulary: inference costs what the shipped model costs.

    Only the corrections are fitted (the shipped rows are in the shipped model already), so a
    retrain costs one pass over the corrections, not over the shipped data.

    Args:
        shipped: The fixed prior model.
        corrections: A team's labelled rows (weights are multiplied in).
        penalty: L2 strength pulling the change towards zero (1.0: the shipped fit's own C).
        temperature: Softmax temperature stored in the result.
        metadata: Provenance to store; `model_version` is set from the weights.

    Returns:
        The adapted classifier, classes in `LABELS` order (all four).
    """
    from scipy.optimize import minimize

    if shipped.expert is not None and not len(corrections):
        return replace(shipped, metadata={**shipped.metadata, **(metadata or {}), "head_penalty": penalty})
    if shipped.expert is not None:
        # Both models get a head on the corrections, as both learn from them in a retrain; the
        # gate and the temperature (applied after the mixture) stay the shipped ones.
        base = replace(shipped, expert=None, gate=np.zeros(0), temperature=1.0)
        head = fit_team_head(base, corrections, penalty, 1.0, metadata, mix_penalty)
        expert = fit_team_head(shipped.expert, corrections, penalty, 1.0, {}, mix_penalty)
        expert = replace(expert, metadata={})
        digest = hashlib.sha256(head.coef.tobytes() + expert.coef.tobytes()).hexdigest()[:8]
        meta = {**head.metadata, "model_version": f"{MODEL_VERSION_PREFIX}-{digest}"}
        return replace(head, expert=expert, gate=shipped.gate, temperature=shipped.temperature, metadata=meta)
    w0, b0 = _folded(shipped)
    k = len(LABELS)
    coef, intercept = w0.copy(), b0.copy()
    if len(corrections):
        x = design_matrix(corrections.vectors, corrections.texts, shipped.vocabulary, shipped.idf, shipped.use_cues)
        prior = np.asarray(x @ w0.T) + b0  # (n, k) shipped logits
        target = np.zeros((len(corrections), k))
        target[np.arange(len(corrections)), [LABELS.index(y) for y in corrections.labels]] = 1.0
        row_w = balanced_weights(corrections.labels, corrections.weights)
        d = x.shape[1]
        xt = x.T.tocsr()

        def unpack(theta: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
            mix = theta[: k * k].reshape(k, k)
            delta = theta[k * k : k * k + d * k].reshape(d, k)
            return mix, delta, theta[k * k + d * k :]

        def loss(theta: FloatArray) -> tuple[float, FloatArray]:
            mix, delta, shift = unpack(theta)
            z = prior + prior @ mix + np.asarray(x @ delta) + shift
            z -= z.max(axis=1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            value = float(-(row_w * (target * log_p).sum(axis=1)).sum()) + 0.5 * float(theta @ (scale * theta))
            residual = (np.exp(log_p) - target) * row_w[:, None]
            grad = np.concatenate(
                [(prior.T @ residual).ravel(), np.asarray(xt @ residual).ravel(), residual.sum(axis=0)]
            )
            return value, grad + scale * theta

        scale = np.full(k * k + d * k + k, penalty)
        scale[: k * k] = mix_penalty
        theta0 = np.zeros(k * k + d * k + k)
        result = minimize(loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
        mix, delta, shift = unpack(result.x)
        coef = ((np.eye(k) + mix).T @ w0) + delta.T
        intercept = b0 @ (np.eye(k) + mix) + shift
    meta = dict(metadata or {})
    meta.setdefault("config", shipped.metadata.get("config", {}))
    meta["head_penalty"] = penalty
    return _classifier(LABELS, coef, intercept, shipped.vocabulary, shipped.idf, shipped.use_cues, temperature, meta)
