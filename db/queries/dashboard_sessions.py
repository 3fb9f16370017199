"""Dashboard sign-in sessions: hashed tokens with an expiry, tied to the API key that signed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class SessionRow:
    api_key_id: int | None
    scopes: list[str]  # empty for a bootstrap session: the bootstrap key is admin
    bootstrap_key_hash: bytes | None
    expires_at: datetime


async def insert_dashboard_session(
    conn: asyncpg.Connection,
    *,
    token_hash: bytes,
    api_key_id: int | None,
    bootstrap_key_hash: bytes | None,
    ttl_s: int,
) -> None:
    await conn.execute(
        "INSERT INTO dashboard_session (token_hash, api_key_id, bootstrap_key_hash, expires_at)"
        " VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
        token_hash, api_key_id, bootstrap_key_hash, float(ttl_s),
    )  # fmt: skip


async def delete_expired_dashboard_sessions(conn: asyncpg.Connection) -> None:
    await conn.execute("DELETE FROM dashboard_session WHERE expires_at < now()")


async def select_dashboard_session(conn: asyncpg.Connection, *, token_hash: bytes) -> SessionRow | None:
    """The live session for this token: not expired, and its key (if any) not revoked."""
    row = await conn.fetchrow(
        "SELECT s.api_key_id, coalesce(k.scopes, '{}') AS scopes, s.bootstrap_key_hash, s.expires_at"
        " FROM dashboard_session s LEFT JOIN api_key k ON k.api_key_id = s.api_key_id"
        " WHERE s.token_hash = $1 AND s.expires_at > now()"
        " AND (s.api_key_id IS NULL OR k.revoked_at IS NULL)",
        token_hash,
    )
    if row is None:
        return None
    return SessionRow(row["api_key_id"], list(row["scopes"]), row["bootstrap_key_hash"], row["expires_at"])


async def delete_dashboard_session(conn: asyncpg.Connection, *, token_hash: bytes) -> None:
    await conn.execute("DELETE FROM dashboard_session WHERE token_hash = $1", token_hash)
