"""Help-centre article exports mapped onto `schemas.articles.ArticleCreate` dicts.

- Zendesk Guide: the Help Center API's article list (`GET /api/v2/help_center/articles.json`),
  `{"articles": [{"id", "title", "body" (HTML), "html_url", "updated_at", "draft", ...}]}`, one
  page or a JSON array of pages.
- Intercom: the Articles API's list (`GET /articles`), `{"type": "list", "data": [{"type":
  "article", "id", "title", "description", "body" (HTML), "state", "updated_at" (seconds), "url"}]}`,
  one page or an array of pages.

Drafts are left out (Zendesk `draft: true`, Intercom `state: "draft"`): a gap is measured
against what customers can read.
"""

from __future__ import annotations

from typing import Any, Literal

from connectors.errors import MalformedPayload
from connectors.fields import flag, ident, lower, obj, text
from connectors.html import html_to_text
from connectors.timeparse import iso

ArticleVendor = Literal["zendesk-guide", "intercom"]
SOURCES: dict[ArticleVendor, str] = {"zendesk-guide": "zendesk_guide", "intercom": "intercom_articles"}


def parse_article_export(vendor: ArticleVendor, payload: Any) -> tuple[list[dict[str, Any]], int]:
    """(article dicts, drafts left out). Raises MalformedPayload when the shape is not the vendor's."""
    pages = payload if isinstance(payload, list) else [payload]
    key = "articles" if vendor == "zendesk-guide" else "data"
    articles: list[dict[str, Any]] = []
    drafts = 0
    for page in pages:
        if not isinstance(page, dict) or not isinstance(page.get(key), list):
            raise MalformedPayload(f"a {vendor} article export is an object with a {key!r} list (or a list of them)")
        for raw in map(obj, page[key]):
            is_draft = (
                flag(raw.get("draft")) is True if vendor == "zendesk-guide" else lower(raw.get("state")) == "draft"
            )
            if is_draft:
                drafts += 1
                continue
            articles.append(_article(vendor, raw))
    return articles, drafts


def _is_draft(vendor: ArticleVendor, raw: dict[str, Any]) -> bool:
    if vendor == "zendesk-guide":
        return flag(raw.get("draft")) is True
    return lower(raw.get("state")) == "draft"


def _article(vendor: ArticleVendor, raw: dict[str, Any]) -> dict[str, Any]:
    body = html_to_text(text(raw.get("body")) or "")
    if vendor == "intercom" and (description := text(raw.get("description"))):
        body = f"{description}\n{body}" if body else description
    return {
        "source": SOURCES[vendor],
        "external_id": ident(raw.get("id")) or "",
        "title": text(raw.get("title")) or "",
        "body": body,
        "url": text(raw.get("html_url") if vendor == "zendesk-guide" else raw.get("url")),
        "updated_at": iso(raw.get("updated_at")),
    }
