"""Keywords and short human labels for themes, from the items' own phrases.

Keywords: a theme's documents are counted together as one "class document"; a term scores high
for a theme when it is frequent inside that theme and rare across themes (BERTopic's c-TF-IDF:
``tf(t, c) * log(1 + mean_words_per_class / freq(t))``).

Labels ("Card not arrived", "Set alarm", "Top up failed"): a label is a phrase the items
write. Candidates are contiguous pieces (1-4 words) of each text with its stop words dropped:
"my card has not arrived" gives "card not arrived", "change my pin" gives "change pin". A
piece never spans a clause mark or a clause word ("but", "when"), nor more than two dropped
stop words or numbers in a row, so its words stood together in the text. Negations are kept and
spelled "not"; particles are kept after a content word ("top up", "log out"). A phrase scores
by c-TF-IDF over items, weighted by centrality:

- tf: the share of the theme's items that contain it, each item weighted by its cosine to
  the theme's centroid when vectors are given (central items speak for the theme);
- idf: ``log(1 + mean_items_per_theme / items_with_the_phrase)``, so a phrase every theme
  uses names none of them.

A phrase of two or more words is preferred to a single word whenever one recurs in the
theme (in at least two items) and scores at least half as well as the best word; otherwise the
label is the best word in its best phrase. A longer phrase that extends the label replaces it
while it scores at least half as well. A theme's further options are ranked by maximal
marginal relevance, so the next one says something else.

When the model that made the vectors is given, these candidates (the best eight) are then
ordered by the cosine of each phrase's own vector to the theme's centroid: c-TF-IDF proposes
what is distinctive, closeness in meaning chooses what the items are about ("Transfer failed"
over "Transfer account", "Replacement card" over "Fast new").

Handles (@name), URLs, e-mail-like and code tokens (``com.amazonaws.Foo``, ``org_junit``,
``camelCase``) and the redaction placeholders are removed before counting. A label never
repeats a (stemmed) word, and sibling labels are unique: a theme whose best phrase a sibling
already took gets its next best.

Parent labels (:func:`area_labels`) name the area: the phrase that most of the parent's leaf
labels share ("Top up" over "Top up failed", "Top up limit", "Auto top up"), else the
parent's own best phrase as above.
"""

import functools
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

# Texts in, unit rows out: `Embedder.embed` of the model that made the theme vectors.
EmbedTexts = Callable[[Sequence[str]], NDArray[np.float32]]

PLACEHOLDERS = ("<EMAIL>", "<PHONE>", "<CARD>", "<IBAN>", "<IP>", "<URL>")
_PLACEHOLDER_RE = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS), re.IGNORECASE)
# Whole whitespace-separated tokens that are not words: URLs, @handles, e-mail addresses, and
# code (dotted/underscored/slashed names, camelCase, calls and brackets, file paths).
_NOISE_TOKEN_RE = re.compile(
    r"""(?x)
    \S*(?:https?://|www\.)\S*          # URLs
    | \S*@\S+                          # @handles, e-mail addresses
    | \S*\w[._/\\:]\w\S*              # com.amazonaws.S3, org_junit, a/b/c, std::vector
    | \S*[a-z][A-Z]\S*                 # camelCase
    | \S*[(){}\[\]<>=;$#]\S*           # calls, brackets, operators, shell
    """
)
# Something every branch above needs ("://", "www.", "@", a joined mark, camelCase, a bracket):
# 99 % of support texts have none, and this search costs a fifth of the substitution.
_MAY_HOLD_NOISE_RE = re.compile(r"://|www\.|@|[._/\\:]\w|[a-z][A-Z]|[(){}\[\]<>=;$#]")
# Negations, with a straight or curly apostrophe or none at all ("isnt", "doesnt", "cant").
_NEGATION_RE = re.compile(
    r"\b(?:cannot|can[’']?t|won[’']?t|\w+n[’']t|(?:is|are|was|were|do|does|did|has|have|had|could|would|should)nt)\b",
    re.IGNORECASE,
)
_NEGATIONS = frozenset({"not", "no", "never"})
# Contraction stems ("hasn't" -> "hasn") are stop words too: the tokenizer splits at the quote.
_CONTRACTIONS = {"aren", "couldn", "didn", "doesn", "don", "hadn", "hasn", "haven", "isn", "ll"}
_CONTRACTIONS |= {"re", "shouldn", "ve", "wasn", "weren", "won", "wouldn", "im", "ive", "dont", "cant"}
# Words that carry no theme: greetings, politeness, and verbs of wanting, having, asking or
# telling what one did ("I tried", "I went", "I saw").
FILLER = frozenset(
    """able actually anyone bought buy day days did does doing dont got gets getting get going
    gonna good hello help hey hi just know let like lot make need needed needs ok okay please pls
    really regards saw seeing seen sure tell thank thanks think thing things thought tried tries try
    trying use used using want wanted wants way went yes""".split()
)
# scikit-learn's stop list holds some words that name support issues ("top up", "wrong amount",
# "change name", "phone bill"); they are content words here.
_CONTENT_WORDS = frozenset(
    """amount bill bottom call detail empty fill fire front full interest move name part show side
    system top""".split()
)
_STOP_WORDS = sorted((ENGLISH_STOP_WORDS - _CONTENT_WORDS) | _CONTRACTIONS | FILLER)
_LABEL_STOP = frozenset(_STOP_WORDS) - _NEGATIONS
# Particles of phrasal verbs ("top up", "log out", "turn off", "money back"): part of a label
# right after a content word, a stop word anywhere else.
_PARTICLES = frozenset({"up", "down", "off", "out", "back"})
# A phrase never spans a sentence or clause: it stops at these marks and at the words that
# open a clause ("top up my card urgently but my card keeps getting declined" is two).
_CLAUSE_RE = re.compile(r"[.,;:!?\n]+")
_CLAUSE_WORDS = frozenset(
    """although because but how if since though unless until what when whenever where
    whether which while who whom whose why""".split()
)
# A word: two or more characters that are not space, digits or punctuation (ASCII, general,
# CJK and full-width). Letters with combining marks (Thai, Devanagari) stay one word, which
# ``\w`` would cut apart.
_TOKEN_PATTERN = r"[^\s!-/:-@\[-`{-~\d_\u2000-\u206f\u3000-\u303f\uff00-\uff20]{2,}"
_WORD_RE = re.compile(_TOKEN_PATTERN)
# Within a phrase a number counts as a dropped word: "answer to 12 345 678 plus" has no phrase.
_RUN_TOKEN_RE = re.compile(rf"{_TOKEN_PATTERN}|\d+")
_MAX_PHRASE_WORDS = 4
_MAX_GAP = 2  # stop words dropped inside a phrase ("card has not arrived", "change my pin")
_LONGER_PHRASE_SHARE = 0.5  # a longer phrase wins while it scores at least this share
_MMR_DIVERSITY = 0.5  # weight of overlap with the options already listed, against the score


def strip_placeholders(text: str) -> str:
    """Replace the redaction placeholders (``<EMAIL>``, ``<CARD>``...) with a space."""
    return _PLACEHOLDER_RE.sub(" ", text)


def clean_for_terms(text: str) -> str:
    """The text without placeholders, URLs, handles and code tokens (whole tokens dropped)."""
    text = strip_placeholders(text)
    return _NOISE_TOKEN_RE.sub(" ", text) if _MAY_HOLD_NOISE_RE.search(text) else text


def _is_consonant(word: str, i: int) -> bool:
    if word[i] in "aeiou":
        return False
    if word[i] == "y":  # a consonant at the start or after a vowel ("yes", "play"), else a vowel
        return i == 0 or not _is_consonant(word, i - 1)
    return True


def _measure(word: str) -> int:
    """Porter's *m*: how many vowel-consonant sequences ``word`` has ("tr" 0, "trouble" 1)."""
    pattern = "".join("c" if _is_consonant(word, i) else "v" for i in range(len(word)))
    return len(re.findall("v+c+", pattern))


def _has_vowel(word: str) -> bool:
    return any(not _is_consonant(word, i) for i in range(len(word)))


def _ends_cvc(word: str) -> bool:
    """Consonant, vowel, consonant at the end, the last not w, x or y ("hop", not "show")."""
    n = len(word)
    return (
        n >= 3
        and _is_consonant(word, n - 3)
        and not _is_consonant(word, n - 2)
        and _is_consonant(word, n - 1)
        and word[-1] not in "wxy"
    )


@functools.lru_cache(maxsize=1 << 16)  # pure, and a corpus repeats few thousand words
def stem(word: str) -> str:
    """The inflection stem of a lower-case English word: plural, past and -ing forms meet.

    Porter's steps 1 and 5 (plural -s, -ed, -ing, a final -y, a final -e, a doubled l), applied
    in order to one word, so every form of a word lands on one stem: "meeting" and "meetings"
    ("meet"), "charge", "charges" and "charged" ("charg"), "cancelled" and "canceled"
    ("cancel"), "verify" and "verifying" ("verifi"). Derivations ("verification") are left
    alone. Words in other scripts pass through unchanged.
    """
    if len(word) <= 2:
        return word
    if word.endswith(("sses", "ies")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):  # "status", "analysis"
        word = word[:-1]
    if word.endswith("eed"):
        if _measure(word[:-3]) > 0:  # "agreed" -> "agree", but "speed" stays
            word = word[:-1]
    else:
        for suffix in ("ed", "ing"):
            base = word[: -len(suffix)]
            if word.endswith(suffix) and _has_vowel(base):
                word = base
                if word.endswith(("at", "bl", "iz")):  # "rated" -> "rate"
                    word += "e"
                elif (
                    len(word) > 1
                    and word[-1] == word[-2]
                    and _is_consonant(word, len(word) - 1)
                    and word[-1] not in "lsz"
                ):
                    word = word[:-1]  # "topped" -> "top"
                elif _measure(word) == 1 and _ends_cvc(word):  # "hoping" -> "hope"
                    word += "e"
                break
    if word.endswith("y") and _has_vowel(word[:-1]):
        word = word[:-1] + "i"
    if word.endswith("e"):  # the e goes unless it keeps a short word apart ("rate", "rat")
        m = _measure(word[:-1])
        if m > 1 or (m == 1 and not _ends_cvc(word[:-1])):
            word = word[:-1]
    if word.endswith("ll") and _measure(word) > 1:  # "cancell" -> "cancel"
        word = word[:-1]
    return word


@dataclass(frozen=True)
class TextCounts:
    """What labelling reads from the items' texts: their words and their phrases, per text.

    A run names leaves and then parents from the same texts; only the grouping differs. The
    per-text work (cleaning, counting words, finding phrases) is about two-thirds of naming a
    level, so :func:`count_texts` does it once and every level reuses it.

    Attributes:
        row_of: Position of each text in the matrices below, ``-1`` for a text not read.
        cleaned: ``clean_for_terms`` of every text, ``""`` for a text not read.
        terms: ``(read texts, terms)`` counts of words and bigrams, stop words left out.
        term_names: The term of each column of ``terms``.
        phrases: ``(read texts, phrases)`` 0/1: the text holds the phrase (:func:`_phrases`).
        phrase_names: The phrase of each column of ``phrases``.
    """

    row_of: NDArray[np.int64]
    cleaned: list[str]
    terms: sparse.csr_matrix
    term_names: NDArray[np.str_]
    phrases: sparse.csr_matrix
    phrase_names: NDArray[np.str_]

    def covers(self, labels: NDArray[np.integer]) -> bool:
        """Whether every text with a label ``>= 0`` was read."""
        return len(labels) == len(self.row_of) and bool((self.row_of[labels >= 0] >= 0).all())


def count_texts(texts: Sequence[str], read: NDArray[np.bool_]) -> TextCounts:
    """Read the texts where ``read`` is true (the ones some theme holds) for labelling.

    Args:
        texts: Item texts, shape ``(n,)``.
        read: Shape ``(n,)``; the texts to read. A text that no theme holds need not be read.

    Returns:
        The :class:`TextCounts` of those texts.
    """
    rows = np.flatnonzero(read)
    row_of = np.full(len(texts), -1, dtype=np.int64)
    row_of[rows] = np.arange(rows.size)
    cleaned = [clean_for_terms(texts[i]) if row_of[i] >= 0 else "" for i in range(len(texts))]
    chosen = [cleaned[i] for i in rows.tolist()]
    words = CountVectorizer(
        ngram_range=(1, 2), stop_words=_STOP_WORDS, token_pattern=_TOKEN_PATTERN, lowercase=True, dtype=np.float64
    )
    phrases = CountVectorizer(analyzer=lambda text: sorted(_phrases(_label_runs(text))), binary=True)
    return TextCounts(row_of, cleaned, *_fitted(words, chosen), *_fitted(phrases, chosen))


def _fitted(vectorizer: CountVectorizer, texts: list[str]) -> tuple[sparse.csr_matrix, NDArray[np.str_]]:
    """``(texts, features)`` counts and feature names; no columns when no text has a feature."""
    try:
        matrix = sparse.csr_matrix(vectorizer.fit_transform(texts), dtype=np.float64)
    except ValueError:  # every text was empty or only stop words
        return sparse.csr_matrix((len(texts), 0)), np.array([], dtype=str)
    return matrix, vectorizer.get_feature_names_out()


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
    return _keywords(count_texts(texts, labels >= 0), labels, top_n)


def _keywords(counted: TextCounts, labels: NDArray[np.integer], top_n: int) -> dict[int, list[str]]:
    """:func:`theme_keywords` over texts that :func:`count_texts` read."""
    theme_ids = np.unique(labels[labels >= 0])
    if theme_ids.size == 0 or counted.terms.shape[1] == 0:
        return {}
    rows = np.flatnonzero(labels >= 0)
    doc_counts = counted.terms[counted.row_of[rows]]
    # Count per document, then sum per theme: a bigram never spans two documents.
    counts = sparse.csr_matrix(_membership(labels[rows], theme_ids) @ doc_counts)
    terms = counted.term_names
    scores = _c_tf_idf(counts)
    keywords: dict[int, list[str]] = {}
    for row, theme_id in enumerate(theme_ids.tolist()):
        start, end = scores.indptr[row], scores.indptr[row + 1]
        cols, values = scores.indices[start:end], scores.data[start:end]
        keep = values > 0
        cols, values = cols[keep], values[keep]
        # lexsort sorts by the last key first: score descending, then term ascending.
        order = np.lexsort((terms[cols], -values))[:top_n]
        words = [str(t) for t in terms[cols[order]]]
        if words:
            keywords[int(theme_id)] = words
    return keywords


def _membership(labels: NDArray[np.integer], theme_ids: NDArray[np.integer]) -> sparse.csr_matrix:
    """``(themes, docs)`` 0/1 matrix: row ``i`` marks the docs of ``theme_ids[i]``."""
    n = len(labels)
    return sparse.csr_matrix(
        (np.ones(n), (np.searchsorted(theme_ids, labels), np.arange(n))), shape=(theme_ids.size, n)
    )


def _c_tf_idf(counts: sparse.csr_matrix) -> sparse.csr_matrix:
    """Class-based TF-IDF over a sparse ``(n_classes, n_terms)`` count matrix."""
    per_class = np.asarray(counts.sum(axis=1)).ravel()
    words_per_class = counts.sum() / counts.shape[0]
    idf = np.log1p(words_per_class / np.maximum(np.asarray(counts.sum(axis=0)).ravel(), 1.0))
    term_freq = sparse.diags(1.0 / np.maximum(per_class, 1.0)) @ counts
    return sparse.csr_matrix(term_freq @ sparse.diags(idf))


def _label_runs(text: str) -> list[list[str]]:
    """Runs of label words of a cleaned text (``clean_for_terms``): lower-case, in order, negations
    spelled ``not``.

    Stop words are dropped, so "my card has not arrived" gives the run "card not arrived". A run
    ends at a clause mark, at a clause word ("but", "when") and where more than ``_MAX_GAP``
    stop words or numbers in a row were dropped, so the words of a run stand close together in
    the text. A particle ("up", "off") stays when
    it follows a content word directly ("top up"), and is dropped elsewhere.
    """
    text = _NEGATION_RE.sub(" not ", text).lower()
    runs: list[list[str]] = []
    for clause in _CLAUSE_RE.split(text):
        run: list[str] = []
        gap, after_content = 0, False
        for word in _RUN_TOKEN_RE.findall(clause):
            is_kept = (word not in _LABEL_STOP and not word.isdigit()) or (word in _PARTICLES and after_content)
            after_content = is_kept and word not in _NEGATIONS and word not in _PARTICLES
            if not is_kept:
                gap += _MAX_GAP + 1 if word in _CLAUSE_WORDS else 1
                continue
            if gap > _MAX_GAP and run:
                runs.append(run)
                run = []
            run.append(word)
            gap = 0
        if run:
            runs.append(run)
    return runs


def _phrases(runs: Iterable[Sequence[str]]) -> set[str]:
    """Contiguous pieces of the runs, 1-4 words, that read as a phrase.

    A phrase starts with a content word (not "not", not "up"), does not end in a negation, and
    does not repeat a stem.
    """
    found: set[str] = set()
    for words in runs:
        for start in range(len(words)):
            if words[start] in _NEGATIONS or words[start] in _PARTICLES:
                continue
            for end in range(start + 1, min(start + _MAX_PHRASE_WORDS, len(words)) + 1):
                run = words[start:end]
                if len({stem(w) for w in run}) < len(run):
                    break  # a longer piece holds the same repeat
                # Not "card top" out of "card top up": a phrase keeps its word's particle.
                if run[-1] not in _NEGATIONS and (end == len(words) or words[end] not in _PARTICLES):
                    found.add(" ".join(run))
    return found


def _phrase_scores(
    counted: TextCounts, labels: NDArray[np.int64], weights: NDArray[np.float64], theme_ids: NDArray[np.int64]
) -> tuple[sparse.csr_matrix, NDArray[np.str_]]:
    """``(themes, phrases)`` score matrix and the phrase of each column."""
    if counted.phrases.shape[1] == 0:  # no text has a content word
        return sparse.csr_matrix((theme_ids.size, 0)), counted.phrase_names
    rows = np.flatnonzero(labels >= 0)
    present = counted.phrases[counted.row_of[rows]]
    member = _membership(labels[rows], theme_ids)
    weighted = member @ sparse.diags(weights[rows])
    cover = sparse.diags(1.0 / np.maximum(np.asarray(weighted.sum(axis=1)).ravel(), 1e-12)) @ (weighted @ present)
    in_theme = sparse.csr_matrix(member @ present)
    total = np.asarray(present.sum(axis=0)).ravel()
    # c-TF-IDF over items: a phrase in many themes' items names none of them.
    idf = np.log1p(rows.size / theme_ids.size / np.maximum(total, 1.0))
    scores = sparse.csr_matrix(sparse.csr_matrix(cover) @ sparse.diags(idf))
    # Phrases a single item holds say nothing about a theme of many.
    scores = scores.multiply(in_theme >= np.minimum(2, np.asarray(member.sum(axis=1)))).tocsr()
    scores.eliminate_zeros()
    return scores, counted.phrase_names


def _ranked_labels(scores: NDArray[np.float64], phrases: NDArray[np.str_], limit: int = 8) -> list[str]:
    """A theme's candidate labels, best first, each a phrase of its items.

    Phrases of two or more words come first: a single word names a theme only when no longer
    phrase recurs in it. A longer phrase that extends a candidate ("top up failed" over "top
    up") replaces it while it scores at least ``_LONGER_PHRASE_SHARE`` of it. The options after
    the first are picked by maximal marginal relevance, so an alternative (for when a sibling
    took the first) says something else.
    """
    order = np.lexsort((phrases, -scores))[: 20 * limit].tolist()
    candidates = [(str(phrases[i]), float(scores[i])) for i in order]
    words = [c for c in candidates if " " not in c[0]]
    pool = [c for c in candidates if " " in c[0]] or words
    if words and pool[0][1] < _LONGER_PHRASE_SHARE * words[0][1]:
        # No phrase comes near the best word: the label is that word, in its best phrase.
        holding = [c for c in pool if words[0][0] in c[0].split()]
        lead = holding[0] if holding else words[0]
        pool = [lead, *(c for c in pool if c != lead)]
    options: dict[str, float] = {}
    for phrase, score in pool:
        while True:
            longer = next(
                (
                    (other, other_score)
                    for other, other_score in pool
                    if len(other) > len(phrase)
                    and f" {phrase} " in f" {other} "
                    and other_score >= _LONGER_PHRASE_SHARE * score
                ),
                None,
            )
            if longer is None:
                break
            phrase, score = longer
        options.setdefault(phrase, score)
    return _diverse(options, limit)


def _diverse(options: Mapping[str, float], limit: int) -> list[str]:
    """The first option, then up to ``limit - 1`` more by maximal marginal relevance over stems."""
    if not options:
        return []
    top = max(options.values())
    stems = {phrase: {stem(w) for w in phrase.split()} for phrase in options}
    ranked = [next(iter(options))]  # the lead; the rest by relevance and novelty
    left = {phrase: score for phrase, score in options.items() if phrase != ranked[0]}
    while left and len(ranked) < limit:

        def gain(phrase: str) -> float:
            overlap = max((len(stems[phrase] & stems[r]) / len(stems[phrase] | stems[r]) for r in ranked), default=0.0)
            return (1 - _MMR_DIVERSITY) * left[phrase] / top - _MMR_DIVERSITY * overlap

        best = max(left, key=gain)  # ties: the first listed (higher score, then alphabetical)
        ranked.append(best)
        del left[best]
    return ranked


def _distinct(
    choices: Mapping[int, list[str]], siblings: Mapping[int, int] | None, fallback: Mapping[int, str]
) -> dict[int, str]:
    """Pick each theme's best label not already taken by a sibling (larger themes pick first)."""
    taken: dict[int, set[frozenset[str]]] = defaultdict(set)
    result: dict[int, str] = {}
    for theme in choices:
        group = siblings.get(theme, -1 - theme) if siblings is not None else 0
        options = [*choices[theme], fallback[theme]]
        for option in options:
            key = frozenset(stem(w) for w in option.lower().split())
            if key not in taken[group]:
                break
        else:
            option = f"{options[0]} ({theme})"
            key = frozenset({option})
        taken[group].add(key)
        result[theme] = option
    return result


def _acronyms(texts: Sequence[str], labels: NDArray[np.int64], words: set[str]) -> dict[str, str]:
    """The label words the items mostly write in capitals ("pin" -> "PIN", "atm" -> "ATM")."""
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    for i in np.flatnonzero(labels >= 0).tolist():
        for token in _WORD_RE.findall(texts[i]):
            if token.lower() in words:
                forms[token.lower()][token] += 1
    return {
        word: form
        for word, counts in forms.items()
        for form, _ in counts.most_common(1)
        if form.isupper() and form != word
    }


def _fallback(representative_texts: Iterable[str]) -> str:
    """The shortest representative text (cut to 60 characters), or a placeholder."""
    texts = [" ".join(clean_for_terms(t).split()) for t in representative_texts]
    texts = [t for t in texts if t]
    if texts:
        shortest = min(texts, key=lambda t: (len(t), t))
        return shortest if len(shortest) <= 60 else shortest[:59].rstrip() + "…"
    return "unlabelled theme"


def _centrality(vectors: NDArray[np.floating] | None, labels: NDArray[np.int64]) -> NDArray[np.float64]:
    """Weight of each item: its cosine to its theme's centroid (0 floor), or 1 without vectors."""
    if vectors is None:
        return np.ones(len(labels))
    from clustering.cluster import centroids

    ids, centres = centroids(vectors, labels)
    weights = np.zeros(len(labels))
    assigned = np.flatnonzero(labels >= 0)
    if ids.size:
        unit = np.asarray(vectors[assigned], dtype=np.float64)
        unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
        own = centres[np.searchsorted(ids, labels[assigned])].astype(np.float64)
        weights[assigned] = np.clip(np.einsum("ij,ij->i", unit, own), 0.05, 1.0)
    return weights


def _closest_first(
    choices: Mapping[int, list[str]],
    labels: NDArray[np.int64],
    vectors: NDArray[np.floating],
    embed: EmbedTexts,
) -> dict[int, list[str]]:
    """Each theme's candidates, closest in meaning to the theme's centroid first.

    c-TF-IDF finds the phrases that are distinctive of a theme, but it also ranks high a
    narration that one paraphrase set repeats ("couple weeks ago", "second time worked") or
    words glued across dropped stop words ("fast new"). Among its candidates (the best ones, in
    their diverse order), the phrase whose own vector is nearest the mean of the items' vectors
    says what the items say (KeyBERT's rule, over c-TF-IDF's candidates). Each distinct phrase
    is embedded once per call: about 1 ms a phrase on one core.
    """
    from clustering.cluster import centroids

    phrases = sorted({p for options in choices.values() for p in options})
    if not phrases:
        return dict(choices)
    unit = np.asarray(embed(phrases), dtype=np.float32)
    row_of = {p: i for i, p in enumerate(phrases)}
    ids, centres = centroids(vectors, labels)
    ordered: dict[int, list[str]] = {}
    for theme, options in choices.items():
        closeness = unit[[row_of[p] for p in options]] @ centres[np.searchsorted(ids, theme)]
        ordered[theme] = [options[i] for i in np.argsort(-closeness, kind="stable")]
    return ordered


def label_themes(
    texts: Sequence[str],
    labels: NDArray[np.integer],
    representatives: Mapping[int, Sequence[int]],
    top_n: int = 10,
    *,
    vectors: NDArray[np.floating] | None = None,
    siblings: Mapping[int, int] | None = None,
    counted: TextCounts | None = None,
    embed: EmbedTexts | None = None,
) -> dict[int, tuple[str, list[str]]]:
    """A short human label and the keywords of every theme.

    Args:
        texts: Cleaned texts, shape ``(n,)``.
        labels: Theme label per text, shape ``(n,)``, ``-1`` for unassigned.
        representatives: ``{label: [row indices]}`` from ``cluster.representatives``; their
            shortest text is the label of a theme without a usable phrase.
        top_n: Keywords per theme.
        vectors: Embeddings, shape ``(n, d)``; when given, items close to their theme's
            centroid count more in choosing the label.
        siblings: ``{label: sibling-group id}``; labels are unique within a group. ``None``
            makes all themes one group.
        counted: The texts already read by :func:`count_texts` (another level of the same
            run); read here when ``None`` or when it misses a text that a theme holds.
        embed: The model that made ``vectors`` (unit rows for texts); when given with
            ``vectors``, a theme's candidate phrases are ordered by their closeness in meaning
            to the theme's centroid (:func:`_closest_first`).

    Returns:
        ``{label: (label_text, keywords)}`` for every label >= 0. The label has 1-4 words, no
        word twice, first letter upper-case, and words the items write in capitals kept so
        ("Card not arrived", "Change PIN"); a theme without a recurring phrase gets its
        shortest representative text instead.
    """
    leaf: NDArray[np.int64] = np.asarray(labels, dtype=np.int64)
    if len(texts) != len(leaf):
        raise ValueError(f"{len(texts)} texts but {len(leaf)} labels")
    theme_ids = np.unique(leaf[leaf >= 0])
    if theme_ids.size == 0:
        return {}
    if counted is None or not counted.covers(leaf):
        counted = count_texts(texts, leaf >= 0)
    keywords = _keywords(counted, leaf, top_n)
    scores, phrases = _phrase_scores(counted, leaf, _centrality(vectors, leaf), theme_ids)
    sizes = np.bincount(np.searchsorted(theme_ids, leaf[leaf >= 0]), minlength=theme_ids.size)
    choices: dict[int, list[str]] = {}
    for row in np.lexsort((theme_ids, -sizes)).tolist():
        start, end = scores.indptr[row], scores.indptr[row + 1]
        cols = scores.indices[start:end]
        choices[int(theme_ids[row])] = _ranked_labels(scores.data[start:end], phrases[cols])
    if embed is not None and vectors is not None:
        choices = _closest_first(choices, leaf, vectors, embed)
    fallback = {t: _fallback(texts[i] for i in representatives.get(t, [])) for t in choices}
    chosen = _distinct(choices, siblings, fallback)
    acronyms = _acronyms(counted.cleaned, leaf, {w for label in chosen.values() for w in label.split()})
    for theme, label in chosen.items():
        label = " ".join(acronyms.get(w, w) for w in label.split())
        chosen[theme] = label[:1].upper() + label[1:]
    return {t: (chosen[t], keywords.get(t, [])) for t in sorted(chosen)}


def area_labels(
    leaves: Mapping[int, Sequence[tuple[str, int]]], own: Mapping[int, str], sizes: Mapping[int, int]
) -> dict[int, str]:
    """Labels of parent themes that name their area.

    A parent's label is the phrase (1-3 consecutive words, compared by stem) that the most of
    its leaf labels contain, when at least two and at least half of them do; ties go to the
    longer phrase, then to the one over more items. Otherwise the label is ``own`` (the
    parent's best phrase from its items). Parents are siblings: the larger ones choose first,
    and one whose phrase is taken gets its next shared phrase, then ``own``.

    Args:
        leaves: ``{parent: [(leaf label, leaf size), ...]}``.
        own: ``{parent: label from its items}`` (:func:`label_themes`); a parent missing here
            and without a shared phrase is left out of the result.
        sizes: ``{parent: items}``; the order of choosing.

    Returns:
        ``{parent: label}``, first letter upper-case, each leaf's spelling kept ("PIN").

    Examples:
        >>> area_labels({0: [("Top up failed", 9), ("Top up limit", 5)]}, {0: "Top up failed"}, {0: 14})
        {0: 'Top up'}
    """
    taken: set[frozenset[str]] = set()
    result: dict[int, str] = {}
    for parent in sorted({*leaves, *own}, key=lambda p: (-sizes.get(p, 0), p)):
        options = [*_shared_phrases(leaves.get(parent, [])), *([own[parent]] if parent in own else [])]
        for option in options:
            key = frozenset(stem(w) for w in option.lower().split())
            if key not in taken:
                taken.add(key)
                result[parent] = option[:1].upper() + option[1:]
                break
        else:
            if options:
                result[parent] = f"{options[0][:1].upper()}{options[0][1:]} ({parent})"
    return result


def _shared_phrases(leaves: Sequence[tuple[str, int]]) -> list[str]:
    """Phrases that at least two and at least half of the leaf labels contain, best first."""
    if len(leaves) < 2:
        return []
    count: Counter[tuple[str, ...]] = Counter()
    items: Counter[tuple[str, ...]] = Counter()
    spelling: dict[tuple[str, ...], str] = {}
    for label, size in sorted(leaves, key=lambda leaf: -leaf[1]):
        words = [w if w.isupper() else w.lower() for w in label.split()]
        stems = [stem(w.lower()) for w in words]
        seen: set[tuple[str, ...]] = set()
        for length in range(1, 4):
            for start in range(len(words) - length + 1):
                key = tuple(stems[start : start + length])
                if key in seen or all(w.lower() in _NEGATIONS or w.lower() in _PARTICLES for w in key):
                    continue
                seen.add(key)
                count[key] += 1
                items[key] += size
                spelling.setdefault(
                    key, " ".join(w if w.isupper() else w.lower() for w in words[start : start + length])
                )
    shared = [key for key, n in count.items() if n >= 2 and 2 * n >= len(leaves)]
    shared.sort(key=lambda key: (-count[key], -len(key), -items[key], spelling[key]))
    return [spelling[key] for key in shared]
