"""create_app(settings) and the lifespan that owns the pool and the Redis connection.

Run with `uvicorn --factory api.main:create_app`. Nothing happens at import time.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import asyncpg
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from api import accesslog
from api.dashboard.render import STATIC_DIR, compile_templates
from api.errors import ERROR_RESPONSES, install_error_handlers
from api.limits import BodyLimitMiddleware
from api.routes import (
    alerts,
    alerts_page,
    articles,
    clustering,
    connections,
    curation,
    cx_dashboard,
    cx_reports,
    dashboard,
    dashboard_curation,
    health,
    incidents,
    intent,
    items,
    keys,
    reports,
    requesters,
    schedules,
    themes,
    webhooks,
)
from db.pool import create_pool
from schemas.settings import Settings, get_settings

log = logging.getLogger(__name__)
GC_THRESHOLD = 50_000


def settle_heap() -> None:
    """Tune the cyclic garbage collector for request-shaped work, once the app is built.

    What exists now (routes, models, validators, the pool) lives as long as the process: frozen,
    it is left out of every collection. A bulk request allocates a few hundred thousand short-lived
    containers; with the default first threshold (700) each one ran ~150 young collections and
    several full ones that scanned the whole heap. A larger threshold lets reference counting free
    them first, so collections are rarer and no longer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


class State(TypedDict):
    pool: asyncpg.Pool
    redis: Redis
    aredis: AsyncRedis
    settings: Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        pool = await create_pool(settings)
        redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
        aredis = AsyncRedis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=1)
        compile_templates()
        settle_heap()
        try:
            yield {"pool": pool, "redis": redis, "aredis": aredis, "settings": settings}
        finally:
            redis.close()
            await aredis.aclose()
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
        responses=ERROR_RESPONSES,
    )
    install_error_handlers(app)
    accesslog.install()
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    # The router tries the included routers in this order on every request, so the busiest paths
    # go first: finding a webhook's route took 52 us behind nine routers, 5 us first (of about
    # 0.8 ms of API CPU per webhook).
    # Only routers with disjoint paths moved (reports and cx_reports share /v1/reports and keep
    # their order), so which route answers a request is unchanged.
    busiest = (webhooks, items, reports, health)
    routers = (keys, themes, curation, clustering, intent, requesters, connections)
    pages = (dashboard, dashboard_curation, alerts_page, cx_dashboard)
    for module in (*busiest, *routers, alerts, incidents, cx_reports, schedules, articles, *pages):
        app.include_router(module.router)
    # The dashboard's CSS, JS and vendored Chart.js: public, no data in them, shipped in the package.
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
