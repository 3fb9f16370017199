"""Reuse of expensive reports, so report reads cannot take Postgres from ingest.

A report is built from a scan of the items in its window: milliseconds on a small install,
seconds at millions of items. Read twenty times a second, the scans would take every core and
the webhooks would wait for a connection. So a report whose build took at least
`report_reuse_min_ms` is stored (Postgres, table report_cache, shared by every API process) and
served again while its age is under `report_reuse_cost_ratio` times its build cost, at most
`report_reuse_max_s`: each distinct report then costs Postgres at most about 1/ratio of a core.
Cheaper reports are always built fresh. A stored report answers only for the curation,
clustering and intent state it was built on, so a rename, merge, run or new model shows at once;
new items show within the age limit. `generated_at` in the body says when it was built, and the
`Age` header how many seconds ago. When a stored report goes stale, one reader rebuilds it and
the others are served the stored one meanwhile.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
from fastapi import Request, Response
from pydantic import BaseModel

from api.csv_export import wants_csv
from db.queries.report_cache import claim_report_rebuild, select_cached_report, upsert_cached_report
from schemas.settings import Settings

Report = TypeVar("Report", bound=BaseModel)


def cache_key(request: Request) -> str:
    """The path and its query, order-free: two spellings of one report share an entry."""
    query = "&".join(f"{k}={v}" for k, v in sorted(request.query_params.multi_items()))
    return hashlib.sha256(f"{request.url.path}?{query}".encode()).hexdigest()


def reuse_for_s(settings: Settings, cost_ms: float) -> float:
    """How long a report that cost `cost_ms` to build may be served again (0: never stored)."""
    if settings.report_reuse_max_s <= 0 or cost_ms < settings.report_reuse_min_ms:
        return 0.0
    return min(settings.report_reuse_max_s, settings.report_reuse_cost_ratio * cost_ms / 1000)


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
    key = cache_key(request)
    version, stored = await select_cached_report(conn, key)
    if stored is not None:
        fresh = stored.age_s < reuse_for_s(settings, stored.cost_ms)
        # stale: the first reader rebuilds, the rest are served the stored report meanwhile
        rebuild_s = 2 * stored.cost_ms / 1000 + 1
        if fresh or stored.refreshing or not await claim_report_rebuild(conn, key, for_s=rebuild_s):
            if wants_csv(request):
                response = answer(model.model_validate_json(stored.body))
            else:
                response = Response(stored.body, media_type="application/json")
            response.headers["Age"] = str(int(stored.age_s))
            return response
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    report = await build()
    cost_ms = (time.perf_counter() - started) * 1000
    if reuse_for_s(settings, cost_ms) > 0:
        body = report.model_dump_json(exclude_unset=True, by_alias=True)
        await upsert_cached_report(
            conn, key, version=version, body=body, computed_at=started_at, cost_ms=cost_ms,
            keep_s=settings.report_reuse_max_s * 2,
        )  # fmt: skip
    return answer(report)
