"""The alerts page in a real browser against the real API process: incidents with their segments
and deliveries, acknowledge and resolve, rules and destinations, and dead letters on the health
page. Only uvicorn runs (no worker): the incidents are written as the detection job writes them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from playwright.async_api import Page, expect
from redis import Redis

from schemas.settings import Settings
from tests.browser.conftest import SCREENSHOTS, Tab, api_process, wait_healthy
from tests.conftest import ADMIN_KEY, TABLES
from tests.outbound.loopback import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@dataclass
class Seeded:
    base_url: str
    curate_key: str
    read_key: str
    incident_id: int


@pytest.fixture(scope="module")
def api_server(chromium: Path, worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {**worker_env, "OUTBOUND_ALLOWED_HOSTS": '["127.0.0.1"]'}
    with api_process(env, tmp_path_factory.mktemp("alerts-live") / "api.log") as base_url:
        yield base_url


@pytest.fixture(scope="module")
async def seeded(api_server: str, migrated: Settings) -> AsyncIterator[Seeded]:
    conn = await asyncpg.connect(migrated.database_url)
    await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    Redis.from_url(migrated.redis_url).flushdb()
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        async with httpx.AsyncClient(base_url=api_server, timeout=30) as http:
            await wait_healthy(http)
            theme_id = await conn.fetchval(
                "INSERT INTO theme (label) VALUES ('Refund not received') RETURNING theme_id"
            )
            slack = await http.post(
                "/v1/alerts/destinations",
                json={"kind": "email", "name": "Support leads", "to": ["leads@example.com"]},
                headers=admin,
            )
            assert slack.status_code == 201, slack.text
            dest = slack.json()["destination_id"]
            rule = await http.post(
                "/v1/alerts/rules",
                json={"name": "Refund spikes", "on": ["spike"], "theme_ids": [theme_id], "destination_ids": [dest]},
                headers=admin,
            )
            assert rule.status_code == 201, rule.text
            incident_id = await conn.fetchval(
                "INSERT INTO incident (dedupe_key, kind, theme_id, level, granularity, window_start, window_end,"
                " observed, expected, score, segments, example_item_ids)"
                " VALUES ('spike:1', 'spike', $1, 'leaf', 'day', now() - interval '7 days', now(), 41, 13.5, 7.1,"
                ' \'[{"field": "channel", "value": "chat", "count": 22, "share": 0.54,'
                ' "baseline_share": 0.1, "lift": 5.4}]\', \'{}\') RETURNING incident_id',
                theme_id,
            )
            await conn.execute(
                "INSERT INTO incident_delivery (incident_id, alert_destination_id, status, attempts, last_error)"
                " VALUES ($1, $2, 'dead', 4, 'SMTP: ConnectionRefusedError')",
                incident_id, dest,
            )  # fmt: skip
            keys = {}
            for name, scopes in (("curator", ["curate"]), ("reader", ["read"])):
                r = await http.post("/v1/keys", json={"name": name, "scopes": scopes}, headers=admin)
                assert r.status_code == 201, r.text
                keys[name] = r.json()["key"]
            yield Seeded(api_server, keys["curator"], keys["reader"], incident_id)
    finally:
        await conn.close()


async def sign_in(page: Page, base_url: str, key: str, path: str) -> None:
    response = await page.goto(base_url + path)
    assert response is not None and response.status == 401
    await page.fill("#api_key", key)
    await page.click(".signin-form button[type=submit]")
    await page.wait_for_url(re.compile(re.escape(path)))


async def test_acknowledge_then_resolve_an_incident(tab: Tab, seeded: Seeded) -> None:
    page = tab.page
    await sign_in(page, seeded.base_url, seeded.curate_key, "/alerts")
    row = page.locator(f'#incidents tr[data-incident="{seeded.incident_id}"]')
    await expect(row.locator("th")).to_have_text(f"#{seeded.incident_id}")
    await expect(row).to_contain_text("Refund not received")
    await expect(row).to_contain_text("channel = chat (5.4×)")
    await expect(row.locator(".delivery-dead")).to_contain_text("Support leads: failed (4 attempts)")
    await expect(row.locator(".incident-status")).to_have_text("open")
    await expect(page.locator("#rules")).to_contain_text("Refund spikes")
    await expect(page.locator("#destinations")).to_contain_text("leads@example.com")

    await row.get_by_role("button", name="Acknowledge").click()
    await page.wait_for_url(re.compile(r"/alerts$"))
    await expect(row.locator(".incident-status")).to_have_text("acknowledged")
    await expect(row.get_by_role("button", name="Acknowledge")).to_have_count(0)
    await row.get_by_role("button", name="Resolve").click()
    await expect(row.locator(".incident-status")).to_have_text("resolved")

    await page.goto(seeded.base_url + "/alerts?status=open")
    await expect(page.locator("#incidents")).to_have_count(0)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.goto(seeded.base_url + "/alerts")
    await page.screenshot(path=str(SCREENSHOTS / "alerts.png"), full_page=True)
    assert tab.errors == []


async def test_a_reader_sees_incidents_without_actions_and_dead_letters_on_the_health_page(
    tab: Tab, seeded: Seeded
) -> None:
    page = tab.page
    await sign_in(page, seeded.base_url, seeded.read_key, "/alerts")
    await expect(page.locator("#incidents tbody tr")).to_have_count(1)
    await expect(page.locator("#incidents button")).to_have_count(0)
    await page.get_by_role("link", name="Runs and health").click()
    dead = page.locator("#dead-letters tbody tr")
    await expect(dead).to_have_count(1)
    await expect(dead).to_contain_text("Support leads")
    await expect(dead).to_contain_text("SMTP: ConnectionRefusedError")
    assert tab.errors == []


async def test_an_admin_adds_a_destination_tests_it_and_adds_a_rule(tab: Tab, seeded: Seeded) -> None:
    """The uvicorn process sends the test message itself: only to a receiver on 127.0.0.1 (the
    refused URL below is refused before any socket or lookup: it is a literal address)."""
    page = tab.page
    receiver = Receiver().start()
    try:
        await sign_in(page, seeded.base_url, ADMIN_KEY, "/alerts")
        add = page.locator("#add-destination")
        await add.locator("summary").click()
        await add.locator("select[name=kind]").select_option("slack")
        await add.locator("input[name=name]").fill("Metadata")
        await add.locator("input[name=url]").fill("https://169.254.169.254/latest/meta-data")
        await add.get_by_role("button", name="Add destination").click()
        await expect(page.locator("#notice")).to_contain_text("refused: 169.254.169.254 is the cloud metadata address")
        await expect(page.locator("#destinations")).not_to_contain_text("Metadata")

        add = page.locator("#add-destination")
        await add.locator("summary").click()
        await add.locator("select[name=kind]").select_option("webhook")
        await add.locator("input[name=name]").fill("Ops hook")
        await add.locator("input[name=url]").fill(receiver.url("/ops"))
        await add.get_by_role("button", name="Add destination").click()
        await expect(page.locator("#notice")).to_have_text("Destination 'Ops hook' added.")
        await expect(page.locator("#secret code")).to_have_text(re.compile(r"^whsec_"))
        row = page.locator("#destinations tr", has_text="Ops hook")
        await row.get_by_role("button", name="Send a test message").click()
        await expect(page.locator("#notice")).to_contain_text("sent")
        assert [r.path for r in receiver.received] == ["/ops"]
        assert receiver.received[0].json()["type"] == "incident.test"
        await expect(page.locator("#secret")).to_have_count(0)  # shown once

        rule = page.locator("#add-rule")
        await rule.locator("summary").click()
        await rule.locator("input[name=name]").fill("Everything to ops")
        await rule.locator("input[name=on][value=emerging]").check()
        await rule.locator("label", has_text="Ops hook").locator("input").check()
        await rule.get_by_role("button", name="Add rule").click()
        await expect(page.locator("#notice")).to_have_text("Rule 'Everything to ops' added.")
        await expect(page.locator("#rules tr", has_text="Everything to ops")).to_contain_text("spike, emerging")
        # the refused form answered 422 on purpose; chromium logs that load as failed
        assert [e for e in tab.errors if "status of 422" not in e] == []
    finally:
        receiver.stop()
