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
reader's scan at once. When there is nothing to serve (a report not built for minutes, or built
before an edit), one reader builds it and the others wait for its result (an advisory lock), so
an edit at a busy hour or a cold start does not start every reader's scan either; a report that
turns out cheap is noted as such, and its readers then build it at once instead of taking turns.
New items show within the age limit. `generated_at` in the body says when it was built, and the
`Age` header how many seconds ago. A rebuild that hits the statement timeout serves the stale
report rather than a 503.

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
from functools import partial
from typing import TypeVar

import asyncpg
from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from api.csv_export import wants_csv
from db.queries.report_cache import (
    CachedReport,
    claim_report_rebuild,
    lock_report_build,
    select_cached_report,
    unlock_report_build,
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
    it), the stale body this reader is rebuilding, served if the rebuild runs out of time, and
    whether this reader holds the key's build lock (released by `keep` or `release`)."""

    key: str
    version: str
    stored: CachedReport | None
    stale: CachedReport | None = None
    locked: bool = False


def _curation(version: str) -> str:
    return version.split(":", 1)[0]


def _cheap(settings: Settings, stored: CachedReport) -> bool:
    """A note that the report is cheap to build (see `keep`), or stored under settings that now
    call it cheap: built by every reader, never served."""
    return reuse_for_s(settings, stored.cost_ms) <= 0


async def look_up(request: Request, conn: asyncpg.Connection, settings: Settings) -> Lookup:
    """The stored body if it may be served: fresh, or stale while another reader rebuilds it.
    A stale one with nobody rebuilding is claimed, and this reader builds it."""
    key = cache_key(request)
    version, stored = await select_cached_report(conn, key)
    if stored is not None and _cheap(settings, stored):
        return Lookup(key, version, None)  # noted as cheap: every reader builds it
    if stored is None or _curation(stored.version) != _curation(version):
        # Nothing to serve: not built for minutes, or built before a person's edit (never served,
        # so the edit shows at once). One reader builds it and the others wait for that build
        # rather than scan too; waiting is bounded by the statement timeout.
        await lock_report_build(conn, key)
        version, stored = await select_cached_report(conn, key)
        if stored is None or _curation(stored.version) != _curation(version):
            return Lookup(key, version, None, locked=True)
        await unlock_report_build(conn, key)  # another reader built it meanwhile
        if _cheap(settings, stored):
            return Lookup(key, version, None)
    # Stale when old, or built before the last clustering run or intent model. One reader rebuilds
    # it and the rest are served it meanwhile: a run's end would otherwise start every reader's scan.
    fresh = stored.version == version and stored.age_s < reuse_for_s(settings, stored.cost_ms)
    rebuild_s = 2 * stored.cost_ms / 1000 + 1
    if fresh or stored.refreshing or not await claim_report_rebuild(conn, key, for_s=rebuild_s):
        return Lookup(key, version, stored)
    return Lookup(key, version, None, stale=stored)


async def _built(
    conn: asyncpg.Connection, found: Lookup, build: Callable[[], Awaitable[T]]
) -> tuple[T | CachedReport, datetime, float]:
    """`build()` with when it started and what it cost, or the stale body this reader was
    rebuilding if the build hit the statement timeout: a report a few minutes old, with its Age,
    is worth more to its reader than a 503. The build lock goes if the build fails."""
    started_at, started = datetime.now(UTC), time.perf_counter()
    try:
        return await build(), started_at, (time.perf_counter() - started) * 1000
    except asyncpg.QueryCanceledError:
        if found.stale is None:
            await release(conn, found)
            raise
        log.warning("report rebuild ran out of time; serving the stored one (%.0f s old)", found.stale.age_s)
        return found.stale, started_at, 0.0
    except BaseException:
        await release(conn, found)
        raise


async def keep(
    conn: asyncpg.Connection,
    settings: Settings,
    found: Lookup,
    body: Callable[[], str] | None,
    started_at: datetime,
    cost_ms: float,
) -> None:
    """Store the body built for `found` (`body` None: not storable) if it cost enough to be worth
    serving again, then let the readers waiting for it have it. A build that this reader did
    alone but that is not worth storing leaves a note instead (empty body, cost 0), so later
    readers build it at once rather than take turns; the note goes with the store's other old
    entries, and the next build after that measures the cost again."""
    try:
        text = body() if body is not None and reuse_for_s(settings, cost_ms) > 0 else None
        if text is not None or found.locked:
            await upsert_cached_report(
                conn, found.key, version=found.version, body=text or "", computed_at=started_at,
                cost_ms=cost_ms if text is not None else 0.0, keep_s=settings.report_reuse_max_s * 2,
            )  # fmt: skip
    finally:
        await release(conn, found)


async def release(conn: asyncpg.Connection, found: Lookup) -> None:
    """Give up the build lock, if held. On a broken connection the lock went with it (and the
    pool's reset unlocks whatever a request left), so a failure here is only logged."""
    if not found.locked:
        return
    try:
        await unlock_report_build(conn, found.key)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("report build lock not released (%s); the connection's reset frees it", type(exc).__name__)


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
    report, started_at, cost_ms = await _built(conn, found, build)
    if isinstance(report, CachedReport):
        return _serve_report(request, model, answer, report)
    as_json = partial(report.model_dump_json, exclude_unset=True, by_alias=True)
    await keep(conn, settings, found, as_json, started_at, cost_ms)
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
    page, started_at, cost_ms = await _built(conn, found, build)
    if isinstance(page, CachedReport):
        return _with_age(HTMLResponse(page.body, headers=headers), page)
    html = bytes(page.body).decode()
    await keep(conn, settings, found, (lambda: html) if page.status_code == 200 else None, started_at, cost_ms)
    return page
