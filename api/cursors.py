"""The one cursor codec of every paginated list (API and dashboard): the position after the last
row as a flat JSON array of ints and strings, base64url-encoded, opaque to clients.

A cursor this service did not issue is answered 422 before any of it is decoded further than
needed: longer than MAX_CHARS, not base64, not one flat array (a deeply nested one included),
the wrong number or kind of keys, or an integer outside Postgres bigint.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from api.errors import Unprocessable

MAX_CHARS = 200
BIGINT_MAX = 2**63 - 1

Key = int | str


def encode_cursor(*keys: Key) -> str:
    raw = json.dumps(list(keys), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _refuse(why: str) -> Unprocessable:
    msg = f"cursor is not one this service issued ({why}); start again from the first page"
    return Unprocessable([{"type": "value_error", "loc": ["query", "cursor"], "msg": msg}])


def decode_cursor(cursor: str, *kinds: type[int] | type[str]) -> tuple[Any, ...]:
    """The keys of a cursor made by encode_cursor with keys of these kinds, in order.

    Integers must be 0..BIGINT_MAX (every key we page on is a non-negative bigint or a time in
    microseconds)."""
    if len(cursor) > MAX_CHARS:
        raise _refuse(f"longer than {MAX_CHARS} characters")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise _refuse("not base64url") from None
    # One flat array: a single '[' and no objects. Checked on the bytes, so a nested cursor never
    # reaches the recursive JSON parser.
    if raw[:1] != b"[" or raw.count(b"[") != 1 or b"{" in raw:
        raise _refuse("not a flat list of keys")
    try:
        values = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _refuse("not JSON") from None
    if not isinstance(values, list) or len(values) != len(kinds):
        raise _refuse("wrong number of keys")
    for value, kind in zip(values, kinds, strict=True):
        if type(value) is not kind:
            raise _refuse("wrong kind of key")
        if isinstance(value, int) and not 0 <= value <= BIGINT_MAX:
            raise _refuse("key out of range")
    return tuple(values)


def encode_after(last_id: int) -> str:
    """The cursor of a list paged by id: the last id of this page."""
    return encode_cursor(last_id)


def decode_after(cursor: str | None) -> int:
    """The id a page starts after: 0 for the first page."""
    if not cursor:
        return 0
    (after,) = decode_cursor(cursor, int)
    return int(after)
