"""Reliability W7: ticket state only moves forward, whatever order the versions arrive in.

Hypothesis draws k versions of one ticket with non-decreasing `updated_at` (ties included, and
sometimes none at all), then delivers a random sequence holding every version at least once plus
duplicates: one at a time, several to a batch, or from 4 connections at once. The stored row must
be the version with the greatest `(updated_at, payload_hash)`, the order `db/queries/items.py`
promises, and no error (a unique violation from two first inserts racing) may escape.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db.queries.items import payload_hash, upsert_items
from schemas.items import ItemCreate
from schemas.settings import Settings

START = datetime(2026, 11, 2, tzinfo=UTC)
_keys = itertools.count()


def version(key: str, n: int, hours: int | None) -> ItemCreate:
    return ItemCreate.model_validate(
        {
            "source": "zendesk",
            "external_id": key,
            "kind": "ticket",
            "title": f"version {n}",
            "body": f"body of version {n}",
            "created_at": START.isoformat(),
            "updated_at": (START + timedelta(hours=hours)).isoformat() if hours is not None else None,
            "status": "open",
        }
    )


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[int | None], list[int], str, int]:
    """(hours of each version, the order they arrive in, how they arrive, batch size)."""
    k = draw(st.integers(2, 6))
    steps = draw(st.lists(st.integers(0, 1), min_size=k, max_size=k))  # 0: the same updated_at
    hours: list[int | None] = list(itertools.accumulate(steps))
    if draw(st.booleans()):
        hours[0] = None  # a version without updated_at is older than any with one
    extra = draw(st.lists(st.integers(0, k - 1), max_size=6))
    order = draw(st.permutations(list(range(k)) + extra))
    mode = draw(st.sampled_from(["one at a time", "batches", "4 connections"]))
    return hours, list(order), mode, draw(st.integers(2, 4))


async def _deliver(url: str, items: list[ItemCreate], mode: str, batch: int) -> str | None:
    async def send(conn: asyncpg.Connection, chunk: list[ItemCreate]) -> None:
        async with conn.transaction():
            await upsert_items(conn, items=chunk)

    conns = [await asyncpg.connect(url) for _ in range(4 if mode == "4 connections" else 1)]
    try:
        if mode == "one at a time":
            for item in items:
                await send(conns[0], [item])
        elif mode == "batches":
            for start in range(0, len(items), batch):
                await send(conns[0], items[start : start + batch])
        else:

            async def lane(conn: asyncpg.Connection, mine: list[ItemCreate]) -> None:
                for item in mine:
                    await send(conn, [item])

            await asyncio.gather(*(lane(conn, items[i::4]) for i, conn in enumerate(conns)))
        stored: str | None = await conns[0].fetchval(
            "SELECT title FROM item WHERE external_id = $1", items[0].external_id
        )
        return stored
    finally:
        for conn in conns:
            await conn.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=deliveries())
def test_the_stored_row_is_the_newest_version_in_any_delivery_order(
    migrated: Settings, case: tuple[list[int | None], list[int], str, int]
) -> None:
    hours, order, mode, batch = case
    key = f"w7-{next(_keys)}"
    versions = [version(key, n, h) for n, h in enumerate(hours)]
    newest = max(
        range(len(versions)),
        key=lambda n: (
            START + timedelta(hours=h) if (h := hours[n]) is not None else datetime.min.replace(tzinfo=UTC),
            payload_hash(versions[n]),
        ),
    )
    stored = asyncio.run(_deliver(migrated.database_url, [versions[n] for n in order], mode, batch))
    assert stored == f"version {newest}", (hours, order, mode)
