"""create_app(settings) and the lifespan that owns the pool and the Redis connection.

Run with `uvicorn --factory api.main:create_app`. Nothing happens at import time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import asyncpg
from fastapi import FastAPI
from redis import Redis

from api.errors import install_error_handlers
from api.limits import BodyLimitMiddleware
from api.routes import health, items, keys
from db.pool import create_pool
from schemas.settings import Settings, get_settings

log = logging.getLogger(__name__)


class State(TypedDict):
    pool: asyncpg.Pool
    redis: Redis
    settings: Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        pool = await create_pool(settings)
        redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
        try:
            yield {"pool": pool, "redis": redis, "settings": settings}
        finally:
            redis.close()
            await pool.close()

    docs = not settings.is_production
    app = FastAPI(
        title="Ticket themes",
        version="0.1.0",
        summary="Recurring-issue themes, trends and feature requests from support tickets and forum posts.",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    for module in (health, items, keys):
        app.include_router(module.router)
    return app
