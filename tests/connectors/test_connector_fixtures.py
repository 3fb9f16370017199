"""Every shared fixture parses to hand-checked items (values read off the fixture files)."""

from __future__ import annotations

from typing import Any

import pytest

from connectors import dedupe_key, parse
from schemas.items import ItemCreate, normalise_status
from tests.connectors.connector_cases import FIXTURE_HEADERS, FIXTURES, fixture_names, vendor_of

ZENDESK_5158 = {
    "external_id": "5158",
    "kind": "ticket",
    "title": "ticketinfo_2294a6e9ece2",
    "body": "ticket_info_desc_2294a6e9ece2",
    "created_at": "2025-01-08T10:12:07+00:00",
    "updated_at": "2025-01-08T10:12:07+00:00",
    "status": "open",
    "status_events": [],
    "channel": "web_service",
    "priority": "low",
    "tags": ["ticket-info-test-tag"],
    "requester_id": "8447388090494",
    "url": None,
}
INTERCOM_4584686769 = {
    "external_id": "4584686769",
    "kind": "ticket",
    "title": None,
    "body": "visitor initiated message 1",
    "created_at": "2016-04-20T15:12:21+00:00",
    "requester_id": "57179c30c776e05d4c0002a8",
    "url": "https://app.intercom.io/a/apps/YOUR_APP_ID/inbox/all/conversations/4584686769",
}
INTERCOM_2020 = {
    "external_id": "137324500000000",
    "created_at": "2020-08-05T13:40:05+00:00",
    "requester_id": "5ee3d479d1cf3dedbee23d68",
    "tags": [],
    "url": "https://app.intercom.com/a/apps/lkqcyt9t/conversations/137324500000000",
}
JIRA_10040 = {
    "external_id": "10040",
    "kind": "ticket",
    "title": "Unit test summary 1",
    "body": "Unit test description, not that long, a little longer now",
    "created_at": "2019-02-16T03:01:52.971000+00:00",
    "priority": "high",
    "product": "COMP-1",
    "requester_id": "5c5f880629be9642ba529340",
    "url": "https://some-instance-test.atlassian.net/browse/TES-41",
    "intent": None,
}
GITHUB_3299614 = {
    "external_id": "3299614",
    "kind": "post",
    "title": "TEST edit",
    "body": "TEST edit",
    "created_at": "2021-03-30T20:09:52+00:00",
    "url": "https://github.com/Codertocat/Hello-World/discussions/4",
}

# fixture -> (event_type, ignored, deletes, [expected subset of each item])
EXPECTED: dict[str, tuple[str, bool, list[tuple[str, str]], list[dict[str, Any]]]] = {
    "chatwoot/message_created.doc_sample.json": ("message_created", True, [], []),
    "discourse/accepted_solution.json": (
        "accepted_solution",
        False,
        [],
        [
            {
                "source": "discourse",
                "external_id": "127593",
                "kind": "post",
                "title": None,  # post 3, not the opening post
                "created_at": "2023-02-12T15:43:44.749000+00:00",
                "status": "solved",
                "status_events": [
                    {"at": "2023-02-12T15:43:44.749000+00:00", "from_status": None, "to_status": "solved"}
                ],
                "requester_id": "8141",
                "url": "https://ask.fedoraproject.org/t/error-0x800f0922-updating-windows-10-in-kvm-libvirt-qemu-stack/31703/3",
            }
        ],
    ),
    # Fedora stripped raw/cooked: no text, so no item.
    "discourse/post_created.json": ("post_created", True, [], []),
    "discourse/post_created.with_raw_reply.json": (
        "post_created",
        False,
        [],
        [
            {
                "external_id": "15",
                "kind": "post",
                "title": None,
                "created_at": "2023-01-15T19:30:27.230000+00:00",
                "updated_at": "2023-01-15T19:30:27.230000+00:00",
                "requester_id": "1",
                "url": None,  # no X-Discourse-Instance was captured
                "votes": None,
            }
        ],
    ),
    "discourse/post_edited.json": ("post_edited", True, [], []),
    "discourse/post_liked.json": (
        "post_liked",
        False,
        [],
        [
            {
                "external_id": "79590",
                "title": "Theory of Change: how we plan (and explain our plans!)",
                "body": "the raw message",
                "created_at": "2023-02-10T08:06:44.329000+00:00",
                "updated_at": "2023-02-10T12:28:07.143000+00:00",
                "requester_id": "5",
                "votes": 3,
                "url": "https://discussion.fedoraproject.org/t/theory-of-change-how-we-plan-and-explain-our-plans/"
                "46632/1",
            }
        ],
    ),
    "discourse/topic_created.json": ("topic_created", True, [], []),
    "discourse/topic_edited.json": ("topic_edited", True, [], []),
    "discourse/topic_recovered.json": ("topic_recovered", True, [], []),
    "freshdesk/api_v2_ticket.json": (
        "ticket",
        False,
        [],
        [
            {
                "source": "freshdesk",
                "external_id": "1",
                "kind": "ticket",
                "title": "This is a sample ticket",
                "body": "This is a sample ticket, feel free to delete it.",
                "created_at": "2016-05-18T04:36:04+00:00",
                "updated_at": "2016-05-18T23:42:50+00:00",
                "status": "open",
                "status_events": [{"at": "2020-07-24T15:35:21+00:00", "from_status": None, "to_status": "resolved"}],
                "first_response_at": "2020-06-17T20:23:43+00:00",
                "channel": "portal",
                "priority": "low",
                "product": None,
                "tags": ["foo", "bar"],
                "requester_id": "6012691534",
                "intent": "question",
            }
        ],
    ),
    "freshdesk/api_v2_ticket_conversations.json": ("conversations", True, [], []),
    "github/discussion.answered.json": (
        "discussion.answered",
        False,
        [],
        [
            {
                **GITHUB_3299614,
                "updated_at": "2021-03-30T23:17:18+00:00",
                "status": "answered",
                "status_events": [{"at": "2021-03-30T23:17:18+00:00", "from_status": "open", "to_status": "answered"}],
                "requester_id": "4595477",
                "intent": "question",
            },
            {
                "external_id": "comment:550561",
                "kind": "post",
                "body": "Poggers",
                "created_at": "2021-03-30T23:16:42+00:00",
                "requester_id": "1253226",
                "url": "https://github.com/Codertocat/Hello-World/discussions/4#discussioncomment-550561",
            },
        ],
    ),
    "github/discussion.category_changed.json": (
        "discussion.category_changed",
        False,
        [],
        [{**GITHUB_3299614, "status": "locked", "intent": None, "updated_at": "2021-03-30T20:35:35+00:00"}],
    ),
    "github/discussion.created.json": (
        "discussion.created",
        False,
        [],
        [{**GITHUB_3299614, "status": "converting", "requester_id": "21031067", "tags": []}],
    ),
    "github/discussion.edited.json": ("discussion.edited", False, [], [{**GITHUB_3299614, "status": "open"}]),
    "github/discussion.labeled.json": (
        "discussion.labeled",
        False,
        [],
        [{**GITHUB_3299614, "tags": ["bug"], "intent": "bug"}],
    ),
    "github/discussion_comment.created.json": (
        "discussion_comment.created",
        False,
        [],
        [
            {
                "external_id": "comment:550062",
                "title": None,
                "body": "ANSWER",
                "created_at": "2021-03-30T20:21:30+00:00",
                "votes": 0,
                "requester_id": "21031067",
                "intent": None,
                "url": "https://github.com/Codertocat/Hello-World/discussions/4#discussioncomment-550062",
            }
        ],
    ),
    "intercom/conversation.admin.assigned.json": (
        "conversation.admin.assigned",
        False,
        [],
        [{**INTERCOM_4584686769, "status": "open", "status_events": [], "first_response_at": None}],
    ),
    "intercom/conversation.admin.closed.json": (
        "conversation.admin.closed",
        False,
        [],
        [
            {
                **INTERCOM_4584686769,
                "status": "closed",
                "updated_at": "2016-04-20T15:13:30+00:00",
                "status_events": [{"at": "2016-04-20T15:13:30+00:00", "from_status": None, "to_status": "closed"}],
            }
        ],
    ),
    "intercom/conversation.admin.noted.json": (
        "conversation.admin.noted",
        False,
        [],
        [{**INTERCOM_4584686769, "status": "open", "first_response_at": None}],  # a note is not a reply
    ),
    "intercom/conversation.admin.opened.json": (
        "conversation.admin.opened",
        False,
        [],
        [
            {
                **INTERCOM_4584686769,
                "status": "open",
                "status_events": [{"at": "2016-04-20T15:13:44+00:00", "from_status": "closed", "to_status": "open"}],
            }
        ],
    ),
    "intercom/conversation.admin.replied.json": (
        "conversation.admin.replied",
        False,
        [],
        [{**INTERCOM_4584686769, "status": "open", "first_response_at": "2016-04-20T15:13:15+00:00"}],
    ),
    "intercom/conversation.admin.single.created.2020.json": (
        "conversation.admin.single.created",
        False,
        [],
        [{**INTERCOM_2020, "body": "hi Bob", "status": "closed", "status_events": []}],
    ),
    "intercom/conversation.admin.snoozed.2020.json": (
        "conversation.admin.snoozed",
        False,
        [],
        [
            {
                **INTERCOM_2020,
                "body": "Hi Bob",
                "status": "snoozed",
                "updated_at": "2020-08-05T13:45:26+00:00",
                "status_events": [{"at": "2020-08-05T13:45:26+00:00", "from_status": None, "to_status": "snoozed"}],
            }
        ],
    ),
    "intercom/conversation.user.created.json": (
        "conversation.user.created",
        False,
        [],
        [{**INTERCOM_4584686769, "status": "open", "updated_at": "2016-04-20T15:12:21+00:00"}],
    ),
    "intercom/conversation.user.replied.json": (
        "conversation.user.replied",
        False,
        [],
        [{**INTERCOM_4584686769, "status": "open", "first_response_at": None}],  # the user, not an admin
    ),
    # The comment event's issue snapshot has no creation time: nothing to upsert.
    "jira/comment_created.cloud.json": ("comment_created", True, [], []),
    "jira/jira_issue_created.json": (
        "jira:issue_created",
        False,
        [],
        [
            {
                **JIRA_10040,
                "title": "Unit test summary",
                "body": "Unit test description, not that long",
                "updated_at": "2019-02-16T03:01:52.971000+00:00",
                "status": "new",
                "status_events": [{"at": "2019-02-16T03:01:53.023000+00:00", "from_status": None, "to_status": "new"}],
                "tags": ["test-label"],
            }
        ],
    ),
    "jira/jira_issue_updated.assigned.json": (
        "jira:issue_updated",
        False,
        [],
        [{**JIRA_10040, "status": "new", "status_events": [], "updated_at": "2019-02-16T03:18:01.707000+00:00"}],
    ),
    "jira/jira_issue_updated.custom_field.cloud.json": (
        "jira:issue_updated",
        False,
        [],
        [
            {
                "external_id": "10368",
                "title": "v",
                "body": "s",
                "created_at": "2019-07-18T00:59:42.002000+00:00",
                "updated_at": "2019-08-12T01:49:13.412000+00:00",
                "status": "new",
                "priority": "medium",
                "product": None,
                "tags": ["Pickles"],
                "url": "https://mmtest.atlassian.net/browse/TES-14",
            }
        ],
    ),
    "jira/jira_issue_updated.labels.json": (
        "jira:issue_updated",
        False,
        [],
        [{**JIRA_10040, "tags": ["sad", "test-label"], "status_events": []}],
    ),
    "jira/jira_issue_updated.reopened.json": (
        "jira:issue_updated",
        False,
        [],
        [
            {
                **JIRA_10040,
                "status": "new",
                "status_events": [
                    {"at": "2019-02-16T03:17:06.531000+00:00", "from_status": "done", "to_status": "new"}
                ],
            }
        ],
    ),
    "jira/jira_issue_updated.resolved.json": (
        "jira:issue_updated",
        False,
        [],
        [
            {
                **JIRA_10040,
                "status": "done",
                "status_events": [
                    {"at": "2019-02-16T03:15:40.507000+00:00", "from_status": "in progress", "to_status": "done"}
                ],
            }
        ],
    ),
    "jira/jira_issue_updated.resolved.server.json": (
        "jira:issue_updated",
        False,
        [],
        [
            {
                "external_id": "10300",
                "body": "Unit test summary 1",  # no description: the summary stands in
                "created_at": "2019-08-12T22:14:23.580000+00:00",
                "status": "done",
                "status_events": [
                    {"at": "2019-08-12T23:23:02.025000+00:00", "from_status": "in progress", "to_status": "done"}
                ],
                "requester_id": "admin",
                "intent": "bug",
                "url": "http://some-instance-test.centralus.cloudapp.azure.com:8080/browse/TES-4",
            }
        ],
    ),
    "zammad/ticket_trigger.default_payload.json": (
        "trigger",
        False,
        [],
        [
            {
                "source": "zammad",
                "external_id": "81",
                "kind": "ticket",
                "title": "Webhook-Test",
                "body": "This is a simple Webhook Test.",
                "created_at": "2020-11-13T14:34:35.282000+00:00",
                "updated_at": "2020-11-13T14:34:35.333000+00:00",
                "status": "open",
                "channel": "phone",
                "priority": "normal",
                "requester_id": "8",
                "url": "https://zammad.example.com/#ticket/zoom/81",
            }
        ],
    ),
    "zendesk/api_ticket.json": (
        "ticket",
        False,
        [],
        [
            {
                "source": "zendesk",
                "external_id": "1",
                "title": "This is a sample ticket requested and submitted by you",
                "body": "This is the first comment. Feel free to delete this sample ticket.",
                "created_at": "2015-07-25T02:21:13+00:00",
                "updated_at": "2015-07-25T02:23:13+00:00",
                "status": "pending",
                "channel": "sample_ticket",
                "priority": "high",
                "tags": ["sample", "zendesk"],
                "requester_id": "1159307768",
                "url": "https://testing23.zendesk.com/agent/tickets/1",
                "reopens": None,
            }
        ],
    ),
    "zendesk/api_ticket_audit.json": (
        "audit",
        False,
        [],
        [
            {
                "external_id": "7",
                "title": "OMG I MADE A TICKET",
                "body": "THIS IS MY FUNCY COMMENT",
                "created_at": "2015-08-29T03:45:36+00:00",
                "status": "open",
                "channel": "api",
                "requester_id": "1276936927",
                "first_response_at": None,  # the requester's own comment
            }
        ],
    ),
    "zendesk/api_ticket_create_response.json": (
        "ticket",
        False,
        [],
        [
            {
                "external_id": "4014",
                "title": "test",
                "body": "test",
                "created_at": "2023-09-18T23:25:58+00:00",
                "status": "new",
                "status_events": [],
                "channel": "api",
                "requester_id": "6130907993114",
                "first_response_at": None,
                "url": "https://d3v-zenpydev.zendesk.com/agent/tickets/4014",
            }
        ],
    ),
    "zendesk/api_ticket_metric.json": ("ticket_metric", True, [], []),
    "zendesk/event.ticket.attachment_linked_to_comment.json": (
        "zen:event-type:ticket.attachment_linked_to_comment",
        False,
        [],
        [
            {
                "external_id": "19395",
                "body": "Hi There",
                "created_at": "2025-01-14T19:31:42+00:00",
                "status": "new",
                "priority": None,
                "tags": [],  # detail.tags is null
                "channel": "mail",
                "requester_id": "8658726154110",
            }
        ],
    ),
    "zendesk/event.ticket.created.json": ("zen:event-type:ticket.created", False, [], [ZENDESK_5158]),
    "zendesk/event.user.group_membership_created.json": ("zen:event-type:user.group_membership_created", True, [], []),
    "zendesk/trigger.custom_body.ticket_update.json": ("trigger", True, [], []),
}


def test_every_fixture_has_expectations() -> None:
    assert sorted(EXPECTED) == fixture_names()


@pytest.mark.parametrize("name", fixture_names())
def test_fixture_maps_to_expected_items(name: str) -> None:
    vendor = vendor_of(name)
    body = (FIXTURES / name).read_bytes()
    event_type, ignored, deletes, expected_items = EXPECTED[name]
    parsed = parse(vendor, FIXTURE_HEADERS.get(name, {}), body)
    assert (parsed.event_type, parsed.ignored, list(parsed.deletes)) == (event_type, ignored, deletes)
    assert len(parsed.items) == len(expected_items)
    for item, expected in zip(parsed.items, expected_items, strict=True):
        assert set(item) == set(ItemCreate.model_fields)
        assert item["source"] == vendor
        assert {k: item[k] for k in expected} == expected
        ItemCreate.model_validate(item)


@pytest.mark.parametrize("name", fixture_names())
def test_emitted_status_words_normalise(name: str) -> None:
    parsed = parse(vendor_of(name), FIXTURE_HEADERS.get(name, {}), (FIXTURES / name).read_bytes())
    for item in parsed.items:
        words = [item["status"]] + [e["to_status"] for e in item["status_events"]]
        words += [e["from_status"] for e in item["status_events"] if e["from_status"]]
        # GitHub's "locked"/"converting" are states with no lifecycle meaning: None is right.
        unknown = [w for w in words if w and normalise_status(w) is None and w not in ("locked", "converting")]
        assert unknown == []


@pytest.mark.parametrize("name", fixture_names())
def test_same_delivery_twice_gives_the_same_dedupe_key(name: str) -> None:
    vendor = vendor_of(name)
    body = (FIXTURES / name).read_bytes()
    headers = FIXTURE_HEADERS.get(name, {})
    first, second = dedupe_key(vendor, headers, body), dedupe_key(vendor, dict(headers), bytes(body))
    assert first == second == parse(vendor, headers, body).dedupe_key
    assert first.split(":", 1)[0] in ("event", "delivery", "object", "hash")
    assert len(first) <= 256


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("zendesk/event.ticket.created.json", "event:cbe4028c-7239-495d-b020-f22348516046"),
        ("intercom/conversation.admin.closed.json", "event:notif_70ff3660-070a-11e6-a507-3d022cab75f8"),
        ("freshdesk/api_v2_ticket.json", "object:1:2016-05-18T23:42:50Z"),
        ("zammad/ticket_trigger.default_payload.json", "object:81:2020-11-13T14:34:35.333Z"),
        ("jira/jira_issue_updated.resolved.json", "object:10040:jira:issue_updated:1550286940507"),
        (
            "discourse/post_edited.json",
            "object:https://ask.fedoraproject.org:post_edited:127406:2023-02-10T09:44:54.865Z",
        ),
    ],
)
def test_dedupe_key_uses_the_documented_id(name: str, expected: str) -> None:
    body = (FIXTURES / name).read_bytes()
    assert dedupe_key(vendor_of(name), FIXTURE_HEADERS.get(name, {}), body) == expected


@pytest.mark.parametrize(
    ("vendor", "header", "value", "expected"),
    [
        (
            "github",
            "X-GitHub-Delivery",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "delivery:72d3162e-cc78-11e3-81ab-4c9367dc0958",
        ),
        ("jira", "X-Atlassian-Webhook-Identifier", "abc-123", "delivery:abc-123"),
        ("zammad", "X-Zammad-Delivery", "job-9", "delivery:job-9"),
        ("chatwoot", "X-Chatwoot-Delivery", "d-7", "delivery:d-7"),
        ("generic", "webhook-id", "msg_2Lx", "event:msg_2Lx"),
        ("zendesk", "X-Zendesk-Webhook-Invocation-Id", "inv-5", "delivery:inv-5"),
    ],
)
def test_delivery_id_headers_are_the_dedupe_key(vendor: str, header: str, value: str, expected: str) -> None:
    assert dedupe_key(vendor, {header: value}, b'{"not": "an event"}') == expected


def test_discourse_event_id_header_is_not_the_dedupe_key() -> None:
    name = "discourse/post_liked.json"
    body = (FIXTURES / name).read_bytes()
    first_try = FIXTURE_HEADERS[name]
    retry = {**first_try, "X-Discourse-Event-Id": "159034"}  # a new WebHookEvent row per attempt
    assert dedupe_key("discourse", first_try, body) == dedupe_key("discourse", retry, body)
    assert "159033" not in dedupe_key("discourse", first_try, body)


def test_dedupe_key_never_raises_and_falls_back_to_the_body_hash() -> None:
    for body in (b"", b"not json", b"[" * 100_000, b'{"id": ' + b"9" * 5000 + b"}", b"\xff\xfe"):
        for vendor in ("zendesk", "github", "discourse", "unknown-vendor"):
            assert dedupe_key(vendor, {}, body).startswith("hash:")
