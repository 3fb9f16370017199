"""The public entry points: verify, dedupe_key and parse, dispatched by vendor name.

Both the API process (verify, dedupe_key: before the raw delivery is stored) and the worker
(parse: when the stored delivery is processed) import this; it stays free of I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from connectors import (
    chatwoot,
    discourse,
    freshdesk,
    generic,
    github,
    helpscout,
    intercom,
    jira,
    zammad,
    zendesk,
)
from connectors.errors import MalformedPayload
from connectors.payload import body_hash, decode, lower_headers, try_decode
from connectors.results import Parsed
from connectors.signatures import verify

__all__ = ["VENDORS", "dedupe_key", "parse", "verify"]

log = logging.getLogger(__name__)

_MODULES: dict[str, ModuleType] = {
    "zendesk": zendesk,
    "freshdesk": freshdesk,
    "jira": jira,
    "intercom": intercom,
    "zammad": zammad,
    "chatwoot": chatwoot,
    "helpscout": helpscout,
    "discourse": discourse,
    "github": github,
    "generic": generic,
}
VENDORS: frozenset[str] = frozenset(_MODULES)

DedupeFn = Callable[[Mapping[str, str], Any], "str | None"]
ParseFn = Callable[[Mapping[str, str], Any, str], Parsed]


_UNDECODED: Any = object()


def dedupe_key(vendor: str, headers: Mapping[str, str], body: bytes, payload: Any = _UNDECODED) -> str:
    """The key that identifies this delivery across the sender's retries. Never raises.

    `payload` is the body's JSON value when the caller has decoded it already (None when it is not
    JSON), so the body is decoded once.
    """
    module = _MODULES.get(vendor)
    if module is None:
        return body_hash(body)
    if payload is _UNDECODED:
        _, payload = try_decode(body)
    lowered = lower_headers(headers)
    find: DedupeFn = module.dedupe_key
    try:
        found = find(lowered, payload)
    except Exception:  # the API must store the delivery whatever the body holds
        log.exception("dedupe key extraction failed for %s; using the body hash", vendor)
        found = None
    return found or body_hash(body)


def parse(vendor: str, headers: Mapping[str, str], body: bytes, stored_key: str | None = None) -> Parsed:
    """Map a stored delivery onto items and deletes, decoding the body once. `stored_key` is the
    dedupe key the API stored with the delivery; it is computed again only when absent.

    Raises:
        MalformedPayload: the body is not JSON, or not a shape this vendor sends.
    """
    module = _MODULES.get(vendor)
    if module is None:
        raise MalformedPayload(f"unknown vendor {vendor!r}")
    payload = decode(body)
    mapper: ParseFn = module.parse
    key = stored_key or dedupe_key(vendor, headers, body, payload)
    return mapper(lower_headers(headers), payload, key)
