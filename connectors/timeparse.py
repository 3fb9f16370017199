"""Vendor time formats to timezone-aware UTC datetimes (webhooks.md §0.6).

Seen in the payloads: ISO 8601 with nanoseconds (`2025-01-08T10:12:07.672717030Z`), numeric
offsets without a colon (Jira `2019-02-15T19:01:52.971-0800`), a `UTC` suffix after a space
(Chatwoot `2020-03-03 13:05:57 UTC`), RFC 2822 dates, Unix seconds and Jira's Unix milliseconds.
Anything unparseable is None, never an exception.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

_ISO = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)"
    r"(?:[.,](?P<frac>\d+))?\s*(?P<tz>Z|z|UTC|GMT|[+-]\d{2}:?\d{2}|[+-]\d{2})?$"
)
_MAX_TEXT = 64  # longer strings are not timestamps; refusing them keeps the regex cheap


def parse_time(value: Any, *, unit: str = "s") -> datetime | None:
    """Parse a vendor timestamp; `unit` says how to read numbers ("s" or "ms")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(value / 1000 if unit == "ms" else value)
    if isinstance(value, str) and value.strip() and len(value) <= _MAX_TEXT:
        stripped = value.strip()
        if stripped.isdigit():
            return _from_epoch(int(stripped) / 1000 if unit == "ms" else int(stripped))
        return _from_iso(stripped) or _from_rfc2822(stripped)
    return None


def iso(value: Any, *, unit: str = "s") -> str | None:
    """`parse_time` rendered as an RFC 3339 string in UTC (what the item dicts carry)."""
    parsed = parse_time(value, unit=unit)
    return parsed.isoformat() if parsed is not None else None


def _from_epoch(seconds: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _from_iso(value: str) -> datetime | None:
    match = _ISO.match(value)
    if match is None:
        return None
    frac = (match["frac"] or "")[:6]  # Python keeps microseconds; nanoseconds are dropped
    tz = match["tz"] or "Z"  # no offset given: the vendors that omit one mean UTC
    if tz.upper() in ("Z", "UTC", "GMT"):
        tz = "+00:00"
    elif ":" not in tz:
        tz = f"{tz[:3]}:{tz[3:] or '00'}"
    clock = match["time"] if match["time"].count(":") == 2 else f"{match['time']}:00"
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{clock}{'.' + frac if frac else ''}{tz}")
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _from_rfc2822(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
