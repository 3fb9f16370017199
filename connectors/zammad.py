"""Zammad trigger webhooks, default payload `{"ticket": {...}, "article": {...}}` (webhooks.md §6).

Signature `X-Hub-Signature: sha1=<hex>` when a token is set on the webhook; without one, the
connection authenticates with our shared secret (see `connectors.signatures`).

The ticket maps to an item; the raw status is the state name (`new`, `open`, `pending reminder`,
`pending close`, `closed`, `merged`, ...). The payload carries the *latest* article only: when it
is the ticket's first article its text is the body; otherwise the body falls back to the ticket
title (ItemCreate requires a body), and the worker keeps the text it already holds for the ticket
(workers/deliveries.py). The payload shows no
previous state, so there are no status events. Dedupe: `X-Zammad-Delivery` (the job id, kept
across retries), else (ticket id, `updated_at`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connectors.errors import MalformedPayload
from connectors.fields import arr, dig, flag, ident, integer, lower, obj, strings, text
from connectors.item import build_item
from connectors.payload import key
from connectors.results import Parsed
from connectors.timeparse import iso

SOURCE = "zammad"
_API_LINK = re.compile(r"^(https?://[^/\s]+)/api/v1/")


def dedupe_key(headers: Mapping[str, str], payload: Any) -> str | None:
    found = key("delivery", ident(headers.get("x-zammad-delivery")))
    if found is not None:
        return found
    ticket = obj(obj(payload).get("ticket"))
    return key("object", ident(ticket.get("id")), text(ticket.get("updated_at")))


def parse(headers: Mapping[str, str], payload: Any, dedupe: str) -> Parsed:
    if not isinstance(payload, dict) or not isinstance(payload.get("ticket"), dict):
        raise MalformedPayload("Zammad body has no ticket object")
    ticket, article = payload["ticket"], obj(payload.get("article"))
    event = text(headers.get("x-zammad-trigger")) or "trigger"
    item = _item(ticket, article)
    return Parsed(dedupe, event, items=[item] if item else [], ignored=item is None)


def _item(ticket: dict[str, Any], article: dict[str, Any]) -> dict[str, Any] | None:
    is_first = _is_first_article(ticket, article) and flag(article.get("internal")) is not True
    body = text(article.get("body")) if is_first else None
    customer = obj(ticket.get("customer"))
    return build_item(
        source=SOURCE,
        external_id=ident(ticket.get("id")),
        kind="ticket",
        title=text(ticket.get("title")),
        body=body,
        body_is_html=lower(article.get("content_type")) == "text/html",
        created_at=iso(ticket.get("created_at")),
        updated_at=iso(ticket.get("updated_at")),
        status=lower(ticket.get("state")) or lower(dig(ticket, "state", "name")),
        channel=lower(ticket.get("create_article_type")),
        priority=_priority(ticket.get("priority")),
        tags=strings(ticket.get("tags")),
        requester_id=ident(ticket.get("customer_id")) or ident(customer.get("id")),
        url=_ticket_url(ticket, article),
    )


def _ticket_url(ticket: dict[str, Any], article: dict[str, Any]) -> str | None:
    # The default payload names no host; attachment links do (`<base>/api/v1/...`).
    ticket_id = integer(ticket.get("id"), lo=1)
    for attachment in map(obj, arr(article.get("attachments"))):
        match = _API_LINK.match(text(attachment.get("url")) or "")
        if match is not None and ticket_id is not None:
            return f"{match[1]}/#ticket/zoom/{ticket_id}"
    return None


def _is_first_article(ticket: dict[str, Any], article: dict[str, Any]) -> bool:
    article_id = integer(article.get("id"))
    ids = [i for i in (integer(v) for v in arr(ticket.get("article_ids"))) if i is not None]
    if article_id is None:
        return False
    if ids:
        return article_id == min(ids)
    return integer(ticket.get("article_count")) == 1


def _priority(value: Any) -> str | None:
    # Default priorities are named "1 low", "2 normal", "3 high"; keep the word.
    name = lower(obj(value).get("name")) or lower(value)
    if name is None:
        return None
    head, _, word = name.partition(" ")
    return word if head.isdigit() and word else name
