"""Import state: one row per (vendor, account) with its resume cursor and counts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True)
class ImportState:
    import_id: int
    vendor: str
    account: str
    since: datetime
    cursor: dict[str, Any] | None
    status: str
    reconcile: bool
    pages: int
    items_seen: int
    items_created: int
    items_updated: int
    last_error: str | None
    reconciled_at: datetime | None
    reconcile_runs: int
    reconcile_missed: int


_COLUMNS = """import_id, vendor, account, since, cursor, status, reconcile, pages, items_seen, items_created,
    items_updated, last_error, reconciled_at, reconcile_runs, reconcile_missed"""


def _state(row: asyncpg.Record) -> ImportState:
    values = dict(row)
    values["cursor"] = json.loads(values["cursor"]) if values["cursor"] is not None else None
    return ImportState(**values)


async def upsert_import_state(
    conn: asyncpg.Connection, *, vendor: str, account: str, since: datetime, reconcile: bool, restart: bool
) -> ImportState:
    """The row for this account, created if new. `restart` forgets the cursor and takes `since`;
    otherwise an existing row keeps its cursor (resume) and its `since`."""
    row = await conn.fetchrow(
        f"INSERT INTO import_state (vendor, account, since, reconcile) VALUES ($1, $2, $3, $4)"
        f" ON CONFLICT (vendor, account) DO UPDATE SET"
        f" since = CASE WHEN $5 THEN EXCLUDED.since ELSE import_state.since END,"
        f" cursor = CASE WHEN $5 THEN NULL ELSE import_state.cursor END,"
        f" reconcile = import_state.reconcile OR EXCLUDED.reconcile, updated_at = now()"
        f" RETURNING {_COLUMNS}",
        vendor,
        account,
        since,
        reconcile,
        restart,
    )
    assert row is not None
    return _state(row)


async def update_import_started(conn: asyncpg.Connection, *, import_id: int) -> None:
    await conn.execute(
        "UPDATE import_state SET status = 'running', started_at = now(), finished_at = NULL, last_error = NULL,"
        " updated_at = now() WHERE import_id = $1",
        import_id,
    )


async def update_import_page(
    conn: asyncpg.Connection, *, import_id: int, cursor: dict[str, Any] | None, seen: int, created: int, updated: int
) -> None:
    """Record one written page and where the next starts; call in the page's transaction."""
    await conn.execute(
        "UPDATE import_state SET cursor = $2::jsonb, pages = pages + 1, items_seen = items_seen + $3,"
        " items_created = items_created + $4, items_updated = items_updated + $5, updated_at = now()"
        " WHERE import_id = $1",
        import_id,
        json.dumps(cursor) if cursor is not None else None,
        seen,
        created,
        updated,
    )


async def update_import_finished(
    conn: asyncpg.Connection, *, import_id: int, error: str | None, resume_since: datetime | None = None
) -> None:
    """Done or failed. A finished import whose last page left no cursor resumes next time from
    `resume_since` (when this run started, less an overlap)."""
    await conn.execute(
        "UPDATE import_state SET status = CASE WHEN $2::text IS NULL THEN 'done' ELSE 'failed' END,"
        " last_error = $2, finished_at = now(), updated_at = now(),"
        " since = CASE WHEN $3::timestamptz IS NOT NULL AND cursor IS NULL THEN $3 ELSE since END"
        " WHERE import_id = $1",
        import_id,
        error,
        resume_since,
    )


async def update_reconciled(conn: asyncpg.Connection, *, import_id: int, missed: int, error: str | None) -> None:
    await conn.execute(
        "UPDATE import_state SET reconciled_at = now(), reconcile_runs = reconcile_runs + 1,"
        " reconcile_missed = reconcile_missed + $2, last_error = $3, updated_at = now() WHERE import_id = $1",
        import_id,
        missed,
        error,
    )


async def select_import_states(conn: asyncpg.Connection, *, reconcile_only: bool = False) -> list[ImportState]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM import_state WHERE NOT $1 OR reconcile ORDER BY import_id", reconcile_only
    )
    return [_state(r) for r in rows]


async def claim_due_reconciles(conn: asyncpg.Connection, *, every_s: int) -> list[int]:
    """Accounts due for reconciling, claimed at once (many relays may ask; one gets each)."""
    rows = await conn.fetch(
        "UPDATE import_state SET reconciled_at = now() WHERE reconcile AND status <> 'running'"
        " AND (reconciled_at IS NULL OR reconciled_at < now() - make_interval(secs => $1))"
        " RETURNING import_id",
        float(every_s),
    )
    return sorted(r["import_id"] for r in rows)
