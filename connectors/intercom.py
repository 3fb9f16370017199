"""Intercom conversation webhooks (`notification_event` envelope, webhooks.md §5).

Signature `X-Hub-Signature: sha1=<hex>` keyed with the app's client secret. Every
`conversation.*` topic maps `data.item` (the conversation): body from `conversation_message`
(HTML), times in Unix seconds, raw status from `state` (2020+ payloads) or the `open` flag
(`open`/`closed`). Conversation parts give status events (`close` -> closed, `open` and
`assign_and_reopen` -> reopened from closed, `snoozed`, `unsnoozed`) and a `first_response_at`
candidate (the earliest public `comment` part by an admin; the service keeps the earliest).
Other topics (contacts, users, `ping`) are ignored. Dedupe: the notification `id`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors import ratings
from connectors.errors import MalformedPayload
from connectors.fields import arr, dig, flag, ident, lower, obj, strings, text
from connectors.html import html_to_text
from connectors.item import build_item, status_event
from connectors.payload import key
from connectors.results import Parsed
from connectors.timeparse import iso

SOURCE = "intercom"
# part_type -> (from, to) as raw words; None where the payload does not show the old state.
_PART_STATUS: dict[str, tuple[str | None, str]] = {
    "close": (None, "closed"),
    "open": ("closed", "open"),
    "assign_and_reopen": ("closed", "open"),
    "snoozed": (None, "snoozed"),
    "unsnoozed": ("snoozed", "open"),
}


def dedupe_key(headers: Mapping[str, str], payload: Any) -> str | None:
    return key("event", ident(obj(payload).get("id")))


def parse(headers: Mapping[str, str], payload: Any, dedupe: str) -> Parsed:
    if not isinstance(payload, dict) or "topic" not in payload:
        raise MalformedPayload("Intercom body is not a notification_event")
    topic = text(payload.get("topic")) or ""
    conversation = obj(dig(payload, "data", "item"))
    if not topic.startswith("conversation.") or conversation.get("type") != "conversation":
        return Parsed(dedupe, topic, ignored=True)
    item = _item(conversation)
    return Parsed(dedupe, topic, items=[item] if item else [], ignored=item is None)


def _item(conversation: dict[str, Any]) -> dict[str, Any] | None:
    message = obj(conversation.get("conversation_message"))
    parts = list(map(obj, arr(dig(conversation, "conversation_parts", "conversation_parts"))))
    events = []
    replies = []
    for part in parts:
        part_type = lower(part.get("part_type")) or ""
        at = iso(part.get("created_at"))
        if part_type in _PART_STATUS:
            events.append(status_event(at, *_PART_STATUS[part_type]))
        if part_type == "comment" and dig(part, "author", "type") == "admin" and at:
            replies.append(at)
    user = obj(conversation.get("user")) or obj(next(iter(arr(dig(conversation, "contacts", "contacts"))), None))
    return build_item(
        source=SOURCE,
        external_id=ident(conversation.get("id")),
        kind="ticket",
        title=_plain(message.get("subject")),
        body=text(message.get("body")),
        body_is_html=True,
        created_at=iso(conversation.get("created_at")),
        updated_at=iso(conversation.get("updated_at")),
        status=_status(conversation),
        status_events=events,
        first_response_at=min(replies) if replies else None,
        channel=lower(dig(conversation, "source", "delivered_as")) or lower(dig(conversation, "source", "type")),
        priority=lower(conversation.get("priority")),
        tags=strings(dig(conversation, "tags", "tags"), key="name"),
        requester_id=ident(user.get("id")),
        url=text(dig(conversation, "links", "conversation_web")),
        csat=ratings.one_to_five(dig(conversation, "conversation_rating", "rating")),
    )


def _status(conversation: dict[str, Any]) -> str | None:
    state = lower(conversation.get("state"))
    if state is not None:
        return state
    is_open = flag(conversation.get("open"))
    return None if is_open is None else ("open" if is_open else "closed")


def _plain(subject: Any) -> str | None:
    # Subjects are HTML in Intercom's API; most are empty for chat conversations.
    found = text(subject)
    return (html_to_text(found) or None) if found is not None else None
