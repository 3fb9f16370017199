"""#17: no secret or personal data in logs.

A real API process (uvicorn, access log on, INFO) and a real worker run over every shared webhook
fixture, signed for its own connection, plus the mistakes that tempt a log line: a key pasted
into a query string, a wrong bearer key, a bad signature, an item full of personal data. Then
both processes' captured output is scanned for every API key, the server's SECRET_KEY, every
connection secret, and every e-mail address the fixtures hold.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.connectors.connector_cases import (
    FIXTURE_HEADERS,
    FIXTURES,
    fixture_names,
    secrets_for,
    sign,
    vendor_of,
)
from tests.faults.harness import ADMIN_KEY, SECRET_KEY, Cluster, wait_ready

EMAIL_RE = re.compile(rb"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PERSON_EMAIL = "pat.customer@example.org"


def fixture_emails() -> set[str]:
    found = {m.group().decode() for name in fixture_names() for m in EMAIL_RE.finditer((FIXTURES / name).read_bytes())}
    return {e for e in found if not e.endswith("@users.noreply.github.com")} | {PERSON_EMAIL}


async def _drive(cluster: Cluster) -> list[str]:
    """The traffic; returns every secret that was used."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    used = [ADMIN_KEY, SECRET_KEY]
    async with httpx.AsyncClient(base_url=cluster.url, timeout=30.0) as client:
        keys = {}
        for scope in ("ingest", "read"):
            resp = await client.post("/v1/keys", json={"name": scope, "scopes": [scope]}, headers=admin)
            keys[scope] = resp.json()["key"]
        used += keys.values()
        connections = {}
        for name in fixture_names():
            vendor = vendor_of(name)
            if vendor not in connections:
                secret, other = secrets_for(vendor)
                resp = await client.post(
                    "/v1/connections", json={"vendor": vendor, "name": vendor, "secret": secret}, headers=admin
                )
                assert resp.status_code == 201, resp.text
                connections[vendor] = (resp.json()["connection_id"], secret)
                used += [secret, other]
            cid, secret = connections[vendor]
            body = (FIXTURES / name).read_bytes()
            headers = {"Content-Type": "application/json", **FIXTURE_HEADERS.get(name, {})}
            headers.update(sign(vendor, body, secret, at=time.time()))
            resp = await client.post(f"/v1/webhooks/{cid}", content=body, headers=headers)
            assert resp.status_code in (200, 202), (name, resp.text)
            # The same delivery with a signature made with a wrong secret: refused, and logged.
            headers.update(sign(vendor, body, "not-the-secret-0123456789", at=time.time()))
            assert (await client.post(f"/v1/webhooks/{cid}", content=body, headers=headers)).status_code == 401
        ingest = {"Authorization": f"Bearer {keys['ingest']}"}
        item = {
            "source": "mail",
            "external_id": "1",
            "kind": "ticket",
            "title": f"From {PERSON_EMAIL}",
            "body": f"Write to {PERSON_EMAIL} or call +44 20 7946 0958",
            "created_at": "2026-11-02T10:00:00Z",
        }
        assert (await client.post("/v1/items", json=item, headers=ingest)).status_code == 202
        bad = {**item, "created_at": "0001-01-01T00:00:00+14:00"}
        assert (await client.post("/v1/items", json=bad, headers=ingest)).status_code == 422
        # A key pasted into a query string, a key used where its scope does not reach, a made-up key.
        await client.get("/v1/items", params={"api_key": keys["read"], "requester": PERSON_EMAIL}, headers=admin)
        wrong_scope = await client.get("/v1/connections", headers={"Authorization": f"Bearer {keys['read']}"})
        assert wrong_scope.status_code == 403
        made_up = await client.get("/v1/items", headers={"Authorization": "Bearer tk_made_up_0123456789"})
        assert made_up.status_code == 401
    return used


async def _wait_processed(dsn: str, timeout: float = 240.0) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while await conn.fetchval("SELECT count(*) FROM delivery WHERE status = 'pending'"):
            assert time.monotonic() < deadline, "deliveries still pending"
            await asyncio.sleep(0.5)
        while await conn.fetchval("SELECT count(*) FROM item WHERE pending"):
            assert time.monotonic() < deadline, "items still pending"
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


@pytest.mark.slow
def test_api_and_worker_logs_hold_no_key_secret_or_fixture_email(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, workers=1, sweep_after_s=30)
    try:
        cluster.start_stores()
        cluster.api = cluster._spawn(
            ["-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1",
             "--port", str(cluster.api_port), "--log-level", "debug"],
            "api.log",
        )  # fmt: skip
        cluster.workers[0] = cluster._spawn(["-m", "workers", "--queues", "deliveries,items"], "worker0.log")
        asyncio.run(wait_ready(cluster))
        used = asyncio.run(_drive(cluster))
        asyncio.run(_wait_processed(cluster.pg.url("tickets")))
    finally:
        cluster.stop()
    logs = {name: (tmp_path / name).read_text(errors="replace") for name in ("api.log", "worker0.log")}
    assert "POST /v1/webhooks/" in logs["api.log"] and "deliveries" in logs["worker0.log"]  # the logs are real
    emails = fixture_emails()
    assert len(emails) > 5
    for name, text in logs.items():
        leaked = [s for s in used if s in text] + sorted(e for e in emails if e in text)
        assert leaked == [], f"{name} holds {leaked}"
