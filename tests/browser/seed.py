"""A small, known dataset for the dashboard tests: ~270 items over 12 weeks, posted through the API,
then themes written with SQL (the clustering job is not what these tests are about, and its
themes would not be predictable enough to assert on).

Everything is placed relative to `anchor_week(now)`, the Monday (UTC) two weeks before the
current week, so every timestamp (solves included) is in the past whatever day the tests run.
Items sit between Monday 10:00 and Sunday 20:00 UTC, so they fall in the same week in UTC and in
America/Los_Angeles, except the one "probe" item at Monday 02:00 UTC, which Los Angeles puts in
the previous week.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

WEEKS = 12


@dataclass(frozen=True)
class ThemeSpec:
    key: str
    scope: str
    label: str
    keywords: list[str]


THEMES = (
    ThemeSpec("refund", "all", "Refund not received", ["refund", "money", "card", "days"]),
    ThemeSpec("login", "all", "SSO login fails", ["login", "sso", "okta", "password"]),
    ThemeSpec("csv", "all", "CSV export broken", ["csv", "export", "columns"]),
    ThemeSpec("xss", "all", "<script>alert('label')</script> & co", ["<b>bold</b>", "xss"]),
    ThemeSpec("probe", "all", "Week boundary probe", ["monday", "boundary"]),
    ThemeSpec("dark", "feature", "Dark mode", ["dark", "theme", "night"]),
    ThemeSpec("excel", "feature", "Export to Excel", ["excel", "xlsx", "export"]),
)


def anchor_week(now: datetime) -> date:
    today = now.astimezone(UTC).date()
    return today - timedelta(days=today.weekday()) - timedelta(weeks=2)


def _at(day: date, hours: float = 0.0) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC) + timedelta(hours=hours)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _spread(monday: date, n: int) -> list[datetime]:
    """n moments from Monday 10:00 to Sunday 20:00 UTC of that week."""
    span_h = 6 * 24 + 10
    return [_at(monday, 10 + (span_h * k / max(n - 1, 1) if n > 1 else 0)) for k in range(n)]


def _ticket(key: str, n: int, created: datetime, **extra: Any) -> dict[str, Any]:
    item = {
        "source": "zendesk",
        "external_id": f"{key}-{n}",
        "kind": "ticket",
        "title": f"{key.title()} ticket {n}",
        "body": f"Customer writes about {key} (case {n}).",
        "created_at": _iso(created),
        "url": f"https://support.example.com/agent/tickets/{key}-{n}",
        "channel": "email" if n % 2 else "chat",
        "priority": "high" if n % 3 == 0 else "normal",
        "requester_id": f"customer-{n % 17}",
    }
    item.update(extra)
    return item


def _solved(created: datetime, *, after_h: float, reopen: bool = False) -> dict[str, Any]:
    events = [
        {"at": _iso(created), "to_status": "open"},
        {"at": _iso(created + timedelta(hours=after_h)), "from_status": "open", "to_status": "solved"},
    ]
    if reopen:
        events += [
            {"at": _iso(created + timedelta(hours=after_h + 20)), "from_status": "solved", "to_status": "open"},
            {"at": _iso(created + timedelta(hours=after_h + 40)), "from_status": "open", "to_status": "solved"},
        ]
    return {"status": "solved", "status_events": events, "updated_at": events[-1]["at"]}


def build_items(week: date) -> list[dict[str, Any]]:
    """The whole dataset, JSON-ready for POST /v1/items/bulk."""
    items: list[dict[str, Any]] = []
    mondays = [week - timedelta(weeks=WEEKS - 1 - n) for n in range(WEEKS)]
    n = 0
    for w, monday in enumerate(mondays):
        is_anchor = monday == week
        # A steady 3 a week, then 20 in the anchor week: a spike by the metrics.md definition.
        for created in _spread(monday, 20 if is_anchor else 3):
            n += 1
            items.append(
                _ticket(
                    "refund",
                    n,
                    created,
                    first_response_at=_iso(created + timedelta(hours=2)),
                    **_solved(created, after_h=24, reopen=n % 3 == 0),
                )
            )
        for created in _spread(monday, 5):
            n += 1
            extra = {"status": "open"} if n % 4 == 0 else _solved(created, after_h=72)
            items.append(_ticket("login", n, created, first_response_at=_iso(created + timedelta(minutes=30)), **extra))
        for created in _spread(monday, 4):
            n += 1
            items.append(_ticket("noise", n, created, status="new"))
        for k, created in enumerate(_spread(monday, 2)):
            n += 1
            items.append(
                {
                    "source": "discourse",
                    "external_id": f"dark-{n}",
                    "kind": "post",
                    "title": f"Please add a dark mode ({n})",
                    "body": "It would be great to have a dark theme for night shifts.",
                    "created_at": _iso(created),
                    "url": f"https://community.example.com/t/dark-mode/{n}",
                    "votes": (n % 7) + k,
                    "requester_id": f"forum-user-{n % 9}",
                    "intent": "feature_request",
                }
            )
        if w >= WEEKS - 5:
            for created in _spread(monday, 2):
                n += 1
                items.append(
                    {
                        "source": "discourse",
                        "external_id": f"excel-{n}",
                        "kind": "post",
                        "body": "Exporting straight to xlsx would save us an hour a week.",
                        "created_at": _iso(created),
                        "votes": 3,
                        "requester_id": f"forum-user-{n % 4}",
                        "intent": "feature_request",
                    }
                )
        if w >= WEEKS - 2:
            for created in _spread(monday, 2):
                n += 1
                items.append(
                    {
                        "source": "discourse",
                        "external_id": f"xss-{n}",
                        "kind": "post",
                        "title": "<img src=x onerror=alert('title')>",
                        "body": "<script>alert('body')</script> breaks the page",
                        "created_at": _iso(created),
                        "url": "javascript:alert('url')",
                    }
                )
    # Emerging: first seen in the anchor week (Wednesday on), six items.
    for k in range(6):
        n += 1
        created = _at(week + timedelta(days=2), 9 + k * 12)
        items.append(_ticket("csv", n, created, **_solved(created, after_h=5)))
    items.append(_ticket("probe", n + 1, probe_time(week), status="new", title="Probe at Monday 02:00 UTC"))
    return items


def probe_time(week: date) -> datetime:
    """Monday 02:00 UTC of the week before the anchor week: Sunday evening in Los Angeles."""
    return _at(week - timedelta(weeks=1), 2)


async def apply_themes(conn: asyncpg.Connection) -> dict[str, int]:
    """Insert the themes and point the items at them by external_id prefix; returns key -> id."""
    ids: dict[str, int] = {}
    for spec in THEMES:
        column = "feature_theme_id" if spec.scope == "feature" else "theme_id"
        theme_id: int = await conn.fetchval(
            "INSERT INTO theme (scope, label, keywords, status) VALUES ($1, $2, $3, 'active') RETURNING theme_id",
            spec.scope,
            spec.label,
            spec.keywords,
        )
        await conn.execute(f"UPDATE item SET {column} = $1 WHERE external_id LIKE $2", theme_id, f"{spec.key}-%")
        await conn.execute(
            "UPDATE theme t SET size = s.n, first_seen_at = s.first, last_seen_at = s.last,"
            " representative_item_ids = s.reps"
            " FROM (SELECT count(*) AS n, min(created_at) AS first, max(created_at) AS last,"
            f" (array_agg(item_id ORDER BY item_id))[1:3] AS reps FROM item WHERE {column} = $1) s"
            " WHERE t.theme_id = $1",
            theme_id,
        )
        ids[spec.key] = theme_id
    # The worker would copy the source's hint into intent; do it here too, for tests without one.
    await conn.execute("UPDATE item SET intent = intent_hint WHERE intent IS NULL AND intent_hint IS NOT NULL")
    return ids
