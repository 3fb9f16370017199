"""Vendor satisfaction ratings mapped onto CSAT 1..5 (connectors/ratings.py, docs/webhooks.md).

Bodies are the shared fixtures with the rating fields of each vendor's documentation filled in
(each says what was set), and Help Scout's documented Rating object unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest

from connectors import parse, ratings
from db.queries.deliveries import PendingDelivery
from db.queries.items import update_items_csat
from schemas.items import ItemCreate
from tests.connectors.connector_cases import FIXTURES
from workers.deliveries import map_delivery

HERE = Path(__file__).parent / "fixtures"


def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    return loaded


def _items(vendor: str, payload: Any, headers: dict[str, str] | None = None) -> list[ItemCreate]:
    parsed = parse(vendor, headers or {}, json.dumps(payload).encode())
    return [ItemCreate.model_validate(item) for item in parsed.items]


@pytest.mark.parametrize(("score", "csat"), [("good", 5), ("bad", 1), ("offered", None), ("unoffered", None)])
def test_zendesk_satisfaction_rating_score(score: str, csat: int | None) -> None:
    # Zendesk Ticket API: satisfaction_rating {"score": good|bad|offered|unoffered, "comment", "id"}.
    ticket = _fixture("zendesk/api_ticket.json")
    ticket["satisfaction_rating"] = {"score": score, "comment": "", "id": 1}
    [item] = _items("zendesk", ticket)
    assert item.csat == csat


def test_zendesk_ticket_metrics_give_agent_replies_and_assignee_changes() -> None:
    # The ticket with `ticket_metric` beside it: replies 322, assignee_stations 1, reopens 55.
    body = {"ticket": _fixture("zendesk/api_ticket.json"), "ticket_metric": _fixture("zendesk/api_ticket_metric.json")}
    [item] = _items("zendesk", body)
    assert (item.agent_replies, item.assignee_changes, item.reopens) == (322, 0, 55)


@pytest.mark.parametrize(("rating", "csat"), [(5, 5), (1, 1), (3, 3), (None, None)])
def test_intercom_conversation_rating(rating: int | None, csat: int | None) -> None:
    # Intercom Conversation Rating model: {"rating": 1..5, "remark", "created_at", "customer", "teammate"}.
    body = _fixture("intercom/conversation.admin.snoozed.2020.json")
    body["data"]["item"]["conversation_rating"] = {"rating": rating, "remark": None, "created_at": 1596645926}
    [item] = _items("intercom", body)
    assert item.csat == csat


def test_helpscout_rating_webhook_is_a_rating_of_the_conversation() -> None:
    body = json.loads((HERE / "helpscout.satisfaction_rating.doc_sample.json").read_bytes())
    parsed = parse("helpscout", {"x-helpscout-event": "satisfaction.ratings"}, json.dumps(body).encode())
    assert (parsed.items, parsed.ratings) == ([], [("helpscout", "1560011", 5)])
    body["rating"] = "Okay"
    assert parse("helpscout", {"x-helpscout-event": "satisfaction.ratings"}, json.dumps(body).encode()).ratings == [
        ("helpscout", "1560011", 3)
    ]


def test_chatwoot_csat_survey_response() -> None:
    # The survey message (content_type input_csat) once answered:
    # content_attributes.submitted_values.csat_survey_response {"rating": 1..5, "feedback_message"}.
    body = json.loads((FIXTURES / "chatwoot/message_created.doc_sample.json").read_bytes())
    body.update(event="message_updated", content_type="input_csat", message_type="template")
    body["content_attributes"] = {"submitted_values": {"csat_survey_response": {"rating": 2, "feedback_message": ""}}}
    assert parse("chatwoot", {}, json.dumps(body).encode()).ratings == [("chatwoot", "1", 2)]
    body["content_attributes"] = {}  # offered, not answered yet
    assert parse("chatwoot", {}, json.dumps(body).encode()).ignored


def test_freshdesk_survey_result() -> None:
    # A satisfaction rating of Freshdesk's API: survey_id, ticket_id, ratings.default_question.
    body = {"id": 7, "survey_id": 1, "user_id": 3, "agent_id": 5, "feedback": "Thanks", "group_id": 2,
            "ticket_id": 20, "ratings": {"default_question": 103}}  # fmt: skip
    assert parse("freshdesk", {}, json.dumps(body).encode()).ratings == [("freshdesk", "20", 5)]


@pytest.mark.parametrize(
    ("mapper", "value", "csat"),
    [
        (ratings.good_bad, "good", 5), (ratings.good_bad, "bad", 1), (ratings.good_bad, "offered", None),
        (ratings.helpscout, "Great", 5), (ratings.helpscout, "Okay", 3), (ratings.helpscout, "Bad", 1),
        (ratings.helpscout, "meh", None), (ratings.one_to_five, 4, 4), (ratings.one_to_five, 6, None),
        (ratings.one_to_five, True, None), (ratings.freshdesk, 103, 5), (ratings.freshdesk, 100, 3),
        (ratings.freshdesk, -103, 1), (ratings.freshdesk, 101, 4), (ratings.freshdesk, -101, 2),
        (ratings.freshdesk, 7, None),
    ],
)  # fmt: skip
def test_scales_map_onto_one_to_five(mapper: Any, value: Any, csat: int | None) -> None:
    assert mapper(value) == csat


async def test_a_rating_delivery_sets_the_stored_ticket_csat(
    app_client: httpx.AsyncClient, db: asyncpg.Connection, admin: dict[str, str]
) -> None:
    ticket = {"source": "helpscout", "external_id": "1560011", "kind": "ticket", "body": "Where is my refund?",
              "created_at": "2015-04-10T10:00:00Z"}  # fmt: skip
    assert (await app_client.post("/v1/items", json=ticket, headers=admin)).status_code == 202
    body = (HERE / "helpscout.satisfaction_rating.doc_sample.json").read_bytes()
    delivery = PendingDelivery(
        delivery_id=1,
        connection_id=uuid4(),
        vendor="helpscout",
        headers={"x-helpscout-event": "satisfaction.ratings"},
        body=body,
        attempts=1,
        dedupe_key="helpscout:rating:1560011",
    )
    mapped = map_delivery(delivery)
    assert mapped.status == "processed" and mapped.ratings == [("helpscout", "1560011", 5)]
    assert await update_items_csat(db, ratings=mapped.ratings) == 1
    # A later version of the ticket without a rating keeps the stored one.
    assert (
        await app_client.post(
            "/v1/items", json={**ticket, "title": "Refund", "updated_at": "2015-04-15T00:00:00Z"}, headers=admin
        )
    ).status_code == 202
    stored = await db.fetchrow("SELECT csat, title FROM item WHERE external_id = '1560011'")
    assert (stored["csat"], stored["title"]) == (5, "Refund")
