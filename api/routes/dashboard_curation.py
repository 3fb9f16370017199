"""The dashboard's curation pages and forms: rename, hide, merge, split through the preview, move
items, create a person's theme, undo. Session-authenticated like every dashboard page, and only
for keys with the curate scope; each form is checked to come from the dashboard's own pages (the
same check as sign-in; the SameSite=Lax cookie already stays off cross-site posts).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from api import curation, theme_split
from api.dashboard.curation import Curator, Form, build_curate_page, layout, read_form, readable
from api.dashboard.render import render
from api.deps import AppSettings, DbConn, RedisClient, RowId
from api.errors import NotFound
from api.routes.curation import enqueue_backfill
from api.routes.dashboard import DashboardRoute, check_same_origin
from api.routes.intent import correct_item_intent
from db.queries.curation import select_curated_theme, select_curated_themes
from schemas.curation import PersonThemeCreate, ThemeItemsAdd, ThemeMerge, ThemePatch, ThemeSplit
from schemas.intent import ItemIntentUpdate

router = APIRouter(tags=["dashboard"], route_class=DashboardRoute, include_in_schema=False)


async def _form(request: Request) -> Form:
    check_same_origin(request)
    return await read_form(request)


def _confirm(
    request: Request,
    *,
    heading: str,
    lines: list[str],
    action: str,
    form: Form,
    names: tuple[str, ...],
    button: str,
    cancel: str,
) -> HTMLResponse:
    fields = [(name, value) for name in names for value in form.fields.get(name, [])]
    context = {"heading": heading, "lines": lines, "action": action, "fields": fields, "button": button}
    return render(request, "curation_confirm.html", {**layout(), **context, "cancel": cancel})


def _done(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


async def _theme(conn: DbConn, theme_id: int) -> str:
    theme = await select_curated_theme(conn, theme_id=theme_id)
    if theme is None:
        raise NotFound(f"Theme {theme_id} does not exist.")
    return theme.label


@router.get("/curate", response_class=HTMLResponse)
async def get_curate(request: Request, conn: DbConn, _: Curator, settings: AppSettings) -> Response:
    context = await build_curate_page(conn)
    return render(request, "curate.html", {**layout(), **context, "threshold": settings.curation_seed_threshold})


@router.post("/themes/{theme_id}/rename", response_class=HTMLResponse)
async def rename_theme(request: Request, theme_id: RowId, conn: DbConn, who: Curator) -> Response:
    form = await _form(request)
    try:
        patch = ThemePatch(label=form.one("label"), version=form.optional_int("version"))
    except ValidationError as exc:
        raise readable(exc) from None
    if not form.is_confirmed:
        old = await _theme(conn, theme_id)
        return _confirm(
            request, heading="Rename this theme?", lines=[f"From: {old}", f"To: {patch.label}",
            "The new label is pinned: later clustering runs keep it."], action=f"/themes/{theme_id}/rename",
            form=form, names=("label", "version"), button="Rename", cancel=f"/themes/{theme_id}",
        )  # fmt: skip
    await curation.patch_theme(conn, who, theme_id, patch)
    return _done(f"/themes/{theme_id}#history")


@router.post("/themes/{theme_id}/hide", response_class=HTMLResponse)
async def hide_theme(request: Request, theme_id: RowId, conn: DbConn, who: Curator) -> Response:
    form = await _form(request)
    hidden = form.one("hidden", "1") == "1"
    try:
        patch = ThemePatch(hidden=hidden, version=form.optional_int("version"))
    except ValidationError as exc:
        raise readable(exc) from None
    if not form.is_confirmed:
        label = await _theme(conn, theme_id)
        what = "drops out of reports and the dashboard; its items count as hidden" if hidden else "shows again"
        return _confirm(
            request, heading=f"{'Hide' if hidden else 'Show'} “{label}”?", lines=[f"The theme {what}."],
            action=f"/themes/{theme_id}/hide", form=form, names=("hidden", "version"),
            button="Hide" if hidden else "Show again", cancel=f"/themes/{theme_id}",
        )  # fmt: skip
    await curation.patch_theme(conn, who, theme_id, patch)
    return _done(f"/themes/{theme_id}#history")


@router.post("/curate/merge", response_class=HTMLResponse)
async def merge_themes(request: Request, conn: DbConn, who: Curator) -> Response:
    form = await _form(request)
    into = form.optional_int("into")
    chosen = form.ids("theme_id")
    others = [t for t in chosen if t != into]
    try:
        body = ThemeMerge(theme_ids=others or chosen, into=into or 0)
    except ValidationError as exc:
        raise readable(exc) from None
    if not form.is_confirmed:
        themes = {t.theme_id: t for t in await select_curated_themes(conn, theme_ids=[*body.theme_ids, body.into])}
        if body.into not in themes:
            raise NotFound(f"Theme {body.into} does not exist.")
        names = [f"“{themes[t].label}” ({themes[t].size} items)" for t in body.theme_ids if t in themes]
        return _confirm(
            request, heading=f"Merge into “{themes[body.into].label}”?",
            lines=[*names, "Their items are pinned to the merged theme; the others are retired as merged."],
            action="/curate/merge", form=form, names=("theme_id", "into"), button="Merge", cancel="/curate",
        )  # fmt: skip
    await curation.merge_themes(conn, who, body)
    return _done(f"/themes/{body.into}#history")


@router.post("/items/{item_id}/intent", response_class=HTMLResponse)
async def correct_intent(
    request: Request, item_id: RowId, conn: DbConn, redis: RedisClient, settings: AppSettings, who: Curator
) -> Response:
    """One click in an item list: a person's intent for the item (undone from the history like
    any curation change); back to the page the click came from."""
    form = await _form(request)
    try:
        body = ItemIntentUpdate(intent=form.one("intent"))
    except ValidationError as exc:
        raise readable(exc) from None
    await correct_item_intent(conn, redis, settings, item_id=item_id, intent=body.intent, api_key_id=who.api_key_id)
    back = form.one("back", "/")
    # Only a path on this site: "//host" and "/\\host" would leave it.
    return _done(back if back.startswith("/") and not back.startswith(("//", "/\\")) else "/")


@router.post("/themes/{theme_id}/split-preview", response_class=HTMLResponse)
async def preview_split(request: Request, theme_id: RowId, conn: DbConn, who: Curator) -> Response:
    form = await _form(request)
    preview = await theme_split.preview_split(conn, who, theme_id, form.optional_int("k"))
    label = await _theme(conn, theme_id)
    return render(request, "split_preview.html", {**layout(), "preview": preview, "label": label})


@router.post("/themes/{theme_id}/split", response_class=HTMLResponse)
async def split_theme(request: Request, theme_id: RowId, conn: DbConn, who: Curator) -> Response:
    form = await _form(request)
    try:
        body = ThemeSplit(preview_id=form.optional_int("preview_id"))
    except ValidationError as exc:
        raise readable(exc) from None
    result = await theme_split.split_theme(conn, who, theme_id, body)
    return _done(f"/themes/{theme_id}#history" if result.split_into else "/curate")


@router.post("/curate/move", response_class=HTMLResponse)
async def move_items(request: Request, conn: DbConn, who: Curator) -> Response:
    form = await _form(request)
    target = form.optional_int("target") or 0
    back = form.optional_int("from")
    try:
        body = ThemeItemsAdd(item_ids=form.ids("item_id"))
    except ValidationError as exc:
        raise readable(exc) from None
    if not form.is_confirmed:
        label = await _theme(conn, target)
        return _confirm(
            request, heading=f"Move {len(body.item_ids)} item(s) into “{label}”?",
            lines=[f"Items {', '.join(map(str, body.item_ids))} belong to “{label}” from now on (pinned)."],
            action="/curate/move", form=form, names=("item_id", "target", "from"), button="Move",
            cancel=f"/themes/{back}" if back else "/curate",
        )  # fmt: skip
    await curation.move_items(conn, who, target, body)
    return _done(f"/themes/{target}#history")


@router.post("/curate/create", response_class=HTMLResponse)
async def create_theme(
    request: Request, conn: DbConn, who: Curator, redis: RedisClient, settings: AppSettings
) -> Response:
    form = await _form(request)
    examples = [line.strip() for line in form.one("examples").splitlines() if line.strip()]
    try:
        body = PersonThemeCreate(
            label=form.one("label"),
            description=form.one("description") or None,
            examples=examples,
            scope="feature" if form.one("scope") == "feature" else "all",
        )
    except ValidationError as exc:
        raise readable(exc) from None
    if not form.is_confirmed:
        threshold = settings.curation_seed_threshold
        return _confirm(
            request, heading=f"Create the theme “{body.label}”?",
            lines=[f"Description: {body.description or '–'}", f"{len(examples)} example text(s).",
                   f"Past and future items whose similarity to the description and examples reaches "
                   f"{threshold:.2f} (cosine) join it; the back-fill runs in the background."],
            action="/curate/create", form=form, names=("label", "description", "examples", "scope"),
            button="Create theme", cancel="/curate",
        )  # fmt: skip
    created = await curation.create_person_theme(conn, who, body, settings)
    enqueue_backfill(redis, settings, created.theme_id)
    return _done(f"/themes/{created.theme_id}#history")


@router.post("/curate/undo/{change_id}", response_class=HTMLResponse)
async def undo_change(request: Request, change_id: RowId, conn: DbConn, who: Curator) -> Response:
    form = await _form(request)
    back = form.optional_int("from")
    if not form.is_confirmed:
        return _confirm(
            request, heading=f"Undo change {change_id}?",
            lines=["What it changed is put back as it was; a later change that depends on it must be undone first."],
            action=f"/curate/undo/{change_id}", form=form, names=("from",), button="Undo",
            cancel=f"/themes/{back}" if back else "/curate",
        )  # fmt: skip
    await curation.undo_change(conn, who, change_id)
    return _done(f"/themes/{back}#history" if back else "/curate")
