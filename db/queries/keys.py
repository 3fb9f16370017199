"""API key statements. Only a SHA-256 hash of each key is stored."""

from __future__ import annotations

import asyncpg

from schemas.keys import ApiKey


def _to_key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(**dict(row))


_COLUMNS = "api_key_id, name, prefix, scopes, created_at, revoked_at"


async def insert_api_key(
    conn: asyncpg.Connection, *, name: str, prefix: str, key_hash: bytes, scopes: list[str]
) -> ApiKey:
    row = await conn.fetchrow(
        f"INSERT INTO api_key (name, prefix, key_hash, scopes) VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}",
        name, prefix, key_hash, scopes,
    )  # fmt: skip
    assert row is not None
    return _to_key(row)


async def select_active_key_by_hash(conn: asyncpg.Connection, *, key_hash: bytes) -> ApiKey | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM api_key WHERE key_hash = $1 AND revoked_at IS NULL", key_hash)
    return _to_key(row) if row else None


async def select_api_keys(conn: asyncpg.Connection) -> list[ApiKey]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM api_key ORDER BY api_key_id")
    return [_to_key(r) for r in rows]


async def update_api_key_revoked(conn: asyncpg.Connection, *, api_key_id: int) -> ApiKey | None:
    row = await conn.fetchrow(
        f"UPDATE api_key SET revoked_at = coalesce(revoked_at, now()) WHERE api_key_id = $1 RETURNING {_COLUMNS}",
        api_key_id,
    )
    return _to_key(row) if row else None
