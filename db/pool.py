"""The asyncpg pool for the API, with server-side time limits (reliability D1/D2)."""

from __future__ import annotations

import asyncpg

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
    )
    assert pool is not None
    return pool


async def connect(settings: Settings, *, role: str = "worker") -> asyncpg.Connection:
    """One connection for a job or a loop: RQ runs each async job in a fresh event loop."""
    return await asyncpg.connect(
        settings.database_url,
        command_timeout=settings.db_worker_statement_timeout_ms / 1000 + 5,
        server_settings=server_settings(settings, role=role),
    )
