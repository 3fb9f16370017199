"""The back-fill of a person's theme: embed its description and examples, make the seed, then let
past items whose cosine to the seed reaches the theme's threshold join it, batch by batch, with
the progress in theme_backfill. Items a person pinned elsewhere stay where they were put.

Each batch is one transaction that also appends what it moved to the theme's `create` change, so
undoing that change puts every joined item back. An undo meanwhile stops the job at the next batch.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import numpy as np

from db.pool import connect
from db.queries.backfill import (
    select_backfill_job,
    select_scan_batch,
    select_scan_total,
    update_backfill_finished,
    update_backfill_progress,
    update_backfill_started,
    update_theme_seed,
)
from db.queries.curation import (
    StoredChange,
    column_for,
    lock_change,
    select_items_for_curation,
    select_pins,
    update_change_undo,
    update_items_theme,
    update_theme_sizes,
)
from db.queries.runs import unlock_scope, wait_for_scope
from db.queries.theme_split import select_theme_vectors
from schemas.settings import get_settings
from workers.jobs import get_embedder

log = logging.getLogger(__name__)


async def backfill_theme(theme_id: int) -> str:
    """Back-fill person's theme `theme_id`; returns the final status. Running it again after it
    finished does nothing; after a failure it starts over (items already joined stay)."""
    settings = get_settings()
    conn = await connect(settings)
    try:
        job = await select_backfill_job(conn, theme_id=theme_id)
        if job is None or job.status in ("done", "cancelled"):
            return "skipped"
        # Not beside a clustering run of the scope: a run that read before the seed was stored
        # would write its plan over the items this joins.
        await wait_for_scope(conn, scope=job.scope)
        try:
            again = await select_backfill_job(conn, theme_id=theme_id)  # another job may have done it
            if again is None or again.status in ("done", "cancelled"):
                return "skipped"
            status = await _run(conn, theme_id, settings.curation_backfill_batch)
        except Exception as exc:
            log.exception("back-fill of theme %s failed", theme_id)
            await update_backfill_finished(
                conn, theme_id=theme_id, status="failed", error=f"{type(exc).__name__}: {exc}"
            )
            raise
        finally:
            await unlock_scope(conn, scope=job.scope)
        await update_backfill_finished(conn, theme_id=theme_id, status=status)
        return status
    finally:
        await conn.close()


async def _run(conn: asyncpg.Connection, theme_id: int, batch: int) -> str:
    settings = get_settings()
    job = await select_backfill_job(conn, theme_id=theme_id)
    assert job is not None
    change = await lock_change(conn, change_id=job.change_id)
    if change is None or change.undone or not job.is_current:
        return "cancelled"
    embedder = get_embedder(settings)
    texts = [t for t in [job.description, *change.detail.get("examples", [])] if t]
    pinned = await select_theme_vectors(conn, item_ids=[i for i in change.item_ids])
    parts = [embedder.embed(texts)] if texts else []
    if len(pinned.item_ids):
        parts.append(pinned.vectors)
    if not parts:
        parts.append(embedder.embed([job.label]))
    vectors = np.concatenate(parts).astype(np.float64)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    seed = vectors.mean(axis=0)
    seed = (seed / max(float(np.linalg.norm(seed)), 1e-12)).astype(np.float32)
    await update_theme_seed(conn, theme_id=theme_id, seed=seed)

    column = column_for(job.scope)
    total = await select_scan_total(conn, scope=job.scope, model_version=embedder.model_version)
    await update_backfill_started(conn, theme_id=theme_id, total=total)
    scanned = joined = 0
    after = 0
    touched: set[int] = {theme_id}
    while True:
        page = await select_scan_batch(
            conn, scope=job.scope, model_version=embedder.model_version, after_id=after, limit=batch
        )
        if len(page.item_ids) == 0:
            break
        after = int(page.item_ids[-1])
        scanned += len(page.item_ids)
        close = page.item_ids[(page.vectors @ seed) >= job.seed_threshold].tolist()
        async with conn.transaction():
            change = await _lock_change(conn, job.change_id)
            if change is None or change.undone:
                return "cancelled"
            moved = await _join(conn, close, theme_id=theme_id, scope=job.scope, undo=change.undo)
            if moved:
                items = change.undo["items"]
                await update_change_undo(
                    conn, change_id=job.change_id, undo=change.undo, item_ids=[*change.item_ids, *items["ids"]]
                )
                touched.update(t for t in moved.values() if t is not None)
                joined += len(moved)
            await update_backfill_progress(conn, theme_id=theme_id, scanned=scanned, joined=joined)
    await update_theme_sizes(conn, theme_ids=sorted(touched), column=column)
    log.info("back-fill of theme %s: %d of %d items joined", theme_id, joined, scanned)
    return "done"


async def _lock_change(conn: asyncpg.Connection, change_id: int) -> StoredChange | None:
    """The create change, locked for this batch; an undo holding it briefly is waited out."""
    for _ in range(50):
        try:
            async with conn.transaction():  # a savepoint: a failed NOWAIT leaves the batch usable
                return await lock_change(conn, change_id=change_id)
        except asyncpg.exceptions.LockNotAvailableError:
            await asyncio.sleep(0.2)
    raise TimeoutError(f"change {change_id} stayed locked for 10 s")


async def _join(
    conn: asyncpg.Connection, item_ids: list[int], *, theme_id: int, scope: str, undo: dict[str, object]
) -> dict[int, int | None]:
    """Move the close items that are not pinned anywhere and not already here; record where they
    came from in the change's undo data (mutated in place). Returns {item_id: previous theme}."""
    if not item_ids:
        return {}
    pinned = {p[0] for p in await select_pins(conn, item_ids=item_ids, scope=scope)}
    col = column_for(scope)
    items = await select_items_for_curation(conn, item_ids=[i for i in item_ids if i not in pinned], column=col)
    moved = {i: it.theme_id for i, it in items.items() if it.theme_id != theme_id}
    if not moved:
        return {}
    ids = sorted(moved)
    await update_items_theme(conn, item_ids=ids, theme_ids=[theme_id] * len(ids), column=col)
    recorded = undo["items"]
    assert isinstance(recorded, dict)
    recorded["ids"] = [*recorded["ids"], *ids]
    recorded["theme_ids"] = [*recorded["theme_ids"], *[moved[i] for i in ids]]
    return moved
