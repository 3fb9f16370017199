"""Keywords and short labels for themes, by class-based TF-IDF (c-TF-IDF).

A theme's documents are counted together as one "class document"; a term scores high for a
theme when it is frequent inside that theme and rare across themes (BERTopic's c-TF-IDF:
``tf(t, c) * log(1 + mean_words_per_class / freq(t))``). Stop words and the redaction
placeholders are dropped before counting, so ``<EMAIL>`` never becomes a keyword.
"""

import re
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

PLACEHOLDERS = ("<EMAIL>", "<PHONE>", "<CARD>", "<IBAN>", "<IP>", "<URL>")
_PLACEHOLDER_RE = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS), re.IGNORECASE)
# Contraction stems ("hasn't" -> "hasn") are stop words too: the tokenizer splits at the quote.
_CONTRACTIONS = {"aren", "couldn", "didn", "doesn", "don", "hadn", "hasn", "haven", "isn", "ll"}
_CONTRACTIONS |= {"re", "shouldn", "ve", "wasn", "weren", "won", "wouldn", "im", "ive"}
_STOP_WORDS = sorted(ENGLISH_STOP_WORDS | _CONTRACTIONS)
_TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"
_MAX_LABEL_WORDS = 4


def strip_placeholders(text: str) -> str:
    """Replace the redaction placeholders (``<EMAIL>``, ``<CARD>``...) with a space."""
    return _PLACEHOLDER_RE.sub(" ", text)


def theme_keywords(texts: Sequence[str], labels: NDArray[np.integer], top_n: int = 10) -> dict[int, list[str]]:
    """Rank each theme's most distinctive unigrams and bigrams with c-TF-IDF.

    Args:
        texts: The cleaned item texts, shape ``(n,)``, aligned with ``labels``.
        labels: Theme label per text, shape ``(n,)``; ``-1`` (unassigned) is left out of both
            the output and the term statistics, so noise neither gets keywords nor dilutes them.
        top_n: Keywords per theme. More keywords describe a theme better but the tail of the
            list is increasingly generic.

    Returns:
        ``{label: [keyword, ...]}`` for every label >= 0 that has at least one usable term,
        best first. Ties are broken alphabetically, so the result is deterministic.
    """
    labels = np.asarray(labels)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    theme_ids = np.unique(labels[labels >= 0])
    if theme_ids.size == 0:
        return {}
    rows = np.flatnonzero(labels >= 0)
    vectorizer = CountVectorizer(
        ngram_range=(1, 2),
        stop_words=_STOP_WORDS,
        token_pattern=_TOKEN_PATTERN,
        lowercase=True,
    )
    try:
        doc_counts = vectorizer.fit_transform([strip_placeholders(texts[i]) for i in rows.tolist()])
    except ValueError:  # every text was empty or only stop words
        return {}
    # Count per document, then sum per theme: a bigram never spans two documents.
    theme_of_doc = sparse.csr_matrix(
        (np.ones(rows.size), (np.searchsorted(theme_ids, labels[rows]), np.arange(rows.size))),
        shape=(theme_ids.size, rows.size),
    )
    counts = np.asarray((theme_of_doc @ doc_counts).todense(), dtype=np.float64)
    terms = vectorizer.get_feature_names_out()
    scores = _c_tf_idf(counts)
    keywords: dict[int, list[str]] = {}
    for row, theme_id in enumerate(theme_ids):
        present = np.flatnonzero(scores[row] > 0)
        # lexsort sorts by the last key first: score descending, then term ascending.
        order = present[np.lexsort((terms[present], -scores[row, present]))]
        keywords[int(theme_id)] = [str(t) for t in terms[order[:top_n]]]
    return {k: v for k, v in keywords.items() if v}


def _c_tf_idf(counts: NDArray[np.float64]) -> NDArray[np.float64]:
    """Class-based TF-IDF over a ``(n_classes, n_terms)`` count matrix."""
    term_freq = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    words_per_class = counts.sum() / counts.shape[0]
    idf = np.log1p(words_per_class / np.maximum(counts.sum(axis=0), 1.0))
    result: NDArray[np.float64] = term_freq * idf
    return result


def theme_label(keywords: Sequence[str], representative_texts: Sequence[str] = ()) -> str:
    """Build a short human-readable label from a theme's keywords.

    The best-ranked bigram among the first five keywords leads (a bigram reads better than
    two loose words), then the next best keywords that add a new word follow, up to four
    words in total. Without keywords, the shortest representative text (cut to 60
    characters) is used.

    Args:
        keywords: The theme's keywords, best first (from :func:`theme_keywords`).
        representative_texts: Texts of the theme's most central items; only a fallback.

    Returns:
        A label such as ``"card arrive, delivery, track"``; deterministic for the same input.
    """
    if keywords:
        lead = next((k for k in keywords[:5] if " " in k), keywords[0])
        parts = [lead]
        used = set(lead.split())
        for keyword in keywords:
            words = keyword.split()
            if keyword == lead or used.issuperset(words):
                continue
            if len(used) + len(words) > _MAX_LABEL_WORDS:
                break
            parts.append(keyword)
            used.update(words)
        return ", ".join(parts)
    texts = [" ".join(strip_placeholders(t).split()) for t in representative_texts]
    texts = [t for t in texts if t]
    if texts:
        shortest = min(texts, key=lambda t: (len(t), t))
        return shortest if len(shortest) <= 60 else shortest[:59].rstrip() + "…"
    return "unlabelled theme"


def label_themes(
    texts: Sequence[str],
    labels: NDArray[np.integer],
    representatives: Mapping[int, Sequence[int]],
    top_n: int = 10,
) -> dict[int, tuple[str, list[str]]]:
    """Keywords and a label for every theme in one call.

    Args:
        texts: Cleaned texts, shape ``(n,)``.
        labels: Theme label per text, shape ``(n,)``, ``-1`` for unassigned.
        representatives: ``{label: [row indices]}`` from ``cluster.representatives``.
        top_n: Keywords per theme.

    Returns:
        ``{label: (label_text, keywords)}`` for every label >= 0.
    """
    keywords = theme_keywords(texts, labels, top_n=top_n)
    result: dict[int, tuple[str, list[str]]] = {}
    for theme_id in (int(v) for v in np.unique(np.asarray(labels)) if v >= 0):
        words = keywords.get(theme_id, [])
        rep_texts = [texts[i] for i in representatives.get(theme_id, [])]
        result[theme_id] = (theme_label(words, rep_texts), words)
    return result
