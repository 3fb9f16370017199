"""Reports in a terminal, without HTTP: the same functions the routes call, on DATABASE_URL.

python -m api.cli report theme-trends --from 2026-10-01 --to 2026-11-01 [--tz Europe/Berlin] [--top 20]
python -m api.cli report reopen-rate --from 2026-10-01 --to 2026-11-01 [--group-by source]
python -m api.cli report resolution-times --metric full_resolution --from ... --to ... [--group-by tag]
    [--schedule-id 1]  (business hours)
python -m api.cli report satisfaction|effort --from ... --to ... [--group-by theme] [--level parent]
python -m api.cli report theme-impact|knowledge-gaps --from ... --to ... [--level parent] [--top 10]
Every report takes --level parent to count items under their theme's parent.
python -m api.cli import-articles export.json --vendor zendesk-guide|intercom
python -m api.cli import zendesk --url https://acme.zendesk.com --since 2026-01-01   (see api/cli_imports.py)
python -m api.cli import-file tickets.ndjson [--vendor zendesk]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from api.article_import import import_articles
from api.cli_imports import add_import_commands, run_import_command
from api.errors import AppError
from api.routes.cx_reports import CX_REPORTS, build_business_times, build_cx_report
from api.routes.reports import (
    build_feature_requests,
    build_reopen_rate,
    build_resolution_times,
    build_theme_trends,
)
from api.windows import parse_window
from connectors.articles import ArticleVendor
from connectors.errors import MalformedPayload
from db.pool import connect
from schemas.items import Kind
from schemas.reports import (
    THEME_TREND_COLUMNS,
    FeatureGroupBy,
    GroupBy,
    Report,
    ThemeLevel,
    TimeMetric,
    feature_request_columns,
    reopen_rate_columns,
    resolution_time_columns,
)
from schemas.settings import Settings, get_settings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m api.cli", description="Reports and imports in a terminal.")
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="print a report as a table")
    reports = report.add_subparsers(dest="report", required=True)
    for name in ("theme-trends", "reopen-rate", "resolution-times", "feature-requests", *CX_REPORTS):
        sub = reports.add_parser(name)
        sub.add_argument("--from", dest="from_", required=True, help="RFC 3339 or a date in --tz (inclusive)")
        sub.add_argument("--to", required=True, help="RFC 3339 or a date in --tz (exclusive)")
        sub.add_argument("--tz", default="UTC", help="IANA time zone (default UTC)")
        sub.add_argument("--level", choices=get_args(ThemeLevel), default="leaf", help="theme level (default leaf)")
        if name == "theme-trends":
            sub.add_argument("--source")
            sub.add_argument("--kind", choices=get_args(Kind))
            sub.add_argument("--top", type=int)
        elif name == "feature-requests":
            sub.add_argument("--group-by", choices=get_args(FeatureGroupBy), default="week,theme")
            sub.add_argument("--top", type=int)
        else:
            sub.add_argument("--group-by", choices=get_args(GroupBy))
        if name == "resolution-times":
            sub.add_argument("--metric", required=True, choices=get_args(TimeMetric))
            sub.add_argument("--schedule-id", type=int, help="business hours of this schedule (else calendar time)")
        if name in CX_REPORTS:
            sub.add_argument("--top", type=int)
    articles = commands.add_parser("import-articles", help="import a Zendesk Guide or Intercom article export")
    articles.add_argument("path", type=Path, help="the export: the vendor's article-list JSON (or a list of pages)")
    articles.add_argument("--vendor", required=True, choices=get_args(ArticleVendor))
    add_import_commands(commands)
    return parser.parse_args(argv)


async def run_report(args: argparse.Namespace, settings: Settings) -> tuple[Report[Any], list[str]]:
    window = parse_window(args.from_, args.to, args.tz)
    conn = await connect(settings, role="cli")
    try:
        if args.report in CX_REPORTS:
            report, rows, columns = await build_cx_report(
                conn, args.report, window, group_by=getattr(args, "group_by", None), level=args.level, top=args.top
            )
            return report.model_copy(update={"rows": rows}), columns
        if args.report == "resolution-times" and args.schedule_id is not None:
            business = await build_business_times(
                conn, window=window, metric=args.metric, schedule_id=args.schedule_id, group_by=args.group_by
            )
            return business, resolution_time_columns(args.metric, args.group_by)
        if args.report == "theme-trends":
            trends = await build_theme_trends(
                conn, window=window, source=args.source, kind=args.kind, top=args.top, level=args.level
            )
            return trends, THEME_TREND_COLUMNS
        if args.report == "feature-requests":
            features = await build_feature_requests(
                conn, window=window, group_by=args.group_by, top=args.top, level=args.level,
                uncertain_below=settings.intent_uncertain_below,
            )  # fmt: skip
            return features, feature_request_columns(args.group_by)
        if args.report == "reopen-rate":
            reopens = await build_reopen_rate(conn, window=window, group_by=args.group_by, level=args.level)
            return reopens, reopen_rate_columns(args.group_by)
        times = await build_resolution_times(
            conn, window=window, metric=args.metric, group_by=args.group_by, level=args.level
        )
        return times, resolution_time_columns(args.metric, args.group_by)
    finally:
        await conn.close()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_table(rows: Sequence[BaseModel], columns: list[str]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    dumped = [row.model_dump(mode="json") for row in rows]
    cells = [[_cell(d.get(c)) for c in columns] for d in dumped]
    widths = [max([len(c), *(len(line[n]) for line in cells)]) for n, c in enumerate(columns)]
    numeric = [bool(dumped) and all(isinstance(d.get(c), int | float) for d in dumped) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for line in cells:
        padded = (v.rjust(w) if num else v.ljust(w) for v, w, num in zip(line, widths, numeric, strict=True))
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command in ("import", "import-file"):
        return run_import_command(args, get_settings())
    if args.command == "import-articles":
        return print_article_import(args.path, args.vendor, get_settings())
    try:
        report, columns = asyncio.run(run_report(args, get_settings()))
    except AppError as exc:
        details = exc.detail if isinstance(exc.detail, list) else [{"msg": exc.detail}]
        for detail in details:
            print(f"error: {detail['msg']}", file=sys.stderr)
        return 2
    window = report.window
    print(f"{report.definition}: [{window.from_.isoformat()}, {window.to.isoformat()}) {window.tz}")
    print(render_table(report.rows, columns))
    return 0


def print_article_import(path: Path, vendor: ArticleVendor, settings: Settings) -> int:
    try:
        result = asyncio.run(import_articles(path, vendor, settings))
    except (OSError, ValueError, MalformedPayload) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for reason in result.rejected:
        print(f"left out {reason}", file=sys.stderr)
    queued = "embedding queued" if result.enqueued else "embedding not queued (Redis unreachable)"
    print(f"{result.created} created, {result.updated} updated, {result.drafts} drafts skipped,"
          f" {len(result.rejected)} left out; {queued}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
