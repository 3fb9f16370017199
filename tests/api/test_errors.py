"""Database trouble maps to 503 + Retry-After; our own misuse of a connection stays a 500.

Seen in the long fault run: Postgres restarted between a request's key lookup and its insert, and
asyncpg detached the dead connection from the request ("released back to the pool").
"""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from api.errors import install_error_handlers


async def answer_to(error: Exception) -> httpx.Response:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/boom")


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("cannot call Connection.transaction(): connection has been released back to the pool", 503),
        ("connection is closed", 503),
        ("connection was closed in the middle of operation", 503),
        ("cannot perform operation: another operation is in progress", 500),
    ],
)
async def test_interface_errors_from_a_dead_connection_are_503(message: str, status: int) -> None:
    resp = await answer_to(asyncpg.InterfaceError(message))
    assert resp.status_code == status
    assert resp.json()["error"] == ("service_unavailable" if status == 503 else "internal_error")
    assert (resp.headers.get("retry-after") is not None) == (status == 503)


@pytest.mark.parametrize("error", [asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError])
async def test_a_transaction_rolled_back_by_a_conflict_is_503(error: type[Exception]) -> None:
    resp = await answer_to(error("deadlock detected"))
    assert resp.status_code == 503 and resp.headers["retry-after"]


async def test_an_error_raised_while_handling_an_outage_is_503() -> None:
    """Cleanup that fails after the connection died (here a RuntimeError) is the outage's fault."""
    try:
        try:
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
        except asyncpg.exceptions.ConnectionDoesNotExistError as lost:
            raise RuntimeError("unable to perform operation on <TCPTransport closed=True>") from lost
    except RuntimeError as error:
        resp = await answer_to(error)
    assert resp.status_code == 503 and resp.headers["retry-after"]


async def test_a_group_of_outage_errors_is_503_and_a_group_with_a_bug_is_500() -> None:
    lost = asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command")
    assert (await answer_to(ExceptionGroup("tasks", [lost]))).status_code == 503
    assert (await answer_to(ExceptionGroup("tasks", [KeyError("x")]))).status_code == 500


async def test_our_own_bug_stays_500() -> None:
    try:
        try:
            raise KeyError("missing")
        except KeyError as first:
            raise ValueError("bad state") from first
    except ValueError as error:
        resp = await answer_to(error)
    assert resp.status_code == 500 and resp.json()["error"] == "internal_error"


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("cannot switch to state 12; another operation (2) is in progress", 503),  # the soak's
        ('cannot switch to state 12; protocol is in the "failed" state', 503),
        ("not connected", 503),
        ("unexpected message", 500),
    ],
)
async def test_a_connection_left_mid_error_by_an_outage_is_503(message: str, status: int) -> None:
    # At the 2-hour soak's Postgres restart a webhook's lookup found its pooled connection still
    # consuming an error the server sent before it shut down; that gave a 500.
    resp = await answer_to(asyncpg.exceptions.InternalClientError(message))
    assert resp.status_code == status
    assert (resp.headers.get("retry-after") is not None) == (status == 503)
