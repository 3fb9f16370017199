"""Freshdesk: automation-rule webhooks carrying a ticket in the API v2 shape.

Freshdesk has no vendor-defined webhook body and no signature (webhooks.md §4): the admin writes
the body in the automation rule, and the connection authenticates with the shared secret we
issue (see `connectors.signatures`: header `X-Webhook-Secret`, Bearer, or Basic).

Accepted bodies: a ticket object in the API v2 shape (`GET /api/v2/tickets/{id}?include=stats,
requester,conversations`), bare or as `{"ticket": {...}}`. Status codes 2 Open, 3 Pending,
4 Resolved, 5 Closed become those words; custom status numbers become None. `stats`
timestamps give status events (resolved, closed, reopened) and `first_responded_at`; public
outgoing `conversations` give a `first_response_at` candidate too. A bare conversations list is
ignored (it has no ticket). Dedupe: (ticket id, `updated_at`).

Recommended rule template (Admin → Automations → "Trigger webhook", POST, JSON, custom header
`X-Webhook-Secret: <secret>`; placeholders are Freshdesk's, rendered values [unverified]):

    {"ticket": {
      "id": {{ticket.id}},
      "subject": "{{ticket.subject}}",
      "description_text": "{{ticket.description_text}}",
      "status": "{{ticket.status}}",
      "priority": "{{ticket.priority}}",
      "source": "{{ticket.source}}",
      "tags": "{{ticket.tags}}",
      "type": "{{ticket.ticket_type}}",
      "product": "{{ticket.product_name}}",
      "requester_id": "{{ticket.requester.id}}",
      "url": "{{ticket.url}}",
      "created_at": "{{ticket.created_on}}",
      "updated_at": "{{ticket.modified_on}}"
    }}

Word values from the template ("Open", "Resolved", "Waiting on Customer", "Email") are kept
lower-cased; numbers from the API are mapped below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors import ratings
from connectors.errors import MalformedPayload
from connectors.fields import arr, dig, flag, ident, integer, lower, obj, strings, text
from connectors.item import build_item, status_event
from connectors.payload import key
from connectors.results import Parsed
from connectors.timeparse import iso

SOURCE = "freshdesk"
STATUSES = {2: "open", 3: "pending", 4: "resolved", 5: "closed"}
PRIORITIES = {1: "low", 2: "medium", 3: "high", 4: "urgent"}
CHANNELS = {
    1: "email",
    2: "portal",
    3: "phone",
    4: "forum",
    5: "twitter",
    6: "facebook",
    7: "chat",
    8: "mobihelp",
    9: "feedback_widget",
    10: "outbound_email",
}


def dedupe_key(headers: Mapping[str, str], payload: Any) -> str | None:
    ticket = obj(obj(payload).get("ticket")) or obj(payload)
    return key("object", ident(ticket.get("id")), text(ticket.get("updated_at")))


def parse(headers: Mapping[str, str], payload: Any, dedupe: str) -> Parsed:
    if isinstance(payload, list):
        return Parsed(dedupe, "conversations", ignored=True)
    if not isinstance(payload, dict):
        raise MalformedPayload("Freshdesk body is not a JSON object")
    if "survey_id" in payload and "ratings" in payload:
        return _rating(payload, dedupe)
    ticket = obj(payload.get("ticket")) or payload
    if "id" not in ticket:
        raise MalformedPayload("Freshdesk body has no ticket id")
    item = _item(ticket)
    return Parsed(dedupe, "ticket", items=[item] if item else [], ignored=item is None)


def _rating(rating: dict[str, Any], dedupe: str) -> Parsed:
    # A survey result (the satisfaction-rating object of Freshdesk's API): `ticket_id` and the
    # answer to the default question on Freshdesk's -103..103 scale.
    ticket_id = ident(rating.get("ticket_id"))
    csat = ratings.freshdesk(dig(rating, "ratings", "default_question"))
    if ticket_id is None or csat is None:
        return Parsed(dedupe, "satisfaction_rating", ignored=True)
    return Parsed(dedupe, "satisfaction_rating", ratings=[(SOURCE, ticket_id, csat)])


def _item(ticket: dict[str, Any]) -> dict[str, Any] | None:
    stats = obj(ticket.get("stats"))
    events = [
        status_event(iso(stats.get("resolved_at")), None, "resolved"),
        status_event(iso(stats.get("closed_at")), None, "closed"),
        status_event(iso(stats.get("reopened_at")), "resolved", "open"),
    ]
    # The HTML description first: its markup says which part is quoted history, which the
    # flattened description_text no longer does (connectors/html.py).
    html_description = text(ticket.get("description"))
    return build_item(
        source=SOURCE,
        external_id=ident(ticket.get("id")),
        kind="ticket",
        title=text(ticket.get("subject")),
        body=html_description or text(ticket.get("description_text")),
        body_is_html=html_description is not None,
        created_at=iso(ticket.get("created_at")),
        updated_at=iso(ticket.get("updated_at")),
        status=_coded(ticket.get("status"), STATUSES),
        status_events=events,
        first_response_at=_first_response(ticket, stats),
        channel=_coded(ticket.get("source"), CHANNELS),
        priority=_coded(ticket.get("priority"), PRIORITIES),
        product=_product(ticket),
        tags=_tags(ticket.get("tags")),
        requester_id=ident(ticket.get("requester_id")) or ident(dig(ticket, "requester", "id")),
        url=text(ticket.get("url")),
        intent=_intent(lower(ticket.get("type"))),
    )


def _coded(value: Any, words: dict[int, str]) -> str | None:
    """API numbers to words; words (from a template) pass through lower-cased."""
    number = integer(value, lo=0, hi=1000)
    if number is not None:
        return words.get(number)  # custom status numbers are account-specific: unknown
    return lower(value)


def _first_response(ticket: dict[str, Any], stats: dict[str, Any]) -> str | None:
    candidates = [iso(stats.get("first_responded_at"))]
    for reply in map(obj, arr(ticket.get("conversations"))):
        if flag(reply.get("incoming")) is False and flag(reply.get("private")) is False:
            candidates.append(iso(reply.get("created_at")))
    found = [c for c in candidates if c is not None]
    return min(found) if found else None


def _product(ticket: dict[str, Any]) -> str | None:
    named = text(ticket.get("product")) or text(dig(ticket, "custom_fields", "cf_product"))
    return named or ident(ticket.get("product_id"))


def _tags(value: Any) -> list[str]:
    # The API sends a list; the {{ticket.tags}} placeholder renders comma-separated text.
    found = text(value)
    if found is not None:
        return [tag.strip() for tag in found.split(",") if tag.strip()]
    return strings(value)


def _intent(ticket_type: str | None) -> str | None:
    return {"feature request": "feature_request", "problem": "bug", "question": "question"}.get(ticket_type or "")
