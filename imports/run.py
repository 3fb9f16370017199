"""Run one import: each page's items and its resume cursor are written in one transaction.

So a crash, a revoked token or a rate limit too long to wait out leaves the cursor on the last
page written: the next run resumes there, and since the upsert is idempotent (an older or equal
version never overwrites a newer one) a page seen twice changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from pydantic import ValidationError

from db.queries.imports import (
    ImportState,
    update_import_finished,
    update_import_page,
    update_import_started,
    update_reconciled,
    upsert_import_state,
)
from db.queries.items import upsert_items
from imports.client import ImportFailed, Sleep, VendorClient
from imports.sources import Source, all_sources
from schemas.items import ItemCreate

log = logging.getLogger(__name__)

# A finished import continues next time from its start, less this overlap for clock skew and for
# vendor indexes that lag (Zendesk leaves out the last minute).
RESUME_OVERLAP = timedelta(minutes=5)
_LOCK_NAMESPACE = 7_301_005


@dataclass
class Progress:
    pages: int = 0
    seen: int = 0
    created: int = 0
    updated: int = 0
    rejected: int = 0


def valid_items(rows: list[dict[str, Any]]) -> tuple[list[ItemCreate], list[str]]:
    """The rows that pass ItemCreate, and a reason for each that does not."""
    items, errors = [], []
    for row in rows:
        try:
            items.append(ItemCreate.model_validate(row))
        except ValidationError as exc:
            first = exc.errors()[0]
            errors.append(f"{row.get('source')}:{row.get('external_id')}: {first['loc']}: {first['msg']}")
    return items, errors


async def write_items(conn: asyncpg.Connection, items: list[ItemCreate]) -> tuple[int, int]:
    """Upsert through the API's path; returns (created, updated). Call inside a transaction."""
    outcomes = await upsert_items(conn, items=items)
    created = sum(o.created for o in outcomes)
    return created, sum(o.changed and not o.created for o in outcomes)


async def run_import(
    conn: asyncpg.Connection,
    source: Source,
    client: VendorClient,
    *,
    state: ImportState,
    since: datetime,
    keep_cursor: bool = True,
    on_page: Callable[[Progress], None] = lambda _: None,
) -> Progress:
    """Pull pages from `state.cursor` (or `since`) to the end.

    Args:
        keep_cursor: False for the reconciler, which re-reads recent hours without moving the
            history import's cursor.

    Raises:
        ImportFailed: the vendor refused the token, or kept failing; pages written so far stay.
        ImportBusy: another process is running this account's import.
    """
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", _LOCK_NAMESPACE, state.import_id):
        raise ImportBusy(f"an import of {state.vendor} {state.account} is already running")
    started = datetime.now(UTC)
    progress = Progress()
    cursor = state.cursor if keep_cursor else None
    try:
        async for page in source.pages(client, since=since, cursor=cursor):
            items, errors = valid_items(page.items)
            for error in errors:
                log.warning("import %s: row refused: %s", state.vendor, error)
            async with conn.transaction():
                created, updated = await write_items(conn, items)
                if keep_cursor:
                    await update_import_page(
                        conn, import_id=state.import_id, cursor=page.cursor, seen=len(page.items),
                        created=created, updated=updated,
                    )  # fmt: skip
            progress.pages += 1
            progress.seen += len(page.items)
            progress.created += created
            progress.updated += updated
            progress.rejected += len(errors)
            on_page(progress)
        if keep_cursor:
            await update_import_finished(
                conn, import_id=state.import_id, error=None, resume_since=started - RESUME_OVERLAP
            )
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1, $2)", _LOCK_NAMESPACE, state.import_id)
    return progress


class ImportBusy(Exception):
    pass


def account_url(source: Source, url: str | None) -> str:
    """The base URL of the vendor account: given, or the vendor's one public API host."""
    base = url or source.default_url
    if not base:
        raise ImportFailed(f"{source.vendor} needs --url (your account's address, e.g. https://acme.example.com)")
    if not base.startswith(("https://", "http://")):
        raise ImportFailed(f"--url must start with https:// (got {base!r})")
    return base.rstrip("/")


async def import_account(
    conn: asyncpg.Connection,
    vendor: str,
    *,
    url: str | None,
    repo: str | None,
    since: datetime,
    env: Mapping[str, str],
    restart: bool = False,
    reconcile: bool = False,
    on_page: Callable[[Progress], None] = lambda _: None,
    sleep: Sleep = asyncio.sleep,
) -> Progress:
    """Import (or resume importing) one vendor account's history; records the outcome in Postgres."""
    source = all_sources().get(vendor)
    if source is None:
        raise ImportFailed(f"unknown vendor {vendor!r}; one of {', '.join(sorted(all_sources()))}")
    base = account_url(source, url)
    if vendor == "github" and (not repo or repo.count("/") != 1):
        raise ImportFailed("github needs --repo OWNER/NAME")
    headers = source.headers(env)
    account = f"{base}/{repo}" if repo else base
    state = await upsert_import_state(
        conn, vendor=vendor, account=account, since=since, reconcile=reconcile, restart=restart
    )
    await update_import_started(conn, import_id=state.import_id)
    try:
        async with _http(base, headers) as http:
            client = VendorClient(http, rate_per_minute=source.rate_per_minute, sleep=sleep)
            client.account = repo or ""
            return await run_import(conn, source, client, state=state, since=state.since, on_page=on_page)
    except ImportFailed as exc:
        await update_import_finished(conn, import_id=state.import_id, error=str(exc))
        raise


async def reconcile_account(
    conn: asyncpg.Connection, state: ImportState, *, hours: float, env: Mapping[str, str], sleep: Sleep = asyncio.sleep
) -> int:
    """Re-read the last `hours` of an account and upsert what the webhooks missed; returns how many
    items were new (the webhooks never delivered them). Leaves the history cursor alone."""
    source = all_sources()[state.vendor]
    base, repo = state.account, ""
    if state.vendor == "github":
        base, owner, name = state.account.rsplit("/", 2)
        repo = f"{owner}/{name}"
    error = None
    missed = 0
    try:
        async with _http(base, source.headers(env)) as http:
            client = VendorClient(http, rate_per_minute=source.rate_per_minute, sleep=sleep)
            client.account = repo
            since = datetime.now(UTC) - timedelta(hours=hours)
            progress = await run_import(conn, source, client, state=state, since=since, keep_cursor=False)
            missed = progress.created
    except (ImportFailed, ImportBusy) as exc:
        error = f"reconcile: {exc}"
    await update_reconciled(conn, import_id=state.import_id, missed=missed, error=error)
    return missed


def _http(base: str, headers: dict[str, str]) -> httpx.AsyncClient:
    # No redirects: a token must never follow a redirect to another host.
    return httpx.AsyncClient(base_url=base, headers=headers, timeout=httpx.Timeout(30.0), follow_redirects=False)
