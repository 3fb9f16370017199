"""A client on the real app with SECRET_KEY set, so connection routes work (they seal secrets)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from api.main import create_app
from schemas.settings import Settings

SERVER_KEY = "security-tests-server-key-0123456789abcdefghij"


@pytest.fixture
def sec_settings(migrated: Settings) -> Settings:
    return migrated.model_copy(update={"secret_key": SecretStr(SERVER_KEY)})


@pytest.fixture
async def client(sec_settings: Settings, db: asyncpg.Connection) -> AsyncIterator[httpx.AsyncClient]:
    await db.execute("TRUNCATE connection, connection_secret, delivery RESTART IDENTITY CASCADE")
    app = create_app(sec_settings)
    async with app.router.lifespan_context(app) as state:

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http
