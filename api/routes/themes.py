from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.cursors import decode_after, encode_after
from api.deps import DbConn, ReadKey, RowId
from api.errors import NotFound
from db.queries.themes import select_theme, select_themes
from schemas.items import Intent, Kind
from schemas.themes import ThemeDetail, ThemeLevel, ThemePage, ThemeStatus
from schemas.timezones import TimeZone

router = APIRouter(prefix="/v1/themes", tags=["themes"])


@router.get("")
async def list_themes(
    conn: DbConn,
    _: ReadKey,
    kind: Kind | None = None,
    intent: Intent | None = None,
    status: ThemeStatus | None = None,
    scope: Literal["all", "feature"] | None = None,
    include_retired: bool = False,
    level: ThemeLevel | None = None,
    parent_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    hidden: bool | None = False,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ThemePage:
    """Current themes, parents and leaves. `intent=feature_request` lists the feature-request themes
    (clustered over feature requests alone); `kind` keeps themes holding items of that kind; retired
    themes (merged or split) show with `include_retired=true` or a `status` filter; hidden themes
    show with `hidden=true` (alone) or with the other themes when `hidden` is left empty."""
    if intent == "feature_request":
        scope = "feature"
    elif intent is not None:
        scope = scope or "all"
    data = await select_themes(
        conn,
        scope=scope,
        status=status,
        item_kind=kind,
        include_retired=include_retired,
        level=level,
        parent_id=parent_id,
        hidden=hidden,
        after_id=decode_after(cursor),
        limit=limit,
    )
    return ThemePage(data=data, next_cursor=encode_after(data[-1].theme_id) if len(data) == limit else None)


@router.get("/{theme_id}")
async def get_theme(theme_id: RowId, conn: DbConn, _: ReadKey, tz: TimeZone = "UTC") -> ThemeDetail:
    """One theme with its lineage (merged from / split from), its place in the tree (parent,
    children) and its weekly volume (a parent's over its leaves' items)."""
    theme = await select_theme(conn, theme_id=theme_id, tz=tz)
    if theme is None:
        raise NotFound(f"Theme {theme_id} does not exist.")
    return theme
