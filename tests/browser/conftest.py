"""The real service for browser tests: uvicorn and a worker as subprocesses on the test stores,
data posted through the API, and Debian's chromium driven by Playwright (never a downloaded one).

One stack per module: starting the worker (it loads the model) and seeding take a while, and
the browser tests only read, so they share it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright
from redis import Redis

from embedded.stores import free_port
from schemas.settings import Settings
from tests.browser.seed import anchor_week, apply_themes, build_items
from tests.conftest import ADMIN_KEY, ROOT, TABLES, stop, wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@dataclass
class Live:
    base_url: str
    read_key: str
    week: date
    themes: dict[str, int]
    items: int


@dataclass
class Tab:
    """A page plus what went wrong in it: console errors include CSP violations."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        # A 401 document is the sign-in page, shown on purpose; chromium logs it as a failed load.
        if message.type == "error" and "status of 401" not in message.text:
            self.errors.append(message.text)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); browser tests need it")
    return CHROMIUM


def _start(args: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


@contextmanager
def api_process(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """uvicorn serving the real app on a free loopback port; yields its base URL."""
    port = free_port()
    with open(log_path, "wb") as log:
        api = _start(
            ["-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"],
            env,
            log,
        )  # fmt: skip
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(api)


async def wait_healthy(http: httpx.AsyncClient, timeout: float = 60) -> None:
    """Until the API process answers /healthz (it is still starting before that)."""

    async def healthy() -> bool:
        try:
            return (await http.get("/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_for(healthy, timeout=timeout)


@pytest.fixture(scope="module")
def processes(
    chromium: Path, migrated: Settings, worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """uvicorn and a worker on the test stores; yields the API's base URL."""
    logs = tmp_path_factory.mktemp("live")
    with open(logs / "worker.log", "wb") as worker_log:
        worker = _start(["-m", "workers"], worker_env, worker_log)
        try:
            with api_process(worker_env, logs / "api.log") as base_url:
                yield base_url
        finally:
            stop(worker)


@pytest.fixture(scope="module")
async def live(processes: str, migrated: Settings) -> AsyncIterator[Live]:
    conn = await asyncpg.connect(migrated.database_url)
    await conn.execute(f"TRUNCATE {TABLES}, dashboard_session RESTART IDENTITY CASCADE")
    Redis.from_url(migrated.redis_url).flushdb()
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        async with httpx.AsyncClient(base_url=processes, timeout=60) as http:
            await wait_healthy(http)
            week = anchor_week(datetime.now(UTC))
            items = build_items(week)
            resp = await http.post("/v1/items/bulk", json=items, headers=admin)
            assert resp.status_code == 202 and resp.json()["accepted"] == len(items), resp.text

            async def processed() -> bool:
                return bool(await conn.fetchval("SELECT NOT bool_or(pending) FROM item"))

            # The real worker embeds and classifies every posted item before the themes go in.
            await wait_for(processed, timeout=300, interval=0.5)
            themes = await apply_themes(conn)
            resp = await http.post("/v1/keys", json={"name": "browser", "scopes": ["read"]}, headers=admin)
            assert resp.status_code == 201, resp.text
            yield Live(processes, resp.json()["key"], week, themes, len(items))
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def tab(browser: Browser) -> AsyncIterator[Tab]:
    """A fresh browser context (no cookies) for each test."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
    page = await context.new_page()
    tab = Tab(page)
    page.on("console", tab.on_console)
    page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    try:
        yield tab
    finally:
        await context.close()
