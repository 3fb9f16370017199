"""`python -m api.cli import VENDOR --since DATE` and `python -m api.cli import-file PATH`.

Both go through the API's upsert path, print their progress on stderr as they go, and end with a
summary; broken rows of a file are listed with their line numbers. Exit 0 on success, 2 when the
import stopped (its cursor stays on the last page written: run the same command again to resume).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from db.pool import connect
from imports.client import ImportFailed
from imports.files import FileFormatError, FileReport, import_file
from imports.run import ImportBusy, Progress, import_account
from imports.sources import all_sources
from schemas.settings import Settings

_MAX_LISTED_ERRORS = 50


def add_import_commands(commands: Any) -> None:
    api = commands.add_parser("import", help="pull history from a vendor's API (resumable)")
    api.add_argument("vendor", choices=sorted(all_sources()))
    api.add_argument("--since", required=True, help="a date or RFC 3339 time: items updated since then")
    api.add_argument("--url", help="the account's base URL (Zendesk, Freshdesk, Jira, Discourse)")
    api.add_argument("--repo", help="OWNER/NAME (GitHub)")
    api.add_argument("--restart", action="store_true", help="forget the saved cursor and start at --since")
    api.add_argument("--reconcile", action="store_true", help="also re-read this account's recent hours on a schedule")
    files = commands.add_parser("import-file", help="read a vendor export or our NDJSON")
    files.add_argument("path", type=Path)
    files.add_argument("--vendor", choices=sorted(all_sources()), help="the file holds this vendor's API objects")
    files.add_argument("--source", help="the items' source (CSV rows without a source column)")


def _since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ImportFailed(f"--since {value!r} is not a date or an RFC 3339 time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _show(line: str) -> None:
    end = "\r" if sys.stderr.isatty() else "\n"
    print(line, end=end, file=sys.stderr, flush=True)


async def _run_vendor(args: argparse.Namespace, settings: Settings) -> Progress:
    since = _since(args.since)
    conn = await connect(settings, role="cli")
    try:
        return await import_account(
            conn, args.vendor, url=args.url, repo=args.repo, since=since, env=os.environ,
            restart=args.restart, reconcile=args.reconcile,
            on_page=lambda p: _show(
                f"{args.vendor}: {p.pages} pages, {p.seen} items ({p.created} new, {p.updated} updated)"
            ),
        )  # fmt: skip
    finally:
        await conn.close()


async def _run_file(args: argparse.Namespace, settings: Settings) -> FileReport:
    if not args.path.is_file():
        raise FileFormatError(f"{args.path} is not a file")
    conn = await connect(settings, role="cli")
    try:
        return await import_file(
            conn, args.path, vendor=args.vendor, source=args.source,
            on_batch=lambda r: _show(f"{args.path.name}: {r.rows} rows ({r.created} new, {r.updated} updated)"),
        )  # fmt: skip
    finally:
        await conn.close()


def run_import_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if args.command == "import":
            progress = asyncio.run(_run_vendor(args, settings))
            print(
                f"\n{args.vendor}: done, {progress.pages} pages, {progress.seen} items"
                f" ({progress.created} new, {progress.updated} updated, {progress.rejected} refused)"
            )
            return 0
        report = asyncio.run(_run_file(args, settings))
    except (ImportFailed, ImportBusy, FileFormatError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    for error in report.errors[:_MAX_LISTED_ERRORS]:
        print(f"refused: {error}", file=sys.stderr)
    if len(report.errors) > _MAX_LISTED_ERRORS:
        print(f"refused: ... and {len(report.errors) - _MAX_LISTED_ERRORS} more", file=sys.stderr)
    print(
        f"\n{args.path.name}: {report.rows} rows, {report.created} new, {report.updated} updated,"
        f" {len(report.errors)} refused"
    )
    return 0
