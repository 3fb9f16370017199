"""Item intent: feature_request, bug, question or other, with a confidence.

The classifier is a multinomial logistic regression over the item's 384-d embedding
concatenated with cheap text features (a small TF-IDF vocabulary of word uni/bigrams plus a
handful of cue patterns such as "traceback" or "would be nice"). Inference is pure numpy: an
artefact (`.npz`, loaded with `allow_pickle=False`) holds the weights, the vocabulary and IDF,
the feature scaling, the class order and the softmax temperature. `clustering/intent_train.py`
fits one (offline in `training/intent.py` for the shipped models, in an install by the retrain
job); `bench/intent.py` measures them.

A model may carry a second logistic regression of the same form, an *expert* for issue-tracker
text, and a *gate* (a logistic regression over the embedding alone) that says how much an item
looks like that text: the probabilities are `(1 - g) * base + g * expert` with `g = gate **
GATE_POWER`, then the temperature. The shipped `gpl` model has one because GitHub issues and app
reviews use the same words for different things ("?" in a review is rarely a how-to question), and
one linear model over both loses 0.02 macro-F1 on the issues (bench/RESULTS.md, #16, session 6).

The default shipped model is GPL-3.0 (trained partly on GPL-3.0 data), the other one MIT and
CC BY 4.0: see `models/NOTICE-intent.md`.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

LABELS: tuple[str, ...] = ("feature_request", "bug", "question", "other")
MODELS_DIR = Path(__file__).parent / "models"
# "gpl": trained with GPL-3.0 GitHub issues (the default; best on issue-tracker text);
# "permissive": MIT and CC BY 4.0 rows only. See models/NOTICE-intent.md.
VARIANTS = ("gpl", "permissive")
DEFAULT_VARIANT = "gpl"


def shipped_paths(variant: str = DEFAULT_VARIANT, models_dir: Path | None = None) -> tuple[Path, Path]:
    """The shipped model of a variant and the training rows every retrain starts from.

    Args:
        variant: One of `VARIANTS`.
        models_dir: Where the artefacts are; the package's `models/` by default.

    Returns:
        `(model_path, base_path)`: `intent_v2_<variant>.npz` and `intent_v2_<variant>_base.npz`.

    Raises:
        ValueError: If `variant` is unknown.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown intent model variant {variant!r}; expected one of {VARIANTS}")
    folder = models_dir or MODELS_DIR
    return folder / f"intent_v2_{variant}.npz", folder / f"intent_v2_{variant}_base.npz"


DEFAULT_MODEL_PATH = shipped_paths()[0]
# The gate's probability is raised to this power before mixing, so that only text the gate is
# sure about leaves the base model. Chosen by cross-validation (bench/RESULTS.md, #16 session 6):
# with apps left out of training, 4 keeps their feature-request F1 (-0.004 to +0.003) where 1 and
# 2 lose up to 0.013 and 0.008; on GitHub issues 4 gains nearly as much as 2 (+0.021, +0.022).
GATE_POWER = 4
ARTEFACT_FORMAT = 1
# Embeddings see at most 256 word pieces, so the text features only need the opening of an
# item; the cap also bounds the per-item cost on 64 KiB bodies.
MAX_TEXT_CHARS = 4000

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_VERSION_RE = re.compile(r"\d\.\d")
_CODE_RE = re.compile(r"```|\w\.\w+\(|=>|::|\(\)")
_INTERROGATIVES = frozenset(
    "how what why where when which who is are can could does do did should will would has have".split()
)
# Cues matched against the set of a text's word uni-, bi- and trigrams: set lookups, because
# regex alternations over 4,000 characters cost ~0.2 ms each.
_TERM_CUES: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "how_do_i",
        frozenset({"how do", "how can", "how to", "how should", "is there", "is it possible"}),
    ),
    (
        "crash",
        frozenset(
            "crash crashes crashed crashing freeze freezes frozen freezing hang hangs hanging"
            " segfault segmentation".split()
        ),
    ),
    (
        "error",
        frozenset(
            {"error", "errors", "fail", "fails", "failed", "failing", "failure", "broken"}
            | {"not work", "not working", "doesn't work", "won't work", "didn't work"}
        ),
    ),
    (
        "exception",
        frozenset({"exception", "exceptions", "traceback", "stacktrace", "stack trace", "thrown"}),
    ),
    (
        "would_be_nice",
        frozenset(
            {"be nice", "be great", "be useful", "be helpful", "be awesome", "be cool", "i wish"}
            | {"would love", "would like", "please add", "please support", "please consider"}
            | {"it'd be", "great if", "nice if", "wish there", "wish you", "wish it", "should add"}
            | {"please make", "you add", "make it possible", "can you make", "could you make"}
        ),
    ),
    (
        "feature",
        frozenset(
            {"feature", "features", "enhancement", "support for", "add support", "add option"}
            | {"add an", "add the", "add ability", "allow users", "allow us", "allow me"}
            | {"suggest", "suggestion", "proposal", "propose", "idea", "request"}
        ),
    ),
    (
        "repro",
        frozenset(
            {"to reproduce", "expected behavior", "expected behaviour", "expected result"}
            | {"actual behavior", "actual behaviour", "actual result", "repro"}
        ),
    ),
    ("thanks", frozenset({"thanks", "thank you", "thx", "cheers", "appreciate", "appreciated"})),
)
# Stored in the artefact so that a model is never applied with a different cue list.
CUE_NAMES: tuple[str, ...] = (
    ("question_mark", "ends_with_question_mark", "starts_interrogative")
    + tuple(name for name, _ in _TERM_CUES)
    + ("version_number", "code", "log_tokens")
)


def tokenize(text: str) -> list[str]:
    """Split text into lower-case word tokens.

    Args:
        text: Cleaned item text; it is lower-cased and cut to `MAX_TEXT_CHARS` here.

    Returns:
        Word tokens (letters and digits, with an optional apostrophe suffix such as "don't").
    """
    return _TOKEN_RE.findall(text[:MAX_TEXT_CHARS].lower())


def analyse(text: str) -> tuple[list[str], FloatArray]:
    """The text's word uni/bigrams and its cue feature values (`CUE_NAMES` order, then length)."""
    head = text[:MAX_TEXT_CHARS].lower()
    tokens = _TOKEN_RE.findall(head)
    terms = tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]
    # Cues also match word triples ("is it possible" asks, "make it possible" requests).
    present = set(terms).union(f"{a} {b} {c}" for a, b, c in zip(tokens, tokens[1:], tokens[2:], strict=False))
    cues = [
        "?" in head,
        head.rstrip().endswith("?"),
        bool(tokens) and tokens[0] in _INTERROGATIVES,
        *(not present.isdisjoint(words) for _, words in _TERM_CUES),
        _VERSION_RE.search(head) is not None,
        _CODE_RE.search(head) is not None,
    ]
    values = np.asarray(cues, dtype=np.float64)
    return terms, np.append(values, math.log1p(len(tokens)) / 10.0)


def text_terms(text: str) -> list[str]:
    """Return the word unigrams and bigrams of a text (bigrams joined by one space).

    Args:
        text: Cleaned item text.

    Returns:
        All unigrams followed by all adjacent-pair bigrams, with repeats.
    """
    return analyse(text)[0]


def tfidf_row(
    terms: Sequence[str], vocabulary: dict[str, int], idf: FloatArray
) -> tuple[npt.NDArray[np.intp], FloatArray]:
    """Columns and L2-normalised (1 + log tf) * idf weights of the vocabulary terms present."""
    counts: dict[int, int] = {}
    for term in terms:
        column = vocabulary.get(term)
        if column is not None:
            counts[column] = counts.get(column, 0) + 1
    columns = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
    tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
    weights = tf * idf[columns]
    if len(counts):
        weights /= np.linalg.norm(weights)
    return columns, weights


@dataclass(frozen=True, eq=False)
class IntentClassifier:
    """Multinomial logistic regression over [embedding, TF-IDF, cues], applied in numpy.

    Build one with `load` (the shipped artefact) or, when training, directly from arrays
    (see `clustering/intent_train.py`). An empty `vocabulary` and `use_cues=False` give an
    embedding-only model.

    Attributes:
        classes: Class names in column order of `coef`.
        coef: Weights, shape `(n_classes, n_features)`.
        intercept: Biases, shape `(n_classes,)`.
        mean: Subtracted from the raw feature vector before `coef`, shape `(n_features,)`.
        scale: Divides the centred feature vector, shape `(n_features,)`.
        vocabulary: TF-IDF terms in column order (may be empty).
        idf: Inverse document frequency per vocabulary term.
        use_cues: Whether the `CUE_NAMES` features are appended.
        temperature: Softmax temperature fitted on out-of-fold predictions (>1 softens),
            applied to the log of the (mixed) probabilities.
        metadata: Provenance and training summary, stored as JSON in the artefact.
        expert: Optional second model for issue-tracker text (same embedding, its own
            vocabulary, temperature 1, classes a subset of `classes`, no expert of its own).
        gate: With an expert, `embedding_dim + 1` numbers: the gate's weights and bias over the
            embedding; empty otherwise.
    """

    classes: tuple[str, ...]
    coef: FloatArray
    intercept: FloatArray
    mean: FloatArray
    scale: FloatArray
    vocabulary: tuple[str, ...] = ()
    idf: FloatArray = field(default_factory=lambda: np.zeros(0))
    use_cues: bool = False
    temperature: float = 1.0
    metadata: dict[str, Any] = field(default_factory=dict)
    expert: IntentClassifier | None = None
    gate: FloatArray = field(default_factory=lambda: np.zeros(0))
    _index: dict[str, int] = field(init=False, repr=False)
    _w_embedding: FloatArray = field(init=False, repr=False)
    _w_terms: FloatArray = field(init=False, repr=False)
    _w_cues: FloatArray = field(init=False, repr=False)
    _bias: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Validate the array shapes and precompute the inference weights."""
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.vocabulary)})
        n_features = self.coef.shape[1]
        if self.coef.shape[0] != len(self.classes) or self.intercept.shape != (len(self.classes),):
            raise ValueError("coef/intercept do not match the number of classes")
        if self.mean.shape != (n_features,) or self.scale.shape != (n_features,):
            raise ValueError("mean/scale do not match the number of features")
        if self.idf.shape != (len(self.vocabulary),):
            raise ValueError("idf does not match the vocabulary")
        if unknown := set(self.classes) - set(LABELS):
            raise ValueError(f"unknown intent classes {sorted(unknown)}")
        if self.expert is not None:
            if self.expert.expert is not None or not set(self.expert.classes) <= set(self.classes):
                raise ValueError("an expert must have no expert and only classes of the base model")
            if self.gate.shape != (self.embedding_dim + 1,) or self.expert.embedding_dim != self.embedding_dim:
                raise ValueError("the gate and the expert must match the embedding")
        elif self.gate.size:
            raise ValueError("a gate without an expert")
        # Fold the scaling into the weights, (x - m) / s @ W.T + b == x @ (W / s).T + b', so
        # inference touches only the non-zero TF-IDF columns instead of a dense row.
        weights = self.coef / self.scale
        bias = self.intercept - (self.mean / self.scale) @ self.coef.T
        d, v = self.embedding_dim, len(self.vocabulary)
        object.__setattr__(self, "_w_embedding", np.ascontiguousarray(weights[:, :d].T))
        object.__setattr__(self, "_w_terms", np.ascontiguousarray(weights[:, d : d + v].T))
        object.__setattr__(self, "_w_cues", np.ascontiguousarray(weights[:, d + v :].T))
        object.__setattr__(self, "_bias", bias)

    @property
    def model_version(self) -> str:
        """Identifier of the trained artefact, e.g. "intent_v2-3f2a9c1e" (stored with rows)."""
        return str(self.metadata.get("model_version", "intent-untrained"))

    @property
    def embedding_dim(self) -> int:
        """Length of the embedding the classifier expects (384 for all-MiniLM-L6-v2)."""
        extra = len(self.vocabulary) + (len(CUE_NAMES) if self.use_cues else 0)
        return int(self.coef.shape[1]) - extra

    def _check(self, vectors: npt.ArrayLike, texts: Sequence[str]) -> FloatArray:
        matrix = np.asarray(vectors, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.embedding_dim:
            raise ValueError(f"expected vectors of shape (n, {self.embedding_dim}), got {matrix.shape}")
        if matrix.shape[0] != len(texts):
            raise ValueError(f"{matrix.shape[0]} vectors but {len(texts)} texts")
        return matrix

    def features(self, vectors: npt.ArrayLike, texts: Sequence[str]) -> FloatArray:
        """Assemble the raw (unscaled) dense feature matrix, as used in training.

        Args:
            vectors: Item embeddings, shape `(n, embedding_dim)`, L2-normalised like
                all-MiniLM-L6-v2's output.
            texts: The same items' cleaned texts, length `n`.

        Returns:
            Array of shape `(n, n_features)`: embedding, then TF-IDF, then cues.

        Raises:
            ValueError: If the shapes of `vectors` and `texts` disagree with each other or
                with the model.
        """
        matrix = self._check(vectors, texts)
        if not self.vocabulary and not self.use_cues:
            return matrix
        terms = np.zeros((len(texts), len(self.vocabulary)), dtype=np.float64)
        cues = np.zeros((len(texts), len(CUE_NAMES)), dtype=np.float64)
        for row, text in enumerate(texts):
            words, cues[row] = analyse(text)
            if self.vocabulary:
                columns, weights = tfidf_row(words, self._index, self.idf)
                terms[row, columns] = weights
        return np.hstack([matrix, terms] + ([cues] if self.use_cues else []))

    def predict_proba(self, vectors: npt.ArrayLike, texts: Sequence[str]) -> FloatArray:
        """Class probabilities, columns in the order of `classes`.

        Without an expert, equal (to rounding) to a softmax over `((features - mean) / scale)
        @ coef.T + intercept`, divided by `temperature`, but computed sparsely. With one, the
        base and expert probabilities are mixed by the gate first (see the module docstring).

        Args:
            vectors: Item embeddings, shape `(n, embedding_dim)`.
            texts: The same items' cleaned texts, length `n`.

        Returns:
            Array of shape `(n, len(classes))`; rows sum to 1.

        Raises:
            ValueError: If the shapes of `vectors` and `texts` disagree.
        """
        matrix = self._check(vectors, texts)
        analysed = [analyse(text) for text in texts] if self.vocabulary or self.use_cues or self.expert else []
        if self.expert is None:
            return _softmax(self._logits(matrix, analysed) / self.temperature)
        probs = _softmax(self._logits(matrix, analysed))
        gate = 1.0 / (1.0 + np.exp(-(matrix @ self.gate[:-1] + self.gate[-1])))
        share = (gate**GATE_POWER)[:, None]
        expert = np.zeros_like(probs)
        expert[:, [self.classes.index(c) for c in self.expert.classes]] = _softmax(
            self.expert._logits(matrix, analysed) / self.expert.temperature
        )
        mixed = (1.0 - share) * probs + share * expert
        return _softmax(np.log(np.clip(mixed, 1e-300, None)) / self.temperature)

    def _logits(self, matrix: FloatArray, analysed: Sequence[tuple[list[str], FloatArray]]) -> FloatArray:
        """Logits before the temperature, from the embeddings and each text's `analyse` output."""
        logits = matrix @ self._w_embedding + self._bias
        if self.vocabulary or self.use_cues:
            for row, (words, cues) in enumerate(analysed):
                if self.vocabulary:
                    columns, weights = tfidf_row(words, self._index, self.idf)
                    logits[row] += weights @ self._w_terms[columns]
                if self.use_cues:
                    logits[row] += cues @ self._w_cues
        return logits

    def predict(self, vectors: npt.ArrayLike, texts: Sequence[str]) -> tuple[list[str], FloatArray]:
        """Predict one intent per item.

        Args:
            vectors: Item embeddings, shape `(n, embedding_dim)`, already computed by the
                worker.
            texts: The same items' cleaned texts, length `n`.

        Returns:
            `(labels, confidences)`: the most probable class per item and its probability,
            an array of shape `(n,)` with values in [0, 1].

        Examples:
            >>> clf = IntentClassifier.load()
            >>> labels, confidence = clf.predict(vectors, texts)  # doctest: +SKIP
        """
        probs = self.predict_proba(vectors, texts)
        best = probs.argmax(axis=1)
        return [self.classes[i] for i in best], probs[np.arange(len(best)), best]

    def save(self, path: Path) -> None:
        """Write the classifier as an `.npz` archive of plain arrays (no pickle).

        Args:
            path: Destination file; its parent directory must exist.
        """
        with path.open("wb") as handle:
            self._write(handle)

    def to_bytes(self) -> bytes:
        """The same archive as `save`, as bytes (stored in Postgres by the retrain job)."""
        buffer = io.BytesIO()
        self._write(buffer)
        return buffer.getvalue()

    def _write(self, handle: BinaryIO) -> None:
        arrays: dict[str, Any] = {
            "format": np.asarray(ARTEFACT_FORMAT),
            "classes": np.asarray(self.classes, dtype=np.str_),
            "coef": self.coef,
            "intercept": self.intercept,
            "mean": self.mean,
            "scale": self.scale,
            "vocabulary": np.asarray(self.vocabulary, dtype=np.str_).reshape(-1),
            "idf": self.idf,
            "cue_names": np.asarray(CUE_NAMES if self.use_cues else (), dtype=np.str_).reshape(-1),
            "temperature": np.asarray(self.temperature),
            "metadata": np.asarray(json.dumps(self.metadata, sort_keys=True)),
        }
        if self.expert is not None:
            expert = self.expert
            arrays |= {
                "gate": self.gate,
                "expert_classes": np.asarray(expert.classes, dtype=np.str_),
                "expert_coef": expert.coef,
                "expert_intercept": expert.intercept,
                "expert_mean": expert.mean,
                "expert_scale": expert.scale,
                "expert_vocabulary": np.asarray(expert.vocabulary, dtype=np.str_).reshape(-1),
                "expert_idf": expert.idf,
                "expert_use_cues": np.asarray(expert.use_cues),
                "expert_temperature": np.asarray(expert.temperature),
            }
        np.savez_compressed(handle, **arrays)

    @classmethod
    def load(cls, path: Path | None = None) -> IntentClassifier:
        """Load a classifier saved by `save`.

        Args:
            path: The `.npz` artefact; defaults to the shipped `DEFAULT_MODEL_PATH`.

        Returns:
            The classifier, ready to `predict`.

        Raises:
            ValueError: If the artefact has another format version or was trained with a
                different cue list than this module defines.
        """
        with (path or DEFAULT_MODEL_PATH).open("rb") as handle:
            return cls._read(handle)

    @classmethod
    def from_bytes(cls, blob: bytes) -> IntentClassifier:
        """Load a classifier from `to_bytes` output (same checks as `load`)."""
        return cls._read(io.BytesIO(blob))

    @classmethod
    def _read(cls, handle: BinaryIO) -> IntentClassifier:
        with np.load(handle, allow_pickle=False) as data:
            if int(data["format"]) != ARTEFACT_FORMAT:
                raise ValueError(f"unsupported intent artefact format {int(data['format'])}")
            cue_names = tuple(str(n) for n in data["cue_names"])
            if cue_names not in ((), CUE_NAMES):
                raise ValueError("artefact cue features differ from this version of the code")
            expert = None
            if "gate" in data.files:  # artefacts before #16 session 6 have no expert
                expert = cls(
                    classes=tuple(str(c) for c in data["expert_classes"]),
                    coef=data["expert_coef"].astype(np.float64),
                    intercept=data["expert_intercept"].astype(np.float64),
                    mean=data["expert_mean"].astype(np.float64),
                    scale=data["expert_scale"].astype(np.float64),
                    vocabulary=tuple(str(t) for t in data["expert_vocabulary"]),
                    idf=data["expert_idf"].astype(np.float64),
                    use_cues=bool(data["expert_use_cues"]),
                    temperature=float(data["expert_temperature"]),
                )
            return cls(
                classes=tuple(str(c) for c in data["classes"]),
                coef=data["coef"].astype(np.float64),
                intercept=data["intercept"].astype(np.float64),
                mean=data["mean"].astype(np.float64),
                scale=data["scale"].astype(np.float64),
                vocabulary=tuple(str(t) for t in data["vocabulary"]),
                idf=data["idf"].astype(np.float64),
                use_cues=bool(cue_names),
                temperature=float(data["temperature"]),
                metadata=json.loads(str(data["metadata"])),
                expert=expert,
                gate=data["gate"].astype(np.float64) if expert is not None else np.zeros(0),
            )


def _softmax(logits: FloatArray) -> FloatArray:
    """Row-wise softmax (a new array)."""
    z = logits - logits.max(axis=1, keepdims=True)
    probs: FloatArray = np.exp(z)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs


def resolve_intent(hint: str | None, predicted: str, confidence: float) -> tuple[str, float, str]:
    """Combine a source's own intent hint with the classifier's prediction.

    A hint (already mapped from e.g. a Jira issue type or a GitHub label to one of `LABELS`
    elsewhere) is the item author's or an agent's decision, so it wins outright.

    Args:
        hint: One of `LABELS`, or None when the source gives no hint.
        predicted: The classifier's label for the item.
        confidence: The classifier's probability for `predicted`, in [0, 1].

    Returns:
        `(intent, confidence, decided_by)` with `decided_by` "source" (confidence 1.0) or
        "model".

    Raises:
        ValueError: If `hint` is not None and not one of `LABELS`.
    """
    if hint is not None:
        if hint not in LABELS:
            raise ValueError(f"unknown intent hint {hint!r}; expected one of {LABELS}")
        return hint, 1.0, "source"
    return predicted, float(confidence), "model"
