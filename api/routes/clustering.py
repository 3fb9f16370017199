from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from redis.exceptions import RedisError

from api.deps import AdminKey, AppSettings, DbConn, ReadKey, RedisClient, RowId
from api.errors import Conflict, NotFound
from db.queries.runs import insert_run, select_run, select_runs
from outbox.queues import CLUSTERING_QUEUE, enqueue
from schemas.themes import Run, RunCreate, RunCreated, RunPage

router = APIRouter(prefix="/v1/clustering", tags=["clustering"])


@router.post("/runs", status_code=202)
async def create_run(
    conn: DbConn,
    redis: RedisClient,
    settings: AppSettings,
    _: AdminKey,
    body: Annotated[RunCreate | None, Body()] = None,
) -> RunCreated:
    """Start re-clustering now; 409 while a run of the same scope is queued or running."""
    scope = body.scope if body else "all"
    async with conn.transaction():
        run_id = await insert_run(conn, scope=scope, trigger="manual")
    if run_id is None:
        raise Conflict(f"A clustering run for scope '{scope}' is already queued or running.")
    try:  # after the commit; if Redis is down the relay re-enqueues queued runs
        enqueue(
            redis, settings, CLUSTERING_QUEUE, "workers.themes.cluster_items", run_id,
            job_id=f"cluster-{run_id}", timeout=settings.cluster_job_timeout_s,
        )  # fmt: skip
    except RedisError:
        pass
    return RunCreated(run_id=run_id)


@router.get("/runs/{run_id}")
async def get_run(run_id: RowId, conn: DbConn, _: ReadKey) -> Run:
    run = await select_run(conn, run_id=run_id)
    if run is None:
        raise NotFound(f"Clustering run {run_id} does not exist.")
    return run


@router.get("/runs")
async def list_runs(
    conn: DbConn,
    _: ReadKey,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="list runs older than this run id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> RunPage:
    data = await select_runs(conn, before_id=cursor, limit=limit)
    return RunPage(data=data, next_cursor=str(data[-1].run_id) if len(data) == limit else None)
