"""Jinja rendering for the dashboard, with autoescaping on and the headers every page carries."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from schemas.reports import human_duration

API_DIR = Path(__file__).resolve().parents[1]
TEMPLATES_DIR = API_DIR / "templates"
STATIC_DIR = API_DIR / "static"

# No inline script or style at all: scripts and styles come from /static, chart data from
# <script type="application/json"> blocks (data, not code). Pages are per-viewer: never cached.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def safe_url(value: str | None) -> str | None:
    """Only http(s) links to source systems: an item's url comes from outside, and autoescaping
    does not stop a javascript: URL."""
    if not value:
        return None
    try:
        scheme = urlsplit(value.strip()).scheme.lower()
    except ValueError:
        return None
    return value.strip() if scheme in ("http", "https") else None


def local_time(value: datetime | None, tz: str) -> str:
    if value is None:
        return "–"
    try:
        return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    except OverflowError:  # past year 9999 once moved east of UTC: show it as stored
        return value.strftime("%Y-%m-%d %H:%M UTC")


def signed_pct(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 100:+.0f} %".replace("-", "−")


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def number(value: float | None) -> str:
    return "–" if value is None else f"{value:,}"


def query(params: dict[str, Any], **changes: Any) -> str:
    """A query string from the page's filters with some changed; None values are dropped."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v is not None and v != ""})


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every template is HTML; nothing is marked safe by hand
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        safe_url=safe_url,
        local_time=local_time,
        signed_pct=signed_pct,
        pct=pct,
        number=number,
        duration=human_duration,
    )
    env.globals["query"] = query
    return env


def compile_templates() -> None:
    """Compile every page once, at start-up: the first viewer does not wait for it, and a page's
    build time (which decides whether it is reused, api/report_cache.py) is its data, not Jinja."""
    for path in sorted(TEMPLATES_DIR.glob("*.html")):
        environment().get_template(path.name)


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    # A model's intent below this confidence is marked uncertain in item lists.
    uncertain_below = request.state.settings.intent_uncertain_below
    html = (
        environment()
        .get_template(template)
        .render(request_path=request.url.path, intent_uncertain_below=uncertain_below, **context)
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
