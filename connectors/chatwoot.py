"""Chatwoot account webhooks (webhooks.md §9).

Signature (4.x): `X-Chatwoot-Signature: sha256=<hex>` over `<X-Chatwoot-Timestamp>.<body>`;
older releases do not sign, so the connection then uses our shared secret (see
`connectors.signatures`).

Conversation events (`conversation_created`, `conversation_updated`,
`conversation_status_changed`) carry the conversation at the top level: its `id` (Chatwoot's
per-account display id) is the item id, the body is its earliest non-private incoming message in
`messages`, times are Unix seconds, raw status `open`/`resolved`/`pending`/`snoozed`, tags from
`labels`. A status change shows the previous value in `changed_attributes` on newer releases,
which gives a status event. Message events carry one message, not the conversation's opening
text or times, and are ignored, as are contact and typing events, except a CSAT survey message
(`content_type` `input_csat`) with its answer, which sets the conversation's CSAT. Dedupe:
`X-Chatwoot-Delivery`, else (event, conversation id, `updated_at`/`timestamp`, status).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors import ratings
from connectors.errors import MalformedPayload
from connectors.fields import arr, dig, flag, ident, lower, obj, strings, text
from connectors.item import build_item, status_event
from connectors.payload import key
from connectors.results import Parsed
from connectors.timeparse import iso

SOURCE = "chatwoot"
_CONVERSATION_EVENTS = frozenset({"conversation_created", "conversation_updated", "conversation_status_changed"})
_INCOMING = (0, "incoming")
_MESSAGE_EVENTS = frozenset({"message_created", "message_updated"})


def dedupe_key(headers: Mapping[str, str], payload: Any) -> str | None:
    found = key("delivery", ident(headers.get("x-chatwoot-delivery")))
    if found is not None:
        return found
    body = obj(payload)
    stamp = ident(body.get("updated_at")) or ident(body.get("timestamp"))
    return key("object", text(body.get("event")), ident(body.get("id")), stamp, lower(body.get("status")))


def parse(headers: Mapping[str, str], payload: Any, dedupe: str) -> Parsed:
    if not isinstance(payload, dict) or "event" not in payload:
        raise MalformedPayload("Chatwoot body has no event")
    event = text(payload.get("event")) or ""
    if event in _MESSAGE_EVENTS and payload.get("content_type") == "input_csat":
        return _rating(payload, dedupe, event)
    if event not in _CONVERSATION_EVENTS:
        return Parsed(dedupe, event, ignored=True)
    item = _item(payload)
    return Parsed(dedupe, event, items=[item] if item else [], ignored=item is None)


def _rating(message: dict[str, Any], dedupe: str, event: str) -> Parsed:
    # The survey message holds the answer once given:
    # content_attributes.submitted_values.csat_survey_response.rating (1..5).
    response = dig(message, "content_attributes", "submitted_values", "csat_survey_response")
    csat = ratings.one_to_five(dig(obj(response), "rating"))
    conversation_id = ident(dig(message, "conversation", "display_id"))
    if csat is None or conversation_id is None:
        return Parsed(dedupe, event, ignored=True)
    return Parsed(dedupe, event, ratings=[(SOURCE, conversation_id, csat)])


def _item(conversation: dict[str, Any]) -> dict[str, Any] | None:
    messages = [m for m in map(obj, arr(conversation.get("messages"))) if _is_customer_text(m)]
    messages.sort(key=lambda m: iso(m.get("created_at")) or "")
    opening = messages[0] if messages else {}
    return build_item(
        source=SOURCE,
        external_id=ident(conversation.get("id")),
        kind="ticket",
        body=text(opening.get("content")),
        created_at=iso(conversation.get("created_at")),
        updated_at=iso(conversation.get("updated_at")),
        status=lower(conversation.get("status")),
        status_events=_events(conversation),
        channel=lower(dig(conversation, "meta", "channel")) or lower(conversation.get("channel")),
        priority=lower(conversation.get("priority")),
        tags=strings(conversation.get("labels")),
        requester_id=ident(dig(conversation, "meta", "sender", "id")),
    )


def _is_customer_text(message: dict[str, Any]) -> bool:
    is_incoming = message.get("message_type") in _INCOMING
    return is_incoming and flag(message.get("private")) is not True and bool(text(message.get("content")))


def _events(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    # changed_attributes: [{"status": {"previous_value": "resolved", "current_value": "open"}}]
    at = iso(conversation.get("updated_at")) or iso(conversation.get("timestamp"))
    events = []
    for change in map(obj, arr(conversation.get("changed_attributes"))):
        status = obj(change.get("status"))
        if status:
            previous, current = (
                lower(status.get("previous_value")),
                lower(status.get("current_value")),
            )
            events.append(status_event(at, previous, current))
    if not events and conversation.get("event") == "conversation_status_changed":
        events.append(status_event(at, None, lower(conversation.get("status"))))
    return events
