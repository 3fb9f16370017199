"""The clustering run: read -> compute -> write. One read (items, vectors, current themes with
their parents, curation), one call to ``clustering.themes.recluster``, one write transaction.

One writer per scope at a time: the job holds the scope's lock (``db.queries.runs.wait_for_scope``)
for the whole run, and a back-fill of a person's theme takes the same lock, so a plan read before
the back-fill stored its seed never writes over the items it joined. Theme ids are carried over
from the previous run by shared members and centroid similarity, so a trend line keeps meaning
something. A write that Postgres aborts to break a deadlock runs again (``db.deadlocks``).

A person may curate while the run computes. The run marks the last curation change when it reads
and checks, under the curation lock in its write transaction, that no change to a theme of its
scope came since; if one did it plans again from a fresh read (the last attempt holds the lock
throughout), so a person's decision is never written over by a plan that did not know it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import asyncpg

from db.deadlocks import again_after_deadlock
from db.pool import connect
from db.queries.curation import (
    lock_curation,
    lock_curation_session,
    select_changes_since,
    select_last_change_id,
    unlock_curation_session,
)
from db.queries.runs import (
    select_last_digest,
    select_run,
    unlock_scope,
    update_run_digest,
    update_run_done,
    update_run_failed,
    update_run_started,
    wait_for_scope,
)
from db.queries.themes import (
    ClusteringInput,
    ThemeWrite,
    select_clustering_input,
    select_curation_constraints,
    select_current_themes,
    update_item_themes,
    update_themes_retired,
    upsert_theme,
)
from schemas.settings import Settings, get_settings
from workers.jobs import get_embedder

if TYPE_CHECKING:
    from clustering.themes import CurrentTheme, ThemePlan

log = logging.getLogger(__name__)

SEED = 42


async def cluster_items(run_id: int) -> str:
    """Run clustering run `run_id`; returns its final status ("done", "failed" or "skipped")."""
    settings = get_settings()
    conn = await connect(settings)
    try:
        run = await select_run(conn, run_id=run_id)
        if run is None or run.status not in ("queued", "running"):
            return "skipped"
        scope = run.scope
        # Waits out a back-fill of a person's theme, or another job of this run (enqueued again).
        await wait_for_scope(conn, scope=scope)
        try:
            run = await select_run(conn, run_id=run_id)  # the other job may have finished it
            if run is None or run.status not in ("queued", "running"):
                return "skipped"
            await update_run_started(conn, run_id=run_id)
            await _run(conn, settings, run_id, scope)
            return "done"
        except Exception as exc:
            log.exception("clustering run %s failed", run_id)
            await update_run_failed(conn, run_id=run_id, error=f"{type(exc).__name__}: {exc}")
            return "failed"
        finally:
            await unlock_scope(conn, scope=scope)
    finally:
        await conn.close()


# Plans made over again when a curation change commits while the run computes; the last attempt
# holds the curation lock from its read to its write (curation calls meanwhile wait, then get 409).
REPLANS = 2


async def _run(conn: asyncpg.Connection, settings: Settings, run_id: int, scope: str) -> None:
    for attempt in range(REPLANS + 1):
        last = attempt == REPLANS
        if last:
            await lock_curation_session(conn)
        try:
            if await _attempt(conn, settings, run_id, scope, replans=attempt, last=last):
                return
        finally:
            if last:
                await unlock_curation_session(conn)


async def _attempt(
    conn: asyncpg.Connection, settings: Settings, run_id: int, scope: str, *, replans: int, last: bool
) -> bool:
    """Read, plan and write once; False (nothing written) when a person's change to a theme of the
    scope committed after the read: its decision is not in the plan, so the plan must not win."""
    from clustering.cluster import ClusterParams
    from clustering.embed import model_version_of
    from clustering.themes import recluster

    timings: dict[str, float] = {"replans": float(replans)} if replans else {}
    started = time.perf_counter()
    model_version = model_version_of(settings.embedder)  # the stored vectors' key
    async with conn.transaction():
        await lock_curation(conn)  # waits out changes in flight: every later one has a larger id
        mark = await select_last_change_id(conn)
    data = await select_clustering_input(
        conn, scope=scope, model_version=model_version, window_days=settings.cluster_window_days
    )
    themes = await select_current_themes(conn, scope=scope)
    pins = await select_curation_constraints(conn, scope=scope)
    timings["load_s"] = round(time.perf_counter() - started, 3)
    n = len(data.item_ids)
    params = ClusterParams(sample_threshold=settings.cluster_sample_threshold)
    digest = input_digest(data, f"{scope}|{model_version}|{params}", themes, pins)
    if n and digest == await select_last_digest(conn, scope=scope):
        # Nothing changed since the last run: its result stands, to the item (a re-run must not
        # move items for nothing).
        timings["total_s"] = round(time.perf_counter() - started, 3)
        timings["reused"] = 1.0
        async with conn.transaction():
            await update_run_digest(conn, run_id=run_id, digest=digest)
            await update_run_done(
                conn, run_id=run_id, items=n, themes=len({t for t in data.theme_ids if t is not None}),
                unassigned=sum(t is None for t in data.theme_ids), kept_share=1.0, ari=1.0, timings=timings,
            )  # fmt: skip
        return True

    plan = recluster(
        data.vectors,
        data.item_ids.tolist(),
        data.created_at,
        data.texts,
        data.theme_ids,
        themes,
        pins,
        now=datetime.now(UTC),
        params=params,
        seed=SEED,
        embed=get_embedder(settings).embed,  # loaded at the worker's start; names the themes
    )
    timings.update(plan.timings)

    write = functools.partial(
        _write, conn, run_id, scope, plan, data, mark=mark, last=last, digest=digest, timings=timings, started=started
    )
    return await again_after_deadlock(write, what=f"the write of run {run_id}")


async def _write(
    conn: asyncpg.Connection,
    run_id: int,
    scope: str,
    plan: ThemePlan,
    data: ClusteringInput,
    *,
    mark: int,
    last: bool,
    digest: bytes,
    timings: dict[str, float],
    started: float,
) -> bool:
    """The plan's one write transaction; False (nothing written) when a curation change of the
    scope came after the read."""
    n = len(data.item_ids)
    step = time.perf_counter()
    async with conn.transaction():
        await lock_curation(conn)  # no curation change commits between this check and the commit
        if not last:
            changed = await select_changes_since(conn, after_id=mark, scope=scope)
            if changed:
                log.info("run %s plans again: curation changes %s came after its read", run_id, changed[:10])
                return False
        real: dict[int, int] = {}
        for theme in plan.themes:  # parents first, so each leaf's parent has its real id
            write = ThemeWrite(
                theme_id=None if theme.is_new else theme.key,
                level=theme.level,
                parent_id=None if theme.parent_key is None else real.get(theme.parent_key, theme.parent_key),
                label=theme.label,
                keywords=theme.keywords,
                size=theme.size,
                status=theme.status,
                centroid=theme.centroid,
                representative_item_ids=theme.representative_item_ids,
                first_seen_at=theme.first_seen_at,
                last_seen_at=theme.last_seen_at,
            )
            real[theme.key] = await upsert_theme(conn, scope=scope, run_id=run_id, theme=write)
        await update_themes_retired(
            conn,
            run_id=run_id,
            merged={old: real[new] for old, new in plan.merged_into.items()},
            split={old: [real[p] for p in parts] for old, parts in plan.split_into.items()},
            gone=plan.gone,
        )
        assignment = [None if key is None else real[key] for key in plan.assignment]
        await update_item_themes(conn, scope=scope, item_ids=data.item_ids.tolist(), theme_ids=assignment)
        timings["write_s"] = round(time.perf_counter() - step, 3)
        timings["total_s"] = round(time.perf_counter() - started, 3)
        unassigned = sum(key is None for key in plan.assignment)
        leaves = len([t for t in plan.leaves if t.size > 0])
        await update_run_digest(conn, run_id=run_id, digest=digest)
        await update_run_done(
            conn, run_id=run_id, items=n, themes=leaves, unassigned=unassigned,
            kept_share=plan.kept_share, ari=plan.ari, timings=timings,
        )  # fmt: skip
    log.info(
        "run %s: %d items, %d leaf themes, %d unassigned, parent ids kept %s, %s",
        run_id, n, leaves, unassigned, plan.parent_kept_share, timings,
    )  # fmt: skip
    return True


def input_digest(
    data: ClusteringInput, settings_key: str, themes: Sequence[CurrentTheme], pins: Mapping[int, int]
) -> bytes:
    """What a run clusters: the items, their vectors' content hashes, the model and parameters, and
    the curation it must honour (pins, and people's decisions about themes)."""
    digest = hashlib.sha256(settings_key.encode())
    for item_id, content_hash in zip(data.item_ids.tolist(), data.content_hashes, strict=True):
        digest.update(item_id.to_bytes(8, "little"))
        digest.update(content_hash)
    for item_id, theme_id in sorted(pins.items()):
        digest.update(f"pin {item_id} {theme_id};".encode())
    for t in (t for t in themes if t.is_decided):  # not every theme: a run's own output must not count
        decided = (t.label if t.label_pinned else "", t.parent_id if t.parent_pinned else "", t.hidden, t.origin)
        digest.update(f"theme {t.theme_id} {t.level} {decided} {t.seed_threshold};".encode())
        if t.seed_centroid is not None:
            digest.update(t.seed_centroid.tobytes())
    return digest.digest()
