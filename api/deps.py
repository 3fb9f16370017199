"""Annotated dependency aliases: routes list these, never Depends(...) directly."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
from fastapi import Depends, Path, Request
from redis import Redis

from api.auth import Principal, hash_key, is_bootstrap_key
from api.errors import Forbidden, Unauthorized
from api.ratelimit import check_rate_limit
from db.queries.keys import select_active_key_by_hash
from schemas.settings import Settings

log = logging.getLogger(__name__)


@asynccontextmanager
async def pooled(request: Request) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection for a block of the request, given back at the block's end."""
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


async def get_conn(request: Request) -> AsyncIterator[asyncpg.Connection]:
    async with pooled(request) as conn:
        yield conn


async def read_body(request: Request) -> bytes:
    return await request.body()


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


async def get_redis(request: Request) -> Redis:
    redis: Redis = request.state.redis
    return redis


# A bigint primary key in a path: anything outside Postgres bigint is a 422, never a 500.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]

DbConn = Annotated[asyncpg.Connection, Depends(get_conn)]
# Declared before DbConn (or a key) in a route's signature, and FastAPI resolves dependencies in
# order: the body is read before a pool connection is taken, so slow senders cannot hold one.
RawBody = Annotated[bytes, Depends(read_body)]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]
RedisClient = Annotated[Redis, Depends(get_redis)]


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
        return await _allow(request, await authenticate(request, conn, bearer_token(request)), scope)

    return check


def require_briefly(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """As `require`, but the key is looked up on a connection given back at once: for a route
    that works long before it needs the database, and takes a connection then (`pooled`)."""

    async def check(request: Request) -> Principal:
        token = bearer_token(request)
        async with pooled(request) as conn:
            principal = await authenticate(request, conn, token)
        return await _allow(request, principal, scope)

    return check


async def _allow(request: Request, principal: Principal, scope: str) -> Principal:
    if not principal.allows(scope):
        raise Forbidden(f"This key lacks the '{scope}' scope")
    settings: Settings = request.state.settings
    await check_rate_limit(request.state.aredis, principal, settings.rate_limit_per_minute)
    request.state.principal = principal
    return principal


IngestKey = Annotated[Principal, Depends(require("ingest"))]
# The bulk route: its key check holds no connection while the body is read and validated.
IngestKeyBriefly = Annotated[Principal, Depends(require_briefly("ingest"))]
ReadKey = Annotated[Principal, Depends(require("read"))]
CurateKey = Annotated[Principal, Depends(require("curate"))]
AdminKey = Annotated[Principal, Depends(require("admin"))]
