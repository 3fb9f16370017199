"""The theme page: what the theme is, its weekly volume, how its tickets fare, and its items."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg

from api.cursors import decode_cursor, encode_cursor
from api.dashboard.charts import Chart, Series, week_label
from api.dashboard.weeks import Weeks
from api.errors import NotFound
from api.windows import invalid
from db.queries.dashboard import (
    ItemBrief,
    ThemeColumn,
    select_item_briefs,
    select_theme_items,
    select_theme_ticket_figures,
    select_weekly_volumes,
)
from db.queries.themes import select_theme
from schemas.timezones import monday_of

ITEMS_PER_PAGE = 25
REPRESENTATIVES = 5


def items_link(theme_id: int, weeks: Weeks, items_week: date | None = None) -> str:
    """The theme page's item list, for one local week when given: where a chart's bar leads."""
    params = {"tz": weeks.tz, "week": weeks.selected.isoformat()}
    if items_week is not None:
        params["items_week"] = items_week.isoformat()
    return f"/themes/{theme_id}?{urlencode(params)}#items"


# Cursor times count microseconds from year 1, so every storable time is a non-negative integer.
EPOCH = datetime(1, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def encode_item_cursor(item: ItemBrief) -> str:
    return encode_cursor((item.created_at - EPOCH) // MICROSECOND, item.item_id)


def decode_item_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    micros, item_id = decode_cursor(cursor, int, int)
    try:
        return EPOCH + micros * MICROSECOND, item_id
    except OverflowError:
        raise invalid("cursor", "That page link is not one this dashboard made; start from the first page.") from None


async def build_theme(
    conn: asyncpg.Connection,
    *,
    theme_id: int,
    weeks: Weeks,
    cursor: str | None,
    pii: bool,
    items_week: date | None = None,
) -> dict[str, Any]:
    theme = await select_theme(conn, theme_id=theme_id, tz=weeks.tz)
    if theme is None:
        raise NotFound(f"Theme {theme_id} does not exist.")
    column: ThemeColumn = "feature_theme_id" if theme.scope == "feature" else "theme_id"
    volumes = await select_weekly_volumes(
        conn, theme_ids=[theme_id], column=column, tz=weeks.tz, start_at=weeks.start_at, end_at=weeks.end_at
    )
    by_week = volumes.get(theme_id, {})
    chart = Chart(
        chart_id="theme-volume",
        kind="bar",
        title="Items per week",
        x_title=f"Week starting Monday ({weeks.tz})",
        y_title="Items (count)",
        labels=[week_label(m) for m in weeks.mondays],
        series=[Series("Items", [float(by_week.get(m, 0)) for m in weeks.mondays])],
        links=[[items_link(theme_id, weeks, m) for m in weeks.mondays]],
    )

    # Feature themes group feature requests (posts as often as tickets), not the issue a ticket
    # is about, so ticket figures are shown for issue themes only.
    figures = None
    if theme.scope == "all":
        figures = await select_theme_ticket_figures(
            conn, theme_id=theme_id, start_at=weeks.start_at, end_at=weeks.end_at
        )

    representatives = await select_item_briefs(conn, item_ids=theme.representative_item_ids[:REPRESENTATIVES], pii=pii)
    within = None
    if items_week is not None:
        monday = monday_of(items_week)
        within = (weeks.midnight(monday), weeks.midnight(monday + timedelta(weeks=1)))
    page = await select_theme_items(
        conn,
        theme_id=theme_id,
        column=column,
        before=decode_item_cursor(cursor),
        limit=ITEMS_PER_PAGE + 1,
        within=within,
        pii=pii,
    )
    next_cursor = encode_item_cursor(page[ITEMS_PER_PAGE - 1]) if len(page) > ITEMS_PER_PAGE else None
    return {
        "theme": theme,
        "chart": chart,
        "window_total": sum(by_week.values()),
        "figures": figures,
        "representatives": representatives,
        "items": page[:ITEMS_PER_PAGE],
        "next_cursor": next_cursor,
        "is_first_page": cursor is None,
        "items_week": monday_of(items_week) if items_week else None,
    }
