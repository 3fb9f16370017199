"""Text preparation for embedding: ticket markup in, short redacted plain text out.

The pipeline in `prepare_text` is: sanitise code points -> HTML to text -> bound the length ->
drop quoted reply chains -> drop signatures and ticket-system boilerplate -> Markdown to plain
text -> collapse whitespace -> redact -> cap. Everything is regexes plus selectolax and phonenumbers, so it is
cheap enough to run on every ticket before `content_hash` decides whether to re-embed.
"""

import hashlib
import ipaddress
import re
import unicodedata
from collections.abc import Callable

import phonenumbers
from selectolax.lexbor import LexborHTMLParser

__all__ = ["content_hash", "prepare_text", "redact"]

EMAIL = "<EMAIL>"
PHONE = "<PHONE>"
CARD = "<CARD>"
IBAN = "<IBAN>"
IP = "<IP>"

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
# Quoted replies, signatures and invisible content that mail clients and forums mark up.
_HTML_DROP = (
    "head, script, style, template, blockquote, aside.quote, div.gmail_quote, "
    "div.yahoo_quoted, .gmail_signature, .moz-signature, #Signature"
)
_HTML_BLOCKS = "p, div, li, tr, h1, h2, h3, h4, h5, h6, table, ul, ol, section, article, header, footer, dd, dt, hr"

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


def _html_to_text(html: str) -> str:
    tree = LexborHTMLParser(html)
    for node in tree.css(_HTML_DROP):
        node.decompose()
    for node in tree.css("pre"):
        node.replace_with("\n" + _shorten_code(node.text()) + "\n")
    for node in tree.css("br"):
        node.replace_with("\n")
    for node in tree.css(_HTML_BLOCKS):
        node.insert_before("\n")
        node.insert_after("\n")
    for node in tree.css("td, th"):
        node.insert_after(" ")
    root = tree.body or tree.root
    return root.text(separator="", strip=False) if root is not None else ""


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


# --- redaction ----------------------------------------------------------------------------

# "%40" is the URL-encoded "@" of e-mails inside query strings.
_EMAIL_RE = re.compile(r"[\w.+%'-]{1,64}(?:@|%40)(?:[^\W_][\w-]{0,62}\.)+[^\W\d_]{2,24}\b")

# IBAN length per country (SWIFT IBAN registry). An exact length plus the mod-97 check keeps
# false positives on product codes and serial numbers negligible.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
# Printed IBANs come compact or in groups of four; the candidate may run into the next word,
# which _redact_iban trims back to the country's length.
_IBAN_RE = re.compile(r"(?<![^\W_])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}(?![^\W_])")
# 13-19 digit card numbers, grouped by single spaces or dashes in any way.
_CARD_RE = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,40}(?![\w-])")
_IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
# At most 45 characters (the longest textual IPv6 address), which also keeps it linear.
_IPV6_RE = re.compile(r"(?<![\w:.])[0-9A-Fa-f:.]{2,45}(?:%[\w.]{1,16})?(?![\w:])")
# International numbers the phonenumbers metadata may not call valid (fictional ranges,
# new allocations): "+", then 8-15 digits with light punctuation.
_PLUS_PHONE_RE = re.compile(r"(?<![\w+])\+\d(?:[ .()/-]{0,2}\d){7,14}(?!\d)")
# North-American numbers written with separators, including the fictional 555-01xx range.
_NANP_PHONE_RE = re.compile(r"(?<![\w(+-])(?:1[ .-])?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-])")
# Runs of digits and phone punctuation worth handing to phonenumbers. Scanning only these
# keeps redaction linear: PhoneNumberMatcher over a whole ticket per region is ~10x slower.
_PHONE_CANDIDATE_RE = re.compile(r"(?<!\w)[+(]?\d[\d ()./-]{5,30}\d(?!\w)")
_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN")


def _is_luhn_valid(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _redact_card(m: re.Match[str]) -> str:
    # The match may glue a card to neighbouring numbers ("qty 2 4111 1111 1111 1111"), so try
    # every run of digit groups, longest first, rather than only the whole match.
    text = m.group()
    groups = [(g.start(), g.end()) for g in re.finditer(r"\d+", text)]
    out: list[str] = []
    pos = 0
    i = 0
    while i < len(groups):
        for j in range(len(groups), i, -1):
            digits = "".join(text[s:e] for s, e in groups[i:j])
            if 13 <= len(digits) <= 19 and _is_luhn_valid(digits):
                out += [text[pos : groups[i][0]], CARD]
                pos = groups[j - 1][1]
                i = j
                break
        else:
            i += 1
    return "".join(out) + text[pos:]


def _redact_iban(m: re.Match[str]) -> str:
    text = m.group()
    length = _IBAN_LENGTHS.get(text[:2].upper())
    if length is None:
        return text
    # Map the compact IBAN length back to a position in the (possibly spaced) match.
    ends = [i + 1 for i, char in enumerate(text) if char != " "]
    if len(ends) < length:
        return text
    end = ends[length - 1]
    compact = text[:end].replace(" ", "").upper()
    if int("".join(str(int(c, 36)) for c in compact[4:] + compact[:4])) % 97 != 1:
        return text
    return IBAN + text[end:]


def _redact_ipv4(m: re.Match[str]) -> str:
    try:
        ipaddress.IPv4Address(m.group())
    except ValueError:
        return m.group()
    return IP


def _redact_ipv6(m: re.Match[str]) -> str:
    text = m.group()
    if text.count(":") < 2:
        return text  # a hex word, a number or an IPv4 address
    # Sentence punctuation may follow an address ("fe80::1." or "::1:").
    address = text.rstrip(".:") if not text.endswith("::") else text
    if not any(c.isalnum() for c in address):
        return text  # a bare "::" is C++ scope, not the unspecified address
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return text
    return IP + text[len(address) :]


def _redact_phone_candidate(m: re.Match[str]) -> str:
    text = m.group()
    spans: list[tuple[int, int]] = []
    for region in _PHONE_REGIONS:
        matcher = phonenumbers.PhoneNumberMatcher(text, region, phonenumbers.Leniency.VALID)
        spans += [(match.start, match.end) for match in matcher]
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        if start >= pos:
            out += [text[pos:start], PHONE]
            pos = end
        elif end > pos:
            pos = end
    return "".join(out) + text[pos:]


_REDACTIONS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # E-mails first: they contain digits and dots the other patterns would chew on. IBANs
    # before cards (an IBAN's digits can pass Luhn), and cards and IPs before phones (both
    # look like phone numbers to a digit scanner).
    (_EMAIL_RE, EMAIL),
    (_IBAN_RE, _redact_iban),
    (_CARD_RE, _redact_card),
    (_IPV6_RE, _redact_ipv6),
    (_IPV4_RE, _redact_ipv4),
    (_PLUS_PHONE_RE, PHONE),
    (_NANP_PHONE_RE, PHONE),
    (_PHONE_CANDIDATE_RE, _redact_phone_candidate),
)


def redact(text: str) -> str:
    """Replace personal data with typed placeholders.

    Replaces e-mail addresses (also inside URLs, including URL-encoded ``%40``) with
    ``<EMAIL>``, IBANs with a valid length and mod-97 check digits with ``<IBAN>``, 13-19
    digit card numbers passing the Luhn check with ``<CARD>``, IPv4/IPv6 addresses with
    ``<IP>``, and phone numbers (``+`` international forms, North-American forms, and
    anything ``phonenumbers`` calls valid for US, GB, DE, FR or IN) with ``<PHONE>``.
    Typed placeholders keep "please call me on <PHONE>" tickets together in clusters.

    Order ids (``#12345``), amounts (``$25.00``), dates, years and three-part versions are
    left alone. Known trade-offs: a bare 10-digit number that is a valid Indian mobile
    number, a four-part version such as ``1.2.3.4`` and a digit run that happens to pass
    Luhn are redacted too; names are not detected (that needs an NER model).

    Args:
        text: Plain text, typically already cleaned by `prepare_text`.

    Returns:
        The text with each detected value replaced by its placeholder.

    Examples:
        >>> redact("Mail jo+vip@example.com or call +44 20 7946 0958 about order #12345")
        'Mail <EMAIL> or call <PHONE> about order #12345'
    """
    for pattern, replacement in _REDACTIONS:
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
        body = _html_to_text(body)
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
