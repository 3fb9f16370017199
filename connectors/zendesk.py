"""Zendesk: event-subscription webhooks, Tickets API objects and our trigger template.

Accepted bodies (webhooks.md §1):

- Event envelope (`"type": "zen:event-type:ticket.*"`): the item comes from `detail` (ids as
  strings, UPPERCASE status/priority, which we lower-case). `status_changed` adds a status event
  at the envelope `time`; `comment_added` with a public comment by staff gives a
  `first_response_at` candidate (the service keeps the earliest); `soft_deleted` and
  `permanently_deleted` become deletes; `undeleted` is a normal upsert; user, organisation and
  other non-ticket events are ignored.
- Tickets API shape: `{"ticket": {...}}` optionally with `"audit"` (the create/update response)
  and `"ticket_metric"` (or `ticket.metric_set` from `include=metric_sets`) for the `reopens`
  counter; also a bare ticket object. Audit `Change` events on `status` are status events.
- A ticket-creation audit on its own (`{"audit": {...}}` or a bare audit) maps to the ticket it
  created; other audits and a bare ticket-metrics object carry no ticket text and are ignored.
- Any other trigger body (e.g. `{"ticketID": "12345", ...}`) is ignored: trigger bodies are
  admin-written, so connect triggers with the template below.

Follow-up tickets (`via.source.rel == "follow_up"`, `via.channel == "closed_ticket"`) are new
tickets with their own id; nothing here links them to, or reopens, the closed ticket.

Recommended trigger template (Admin Center → Triggers → action "Notify active webhook", JSON
body; the placeholders are Zendesk's, whether they are JSON-escaped inside a JSON body is
[unverified] — keep free-text placeholders in strings):

    {"ticket": {
      "id": {{ticket.id}},
      "url": "{{ticket.link}}",
      "subject": "{{ticket.title}}",
      "description": "{{ticket.description}}",
      "status": "{{ticket.status}}",
      "priority": "{{ticket.priority}}",
      "tags": "{{ticket.tags}}",
      "via": {"channel": "{{ticket.via}}"},
      "requester_id": "{{ticket.requester.id}}",
      "created_at": "{{ticket.created_at_with_timestamp}}",
      "updated_at": "{{ticket.updated_at_with_timestamp}}"
    }}

Add `"product": "{{ticket.ticket_field_<id>}}"` for a product custom field. Dedupe: the event
`id`, else the `X-Zendesk-Webhook-Invocation-Id` header, else (ticket id, `updated_at`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connectors import ratings
from connectors.errors import MalformedPayload
from connectors.fields import arr, dig, flag, ident, integer, lower, obj, strings, text
from connectors.item import build_item, status_event
from connectors.payload import key
from connectors.results import Parsed
from connectors.timeparse import iso

SOURCE = "zendesk"
_EVENT_PREFIX = "zen:event-type:"
_DELETES = frozenset({"ticket.soft_deleted", "ticket.permanently_deleted"})
_API_URL = re.compile(r"^(https?://[^/\s]+)/api/v2/tickets/(\d+)\.json$")


def dedupe_key(headers: Mapping[str, str], payload: Any) -> str | None:
    body = obj(payload)
    if _is_event(body):
        found = key("event", ident(body.get("id")))
        if found is not None:
            return found
    found = key("delivery", ident(headers.get("x-zendesk-webhook-invocation-id")))
    if found is not None:
        return found
    ticket = obj(body.get("ticket")) or body
    return key("object", ident(ticket.get("id")), text(ticket.get("updated_at")))


def parse(headers: Mapping[str, str], payload: Any, dedupe: str) -> Parsed:
    if not isinstance(payload, dict):
        raise MalformedPayload("Zendesk body is not a JSON object")
    if _is_event(payload):
        return _from_event(payload, dedupe)
    if isinstance(payload.get("ticket"), dict):
        ticket = _from_ticket(payload["ticket"], obj(payload.get("audit")), payload)
        return _result(dedupe, "ticket", ticket)
    if isinstance(payload.get("audit"), dict) or ("events" in payload and "ticket_id" in payload):
        return _result(dedupe, "audit", _from_audit(obj(payload.get("audit")) or payload))
    if isinstance(payload.get("ticket_metric"), dict) or "reopens" in payload:
        return Parsed(dedupe, "ticket_metric", ignored=True)
    if "id" in payload and "created_at" in payload:
        return _result(dedupe, "ticket", _from_ticket(payload, {}, {}))
    if "ticketID" in payload or "ticket_id" in payload:
        return Parsed(dedupe, "trigger", ignored=True)
    raise MalformedPayload("not a Zendesk event, ticket, audit or metrics body")


def _is_event(body: dict[str, Any]) -> bool:
    event_type = text(body.get("type"))
    return event_type is not None and event_type.startswith(_EVENT_PREFIX)


def _result(dedupe: str, event_type: str, item: dict[str, Any] | None) -> Parsed:
    return Parsed(dedupe, event_type, items=[item] if item else [], ignored=item is None)


def _from_event(body: dict[str, Any], dedupe: str) -> Parsed:
    event_type = text(body.get("type")) or _EVENT_PREFIX
    name = event_type[len(_EVENT_PREFIX) :]
    if not name.startswith("ticket."):
        return Parsed(dedupe, event_type, ignored=True)
    detail, event, at = obj(body.get("detail")), obj(body.get("event")), iso(body.get("time"))
    ticket_id = ident(detail.get("id")) or _id_from_subject(body.get("subject"))
    if name in _DELETES:
        deletes = [(SOURCE, ticket_id)] if ticket_id else []
        return Parsed(dedupe, event_type, deletes=deletes, ignored=not deletes)
    events = []
    if name == "ticket.status_changed":
        events.append(status_event(at, lower(event.get("previous")), lower(event.get("current"))))
    comment = obj(event.get("comment"))
    is_agent_reply = flag(comment.get("is_public")) and flag(dig(comment, "author", "is_staff"))
    item = build_item(
        source=SOURCE,
        external_id=ticket_id,
        kind="ticket",
        title=text(detail.get("subject")),
        body=text(detail.get("description")),
        created_at=iso(detail.get("created_at")),
        updated_at=iso(detail.get("updated_at")),
        status=lower(detail.get("status")),
        status_events=events,
        first_response_at=at if name == "ticket.comment_added" and is_agent_reply else None,
        channel=lower(dig(detail, "via", "channel")),
        priority=lower(detail.get("priority")),
        tags=strings(detail.get("tags")),
        requester_id=ident(detail.get("requester_id")),
    )
    return _result(dedupe, event_type, item)


def _id_from_subject(subject: Any) -> str | None:
    found = text(subject)
    if found is None or not found.startswith("zen:ticket:"):
        return None
    return ident(found[len("zen:ticket:") :])


def _from_ticket(ticket: dict[str, Any], audit: dict[str, Any], envelope: dict[str, Any]) -> dict[str, Any] | None:
    ticket_id = ident(ticket.get("id"))
    requester = ident(ticket.get("requester_id"))
    metric = obj(envelope.get("ticket_metric")) or obj(ticket.get("metric_set"))
    at = iso(audit.get("created_at"))
    events = [
        status_event(at, lower(e.get("previous_value")), lower(e.get("value")))
        for e in map(obj, arr(audit.get("events")))
        if e.get("type") == "Change" and e.get("field_name") == "status"
    ]
    return build_item(
        source=SOURCE,
        external_id=ticket_id,
        kind="ticket",
        title=text(ticket.get("subject")),
        body=text(ticket.get("description")),
        created_at=iso(ticket.get("created_at")),
        updated_at=iso(ticket.get("updated_at")),
        status=lower(ticket.get("status")),
        status_events=events,
        first_response_at=at if _has_agent_reply(audit, requester) else None,
        reopens=integer(metric.get("reopens")),
        csat=ratings.good_bad(dig(ticket, "satisfaction_rating", "score")),
        agent_replies=integer(metric.get("replies")),
        assignee_changes=_assignee_changes(metric.get("assignee_stations")),
        channel=lower(dig(ticket, "via", "channel")),
        priority=lower(ticket.get("priority")),
        product=text(ticket.get("product")),
        tags=_tags(ticket.get("tags")),
        requester_id=requester,
        url=_agent_url(ticket.get("url"), ticket_id),
    )


def _from_audit(audit: dict[str, Any]) -> dict[str, Any] | None:
    events = list(map(obj, arr(audit.get("events"))))
    created = {text(e.get("field_name")): e.get("value") for e in events if e.get("type") == "Create"}
    if not created:
        return None  # an update audit: it does not carry the ticket's text
    comment = next((e for e in events if e.get("type") == "Comment"), {})
    requester = ident(created.get("requester_id"))
    return build_item(
        source=SOURCE,
        external_id=ident(audit.get("ticket_id")),
        kind="ticket",
        title=text(created.get("subject")),
        # html_body first: its markup marks quoted history (connectors/html.py).
        body=text(comment.get("html_body")) or text(comment.get("body")),
        body_is_html=text(comment.get("html_body")) is not None,
        created_at=iso(audit.get("created_at")),
        status=lower(created.get("status")),
        first_response_at=iso(audit.get("created_at")) if _has_agent_reply(audit, requester) else None,
        channel=lower(dig(audit, "via", "channel")),
        priority=lower(created.get("priority")),
        tags=_tags(created.get("tags")),
        requester_id=requester,
    )


def _has_agent_reply(audit: dict[str, Any], requester: str | None) -> bool:
    # A public comment by someone other than the requester is the agent's public reply.
    return any(
        e.get("type") == "Comment"
        and flag(e.get("public")) is True
        and ident(e.get("author_id")) not in (None, requester)
        for e in map(obj, arr(audit.get("events")))
    )


def _assignee_changes(stations: Any) -> int | None:
    # Ticket metrics count the assignees a ticket had; each one after the first is a change.
    count = integer(stations, lo=0)
    return max(count - 1, 0) if count is not None else None


def _tags(value: Any) -> list[str]:
    # The API sends a list; the trigger placeholder {{ticket.tags}} renders space-separated.
    found = text(value)
    return found.split() if found is not None else strings(value)


def _agent_url(value: Any, ticket_id: str | None) -> str | None:
    url = text(value)
    if url is None or ticket_id is None:
        return None
    api = _API_URL.match(url)
    if api is not None:
        return f"{api[1]}/agent/tickets/{api[2]}"
    return url if "/agent/tickets/" in url else None
