"""Alert destinations, rules and incidents through the public API; outbound calls go to real
receivers on 127.0.0.1 (HTTP, and SMTP with aiosmtpd)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from standardwebhooks import Webhook

from schemas.settings import Settings
from tests.conftest import auth, running_app
from tests.outbound.loopback import LoopbackNet, Mailbox, Receiver, smtp_server


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
async def client(
    migrated: Settings, db: asyncpg.Connection, smtp: tuple[Mailbox, int]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = migrated.model_copy(
        update={
            "outbound_allowed_hosts": ["127.0.0.1"],
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp[1],
            "smtp_starttls": False,
        }
    )
    async with running_app(settings) as (c, _):
        yield c


ADMIN = auth()


async def test_slack_destination_is_listed_without_its_url_path_and_its_test_message_arrives(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    r = await client.post(
        "/v1/alerts/destinations",
        json={"kind": "slack", "name": "support", "url": receiver.url("/services/T0/B0/secret")},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"] is None and created["url"] == f"http://127.0.0.1:{receiver.port}/…"
    listed = (await client.get("/v1/alerts/destinations", headers=ADMIN)).json()["data"]
    assert [d["name"] for d in listed] == ["support"] and "secret" not in listed[0]
    result = await client.post(f"/v1/alerts/destinations/{created['destination_id']}/test", headers=ADMIN)
    assert result.json() == {
        "destination_id": created["destination_id"],
        "status": "sent",
        "http_status": 200,
        "error": None,
    }
    [got] = receiver.received
    assert got.path == "/services/T0/B0/secret"
    assert got.json()["blocks"][0]["text"]["text"].startswith("[Test] Spike")


async def test_webhook_destination_secret_is_shown_once_and_signs_the_test_message(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    r = await client.post(
        "/v1/alerts/destinations", json={"kind": "webhook", "name": "ops", "url": receiver.url()}, headers=ADMIN
    )
    secret = r.json()["secret"]
    assert secret.startswith("whsec_")
    assert secret not in (await client.get("/v1/alerts/destinations", headers=ADMIN)).text
    result = await client.post(f"/v1/alerts/destinations/{r.json()['destination_id']}/test", headers=ADMIN)
    assert result.json()["status"] == "sent"
    [got] = receiver.received
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "incident.test"
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 44).verify(got.body, got.headers)


async def test_email_destination_test_message_reaches_the_smtp_server(
    client: httpx.AsyncClient, smtp: tuple[Mailbox, int]
) -> None:
    r = await client.post(
        "/v1/alerts/destinations",
        json={"kind": "email", "name": "leads", "to": ["lead@example.com", "ops@example.com"]},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    result = await client.post(f"/v1/alerts/destinations/{r.json()['destination_id']}/test", headers=ADMIN)
    assert result.json()["status"] == "sent"
    [message] = smtp[0].messages
    assert message["To"] == "lead@example.com, ops@example.com"
    assert message["Subject"].startswith("[Test] Spike")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "only https"),
        ("https://169.254.169.254/latest", "cloud metadata"),
        ("https://10.0.0.1/hook", "private"),
        ("https://[::ffff:192.168.0.1]/", "IPv4-mapped form of a private"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("not a url", "only https"),
        ("https://hooks.example.com:70000/", "malformed"),
    ],
)
async def test_refused_or_malformed_urls_are_422_with_the_reason(
    client: httpx.AsyncClient, url: str, reason: str
) -> None:
    r = await client.post("/v1/alerts/destinations", json={"kind": "teams", "name": "t", "url": url}, headers=ADMIN)
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "validation_error"
    assert body["detail"][0]["loc"] == ["body", "url"] and reason in body["detail"][0]["msg"]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "email", "name": "x", "url": "https://hooks.example.com/"},
        {"kind": "slack", "name": "x", "to": ["a@example.com"]},
        {"kind": "email", "name": "x", "to": ["not-an-address"]},
        {"kind": "pager", "name": "x", "url": "https://hooks.example.com/"},
    ],
)
async def test_destination_target_must_fit_its_kind(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    r = await client.post("/v1/alerts/destinations", json=body, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"] == "validation_error"


async def test_a_name_that_resolves_privately_is_refused_at_creation_and_at_send_without_a_socket(
    client: httpx.AsyncClient, net: LoopbackNet
) -> None:
    net.answer("intranet.example.com", ["10.1.1.1"])
    r = await client.post(
        "/v1/alerts/destinations",
        json={"kind": "slack", "name": "s", "url": "https://intranet.example.com/x"},
        headers=ADMIN,
    )
    assert r.status_code == 422 and "resolves to 10.1.1.1, a private address" in r.json()["detail"][0]["msg"]
    # a name that did not resolve at creation (or resolved publicly, then rebound) is checked at send
    r = await client.post(
        "/v1/alerts/destinations",
        json={"kind": "slack", "name": "s", "url": "https://hooks.example.com/services/x"},
        headers=ADMIN,
    )
    assert r.status_code == 201
    net.answer("hooks.example.com", ["10.0.0.7"])
    result = await client.post(f"/v1/alerts/destinations/{r.json()['destination_id']}/test", headers=ADMIN)
    assert result.json()["status"] == "failed"
    assert "10.0.0.7, a private address" in result.json()["error"]
    assert net.opened == [] and net.refused == []


async def test_test_message_to_an_unreachable_destination_fails(client: httpx.AsyncClient) -> None:
    closed = Receiver().start()
    url = closed.url()
    closed.stop()
    r = await client.post("/v1/alerts/destinations", json={"kind": "slack", "name": "s", "url": url}, headers=ADMIN)
    result = (await client.post(f"/v1/alerts/destinations/{r.json()['destination_id']}/test", headers=ADMIN)).json()
    assert result["status"] == "failed" and result["http_status"] is None and "connect" in result["error"]


async def _theme(db: asyncpg.Connection, label: str = "refunds") -> int:
    theme_id: int = await db.fetchval("INSERT INTO theme (label) VALUES ($1) RETURNING theme_id", label)
    return theme_id


async def test_rules_are_created_listed_and_deleted(
    client: httpx.AsyncClient, db: asyncpg.Connection, receiver: Receiver
) -> None:
    theme_id = await _theme(db)
    dest = (
        await client.post(
            "/v1/alerts/destinations", json={"kind": "slack", "name": "s", "url": receiver.url()}, headers=ADMIN
        )
    ).json()["destination_id"]
    rule = {
        "name": "refund spikes",
        "on": ["spike", "emerging"],
        "level": "leaf",
        "theme_ids": [theme_id],
        "min_volume": 10,
        "destination_ids": [dest],
        "quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Europe/Berlin"},
    }
    r = await client.post("/v1/alerts/rules", json=rule, headers=ADMIN)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["on"] == ["spike", "emerging"] and created["quiet_hours"]["tz"] == "Europe/Berlin"
    assert [x["rule_id"] for x in (await client.get("/v1/alerts/rules", headers=ADMIN)).json()["data"]] == [
        created["rule_id"]
    ]
    assert (await client.delete(f"/v1/alerts/rules/{created['rule_id']}", headers=ADMIN)).status_code == 204
    assert (await client.delete(f"/v1/alerts/rules/{created['rule_id']}", headers=ADMIN)).status_code == 404
    assert (await client.get("/v1/alerts/rules", headers=ADMIN)).json()["data"] == []


@pytest.mark.parametrize(
    ("change", "field", "needle"),
    [
        ({"destination_ids": [999]}, "destination_ids", "unknown destination ids: [999]"),
        ({"theme_ids": [888]}, "theme_ids", "unknown theme ids: [888]"),
        ({"on": ["tsunami"]}, "on", ""),
        ({"on": []}, "on", ""),
        ({"quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Mars/Olympus"}}, "quiet_hours", "time zone"),
    ],
)
async def test_bad_rules_are_422(
    client: httpx.AsyncClient, db: asyncpg.Connection, change: dict[str, Any], field: str, needle: str
) -> None:
    theme_id = await _theme(db)
    dest = (
        await client.post(
            "/v1/alerts/destinations", json={"kind": "email", "name": "e", "to": "a@example.com"}, headers=ADMIN
        )
    ).json()["destination_id"]
    rule = {"name": "r", "on": ["spike"], "theme_ids": [theme_id], "destination_ids": [dest], **change}
    r = await client.post("/v1/alerts/rules", json=rule, headers=ADMIN)
    assert r.status_code == 422
    assert any(field in p["loc"] and needle in p["msg"] for p in r.json()["detail"])
    assert (await client.get("/v1/alerts/rules", headers=ADMIN)).json()["data"] == []


async def test_incidents_are_listed_and_curated(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    theme_id = await _theme(db)
    incident_id = await db.fetchval(
        "INSERT INTO incident (dedupe_key, kind, theme_id, level, granularity, window_start, window_end,"
        " observed, expected, score, segments, example_item_ids)"
        " VALUES ('k', 'spike', $1, 'leaf', 'day', now() - interval '7 days', now(), 40, 12.5, 6.2,"
        ' \'[{"field": "channel", "value": "chat", "count": 20, "share": 0.5, "baseline_share": 0.1,'
        " \"lift\": 5.0}]', '{1,2,3}') RETURNING incident_id",
        theme_id,
    )
    page = (await client.get("/v1/incidents", headers=ADMIN)).json()
    [incident] = page["data"]
    assert (incident["incident_id"], incident["theme_label"], incident["status"]) == (incident_id, "refunds", "open")
    assert incident["segments"][0]["lift"] == 5.0 and incident["deliveries"] == []
    r = await client.patch(f"/v1/incidents/{incident_id}", json={"status": "acknowledged"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert (await client.get("/v1/incidents?status=open", headers=ADMIN)).json()["data"] == []
    bad = await client.patch(f"/v1/incidents/{incident_id}", json={"status": "closed"}, headers=ADMIN)
    assert bad.status_code == 422
    missing = await client.patch("/v1/incidents/999", json={"status": "resolved"}, headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_patching_an_incident_needs_the_curate_scope(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    key = (await client.post("/v1/keys", json={"name": "reader", "scopes": ["read"]}, headers=ADMIN)).json()["key"]
    assert (await client.get("/v1/incidents", headers=auth(key))).status_code == 200
    r = await client.patch("/v1/incidents/1", json={"status": "resolved"}, headers=auth(key))
    assert r.status_code == 403
    assert (await client.get("/v1/alerts/rules", headers=auth(key))).status_code == 403
