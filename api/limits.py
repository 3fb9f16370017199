"""Request-body limits counted on the streamed bytes, not on a Content-Length the client sets."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.settings import Settings


def body_limit_for(path: str, settings: Settings) -> int:
    if path.startswith("/v1/items/bulk"):
        return settings.max_request_bytes
    if path.startswith("/v1/webhooks/"):
        return settings.max_webhook_bytes
    return settings.max_item_request_bytes


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit_for(scope["path"], self.settings)
        too_large = HTTPException(413, detail=f"Request body is larger than the limit of {limit} bytes")
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    # Checked again by counting below: a lying Content-Length gains nothing.
                    scope.setdefault("state", {})["body_too_large"] = True
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen
            if scope.get("state", {}).get("body_too_large"):
                raise too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large
            return message

        await self.app(scope, counted_receive, send)
