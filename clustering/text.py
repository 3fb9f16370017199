"""Text preparation for embedding: ticket markup in, short redacted plain text out.

The pipeline in `prepare_text` is: sanitise code points -> HTML to text -> bound the length ->
drop quoted reply chains -> drop signatures and ticket-system boilerplate -> Markdown to plain
text -> collapse whitespace -> redact (`clustering.redact`) -> cap. Everything is regexes plus
selectolax and phonenumbers, so it is cheap enough to run on every ticket before `content_hash`
decides whether to re-embed.
"""

import hashlib
import re
import unicodedata

from clustering.redact import redact
from connectors.html import html_to_text

__all__ = ["content_hash", "prepare_text", "redact"]

# --- sanitising ---------------------------------------------------------------------------

# Control characters, lone surrogates and zero-width/format characters. The zero-width ones
# matter for privacy too: "jo\u200bhn@example.com" would otherwise slip past the e-mail regex.
_INVISIBLE_RE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\ud800-\udfff]"
)


def _sanitise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n")
    text = _INVISIBLE_RE.sub("", text)
    # NFKC folds full-width digits and non-breaking spaces, which the PII regexes expect.
    return unicodedata.normalize("NFKC", text)


# --- HTML ---------------------------------------------------------------------------------

# Only well-known tag names count as HTML, so "John <john@example.com> wrote:" or "a < b"
# in plain-text mail is not handed to the HTML parser.
_HTML_RE = re.compile(
    r"</?(?:p|div|br|span|a|b|i|u|em|strong|ul|ol|li|table|tr|td|th|tbody|thead|blockquote"
    r"|pre|code|h[1-6]|img|hr|html|body|head|font|center|section|article|aside|style"
    r"|script|small|sub|sup|s|strike|del|ins)\b[^>]*>",
    re.IGNORECASE,
)
_CODE_HEAD_LINES = 3
_CODE_TAIL_LINES = 2
_CODE_MAX_CHARS = 400


def _shorten_code(code: str) -> str:
    # Keep both ends of code and logs: Java traces name the exception first, Python traces
    # last. The middle frames would use up the model's 256 word pieces.
    lines = [line.strip() for line in code.split("\n") if line.strip()]
    if len(lines) > _CODE_HEAD_LINES + _CODE_TAIL_LINES:
        lines = lines[:_CODE_HEAD_LINES] + lines[-_CODE_TAIL_LINES:]
    return "\n".join(line[: _CODE_MAX_CHARS // 2] for line in lines)[:_CODE_MAX_CHARS]


# --- quoted replies, signatures, boilerplate ----------------------------------------------

# A line where the previous message starts. Everything from there on is quoted history.
_REPLY_HEADER_RES = (
    # Gmail/Apple Mail wrap long headers, so allow one line break before "wrote:".
    re.compile(r"^[ \t]*On\b[^\n]{0,300}?(?:\n[^\n]{0,300}?)?\bwrote:[ \t]*$", re.M),
    re.compile(
        r"^[ \t]*(?:Le|El|Am|Il|Op|Em)\b[^\n]{0,300}?(?:\n[^\n]{0,300}?)?"
        r"(?:a écrit|escribió|schrieb|ha scritto|schreef|escreveu)[^\n]{0,80}:[ \t]*$",
        re.M,
    ),
    re.compile(r"^[ \t]*-{2,}[ \t]*Original Message[ \t]*-{2,}", re.M | re.I),
    # Outlook puts the header block as "From: ..." followed by "Sent:"/"Date:" lines.
    re.compile(
        r"^[ \t]*\**(?:From|De|Von|Van|Da)[ \t]?:\**[ \t][^\n]*\n(?:[^\n]*\n){0,2}?"
        r"[ \t]*\**(?:Sent|Date|Envoyé|Gesendet|Verzonden|Inviato|Enviado)[ \t]?:",
        re.M,
    ),
    # Zendesk "##- Please type your reply above this line -##" and similar delimiters.
    re.compile(r"^[^\n]*\breply above this line\b", re.M | re.I),
)
_QUOTED_LINE_RE = re.compile(r"^[ \t]*>[^\n]*\n?", re.M)

# A line where a signature or legal footer starts. Everything from there on is dropped.
_SIGNATURE_START_RES = (
    re.compile(r"^-- ?$", re.M),
    re.compile(
        r"^[ \t]*(?:Sent from my [^\n]{1,40}|Sent from (?:Outlook|Mail|Yahoo Mail|Gmail)"
        r"[^\n]{0,40}|Get Outlook for [^\n]{1,30}|Sent via [^\n]{1,40})$",
        re.M | re.I,
    ),
    re.compile(
        r"^[^\n]*\b(?:This (?:e-?mail|message)\b[^\n]{0,60}\b(?:is|are|may be|contains?) "
        r"(?:confidential|privileged|intended)|CONFIDENTIALITY NOTICE|DISCLAIMER:)",
        re.M | re.I,
    ),
)
# "Best regards," on its own line (optionally followed by the name on the same line). Words
# that also start ordinary sentences ("Thanks! It works") only count with a comma.
_VALEDICTION_RE = re.compile(
    r"^[ \t]*(?:(?i:(?:(?:best|kind|warm|many)[ \t]+)?regards|sincerely|yours[ \t]+(?:truly|"
    r"sincerely)|cordialement|mit freundlichen grüßen|viele grüße|saludos)[ \t]*[,.]?"
    r"|(?i:thanks(?:[ \t]+(?:again|in advance|so much))?|thank you(?:[ \t]+(?:very much|in "
    r"advance))?|many thanks|best(?:[ \t]+wishes)?|cheers)[ \t]*,)"
    r"[ \t]*(?:[A-Z][\w.'-]*(?:[ \t]+[A-Z][\w.'-]*){0,2})?[ \t]*$",
    re.M,
)
# What may follow a valediction: name, title, company, phone. Short lines, few words.
_SIGNATURE_MAX_LINES = 4
_SIGNATURE_MAX_LINE_CHARS = 60
_SIGNATURE_MAX_LINE_WORDS = 6

_BOILERPLATE_RES = (
    re.compile(r"\{\{[^{}\n]{1,100}\}\}"),  # unrendered Liquid/Zendesk placeholders
    re.compile(r"\[cid:[^\]\n]*\]|\[image:[^\]\n]*\]", re.I),  # inline-image stubs
    re.compile(r"Your request \([^)\n]*\) has been (?:received|updated|solved)[^\n]*", re.I),
    re.compile(r"To add additional comments,? reply to this e-?mail\.?", re.I),
    re.compile(r"^[^\n]*\bThis e-?mail is a service from\b[^\n]*$", re.M | re.I),
    re.compile(r"^[ \t]*\[[A-Z0-9]{4,8}-[A-Z0-9]{4,8}\][ \t]*$", re.M),  # Zendesk mail id
    re.compile(r"^[^\n]*\bCAUTION:? This (?:e-?mail|message) originated[^\n]*$", re.M | re.I),
    re.compile(r"^[^\n]*\bconsider the environment before printing\b[^\n]*$", re.M | re.I),
)

_SUBJECT_PREFIX_RE = re.compile(r"^(?:\s*(?:re|fwd?|aw|wg|tr|sv|antw)\s*(?:\[\d+\])?:)+", re.I)


def _cut_at_first(text: str, patterns: tuple[re.Pattern[str], ...]) -> str:
    """Cut `text` at the earliest match, unless nothing would be left before it."""
    pos = 0  # start of the text kept so far
    found = {p: p.search(text) for p in patterns}
    while True:
        for p, m in found.items():
            if m is not None and m.start() < pos:  # re-search only what fell behind pos
                found[p] = p.search(text, pos)
        matches = [m for m in found.values() if m is not None]
        if not matches:
            return text[pos:]
        first = min(matches, key=lambda m: m.start())
        if text[pos : first.start()].strip():
            return text[pos : first.start()]
        # The message opens with the marker (bottom-posting, or a forward with a note
        # below): drop only the marker and keep what follows instead of returning nothing.
        newline = text.find("\n", first.end())
        if newline == -1:
            return ""
        pos = newline + 1


def _strip_quoted_replies(text: str) -> str:
    return _cut_at_first(_QUOTED_LINE_RE.sub("", text), _REPLY_HEADER_RES)


def _is_signature_tail(tail: str) -> bool:
    lines = [line.strip() for line in tail.split("\n") if line.strip()]
    return len(lines) <= _SIGNATURE_MAX_LINES and all(
        len(line) <= _SIGNATURE_MAX_LINE_CHARS and len(line.split()) <= _SIGNATURE_MAX_LINE_WORDS for line in lines
    )


def _strip_signature(text: str) -> str:
    text = _cut_at_first(text, _SIGNATURE_START_RES)
    for m in reversed(list(_VALEDICTION_RE.finditer(text))):
        if _is_signature_tail(text[m.end() :]):
            if text[: m.start()].strip():
                return text[: m.start()]
            break
    return text


def _strip_boilerplate(text: str) -> str:
    for pattern in _BOILERPLATE_RES:
        text = pattern.sub("", text)
    return text


# --- Markdown -----------------------------------------------------------------------------

_FENCE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S)
_MARKDOWN_SUBS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Spans are bounded so that unclosed markers cannot make these regexes quadratic.
    (re.compile(r"\[quote[^\]\n]{0,200}\].{0,5000}?\[/quote\]", re.S | re.I), ""),  # Discourse
    (re.compile(r"<!--.{0,5000}?-->", re.S), ""),
    (re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)"), r"\1"),  # images -> alt text
    (re.compile(r"\[([^\]\n]+)\]\((?:[^()\n]|\([^()\n]*\))*\)"), r"\1"),  # links -> text
    (re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]"), r"\1"),  # reference links
    (re.compile(r"^[ \t]*\[[^\]\n]+\]:[ \t]*\S+[^\n]*$", re.M), ""),  # link definitions
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),  # autolinks
    (re.compile(r"`([^`\n]+)`"), r"\1"),
    (re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+", re.M), ""),  # ATX headings
    (re.compile(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+", re.M), ""),  # list markers
    (re.compile(r"^[ \t]*[-*_=~|:. \t]{3,}$", re.M), ""),  # rules, setext and table rules
    (re.compile(r"(\*\*|__|~~)(?=\S)(.{1,300}?)(?<=\S)\1"), r"\2"),
    # Single * or _ only at word edges, so snake_case and "2 * 3" survive.
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), r"\1"),
)


def _markdown_to_text(text: str) -> str:
    text = _FENCE_RE.sub(lambda m: "\n" + _shorten_code(m.group(2)) + "\n", text)
    for pattern, replacement in _MARKDOWN_SUBS:
        text = pattern.sub(replacement, text)
    return text


# --- the pipeline -------------------------------------------------------------------------

_WHITESPACE_RE = re.compile(r"\s+")
# Input kept, as multiples of max_chars. These only bound the work on huge bodies (the HTML
# parser is superlinear on deep nesting, some regexes on long lines): cleaning rarely removes
# this much from the top of a message, and the model reads only its first ~1,500 characters.
_RAW_BOUND_FACTOR = 64
_TEXT_BOUND_FACTOR = 4


def _truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    # Cut at whitespace so a placeholder, a word or a value being redacted is never split.
    cut = max(text.rfind(" ", 0, max_chars + 1), text.rfind("\n", 0, max_chars + 1))
    return text[: cut if cut > 0 else max_chars].rstrip()


def _clean_body(body: str, max_chars: int) -> str:
    if _HTML_RE.search(body):
        body = html_to_text(body, code=_shorten_code)  # the one HTML rule (connectors/html.py)
    body = _truncate(body, max_chars * _TEXT_BOUND_FACTOR)
    body = _strip_quoted_replies(body)
    body = _strip_signature(body)
    body = _strip_boilerplate(body)
    return _markdown_to_text(body)


def prepare_text(title: str | None, body: str, *, max_chars: int = 2000) -> str:
    """Turn a ticket or post into the redacted plain text that gets embedded.

    Converts HTML and Markdown to plain text (code blocks are kept, shortened to their first
    lines), drops quoted reply chains ("On ... wrote:", ``>`` lines, "-----Original
    Message-----", Outlook "From:/Sent:" headers, "reply above this line" markers), e-mail
    signatures, mobile footers, legal disclaimers and ticket-system boilerplate, collapses
    whitespace, applies `redact` and finally caps the length (after redaction, so that no
    value is cut in half and missed).

    Never raises on odd input: NUL bytes, lone surrogates and control characters are
    dropped, and a body that is empty after cleaning gives ``""``.

    Args:
        title: Ticket subject or topic title; ``Re:``/``Fwd:`` prefixes are removed. ``None``
            for sources without titles (chat messages, comments).
        body: Ticket body or post as received: plain text, HTML or Markdown.
        max_chars: Length cap of the result. all-MiniLM-L6-v2 reads at most 256 word pieces
            (about 1,000-1,500 characters of English), so the default 2,000 never drops text
            the model would read while keeping tokenisation of huge bodies cheap.

    Returns:
        Single-line redacted text of at most `max_chars` characters, or ``""`` when nothing
        meaningful is left.
    """
    if max_chars <= 0:
        return ""
    parts = []
    # Payloads are loosely typed JSON; a null or numeric field must not fail a whole batch.
    if isinstance(title, str) and title:
        parts.append(_SUBJECT_PREFIX_RE.sub("", _sanitise(_truncate(title, max_chars))))
    if isinstance(body, str) and body:
        parts.append(_clean_body(_sanitise(body[: max_chars * _RAW_BOUND_FACTOR]), max_chars))
    text = _WHITESPACE_RE.sub(" ", "\n".join(parts)).strip()
    return _truncate(redact(text), max_chars)


def content_hash(text: str) -> bytes:
    """Fingerprint prepared text, to skip re-embedding items whose text did not change.

    Args:
        text: Output of `prepare_text`.

    Returns:
        The 32-byte SHA-256 digest of the UTF-8 encoded text.
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
