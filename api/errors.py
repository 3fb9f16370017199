"""Errors and the one envelope every error response uses: {"error": code, "detail": message}.

AppError (500 internal_error)
├── BadRequest (400 bad_request)
├── Unauthorized (401 unauthorized)
├── Forbidden (403 forbidden)
├── NotFound (404 not_found)
├── Conflict (409 conflict)
├── PayloadTooLarge (413 payload_too_large)
├── UnsupportedMediaType (415 unsupported_media_type)
├── Unprocessable (422 validation_error)
├── RateLimited (429 rate_limited, Retry-After)
└── ServiceUnavailable (503 service_unavailable, Retry-After)
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)


class AppError(Exception):
    status_code = 500
    code = "internal_error"
    description = "Internal server error"  # what the status means, in the OpenAPI document
    headers: dict[str, str] | None = None

    def __init__(self, detail: Any = "Internal server error") -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"
    description = "Malformed request (bad JSON)"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"
    description = "Missing, invalid or revoked credential"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    description = "The key lacks the scope this route needs"


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    description = "No such resource"


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    description = "Conflicts with the current state"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    description = "Body or item count past a limit"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported_media_type"
    description = "Unsupported content type"


class Unprocessable(AppError):
    status_code = 422
    code = "validation_error"
    description = "Validation failed; `detail` lists the problems"


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"
    description = "Rate limited; retry after Retry-After seconds"

    def __init__(self, detail: Any, retry_after: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"
    description = "A store is unavailable; retry after Retry-After seconds"
    headers = {"Retry-After": "5"}


def _error_classes() -> list[type[AppError]]:
    found, todo = [], [AppError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


class Problem(BaseModel):
    """One validation problem (422): where, what kind, and a message."""

    type: str
    loc: list[str | int]
    msg: str


class ErrorEnvelope(BaseModel):
    """The body of every error response."""

    error: str
    detail: str | list[Problem]


# Declared on every route by create_app, so the OpenAPI document describes the error answers
# (clients and the contract fuzz see one envelope, not FastAPI's default 422 model).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    cls.status_code: {"model": ErrorEnvelope, "description": cls.description}
    for cls in sorted(_error_classes(), key=lambda c: c.status_code)
    if cls is not AppError
}


def envelope(status_code: int, code: str, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": code, "detail": jsonable_encoder(detail)},
        status_code=status_code,
        headers=headers,
    )


# The code of each status, from the error classes themselves (plus the two statuses only the
# framework raises), so a new class is the only edit a new status needs.
_HTTP_CODES: dict[int, str] = {
    405: "method_not_allowed",
    406: "not_acceptable",
    **{cls.status_code: cls.code for cls in _error_classes() if cls is not AppError},
}


def code_for_status(status_code: int) -> str:
    return _HTTP_CODES.get(status_code, "http_error")


# Database trouble that a retry later can fix: tell senders to come back (503 + Retry-After).
_DB_UNAVAILABLE = (
    OSError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.DeadlockDetectedError,  # one of two writers is rolled back: its retry goes through
    asyncpg.exceptions.SerializationError,
    TimeoutError,
)


def _clean_validation_errors(errors: Any) -> list[dict[str, Any]]:
    cleaned = []
    for err in errors:
        entry = {k: err[k] for k in ("type", "loc", "msg") if k in err}
        cleaned.append(entry)
    return cleaned


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route answers on this path (Starlette's 405 names only one route's)."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


def _is_dead_connection(exc: BaseException) -> bool:
    """asyncpg's words when the server went away under a connection (see ``on_interface_error``).

    Also its protocol's own error when the next statement finds the connection still waiting out
    an error the server sent before it went away ("cannot switch to state 12; another operation
    (2) is in progress", 2 being the state that consumes an error): the 2-hour soak met it once,
    at its Postgres restart (bench/RESULTS.md, 2026-12-08). The statement was never sent.
    """
    message = str(exc)
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return message.startswith("cannot switch to state") or message == "not connected"
    return (
        isinstance(exc, asyncpg.exceptions.InterfaceError)
        and "connection" in message
        and any(w in message for w in ("closed", "lost", "released back to the pool"))
    )


def _raised_by_an_outage(exc: BaseException) -> bool:
    """Whether a database outage is behind ``exc``: it is one, or was raised while handling one.

    An error that cleanup code raises after the connection died (a rollback on a dead
    connection, a group of failed tasks) is the outage's consequence, not our bug: the client
    gets 503 and retries. Our own bugs carry no outage in their chain and stay 500.
    """
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _DB_UNAVAILABLE) or _is_dead_connection(current):
            return True
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False


def install_error_handlers(app: FastAPI) -> None:
    async def on_app_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AppError)
        return envelope(exc.status_code, exc.code, exc.detail, exc.headers)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = code_for_status(exc.status_code)
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return envelope(exc.status_code, code, exc.detail, headers)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return envelope(422, "validation_error", _clean_validation_errors(exc.errors()))

    async def on_db_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        return envelope(503, "service_unavailable", "Database unavailable, retry later", {"Retry-After": "5"})

    async def on_nul_in_text(request: Request, exc: Exception) -> JSONResponse:
        # Postgres text cannot hold U+0000; a query parameter or a field that reaches SQL with one
        # is the client's data, not our failure.
        problem = {"type": "string_type", "loc": ["request"], "msg": "Text must not contain NUL (U+0000)"}
        return envelope(422, "validation_error", [problem])

    async def on_interface_error(request: Request, exc: Exception) -> JSONResponse:
        # asyncpg says "connection is closed" when the server went away under a pooled
        # connection, and "released back to the pool" when it went away between two statements
        # (asyncpg detaches a dead connection from the request that holds it): a retry will find
        # a new one. Any other InterfaceError is our own bug.
        if _is_dead_connection(exc):
            return await on_db_unavailable(request, exc)
        return await on_unknown(request, exc)

    async def on_unknown(request: Request, exc: Exception) -> JSONResponse:
        # The outage types have handlers of their own above (answered inside the app, so the
        # client's keep-alive connection survives); this catches what an outage left behind.
        if _raised_by_an_outage(exc):
            return await on_db_unavailable(request, exc)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return envelope(500, "internal_error", "Internal server error")

    app.add_exception_handler(AppError, on_app_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(asyncpg.exceptions.CharacterNotInRepertoireError, on_nul_in_text)
    for exc_type in _DB_UNAVAILABLE:
        app.add_exception_handler(exc_type, on_db_unavailable)
    app.add_exception_handler(asyncpg.exceptions.InterfaceError, on_interface_error)
    app.add_exception_handler(Exception, on_unknown)
