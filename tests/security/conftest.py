"""A client on the real app with SECRET_KEY set, so connection routes work (they seal secrets)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from schemas.settings import Settings
from tests.conftest import running_app

SERVER_KEY = "security-tests-server-key-0123456789abcdefghij"


@pytest.fixture
def sec_settings(migrated: Settings) -> Settings:
    return migrated.model_copy(update={"secret_key": SecretStr(SERVER_KEY)})


@pytest.fixture
async def client(sec_settings: Settings, db: asyncpg.Connection) -> AsyncIterator[httpx.AsyncClient]:
    await db.execute("TRUNCATE connection, connection_secret, delivery RESTART IDENTITY CASCADE")
    async with running_app(sec_settings) as (http, _):
        yield http
