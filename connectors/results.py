"""What verification and parsing hand back to the API route and the worker job."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Verified:
    """Result of checking a delivery's signature or shared secret."""

    ok: bool
    reason: str = ""  # for logs and the 401 detail; never contains a secret


@dataclass(frozen=True)
class Parsed:
    """One delivery mapped onto our item model.

    `items` are dicts whose keys are exactly `schemas.items.ItemCreate`'s fields; `deletes` are
    `(source, external_id)` pairs to mark deleted; `ratings` are `(source, external_id, csat)`
    for a stored item (a survey answer arrives on its own, without the ticket). `ignored` means:
    keep the delivery, do nothing.
    """

    dedupe_key: str
    event_type: str
    items: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[tuple[str, str]] = field(default_factory=list)
    ignored: bool = False
    ratings: list[tuple[str, str, int]] = field(default_factory=list)
