"""Personal data and secrets in text: detection and masking, pure and regex-based.

Three uses, one set of detectors:

- `redact`: the text that is embedded; every kind gets a typed placeholder (``<EMAIL>``, ...).
- `mask_at_rest`: card numbers (Luhn-valid), IBANs (length and mod-97) and credential-looking
  tokens become ``[card]``, ``[iban]`` and ``[token]`` before anything is stored (spec/api.md,
  "Additions of 2026-12"); `mask_json_at_rest` does the same inside a raw webhook body.
- `mask_contacts`: e-mail addresses and phone numbers become ``[email]`` and ``[phone]`` when an
  item is served to a key without the ``pii`` scope.
"""

import ipaddress
import json
import re
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

import phonenumbers

__all__ = ["mask_at_rest", "mask_contacts", "mask_json_at_rest", "redact"]

EMAIL = "<EMAIL>"
PHONE = "<PHONE>"
CARD = "<CARD>"
IBAN = "<IBAN>"
IP = "<IP>"

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
# Printed IBANs come compact or in groups of four (see _IbanScan).
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


def _redact_card(m: re.Match[str], placeholder: str = CARD) -> str:
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
                out += [text[pos : groups[i][0]], placeholder]
                pos = groups[j - 1][1]
                i = j
                break
        else:
            i += 1
    return "".join(out) + text[pos:]


_IBAN_START_RE = re.compile(r"(?<![^\W_])[A-Za-z]{2}\d{2}")
_IBAN_MAX_CHARS = 34 + 8  # the longest IBAN, printed in groups of four


def _iban_end(text: str, start: int) -> int | None:
    """Where the IBAN starting at `start` ends, or None if none starts there."""
    length = _IBAN_LENGTHS.get(text[start : start + 2].upper())
    if length is None:
        return None
    # Alphanumerics with single spaces between them, up to the country's length.
    count, i, end = 0, start, None
    limit = min(len(text), start + _IBAN_MAX_CHARS)
    while i < limit and count < length:
        char = text[i]
        if char.isascii() and char.isalnum():
            count += 1
            i += 1
        elif char == " " and i + 1 < limit and text[i + 1] != " " and count:
            i += 1
        else:
            break
    if count < length:
        return None
    end = i
    compact = text[start:end].replace(" ", "").upper()
    if int("".join(str(int(c, 36)) for c in compact[4:] + compact[:4])) % 97 != 1:
        return None
    return end


class _IbanScan:
    """IBANs as `re.sub` would replace them, but each candidate checked on the whole text: a
    product code in front ("ref DE12 then DE89 3704 ...") or a second IBAN right behind a first
    one is never swallowed by a regex match that went too far."""

    def sub(self, repl: str, string: str) -> str:
        out: list[str] = []
        pos = 0
        for m in _IBAN_START_RE.finditer(string):
            start = m.start()
            if start < pos:
                continue
            end = _iban_end(string, start)
            if end is not None:
                out += [string[pos:start], repl]
                pos = end
        return "".join(out) + string[pos:] if out else string


_IBAN_SCAN = _IbanScan()


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


def _redact_phone_candidate(m: re.Match[str], placeholder: str = PHONE) -> str:
    text = m.group()
    spans: list[tuple[int, int]] = []
    for region in _PHONE_REGIONS:
        matcher = phonenumbers.PhoneNumberMatcher(text, region, phonenumbers.Leniency.VALID)
        spans += [(match.start, match.end) for match in matcher]
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        if start >= pos:
            out += [text[pos:start], placeholder]
            pos = end
        elif end > pos:
            pos = end
    return "".join(out) + text[pos:]


class _Substitution(Protocol):
    def sub(self, repl: Any, string: str) -> str: ...


_REDACTIONS: tuple[tuple[_Substitution, str | Callable[[re.Match[str]], str]], ...] = (
    # E-mails first: they contain digits and dots the other patterns would chew on. IBANs
    # before cards (an IBAN's digits can pass Luhn), and cards and IPs before phones (both
    # look like phone numbers to a digit scanner).
    (_EMAIL_RE, EMAIL),
    (_IBAN_SCAN, IBAN),
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


# --- masking at rest: cards, IBANs, tokens ------------------------------------------------

MASKED_CARD = "[card]"
MASKED_IBAN = "[iban]"
MASKED_TOKEN = "[token]"
MASKED_EMAIL = "[email]"
MASKED_PHONE = "[phone]"

# Credentials with a recognisable shape: vendor key prefixes, JWTs, PEM private keys. Our own API
# keys (tk_) are among them: a customer pasting one into a ticket must not leave it readable.
_TOKEN_RE = re.compile(
    r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----.{0,8000}?-----END (?:[A-Z]+ )*PRIVATE KEY-----"
    r"|(?<![\w-])(?:"
    r"tk_[A-Za-z0-9_-]{32,}"  # this service's API keys
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe secret and restricted keys
    r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key ids
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWTs
    r")(?![\w-])",
    re.S,
)
# "password: hunter2x9", "api_key=abc123...", "Authorization: Bearer abc...": the name stays, the
# value goes. A value must hold a digit (or be long), so "token: expired" is left alone.
_SECRET_VALUE_RE = re.compile(
    r"(?i)(\b(?:password|passwd|pwd|passcode|secret|client[_ -]?secret|api[_ -]?key|access[_ -]?key"
    r"|access[_ -]?token|auth[_ -]?token|token)\b[\"']?\s{0,3}(?:[:=]|\bis\b)\s{0,3}[\"']?(?:bearer\s+)?"
    r"|\bbearer\s+)"
    r"((?=[^\s\"',;]{0,200}\d)[^\s\"',;]{8,200}|[A-Za-z0-9_\-.=+/]{24,200})"
)


def _mask_secret_value(m: re.Match[str]) -> str:
    return m.group(1) + MASKED_TOKEN


_AT_REST: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (_TOKEN_RE, MASKED_TOKEN),
    (_SECRET_VALUE_RE, _mask_secret_value),
)
_MASK_CARD = partial(_redact_card, placeholder=MASKED_CARD)
# Cheap tests that skip the scans on text that cannot hold a match (most tickets): substring
# searches and a digit count run in C, where the regexes above cost tens of microseconds a body.
_SECRET_HINTS = tuple(
    w.encode()
    for w in ("pass", "pwd", "secret", "key", "token", "bearer", "tk_", "sk_", "rk_", "gh", "xox", "akia", "asia")
    + ("aiza", "glpat", "eyj", "private")
)
_DIGITS = b"0123456789"
# Bytes to their class (digit 0, letter a, space, dash, anything else x): a card needs 13 digits
# with nothing but spaces and dashes between them, an IBAN two letters and two digits together.
_CLASSES = (
    bytes(
        ord("0") if chr(b).isdigit() else ord("a") if chr(b).isalpha() else b if chr(b) in " -" else ord("x")
        for b in range(128)
    )
    + b"x" * 128
)


# One compiled alternation finds any hint in one pass (1.7 µs a Banking77 text against 6.3 µs for
# seventeen `in` scans; bench/RESULTS.md, issue 17): it runs on every string of every body.
_SECRET_HINT = re.compile(b"|".join(map(re.escape, _SECRET_HINTS)))


def _may_hold_secret(raw: bytes) -> bool:
    return _SECRET_HINT.search(raw.lower()) is not None


def _digit_count(raw: bytes) -> int:
    return len(raw) - len(raw.translate(None, _DIGITS))


def _may_hold_card_or_iban(raw: bytes) -> tuple[bool, bool]:
    classes = raw.translate(_CLASSES)
    return b"0" * 13 in classes.translate(None, b" -"), b"aa00" in classes


_EMAIL_SHIELD = "\x00{}\x00"  # NUL never survives clean_str, so it cannot clash with the text


def _shielded(text: str, pattern: re.Pattern[str], apply: Callable[[str], str]) -> str:
    """Apply `apply` to `text` with the matches of `pattern` set aside and put back afterwards."""
    if "\x00" in text:  # a raw payload string may hold NUL: no safe marker, no shield
        return apply(text)
    kept: list[str] = []

    def shield(m: re.Match[str]) -> str:
        kept.append(m.group())
        return _EMAIL_SHIELD.format(len(kept) - 1)

    out = apply(pattern.sub(shield, text))
    return re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], out) if kept else out


def _apply_at_rest(text: str) -> str:
    # Non-ASCII text may write its digits in other scripts, which \d matches: scan it all.
    raw = text.encode("ascii") if text.isascii() else None
    if raw is None or _may_hold_secret(raw):
        for pattern, replacement in _AT_REST:
            text = pattern.sub(replacement, text)
    card, iban = _may_hold_card_or_iban(raw) if raw is not None else (True, True)
    # IBANs before cards: an IBAN's digits can pass Luhn. E-mails were shielded (mask_at_rest).
    if iban:
        text = _IBAN_SCAN.sub(MASKED_IBAN, text)
    if card:
        text = _CARD_RE.sub(_MASK_CARD, text)
    return text


def mask_at_rest(text: str) -> str:
    """Mask card numbers, IBANs and credential-looking tokens, the values no key may read back.

    Cards are 13-19 digits passing the Luhn check (spaced or dashed in any grouping), IBANs have
    their country's length and valid mod-97 check digits, and tokens are vendor API keys (Stripe,
    GitHub, Slack, AWS, Google, GitLab, this service's ``tk_`` keys), JWTs, PEM private keys and
    the value after ``password:``/``api_key=``/``Bearer`` when it looks like a secret. E-mail
    addresses are left whole (they are masked at read time instead, see `mask_contacts`).

    Args:
        text: Any stored text: a title, a body, a string inside a webhook payload.

    Returns:
        The text with each value replaced by ``[card]``, ``[iban]`` or ``[token]``.

    Examples:
        >>> mask_at_rest("Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00")
        'Card [card], IBAN [iban]'
    """
    if "@" in text or "%40" in text:
        return _shielded(text, _EMAIL_RE, _apply_at_rest)
    return _apply_at_rest(text)


# Keys whose values are identifiers or times, never free text: a 16-digit id that happens to
# pass Luhn must not be turned into "[card]" (it would no longer match its item).
_ID_KEY_RE = re.compile(r"(?:^|_|\b)(?:id|ids|uuid|timestamp|time|date|at|ts)$|[a-z](?:Id|Ids|At)$")


def _mask_value(value: Any, key: str | None, changed: list[bool]) -> Any:
    if isinstance(value, str):
        if key is not None and _ID_KEY_RE.search(key) and not _may_hold_secret(value.encode("utf-8", "replace")):
            return value
        masked = mask_at_rest(value)
        if masked != value:
            changed[0] = True
        return masked
    if isinstance(value, dict):
        return {k: _mask_value(v, k, changed) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_value(v, key, changed) for v in value]
    return value


def mask_json_at_rest(body: bytes) -> bytes:
    """`mask_at_rest` over every string of a JSON body (a raw webhook delivery).

    The body comes back byte for byte when nothing was masked. Otherwise it is re-serialised
    (key order kept, UTF-8, no extra spaces). Identifier and time fields (``id``, ``*_id``,
    ``created_at``, ``timestamp``, ...) are left alone unless they hold a token. A body that is
    not JSON is masked as text, its undecodable bytes kept as they were.

    Args:
        body: The delivery's bytes as received (after its signature was checked).

    Returns:
        The bytes to store.
    """
    if body.isascii() and not any(_may_hold_card_or_iban(body)) and not _may_hold_secret(body):
        return body
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        text = body.decode("utf-8", "surrogateescape")
        masked = mask_at_rest(text)
        return body if masked == text else masked.encode("utf-8", "surrogateescape")
    changed = [False]
    try:
        masked_value = _mask_value(parsed, None, changed)
    except RecursionError:
        return body
    if not changed[0]:
        return body
    return json.dumps(masked_value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


# --- masking at read time: e-mails and phones -----------------------------------------------

_CONTACTS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (_PLUS_PHONE_RE, MASKED_PHONE),
    (_NANP_PHONE_RE, MASKED_PHONE),
    (_PHONE_CANDIDATE_RE, partial(_redact_phone_candidate, placeholder=MASKED_PHONE)),
)
_IP_OR_MASK_RE = re.compile(f"{_IPV4_RE.pattern}|\\[(?:card|iban|token)\\]")


def _mask_phones(text: str) -> str:
    for pattern, replacement in _CONTACTS:
        text = pattern.sub(replacement, text)
    return text


def mask_contacts(text: str) -> str:
    """Mask e-mail addresses and phone numbers, for a key without the ``pii`` scope.

    E-mails (also URL-encoded inside links) become ``[email]``; phone numbers (``+``
    international forms, North-American forms, and what ``phonenumbers`` calls valid for US, GB,
    DE, FR or IN) become ``[phone]``. IPv4 addresses are not phone numbers and stay.

    Args:
        text: Stored item text (already masked at rest).

    Returns:
        The text as a key without ``pii`` sees it.

    Examples:
        >>> mask_contacts("Mail jo@example.com or call +44 20 7946 0958 about order #12345")
        'Mail [email] or call [phone] about order #12345'
    """
    if "@" in text or "%40" in text:
        text = _EMAIL_RE.sub(MASKED_EMAIL, text)
    if text.isascii() and _digit_count(text.encode("ascii")) < 7:  # no phone number is shorter
        return text
    return _shielded(text, _IP_OR_MASK_RE, _mask_phones)
