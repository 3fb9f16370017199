"""The asyncpg pool for the API, with server-side time limits (reliability D1/D2)."""

from __future__ import annotations

import weakref

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from schemas.settings import Settings


def server_settings(settings: Settings, *, role: str) -> dict[str, str]:
    timeout = settings.db_statement_timeout_ms if role == "api" else settings.db_worker_statement_timeout_ms
    return {
        "application_name": f"tickets-{role}",
        "statement_timeout": str(timeout),
        "idle_in_transaction_session_timeout": str(settings.db_idle_in_transaction_timeout_ms),
        "timezone": "UTC",
    }


async def create_pool(settings: Settings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        # a little above the server's statement_timeout so the server error wins
        command_timeout=settings.db_statement_timeout_ms / 1000 + 2,
        max_inactive_connection_lifetime=60,
        server_settings=server_settings(settings, role="api"),
        reset=_reset,
    )
    assert pool is not None
    return pool


# Pooled connections that took session state (a session advisory lock) since they were acquired.
_HOLDING: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()


def hold_session_state(conn: asyncpg.Connection) -> None:
    """Call before a statement that leaves state in the session beyond its transaction (today only
    `pg_advisory_lock`): the pool then resets `conn` in full when it is released."""
    # A request holds the pool's proxy; the pool's reset hook is handed the connection inside it.
    raw = conn._con if isinstance(conn, PoolConnectionProxy) else conn
    if raw is not None:
        _HOLDING.add(raw)


async def _reset(conn: asyncpg.Connection) -> None:
    """On release asyncpg has already rolled back an open transaction. The full reset (unlock every
    advisory lock, close cursors, unlisten, reset settings) is a round trip that costs about as
    much server and client time as a webhook's own insert, so it runs only on the connections that
    were marked by `hold_session_state`; the others carry no session state to reset."""
    if conn in _HOLDING:
        _HOLDING.discard(conn)
        query = conn.get_reset_query()
        if query:
            await conn.execute(query)


async def connect(settings: Settings, *, role: str = "worker") -> asyncpg.Connection:
    """One connection for a job or a loop: RQ runs each async job in a fresh event loop."""
    return await asyncpg.connect(
        settings.database_url,
        command_timeout=settings.db_worker_statement_timeout_ms / 1000 + 5,
        server_settings=server_settings(settings, role=role),
    )
