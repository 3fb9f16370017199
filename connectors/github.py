"""GitHub Discussions webhooks (`discussion`, `discussion_comment`; webhooks.md §3).

Signature `X-Hub-Signature-256: sha256=<hex>`; event in `X-GitHub-Event`. The discussion is a
post with `external_id` = discussion id; each comment is its own post, `comment:<id>`. Body is
Markdown, kept as text (a discussion with an empty body falls back to its title).

Status: raw `answered` (normalises to solved) while an answer is chosen, else the discussion
`state` (`open`, `closed`, `locked`, ...). Status events: `answered` (open -> answered at
`answer_chosen_at`, and the answer comment is upserted too), `unanswered` (answered -> open),
`reopened` (closed -> open), `closed` (open -> closed), at the discussion's `updated_at`.
`deleted` becomes a delete of the discussion or comment. Votes: `reactions.total_count`. Tags:
`labels` when present, else the label of a `labeled` event. Intent (discussions only, not
comments): label enhancement/feature -> feature_request, bug -> bug; category "Ideas" ->
feature_request, "Q&A" -> question.
Dedupe: `X-GitHub-Delivery` (kept on redelivery).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.errors import MalformedPayload
from connectors.fields import dig, ident, integer, lower, obj, strings, text
from connectors.item import build_item, status_event
from connectors.payload import key
from connectors.results import Parsed
from connectors.timeparse import iso

SOURCE = "github"
_LABEL_INTENTS = {"enhancement": "feature_request", "feature": "feature_request", "bug": "bug"}
_CATEGORY_INTENTS = {"ideas": "feature_request", "q&a": "question", "q-a": "question"}
_MAX_VOTES = 2_000_000_000


def dedupe_key(headers: Mapping[str, str], payload: Any) -> str | None:
    return key("delivery", ident(headers.get("x-github-delivery")))


def parse(headers: Mapping[str, str], payload: Any, dedupe: str) -> Parsed:
    if not isinstance(payload, dict) or "action" not in payload:
        raise MalformedPayload("GitHub body has no action")
    action = text(payload.get("action")) or ""
    event = text(headers.get("x-github-event")) or ("discussion_comment" if "comment" in payload else "discussion")
    event_type = f"{event}.{action}"
    discussion = obj(payload.get("discussion"))
    if event not in ("discussion", "discussion_comment") or not discussion:
        return Parsed(dedupe, event_type, ignored=True)
    if event == "discussion_comment":
        comment = obj(payload.get("comment"))
        if action == "deleted":
            return _deleted(dedupe, event_type, _comment_id(comment))
        return _parsed(dedupe, event_type, [_comment(comment)])
    if action == "deleted":
        return _deleted(dedupe, event_type, ident(discussion.get("id")))
    items = [_discussion(discussion, action, payload)]
    if action == "answered":
        items.append(_comment(obj(payload.get("answer"))))
    return _parsed(dedupe, event_type, items)


def _parsed(dedupe: str, event_type: str, items: list[dict[str, Any] | None]) -> Parsed:
    kept = [item for item in items if item is not None]
    return Parsed(dedupe, event_type, items=kept, ignored=not kept)


def _deleted(dedupe: str, event_type: str, external_id: str | None) -> Parsed:
    deletes = [(SOURCE, external_id)] if external_id else []
    return Parsed(dedupe, event_type, deletes=deletes, ignored=not deletes)


def _discussion(discussion: dict[str, Any], action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    labels = strings(discussion.get("labels"), key="name")
    if not labels and action == "labeled":
        labels = strings([payload.get("label")], key="name")
    is_answered = text(discussion.get("answer_chosen_at")) is not None
    state = lower(discussion.get("state"))
    return build_item(
        source=SOURCE,
        external_id=ident(discussion.get("id")),
        kind="post",
        title=text(discussion.get("title")),
        body=text(discussion.get("body")),
        created_at=iso(discussion.get("created_at")),
        updated_at=iso(discussion.get("updated_at")),
        status="answered" if is_answered else state,
        status_events=_events(discussion, action),
        tags=labels,
        requester_id=ident(dig(discussion, "user", "id")),
        votes=_votes(discussion),
        url=text(discussion.get("html_url")),
        intent=_intent(labels, lower(dig(discussion, "category", "name"))),
    )


def _events(discussion: dict[str, Any], action: str) -> list[dict[str, Any]]:
    updated = iso(discussion.get("updated_at"))
    if action == "answered":
        return [status_event(iso(discussion.get("answer_chosen_at")) or updated, "open", "answered")]
    changes = {"unanswered": ("answered", "open"), "reopened": ("closed", "open"), "closed": ("open", "closed")}
    if action in changes:
        return [status_event(updated, *changes[action])]
    return []


def _comment(comment: dict[str, Any]) -> dict[str, Any] | None:
    return build_item(
        source=SOURCE,
        external_id=_comment_id(comment),
        kind="post",
        body=text(comment.get("body")),
        created_at=iso(comment.get("created_at")),
        updated_at=iso(comment.get("updated_at")),
        requester_id=ident(dig(comment, "user", "id")),
        votes=_votes(comment),
        url=text(comment.get("html_url")),
    )


def _comment_id(comment: dict[str, Any]) -> str | None:
    comment_id = ident(comment.get("id"))
    return f"comment:{comment_id}" if comment_id else None


def _votes(node: dict[str, Any]) -> int | None:
    return integer(dig(node, "reactions", "total_count"), lo=0, hi=_MAX_VOTES)


def _intent(labels: list[str], category: str | None) -> str | None:
    for label in labels:
        found = _LABEL_INTENTS.get(label.lower())
        if found is not None:
            return found
    return _CATEGORY_INTENTS.get(category or "")
