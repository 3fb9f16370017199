"""Connection and connection-secret statements. Secrets arrive and leave sealed (api/secrets.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg

from schemas.connections import DeliveryCounts, SecretInfo, Vendor

MAX_ACTIVE_SECRETS = 2


@dataclass(frozen=True)
class ConnectionRow:
    connection_id: UUID
    vendor: Vendor
    name: str
    created_at: datetime
    secrets: list[SecretInfo]
    last_delivery_at: datetime | None
    deliveries: DeliveryCounts


@dataclass(frozen=True)
class SealedSecrets:
    """What the webhook route needs: the vendor and the sealed secrets, newest first."""

    vendor: str
    sealed: list[bytes]


async def insert_connection(
    conn: asyncpg.Connection, *, connection_id: UUID, vendor: str, name: str, sealed: bytes
) -> tuple[datetime, SecretInfo]:
    """Create the connection with its first secret; call inside a transaction."""
    created_at: datetime = await conn.fetchval(
        "INSERT INTO connection (connection_id, vendor, name) VALUES ($1, $2, $3) RETURNING created_at",
        connection_id, vendor, name,
    )  # fmt: skip
    row = await conn.fetchrow(
        "INSERT INTO connection_secret (connection_id, sealed) VALUES ($1, $2)"
        " RETURNING connection_secret_id, created_at",
        connection_id, sealed,
    )  # fmt: skip
    assert row is not None
    return created_at, SecretInfo(secret_id=row["connection_secret_id"], created_at=row["created_at"])


async def select_connection_secrets(conn: asyncpg.Connection, *, connection_id: UUID) -> SealedSecrets | None:
    """The hot path of every webhook: one indexed read, no cache, so a revocation counts at once."""
    row = await conn.fetchrow(
        "SELECT c.vendor, array_remove(array_agg(s.sealed ORDER BY s.connection_secret_id DESC), NULL) AS sealed"
        " FROM connection c LEFT JOIN connection_secret s USING (connection_id)"
        " WHERE c.connection_id = $1 GROUP BY c.vendor",
        connection_id,
    )
    if row is None:
        return None
    return SealedSecrets(vendor=row["vendor"], sealed=list(row["sealed"]))


async def select_connection_vendor(conn: asyncpg.Connection, *, connection_id: UUID) -> Vendor | None:
    vendor: Vendor | None = await conn.fetchval("SELECT vendor FROM connection WHERE connection_id = $1", connection_id)
    return vendor


async def insert_connection_secret(
    conn: asyncpg.Connection, *, connection_id: UUID, sealed: bytes
) -> tuple[SecretInfo, list[int]] | None:
    """Add a secret and drop the oldest beyond MAX_ACTIVE_SECRETS; None if no such connection.

    Call inside a transaction: the connection row is locked so two concurrent rotations cannot
    leave three active secrets.
    """
    found = await conn.fetchval("SELECT 1 FROM connection WHERE connection_id = $1 FOR UPDATE", connection_id)
    if found is None:
        return None
    row = await conn.fetchrow(
        "INSERT INTO connection_secret (connection_id, sealed) VALUES ($1, $2)"
        " RETURNING connection_secret_id, created_at",
        connection_id, sealed,
    )  # fmt: skip
    assert row is not None
    dropped = await conn.fetch(
        "DELETE FROM connection_secret WHERE connection_secret_id IN ("
        " SELECT connection_secret_id FROM connection_secret WHERE connection_id = $1"
        " ORDER BY connection_secret_id DESC OFFSET $2)"
        " RETURNING connection_secret_id",
        connection_id, MAX_ACTIVE_SECRETS,
    )  # fmt: skip
    info = SecretInfo(secret_id=row["connection_secret_id"], created_at=row["created_at"])
    return info, sorted(r["connection_secret_id"] for r in dropped)


async def delete_connection_secret(
    conn: asyncpg.Connection, *, connection_id: UUID, secret_id: int
) -> Literal["deleted", "not_found", "last"]:
    """Revoke one secret; "last" means refused: a connection always keeps one secret.

    Call inside a transaction (the connection row is locked, as in insert_connection_secret).
    """
    found = await conn.fetchval("SELECT 1 FROM connection WHERE connection_id = $1 FOR UPDATE", connection_id)
    if found is None:
        return "not_found"
    ids = [
        r["connection_secret_id"]
        for r in await conn.fetch(
            "SELECT connection_secret_id FROM connection_secret WHERE connection_id = $1", connection_id
        )
    ]
    if secret_id not in ids:
        return "not_found"
    if len(ids) == 1:
        return "last"
    await conn.execute(
        "DELETE FROM connection_secret WHERE connection_id = $1 AND connection_secret_id = $2",
        connection_id, secret_id,
    )  # fmt: skip
    return "deleted"


_LIST = """
SELECT c.connection_id, c.vendor, c.name, c.created_at,
       coalesce((SELECT array_agg(s.connection_secret_id ORDER BY s.connection_secret_id)
                 FROM connection_secret s WHERE s.connection_id = c.connection_id), '{}') AS secret_ids,
       coalesce((SELECT array_agg(s.created_at ORDER BY s.connection_secret_id)
                 FROM connection_secret s WHERE s.connection_id = c.connection_id), '{}') AS secret_times,
       (SELECT max(d.received_at) FROM delivery d WHERE d.connection_id = c.connection_id) AS last_delivery_at,
       coalesce((SELECT jsonb_object_agg(status, n) FROM (
                    SELECT d.status, count(*) AS n FROM delivery d
                    WHERE d.connection_id = c.connection_id GROUP BY d.status) counts), '{}') AS counts
FROM connection c
WHERE c.connection_id > $1
ORDER BY c.connection_id
LIMIT $2
"""


async def select_connections(conn: asyncpg.Connection, *, after: UUID | None, limit: int) -> list[ConnectionRow]:
    """Connections in id order after `after` (keyset pagination), with delivery counts per status."""
    rows = await conn.fetch(_LIST, after or UUID(int=0), limit)
    return [
        ConnectionRow(
            connection_id=r["connection_id"],
            vendor=r["vendor"],
            name=r["name"],
            created_at=r["created_at"],
            secrets=[
                SecretInfo(secret_id=i, created_at=t) for i, t in zip(r["secret_ids"], r["secret_times"], strict=True)
            ],
            last_delivery_at=r["last_delivery_at"],
            deliveries=DeliveryCounts.model_validate_json(r["counts"]),
        )
        for r in rows
    ]
