"""GitHub: a repository's issues (not pull requests) updated since a time, with the timeline
events that show closes and reopens.

GET /repos/{owner}/{repo}/issues?state=all&sort=updated&direction=asc&since=<iso>&per_page=100
&page=N (a `Link` header with rel="next" means more), and for every issue ever closed GET
/repos/{owner}/{repo}/issues/{number}/timeline. Auth: GITHUB_TOKEN (Bearer). Budget: 5,000
requests an hour for a token, about 83 a minute.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from connectors.fields import ident, integer, lower, obj, strings, text
from connectors.item import build_item, status_event
from connectors.timeparse import iso
from imports.client import VendorClient
from imports.sources import Cursor, Page, required

_FEATURE = ("enhancement", "feature", "feature request", "feature-request")


class GitHub:
    vendor = "github"
    rate_per_minute = 5000 / 60
    default_url: str | None = "https://api.github.com"

    def headers(self, env: Mapping[str, str]) -> dict[str, str]:
        (token,) = required(env, "GITHUB_TOKEN")
        return {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }

    async def pages(self, client: VendorClient, *, since: datetime, cursor: Cursor | None) -> AsyncIterator[Page]:
        repo = client.account
        start = str(cursor["since"]) if cursor else since.strftime("%Y-%m-%dT%H:%M:%SZ")
        page = int(cursor["page"]) if cursor else 1
        while True:
            params = {
                "state": "all",
                "sort": "updated",
                "direction": "asc",
                "per_page": 100,
                "since": start,
                "page": page,
            }
            response = await client.get(f"/repos/{repo}/issues", params=params)
            items = []
            for issue in response.json():
                if not isinstance(issue, dict) or "pull_request" in issue:
                    continue
                events = await _timeline(client, repo, issue) if issue.get("closed_at") else []
                item = issue_item(repo, issue, events)
                if item is not None:
                    items.append(item)
            if 'rel="next"' not in response.headers.get("link", ""):
                yield Page(items, None)
                return
            page += 1
            yield Page(items, {"since": start, "page": page})


async def _timeline(client: VendorClient, repo: str, issue: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in range(1, 11):
        response = await client.get(f"/repos/{repo}/issues/{issue['number']}/timeline", {"per_page": 100, "page": page})
        for event in response.json():
            kind = event.get("event") if isinstance(event, dict) else None
            if kind == "closed":
                events.append(status_event(iso(event.get("created_at")), "open", "closed"))
            elif kind == "reopened":
                events.append(status_event(iso(event.get("created_at")), "closed", "open"))
        if 'rel="next"' not in response.headers.get("link", ""):
            break
    return events


def issue_item(repo: str, issue: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """An issue as a ticket: open or closed, its labels as tags, its reactions as votes."""
    labels = [lower(label.get("name")) or "" for label in issue.get("labels") or [] if isinstance(label, dict)]
    intent = None
    if any(label in _FEATURE for label in labels):
        intent = "feature_request"
    elif "bug" in labels:
        intent = "bug"
    elif "question" in labels:
        intent = "question"
    reactions = obj(issue.get("reactions"))
    user = obj(issue.get("user"))
    return build_item(
        source="github",
        external_id=f"issue:{repo}#{ident(issue.get('number'))}",
        kind="ticket",
        title=text(issue.get("title")),
        body=text(issue.get("body")),
        created_at=iso(issue.get("created_at")),
        updated_at=iso(issue.get("updated_at")),
        status=lower(issue.get("state")),
        status_events=events,
        tags=strings([label for label in labels if label]),
        requester_id=ident(user.get("login")),
        votes=integer(reactions.get("total_count")),
        url=text(issue.get("html_url")),
        intent=intent,
    )
