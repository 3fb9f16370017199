"""Mapping rules the shared fixtures do not exercise, on bodies derived from them or from docs.

Each derived body says what was changed; nothing here claims to be a vendor capture.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from connectors import MalformedPayload, parse
from schemas.items import ItemCreate
from tests.connectors.connector_cases import FIXTURES, GENERIC_UPSERT, HELPSCOUT_CONVERSATION


def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    return loaded


def _parse(vendor: str, payload: Any, headers: dict[str, str] | None = None) -> Any:
    parsed = parse(vendor, headers or {}, json.dumps(payload).encode())
    for item in parsed.items:
        ItemCreate.model_validate(item)
    return parsed


def _zendesk_event(event_type: str, event: dict[str, Any], **detail: Any) -> dict[str, Any]:
    body = _fixture("zendesk/event.ticket.created.json")
    body["type"] = f"zen:event-type:{event_type}"
    body["event"] = event
    body["detail"].update(detail)
    return body


def test_zendesk_status_changed_gives_a_solve_event_at_the_event_time() -> None:
    body = _zendesk_event("ticket.status_changed", {"previous": "OPEN", "current": "SOLVED"}, status="SOLVED")
    (item,) = _parse("zendesk", body).items
    assert item["status"] == "solved"
    assert item["status_events"] == [
        {"at": "2025-01-08T10:12:07.672717+00:00", "from_status": "open", "to_status": "solved"}
    ]


def test_zendesk_reopen_and_hold_keep_raw_words() -> None:
    body = _zendesk_event("ticket.status_changed", {"previous": "SOLVED", "current": "HOLD"}, status="HOLD")
    (item,) = _parse("zendesk", body).items
    assert (item["status"], item["status_events"][0]["from_status"]) == ("hold", "solved")


def test_zendesk_public_staff_comment_is_a_first_response_candidate() -> None:
    staff = {"comment": {"body": "On it", "is_public": True, "author": {"id": "1", "is_staff": True}}}
    private = {"comment": {"body": "note", "is_public": False, "author": {"id": "1", "is_staff": True}}}
    assert _parse("zendesk", _zendesk_event("ticket.comment_added", staff)).items[0]["first_response_at"] == (
        "2025-01-08T10:12:07.672717+00:00"
    )
    assert _parse("zendesk", _zendesk_event("ticket.comment_added", private)).items[0]["first_response_at"] is None


@pytest.mark.parametrize("event_type", ["ticket.soft_deleted", "ticket.permanently_deleted"])
def test_zendesk_deletions_are_deletes(event_type: str) -> None:
    parsed = _parse("zendesk", _zendesk_event(event_type, {}))
    assert (parsed.items, list(parsed.deletes), parsed.ignored) == ([], [("zendesk", "5158")], False)


def test_zendesk_undeleted_is_an_upsert() -> None:
    assert _parse("zendesk", _zendesk_event("ticket.undeleted", {})).items[0]["external_id"] == "5158"


def test_zendesk_follow_up_ticket_is_a_new_ticket_not_a_reopen() -> None:
    ticket = _fixture("zendesk/api_ticket.json")
    ticket.update(id=2, status="open", via={"channel": "closed_ticket", "source": {"rel": "follow_up"}})
    (item,) = _parse("zendesk", {"ticket": ticket}).items
    assert (item["external_id"], item["status"], item["status_events"]) == ("2", "open", [])
    assert item["channel"] == "closed_ticket"


def test_zendesk_ticket_with_metrics_carries_the_reopens_counter() -> None:
    body = {"ticket": _fixture("zendesk/api_ticket.json"), "ticket_metric": _fixture("zendesk/api_ticket_metric.json")}
    assert _parse("zendesk", body).items[0]["reopens"] == 55


def test_zendesk_update_audit_status_change_and_agent_reply() -> None:
    body = _fixture("zendesk/api_ticket_create_response.json")
    body["audit"]["events"] = [
        {"type": "Change", "field_name": "status", "previous_value": "solved", "value": "open"},
        {"type": "Comment", "public": True, "author_id": 42, "body": "Reopened, looking again"},
    ]
    (item,) = _parse("zendesk", body).items
    assert item["status_events"] == [{"at": "2023-09-18T23:25:58+00:00", "from_status": "solved", "to_status": "open"}]
    assert item["first_response_at"] == "2023-09-18T23:25:58+00:00"


def test_zendesk_recommended_trigger_template_maps() -> None:
    body = {
        "ticket": {
            "id": 812,
            "url": "https://acme.zendesk.com/agent/tickets/812",
            "subject": "Cannot log in",
            "description": "Password reset mail never arrives",
            "status": "On-hold",
            "priority": "Normal",
            "tags": "login email",
            "via": {"channel": "Web Form"},
            "requester_id": "3301",
            "created_at": "2026-01-05T08:00:00Z",
            "updated_at": "2026-01-05T09:30:00Z",
        }
    }
    (item,) = _parse("zendesk", body).items
    assert item["status"] == "on-hold"
    assert item["tags"] == ["login", "email"]
    assert item["url"] == "https://acme.zendesk.com/agent/tickets/812"
    assert item["channel"] == "web form"


def test_freshdesk_ticket_with_conversations_and_template_words() -> None:
    ticket = _fixture("freshdesk/api_v2_ticket.json")
    ticket["conversations"] = _fixture("freshdesk/api_v2_ticket_conversations.json")
    ticket["stats"]["first_responded_at"] = None
    ticket.update(status=99, custom_fields={"cf_product": "Billing"})
    (item,) = _parse("freshdesk", {"ticket": ticket}).items
    # the public outgoing reply (id 2), not the private note (id 1)
    assert item["first_response_at"] == "2016-05-19T05:36:14+00:00"
    assert item["status"] is None  # a custom status number we cannot name
    assert item["product"] == "Billing"
    templated = {
        "id": 5,
        "subject": "Hi",
        "description_text": "Body",
        "status": "Resolved",
        "priority": "Urgent",
        "source": "Email",
        "tags": "a, b",
        "created_at": "2026-01-05T08:00:00Z",
    }
    (item,) = _parse("freshdesk", {"ticket": templated}).items
    assert (item["status"], item["priority"], item["channel"], item["tags"]) == (
        "resolved",
        "urgent",
        "email",
        ["a", "b"],
    )


def test_freshdesk_reopened_stat_is_a_reopen_event() -> None:
    ticket = _fixture("freshdesk/api_v2_ticket.json")
    ticket["stats"]["reopened_at"] = "2020-07-25T10:00:00Z"
    events = _parse("freshdesk", ticket).items[0]["status_events"]
    assert {"at": "2020-07-25T10:00:00+00:00", "from_status": "resolved", "to_status": "open"} in events


def test_jira_deleted_issue_is_a_delete_and_adf_description_is_text() -> None:
    deleted = {"webhookEvent": "jira:issue_deleted", "timestamp": 1, "issue": {"id": "10040"}}
    assert list(_parse("jira", deleted).deletes) == [("jira", "10040")]
    body = _fixture("jira/jira_issue_created.json")
    body["issue"]["fields"]["description"] = {
        "type": "doc",
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "Export"}, {"type": "text", "text": "fails"}]}
        ],
    }
    body["issue"]["fields"]["issuetype"]["name"] = "New Feature"
    (item,) = _parse("jira", body).items
    assert (item["body"], item["intent"]) == ("Export fails", "feature_request")


def test_jira_resolution_only_changes_become_events() -> None:
    body = _fixture("jira/jira_issue_updated.reopened.json")
    body["changelog"]["items"] = [body["changelog"]["items"][0]]  # keep only the resolution item
    assert _parse("jira", body).items[0]["status_events"] == [
        {"at": "2019-02-16T03:17:06.531000+00:00", "from_status": "resolved", "to_status": "reopened"}
    ]


def test_zammad_later_article_does_not_become_the_body() -> None:
    body = _fixture("zammad/ticket_trigger.default_payload.json")
    body["ticket"].update(article_ids=[100, 104], article_count=2, state="closed")
    (item,) = _parse("zammad", body, {"X-Zammad-Trigger": "ticket closed"}).items
    assert (item["body"], item["status"]) == ("Webhook-Test", "closed")


def test_chatwoot_status_change_from_documented_conversation_shape() -> None:
    body = {
        "event": "conversation_status_changed",
        "id": 42,
        "status": "resolved",
        "created_at": 1714550400,
        "updated_at": 1714636800,
        "labels": ["billing"],
        "meta": {"sender": {"id": 7}, "channel": "Channel::WebWidget"},
        "changed_attributes": [{"status": {"previous_value": "open", "current_value": "resolved"}}],
        "messages": [
            {"content": "agent hello", "message_type": 1, "created_at": 1714550500},
            {"content": "My invoice is wrong", "message_type": 0, "created_at": 1714550400},
        ],
    }
    (item,) = _parse("chatwoot", body).items
    assert item["body"] == "My invoice is wrong"
    assert item["created_at"] == "2024-05-01T08:00:00+00:00"
    assert item["status_events"] == [
        {"at": "2024-05-02T08:00:00+00:00", "from_status": "open", "to_status": "resolved"}
    ]
    assert (item["tags"], item["requester_id"], item["channel"]) == (["billing"], "7", "channel::webwidget")


def test_helpscout_conversation_and_delete() -> None:
    parsed = _parse("helpscout", HELPSCOUT_CONVERSATION, {"X-HelpScout-Event": "convo.status"})
    (item,) = parsed.items
    assert item["body"] == "I was charged twice."
    assert (item["status"], item["first_response_at"]) == ("closed", "2024-05-01T11:00:00+00:00")
    assert item["status_events"] == [{"at": "2024-05-02T10:30:00+00:00", "from_status": None, "to_status": "closed"}]
    assert (item["tags"], item["product"], item["requester_id"]) == (["refund", "vip"], "Billing", "77")
    deleted = _parse("helpscout", {"id": 10}, {"X-HelpScout-Event": "convo.deleted"})
    assert list(deleted.deletes) == [("helpscout", "10")]
    assert _parse("helpscout", {"id": 1}, {"X-HelpScout-Event": "customer.created"}).ignored


@pytest.mark.parametrize(
    ("action", "events"),
    [
        ("unanswered", [("answered", "open")]),
        ("reopened", [("closed", "open")]),
        ("closed", [("open", "closed")]),
    ],
)
def test_github_unanswer_reopen_close(action: str, events: list[tuple[str, str]]) -> None:
    body = _fixture("github/discussion.edited.json")
    body["action"] = action
    (item,) = _parse("github", body, {"X-GitHub-Event": "discussion"}).items
    assert [(e["from_status"], e["to_status"]) for e in item["status_events"]] == events


def test_github_deletes_and_category_intent() -> None:
    body = _fixture("github/discussion.created.json")
    body["action"] = "deleted"
    assert list(_parse("github", body, {"X-GitHub-Event": "discussion"}).deletes) == [("github", "3299614")]
    comment = _fixture("github/discussion_comment.created.json")
    comment["action"] = "deleted"
    assert list(_parse("github", comment, {"X-GitHub-Event": "discussion_comment"}).deletes) == [
        ("github", "comment:550062")
    ]
    body = _fixture("github/discussion.created.json")
    body["discussion"]["category"]["name"] = "Ideas"
    assert _parse("github", body, {"X-GitHub-Event": "discussion"}).items[0]["intent"] == "feature_request"


def test_discourse_post_destroyed_and_feature_category() -> None:
    post = _fixture("discourse/post_created.with_raw_reply.json")
    destroyed = _parse("discourse", post, {"X-Discourse-Event": "post_destroyed"})
    assert list(destroyed.deletes) == [("discourse", "15")]
    post["post"]["category_slug"] = "feature-requests"
    assert _parse("discourse", post, {"X-Discourse-Event": "post_created"}).items[0]["intent"] == "feature_request"
    assert _parse("discourse", {"ping": "OK"}, {"X-Discourse-Event": "ping"}).ignored


def test_generic_upsert_forces_the_source_and_delete() -> None:
    (item,) = _parse("generic", GENERIC_UPSERT).items
    assert (item["source"], item["external_id"], item["intent"]) == ("generic", "T-1", "feature_request")
    deleted = _parse("generic", {"type": "item.deleted", "data": {"external_id": "T-1"}})
    assert list(deleted.deletes) == [("generic", "T-1")]
    bad = copy.deepcopy(GENERIC_UPSERT)
    bad["data"]["kind"] = "email"
    with pytest.raises(MalformedPayload):
        _parse("generic", bad)


@pytest.mark.parametrize(
    "vendor",
    ["zendesk", "freshdesk", "jira", "intercom", "zammad", "chatwoot", "helpscout", "discourse", "github", "generic"],
)
@pytest.mark.parametrize("body", [b"", b"not json", b"[" * 50_000, b"\xff", b"42", b'"text"', b"null"])
def test_bodies_that_are_not_the_vendor_shape_are_malformed(vendor: str, body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse(vendor, {}, body)


def test_text_postgres_cannot_store_is_cleaned() -> None:
    body = _fixture("zendesk/event.ticket.created.json")
    body["detail"]["description"] = "null\u0000byte and lone \ud800 surrogate " + "\U0001f600" * 300_000
    (item,) = _parse("zendesk", body).items
    assert "\x00" not in item["body"]
    item["body"].encode("utf-8")  # no lone surrogate left
    assert len(item["body"]) == 64 * 1024
