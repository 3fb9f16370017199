"""The curation actions. Each is one transaction that locks the themes it touches without waiting
(a concurrent change of the same theme gets 409), records one curation_change with what undoes
it, pins the items a person placed, and bumps the touched themes' versions.

The undo data is a snapshot of what the change overwrote: `themes` (their curated fields),
`items` (their theme column), `pins` (the pins it replaced), `new_theme_ids` (themes it made,
retired on undo, their items going to `retire_into`). The dashboard and the API both call these;
splitting is in api/theme_split.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg
import numpy as np

from api.auth import Principal
from api.errors import Conflict, NotFound, Unprocessable
from db.queries.backfill import insert_backfill, update_backfill_cancelled
from db.queries.curation import (
    RESTORED,
    LockedTheme,
    ThemeColumn,
    column_for,
    delete_pins_of_change,
    insert_change,
    insert_theme,
    lock_change,
    lock_curation_shared,
    lock_themes,
    select_curated_theme,
    select_dependent_change,
    select_items_for_curation,
    select_member_ids,
    select_pins,
    update_change_undone,
    update_item_intent,
    update_items_leaving,
    update_items_pinned,
    update_items_theme,
    update_theme_curated,
    update_theme_seen,
    update_theme_sizes,
    update_theme_versions,
    upsert_pins,
)
from schemas.curation import (
    CuratedTheme,
    ItemsMoved,
    Merged,
    PersonThemeCreate,
    PersonThemeCreated,
    ThemeItemsAdd,
    ThemeMerge,
    ThemePatch,
    ThemePatched,
    Undone,
)
from schemas.settings import Settings

# How long a change waits for a clustering run that is writing its result before it gets 409.
RUN_WAIT_S = 3.0


async def hold_against_runs(conn: asyncpg.Connection) -> None:
    """First statement of every curation transaction: a clustering run never writes over a change
    committed while it computed (it sees the change and plans again; workers/themes.py)."""
    if not await lock_curation_shared(conn, timeout_s=RUN_WAIT_S):
        raise Conflict("A clustering run is writing its result; retry in a few seconds.")


async def lock(conn: asyncpg.Connection, theme_ids: Iterable[int]) -> dict[int, LockedTheme]:
    wanted = sorted(set(theme_ids))
    try:
        locked = await lock_themes(conn, theme_ids=wanted)
    except asyncpg.exceptions.LockNotAvailableError:
        raise Conflict(f"Theme(s) {wanted} are being changed by another request; reload and retry.") from None
    missing = [t for t in wanted if t not in locked]
    if missing:
        raise NotFound(f"Theme {missing[0]} does not exist.")
    return locked


def require_current_leaf(theme: CuratedTheme) -> None:
    if not theme.is_current:
        raise Conflict(f"Theme {theme.theme_id} is {theme.status.replace('_', ' ')}; it is no longer current.")
    if theme.level != "leaf":
        raise Unprocessable(f"Theme {theme.theme_id} is a parent theme; this acts on leaf themes only.")


def snapshot(
    themes: Sequence[LockedTheme],
    *,
    items: dict[int, int | None],
    column: ThemeColumn,
    pins: Sequence[tuple[int, int, int]],
    scope: str,
    new_theme_ids: Sequence[int] = (),
    retire_into: int | None = None,
) -> dict[str, Any]:
    ids = sorted(items)
    return {
        "themes": [{"theme_id": t.theme.theme_id, **t.saved} for t in themes],
        "items": {"column": column, "ids": ids, "theme_ids": [items[i] for i in ids]},
        "pins": {
            "scope": scope,
            "ids": [p[0] for p in pins],
            "theme_ids": [p[1] for p in pins],
            "change_ids": [p[2] for p in pins],
        },
        "new_theme_ids": list(new_theme_ids),
        "retire_into": retire_into,
    }


async def pin(
    conn: asyncpg.Connection,
    *,
    groups: Mapping[int, Sequence[int]],
    change_id: int,
    scope: str,
    column: ThemeColumn,
) -> None:
    """Put each group's items in its theme ({theme_id: item ids}) and pin them there."""
    item_ids = [i for items in groups.values() for i in items]
    theme_ids = [t for t, items in groups.items() for _ in items]
    await update_items_pinned(
        conn, item_ids=item_ids, theme_ids=theme_ids, change_id=change_id, scope=scope, column=column
    )


async def patch_theme(conn: asyncpg.Connection, who: Principal, theme_id: int, patch: ThemePatch) -> ThemePatched:
    """Rename (the label is pinned), hide or unhide, re-parent (the parent is pinned)."""
    fields = patch.model_fields_set
    async with conn.transaction():
        await hold_against_runs(conn)
        wanted = [theme_id] + ([patch.parent_id] if patch.parent_id is not None else [])
        locked = await lock(conn, wanted)
        current = locked[theme_id]
        theme = current.theme
        if patch.version is not None and patch.version != theme.version:
            raise Conflict(f"Theme {theme_id} has changed (version {theme.version}, not {patch.version}); reload.")
        saved = dict(current.saved)
        change_ids: list[int] = []

        async def record(action: str, detail: dict[str, Any], update: dict[str, Any]) -> None:
            before = LockedTheme(theme=theme, saved=dict(saved), centroid=current.centroid)
            undo = snapshot([before], items={}, column=column_for(theme.scope), pins=[], scope=theme.scope)
            change_ids.append(
                await insert_change(
                    conn,
                    action=action,
                    api_key_id=who.api_key_id,
                    theme_ids=[theme_id],
                    item_ids=[],
                    detail=detail,
                    undo=undo,
                )  # fmt: skip
            )
            await update_theme_curated(conn, theme_id=theme_id, fields=update)
            saved.update(update)

        if (
            "label" in fields
            and patch.label is not None
            and (patch.label != saved["label"] or not saved["label_pinned"])
        ):
            await record(
                "rename", {"from": saved["label"], "to": patch.label}, {"label": patch.label, "label_pinned": True}
            )
        if "hidden" in fields and patch.hidden is not None and patch.hidden != saved["hidden"]:
            await record("hide" if patch.hidden else "unhide", {"hidden": patch.hidden}, {"hidden": patch.hidden})
        if "parent_id" in fields:
            if theme.level != "leaf":
                raise Unprocessable(f"Theme {theme_id} is a parent theme; only leaf themes have a parent.")
            if patch.parent_id is not None:
                parent = locked[patch.parent_id].theme
                if parent.level != "parent" or not parent.is_current:
                    raise Unprocessable(f"Theme {parent.theme_id} is not a current parent theme.")
                if parent.scope != theme.scope:
                    raise Unprocessable(f"Theme {parent.theme_id} is of scope {parent.scope}, not {theme.scope}.")
            if patch.parent_id != saved["parent_id"] or not saved["parent_pinned"]:
                await record(
                    "reparent",
                    {"from": saved["parent_id"], "to": patch.parent_id},
                    {"parent_id": patch.parent_id, "parent_pinned": True},
                )
        if change_ids:
            await update_theme_versions(conn, theme_ids=[theme_id])
        result = await select_curated_theme(conn, theme_id=theme_id)
    assert result is not None
    return ThemePatched(theme=result, change_ids=change_ids)


def _weighted_centroid(themes: Sequence[LockedTheme]) -> bytes | None:
    parts = [(t.theme.size, np.frombuffer(t.centroid, "<f4")) for t in themes if t.centroid is not None]
    if not parts:
        return None
    total = np.zeros(parts[0][1].shape, dtype=np.float64)
    for size, vector in parts:
        total += max(size, 1) * vector.astype(np.float64)
    unit = (total / max(float(np.linalg.norm(total)), 1e-12)).astype("<f4")
    return unit.tobytes()


async def merge_themes(conn: asyncpg.Connection, who: Principal, body: ThemeMerge) -> Merged:
    """The others' items (and `into`'s) are pinned to `into`; the others get merged_into."""
    others = sorted(set(body.theme_ids))
    if body.into in others:
        raise Unprocessable(f"Theme {body.into} cannot be merged into itself.")
    everyone = [*others, body.into]
    async with conn.transaction():
        await hold_against_runs(conn)
        locked = await lock(conn, everyone)
        into = locked[body.into].theme
        for theme_id in everyone:
            theme = locked[theme_id].theme
            require_current_leaf(theme)
            if theme.scope != into.scope:
                raise Unprocessable(f"Theme {theme_id} is of scope {theme.scope}, theme {into.theme_id} {into.scope}.")
        column, scope = column_for(into.scope), into.scope
        members = await select_member_ids(conn, theme_ids=everyone, column=column, scope=scope)
        pins = await select_pins(conn, item_ids=list(members), scope=scope)
        undo = snapshot([locked[t] for t in everyone], items=members, column=column, pins=pins, scope=scope)
        detail = {"theme_ids": others, "into": body.into, "labels": {str(t): locked[t].theme.label for t in everyone}}
        change_id = await insert_change(
            conn, action="merge", api_key_id=who.api_key_id, theme_ids=everyone, item_ids=list(members),
            detail={**detail, "items": len(members)}, undo=undo,
        )  # fmt: skip
        await pin(conn, groups={body.into: sorted(members)}, change_id=change_id, scope=scope, column=column)
        for theme_id in others:
            await update_theme_curated(
                conn,
                theme_id=theme_id,
                fields={"status": "merged_into", "merged_into": body.into, "is_current": False, "split_into": None},
            )
        representatives: list[int] = []
        for theme_id in everyone[::-1]:  # `into` first
            representatives += [
                i for i in locked[theme_id].saved["representative_item_ids"] if i not in representatives
            ]
        update: dict[str, Any] = {"representative_item_ids": representatives[:10]}
        centroid = _weighted_centroid([locked[t] for t in everyone])
        if centroid is not None:
            update["centroid"] = centroid
        await update_theme_curated(conn, theme_id=body.into, fields=update)
        await update_theme_sizes(conn, theme_ids=everyone, column=column)
        await update_theme_versions(conn, theme_ids=everyone)
        result = await select_curated_theme(conn, theme_id=body.into)
    assert result is not None
    return Merged(change_id=change_id, into=result, merged=others)


async def _items_and_sources(
    conn: asyncpg.Connection, item_ids: Sequence[int], *, column: ThemeColumn, scope: str
) -> tuple[dict[int, int | None], list[tuple[int, int, int]], set[int]]:
    """The items' current themes (404 for an unknown item), their pins, and the themes they leave."""
    items = await select_items_for_curation(conn, item_ids=item_ids, column=column)
    missing = [i for i in item_ids if i not in items]
    if missing:
        raise NotFound(f"Item {missing[0]} does not exist.")
    if scope == "feature":
        others = [i for i in item_ids if items[i].intent != "feature_request"]
        if others:
            raise Unprocessable(f"Items {others[:20]} are not feature requests; feature themes hold only those.")
    pins = await select_pins(conn, item_ids=item_ids, scope=scope)
    sources = {it.theme_id for it in items.values() if it.theme_id is not None} | {p[1] for p in pins}
    return {i: it.theme_id for i, it in items.items()}, pins, sources


async def move_items(conn: asyncpg.Connection, who: Principal, theme_id: int, body: ThemeItemsAdd) -> ItemsMoved:
    """These items belong to this theme from now on (pinned; an earlier pin is replaced)."""
    item_ids = sorted(set(body.item_ids))
    async with conn.transaction():
        await hold_against_runs(conn)
        target = (await lock(conn, [theme_id]))[theme_id].theme
        require_current_leaf(target)
        column, scope = column_for(target.scope), target.scope
        items, pins, sources = await _items_and_sources(conn, item_ids, column=column, scope=scope)
        sources.discard(theme_id)
        await lock(conn, sources)
        moved = {i: t for i, t in items.items() if t != theme_id}
        origins: dict[str, int] = {}
        for t in moved.values():
            origins[str(t) if t is not None else "unassigned"] = (
                origins.get(str(t) if t is not None else "unassigned", 0) + 1
            )
        change_id = await insert_change(
            conn, action="move", api_key_id=who.api_key_id, theme_ids=[theme_id, *sources], item_ids=item_ids,
            detail={"theme_id": theme_id, "items": len(item_ids), "from": origins},
            undo=snapshot([], items=items, column=column, pins=pins, scope=scope),
        )  # fmt: skip
        await pin(conn, groups={theme_id: item_ids}, change_id=change_id, scope=scope, column=column)
        await update_theme_sizes(conn, theme_ids=[theme_id, *sources], column=column)
        await update_theme_versions(conn, theme_ids=[theme_id, *sources])
        result = await select_curated_theme(conn, theme_id=theme_id)
    assert result is not None
    return ItemsMoved(change_id=change_id, theme=result, moved=len(moved))


async def create_person_theme(
    conn: asyncpg.Connection, who: Principal, body: PersonThemeCreate, settings: Settings
) -> PersonThemeCreated:
    """The theme and its pinned items now; the back-fill over past items is a job (the caller
    enqueues it after this commits: `workers.curation.backfill_theme`)."""
    threshold = body.seed_threshold if body.seed_threshold is not None else settings.curation_seed_threshold
    item_ids = sorted(set(body.item_ids))
    column, scope = column_for(body.scope), body.scope
    async with conn.transaction():
        await hold_against_runs(conn)
        items, pins, sources = await _items_and_sources(conn, item_ids, column=column, scope=scope)
        await lock(conn, sources)
        theme_id = await insert_theme(
            conn, scope=scope, label=body.label, keywords=[], origin="person", label_pinned=True, parent_id=None,
            centroid=None, representative_item_ids=item_ids[:5], description=body.description,
            seed_threshold=threshold,
        )  # fmt: skip
        detail = {
            "label": body.label, "description": body.description, "examples": body.examples,
            "items": len(item_ids), "seed_threshold": threshold,
        }  # fmt: skip
        change_id = await insert_change(
            conn, action="create", api_key_id=who.api_key_id, theme_ids=[theme_id, *sources], item_ids=item_ids,
            detail=detail, undo=snapshot([], items=items, column=column, pins=pins, scope=scope,
                                          new_theme_ids=[theme_id]),
        )  # fmt: skip
        await pin(conn, groups={theme_id: item_ids}, change_id=change_id, scope=scope, column=column)
        await update_theme_seen(conn, theme_ids=[theme_id], column=column)
        await update_theme_sizes(conn, theme_ids=[theme_id, *sources], column=column)
        await update_theme_versions(conn, theme_ids=sorted(sources))
        backfill = await insert_backfill(conn, theme_id=theme_id, change_id=change_id)
    return PersonThemeCreated(
        change_id=change_id, theme_id=theme_id, label=body.label, size=len(item_ids), seed_threshold=threshold,
        backfill=backfill,
    )  # fmt: skip


async def _restore(conn: asyncpg.Connection, change_id: int, undo: dict[str, Any], theme_ids: Sequence[int]) -> None:
    items, pins = undo["items"], undo["pins"]
    column: ThemeColumn = "feature_theme_id" if items["column"] == "feature_theme_id" else "theme_id"
    await delete_pins_of_change(conn, change_id=change_id)
    if pins["ids"]:
        await upsert_pins(
            conn, item_ids=pins["ids"], theme_ids=pins["theme_ids"], change_ids=pins["change_ids"], scope=pins["scope"]
        )
    await update_items_theme(conn, item_ids=items["ids"], theme_ids=items["theme_ids"], column=column)
    new_ids: list[int] = undo.get("new_theme_ids", [])
    retire_into: int | None = undo.get("retire_into")
    for new_id in new_ids:
        retired = {
            "is_current": False,
            "status": "merged_into" if retire_into else "fading",
            "merged_into": retire_into,
        }
        await update_theme_curated(conn, theme_id=new_id, fields=retired)
        await update_backfill_cancelled(conn, theme_id=new_id)
    if new_ids:  # items a run placed in the new themes since go back with the rest
        await update_items_leaving(conn, theme_ids=new_ids, to_theme_id=retire_into, column=column)
    for saved in undo["themes"]:
        fields = {name: saved[name] for name in RESTORED}
        fields["centroid"] = bytes.fromhex(saved["centroid"]) if saved.get("centroid") else None
        await update_theme_curated(conn, theme_id=saved["theme_id"], fields=fields)
    await update_theme_sizes(conn, theme_ids=theme_ids, column=column)


async def undo_change(conn: asyncpg.Connection, who: Principal, change_id: int) -> Undone:
    """Reverse one change; 409 when it is already undone or a later change depends on it."""
    async with conn.transaction():
        await hold_against_runs(conn)
        try:
            change = await lock_change(conn, change_id=change_id)
        except asyncpg.exceptions.LockNotAvailableError:
            raise Conflict(f"Change {change_id} is being undone by another request.") from None
        if change is None:
            raise NotFound(f"Change {change_id} does not exist.")
        if change.action == "undo":
            raise Unprocessable(f"Change {change_id} is an undo; make the change again instead.")
        if change.undone:
            raise Conflict(f"Change {change_id} is already undone.")
        later = await select_dependent_change(conn, change=change)
        if later is not None:
            raise Conflict(f"Change {later} came later and touches the same themes or items; undo it first.")
        await lock(conn, change.theme_ids)
        if change.action == "intent":
            u = change.undo
            await update_item_intent(
                conn, item_id=u["item_id"], intent=u["intent"], confidence=u["intent_confidence"],
                source=u["intent_source"],
            )  # fmt: skip
        else:
            await _restore(conn, change_id, change.undo, change.theme_ids)
        await update_change_undone(conn, change_id=change_id)
        new_id = await insert_change(
            conn, action="undo", api_key_id=who.api_key_id, theme_ids=change.theme_ids, item_ids=change.item_ids,
            detail={"undid": change_id, "action": change.action}, undo={},
        )  # fmt: skip
        await update_theme_versions(conn, theme_ids=change.theme_ids)
    return Undone(change_id=new_id, undone_change_id=change_id, action=change.action)
