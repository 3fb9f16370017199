"""Clustering-run statements. A run row is the record of a run; RQ only carries it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from schemas.themes import Run

_COLUMNS = """run_id, scope, status, trigger, items, themes, unassigned, kept_share, ari, timings, error,
    created_at, started_at, finished_at"""


def _to_run(row: asyncpg.Record) -> Run:
    data = dict(row)
    data["timings"] = json.loads(data["timings"]) if isinstance(data["timings"], str) else data["timings"]
    return Run(**data)


async def insert_run(conn: asyncpg.Connection, *, scope: str, trigger: str) -> int | None:
    """A queued run, or None when one is already queued or running for this scope."""
    run_id: int | None = await conn.fetchval(
        "INSERT INTO clustering_run (scope, trigger) VALUES ($1, $2)"
        " ON CONFLICT (scope) WHERE status IN ('queued', 'running') DO NOTHING RETURNING run_id",
        scope,
        trigger,
    )
    return run_id


async def select_run(conn: asyncpg.Connection, *, run_id: int) -> Run | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM clustering_run WHERE run_id = $1", run_id)
    return _to_run(row) if row else None


async def select_runs(conn: asyncpg.Connection, *, before_id: int | None, limit: int) -> list[Run]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM clustering_run WHERE $1::bigint IS NULL OR run_id < $1 ORDER BY run_id DESC LIMIT $2",
        before_id,
        limit,
    )
    return [_to_run(r) for r in rows]


async def update_run_started(conn: asyncpg.Connection, *, run_id: int) -> bool:
    status: str = await conn.execute(
        "UPDATE clustering_run SET status = 'running', started_at = now(), error = NULL"
        " WHERE run_id = $1 AND status IN ('queued', 'running')",
        run_id,
    )
    return status.endswith(" 1")


async def update_run_done(
    conn: asyncpg.Connection,
    *,
    run_id: int,
    items: int,
    themes: int,
    unassigned: int,
    kept_share: float | None,
    ari: float | None,
    timings: dict[str, Any],
) -> None:
    await conn.execute(
        "UPDATE clustering_run SET status = 'done', finished_at = now(), items = $2, themes = $3,"
        " unassigned = $4, kept_share = $5, ari = $6, timings = $7::jsonb WHERE run_id = $1",
        run_id, items, themes, unassigned, kept_share, ari, json.dumps(timings),
    )  # fmt: skip


async def select_last_digest(conn: asyncpg.Connection, *, scope: str) -> bytes | None:
    """The input digest of the scope's last finished run."""
    digest: bytes | None = await conn.fetchval(
        "SELECT input_digest FROM clustering_run WHERE scope = $1 AND status = 'done'"
        " ORDER BY finished_at DESC LIMIT 1",
        scope,
    )
    return digest


async def update_run_digest(conn: asyncpg.Connection, *, run_id: int, digest: bytes) -> None:
    await conn.execute("UPDATE clustering_run SET input_digest = $2 WHERE run_id = $1", run_id, digest)


async def update_run_failed(conn: asyncpg.Connection, *, run_id: int, error: str) -> None:
    await conn.execute(
        "UPDATE clustering_run SET status = 'failed', finished_at = now(), error = $2 WHERE run_id = $1",
        run_id,
        error[:4000],
    )


async def select_stale_queued_runs(conn: asyncpg.Connection, *, older_than_s: float) -> list[Run]:
    """Queued runs whose job never started (Redis lost it): to enqueue again."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM clustering_run WHERE status = 'queued'"
        " AND created_at < now() - make_interval(secs => $1)",
        float(older_than_s),
    )
    return [_to_run(r) for r in rows]


async def select_clustering_due(conn: asyncpg.Connection, *, scope: str, every_new_items: int, every_s: int) -> bool:
    """Whether an automatic run is due: enough newly embedded items, or the schedule has come round."""
    row = await conn.fetchrow(
        "SELECT (SELECT max(started_at) FROM clustering_run WHERE scope = $1 AND status = 'done') AS last,"
        " EXISTS (SELECT 1 FROM clustering_run WHERE scope = $1 AND status IN ('queued', 'running')) AS busy",
        scope,
    )
    assert row is not None
    if row["busy"]:
        return False
    last = row["last"]
    new_items: int = await conn.fetchval(
        "SELECT count(*) FROM (SELECT 1 FROM item WHERE embedded_at IS NOT NULL AND deleted_at IS NULL"
        " AND ($1::timestamptz IS NULL OR embedded_at > $1)"
        " AND ($2 = 'all' OR intent = 'feature_request') LIMIT $3) s",
        last,
        scope,
        every_new_items,
    )
    overdue: bool = last is not None and await conn.fetchval(
        "SELECT $1 < now() - make_interval(secs => $2)", last, float(every_s)
    )
    if overdue and new_items > 0:
        return True
    # While an import is still being embedded, wait: a run now would cluster a partial picture and
    # the next one would have to move it again. Not past the schedule (above): under ingest that
    # the workers never catch up with, the themes would otherwise never be refreshed.
    backlog: int = await conn.fetchval(
        "SELECT count(*) FROM (SELECT 1 FROM item WHERE pending AND deleted_at IS NULL LIMIT $1) s", every_new_items
    )
    return backlog < every_new_items and new_items >= every_new_items


# One writer of a scope's theme assignments at a time: a clustering run, or the back-fill of a
# person's theme. A session advisory lock, taken on the job's own connection (never a pooled one,
# whose reset would drop it); a killed worker's session ends and frees it.
SCOPE_LOCK = 7_301_002
_SCOPE_KEYS = {"all": 1, "feature": 2}


async def wait_for_scope(conn: asyncpg.Connection, *, scope: str, poll_s: float = 1.0) -> None:
    """Take the scope's lock, waiting while another run or back-fill holds it. Polls, so no
    statement waits past the statement timeout; the job's own timeout bounds the wait."""
    while not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", SCOPE_LOCK, _SCOPE_KEYS[scope]):
        await asyncio.sleep(poll_s)


async def unlock_scope(conn: asyncpg.Connection, *, scope: str) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1, $2)", SCOPE_LOCK, _SCOPE_KEYS[scope])
