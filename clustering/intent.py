"""Item intent: feature_request, bug, question or other, with a confidence.

The classifier is a multinomial logistic regression over the item's 384-d embedding
concatenated with cheap text features (a small TF-IDF vocabulary of word uni/bigrams plus a
handful of cue patterns such as "traceback" or "would be nice"). Inference is pure numpy: the
shipped artefact (`models/intent_v1.npz`, loaded with `allow_pickle=False`) holds the
weights, the vocabulary and IDF, the feature scaling, the class order and the softmax
temperature. `workers/train_intent.py` produces it; `bench/intent.py` measures it.

The artefact is trained on GPL-3.0 data: see `models/NOTICE-intent.md`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

LABELS: tuple[str, ...] = ("feature_request", "bug", "question", "other")
DEFAULT_MODEL_PATH = Path(__file__).parent / "models" / "intent_v1.npz"
ARTEFACT_FORMAT = 1
# Embeddings see at most 256 word pieces, so the text features only need the opening of an
# item; the cap also bounds the per-item cost on 64 KiB bodies.
MAX_TEXT_CHARS = 4000

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

# Cue patterns searched in the lower-cased, truncated text. Their names are stored in the
# artefact so that a model is never applied with a different cue list.
CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("question_mark", re.compile(r"\?")),
    ("ends_with_question_mark", re.compile(r"\?\s*$")),
    (
        "starts_interrogative",
        re.compile(
            r"^\W*(how|what|why|where|when|which|who|is|are|can|could|does|do|did|should"
            r"|will|would|has|have)\b"
        ),
    ),
    ("how_do_i", re.compile(r"\bhow (do|can|should|would|to)\b|\bis (it|there) (a way|possible)")),
    ("crash", re.compile(r"crash|freez|hang(s|ing)?\b|segfault|segmentation fault")),
    ("error", re.compile(r"\berror|\bfail|\bbroken\b|not work|doesn'?t work|does not work")),
    ("exception", re.compile(r"exception|traceback|stack ?trace|\bat [\w$.]+\(|line \d+")),
    (
        "would_be_nice",
        re.compile(
            r"would be (nice|great|useful|helpful|awesome|cool|good)|it'?d be (nice|great|useful)"
            r"|\bi wish\b|would (love|like) (to|a|an|the)\b|\bplease (add|support|consider)"
        ),
    ),
    (
        "feature",
        re.compile(
            r"\bfeature|enhancement|support for\b|\badd (an? |the )?(option|ability|support|way)"
            r"|\ballow (users|us|me|to)\b|\bsuggest|\bproposal|\bidea\b"
        ),
    ),
    (
        "repro",
        re.compile(r"steps to reproduce|expected (behaviou?r|result)|actual (behaviou?r|result)"),
    ),
    ("version", re.compile(r"\bv?\d+\.\d+(\.\d+)?\b")),
    ("code", re.compile(r"```|\w\.\w+\(|[{};]\s*$|=>|::")),
    ("thanks", re.compile(r"\b(thanks|thank you|thx|cheers|appreciate)")),
)
CUE_NAMES: tuple[str, ...] = tuple(name for name, _ in CUES) + ("log_tokens",)


def tokenize(text: str) -> list[str]:
    """Split text into lower-case word tokens.

    Args:
        text: Cleaned item text; it is lower-cased and cut to `MAX_TEXT_CHARS` here.

    Returns:
        Word tokens (letters and digits, with an optional apostrophe suffix such as "don't").
    """
    return _TOKEN_RE.findall(text[:MAX_TEXT_CHARS].lower())


def text_terms(text: str) -> list[str]:
    """Return the word unigrams and bigrams of a text (bigrams joined by one space).

    Args:
        text: Cleaned item text.

    Returns:
        All unigrams followed by all adjacent-pair bigrams, with repeats.
    """
    tokens = tokenize(text)
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]


def cue_features(text: str) -> FloatArray:
    """Compute the cue features of one text.

    Args:
        text: Cleaned item text.

    Returns:
        Array of shape `(len(CUE_NAMES),)`: one 0/1 value per cue pattern, then
        `log1p(token count) / 10`.
    """
    lowered = text[:MAX_TEXT_CHARS].lower()
    values = [1.0 if pattern.search(lowered) else 0.0 for _, pattern in CUES]
    values.append(math.log1p(len(_TOKEN_RE.findall(lowered))) / 10.0)
    return np.asarray(values, dtype=np.float64)


def tfidf_features(texts: Sequence[str], vocabulary: dict[str, int], idf: FloatArray) -> FloatArray:
    """Build L2-normalised, sublinear TF-IDF rows over a fixed vocabulary.

    Args:
        texts: Cleaned item texts, one per row.
        vocabulary: Term (unigram or "a b" bigram) to column index.
        idf: Inverse document frequency per column, shape `(len(vocabulary),)`.

    Returns:
        Dense array of shape `(len(texts), len(vocabulary))`; a text with no known term gets
        an all-zero row.
    """
    out = np.zeros((len(texts), len(vocabulary)), dtype=np.float64)
    for row, text in enumerate(texts):
        counts: dict[int, int] = {}
        for term in text_terms(text):
            column = vocabulary.get(term)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        if not counts:
            continue
        columns = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        weights = tf * idf[columns]
        out[row, columns] = weights / np.linalg.norm(weights)
    return out


@dataclass(frozen=True, eq=False)
class IntentClassifier:
    """Multinomial logistic regression over [embedding, TF-IDF, cues], applied in numpy.

    Build one with `load` (the shipped artefact) or, when training, directly from arrays
    (see `workers/train_intent.py`). An empty `vocabulary` and `use_cues=False` give an
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
        temperature: Softmax temperature fitted on out-of-fold predictions (>1 softens).
        metadata: Provenance and training summary, stored as JSON in the artefact.
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
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
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

    @property
    def model_version(self) -> str:
        """Identifier of the trained artefact, e.g. "intent_v1-3f2a9c1e" (stored with rows)."""
        return str(self.metadata.get("model_version", "intent-untrained"))

    @property
    def embedding_dim(self) -> int:
        """Length of the embedding the classifier expects (384 for all-MiniLM-L6-v2)."""
        extra = len(self.vocabulary) + (len(CUE_NAMES) if self.use_cues else 0)
        return int(self.coef.shape[1]) - extra

    def features(self, vectors: npt.ArrayLike, texts: Sequence[str]) -> FloatArray:
        """Assemble the raw (unscaled) feature matrix.

        Args:
            vectors: Item embeddings, shape `(n, embedding_dim)`, L2-normalised like
                all-MiniLM-L6-v2's output.
            texts: The same items' cleaned texts, length `n`.

        Returns:
            Array of shape `(n, n_features)`.

        Raises:
            ValueError: If the shapes of `vectors` and `texts` disagree with each other or
                with the model.
        """
        matrix = np.asarray(vectors, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.embedding_dim:
            raise ValueError(
                f"expected vectors of shape (n, {self.embedding_dim}), got {matrix.shape}"
            )
        if matrix.shape[0] != len(texts):
            raise ValueError(f"{matrix.shape[0]} vectors but {len(texts)} texts")
        blocks = [matrix]
        if self.vocabulary:
            blocks.append(tfidf_features(texts, self._index, self.idf))
        if self.use_cues:
            cues = np.empty((len(texts), len(CUE_NAMES)), dtype=np.float64)
            for row, text in enumerate(texts):
                cues[row] = cue_features(text)
            blocks.append(cues)
        return np.hstack(blocks) if len(blocks) > 1 else matrix

    def predict_proba(self, vectors: npt.ArrayLike, texts: Sequence[str]) -> FloatArray:
        """Class probabilities, columns in the order of `classes`.

        Args:
            vectors: Item embeddings, shape `(n, embedding_dim)`.
            texts: The same items' cleaned texts, length `n`.

        Returns:
            Array of shape `(n, len(classes))`; rows sum to 1.
        """
        x = (self.features(vectors, texts) - self.mean) / self.scale
        logits = (x @ self.coef.T + self.intercept) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return probs

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
        with path.open("wb") as handle:
            np.savez_compressed(handle, **arrays)

    @classmethod
    def load(cls, path: Path | None = None) -> IntentClassifier:
        """Load a classifier saved by `save`.

        Args:
            path: The `.npz` artefact; defaults to the shipped `models/intent_v1.npz`.

        Returns:
            The classifier, ready to `predict`.

        Raises:
            ValueError: If the artefact has another format version or was trained with a
                different cue list than this module defines.
        """
        with np.load(path or DEFAULT_MODEL_PATH, allow_pickle=False) as data:
            if int(data["format"]) != ARTEFACT_FORMAT:
                raise ValueError(f"unsupported intent artefact format {int(data['format'])}")
            cue_names = tuple(str(n) for n in data["cue_names"])
            if cue_names not in ((), CUE_NAMES):
                raise ValueError("artefact cue features differ from this version of the code")
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
            )


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
        "classifier".

    Raises:
        ValueError: If `hint` is not None and not one of `LABELS`.
    """
    if hint is not None:
        if hint not in LABELS:
            raise ValueError(f"unknown intent hint {hint!r}; expected one of {LABELS}")
        return hint, 1.0, "source"
    return predicted, float(confidence), "classifier"
