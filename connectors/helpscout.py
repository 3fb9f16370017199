"""Help Scout mailbox webhooks: Mailbox API v2 conversation bodies (webhooks.md §8).

Signature `X-HelpScout-Signature: base64(HMAC-SHA1(secret, body))`; the event name is in
`X-HelpScout-Event`. `convo.*` events map the conversation: body from the earliest customer
thread in `_embedded.threads` (HTML), raw status `active`/`pending`/`closed`/`spam`, a status
event at `closedAt` when closed, `first_response_at` from the earliest agent `reply` thread,
tags from `tags[].tag`, product from a custom field named "Product". `convo.deleted` (body
`{"id": ...}`) becomes a delete; `satisfaction.ratings` sets the rated conversation's CSAT
(connectors/ratings.py); `customer.*`, `tag.*` and `helpscout.test` are ignored. No vendor
sample payload exists (see webhooks.md), so the shapes follow the v2 API documentation.
Dedupe: (event, conversation id, `userUpdatedAt`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors import ratings
from connectors.errors import MalformedPayload
from connectors.fields import arr, dig, ident, lower, obj, text
from connectors.item import build_item, status_event
from connectors.payload import key
from connectors.results import Parsed
from connectors.timeparse import iso

SOURCE = "helpscout"


def dedupe_key(headers: Mapping[str, str], payload: Any) -> str | None:
    body = obj(payload)
    event = text(headers.get("x-helpscout-event"))
    return key("object", event, ident(body.get("id")), text(body.get("userUpdatedAt")))


def parse(headers: Mapping[str, str], payload: Any, dedupe: str) -> Parsed:
    if not isinstance(payload, dict):
        raise MalformedPayload("Help Scout body is not a JSON object")
    event = text(headers.get("x-helpscout-event")) or ""
    if event == "convo.deleted":
        convo_id = ident(payload.get("id"))
        return Parsed(dedupe, event, deletes=[(SOURCE, convo_id)] if convo_id else [], ignored=not convo_id)
    if event.startswith("satisfaction.ratings"):
        return _rating(payload, dedupe, event)
    # Without the event header a conversation body is still recognisable by its mailbox.
    is_conversation = event.startswith("convo.") or (not event and "mailboxId" in payload)
    if not is_conversation:
        return Parsed(dedupe, event, ignored=True)
    if "id" not in payload:
        raise MalformedPayload("Help Scout conversation has no id")
    item = _item(payload)
    return Parsed(dedupe, event or "convo", items=[item] if item else [], ignored=item is None)


def _rating(rating: dict[str, Any], dedupe: str, event: str) -> Parsed:
    # The Rating object names the rated conversation `ticketId`: Great 5, Okay 3, Bad 1.
    convo_id, csat = ident(rating.get("ticketId")), ratings.helpscout(rating.get("rating"))
    if convo_id is None or csat is None:
        return Parsed(dedupe, event, ignored=True)
    return Parsed(dedupe, event, ratings=[(SOURCE, convo_id, csat)])


def _item(convo: dict[str, Any]) -> dict[str, Any] | None:
    threads = sorted(
        (t for t in map(obj, arr(dig(convo, "_embedded", "threads"))) if iso(t.get("createdAt"))),
        key=lambda t: iso(t.get("createdAt")) or "",
    )
    opening = next((t for t in threads if lower(t.get("type")) == "customer"), {})
    reply = next(
        (t for t in threads if lower(t.get("type")) == "reply" and lower(t.get("state")) != "draft"),
        {},
    )
    status = lower(convo.get("status"))
    closed_at = iso(convo.get("closedAt"))
    return build_item(
        source=SOURCE,
        external_id=ident(convo.get("id")),
        kind="ticket",
        title=text(convo.get("subject")),
        body=text(opening.get("body")) or text(convo.get("preview")),
        body_is_html=True,
        created_at=iso(convo.get("createdAt")),
        updated_at=iso(convo.get("userUpdatedAt")),
        status=status,
        status_events=[status_event(closed_at, None, "closed")] if status == "closed" else [],
        first_response_at=iso(reply.get("createdAt")),
        channel=lower(dig(convo, "source", "type")),
        product=_custom_field(convo, "product"),
        tags=[t for t in (text(obj(tag).get("tag")) for tag in arr(convo.get("tags"))) if t],
        requester_id=ident(dig(convo, "primaryCustomer", "id")),
        url=text(dig(convo, "_links", "web", "href")),
    )


def _custom_field(convo: dict[str, Any], name: str) -> str | None:
    for field in map(obj, arr(convo.get("customFields"))):
        if lower(field.get("name")) == name:
            return text(field.get("text")) or text(field.get("value"))
    return None
