"""Personal data (#17 finding 2): cards, IBANs and tokens never stored; e-mails and phones masked
for every key without `pii`, in JSON, CSV and the dashboard (spec/api.md, "Additions of 2026-12").

The card numbers are real test numbers that pass Luhn (Visa, Mastercard, Amex), the IBANs have
valid check digits, and the probe saw all of them served to a plain `read` key before.
"""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from clustering.redact import mask_at_rest, mask_contacts, mask_json_at_rest
from tests.api.test_items import make_key, ticket
from tests.conftest import auth
from tests.connectors.connector_cases import GENERIC_UPSERT, sign
from workers.deliveries import handle_deliveries

MIGRATION = Path(__file__).resolve().parents[2] / "db" / "migrations" / "0010_time_bounds_pii_at_rest.sql"

CARDS = ("4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005", "4012888888881881")
IBANS = ("DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR14 2004 1010 0505 0001 3M02 606")
TOKENS = (
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "ghp_1234567890abcdefghijABCDEFGHIJ123456",
    "AKIAIOSFODNN7EXAMPLE",
    "tk_" + "Q" * 43,
)
EMAIL = "jane.doe+billing@example.com"
PHONES = ("+44 20 7946 0958", "(415) 555-0132")
# What must survive: order ids, amounts, dates, a 16-digit number failing Luhn, an IPv4 address.
KEPT = ("#12345", "$25.00", "2026-11-02", "4111 1111 1111 1112", "10.0.0.1")

BODY = (
    f"Charged twice on card {CARDS[0]} and {CARDS[1]} (amex {CARDS[2]}). Refund to {IBANS[0]} or {IBANS[1]}"
    f" / {IBANS[2]}. My key {TOKENS[0]}, github {TOKENS[1]}, aws {TOKENS[2]}, yours {TOKENS[3]},"
    f" password: hunter2x9. Mail {EMAIL}, call {PHONES[0]} or {PHONES[1]}."
    f" Order {KEPT[0]} of {KEPT[1]} on {KEPT[2]}, ref {KEPT[3]}, from {KEPT[4]}."
)
TITLE = f"Card {CARDS[3]} for {EMAIL}"
SECRETS = (*CARDS, *IBANS, *TOKENS, "hunter2x9")


def _without_secrets(text: str) -> None:
    compact = text.replace(" ", "").replace("-", "")
    for secret in SECRETS:
        assert secret not in text and secret.replace(" ", "").replace("-", "") not in compact, secret


def test_mask_at_rest_masks_cards_ibans_and_tokens_and_keeps_the_rest() -> None:
    masked = mask_at_rest(BODY)
    _without_secrets(masked)
    assert masked.count("[card]") == 3 and masked.count("[iban]") == 3 and masked.count("[token]") == 5
    for kept in (*KEPT, EMAIL, *PHONES):
        assert kept in masked, kept


def test_mask_contacts_masks_emails_and_phones_only() -> None:
    masked = mask_contacts(mask_at_rest(BODY))
    assert EMAIL not in masked and masked.count("[email]") == 1
    assert all(p not in masked for p in PHONES) and masked.count("[phone]") == 2
    for kept in KEPT:
        assert kept in masked, kept


def test_a_json_body_is_masked_string_by_string_and_ids_are_left_alone() -> None:
    body = json.dumps({"id": "4111111111111111", "note": f"card {CARDS[0]}\n{CARDS[1]}", "n": 4111111111111111})
    masked = json.loads(mask_json_at_rest(body.encode()))
    assert masked == {"id": "4111111111111111", "note": "card [card]\n[card]", "n": 4111111111111111}
    clean = b'{"note": "nothing here"}'
    assert mask_json_at_rest(clean) is clean


async def _ingest(client: httpx.AsyncClient) -> int:
    ingest = auth(await make_key(client, "ingest"))
    one = ticket("pii-1", title=TITLE, body=BODY, tags=[EMAIL], url=f"https://x.example/?email={EMAIL}")
    resp = await client.post("/v1/items", json=one, headers=ingest)
    assert resp.status_code == 202, resp.text
    bulk = [ticket(f"pii-bulk-{n}", title=TITLE, body=BODY) for n in range(3)]
    resp = await client.post("/v1/items/bulk", json=bulk, headers=ingest)
    assert resp.status_code == 202 and resp.json()["accepted"] == 3, resp.text
    return int(resp.json()["item_id"]) if "item_id" in resp.json() else await _first_item_id(client)


async def _first_item_id(client: httpx.AsyncClient) -> int:
    return int((await client.get("/v1/items", headers=auth())).json()["data"][0]["item_id"])


async def _stored_text(db: asyncpg.Connection) -> str:
    rows = await db.fetch("SELECT title, body, url, tags::text AS tags FROM item")
    return "\n".join(str(v) for r in rows for v in r.values())


async def test_cards_ibans_and_tokens_are_never_stored_and_contacts_need_pii(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    item_id = await _ingest(client)
    stored = await _stored_text(db)
    _without_secrets(stored)
    assert EMAIL in stored  # e-mails are kept, and masked on the way out

    read = auth(await make_key(client, "read"))
    curate = auth(await make_key(client, "curate"))
    pii = auth(await make_key(client, "read", "pii"))
    for headers in (read, curate):
        one = (await client.get(f"/v1/items/{item_id}", headers=headers)).json()
        listed = (await client.get("/v1/items", headers=headers)).json()["data"]
        for item in (one, *listed):
            text = json.dumps(item)
            assert EMAIL not in text and all(p not in text for p in PHONES), text
            assert "[email]" in item["title"] and "[phone]" in item["body"]
            _without_secrets(text)
    assert json.dumps(listed[0]["tags"]) == '["[email]"]'
    for headers in (pii, auth()):  # admin implies pii
        item = (await client.get(f"/v1/items/{item_id}", headers=headers)).json()
        assert EMAIL in item["title"] and PHONES[0] in item["body"] and item["tags"] == [EMAIL]
        assert "[card]" in item["title"] and "[iban]" in item["body"]

    exported = (await client.get("/v1/items", headers={**read, "Accept": "text/csv"})).text
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert len(rows) == 4 and EMAIL not in exported and "[email]" in exported
    assert EMAIL in (await client.get("/v1/items", headers={**pii, "Accept": "text/csv"})).text


async def test_the_dashboard_masks_contacts_for_a_key_without_pii(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    item_id = await _ingest(client)
    theme_id = await db.fetchval(
        "INSERT INTO theme (label, status, representative_item_ids) VALUES ('Refunds', 'active', $1)"
        " RETURNING theme_id",
        [item_id],
    )
    await db.execute("UPDATE item SET theme_id = $1", theme_id)
    client.base_url = httpx.URL("http://127.0.0.1")  # loopback: the session cookie is not Secure
    week = datetime(2026, 11, 2, tzinfo=UTC).date().isoformat()
    for scopes, sees in ((("read",), False), (("read", "pii"), True)):
        key = await make_key(client, *scopes)
        client.cookies.clear()
        assert (await client.post("/login", data={"api_key": key, "next": "/"})).status_code == 303
        page = (await client.get(f"/themes/{theme_id}", params={"week": week})).text
        item = (await client.get(f"/items/{item_id}.json")).text
        for shown in (page, item):
            assert (EMAIL in shown) is sees, (scopes, shown[:2000])
            assert ("[email]" in shown) is not sees
            _without_secrets(shown)


async def test_a_webhook_delivery_is_stored_masked_and_still_maps(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    created = (await client.post("/v1/connections", json={"vendor": "generic", "name": "g"}, headers=auth())).json()
    payload: dict[str, Any] = json.loads(json.dumps(GENERIC_UPSERT))
    payload["data"].update(external_id="W-pii", title=TITLE, body=BODY)
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **sign("generic", body, created["secret"], at=time.time())}
    resp = await client.post(f"/v1/webhooks/{created['connection_id']}", content=body, headers=headers)
    assert resp.status_code == 202, resp.text
    raw = bytes(await db.fetchval("SELECT body FROM delivery"))
    _without_secrets(raw.decode())
    assert json.loads(raw)["data"]["external_id"] == "W-pii"
    # A retry of the same delivery (same bytes) is still recognised as a duplicate.
    again = await client.post(f"/v1/webhooks/{created['connection_id']}", content=body, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert await handle_deliveries(db, [resp.json()["delivery_id"]]) == {"processed": 1}
    _without_secrets(await _stored_text(db))
    item = (await client.get("/v1/items", headers=auth(await make_key(client, "read")))).json()["data"][0]
    assert "[card]" in item["body"] and "[email]" in item["body"]


async def test_the_migration_masks_rows_stored_before(db: asyncpg.Connection) -> None:
    connection_id = "00000000-0000-0000-0000-000000000001"
    async with db.transaction():
        await db.execute("ALTER TABLE item DROP CONSTRAINT item_times_range_check")
        await db.execute("ALTER TABLE status_event DROP CONSTRAINT status_event_at_range_check")
        await db.execute(
            "INSERT INTO item (source, external_id, kind, title, body, clean_text, created_at, payload_hash)"
            " VALUES ('z', '1', 'ticket', $1, $2, $2, now(), '\\x00')",
            TITLE,
            BODY,
        )
        await db.execute(
            "INSERT INTO connection (connection_id, vendor, name) VALUES ($1, 'generic', 'g')", connection_id
        )
        payload = {"id": "4111111111111111", "data": {"body": BODY, "title": TITLE}}
        await db.execute(
            "INSERT INTO delivery (connection_id, dedupe_key, body) VALUES ($1, 'a', $2), ($1, 'b', $3), ($1, 'c', $4)",
            connection_id,
            json.dumps(payload).encode(),
            BODY.encode(),
            b"\xff\xfe not utf-8",
        )
        await db.execute(MIGRATION.read_text())
    row = await db.fetchrow("SELECT title, body, clean_text FROM item")
    for text in row.values():
        _without_secrets(text)
        assert EMAIL in text
    assert row["body"] == mask_at_rest(BODY)
    bodies = [bytes(r["body"]) for r in await db.fetch("SELECT body FROM delivery ORDER BY dedupe_key")]
    stored = json.loads(bodies[0])
    assert stored["id"] == "4111111111111111"  # an identifier field, left alone as the API does
    _without_secrets(stored["data"]["body"] + stored["data"]["title"])
    _without_secrets(bodies[1].decode())
    assert bodies[2] == b"\xff\xfe not utf-8"


@pytest.mark.parametrize("card", CARDS)
async def test_each_card_alone_is_masked_in_a_title(client: httpx.AsyncClient, card: str) -> None:
    ingest = auth(await make_key(client, "ingest"))
    resp = await client.post("/v1/items", json=ticket("c", title=f"pay {card}", body=f"x {card} y"), headers=ingest)
    assert resp.status_code == 202
    item = (await client.get(f"/v1/items/{resp.json()['item_id']}", headers=auth())).json()
    assert item["title"] == "pay [card]" and item["body"] == "x [card] y"
