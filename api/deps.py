"""Annotated dependency aliases: routes list these, never Depends(...) directly."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

import asyncpg
from fastapi import Depends, Path, Request
from redis import Redis
from rq import Queue

from api.auth import Principal, hash_key, is_bootstrap_key
from api.errors import Forbidden, Unauthorized
from api.ratelimit import check_rate_limit
from db.queries.keys import select_active_key_by_hash
from schemas.settings import Settings

log = logging.getLogger(__name__)


async def get_conn(request: Request) -> AsyncIterator[asyncpg.Connection]:
    pool: asyncpg.Pool = request.state.pool
    settings: Settings = request.state.settings
    conn = await pool.acquire(timeout=settings.db_acquire_timeout_s)
    try:
        # the pool hands out a proxy that behaves as a Connection for the request's lifetime
        yield conn  # type: ignore[misc]
    finally:
        try:
            await pool.release(conn)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Release resets the connection, after the response may have been sent. If Postgres
            # or the network dropped it meanwhile, asyncpg has already terminated it and the pool
            # opens a new one; raising here would only make the server cut the client's
            # keep-alive connection ("response already started").
            log.warning("database connection dropped on release (%s)", type(exc).__name__)


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


async def get_redis(request: Request) -> Redis:
    redis: Redis = request.state.redis
    return redis


async def get_queue(request: Request) -> Callable[[str], Queue]:
    redis: Redis = request.state.redis
    return lambda name: Queue(name, connection=redis)


# A bigint primary key in a path: anything outside Postgres bigint is a 422, never a 500.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]

DbConn = Annotated[asyncpg.Connection, Depends(get_conn)]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]
RedisClient = Annotated[Redis, Depends(get_redis)]
JobQueue = Annotated[Callable[[str], Queue], Depends(get_queue)]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Missing API key: send Authorization: Bearer <key>")
    return token.strip()


async def authenticate(request: Request, conn: asyncpg.Connection, token: str) -> Principal:
    settings: Settings = request.state.settings
    bootstrap = settings.admin_api_key.get_secret_value() if settings.admin_api_key else None
    if is_bootstrap_key(token, bootstrap):
        return Principal(api_key_id=None, scopes=frozenset({"admin"}))
    key = await select_active_key_by_hash(conn, key_hash=hash_key(token))
    if key is None:
        raise Unauthorized("Invalid or revoked API key")
    return Principal(api_key_id=key.api_key_id, scopes=frozenset(key.scopes))


def require(scope: str) -> Callable[[Request, asyncpg.Connection], Awaitable[Principal]]:
    async def check(request: Request, conn: DbConn) -> Principal:
        principal = await authenticate(request, conn, bearer_token(request))
        if not principal.allows(scope):
            raise Forbidden(f"This key lacks the '{scope}' scope")
        settings: Settings = request.state.settings
        await check_rate_limit(request.state.aredis, principal, settings.rate_limit_per_minute)
        request.state.principal = principal
        return principal

    return check


IngestKey = Annotated[Principal, Depends(require("ingest"))]
ReadKey = Annotated[Principal, Depends(require("read"))]
CurateKey = Annotated[Principal, Depends(require("curate"))]
AdminKey = Annotated[Principal, Depends(require("admin"))]
