"""The curation actions. Each is one transaction that locks the themes it touches without waiting
(a concurrent change of the same theme gets 409), records one curation_change with what undoes
it, pins the items a person placed, and bumps the touched themes' versions.

The undo data is a snapshot of what the change overwrote: `themes` (their curated fields),
`items` (their theme column), `pins` (the pins it replaced), `new_theme_ids` (themes it made,
retired on undo, their items going to `retire_into`). The dashboard and the API both call these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
import numpy as np
from anyio import to_thread

from api.auth import Principal
from api.errors import Conflict, NotFound, Unprocessable
from clustering.split import MIN_SPLIT_SIZE, describe_groups, nearest_group, propose_split
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
    lock_themes,
    select_curated_theme,
    select_curated_themes,
    select_dependent_change,
    select_items_for_curation,
    select_member_ids,
    select_pins,
    update_change_undone,
    update_item_intent,
    update_items_leaving,
    update_items_theme,
    update_theme_curated,
    update_theme_seen,
    update_theme_sizes,
    update_theme_versions,
    upsert_pins,
)
from db.queries.theme_split import (
    insert_split_preview,
    select_split_preview,
    select_theme_item_count,
    select_theme_vectors,
)
from schemas.curation import (
    CuratedTheme,
    ExampleItem,
    ItemsMoved,
    Merged,
    PersonThemeCreate,
    PersonThemeCreated,
    Split,
    SplitPreview,
    SplitPreviewGroup,
    ThemeItemsAdd,
    ThemeMerge,
    ThemePatch,
    ThemePatched,
    ThemeSplit,
    Undone,
)
from schemas.settings import Settings

EXAMPLE_CHARS = 300


async def _lock(conn: asyncpg.Connection, theme_ids: Iterable[int]) -> dict[int, LockedTheme]:
    wanted = sorted(set(theme_ids))
    try:
        locked = await lock_themes(conn, theme_ids=wanted)
    except asyncpg.exceptions.LockNotAvailableError:
        raise Conflict(f"Theme(s) {wanted} are being changed by another request; reload and retry.") from None
    missing = [t for t in wanted if t not in locked]
    if missing:
        raise NotFound(f"Theme {missing[0]} does not exist.")
    return locked


def _require_current_leaf(theme: CuratedTheme) -> None:
    if not theme.is_current:
        raise Conflict(f"Theme {theme.theme_id} is {theme.status.replace('_', ' ')}; it is no longer current.")
    if theme.level != "leaf":
        raise Unprocessable(f"Theme {theme.theme_id} is a parent theme; this acts on leaf themes only.")


def _snapshot(
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


async def _pin(
    conn: asyncpg.Connection,
    *,
    item_ids: Sequence[int],
    theme_id: int,
    change_id: int,
    scope: str,
    column: ThemeColumn,
    already_there: Iterable[int] = (),
) -> None:
    """Put the items in the theme and pin them there (`already_there`: items needing no update)."""
    skip = set(already_there)
    moving = [i for i in item_ids if i not in skip]
    await update_items_theme(conn, item_ids=moving, theme_ids=[theme_id] * len(moving), column=column)
    await upsert_pins(
        conn, item_ids=item_ids, theme_ids=[theme_id] * len(item_ids), change_ids=[change_id] * len(item_ids),
        scope=scope,
    )  # fmt: skip


async def patch_theme(conn: asyncpg.Connection, who: Principal, theme_id: int, patch: ThemePatch) -> ThemePatched:
    """Rename (the label is pinned), hide or unhide, re-parent (the parent is pinned)."""
    fields = patch.model_fields_set
    async with conn.transaction():
        wanted = [theme_id] + ([patch.parent_id] if patch.parent_id is not None else [])
        locked = await _lock(conn, wanted)
        current = locked[theme_id]
        theme = current.theme
        if patch.version is not None and patch.version != theme.version:
            raise Conflict(f"Theme {theme_id} has changed (version {theme.version}, not {patch.version}); reload.")
        saved = dict(current.saved)
        change_ids: list[int] = []

        async def record(action: str, detail: dict[str, Any], update: dict[str, Any]) -> None:
            before = LockedTheme(theme=theme, saved=dict(saved), centroid=current.centroid)
            undo = _snapshot([before], items={}, column=column_for(theme.scope), pins=[], scope=theme.scope)
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
        locked = await _lock(conn, everyone)
        into = locked[body.into].theme
        for theme_id in everyone:
            theme = locked[theme_id].theme
            _require_current_leaf(theme)
            if theme.scope != into.scope:
                raise Unprocessable(f"Theme {theme_id} is of scope {theme.scope}, theme {into.theme_id} {into.scope}.")
        column, scope = column_for(into.scope), into.scope
        members = await select_member_ids(conn, theme_ids=everyone, column=column, scope=scope)
        pins = await select_pins(conn, item_ids=list(members), scope=scope)
        undo = _snapshot([locked[t] for t in everyone], items=members, column=column, pins=pins, scope=scope)
        detail = {"theme_ids": others, "into": body.into, "labels": {str(t): locked[t].theme.label for t in everyone}}
        change_id = await insert_change(
            conn, action="merge", api_key_id=who.api_key_id, theme_ids=everyone, item_ids=list(members),
            detail={**detail, "items": len(members)}, undo=undo,
        )  # fmt: skip
        await _pin(
            conn, item_ids=sorted(members), theme_id=body.into, change_id=change_id, scope=scope, column=column,
            already_there=[i for i, t in members.items() if t == body.into],
        )  # fmt: skip
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


async def preview_split(
    conn: asyncpg.Connection, who: Principal, theme_id: int, k: int | None, *, examples: int = 5
) -> SplitPreview:
    """Proposed groups over the theme's stored vectors; stores the preview and changes nothing else."""
    theme = await select_curated_theme(conn, theme_id=theme_id)
    if theme is None:
        raise NotFound(f"Theme {theme_id} does not exist.")
    _require_current_leaf(theme)
    column = column_for(theme.scope)
    count = await select_theme_item_count(conn, theme_id=theme_id, column=column)
    if count < MIN_SPLIT_SIZE:
        raise Unprocessable(f"Theme {theme_id} has {count} items; a split needs at least {MIN_SPLIT_SIZE}.")
    data = await select_theme_vectors(conn, theme_id=theme_id, column=column)
    n = len(data.item_ids)
    if n < MIN_SPLIT_SIZE:
        raise Unprocessable(f"Theme {theme_id} has {n} embedded items; a split needs at least {MIN_SPLIT_SIZE}.")
    if k is not None and k > n // 2:
        raise Unprocessable(f"k = {k} is too many groups for {n} items (at most {n // 2}).")
    # CPU work off the event loop, so the process keeps answering other requests meanwhile.
    proposal = await to_thread.run_sync(lambda: propose_split(data.vectors, data.texts, k=k, examples=examples))
    stored = [
        {
            "item_ids": [data.item_ids[r] for r in g.rows],
            "label": g.label,
            "keywords": g.keywords,
            "examples": [data.item_ids[r] for r in g.examples],
            "centroid": [round(float(x), 6) for x in g.centroid],
        }
        for g in proposal.groups
    ]
    preview_id = await insert_split_preview(
        conn, theme_id=theme_id, theme_version=theme.version, api_key_id=who.api_key_id, groups=stored
    )
    groups = [
        SplitPreviewGroup(
            size=len(g.rows),
            label=g.label,
            keywords=g.keywords,
            examples=[ExampleItem(item_id=data.item_ids[r], text=data.texts[r][:EXAMPLE_CHARS]) for r in g.examples],
        )
        for g in proposal.groups
    ]
    return SplitPreview(
        preview_id=preview_id, theme_id=theme_id, k=len(groups), silhouette=proposal.silhouette, groups=groups
    )


async def _groups_from_ids(
    conn: asyncpg.Connection, groups: list[list[int]], fallback: str
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Labels, keywords and centroids for groups a person listed by hand."""
    flat = [i for g in groups for i in g]
    data = await select_theme_vectors(conn, item_ids=flat)
    group_of = {i: n for n, g in enumerate(groups) for i in g}
    described: list[dict[str, Any]] = [
        {"item_ids": g, "label": f"{fallback} ({n + 1})", "keywords": [], "examples": g[:5], "centroid": None}
        for n, g in enumerate(groups)
    ]
    present = sorted({group_of[i] for i in data.item_ids})
    if present:
        dense = {g: n for n, g in enumerate(present)}
        labels = np.array([dense[group_of[i]] for i in data.item_ids], dtype=np.int64)
        parts = await to_thread.run_sync(lambda: describe_groups(data.vectors, data.texts, labels))
        for g, part in zip(present, parts, strict=True):
            described[g].update(
                label=part.label,
                keywords=part.keywords,
                examples=[data.item_ids[r] for r in part.examples],
                centroid=[float(x) for x in part.centroid],
            )
    dim = data.vectors.shape[1] if len(data.item_ids) else 0
    centroids = np.array([d["centroid"] or [0.0] * dim for d in described], dtype=np.float32)
    return described, centroids


async def split_theme(conn: asyncpg.Connection, who: Principal, theme_id: int, body: ThemeSplit) -> Split:
    """Each group becomes a new theme with its items pinned; the old one gets split_into."""
    async with conn.transaction():
        locked = await _lock(conn, [theme_id])
        theme = locked[theme_id].theme
        _require_current_leaf(theme)
        column, scope = column_for(theme.scope), theme.scope
        members = await select_member_ids(conn, theme_ids=[theme_id], column=column, scope=scope)
        if len(members) < MIN_SPLIT_SIZE:
            raise Unprocessable(f"Theme {theme_id} has {len(members)} items; a split needs at least {MIN_SPLIT_SIZE}.")
        if body.preview_id is not None:
            preview = await select_split_preview(conn, preview_id=body.preview_id)
            if preview is None or preview.theme_id != theme_id:
                raise NotFound(f"Split preview {body.preview_id} of theme {theme_id} does not exist.")
            if preview.theme_version != theme.version:
                raise Conflict(f"Theme {theme_id} has changed since preview {body.preview_id}; preview it again.")
            groups = [dict(g, item_ids=[i for i in g["item_ids"] if i in members]) for g in preview.groups]
            centroids = np.array([g["centroid"] for g in groups], dtype=np.float32)
        else:
            assert body.groups is not None
            strays = sorted({i for g in body.groups for i in g} - set(members))
            if strays:
                raise Unprocessable(f"Items {strays[:20]} are not in theme {theme_id}.")
            groups, centroids = await _groups_from_ids(conn, [sorted(set(g)) for g in body.groups], theme.label)
        placed = {i for g in groups for i in g["item_ids"]}
        leftovers = sorted(set(members) - placed)
        if leftovers:  # items that reached the theme after the preview, or left out of the groups
            data = await select_theme_vectors(conn, item_ids=leftovers)
            usable = centroids.size > 0 and centroids.shape[1] == (data.vectors.shape[1] if data.item_ids else -1)
            nearest = nearest_group(data.vectors, centroids).tolist() if usable else [0] * len(data.item_ids)
            found = dict(zip(data.item_ids, nearest, strict=True))
            biggest = max(range(len(groups)), key=lambda n: len(groups[n]["item_ids"]))
            for item_id in leftovers:
                groups[found.get(item_id, biggest)]["item_ids"].append(item_id)
        groups = [g for g in groups if g["item_ids"]]
        if len(groups) < 2:
            raise Conflict(f"Theme {theme_id}'s items have moved since the preview; preview it again.")
        pins = await select_pins(conn, item_ids=list(members), scope=scope)
        new_ids = []
        for g in groups:
            centroid = np.asarray(g["centroid"], "<f4").tobytes() if g["centroid"] else None
            new_ids.append(
                await insert_theme(
                    conn,
                    scope=scope,
                    label=g["label"],
                    keywords=g["keywords"],
                    origin="clustered",
                    label_pinned=False,
                    parent_id=theme.parent_id,
                    centroid=centroid,
                    representative_item_ids=[i for i in g["examples"] if i in members][:5],
                )  # fmt: skip
            )
        undo = _snapshot(
            [locked[theme_id]], items=members, column=column, pins=pins, scope=scope,
            new_theme_ids=new_ids, retire_into=theme_id,
        )  # fmt: skip
        detail = {
            "from": theme_id, "label": theme.label, "into": new_ids, "labels": [g["label"] for g in groups],
            "sizes": [len(g["item_ids"]) for g in groups], "preview_id": body.preview_id,
        }  # fmt: skip
        change_id = await insert_change(
            conn, action="split", api_key_id=who.api_key_id, theme_ids=[theme_id, *new_ids],
            item_ids=list(members), detail=detail, undo=undo,
        )  # fmt: skip
        for new_id, g in zip(new_ids, groups, strict=True):
            await _pin(
                conn, item_ids=sorted(g["item_ids"]), theme_id=new_id, change_id=change_id, scope=scope, column=column
            )
        await update_theme_curated(
            conn, theme_id=theme_id, fields={"status": "split_into", "split_into": new_ids, "is_current": False}
        )
        await update_theme_seen(conn, theme_ids=new_ids, column=column)
        await update_theme_sizes(conn, theme_ids=[theme_id, *new_ids], column=column)
        await update_theme_versions(conn, theme_ids=[theme_id])
        parts = await select_curated_themes(conn, theme_ids=new_ids)
    return Split(change_id=change_id, theme_id=theme_id, split_into=parts)


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
        target = (await _lock(conn, [theme_id]))[theme_id].theme
        _require_current_leaf(target)
        column, scope = column_for(target.scope), target.scope
        items, pins, sources = await _items_and_sources(conn, item_ids, column=column, scope=scope)
        sources.discard(theme_id)
        await _lock(conn, sources)
        moved = {i: t for i, t in items.items() if t != theme_id}
        origins: dict[str, int] = {}
        for t in moved.values():
            origins[str(t) if t is not None else "unassigned"] = (
                origins.get(str(t) if t is not None else "unassigned", 0) + 1
            )
        change_id = await insert_change(
            conn, action="move", api_key_id=who.api_key_id, theme_ids=[theme_id, *sources], item_ids=item_ids,
            detail={"theme_id": theme_id, "items": len(item_ids), "from": origins},
            undo=_snapshot([], items=items, column=column, pins=pins, scope=scope),
        )  # fmt: skip
        await _pin(conn, item_ids=item_ids, theme_id=theme_id, change_id=change_id, scope=scope, column=column)
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
        items, pins, sources = await _items_and_sources(conn, item_ids, column=column, scope=scope)
        await _lock(conn, sources)
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
            detail=detail, undo=_snapshot([], items=items, column=column, pins=pins, scope=scope,
                                          new_theme_ids=[theme_id]),
        )  # fmt: skip
        await _pin(conn, item_ids=item_ids, theme_id=theme_id, change_id=change_id, scope=scope, column=column)
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
        await _lock(conn, change.theme_ids)
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
