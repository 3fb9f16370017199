"""Report cache statements (migration 0017): read, claim a rebuild, lock a build, store. Policy:
api/report_cache.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from db.pool import hold_session_state

# What a report is built on besides the items: curation decisions (each undo is a new change too),
# finished clustering runs and the current intent model. All three are small or indexed maxima.
# One round trip: that version, and the stored report under the key, if any.
_LOOKUP = """
WITH state AS (
    SELECT concat_ws(':',
        (SELECT coalesce(max(change_id), 0) FROM curation_change),
        (SELECT coalesce(max(run_id), 0) FROM clustering_run WHERE status = 'done'),
        (SELECT coalesce(max(model_id), 0) FROM intent_model WHERE current)) AS version
)
SELECT state.version, c.version AS stored_version, c.body,
       extract(epoch FROM clock_timestamp() - c.computed_at)::float8 AS age_s, c.cost_ms,
       coalesce(c.refreshing_until > clock_timestamp(), false) AS refreshing
FROM state LEFT JOIN report_cache c ON c.key = $1
"""


@dataclass(frozen=True)
class CachedReport:
    version: str
    body: str
    age_s: float
    cost_ms: float
    refreshing: bool


async def select_cached_report(conn: asyncpg.Connection, key: str) -> tuple[str, CachedReport | None]:
    """The state's version now ("change:run:model"), and the report stored under `key`, if any,
    with the version it was built on."""
    row = await conn.fetchrow(_LOOKUP, key)
    assert row is not None
    if row["stored_version"] is None:
        return row["version"], None
    stored = CachedReport(row["stored_version"], row["body"], row["age_s"], row["cost_ms"], row["refreshing"])
    return row["version"], stored


async def claim_report_rebuild(conn: asyncpg.Connection, key: str, *, for_s: float) -> bool:
    """True for the one reader that should rebuild a stale report; the claim lapses after `for_s`."""
    claimed = await conn.fetchval(
        "UPDATE report_cache SET refreshing_until = clock_timestamp() + make_interval(secs => $2)"
        " WHERE key = $1 AND (refreshing_until IS NULL OR refreshing_until < clock_timestamp()) RETURNING true",
        key,
        for_s,
    )
    return bool(claimed)


# Advisory locks (namespace, key) for builds of one report; a collision of two keys' 32 bits only
# makes their builds take turns. The pool resets a connection that took one (`hold_session_state`),
# so its release unlocks whatever a request left.
_BUILD_LOCK_NAMESPACE = 7_301_017


def _build_lock_id(key: str) -> int:
    return int.from_bytes(bytes.fromhex(key[:8]), "big", signed=True)


async def lock_report_build(conn: asyncpg.Connection, key: str) -> None:
    """Wait until no other reader is building the report under `key`, then hold that right. The
    wait is bounded by the statement timeout (QueryCanceledError)."""
    hold_session_state(conn)
    await conn.execute("SELECT pg_advisory_lock($1, $2)", _BUILD_LOCK_NAMESPACE, _build_lock_id(key))


async def unlock_report_build(conn: asyncpg.Connection, key: str) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1, $2)", _BUILD_LOCK_NAMESPACE, _build_lock_id(key))


async def upsert_cached_report(
    conn: asyncpg.Connection, key: str, *, version: str, body: str, computed_at: datetime, cost_ms: float, keep_s: float
) -> None:
    """Store the report, and drop entries nobody could still be served (older than `keep_s`)."""
    await conn.execute(
        "INSERT INTO report_cache (key, version, body, computed_at, cost_ms) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (key) DO UPDATE SET version = excluded.version, body = excluded.body,"
        " computed_at = excluded.computed_at, cost_ms = excluded.cost_ms, refreshing_until = NULL"
        " WHERE report_cache.computed_at <= excluded.computed_at",
        key, version, body, computed_at, cost_ms,
    )  # fmt: skip
    await conn.execute(
        "DELETE FROM report_cache WHERE computed_at < clock_timestamp() - make_interval(secs => $1)", keep_s
    )
