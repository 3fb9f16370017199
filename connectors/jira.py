"""Jira Cloud / Server / Service Management issue webhooks (webhooks.md §7).

Signature: Jira Cloud admin webhooks with a secret send `X-Hub-Signature: sha256=<hex>`; Jira
Server/Data Center webhooks are unsigned, so they authenticate with our shared secret (see
`connectors.signatures`).

Events: `jira:issue_created` / `jira:issue_updated` map the issue (a changelog status item, or a
resolution set/cleared, gives a status event at the webhook `timestamp`, Unix ms);
`jira:issue_deleted` becomes a delete; comment and other events are ignored (their issue
snapshot lacks the creation time, and comment authors cannot be told apart from customers).

Status: the raw value is the word for the status category — `new` (To Do), `in_progress`
(indeterminate), `done` — because workflow status names are free text; status-event words come
from the category when the change lands on the issue's current status, else from common default
names, else the lower-cased name itself. Intent: issue type "New Feature"/"Improvement"/
"Feature Request" -> feature_request, "Bug" -> bug. Product: the first component.
Dedupe: `X-Atlassian-Webhook-Identifier`, else (issue id, event, timestamp).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connectors.errors import MalformedPayload
from connectors.fields import arr, dig, ident, lower, obj, strings, text
from connectors.item import build_item, status_event
from connectors.payload import key
from connectors.results import Parsed
from connectors.timeparse import iso

SOURCE = "jira"
_CATEGORY_WORDS = {"new": "new", "indeterminate": "in_progress", "done": "done"}
# Default workflow status names whose lower-cased form normalise_status does not know.
_NAME_WORDS = {"to do": "new", "backlog": "new", "selected for development": "new"}
_INTENTS = {
    "new feature": "feature_request",
    "improvement": "feature_request",
    "feature request": "feature_request",
    "feature": "feature_request",
    "bug": "bug",
}
_SELF = re.compile(r"^(https?://[^\s]+?)/rest/api/")
_MAX_ADF_DEPTH = 40


def dedupe_key(headers: Mapping[str, str], payload: Any) -> str | None:
    found = key("delivery", ident(headers.get("x-atlassian-webhook-identifier")))
    if found is not None:
        return found
    body = obj(payload)
    issue_id = ident(dig(body, "issue", "id"))
    stamp = ident(body.get("timestamp"))
    return key("object", issue_id, text(body.get("webhookEvent")), stamp)


def parse(headers: Mapping[str, str], payload: Any, dedupe: str) -> Parsed:
    if not isinstance(payload, dict) or "webhookEvent" not in payload:
        raise MalformedPayload("Jira body has no webhookEvent")
    event = text(payload.get("webhookEvent")) or ""
    issue = obj(payload.get("issue"))
    if event == "jira:issue_deleted":
        issue_id = ident(issue.get("id"))
        return Parsed(dedupe, event, deletes=[(SOURCE, issue_id)] if issue_id else [], ignored=not issue_id)
    if event not in ("jira:issue_created", "jira:issue_updated"):
        return Parsed(dedupe, event, ignored=True)
    item = _item(issue, payload)
    return Parsed(dedupe, event, items=[item] if item else [], ignored=item is None)


def _item(issue: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any] | None:
    fields = obj(issue.get("fields"))
    current = obj(fields.get("status"))
    status = _CATEGORY_WORDS.get(lower(dig(current, "statusCategory", "key")) or "")
    base = _base_url(issue.get("self"))
    issue_key = ident(issue.get("key"))
    reporter = obj(fields.get("reporter")) or obj(fields.get("creator"))
    return build_item(
        source=SOURCE,
        external_id=ident(issue.get("id")),
        kind="ticket",
        title=text(fields.get("summary")),
        body=_description(fields.get("description")),
        created_at=iso(fields.get("created")),
        updated_at=iso(fields.get("updated")),
        status=status,
        status_events=_events(payload, current, status),
        priority=lower(dig(fields, "priority", "name")),
        product=text(obj(next(iter(arr(fields.get("components"))), None)).get("name")),
        tags=strings(fields.get("labels")),
        requester_id=ident(reporter.get("accountId")) or ident(reporter.get("key")),
        url=f"{base}/browse/{issue_key}" if base and issue_key else None,
        intent=_INTENTS.get(lower(dig(fields, "issuetype", "name")) or ""),
    )


def _events(payload: dict[str, Any], current: dict[str, Any], status: str | None) -> list[Any]:
    at = iso(payload.get("timestamp"), unit="ms")
    items = list(map(obj, arr(dig(payload, "changelog", "items"))))
    events = []
    for change in items:
        if lower(change.get("fieldId")) == "status" or lower(change.get("field")) == "status":
            from_word = _name_word(change.get("fromString"))
            lands_on_current = ident(change.get("to")) == ident(current.get("id"))
            to_word = status if lands_on_current and status else _name_word(change.get("toString"))
            if from_word is not None or to_word is not None:
                events.append(status_event(at, from_word, to_word))
    if events:
        return events
    # Workflows without a status change can still set or clear the resolution.
    for change in items:
        if lower(change.get("field")) == "resolution":
            if text(change.get("toString")) is not None:
                events.append(status_event(at, None, "resolved"))
            elif text(change.get("fromString")) is not None:
                events.append(status_event(at, "resolved", "reopened"))
    return events


def _name_word(name: Any) -> str | None:
    word = lower(name)
    return _NAME_WORDS.get(word, word) if word is not None else None


def _base_url(self_link: Any) -> str | None:
    found = text(self_link)
    match = _SELF.match(found) if found is not None else None
    return match[1] if match is not None else None


def _description(value: Any) -> str | None:
    """Wiki-markup text (API v2 payloads) or Atlassian Document Format (some Cloud apps)."""
    if isinstance(value, str):
        return value
    parts: list[str] = []
    _adf_text(value, parts, 0)
    return " ".join(parts) or None


def _adf_text(node: Any, parts: list[str], depth: int) -> None:
    if depth > _MAX_ADF_DEPTH or not isinstance(node, dict):
        return
    found = text(node.get("text"))
    if found is not None:
        parts.append(found)
    for child in arr(node.get("content")):
        _adf_text(child, parts, depth + 1)
