"""Webhook connections: one per sender, each with one or two signing secrets (rotation).

Secrets are shown once, in the response that creates them, and stored sealed (api/secrets.py).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.cursors import decode_cursor, encode_cursor
from api.deps import AdminKey, AppSettings, DbConn, RowId
from api.errors import Conflict, NotFound, Unprocessable
from api.secrets import new_secret, seal
from connectors.signatures import standard_webhooks_key
from db.queries.connections import (
    MAX_ACTIVE_SECRETS,
    delete_connection_secret,
    insert_connection,
    insert_connection_secret,
    select_connection_vendor,
    select_connections,
)
from schemas.connections import (
    Connection,
    ConnectionCreate,
    ConnectionCreated,
    ConnectionPage,
    SecretCreate,
    SecretCreated,
)

router = APIRouter(prefix="/v1/connections", tags=["connections"])


def webhook_url(request: Request, connection_id: uuid.UUID) -> str:
    return f"{str(request.base_url).rstrip('/')}/v1/webhooks/{connection_id}"


def checked_secret(vendor: str, secret: str | None) -> str:
    """The caller's secret, or a generated one. `generic` signs the Standard Webhooks way, whose
    key is the base64 part of `whsec_<base64>`: refuse a secret that could never verify."""
    if secret is None:
        return new_secret()
    if vendor == "generic":
        key = standard_webhooks_key(secret.encode())
        if key is None or len(key) < 16:
            raise Unprocessable(
                [{"type": "value_error", "loc": ["body", "secret"],
                  "msg": "generic secrets are whsec_ followed by base64 of at least 16 bytes"}]
            )  # fmt: skip
    return secret


def _parse_connection_id(connection_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(connection_id)
    except ValueError:
        raise NotFound(f"Connection {connection_id} does not exist.") from None


@router.post("", status_code=201)
async def create_connection(
    body: ConnectionCreate, request: Request, conn: DbConn, settings: AppSettings, _: AdminKey
) -> ConnectionCreated:
    """Register a webhook sender; the secret is in this response only."""
    connection_id = uuid.uuid4()
    secret = checked_secret(body.vendor, body.secret)
    sealed = seal(settings.secret_key, connection_id=connection_id, secret=secret)
    async with conn.transaction():
        created_at, info = await insert_connection(
            conn, connection_id=connection_id, vendor=body.vendor, name=body.name, sealed=sealed
        )
    return ConnectionCreated(
        connection_id=connection_id,
        vendor=body.vendor,
        name=body.name,
        webhook_url=webhook_url(request, connection_id),
        created_at=created_at,
        secret_id=info.secret_id,
        secret=secret,
    )


def _encode_cursor(last: uuid.UUID) -> str:
    return encode_cursor(str(last))


def _decode_cursor(cursor: str | None) -> uuid.UUID | None:
    if not cursor:
        return None
    (last,) = decode_cursor(cursor, str)
    try:
        return uuid.UUID(last)
    except ValueError:
        raise Unprocessable(
            [{"type": "value_error", "loc": ["query", "cursor"], "msg": "cursor is not a connection id"}]
        ) from None


@router.get("")
async def list_connections(
    request: Request,
    conn: DbConn,
    _: AdminKey,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ConnectionPage:
    """Connections with their secret ids (never the secrets), last delivery time and counts."""
    rows = await select_connections(conn, after=_decode_cursor(cursor), limit=limit)
    data = [
        Connection(
            connection_id=r.connection_id,
            vendor=r.vendor,
            name=r.name,
            webhook_url=webhook_url(request, r.connection_id),
            created_at=r.created_at,
            secrets=r.secrets,
            last_delivery_at=r.last_delivery_at,
            deliveries=r.deliveries,
        )
        for r in rows
    ]
    next_cursor = _encode_cursor(rows[-1].connection_id) if len(rows) == limit else None
    return ConnectionPage(data=data, next_cursor=next_cursor)


@router.post("/{connection_id}/secrets", status_code=201)
async def create_connection_secret(
    connection_id: str, body: SecretCreate, conn: DbConn, settings: AppSettings, _: AdminKey
) -> SecretCreated:
    """Add a secret for rotation: both are accepted until one is revoked. Past two, the oldest goes."""
    cid = _parse_connection_id(connection_id)
    async with conn.transaction():
        vendor = await select_connection_vendor(conn, connection_id=cid)
        if vendor is None:
            raise NotFound(f"Connection {connection_id} does not exist.")
        secret = checked_secret(vendor, body.secret)
        added = await insert_connection_secret(
            conn, connection_id=cid, sealed=seal(settings.secret_key, connection_id=cid, secret=secret)
        )
    if added is None:
        raise NotFound(f"Connection {connection_id} does not exist.")
    info, dropped = added
    return SecretCreated(
        secret_id=info.secret_id, created_at=info.created_at, secret=secret, dropped_secret_ids=dropped
    )


@router.delete("/{connection_id}/secrets/{secret_id}", status_code=204, response_class=Response)
async def delete_connection_secret_route(connection_id: str, secret_id: RowId, conn: DbConn, _: AdminKey) -> Response:
    """Revoke a secret; deliveries signed with it are refused from the next request on."""
    cid = _parse_connection_id(connection_id)
    async with conn.transaction():
        result = await delete_connection_secret(conn, connection_id=cid, secret_id=secret_id)
    if result == "not_found":
        raise NotFound(f"Secret {secret_id} of connection {connection_id} does not exist.")
    if result == "last":
        raise Conflict(
            f"Secret {secret_id} is the connection's only secret; add a new one first "
            f"(a connection holds at most {MAX_ACTIVE_SECRETS})."
        )
    return Response(status_code=204)
