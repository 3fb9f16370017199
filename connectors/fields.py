"""Tolerant readers for decoded JSON: a missing or wrong-typed value becomes None, never an error.

Vendor payloads are parsed defensively (webhooks.md §5: "parse defensively"), so every mapper
reads through these instead of indexing into the JSON directly.
"""

from __future__ import annotations

from typing import Any

# Ids longer than this are not ids (ItemCreate allows 256; room is left for prefixes).
MAX_ID_CHARS = 200
# Integers beyond this are not ids or counters any vendor sends; refusing them keeps str() cheap.
MAX_ABS_INT = 10**30


def obj(value: Any) -> dict[str, Any]:
    """The value if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def arr(value: Any) -> list[Any]:
    """The value if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def dig(value: Any, *path: str) -> Any:
    """Follow object keys; None as soon as one step is not an object."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def text(value: Any) -> str | None:
    """A non-blank string, stripped; anything else is None."""
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return None


def integer(value: Any, *, lo: int = -MAX_ABS_INT, hi: int = MAX_ABS_INT) -> int | None:
    """An int within [lo, hi] (bools are not ints here; digit strings are accepted)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 31:
        value = int(value.strip())
    if isinstance(value, int) and lo <= value <= hi:
        return value
    return None


def number(value: Any) -> float | None:
    """A finite int or float (bools excluded)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) <= MAX_ABS_INT else None
    return value if value == value and abs(value) != float("inf") else None


def ident(value: Any) -> str | None:
    """A vendor object id as a string: ints and short non-blank strings qualify."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if abs(value) <= MAX_ABS_INT else None
    found = text(value)
    if found is None or len(found) > MAX_ID_CHARS:
        return None
    return found


def flag(value: Any) -> bool | None:
    """A JSON boolean, else None."""
    return value if isinstance(value, bool) else None


def lower(value: Any) -> str | None:
    """A non-blank string, stripped and lower-cased."""
    found = text(value)
    return found.lower() if found is not None else None


def strings(value: Any, *, key: str | None = None) -> list[str]:
    """Strings from a list (or, with `key`, from a list of objects); other entries are skipped."""
    found: list[str] = []
    for entry in arr(value):
        candidate = obj(entry).get(key) if key is not None else entry
        name = text(candidate)
        if name is not None:
            found.append(name)
    return found
