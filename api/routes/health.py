from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from db.migrate import pending_migrations
from db.queries.work import WorkLag, select_work_lag
from outbox.queues import redis_problem
from schemas.settings import Settings

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def get_health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Something the service needs is missing"}})
async def get_readiness(request: Request) -> JSONResponse:
    """Postgres and Redis reachable, migrations applied, a worker alive; and the work backlog."""
    settings: Settings = request.state.settings
    checks: dict[str, str] = {}
    lag: WorkLag | None = None
    try:
        async with request.state.pool.acquire(timeout=2) as conn:
            pending = await pending_migrations(conn)
            checks["postgres"] = "ok"
            checks["migrations"] = "ok" if not pending else f"pending: {', '.join(pending)}"
            alive = await conn.fetchval(
                "SELECT count(*) FROM worker_heartbeat WHERE seen_at > now() - interval '60 seconds'"
            )
            checks["worker"] = "ok" if alive else "no worker seen in the last 60 s"
            lag = await select_work_lag(conn)
    except Exception as exc:  # any failure here is "not ready", never a 500
        checks.setdefault("postgres", f"unreachable: {type(exc).__name__}")
    try:
        problem = await asyncio.wait_for(asyncio.to_thread(redis_problem, request.state.redis), timeout=2)
        checks["redis"] = problem or "ok"
    except Exception as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values()) and len(checks) == 4
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": checks,
        "environment": settings.environment,
        # Informational: a backlog does not make the service unready (ingest keeps acking).
        "lag": lag.model_dump() if lag is not None else None,
    }
    return JSONResponse(body, status_code=200 if ready else 503)
