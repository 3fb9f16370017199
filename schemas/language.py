"""Item language: a BCP 47 tag as sent, or inferred offline when absent.

The inference is deliberately light (it runs on the ingest path, ~10 us an item): the script of
the text decides for languages with their own script, and otherwise the most frequent function
words of the first few hundred characters. A text with too little signal stays untagged (None)
rather than guessed.
"""

from __future__ import annotations

import re

# The shape of a tag, also published (with the white space a client may add) in the item schema.
TAG_SHAPE = r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*"
_TAG = re.compile(rf"^{TAG_SHAPE}$")
_SAMPLE_CHARS = 160
_MIN_HITS = 2

# Function words that are frequent in one language and rare in the others listed.
_STOPWORDS: dict[str, str] = {}
for _lang, _words in {
    "en": "the and is are was you your not have this with for that it my i can please when what how to of in on a",
    "de": "der die das und ist nicht ich ein eine mit zu den auf für sie wir bitte mein meine kann wenn wie",
    "fr": "le la les et est pas je un une avec pour des que du mon ma vous nous sur ne merci",
    "es": "el los las y es no yo una con para que del mi por pero como gracias cuando puedo está",
    "pt": "o os as e é não eu um uma com para que do da meu minha por mas obrigado quando você",
    "it": "il lo gli e è non io uno una con per che di mio mia ma grazie quando sono",
    "nl": "het een en is niet ik met voor dat van mijn op maar wij ze kan graag",
    "sv": "och är inte jag en ett med för att det min på men vi kan tack",
    "pl": "i jest nie się na że to w z do mój moja ale jak proszę",
}.items():
    for _word in _words.split():
        _STOPWORDS.setdefault(_word, _lang)

_PUNCTUATION = str.maketrans({c: " " for c in ".,;:!?()[]{}\"'/-"})
# (first code point, last code point, language) for scripts that name one language.
_SCRIPTS = (
    (0x3040, 0x30FF, "ja"),  # hiragana, katakana
    (0xAC00, 0xD7AF, "ko"),  # hangul syllables
    (0x0400, 0x04FF, "ru"),  # cyrillic (the most common user of it)
    (0x0600, 0x06FF, "ar"),
    (0x0590, 0x05FF, "he"),
    (0x0370, 0x03FF, "el"),
    (0x0E00, 0x0E7F, "th"),
    (0x4E00, 0x9FFF, "zh"),  # han without kana
)


def normalise_language_tag(value: str) -> str:
    """A BCP 47 tag in its usual case ("EN-us" -> "en-US"); raises ValueError otherwise."""
    value = value.strip()
    if not _TAG.match(value) or len(value) > 35:
        raise ValueError(f"{value!r} is not a BCP 47 language tag (e.g. 'en', 'pt-BR')")
    first, *rest = value.split("-")
    parts = [first.lower()]
    for part in rest:
        parts.append(part.upper() if len(part) == 2 else part.title() if len(part) == 4 else part.lower())
    return "-".join(parts)


def infer_language(text: str) -> str | None:
    """A primary language subtag for the text, or None when it has too little signal."""
    sample = text[:_SAMPLE_CHARS]
    if not sample.isascii():
        script = _script_of(sample)
        if script is not None:
            return script
    # split() and a strip of the usual punctuation: a regex costs twice as much on the ingest path.
    langs = [lang for lang in map(_STOPWORDS.get, sample.lower().translate(_PUNCTUATION).split()) if lang]
    if not langs:
        return None
    counts = {lang: langs.count(lang) for lang in set(langs)}
    best = max(counts, key=lambda lang: counts[lang])
    return best if counts[best] >= _MIN_HITS else None


def _script_of(sample: str) -> str | None:
    counts: dict[str, int] = {}
    for char in sample:
        code = ord(char)
        if code < 0x0370:
            continue
        for low, high, lang in _SCRIPTS:
            if low <= code <= high:
                counts[lang] = counts.get(lang, 0) + 1
                break
    if not counts:
        return None
    if counts.get("zh") and counts.get("ja"):
        return "ja"  # Japanese mixes kanji and kana
    best = max(counts, key=lambda lang: counts[lang])
    return best if counts[best] >= 3 else None
