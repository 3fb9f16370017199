"""Curation routes (spec/api.md "Curation"): every write needs the curate scope; history is read.

The actions themselves (one transaction each) are in api/curation.py and api/theme_split.py, shared
with the dashboard.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Body, Query
from redis.exceptions import RedisError

from api import curation, theme_split
from api.deps import AppSettings, CurateKey, DbConn, ReadKey, RedisClient, RowId
from api.errors import Conflict, NotFound
from db.queries.backfill import select_backfill
from db.queries.curation import select_curated_theme, select_theme_history
from outbox.queues import CLUSTERING_QUEUE, enqueue
from schemas.curation import (
    Backfill,
    CurationChangePage,
    ItemsMoved,
    Merged,
    PersonThemeCreate,
    PersonThemeCreated,
    Split,
    SplitPreview,
    SplitPreviewCreate,
    ThemeItemsAdd,
    ThemeMerge,
    ThemePatch,
    ThemePatched,
    ThemeSplit,
    Undone,
)
from schemas.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["curation"])


def enqueue_backfill(redis: RedisClient, settings: Settings, theme_id: int) -> None:
    """After the commit. On the clustering queue, so it never runs beside a run rewriting themes."""
    try:
        enqueue(
            redis, settings, CLUSTERING_QUEUE, "workers.curation.backfill_theme", theme_id,
            job_id=f"backfill-{theme_id}", timeout=settings.cluster_job_timeout_s,
        )  # fmt: skip
    except RedisError:
        log.warning("back-fill of theme %s not enqueued (Redis unavailable); its row stays queued", theme_id)


@router.patch("/themes/{theme_id}")
async def update_theme(theme_id: RowId, body: ThemePatch, conn: DbConn, who: CurateKey) -> ThemePatched:
    """Rename (the label is then pinned), hide or unhide, re-parent (the parent is then pinned).
    Send `version` to get 409 if someone changed the theme since you read it."""
    return await curation.patch_theme(conn, who, theme_id, body)


@router.post("/themes/merge")
async def merge_themes(body: ThemeMerge, conn: DbConn, who: CurateKey) -> Merged:
    return await curation.merge_themes(conn, who, body)


@router.post("/themes/{theme_id}/split-preview")
async def create_split_preview(
    theme_id: RowId, conn: DbConn, who: CurateKey, body: Annotated[SplitPreviewCreate | None, Body()] = None
) -> SplitPreview:
    """Proposed sub-groups (size, label, five examples) and a `preview_id`; changes nothing."""
    return await theme_split.preview_split(conn, who, theme_id, body.k if body else None)


@router.post("/themes/{theme_id}/split")
async def split_theme(theme_id: RowId, body: ThemeSplit, conn: DbConn, who: CurateKey) -> Split:
    return await theme_split.split_theme(conn, who, theme_id, body)


@router.post("/themes/{theme_id}/items")
async def move_items(theme_id: RowId, body: ThemeItemsAdd, conn: DbConn, who: CurateKey) -> ItemsMoved:
    """These items belong to this theme from now on."""
    return await curation.move_items(conn, who, theme_id, body)


@router.post("/themes", status_code=201)
async def create_theme(
    body: PersonThemeCreate, conn: DbConn, who: CurateKey, redis: RedisClient, settings: AppSettings
) -> PersonThemeCreated:
    """A person's theme; past items whose cosine to its seed reaches `seed_threshold` join it in a
    background back-fill (progress: GET /v1/themes/{id}/backfill), and future items as they come."""
    created = await curation.create_person_theme(conn, who, body, settings)
    enqueue_backfill(redis, settings, created.theme_id)
    return created


@router.get("/themes/{theme_id}/backfill")
async def get_backfill(theme_id: RowId, conn: DbConn, _: ReadKey) -> Backfill:
    backfill = await select_backfill(conn, theme_id=theme_id)
    if backfill is None:
        raise NotFound(f"Theme {theme_id} has no back-fill (it is not a person's theme, or does not exist).")
    return backfill


@router.post("/themes/{theme_id}/backfill", status_code=202)
async def restart_backfill(
    theme_id: RowId, conn: DbConn, _: CurateKey, redis: RedisClient, settings: AppSettings
) -> Backfill:
    """Queue a person's theme's back-fill again: one still queued (Redis lost it) or failed; 409 otherwise."""
    backfill = await select_backfill(conn, theme_id=theme_id)
    if backfill is None:
        raise NotFound(f"Theme {theme_id} has no back-fill (it is not a person's theme, or does not exist).")
    if backfill.status not in ("queued", "failed"):
        raise Conflict(f"The back-fill of theme {theme_id} is {backfill.status}; only a queued or failed one restarts.")
    enqueue_backfill(redis, settings, theme_id)
    return backfill


@router.get("/themes/{theme_id}/history")
async def list_theme_history(
    theme_id: RowId,
    conn: DbConn,
    _: ReadKey,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="changes older than this change id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CurationChangePage:
    """Changes to the theme, newest first: `at`, `key_id` (null: the bootstrap key), `action`, `detail`."""
    if await select_curated_theme(conn, theme_id=theme_id) is None:
        raise NotFound(f"Theme {theme_id} does not exist.")
    data = await select_theme_history(conn, theme_id=theme_id, before_id=cursor, limit=limit)
    return CurationChangePage(data=data, next_cursor=str(data[-1].change_id) if len(data) == limit else None)


@router.post("/curation/{change_id}/undo")
async def undo_change(change_id: RowId, conn: DbConn, who: CurateKey) -> Undone:
    """Undo one change; 409 when it is already undone or a later change touches the same themes or items."""
    return await curation.undo_change(conn, who, change_id)
