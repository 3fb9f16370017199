"""Reuse of expensive reports, so report reads cannot take Postgres from ingest.

A report is built from a scan of the items in its window: milliseconds on a small install,
seconds at millions of items. Read twenty times a second, the scans would take every core and
the webhooks would wait for a connection. So a report whose build took at least
`report_reuse_min_ms` is stored (Postgres, table report_cache, shared by every API process) and
served again while its age is under `report_reuse_cost_ratio` times its build cost, at most
`report_reuse_max_s`: each distinct report then costs Postgres at most about 1/ratio of a core.
Cheaper reports are always built fresh. A stored report answers only for the curation state it
was built on, so a person's rename, merge or split shows at once. It goes stale with age, or
when a clustering run ends or a new intent model becomes current; then one reader rebuilds it
and the others are served the stored one meanwhile, so the end of a run does not start every
reader's scan at once. New items show within the age limit. `generated_at` in the body says
when it was built, and the `Age` header how many seconds ago. A rebuild that hits the statement
timeout serves the stale report rather than a 503.

The dashboard's weekly pages are the same reports drawn for every signed-in viewer, so their HTML
is reused the same way (`cached_page`); pages that differ by viewer (a theme's items, with or
without personal data, and its curation controls) are always built.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from api.csv_export import wants_csv
from db.queries.report_cache import (
    CachedReport,
    claim_report_rebuild,
    select_cached_report,
    upsert_cached_report,
)
from schemas.settings import Settings

Report = TypeVar("Report", bound=BaseModel)
T = TypeVar("T")
log = logging.getLogger(__name__)


def cache_key(request: Request) -> str:
    """The path and its query, order-free: two spellings of one report share an entry."""
    query = "&".join(f"{k}={v}" for k, v in sorted(request.query_params.multi_items()))
    return hashlib.sha256(f"{request.url.path}?{query}".encode()).hexdigest()


def reuse_for_s(settings: Settings, cost_ms: float) -> float:
    """How long a report that cost `cost_ms` to build may be served again (0: never stored)."""
    if settings.report_reuse_max_s <= 0 or cost_ms < settings.report_reuse_min_ms:
        return 0.0
    return min(settings.report_reuse_max_s, settings.report_reuse_cost_ratio * cost_ms / 1000)


@dataclass(frozen=True)
class Lookup:
    """What a read found: its key, the state's version now, a stored body to serve (None: build
    it), and the stale body this reader is rebuilding, served if the rebuild runs out of time."""

    key: str
    version: str
    stored: CachedReport | None
    stale: CachedReport | None = None


def _curation(version: str) -> str:
    return version.split(":", 1)[0]


async def look_up(request: Request, conn: asyncpg.Connection, settings: Settings) -> Lookup:
    """The stored body if it may be served: fresh, or stale while another reader rebuilds it.
    A stale one with nobody rebuilding is claimed, and this reader builds it."""
    key = cache_key(request)
    version, stored = await select_cached_report(conn, key)
    if stored is None or _curation(stored.version) != _curation(version):
        return Lookup(key, version, None)  # a person's edit shows at once: built before it, never served
    # Stale when old, or built before the last clustering run or intent model. One reader rebuilds
    # it and the rest are served it meanwhile: a run's end would otherwise start every reader's scan.
    fresh = stored.version == version and stored.age_s < reuse_for_s(settings, stored.cost_ms)
    rebuild_s = 2 * stored.cost_ms / 1000 + 1
    if fresh or stored.refreshing or not await claim_report_rebuild(conn, key, for_s=rebuild_s):
        return Lookup(key, version, stored)
    return Lookup(key, version, None, stale=stored)


async def _built_or_stale(found: Lookup, build: Callable[[], Awaitable[T]]) -> T | CachedReport:
    """`build()`, or the stale body this reader was rebuilding if the build hit the statement
    timeout: a report a few minutes old, with its Age, is worth more to its reader than a 503."""
    try:
        return await build()
    except asyncpg.QueryCanceledError:
        if found.stale is None:
            raise
        log.warning("report rebuild ran out of time; serving the stored one (%.0f s old)", found.stale.age_s)
        return found.stale


async def keep(
    conn: asyncpg.Connection, settings: Settings, found: Lookup, body: str, started_at: datetime, cost_ms: float
) -> None:
    """Store a body built for `found` if it cost enough to be worth serving again."""
    if reuse_for_s(settings, cost_ms) > 0:
        await upsert_cached_report(
            conn, found.key, version=found.version, body=body, computed_at=started_at, cost_ms=cost_ms,
            keep_s=settings.report_reuse_max_s * 2,
        )  # fmt: skip


def _with_age(response: Response, stored: CachedReport) -> Response:
    response.headers["Age"] = str(int(stored.age_s))
    return response


def _serve_report(
    request: Request, model: type[Report], answer: Callable[[Report], Response], stored: CachedReport
) -> Response:
    if wants_csv(request):
        return _with_age(answer(model.model_validate_json(stored.body)), stored)
    return _with_age(Response(stored.body, media_type="application/json"), stored)


async def cached_report(
    request: Request,
    conn: asyncpg.Connection,
    settings: Settings,
    model: type[Report],
    build: Callable[[], Awaitable[Report]],
    answer: Callable[[Report], Response],
) -> Response:
    """The report, built or stored, as `answer` writes it (JSON or CSV), with `Age` when stored.

    A stored report is answered in JSON as the stored text itself, without parsing it again."""
    if settings.report_reuse_max_s <= 0:
        return answer(await build())
    found = await look_up(request, conn, settings)
    if found.stored is not None:
        return _serve_report(request, model, answer, found.stored)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    report = await _built_or_stale(found, build)
    if isinstance(report, CachedReport):
        return _serve_report(request, model, answer, report)
    cost_ms = (time.perf_counter() - started) * 1000
    if reuse_for_s(settings, cost_ms) > 0:
        body = report.model_dump_json(exclude_unset=True, by_alias=True)
        await keep(conn, settings, found, body, started_at, cost_ms)
    return answer(report)


async def cached_page(
    request: Request,
    conn: asyncpg.Connection,
    settings: Settings,
    build: Callable[[], Awaitable[Response]],
    headers: dict[str, str],
) -> Response:
    """A dashboard page that is the same for every signed-in viewer, built or stored like a
    report; only a 200 page is stored, and a stored one is answered with `headers` and `Age`."""
    if settings.report_reuse_max_s <= 0:
        return await build()
    found = await look_up(request, conn, settings)
    if found.stored is not None:
        return _with_age(HTMLResponse(found.stored.body, headers=headers), found.stored)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    page = await _built_or_stale(found, build)
    if isinstance(page, CachedReport):
        return _with_age(HTMLResponse(page.body, headers=headers), page)
    cost_ms = (time.perf_counter() - started) * 1000
    if page.status_code == 200:
        await keep(conn, settings, found, bytes(page.body).decode(), started_at, cost_ms)
    return page
