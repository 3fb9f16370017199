"""Fields derived from an item's status history: first and last solve, reopens, current status.

Two implementations of one definition (spec/metrics.md). The SQL one refreshes stored items from
their whole stored history; it runs for items that already existed. The Python one computes the
same values from a single incoming version, so a new item is written once, complete, instead of
being inserted and then rewritten (a second write touches every index on item: it was a third of
a bulk request's time). tests/api/test_status_derived.py holds the two to each other.

Events are ordered by (at, to_status_raw, from_status_raw) in byte order, nulls first, so ties
resolve the same way in both.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from schemas.items import OPEN_STATUSES, SOLVED_STATUSES, ItemCreate, normalise_status

REFRESH_DERIVED = """
WITH ev AS (
    SELECT item_id, at, to_status, to_status_raw, from_status_raw,
           coalesce(from_status, lag(to_status) OVER w) AS prev
    FROM status_event WHERE item_id = ANY($1::bigint[])
    WINDOW w AS (PARTITION BY item_id
                 ORDER BY at, to_status_raw COLLATE "C", from_status_raw COLLATE "C" NULLS FIRST)
), agg AS (
    SELECT item_id,
           min(at) FILTER (WHERE to_status IN ('solved', 'closed')
                           AND (prev IS NULL OR prev NOT IN ('solved', 'closed'))) AS first_solved,
           max(at) FILTER (WHERE to_status IN ('solved', 'closed')
                           AND (prev IS NULL OR prev NOT IN ('solved', 'closed'))) AS last_solved,
           count(*) FILTER (WHERE prev IN ('solved', 'closed')
                            AND to_status IN ('new', 'open', 'pending', 'on_hold')) AS reopens,
           (array_agg(to_status ORDER BY at DESC, to_status_raw COLLATE "C" DESC,
                      from_status_raw COLLATE "C" DESC NULLS LAST))[1] AS latest_status,
           (array_agg(to_status_raw ORDER BY at DESC, to_status_raw COLLATE "C" DESC,
                      from_status_raw COLLATE "C" DESC NULLS LAST))[1] AS latest_raw,
           max(at) AS latest_at
    FROM ev GROUP BY item_id
),
calc AS (
    SELECT ids.item_id,
           CASE WHEN agg.item_id IS NOT NULL THEN agg.first_solved
                WHEN i.status IN ('solved', 'closed') THEN i.source_updated_at END AS first_solved_at,
           CASE WHEN agg.item_id IS NOT NULL THEN agg.last_solved
                WHEN i.status IN ('solved', 'closed') THEN i.source_updated_at END AS last_solved_at,
           CASE WHEN agg.item_id IS NOT NULL THEN agg.reopens
                ELSE coalesce(i.reopens_reported, 0) END AS reopen_count,
           CASE WHEN agg.latest_status IS NOT NULL AND agg.latest_at >= coalesce(i.source_updated_at, '-infinity')
                THEN agg.latest_status ELSE i.status END AS status,
           CASE WHEN agg.latest_status IS NOT NULL AND agg.latest_at >= coalesce(i.source_updated_at, '-infinity')
                THEN agg.latest_raw ELSE i.status_raw END AS status_raw
    FROM (SELECT unnest($1::bigint[]) AS item_id) ids
    JOIN item i ON i.item_id = ids.item_id
    LEFT JOIN agg ON agg.item_id = ids.item_id
)
-- Only rows whose derived values change are written: every write touches all of item's indexes.
UPDATE item i SET first_solved_at = c.first_solved_at, last_solved_at = c.last_solved_at,
    reopen_count = c.reopen_count, status = c.status, status_raw = c.status_raw
FROM calc c
WHERE i.item_id = c.item_id
  AND (i.first_solved_at, i.last_solved_at, i.reopen_count, i.status, i.status_raw)
      IS DISTINCT FROM (c.first_solved_at, c.last_solved_at, c.reopen_count, c.status, c.status_raw)
"""


class Derived(NamedTuple):  # made for every item of a bulk request: a tuple is cheapest
    first_solved_at: datetime | None
    last_solved_at: datetime | None
    reopen_count: int
    status: str | None
    status_raw: str | None


def derive(item: ItemCreate) -> Derived:
    """The derived fields of an item whose stored history is exactly its own status events."""
    # Stored events are unique on (at, from raw, to raw): repeats in one payload are one event.
    if len(item.status_events) == 1:  # the common case: no repeats to drop, nothing to order
        only = item.status_events[0]
        events = [(only.at, only.from_status, only.to_status)]
    else:
        unique = {(e.at, e.from_status, e.to_status) for e in item.status_events}
        events = sorted(unique, key=lambda e: (e[0], e[2], e[1] is not None, e[1] or ""))
    if not events:
        solved = normalise_status(item.status) in SOLVED_STATUSES
        return Derived(
            first_solved_at=item.updated_at if solved else None,
            last_solved_at=item.updated_at if solved else None,
            reopen_count=item.reopens or 0,
            status=normalise_status(item.status),
            status_raw=item.status,
        )
    solves: list[datetime] = []
    reopens = 0
    previous_to: str | None = None
    for at, from_raw, to_raw in events:
        to_status = normalise_status(to_raw)
        from_status = normalise_status(from_raw)
        prev = from_status if from_status is not None else previous_to
        if to_status in SOLVED_STATUSES and prev not in SOLVED_STATUSES:
            solves.append(at)
        if prev in SOLVED_STATUSES and to_status in OPEN_STATUSES:
            reopens += 1
        previous_to = to_status
    latest_at, _, latest_raw = events[-1]
    latest = normalise_status(latest_raw)
    use_latest = latest is not None and (item.updated_at is None or latest_at >= item.updated_at)
    return Derived(
        first_solved_at=min(solves) if solves else None,
        last_solved_at=max(solves) if solves else None,
        reopen_count=reopens,
        status=latest if use_latest else normalise_status(item.status),
        status_raw=latest_raw if use_latest else item.status,
    )
