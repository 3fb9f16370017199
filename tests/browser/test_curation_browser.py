"""Curation in a real browser against the real service: rename inline, hide, merge by ticking
themes, split through the preview, move items from a theme's item list, create a theme from a
description (its back-fill run by a real worker), and undo from the history. Each action goes
through its confirm page; a read key sees the history but no controls, and cannot post.

The service and a worker run as subprocesses on the test stores. Items and their vectors (from
the reference model, loaded here and in the worker) are written with SQL; themes are put in
with SQL, as tests/browser/seed.py does, so each test knows what it acts on.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import numpy as np
import pytest
from playwright.async_api import Page, expect
from redis import Redis

from clustering.embed import SentenceTransformerEmbedder
from schemas.settings import Settings
from tests.browser.conftest import SCREENSHOTS, Tab, _start, api_process, wait_healthy
from tests.conftest import ADMIN_KEY, TABLES, stop

pytestmark = [pytest.mark.browser, pytest.mark.slow]

THEMES: dict[str, list[str]] = {
    "refund": [
        "I asked for a refund two weeks ago and the money never arrived",
        "Where is my refund? It has been 10 days",
        "Refund still not on my card after cancelling the order",
    ],
    "thanks": ["Thanks a lot, that solved it", "Thank you for the quick answer", "Great, thanks!"],
    "lost card": ["I lost my card yesterday", "My card is lost, please block it", "Lost card on holiday"],
    "stolen card": ["My card was stolen", "Someone stole my wallet and card", "Card stolen at the station"],
    "mixed": [
        "I cannot log in, the password reset email never comes",
        "SSO login with Okta fails with an error",
        "Two-factor code is rejected when I sign in",
        "Locked out of my account after too many login attempts",
        "The login page keeps spinning forever",
        "Password reset link says expired",
        "Please add a dark mode to the app",
        "Dark theme for the dashboard would be great",
        "Night mode please, the white screen hurts my eyes",
        "Will you support a dark colour scheme?",
        "A dark mode toggle in settings, please",
        "Dark mode on mobile would be lovely",
    ],
    "billing": ["Invoice shows the wrong VAT", "I was charged twice this month", "Where can I download my invoice?"],
    "invoices": ["Invoice address is wrong", "Need a copy of last year's invoices"],
}


@dataclass
class Stack:
    base_url: str
    curate_key: str
    read_key: str
    themes: dict[str, int]
    items: dict[str, list[int]]


@pytest.fixture(scope="module")
def service(
    chromium: Path, migrated: Settings, worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """uvicorn, and a worker on the clustering queue (the back-fill's) with the reference model."""
    logs = tmp_path_factory.mktemp("curation-live")
    env = {**worker_env, "EMBEDDER": "sentence-transformers"}
    with open(logs / "worker.log", "wb") as worker_log:
        worker = _start(["-m", "workers", "--queues", "clustering"], env, worker_log)
        try:
            with api_process(env, logs / "api.log") as base_url:
                yield base_url
        finally:
            stop(worker)


@pytest.fixture(scope="module")
async def stack(service: str, migrated: Settings) -> AsyncIterator[Stack]:
    conn = await asyncpg.connect(migrated.database_url)
    await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    Redis.from_url(migrated.redis_url).flushdb()
    embedder = SentenceTransformerEmbedder()
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        themes, items = {}, {}
        now = datetime.now(UTC)
        for name, texts in THEMES.items():
            theme_id = await conn.fetchval(
                "INSERT INTO theme (label, status, size, first_seen_at, last_seen_at) VALUES ($1, 'active', $2, $3, $3)"
                " RETURNING theme_id",
                name, len(texts), now,
            )  # fmt: skip
            themes[name], items[name] = theme_id, []
            for n, (text, vector) in enumerate(zip(texts, embedder.embed(texts), strict=True)):
                item_id = await conn.fetchval(
                    "INSERT INTO item (source, external_id, kind, title, body, clean_text, created_at, payload_hash,"
                    " theme_id, pending, embedded_at) VALUES ('zendesk', $1, 'ticket', $2, $2, $2, $3, 'h', $4,"
                    " false, now()) RETURNING item_id",
                    f"{name}-{n}", text, now - timedelta(days=n), theme_id,
                )  # fmt: skip
                await conn.execute(
                    "INSERT INTO embedding (item_id, model_version, content_hash, vector) VALUES ($1, $2, 'h', $3)",
                    item_id, embedder.model_version, np.asarray(vector, "<f4").tobytes(),
                )  # fmt: skip
                items[name].append(item_id)
        async with httpx.AsyncClient(base_url=service, timeout=60) as http:
            await wait_healthy(http)
            keys = {}
            for scope in ("curate", "read"):
                resp = await http.post("/v1/keys", json={"name": scope, "scopes": [scope]}, headers=admin)
                assert resp.status_code == 201, resp.text
                keys[scope] = resp.json()["key"]
        yield Stack(service, keys["curate"], keys["read"], themes, items)
    finally:
        await conn.close()


async def sign_in(page: Page, stack: Stack, path: str, key: str | None = None) -> None:
    response = await page.goto(stack.base_url + path)
    assert response is not None and response.status == 401
    await page.fill("#api_key", key or stack.curate_key)
    await page.click(".signin-form button[type=submit]")
    await page.wait_for_url(re.compile(re.escape(path)))


async def confirm(page: Page, heading: str) -> None:
    """The confirm step: it says what will happen, and only its button applies it."""
    await expect(page.locator("#confirm-heading")).to_contain_text(heading)
    await page.click("#confirm-button")


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"curation-{name}.png"), full_page=True)


async def test_rename_inline_with_a_confirm_step_then_undo_it_from_the_history(tab: Tab, stack: Stack) -> None:
    page, theme = tab.page, stack.themes["refund"]
    await sign_in(page, stack, f"/themes/{theme}")
    await page.fill("#rename-label", "Refund not received")
    await page.click("#rename-button")
    await expect(page.locator(".confirm-lines")).to_contain_text("To: Refund not received")
    await shot(page, "rename-confirm")
    await confirm(page, "Rename this theme?")
    await expect(page.locator("#theme-label")).to_have_text("Refund not received")
    await expect(page.locator('#history-table tr[data-action="rename"]')).to_contain_text("Refund not received")
    await shot(page, "rename-done")

    await page.locator('#history-table tr[data-action="rename"] .undo-button').click()
    await confirm(page, "Undo change")
    await expect(page.locator("#theme-label")).to_have_text("refund")
    await expect(page.locator('#history-table tr[data-action="undo"]')).to_have_count(1)
    await expect(page.locator('#history-table tr[data-action="rename"]')).to_contain_text("undone")
    assert tab.errors == []


async def test_hide_a_theme_with_a_confirm_step(tab: Tab, stack: Stack) -> None:
    page, theme = tab.page, stack.themes["thanks"]
    await sign_in(page, stack, f"/themes/{theme}")
    await page.click("#hide-button")
    await page.click("#cancel-link")  # cancelling changes nothing
    await expect(page.locator("#hidden-badge")).to_have_count(0)
    await page.click("#hide-button")
    await confirm(page, "Hide “thanks”?")
    await expect(page.locator("#hidden-badge")).to_have_text("hidden")
    await expect(page.locator('#history-table tr[data-action="hide"]')).to_have_count(1)
    assert tab.errors == []


async def test_merge_by_ticking_themes(tab: Tab, stack: Stack) -> None:
    page = tab.page
    lost, stolen = stack.themes["lost card"], stack.themes["stolen card"]
    await sign_in(page, stack, "/curate")
    await page.check(f'#curate-themes tr[data-theme-id="{stolen}"] input[name="theme_id"]')
    await page.check(f'#curate-themes tr[data-theme-id="{lost}"] input[name="into"]')
    await page.click("#merge-button")
    await expect(page.locator(".confirm-lines")).to_contain_text("stolen card")
    await shot(page, "merge-confirm")
    await confirm(page, "Merge into “lost card”?")
    await page.wait_for_url(re.compile(f"/themes/{lost}"))
    await expect(page.locator('#history-table tr[data-action="merge"]')).to_contain_text("6 items pinned")
    await expect(page.locator("#items tbody tr")).to_have_count(6)
    await page.goto(f"{stack.base_url}/themes/{stolen}")
    await expect(page.locator(".theme-meta").first).to_contain_text("merged into")
    assert tab.errors == []


async def test_split_through_the_preview(tab: Tab, stack: Stack) -> None:
    page, theme = tab.page, stack.themes["mixed"]
    await sign_in(page, stack, f"/themes/{theme}")
    await page.select_option('#split-form select[name="k"]', "2")
    await page.click("#split-button")
    groups = page.locator("#split-groups .split-group")
    await expect(groups).to_have_count(2)
    sizes = sorted([int(await g.locator(".group-size").inner_text()) for g in await groups.all()])
    assert sizes == [6, 6]
    labels = " ".join([await g.locator(".group-label").inner_text() for g in await groups.all()]).lower()
    assert "dark" in labels and ("login" in labels or "password" in labels)
    await expect(groups.first.locator(".examples li")).to_have_count(5)
    await shot(page, "split-preview")
    await page.click("#confirm-split")
    await page.wait_for_url(re.compile(f"/themes/{theme}"))
    await expect(page.locator('#history-table tr[data-action="split"]')).to_contain_text("sizes [6, 6]")
    await expect(page.locator("#split-form")).to_have_count(0)  # retired: no more controls
    assert tab.errors == []


async def test_move_items_from_a_themes_item_list(tab: Tab, stack: Stack) -> None:
    page = tab.page
    billing, invoices = stack.themes["billing"], stack.themes["invoices"]
    picked = [i for i in stack.items["billing"] if i != stack.items["billing"][1]]  # not "charged twice"
    await sign_in(page, stack, f"/themes/{billing}")
    for item_id in picked:
        await page.check(f'#items tr[data-item-id="{item_id}"] input[name="item_id"]')
    await page.select_option("#move-target", str(invoices))
    await page.click("#move-button")
    await confirm(page, "Move 2 item(s) into “invoices”?")
    await page.wait_for_url(re.compile(f"/themes/{invoices}"))
    await expect(page.locator("#items tbody tr")).to_have_count(4)
    for item_id in picked:
        await expect(page.locator(f'#items tr[data-item-id="{item_id}"]')).to_have_count(1)
    await expect(page.locator('#history-table tr[data-action="move"]')).to_contain_text("2 item(s) moved")
    assert tab.errors == []


async def test_create_a_theme_from_a_description_and_see_its_back_fill_finish(tab: Tab, stack: Stack) -> None:
    page = tab.page
    await sign_in(page, stack, "/curate")
    await page.fill("#create-label", "Refund not received")
    await page.fill("#create-description", "Customers asking where their refund is or why it has not arrived")
    await page.fill("#create-examples", "I want my money back\nStill waiting for my refund")
    await page.click("#create-button")
    await expect(page.locator(".confirm-lines")).to_contain_text("reaches 0.50")
    await confirm(page, "Create the theme “Refund not received”?")
    await page.wait_for_url(re.compile(r"/themes/\d+"))
    await expect(page.locator("#theme-label")).to_have_text("Refund not received")
    await expect(page.locator('#history-table tr[data-action="create"]')).to_have_count(1)
    backfill = page.locator("#backfill")
    for _ in range(120):  # the worker may still be loading its model on a busy host
        if await backfill.get_attribute("data-status") in ("done", "failed"):
            break
        await page.wait_for_timeout(2_000)
        await page.reload()
    await expect(backfill).to_have_attribute("data-status", "done")
    await expect(backfill).to_contain_text("3 joined")  # the three refund items, nothing else
    await expect(page.locator("#items tbody tr")).to_have_count(3)
    await shot(page, "create-backfilled")
    assert tab.errors == []


async def test_correct_an_items_intent_with_one_click_in_the_item_list(tab: Tab, stack: Stack) -> None:
    page, billing = tab.page, stack.themes["billing"]
    item_id = stack.items["billing"][1]
    await sign_in(page, stack, f"/themes/{billing}")
    row = page.locator(f'#items tr[data-item-id="{item_id}"]')
    await row.locator('.intent-fix button[value="bug"]').click()
    await page.wait_for_url(re.compile(f"/themes/{billing}$"))
    # Back on the same page, the row reads the person's intent and offers the other three.
    await expect(row).to_contain_text("bug")
    await expect(row.locator(".intent-fix button")).to_have_count(3)
    await expect(row.locator('.intent-fix button[value="bug"]')).to_have_count(0)
    item = await page.evaluate("async (url) => (await fetch(url)).json()", f"/items/{item_id}.json")
    assert item["intent"] == "bug" and item["intent_source"] == "person"
    assert tab.errors == []


async def test_a_read_key_sees_the_history_but_no_controls_and_cannot_post(tab: Tab, stack: Stack) -> None:
    page, theme = tab.page, stack.themes["invoices"]
    await sign_in(page, stack, f"/themes/{theme}", key=stack.read_key)
    await expect(page.locator('#history-table tr[data-action="move"]')).to_have_count(1)
    for control in ("#rename-form", "#hide-form", "#split-form", "#move-form", ".undo-button", ".intent-fix"):
        await expect(page.locator(control)).to_have_count(0)
    status = await page.evaluate(
        """async (url) => (await fetch(url, {method: 'POST', body: 'label=x&confirm=1',
                 headers: {'Content-Type': 'application/x-www-form-urlencoded'}})).status""",
        f"/themes/{theme}/rename",
    )
    assert status == 403
    resp = await page.goto(f"{stack.base_url}/curate")
    assert resp is not None and resp.status == 403
    await expect(page.locator(".notice")).to_contain_text("curate scope")
