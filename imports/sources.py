"""What every vendor source is, and the table of them with their documented request budgets."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from connectors import parse
from imports.client import ImportFailed, VendorClient

Cursor = dict[str, Any]


@dataclass(frozen=True)
class Page:
    """One page of a vendor's history: its items (ItemCreate-shaped dicts) and where the next
    page starts (None after the last)."""

    items: list[dict[str, Any]]
    cursor: Cursor | None


class Source(Protocol):
    vendor: str
    rate_per_minute: float  # the vendor's documented budget (see docs/imports.md)
    default_url: str | None

    def headers(self, env: Mapping[str, str]) -> dict[str, str]: ...

    def pages(self, client: VendorClient, *, since: datetime, cursor: Cursor | None) -> AsyncIterator[Page]: ...


def mapped(vendor: str, payload: Any, headers: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Items from one API object, mapped by the vendor's webhook connector."""
    return parse(vendor, dict(headers or {}), json.dumps(payload).encode()).items


def with_events(items: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add status events (from audits, changelogs, timelines) to mapped items, without repeats."""
    for item in items:
        seen = {(e["at"], e["from_status"], e["to_status"]) for e in item["status_events"]}
        for event in events:
            key = (event["at"], event["from_status"], event["to_status"])
            if event["at"] and event["to_status"] and key not in seen:
                seen.add(key)
                item["status_events"].append(event)
    return items


def required(env: Mapping[str, str], *names: str) -> list[str]:
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise ImportFailed(f"set {' and '.join(missing)} in the environment")
    return [env[n] for n in names]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def environ() -> Mapping[str, str]:
    return os.environ


def all_sources() -> dict[str, Source]:
    from imports.discourse import Discourse
    from imports.freshdesk import Freshdesk
    from imports.github import GitHub
    from imports.helpscout import HelpScout
    from imports.intercom import Intercom
    from imports.jira import Jira
    from imports.zendesk import Zendesk

    sources: list[Source] = [Zendesk(), Freshdesk(), Jira(), GitHub(), Discourse(), Intercom(), HelpScout()]
    return {s.vendor: s for s in sources}
