"""Shared test data: where the fixtures are, how each vendor signs, and each fixture's headers.

Signatures are computed here independently of `connectors.signatures`, straight from the
formulas in webhooks.md §10, so a bug there cannot hide in both places.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "webhooks"
NOW = 1_700_000_000.0
SECRET = "s3cret-for-tests-0123456789abcdef"
OTHER_SECRET = "another-secret-9876543210fedcba"
WHSEC = "whsec_" + base64.b64encode(b"standard-webhooks-key-0123456789").decode()
OTHER_WHSEC = "whsec_" + base64.b64encode(b"rotated-standard-key-abcdefghijk").decode()

# Headers captured with each fixture (webhooks.md §11) or implied by its event name.
FIXTURE_HEADERS: dict[str, dict[str, str]] = {
    "discourse/accepted_solution.json": {
        "X-Discourse-Event": "accepted_solution",
        "X-Discourse-Event-Type": "solved",
        "X-Discourse-Event-Id": "83528",
        "X-Discourse-Instance": "https://ask.fedoraproject.org",
    },
    "discourse/post_created.json": {
        "X-Discourse-Event": "post_created",
        "X-Discourse-Event-Type": "post",
        "X-Discourse-Event-Id": "158765",
        "X-Discourse-Instance": "https://discussion.fedoraproject.org",
    },
    "discourse/post_created.with_raw_reply.json": {
        "x-discourse-event": "post_created",
        "x-discourse-event-type": "post",
        "x-discourse-event-id": "13",
        "user-agent": "Discourse/2.9.0.beta4",
    },
    "discourse/post_edited.json": {
        "X-Discourse-Event": "post_edited",
        "X-Discourse-Event-Type": "post",
        "X-Discourse-Event-Id": "83176",
        "X-Discourse-Instance": "https://ask.fedoraproject.org",
    },
    "discourse/post_liked.json": {
        "X-Discourse-Event": "post_liked",
        "X-Discourse-Event-Type": "like",
        "X-Discourse-Event-Id": "159033",
        "X-Discourse-Instance": "https://discussion.fedoraproject.org",
    },
    "discourse/topic_created.json": {
        "X-Discourse-Event": "topic_created",
        "X-Discourse-Event-Type": "topic",
        "X-Discourse-Event-Id": "83629",
        "X-Discourse-Instance": "https://ask.fedoraproject.org",
    },
    "discourse/topic_edited.json": {
        "X-Discourse-Event": "topic_edited",
        "X-Discourse-Event-Type": "topic",
        "X-Discourse-Event-Id": "83631",
        "X-Discourse-Instance": "https://ask.fedoraproject.org",
    },
    "discourse/topic_recovered.json": {
        "X-Discourse-Event": "topic_recovered",
        "X-Discourse-Event-Type": "topic",
        "X-Discourse-Event-Id": "83539",
        "X-Discourse-Instance": "https://ask.fedoraproject.org",
    },
    "github/discussion.answered.json": {"X-GitHub-Event": "discussion"},
    "github/discussion.category_changed.json": {"X-GitHub-Event": "discussion"},
    "github/discussion.created.json": {"X-GitHub-Event": "discussion"},
    "github/discussion.edited.json": {"X-GitHub-Event": "discussion"},
    "github/discussion.labeled.json": {"X-GitHub-Event": "discussion"},
    "github/discussion_comment.created.json": {"X-GitHub-Event": "discussion_comment"},
}


def fixture_names() -> list[str]:
    return sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*.json"))


def vendor_of(name: str) -> str:
    return name.split("/", 1)[0]


def _hex(secret: str, message: bytes, algorithm: str) -> str:
    return hmac.new(secret.encode(), message, algorithm).hexdigest()


def _b64(key: bytes, message: bytes, algorithm: str) -> str:
    return base64.b64encode(hmac.new(key, message, algorithm).digest()).decode()


def sign(vendor: str, body: bytes, secret: str, *, at: float = NOW, msg_id: str = "msg_1") -> dict[str, str]:
    """The authentication headers the vendor would send for `body`."""
    if vendor == "zendesk":
        stamp = datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "X-Zendesk-Webhook-Signature": _b64(secret.encode(), stamp.encode() + body, "sha256"),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        }
    if vendor == "github":
        return {"X-Hub-Signature-256": "sha256=" + _hex(secret, body, "sha256")}
    if vendor == "discourse":
        return {"X-Discourse-Event-Signature": "sha256=" + _hex(secret, body, "sha256")}
    if vendor in ("intercom", "zammad"):
        return {"X-Hub-Signature": "sha1=" + _hex(secret, body, "sha1")}
    if vendor == "jira":
        return {"X-Hub-Signature": "sha256=" + _hex(secret, body, "sha256")}
    if vendor == "helpscout":
        return {"X-HelpScout-Signature": _b64(secret.encode(), body, "sha1")}
    if vendor == "chatwoot":
        stamp = str(int(at))
        return {
            "X-Chatwoot-Signature": "sha256=" + _hex(secret, stamp.encode() + b"." + body, "sha256"),
            "X-Chatwoot-Timestamp": stamp,
        }
    if vendor == "freshdesk":
        return {"X-Webhook-Secret": secret}
    if vendor == "generic":
        key = base64.b64decode(secret.removeprefix("whsec_"))
        stamp = str(int(at))
        signature = _b64(key, f"{msg_id}.{stamp}.".encode() + body, "sha256")
        return {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": f"v1,{signature}"}
    raise ValueError(vendor)


def secrets_for(vendor: str) -> tuple[str, str]:
    """(secret, rotated secret) in the form the vendor's connection holds."""
    return (WHSEC, OTHER_WHSEC) if vendor == "generic" else (SECRET, OTHER_SECRET)


SIGNATURE_HEADER = {
    "zendesk": "X-Zendesk-Webhook-Signature",
    "github": "X-Hub-Signature-256",
    "discourse": "X-Discourse-Event-Signature",
    "intercom": "X-Hub-Signature",
    "zammad": "X-Hub-Signature",
    "jira": "X-Hub-Signature",
    "helpscout": "X-HelpScout-Signature",
    "chatwoot": "X-Chatwoot-Signature",
    "freshdesk": "X-Webhook-Secret",
    "generic": "webhook-signature",
}
TIMESTAMPED = frozenset({"zendesk", "chatwoot", "generic"})
BODY_SIGNED = frozenset(SIGNATURE_HEADER) - {"freshdesk"}
ALL_VENDORS = sorted(SIGNATURE_HEADER)


def digest_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Vendors with no saved fixture: bodies we constructed from the vendor's API documentation
# (Help Scout Mailbox API v2 conversation) and from our own generic format.
HELPSCOUT_CONVERSATION: dict[str, Any] = {
    "id": 10,
    "number": 12,
    "subject": "Refund for order 1234",
    "status": "closed",
    "mailboxId": 3,
    "createdAt": "2024-05-01T09:00:00Z",
    "closedAt": "2024-05-02T10:30:00Z",
    "userUpdatedAt": "2024-05-02T10:30:00Z",
    "source": {"type": "email", "via": "customer"},
    "primaryCustomer": {"id": 77, "email": "ann@example.com"},
    "tags": [{"id": 1, "color": "#ff0000", "tag": "refund"}, {"id": 2, "tag": "vip"}],
    "customFields": [{"id": 8, "name": "Product", "value": "5", "text": "Billing"}],
    "_links": {"web": {"href": "https://secure.helpscout.net/conversation/10/12/"}},
    "_embedded": {
        "threads": [
            {
                "id": 3,
                "type": "reply",
                "state": "published",
                "createdAt": "2024-05-01T11:00:00Z",
                "body": "<p>Refunded.</p>",
            },
            {"id": 2, "type": "note", "createdAt": "2024-05-01T10:00:00Z", "body": "internal"},
            {
                "id": 1,
                "type": "customer",
                "createdAt": "2024-05-01T09:00:00Z",
                "body": "<div>I was charged <b>twice</b>.</div>",
            },
        ]
    },
}
GENERIC_UPSERT: dict[str, Any] = {
    "type": "item.upserted",
    "timestamp": "2024-05-01T09:00:00Z",
    "data": {
        "source": "ignored-by-us",
        "external_id": "T-1",
        "kind": "ticket",
        "title": "Export to CSV",
        "body": "Please add CSV export to reports.",
        "created_at": "2024-05-01T09:00:00Z",
        "status": "open",
        "tags": ["reports"],
        "intent": "feature_request",
    },
}
