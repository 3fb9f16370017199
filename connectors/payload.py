"""Decoding a delivery and building dedupe keys (webhooks.md §0.5).

Dedupe keys, in order of preference: a vendor delivery or event id that is stable across
retries (`delivery:` / `event:`), else the object's id, event name and update time (`object:`),
else the SHA-256 of the raw body (`hash:`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from connectors.errors import MalformedPayload

_MAX_KEY = 200  # longer keys are hashed so the column stays small and indexable


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def decode(body: bytes) -> Any:
    """The JSON value of the body; MalformedPayload if it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        # ValueError covers bad JSON, bad UTF-8 and ints over Python's digit limit;
        # RecursionError covers absurd nesting.
        raise MalformedPayload(f"body is not valid JSON: {type(error).__name__}") from None


def try_decode(body: bytes) -> tuple[bool, Any]:
    """(True, the JSON value), or (False, None) when the body is not JSON: the API's one decode,
    which both the dedupe key and the not-JSON refusal use."""
    try:
        return True, decode(body)
    except MalformedPayload:
        return False, None


def body_hash(body: bytes) -> str:
    return f"hash:{hashlib.sha256(body).hexdigest()}"


def key(kind: str, *parts: str | None) -> str | None:
    """`kind:part:part...`, or None when a part is missing (the caller falls back further)."""
    if any(part is None for part in parts):
        return None
    joined = ":".join(str(part) for part in parts)
    if len(joined) > _MAX_KEY or not joined.isprintable():
        joined = "sha256:" + hashlib.sha256(joined.encode("utf-8", "replace")).hexdigest()
    return f"{kind}:{joined}"
