"""Discourse forum webhooks (webhooks.md §2).

Signature `X-Discourse-Event-Signature: sha256=<hex>`; event name in `X-Discourse-Event`, forum
base URL in `X-Discourse-Instance`. Body `{"<type>": {...}}`.

Each post is its own item (`external_id` = post id, kind "post"): `post_created`, `post_edited`,
`post_recovered` map `post`; the text is `raw` (Markdown, kept) or else `cooked` (HTML). Posts
without text (the Fedora samples had it stripped) produce no item. `post_liked` maps
`like.post` with its absolute like count, so a replayed like cannot double-count.
`accepted_solution` maps the answer post with status `solved` (a status event at its
`updated_at`; the payload names neither the question post nor the acceptance time).
`post_destroyed` becomes a delete. Topic events carry no text and no first-post id, so they are
ignored: the opening post arrives through `post_created`/`post_recovered` (topic tags are lost;
`topic_destroyed` relies on the `post_destroyed` Discourse sends for the opening post
[unverified]). Intent from the category slug ("feature…" -> feature_request, "bug…" -> bug).

Dedupe: `X-Discourse-Event-Id` changes on every retry, so it is never used; the key is
(instance, event, object id, `updated_at` or `version`), plus the liker's id for likes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.errors import MalformedPayload
from connectors.fields import dig, ident, integer, lower, obj, text
from connectors.item import build_item, status_event
from connectors.payload import key
from connectors.results import Parsed
from connectors.timeparse import iso

SOURCE = "discourse"
_POST_EVENTS = frozenset({"post_created", "post_edited", "post_recovered"})
_BODY_KEYS = ("post", "topic", "like", "solved", "ping", "user", "category", "tag")
_MAX_VOTES = 2_000_000_000


def dedupe_key(headers: Mapping[str, str], payload: Any) -> str | None:
    body = obj(payload)
    instance = text(headers.get("x-discourse-instance")) or "-"
    event = text(headers.get("x-discourse-event")) or _body_type(body) or "-"
    target = obj(body.get("post")) or obj(body.get("topic")) or obj(body.get("solved"))
    if "like" in body:
        post = obj(dig(body, "like", "post"))
        liker = ident(dig(body, "like", "user", "id"))
        return key("object", instance, event, ident(post.get("id")), liker)
    changed = text(target.get("updated_at")) or ident(target.get("version"))
    return key("object", instance, event, ident(target.get("id")), changed)


def parse(headers: Mapping[str, str], payload: Any, dedupe: str) -> Parsed:
    if not isinstance(payload, dict) or _body_type(payload) is None:
        raise MalformedPayload("Discourse body has none of the known top-level keys")
    event = text(headers.get("x-discourse-event")) or _default_event(payload)
    instance = text(headers.get("x-discourse-instance"))
    if event == "post_destroyed":
        post_id = ident(dig(payload, "post", "id"))
        return Parsed(dedupe, event, deletes=[(SOURCE, post_id)] if post_id else [], ignored=not post_id)
    if event in _POST_EVENTS:
        item = _item(obj(payload.get("post")), instance)
    elif event == "post_liked":
        item = _item(obj(dig(payload, "like", "post")), instance)
    elif event == "accepted_solution":
        item = _item(obj(payload.get("solved")), instance, is_solution=True)
    else:
        return Parsed(dedupe, event, ignored=True)
    return Parsed(dedupe, event, items=[item] if item else [], ignored=item is None)


def _body_type(body: dict[str, Any]) -> str | None:
    return next((k for k in _BODY_KEYS if k in body), None)


def _default_event(body: dict[str, Any]) -> str:
    # Without the header, only the payload type is known; treat post bodies as edits (upserts).
    return {"post": "post_edited", "like": "post_liked", "solved": "accepted_solution"}.get(
        _body_type(body) or "", "unknown"
    )


def _item(post: dict[str, Any], instance: str | None, *, is_solution: bool = False) -> dict[str, Any] | None:
    raw = text(post.get("raw"))
    number = integer(post.get("post_number"), lo=1)
    updated = iso(post.get("updated_at"))
    likes = integer(post.get("like_count"), lo=0, hi=_MAX_VOTES)
    return build_item(
        source=SOURCE,
        external_id=ident(post.get("id")),
        kind="post",
        title=text(post.get("topic_title")) if number == 1 else None,
        body=raw or text(post.get("cooked")),
        body_is_html=raw is None,
        created_at=iso(post.get("created_at")),
        updated_at=updated,
        status="solved" if is_solution else None,
        status_events=[status_event(updated, None, "solved")] if is_solution else [],
        requester_id=ident(post.get("user_id")),
        votes=likes if likes is not None else integer(post.get("reaction_users_count"), lo=0),
        url=_post_url(instance, post, number),
        intent=_intent(lower(post.get("category_slug"))),
    )


def _post_url(instance: str | None, post: dict[str, Any], number: int | None) -> str | None:
    slug, topic_id = text(post.get("topic_slug")), integer(post.get("topic_id"), lo=1)
    if instance is None or slug is None or topic_id is None or number is None:
        return None
    return f"{instance.rstrip('/')}/t/{slug}/{topic_id}/{number}"


def _intent(category: str | None) -> str | None:
    if category is None:
        return None
    if "feature" in category or category in ("ideas", "feature-requests", "suggestions"):
        return "feature_request"
    if category.startswith("bug"):
        return "bug"
    return None
