"""The dashboard's curation: who may curate, the posted forms, and what the pages show.

Every action is two posts: the first renders a confirm page that says what will happen, the
second (with `confirm=1`) applies it through the same functions as the API (api/curation.py).
Forms carry the theme's `version`, so a confirm made on a page that is out of date is a 409.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

import asyncpg
from fastapi import Depends, Request
from pydantic import ValidationError

from api.auth import Principal
from api.dashboard.session import Viewer
from api.errors import BadRequest, Forbidden, PayloadTooLarge
from db.queries.backfill import select_backfill
from db.queries.curation import select_curated_theme, select_current_leaf_themes, select_theme_history
from schemas.curation import CuratedTheme

MAX_FORM_BYTES = 64 * 1024
HISTORY_SHOWN = 30
THEMES_LISTED = 500
FILTERS = {"tz": "UTC", "source": None, "week": None}


async def current_curator(viewer: Viewer) -> Principal:
    if not viewer.allows("curate"):
        raise Forbidden("Changing themes needs a key with the curate scope; sign in with one to curate.")
    return viewer


Curator = Annotated[Principal, Depends(current_curator)]


class Form:
    """A posted urlencoded form (the dashboard posts no files)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def one(self, name: str, default: str = "") -> str:
        return self.fields.get(name, [default])[0].strip()

    def many(self, name: str) -> list[str]:
        return [v.strip() for v in self.fields.get(name, []) if v.strip()]

    def ids(self, name: str) -> list[int]:
        try:
            return [int(v) for v in self.many(name)]
        except ValueError:
            raise BadRequest(f"'{name}' must hold whole numbers.") from None

    def optional_int(self, name: str) -> int | None:
        value = self.one(name)
        if not value:
            return None
        try:
            return int(value)
        except ValueError:
            raise BadRequest(f"'{name}' must be a whole number.") from None

    @property
    def is_confirmed(self) -> bool:
        return self.one("confirm") == "1"


async def read_form(request: Request) -> Form:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PayloadTooLarge(f"That form is larger than {MAX_FORM_BYTES} bytes.")
    return Form(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))


def readable(exc: ValidationError) -> BadRequest:
    problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'form'}: {e['msg']}" for e in exc.errors())
    return BadRequest(f"Check the form: {problems}")


def layout(nav: str = "curate") -> dict[str, Any]:
    """What base.html needs on a curation page."""
    return {"signed_in": True, "filters": dict(FILTERS), "nav": nav}


def describe(change_action: str, detail: dict[str, Any]) -> str:
    """One line for a change in a theme's history."""
    if change_action == "rename":
        return f"Renamed from “{detail.get('from')}” to “{detail.get('to')}”"
    if change_action in ("hide", "unhide"):
        return "Hidden" if change_action == "hide" else "Shown again"
    if change_action == "reparent":
        return f"Parent set to {detail.get('to') or 'none (top level)'}"
    if change_action == "merge":
        return f"Themes {detail.get('theme_ids')} merged into {detail.get('into')} ({detail.get('items')} items pinned)"
    if change_action == "split":
        return f"Split into {detail.get('into')} (sizes {detail.get('sizes')})"
    if change_action == "move":
        return f"{detail.get('items')} item(s) moved into theme {detail.get('theme_id')}"
    if change_action == "create":
        return f"Created “{detail.get('label')}” with {detail.get('items')} item(s)"
    if change_action == "intent":
        return "Intent corrected"
    if change_action == "undo":
        return f"Undid change {detail.get('undid')} ({detail.get('action')})"
    return change_action


async def build_theme_curation(conn: asyncpg.Connection, *, viewer: Principal, theme: Any) -> dict[str, Any]:
    """The theme page's history for everyone, and its curation controls for curators."""
    history = await select_theme_history(conn, theme_id=theme.theme_id, before_id=None, limit=HISTORY_SHOWN)
    can_curate = viewer.allows("curate")
    targets: list[CuratedTheme] = []
    if can_curate:
        targets = [
            t
            for t in await select_current_leaf_themes(conn, limit=THEMES_LISTED)
            if t.scope == theme.scope and t.theme_id != theme.theme_id
        ]
    return {
        "curation": {
            "can_curate": can_curate,
            "history": [(c, describe(c.action, c.detail)) for c in history],
            "targets": targets,
            "theme": await select_curated_theme(conn, theme_id=theme.theme_id),
            "backfill": await select_backfill(conn, theme_id=theme.theme_id),
        }
    }


async def build_curate_page(conn: asyncpg.Connection) -> dict[str, Any]:
    themes = await select_current_leaf_themes(conn, limit=THEMES_LISTED)
    return {"themes": themes}
