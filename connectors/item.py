"""Assemble one item dict with exactly `ItemCreate`'s keys, bounded and cleaned.

Mappers pass what they extracted; this module applies the limits of `schemas.items` so a large
or odd payload yields a shorter item rather than a validation error in the worker.
"""

from __future__ import annotations

from typing import Any

from connectors.html import html_to_text
from schemas.items import MAX_BODY_CHARS, clean_str

_MAX_TITLE = 2048
_MAX_SHORT = 512
_MAX_TAG = 256
_MAX_TAGS = 200
_MAX_URL = 2048
_MAX_EVENTS = 1000
_MAX_VOTES = 2_000_000_000
_MAX_REOPENS = 1_000_000
INTENTS = frozenset({"feature_request", "bug", "question", "other"})


def status_event(at: str | None, from_status: str | None, to_status: str | None) -> dict[str, Any]:
    """One status change; `to_status` and `at` are required, so callers check `is_event`."""
    return {"at": at, "from_status": _short(from_status), "to_status": _short(to_status)}


def build_item(
    *,
    source: str,
    external_id: str | None,
    kind: str,
    body: str | None,
    created_at: str | None,
    title: str | None = None,
    body_is_html: bool = False,
    updated_at: str | None = None,
    status: str | None = None,
    status_events: list[dict[str, Any]] | None = None,
    first_response_at: str | None = None,
    reopens: int | None = None,
    channel: str | None = None,
    priority: str | None = None,
    product: str | None = None,
    tags: list[str] | None = None,
    requester_id: str | None = None,
    votes: int | None = None,
    url: str | None = None,
    intent: str | None = None,
    csat: int | None = None,
    agent_replies: int | None = None,
    assignee_changes: int | None = None,
) -> dict[str, Any] | None:
    """The item dict, or None when the payload lacks an id, a creation time or any text.

    An empty body falls back to the title: a ticket whose only text is its subject is still
    worth clustering, and ItemCreate refuses a blank body.
    """
    item_id = _bounded(external_id, 256)
    if item_id is None or created_at is None:
        return None
    clean_title = _bounded(title, _MAX_TITLE)
    text = body or ""
    if body_is_html and text:
        text = html_to_text(text)
    text = clean_str(text).strip()[:MAX_BODY_CHARS]
    if not text:
        text = clean_title or ""
    if not text.strip():
        return None
    events = [e for e in status_events or [] if e["at"] and e["to_status"]][:_MAX_EVENTS]
    return {
        "source": source,
        "external_id": item_id,
        "kind": kind,
        "title": clean_title,
        "body": text,
        "created_at": created_at,
        "updated_at": updated_at,
        "status": _short(status),
        "status_events": _unique(events),
        "first_response_at": first_response_at,
        "reopens": reopens if reopens is not None and 0 <= reopens <= _MAX_REOPENS else None,
        "channel": _short(channel),
        "priority": _short(priority),
        "product": _short(product),
        "tags": _tags(tags or []),
        "requester_id": _short(requester_id),
        "votes": votes if votes is not None and 0 <= votes <= _MAX_VOTES else None,
        "url": _url(url),
        "intent": intent if intent in INTENTS else None,
        "csat": csat if csat is not None and 1 <= csat <= 5 else None,
        "customer_replies": None,  # no vendor payload carries it; POST /v1/items does
        "language": None,  # inferred from the text at ingest
        "agent_replies": agent_replies if agent_replies is not None and 0 <= agent_replies <= _MAX_REOPENS else None,
        "assignee_changes": assignee_changes
        if assignee_changes is not None and 0 <= assignee_changes <= _MAX_REOPENS
        else None,
    }


def _bounded(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    cleaned = clean_str(value).strip()[:limit]
    return cleaned or None


def _short(value: str | None) -> str | None:
    return _bounded(value, _MAX_SHORT)


def _tags(values: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        tag = _bounded(value, _MAX_TAG)
        if tag is not None:
            seen.setdefault(tag, None)
    return list(seen)[:_MAX_TAGS]


def _unique(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # A payload can show the same change twice (e.g. status and resolution items in one Jira
    # changelog); the history treats a duplicate as one event anyway.
    seen: set[tuple[Any, ...]] = set()
    kept = []
    for event in events:
        key = (event["at"], event["from_status"], event["to_status"])
        if key not in seen:
            seen.add(key)
            kept.append(event)
    return kept


def _url(url: str | None) -> str | None:
    if url is None or len(url) > _MAX_URL:
        return None
    cleaned = clean_str(url).strip()
    is_web = cleaned.startswith(("https://", "http://")) and not any(c.isspace() for c in cleaned)
    return cleaned if is_web else None
