"""Webhook receiving end to end on real Postgres and Redis (reliability.md W1-W4, W6, W7, W10, S4, D6).

Deliveries are signed here the way each vendor signs (tests/connectors/connector_cases.py computes
the signatures from webhooks.md, independently of connectors/signatures.py), posted to the API,
processed by the job function in-process, and checked through GET /v1/items.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import SecretStr

from api.routes.webhooks import STORED_HEADERS
from schemas.settings import Settings
from tests.conftest import auth, running_app, wait_for
from tests.connectors.connector_cases import (
    ALL_VENDORS,
    BODY_SIGNED,
    FIXTURE_HEADERS,
    GENERIC_UPSERT,
    HELPSCOUT_CONVERSATION,
    SIGNATURE_HEADER,
    fixture_names,
    secrets_for,
    sign,
    vendor_of,
)
from workers.deliveries import handle_deliveries

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "webhooks"
SERVER_KEY = "test-server-secret-key-0123456789abcdefghijklmnop"
T = TypeVar("T")


# --- harness ----------------------------------------------------------------------------------


@pytest.fixture
def hook_settings(migrated: Settings) -> Settings:
    return migrated.model_copy(update={"secret_key": SecretStr(SERVER_KEY)})


async def truncate_webhook_tables(conn: asyncpg.Connection) -> None:
    # conftest's `db` truncates the tables it knows; these are ours.
    await conn.execute("TRUNCATE connection, connection_secret, delivery RESTART IDENTITY CASCADE")


@pytest.fixture
async def hooks(hook_settings: Settings, db: asyncpg.Connection) -> AsyncIterator[httpx.AsyncClient]:
    await truncate_webhook_tables(db)
    async with running_app(hook_settings) as (client, _):
        yield client


async def new_connection(client: httpx.AsyncClient, vendor: str, secret: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"vendor": vendor, "name": f"{vendor} test"}
    if secret is not None:
        payload["secret"] = secret
    resp = await client.post("/v1/connections", json=payload, headers=auth())
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


def signed(vendor: str, body: bytes, secret: str, extra: dict[str, str] | None = None, **kw: Any) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **(extra or {})}
    headers.update(sign(vendor, body, secret, at=kw.pop("at", time.time()), **kw))
    return headers


async def post(client: httpx.AsyncClient, connection_id: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post(f"/v1/webhooks/{connection_id}", content=body, headers=headers)


async def process_pending(db: asyncpg.Connection) -> dict[str, int]:
    ids = [r["delivery_id"] for r in await db.fetch("SELECT delivery_id FROM delivery WHERE status = 'pending'")]
    return await handle_deliveries(db, ids)


async def items_of(client: httpx.AsyncClient, source: str) -> list[dict[str, Any]]:
    resp = await client.get("/v1/items", params={"source": source, "limit": 1000}, headers=auth())
    assert resp.status_code == 200, resp.text
    data: list[dict[str, Any]] = resp.json()["data"]
    return sorted(data, key=lambda i: i["external_id"])


def same(actual: Any, expected: Any, name: str) -> bool:
    if name.endswith("_at") and isinstance(expected, str) and isinstance(actual, str):
        return datetime.fromisoformat(actual) == datetime.fromisoformat(expected)
    return bool(actual == expected)


# --- every shared fixture, through the API and the job -----------------------------------------

ZD = {"kind": "ticket"}
GH = {"external_id": "3299614", "kind": "post", "title": "TEST edit", "created_at": "2021-03-30T20:09:52Z"}
IC = {"external_id": "4584686769", "body": "visitor initiated message 1", "requester_id": "57179c30c776e05d4c0002a8"}
JI = {"external_id": "10040", "kind": "ticket", "priority": "high", "requester_id": "5c5f880629be9642ba529340"}

# fixture -> key fields of each resulting item (sorted by external_id); [] = stored and ignored.
EXPECTED: dict[str, list[dict[str, Any]]] = {
    "chatwoot/message_created.doc_sample.json": [],
    "discourse/accepted_solution.json": [
        {"external_id": "127593", "kind": "post", "status": "solved", "status_raw": "solved",
         "first_solved_at": "2023-02-12T15:43:44.749Z", "requester_id": "8141"},
    ],
    "discourse/post_created.json": [],
    "discourse/post_created.with_raw_reply.json": [
        {"external_id": "15", "kind": "post", "created_at": "2023-01-15T19:30:27.230Z", "requester_id": "1"},
    ],
    "discourse/post_edited.json": [],
    "discourse/post_liked.json": [
        {"external_id": "79590", "title": "Theory of Change: how we plan (and explain our plans!)",
         "body": "the raw message", "votes": 3, "requester_id": "5"},
    ],
    "discourse/topic_created.json": [],
    "discourse/topic_edited.json": [],
    "discourse/topic_recovered.json": [],
    "freshdesk/api_v2_ticket.json": [
        # stats.resolved_at (2020) is later than updated_at (2016) in this sample: the newest
        # status event wins, so the ticket reads as solved.
        {"external_id": "1", "title": "This is a sample ticket", "status": "solved", "status_raw": "resolved",
         "channel": "portal", "priority": "low", "tags": ["foo", "bar"], "requester_id": "6012691534",
         "created_at": "2016-05-18T04:36:04Z", "first_response_at": "2020-06-17T20:23:43Z"},
    ],
    "freshdesk/api_v2_ticket_conversations.json": [],
    "github/discussion.answered.json": [
        {**GH, "status": "solved", "status_raw": "answered", "first_solved_at": "2021-03-30T23:17:18Z"},
        {"external_id": "comment:550561", "kind": "post", "body": "Poggers", "requester_id": "1253226"},
    ],
    "github/discussion.category_changed.json": [{**GH, "status": None, "status_raw": "locked"}],
    "github/discussion.created.json": [{**GH, "status_raw": "converting", "requester_id": "21031067"}],
    "github/discussion.edited.json": [{**GH, "status": "open"}],
    "github/discussion.labeled.json": [{**GH, "tags": ["bug"]}],
    "github/discussion_comment.created.json": [
        {"external_id": "comment:550062", "body": "ANSWER", "votes": 0, "created_at": "2021-03-30T20:21:30Z"},
    ],
    "intercom/conversation.admin.assigned.json": [{**IC, "status": "open", "created_at": "2016-04-20T15:12:21Z"}],
    "intercom/conversation.admin.closed.json": [
        {**IC, "status": "closed", "first_solved_at": "2016-04-20T15:13:30Z"},
    ],
    "intercom/conversation.admin.noted.json": [{**IC, "status": "open", "first_response_at": None}],
    "intercom/conversation.admin.opened.json": [{**IC, "status": "open", "reopen_count": 1}],
    "intercom/conversation.admin.replied.json": [{**IC, "first_response_at": "2016-04-20T15:13:15Z"}],
    "intercom/conversation.admin.single.created.2020.json": [
        {"external_id": "137324500000000", "body": "hi Bob", "status": "closed"},
    ],
    "intercom/conversation.admin.snoozed.2020.json": [
        {"external_id": "137324500000000", "status": "on_hold", "status_raw": "snoozed"},
    ],
    "intercom/conversation.user.created.json": [{**IC, "status": "open"}],
    "intercom/conversation.user.replied.json": [{**IC, "status": "open", "first_response_at": None}],
    "jira/comment_created.cloud.json": [],
    "jira/jira_issue_created.json": [
        {**JI, "title": "Unit test summary", "status": "new", "tags": ["test-label"],
         "created_at": "2019-02-16T03:01:52.971Z"},
    ],
    "jira/jira_issue_updated.assigned.json": [{**JI, "status": "new"}],
    "jira/jira_issue_updated.custom_field.cloud.json": [
        {"external_id": "10368", "title": "v", "priority": "medium", "tags": ["Pickles"]},
    ],
    "jira/jira_issue_updated.labels.json": [{**JI, "tags": ["sad", "test-label"]}],
    "jira/jira_issue_updated.reopened.json": [{**JI, "status": "new", "reopen_count": 1}],
    "jira/jira_issue_updated.resolved.json": [
        {**JI, "status": "solved", "status_raw": "done", "first_solved_at": "2019-02-16T03:15:40.507Z"},
    ],
    "jira/jira_issue_updated.resolved.server.json": [
        {"external_id": "10300", "status": "solved", "status_raw": "done", "requester_id": "admin"},
    ],
    "zammad/ticket_trigger.default_payload.json": [
        {"external_id": "81", "title": "Webhook-Test", "body": "This is a simple Webhook Test.", "status": "open",
         "channel": "phone", "priority": "normal", "requester_id": "8", "created_at": "2020-11-13T14:34:35.282Z"},
    ],
    "zendesk/api_ticket.json": [
        {**ZD, "external_id": "1", "status": "pending", "channel": "sample_ticket", "priority": "high",
         "tags": ["sample", "zendesk"], "requester_id": "1159307768", "created_at": "2015-07-25T02:21:13Z",
         "url": "https://testing23.zendesk.com/agent/tickets/1"},
    ],
    "zendesk/api_ticket_audit.json": [
        {**ZD, "external_id": "7", "title": "OMG I MADE A TICKET", "status": "open", "channel": "api"},
    ],
    "zendesk/api_ticket_create_response.json": [
        {**ZD, "external_id": "4014", "status": "new", "channel": "api", "created_at": "2023-09-18T23:25:58Z"},
    ],
    "zendesk/api_ticket_metric.json": [],
    "zendesk/event.ticket.attachment_linked_to_comment.json": [
        {**ZD, "external_id": "19395", "body": "Hi There", "status": "new", "channel": "mail", "tags": []},
    ],
    "zendesk/event.ticket.created.json": [
        {**ZD, "external_id": "5158", "title": "ticketinfo_2294a6e9ece2", "status": "open", "priority": "low",
         "tags": ["ticket-info-test-tag"], "channel": "web_service", "created_at": "2025-01-08T10:12:07Z",
         "updated_at": "2025-01-08T10:12:07Z", "requester_id": "8447388090494"},
    ],
    "zendesk/event.user.group_membership_created.json": [],
    "zendesk/trigger.custom_body.ticket_update.json": [],
}  # fmt: skip

# No saved fixture for these two vendors: the connectors' constructed bodies.
CONSTRUCTED: dict[str, tuple[bytes, list[dict[str, Any]]]] = {
    "helpscout (constructed)": (
        json.dumps(HELPSCOUT_CONVERSATION, indent=2).encode(),
        [{"external_id": "10", "title": "Refund for order 1234", "status": "closed", "tags": ["refund", "vip"]}],
    ),
    "generic (constructed)": (
        json.dumps(GENERIC_UPSERT, indent=2).encode(),
        [{"external_id": "T-1", "title": "Export to CSV", "status": "open", "tags": ["reports"]}],
    ),
}


def test_every_shared_fixture_has_an_expectation() -> None:
    on_disk = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*.json"))
    assert sorted(EXPECTED) == on_disk == fixture_names()


CASES = [(name, vendor_of(name), (FIXTURES / name).read_bytes(), EXPECTED[name]) for name in sorted(EXPECTED)] + [
    (name, name.split(" ")[0], body, expected) for name, (body, expected) in CONSTRUCTED.items()
]


@pytest.mark.parametrize(("name", "vendor", "body", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_fixture_delivery_becomes_the_expected_items(
    hooks: httpx.AsyncClient,
    db: asyncpg.Connection,
    name: str,
    vendor: str,
    body: bytes,
    expected: list[dict[str, Any]],
) -> None:
    secret, _ = secrets_for(vendor)
    connection = await new_connection(hooks, vendor, secret)
    resp = await post(hooks, connection["connection_id"], body, signed(vendor, body, secret, FIXTURE_HEADERS.get(name)))
    assert resp.status_code == 202, resp.text
    assert resp.json()["duplicate"] is False

    await process_pending(db)
    delivery = await db.fetchrow("SELECT status, error, body, event_type FROM delivery")
    assert bytes(delivery["body"]) == body
    assert delivery["status"] == ("processed" if expected else "ignored"), delivery["error"]

    got = await items_of(hooks, vendor)
    assert [i["external_id"] for i in got] == [e["external_id"] for e in expected]
    for item, want in zip(got, expected, strict=True):
        assert item["source"] == vendor
        wrong = {k: (item[k], v) for k, v in want.items() if not same(item[k], v, k)}
        assert wrong == {}, f"{name}: (got, expected) {wrong}"


@pytest.mark.slow
async def test_delivery_is_processed_by_a_real_worker(
    hooks: httpx.AsyncClient, db: asyncpg.Connection, worker: Any
) -> None:
    body = (FIXTURES / "zendesk/event.ticket.created.json").read_bytes()
    secret, _ = secrets_for("zendesk")
    connection = await new_connection(hooks, "zendesk", secret)
    resp = await post(hooks, connection["connection_id"], body, signed("zendesk", body, secret))
    assert resp.status_code == 202, resp.text

    async def processed() -> Any:
        return await db.fetchval("SELECT status FROM delivery WHERE status <> 'pending'")

    assert await wait_for(processed, timeout=240) == "processed"
    [item] = await items_of(hooks, "zendesk")
    assert (item["external_id"], item["status"]) == ("5158", "open")


# --- authentication (W1-W3) -------------------------------------------------------------------

ZENDESK_BODY = (FIXTURES / "zendesk/event.ticket.created.json").read_bytes()


def sample_body(vendor: str) -> bytes:
    if vendor == "helpscout":
        return CONSTRUCTED["helpscout (constructed)"][0]
    if vendor == "generic":
        return CONSTRUCTED["generic (constructed)"][0]
    names = [n for n in sorted(EXPECTED) if vendor_of(n) == vendor]
    return (FIXTURES / next((n for n in names if EXPECTED[n]), names[0])).read_bytes()


def distinct_body(vendor: str, n: int) -> bytes:
    """The vendor's sample made a new delivery (a new dedupe key) by a changed id or field."""
    value = json.loads(sample_body(vendor))
    value["id" if vendor == "zendesk" else "n"] = f"delivery-{n}"
    return json.dumps(value).encode()


def flip_one_byte(body: bytes) -> bytes:
    flipped = bytearray(body)
    flipped[len(flipped) // 2] ^= 0x01
    return bytes(flipped)


def reserialise(body: bytes) -> bytes:
    return json.dumps(json.loads(body)).encode()


async def assert_refused(
    client: httpx.AsyncClient, db: asyncpg.Connection, cid: str, body: bytes, headers: dict[str, str]
) -> None:
    resp = await post(client, cid, body, headers)
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == "unauthorized"
    assert await db.fetchval("SELECT count(*) FROM delivery") == 0


@pytest.mark.parametrize("vendor", sorted(BODY_SIGNED))
async def test_tampered_or_unsigned_deliveries_are_refused_and_not_stored(
    hooks: httpx.AsyncClient, db: asyncpg.Connection, vendor: str
) -> None:
    secret, other = secrets_for(vendor)
    cid = (await new_connection(hooks, vendor, secret))["connection_id"]
    body = sample_body(vendor)
    headers = signed(vendor, body, secret)
    await assert_refused(hooks, db, cid, flip_one_byte(body), headers)
    await assert_refused(hooks, db, cid, reserialise(body), headers)
    missing = {k: v for k, v in headers.items() if k != SIGNATURE_HEADER[vendor]}
    await assert_refused(hooks, db, cid, body, missing)
    await assert_refused(hooks, db, cid, body, signed(vendor, body, other))
    assert (await post(hooks, cid, body, headers)).status_code == 202


@pytest.mark.parametrize("vendor", ["zendesk", "generic", "chatwoot"])
async def test_signatures_outside_the_300_s_window_are_refused(
    hooks: httpx.AsyncClient, db: asyncpg.Connection, vendor: str
) -> None:
    secret, _ = secrets_for(vendor)
    cid = (await new_connection(hooks, vendor, secret))["connection_id"]
    body = sample_body(vendor)
    now = time.time()
    await assert_refused(hooks, db, cid, body, signed(vendor, body, secret, at=now - 310))
    await assert_refused(hooks, db, cid, body, signed(vendor, body, secret, at=now + 310))
    assert (await post(hooks, cid, body, signed(vendor, body, secret, at=now - 240))).status_code == 202


async def test_freshdesk_shared_secret_header_is_checked(hooks: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    secret, other = secrets_for("freshdesk")
    cid = (await new_connection(hooks, "freshdesk", secret))["connection_id"]
    body = sample_body("freshdesk")
    await assert_refused(hooks, db, cid, body, {"X-Webhook-Secret": other})
    await assert_refused(hooks, db, cid, body, {})
    assert (await post(hooks, cid, body, {"X-Webhook-Secret": secret})).status_code == 202


@pytest.mark.parametrize("vendor", ["zendesk", "github", "generic"])
async def test_rotated_secret_is_accepted_and_a_revoked_one_refused_at_once(
    hooks: httpx.AsyncClient, db: asyncpg.Connection, vendor: str
) -> None:
    old, new = secrets_for(vendor)
    created = await new_connection(hooks, vendor, old)
    cid = created["connection_id"]
    rotated = await hooks.post(f"/v1/connections/{cid}/secrets", json={"secret": new}, headers=auth())
    assert rotated.status_code == 201, rotated.text

    def body(n: int) -> bytes:
        return distinct_body(vendor, n)

    assert (await post(hooks, cid, body(1), signed(vendor, body(1), old, msg_id="m1"))).status_code == 202
    assert (await post(hooks, cid, body(2), signed(vendor, body(2), new, msg_id="m2"))).status_code == 202
    revoked = await hooks.delete(f"/v1/connections/{cid}/secrets/{created['secret_id']}", headers=auth())
    assert revoked.status_code == 204
    refused = await post(hooks, cid, body(3), signed(vendor, body(3), old, msg_id="m3"))
    assert refused.status_code == 401
    assert (await post(hooks, cid, body(4), signed(vendor, body(4), new, msg_id="m4"))).status_code == 202
    assert await db.fetchval("SELECT count(*) FROM delivery") == 3


async def test_unknown_connection_is_404(hooks: httpx.AsyncClient) -> None:
    for cid in (str(uuid.uuid4()), "not-a-uuid"):
        resp = await post(hooks, cid, ZENDESK_BODY, signed("zendesk", ZENDESK_BODY, "whatever-secret-0123456789"))
        assert resp.status_code == 404
        assert resp.json()["error"] == "not_found"


# --- storage: duplicates, headers, raw bytes, bad bodies (W6, W9, W10, D6) ---------------------


async def test_same_delivery_twenty_times_concurrently_is_stored_and_applied_once(
    hooks: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    secret, _ = secrets_for("zendesk")
    cid = (await new_connection(hooks, "zendesk", secret))["connection_id"]
    # fresh timestamps on each attempt, the same event id: a sender's retries
    attempts = [signed("zendesk", ZENDESK_BODY, secret, at=time.time() - n) for n in range(20)]
    results = await asyncio.gather(*[post(hooks, cid, ZENDESK_BODY, h) for h in attempts])
    assert sorted(r.status_code for r in results) == [200] * 19 + [202]
    assert sum(r.json()["duplicate"] for r in results) == 19
    assert await db.fetchval("SELECT count(*) FROM delivery") == 1

    assert await process_pending(db) == {"processed": 1}
    before = await db.fetchrow("SELECT item_id, changed_at, payload_hash FROM item")
    assert await db.fetchval("SELECT count(*) FROM item") == 1

    # a second run of the same job, and a late duplicate, change nothing
    delivery_id = await db.fetchval("SELECT delivery_id FROM delivery")
    assert await handle_deliveries(db, [delivery_id]) == {}
    late = await post(hooks, cid, ZENDESK_BODY, signed("zendesk", ZENDESK_BODY, secret))
    assert late.status_code == 200 and late.json() == {"delivery_id": delivery_id, "duplicate": True}
    assert await db.fetchrow("SELECT item_id, changed_at, payload_hash FROM item") == before
    row = await db.fetchrow("SELECT status, attempts FROM delivery")
    assert (row["status"], row["attempts"]) == ("processed", 1)


def zendesk_status_event(n: int, at: str, previous: str, current: str) -> bytes:
    envelope = json.loads(ZENDESK_BODY)
    envelope["id"] = f"event-{n}"
    envelope["type"] = "zen:event-type:ticket.status_changed"
    envelope["time"] = at
    envelope["detail"].update({"status": current, "updated_at": at})
    envelope["event"] = {"previous": previous, "current": current}
    return json.dumps(envelope).encode()


async def test_reopen_sequence_delivered_in_reverse_ends_in_the_right_state(
    hooks: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    secret, _ = secrets_for("zendesk")
    cid = (await new_connection(hooks, "zendesk", secret))["connection_id"]
    steps = [
        ("2026-11-02T10:00:00Z", "OPEN", "SOLVED"),
        ("2026-11-03T10:00:00Z", "SOLVED", "OPEN"),
        ("2026-11-04T10:00:00Z", "OPEN", "SOLVED"),
        ("2026-11-05T10:00:00Z", "SOLVED", "OPEN"),
        ("2026-11-06T10:00:00Z", "OPEN", "SOLVED"),
    ]
    for n, (at, previous, current) in reversed(list(enumerate(steps))):
        body = zendesk_status_event(n, at, previous, current)
        assert (await post(hooks, cid, body, signed("zendesk", body, secret))).status_code == 202
        await process_pending(db)  # one at a time, so the arrival order really is reversed
    [item] = await items_of(hooks, "zendesk")
    assert item["status"] == "solved"
    assert item["reopen_count"] == 2
    assert same(item["first_solved_at"], "2026-11-02T10:00:00Z", "first_solved_at")
    assert same(item["last_solved_at"], "2026-11-06T10:00:00Z", "last_solved_at")
    assert same(item["updated_at"], "2026-11-06T10:00:00Z", "updated_at")


async def test_a_later_delivery_without_text_keeps_the_stored_text(
    hooks: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    # Zammad sends the whole ticket on every trigger, with the article that fired it. Only the first
    # article is the ticket's text; a later one (an agent's reply closing it) carries none of its own.
    secret, _ = secrets_for("zammad")
    cid = (await new_connection(hooks, "zammad", secret))["connection_id"]
    first = json.loads((FIXTURES / "zammad" / "ticket_trigger.default_payload.json").read_bytes())
    body = json.dumps(first).encode()
    assert (await post(hooks, cid, body, signed("zammad", body, secret))).status_code == 202
    await process_pending(db)
    [opened] = await items_of(hooks, "zammad")
    assert opened["body"] != opened["title"]

    later = copy.deepcopy(first)
    first_id = later["article"]["id"]
    later["ticket"].update(
        {"article_ids": [first_id, first_id + 1], "article_count": 2, "state": "closed",
         "updated_at": "2030-01-01T00:00:00Z"}
    )  # fmt: skip
    later["article"].update({"id": first_id + 1, "body": "Closing this, thanks!", "sender": "Agent"})
    body = json.dumps(later).encode()
    assert (await post(hooks, cid, body, signed("zammad", body, secret))).status_code == 202
    assert await process_pending(db) == {"processed": 1}
    [closed] = await items_of(hooks, "zammad")
    assert closed["body"] == opened["body"] and closed["status"] == "closed"


async def test_only_vendor_headers_are_stored_never_credentials(
    hooks: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    secret, _ = secrets_for("freshdesk")
    cid = (await new_connection(hooks, "freshdesk", secret))["connection_id"]
    body = sample_body("freshdesk")
    headers = {"X-Webhook-Secret": secret, "Authorization": f"Bearer {secret}", "X-Custom-Auth": secret,
               "Cookie": "session=1", "User-Agent": "Freshdesk", "Content-Type": "application/json"}  # fmt: skip
    assert (await post(hooks, cid, body, headers)).status_code == 202
    stored = json.loads(await db.fetchval("SELECT headers FROM delivery"))
    assert stored == {"user-agent": "Freshdesk", "content-type": "application/json"}
    assert secret not in json.dumps(stored)


def test_stored_headers_cover_every_header_the_connectors_read() -> None:
    import re

    source = "".join(p.read_text() for p in (Path(__file__).resolve().parents[2] / "connectors").glob("*.py"))
    read = set(re.findall(r'headers\.get\("([a-z0-9-]+)"', source))
    credentials = {"authorization", "x-webhook-secret"}
    signature_headers = {h for h in read if "signature" in h} | {"x-chatwoot-timestamp"}
    assert read - credentials - signature_headers <= STORED_HEADERS
    assert not STORED_HEADERS & (credentials | signature_headers | {h.lower() for h in SIGNATURE_HEADER.values()})


async def test_raw_bytes_survive_byte_for_byte(hooks: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    secret, _ = secrets_for("generic")
    cid = (await new_connection(hooks, "generic", secret))["connection_id"]
    item = {**GENERIC_UPSERT["data"], "body": "log line\u0000 with a NUL, \ud800 a lone surrogate, and é"}
    # NUL and the lone surrogate as JSON escapes, the é as raw UTF-8
    valid = json.dumps({"type": "item.upserted", "data": item}).replace("\\u00e9", "é").encode()
    not_utf8 = b'{"type": "item.upserted", "data": "\xff\xfe\x00"}'
    for n, (body, status) in enumerate(((valid, 202), (not_utf8, 400))):
        resp = await post(hooks, cid, body, signed("generic", body, secret, msg_id=f"raw-{n}"))
        assert resp.status_code == status, resp.text
    stored = [bytes(r["body"]) for r in await db.fetch("SELECT body FROM delivery ORDER BY delivery_id")]
    assert stored == [valid, not_utf8]
    await process_pending(db)
    [got] = await items_of(hooks, "generic")
    assert "\x00" not in got["body"] and got["body"].startswith("log line with a NUL")


async def test_authenticated_non_json_body_is_refused_but_kept_as_failed(
    hooks: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    secret, _ = secrets_for("discourse")
    cid = (await new_connection(hooks, "discourse", secret))["connection_id"]
    form = b"payload=%7B%22post%22%3A+%7B%7D%7D"
    headers = signed("discourse", form, secret, {"Content-Type": "application/x-www-form-urlencoded"})
    resp = await post(hooks, cid, form, headers)
    assert resp.status_code == 415 and resp.json()["error"] == "unsupported_media_type"
    garbage = b'{"post": {"id": 1,'
    resp = await post(hooks, cid, garbage, signed("discourse", garbage, secret))
    assert resp.status_code == 400 and resp.json()["error"] == "bad_request"
    rows = await db.fetch("SELECT status, error, body, enqueued_at FROM delivery ORDER BY delivery_id")
    assert [(r["status"], bytes(r["body"])) for r in rows] == [("failed", form), ("failed", garbage)]
    assert all(r["error"] and r["enqueued_at"] is None for r in rows)
    # a retry of the same bad body is absorbed by the dedupe key and gets the same answer
    assert (await post(hooks, cid, garbage, signed("discourse", garbage, secret))).status_code == 400
    assert await db.fetchval("SELECT count(*) FROM delivery") == 2


async def test_body_over_the_webhook_limit_is_413(hook_settings: Settings, db: asyncpg.Connection) -> None:
    await truncate_webhook_tables(db)
    async with running_app(hook_settings.model_copy(update={"max_webhook_bytes": 2048})) as (client, _):
        cid = (await new_connection(client, "github", "a-github-secret-0123456789"))["connection_id"]
        body = json.dumps({"action": "created", "pad": "x" * 4096}).encode()
        resp = await post(client, cid, body, signed("github", body, "a-github-secret-0123456789"))
        assert resp.status_code == 413
        assert resp.json()["error"] == "payload_too_large"
    assert await db.fetchval("SELECT count(*) FROM delivery") == 0


async def test_pool_exhausted_is_503_with_retry_after(hook_settings: Settings, db: asyncpg.Connection) -> None:
    await truncate_webhook_tables(db)
    tight = hook_settings.model_copy(update={"db_pool_min": 1, "db_pool_max": 1, "db_acquire_timeout_s": 0.3})
    async with running_app(tight) as (client, state):
        secret = "a-github-secret-0123456789"
        cid = (await new_connection(client, "github", secret))["connection_id"]
        body = sample_body("github")
        async with state["pool"].acquire():  # the only connection is busy
            started = time.monotonic()
            resp = await post(client, cid, body, signed("github", body, secret))
        assert resp.status_code == 503, resp.text
        assert resp.headers["retry-after"] and int(resp.headers["retry-after"]) <= 30
        assert resp.json()["error"] == "service_unavailable"
        assert time.monotonic() - started < 5
        assert (await post(client, cid, body, signed("github", body, secret))).status_code == 202


async def test_unreadable_secrets_after_a_server_key_change_are_503(
    hook_settings: Settings, db: asyncpg.Connection
) -> None:
    await truncate_webhook_tables(db)
    secret = "a-github-secret-0123456789"
    async with running_app(hook_settings) as (client, _):
        cid = (await new_connection(client, "github", secret))["connection_id"]
    changed = hook_settings.model_copy(update={"secret_key": SecretStr("another-server-key-0123456789abcdefghijkl")})
    async with running_app(changed) as (client, _):
        body = sample_body("github")
        resp = await post(client, cid, body, signed("github", body, secret))
        assert resp.status_code == 503 and "SECRET_KEY" in resp.json()["detail"]
    assert await db.fetchval("SELECT count(*) FROM delivery") == 0


# --- the job's outcomes -----------------------------------------------------------------------


async def test_job_records_every_outcome(hooks: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    secret, _ = secrets_for("generic")
    cid = (await new_connection(hooks, "generic", secret))["connection_id"]
    bodies = {
        "ok": {"type": "item.upserted", "data": GENERIC_UPSERT["data"]},
        "ignored": {"type": "something.else", "data": {}},
        "malformed": {"no": "type"},
        "invalid": {"type": "item.upserted", "data": {"external_id": "x", "kind": "ticket", "body": " "}},
        "delete": {"type": "item.deleted", "data": {"external_id": "T-1"}},
    }
    for n, (name, payload) in enumerate(bodies.items()):
        raw = json.dumps(payload).encode()
        assert (await post(hooks, cid, raw, signed("generic", raw, secret, msg_id=name))).status_code == 202
        await process_pending(db)
        row = await db.fetchrow(
            "SELECT status, error, attempts, processed_at FROM delivery WHERE delivery_id = $1", n + 1
        )
        assert row["attempts"] == 1 and row["processed_at"] is not None
        want = {"ok": "processed", "ignored": "ignored", "malformed": "failed", "invalid": "failed"}.get(
            name, "processed"
        )
        assert row["status"] == want, (name, row["error"])
        assert (row["error"] is not None) == (want == "failed")
    assert await items_of(hooks, "generic") == []  # upserted, then deleted by the last delivery
    assert await db.fetchval("SELECT deleted_at IS NOT NULL FROM item WHERE external_id = 'T-1'")


# --- fuzz (S4): validly signed arbitrary JSON never yields a 5xx or an unrecorded failure -------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**30, max_value=10**300)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["\u0000", "\ud800", "2026-11-02T10:00:00Z", "", "OPEN", "solved", "1e999", "-1"])
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)


def template_for(vendor: str) -> Any:
    return json.loads(sample_body(vendor))


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += paths(v, (*prefix, i))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    out = copy.copy(value)
    out[path[0]] = replaced(value[path[0]], path[1:], new)
    return out


@st.composite
def vendor_bodies(draw: st.DrawFn, vendor: str) -> bytes:
    """Arbitrary JSON, a deeply nested value, or the vendor's own shape with leaves swapped for junk."""
    kind = draw(st.sampled_from(["arbitrary", "deep", "mutated", "mutated"]))
    if kind == "deep":
        depth = draw(st.sampled_from([50, 500, 5000, 100_000]))
        return ("[" * depth + "]" * depth).encode()
    if kind == "arbitrary":
        value = draw(json_values)
    else:
        value = template_for(vendor)
        candidates = paths(value)
        for _ in range(draw(st.integers(1, 6))):
            path = draw(st.sampled_from(candidates))
            value = replaced(value, path, draw(json_values))
            candidates = paths(value)
    return json.dumps(value).encode()


class LoopThread:
    """An event loop in a thread, so sync Hypothesis tests can drive the async app example by example."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T]) -> T:
        async def wrapper() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout=120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@pytest.fixture
def fuzz_app(hook_settings: Settings) -> Iterator[tuple[LoopThread, httpx.AsyncClient, asyncpg.Connection]]:
    runner = LoopThread()
    stack = AsyncExitStack()

    async def start() -> tuple[httpx.AsyncClient, asyncpg.Connection]:
        conn = await asyncpg.connect(hook_settings.database_url)
        await conn.execute("TRUNCATE item, status_event RESTART IDENTITY CASCADE")
        await truncate_webhook_tables(conn)
        client, _ = await stack.enter_async_context(running_app(hook_settings))
        return client, conn

    client, conn = runner.run(start())
    try:
        yield runner, client, conn
    finally:

        async def stop() -> None:
            await conn.close()
            await stack.aclose()

        runner.run(stop())
        runner.close()


FuzzApp = tuple[LoopThread, httpx.AsyncClient, asyncpg.Connection]


@pytest.mark.parametrize("vendor", ALL_VENDORS)
def test_fuzzed_signed_bodies_never_5xx_and_always_end_recorded(fuzz_app: FuzzApp, vendor: str) -> None:
    runner, client, conn = fuzz_app
    secret, _ = secrets_for(vendor)
    cid = runner.run(new_connection(client, vendor, secret))["connection_id"]
    outcomes: dict[str, int] = {}

    @hsettings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=vendor_bodies(vendor))
    def check(body: bytes) -> None:
        # Forget earlier examples: mutated bodies often keep the template's dedupe key, and a
        # duplicate would skip the processing this test is about.
        runner.run(conn.execute("DELETE FROM delivery"))
        resp = runner.run(post(client, cid, body, signed(vendor, body, secret)))
        assert resp.status_code in (202, 400), (resp.status_code, resp.text, body[:300])
        status = runner.run(_process_and_check(conn))
        outcomes[status] = outcomes.get(status, 0) + 1

    check()
    assert set(outcomes) <= {"processed", "ignored", "failed"}, outcomes


async def _process_and_check(conn: asyncpg.Connection) -> str:
    """Run the job; the one delivery must end processed, ignored, or failed with a reason."""
    await process_pending(conn)
    row = await conn.fetchrow("SELECT status, error FROM delivery")
    assert row["status"] != "pending"
    assert row["status"] != "failed" or row["error"], row
    status: str = row["status"]
    return status
