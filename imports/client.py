"""One HTTP client for every vendor API: paced to the vendor's documented rate, 429-aware.

Requests are spaced at least `60 / rate_per_minute` seconds apart (as fast as the vendor's limit
allows, and no faster). A 429, or a 403 that says the rate limit is spent, waits what the vendor
asks (`Retry-After`, Help Scout's `X-RateLimit-Retry-After`, or an `X-RateLimit-Reset` epoch) and
tries again; a 5xx backs off exponentially. 401 and other 403s mean the token was refused: the
import stops there with a clear error, and its cursor stays where the last page was written.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx


class ImportFailed(Exception):
    """The import cannot go on; the message says why (never the token)."""


class TokenRejected(ImportFailed):
    pass


Sleep = Callable[[float], Awaitable[None]]


class VendorClient:
    """Paced, retrying requests against one vendor account.

    Args:
        http: The client (its base URL, auth headers and timeouts set by the caller).
        rate_per_minute: The vendor's documented request budget.
        max_retries: Retries of one request after 429s and 5xx answers.
        max_wait_s: A rate-limit wait longer than this stops the import (resume later).
        sleep: Injected for tests; `asyncio.sleep` by default.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        rate_per_minute: float,
        max_retries: int = 6,
        max_wait_s: float = 900.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.http = http
        self.account = ""  # owner/repo where the vendor's paths need it (GitHub)
        self.interval = 60.0 / rate_per_minute
        self.max_retries = max_retries
        self.max_wait_s = max_wait_s
        self._sleep = sleep
        self._next_at = 0.0
        self.requests = 0
        self.waited_s = 0.0

    async def _pace(self) -> None:
        now = time.monotonic()
        if self._next_at > now:
            await self._sleep(self._next_at - now)
        self._next_at = max(now, self._next_at) + self.interval

    async def get(self, url: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        return await self.request("GET", url, params=params)

    async def request(
        self, method: str, url: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            await self._pace()
            self.requests += 1
            try:
                response = await self.http.request(method, url, params=params, json=json)
            except httpx.TransportError as exc:
                if attempt == self.max_retries:
                    raise ImportFailed(f"{method} {_path(url)} failed: {type(exc).__name__}") from exc
                await self._wait(min(2.0**attempt, 60.0))
                continue
            if response.status_code == 429 or (response.status_code == 403 and _is_rate_limited(response)):
                wait = retry_after(response)
                if wait > self.max_wait_s:
                    raise ImportFailed(f"rate limited for {wait:.0f} s; run the import again later to resume")
                if attempt < self.max_retries:
                    await self._wait(wait)
                    continue
            if response.status_code in (401, 403):
                raise TokenRejected(
                    f"{method} {_path(url)} answered {response.status_code}: the token was refused"
                    " (revoked, expired or without access); the import resumes from its last page with a new one"
                )
            if response.status_code >= 500 and attempt < self.max_retries:
                await self._wait(min(2.0**attempt, 60.0))
                continue
            if response.status_code >= 400:
                raise ImportFailed(f"{method} {_path(url)} answered {response.status_code}")
            return response
        raise ImportFailed(f"{method} {_path(url)} still failing after {self.max_retries} retries")

    async def _wait(self, seconds: float) -> None:
        self.waited_s += seconds
        await self._sleep(seconds)
        self._next_at = time.monotonic() + self.interval


def _path(url: str) -> str:
    return httpx.URL(url).path


def _is_rate_limited(response: httpx.Response) -> bool:
    # GitHub answers 403 with x-ratelimit-remaining: 0 (primary) or a Retry-After (secondary).
    return response.headers.get("x-ratelimit-remaining") == "0" or "retry-after" in response.headers


def retry_after(response: httpx.Response, default: float = 60.0) -> float:
    """Seconds the vendor asks us to wait before the next request."""
    headers = response.headers
    for name in ("retry-after", "x-ratelimit-retry-after"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - time.time())
    reset = headers.get("x-ratelimit-reset")
    if reset is not None:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            pass
    return default
