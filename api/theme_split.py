"""Splitting a theme: the preview (sub-groups of its stored vectors, kept in Postgres; nothing else
changes) and applying one, or groups a person listed, as one curation change."""

from __future__ import annotations

from typing import Any

import asyncpg
import numpy as np
from anyio import to_thread

from api.auth import Principal
from api.curation import hold_against_runs, lock, pin, require_current_leaf, snapshot
from api.errors import Conflict, NotFound, Unprocessable
from clustering.split import MIN_SPLIT_SIZE, describe_groups, nearest_group, propose_split
from db.queries.curation import (
    column_for,
    insert_change,
    insert_theme,
    select_curated_theme,
    select_curated_themes,
    select_member_ids,
    select_pins,
    update_theme_curated,
    update_theme_seen,
    update_theme_sizes,
    update_theme_versions,
)
from db.queries.theme_split import (
    insert_split_preview,
    select_split_preview,
    select_theme_item_count,
    select_theme_vectors,
)
from schemas.curation import ExampleItem, Split, SplitPreview, SplitPreviewGroup, ThemeSplit

EXAMPLE_CHARS = 300


async def preview_split(
    conn: asyncpg.Connection, who: Principal, theme_id: int, k: int | None, *, examples: int = 5
) -> SplitPreview:
    """Proposed groups over the theme's stored vectors; stores the preview and changes nothing else."""
    theme = await select_curated_theme(conn, theme_id=theme_id)
    if theme is None:
        raise NotFound(f"Theme {theme_id} does not exist.")
    require_current_leaf(theme)
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
        await hold_against_runs(conn)
        locked = await lock(conn, [theme_id])
        theme = locked[theme_id].theme
        require_current_leaf(theme)
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
        undo = snapshot(
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
        placed_in = {new_id: sorted(g["item_ids"]) for new_id, g in zip(new_ids, groups, strict=True)}
        await pin(conn, groups=placed_in, change_id=change_id, scope=scope, column=column)
        await update_theme_curated(
            conn, theme_id=theme_id, fields={"status": "split_into", "split_into": new_ids, "is_current": False}
        )
        await update_theme_seen(conn, theme_ids=new_ids, column=column)
        await update_theme_sizes(conn, theme_ids=[theme_id, *new_ids], column=column)
        await update_theme_versions(conn, theme_ids=[theme_id])
        parts = await select_curated_themes(conn, theme_ids=new_ids)
    return Split(change_id=change_id, theme_id=theme_id, split_into=parts)
