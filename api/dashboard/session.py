"""Dashboard sign-in: an API key (read scope or admin) is exchanged for a session cookie.

The cookie holds a random token, never the key; the database holds only the token's SHA-256,
joined on every request to the key it was opened with, so revoking the key signs its sessions
out at once (db/migrations/0004_dashboard.sql).

Cookie flags: HttpOnly, SameSite=Lax, Path=/, and Secure unless the request is plain HTTP to a
loopback address outside production (the dev server and the tests on 127.0.0.1). A plain-HTTP
request to any other host still gets a Secure cookie, which the browser then does not send back
over HTTP: run the dashboard behind TLS anywhere but on your own machine.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from typing import Annotated

import asyncpg
from fastapi import Depends, Request, Response

from api.auth import Principal, hash_key
from api.deps import DbConn
from db.queries.dashboard_sessions import (
    delete_dashboard_session,
    delete_expired_dashboard_sessions,
    insert_dashboard_session,
    select_dashboard_session,
)
from schemas.settings import Settings

COOKIE_NAME = "dashboard_session"
SESSION_TTL_S = 12 * 3600


class SignInRequired(Exception):
    """No live session: the page answers 401 with the sign-in form (api/routes/dashboard.py)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message)
        self.message = message


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_secure_cookie(request: Request, settings: Settings) -> bool:
    if request.url.scheme == "https" or settings.is_production:
        return True
    return not _is_loopback(request.url.hostname)


def set_session_cookie(response: Response, request: Request, settings: Settings, token: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=SESSION_TTL_S,
        path="/",
        secure=is_secure_cookie(request, settings),
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, request: Request, settings: Settings) -> None:
    response.delete_cookie(
        COOKIE_NAME, path="/", secure=is_secure_cookie(request, settings), httponly=True, samesite="lax"
    )


def _bootstrap_hash(settings: Settings) -> bytes | None:
    return hash_key(settings.admin_api_key.get_secret_value()) if settings.admin_api_key else None


async def open_session(conn: asyncpg.Connection, *, principal: Principal, settings: Settings) -> str:
    """A new session for a verified key; returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    async with conn.transaction():
        await delete_expired_dashboard_sessions(conn)
        await insert_dashboard_session(
            conn,
            token_hash=token_hash(token),
            api_key_id=principal.api_key_id,
            bootstrap_key_hash=_bootstrap_hash(settings) if principal.api_key_id is None else None,
            ttl_s=SESSION_TTL_S,
        )
    return token


async def close_session(conn: asyncpg.Connection, request: Request) -> None:
    token = request.cookies.get(COOKIE_NAME)
    if token:
        await delete_dashboard_session(conn, token_hash=token_hash(token))


async def current_viewer(request: Request, conn: DbConn) -> Principal:
    """The signed-in viewer, or SignInRequired. Only read access is ever granted here."""
    token = request.cookies.get(COOKIE_NAME)
    if not token:
        raise SignInRequired()
    session = await select_dashboard_session(conn, token_hash=token_hash(token))
    if session is None:
        raise SignInRequired("Your session has ended (signed out, expired, or its key was revoked).")
    if session.api_key_id is None:
        settings: Settings = request.state.settings
        current = _bootstrap_hash(settings)
        # A bootstrap session lives only as long as the ADMIN_API_KEY it was opened with.
        if current is None or session.bootstrap_key_hash is None:
            raise SignInRequired("Your session has ended: the admin key it was opened with changed.")
        if not hmac.compare_digest(current, session.bootstrap_key_hash):
            raise SignInRequired("Your session has ended: the admin key it was opened with changed.")
        return Principal(api_key_id=None, scopes=frozenset({"admin"}))
    principal = Principal(api_key_id=session.api_key_id, scopes=frozenset(session.scopes))
    if not principal.allows("read"):
        raise SignInRequired("This key no longer has the read scope.")
    return principal


Viewer = Annotated[Principal, Depends(current_viewer)]
