"""Report latency on a million items: p50/p95 of each report over 50 calls through the HTTP API.

    python -m bench.reports [--items 1000000] [--themes 300] [--calls 50] [--keep var/bench-reports]

Uses DATABASE_URL when it is set (loading the items only if the database has none), otherwise
starts an embedded Postgres in a temporary directory (or in --keep, reused on the next run).
The items are written straight into Postgres with COPY: two years of tickets and forum posts,
volume growing over time, themes born along the way, with realistic first replies, solves and
reopens (status events plus the derived columns the ingest path maintains). The API runs
in-process (httpx ASGI transport, real pool); the per-key rate limit is off, as it needs Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np

from api.main import create_app
from db.migrate import migrate
from embedded.stores import Postgres, free_port
from schemas.settings import Settings

SPAN_DAYS = 730
CHUNK = 100_000
ITEM_COLUMNS = (
    "source", "external_id", "kind", "title", "body", "created_at", "source_updated_at", "status", "status_raw",
    "first_response_at", "channel", "priority", "product", "tags", "requester_id", "votes", "payload_hash",
    "first_solved_at", "last_solved_at", "reopen_count", "intent", "intent_confidence", "theme_id", "embedded_at",
    "pending", "processed_at",
)  # fmt: skip
SOURCES = np.array(["zendesk", "freshdesk", "intercom", "jira", "api"])
CHANNELS = np.array(["email", "chat", "web", "phone", "api"])
PRIORITIES = np.array(["low", "normal", "high", "urgent"])
PRODUCTS = np.array(["billing", "app", "api", "web", "mobile", "integrations", "reports", "admin"])
TAGS = [f"tag{n}" for n in range(50)]
INTENTS = np.array(["bug", "question", "feature_request", "other"])
HOUR = 3600.0


Rows = list[tuple[Any, ...]]


def _at(base: float, offset: float) -> datetime:
    return datetime.fromtimestamp(base + offset, UTC)


def generate(n_items: int, n_themes: int, end: datetime, seed: int = 7) -> Iterator[tuple[Rows, Rows]]:
    """Chunks of (item rows, status event rows). Items are COPYed in order into an empty table, so
    the n-th item gets item_id n + 1 and its events can name it directly."""
    rng = np.random.default_rng(seed)
    base = (end - timedelta(days=SPAN_DAYS)).timestamp()
    span = SPAN_DAYS * 86_400.0
    # volume doubles over the two years: density ∝ 1 + t, inverse CDF t = sqrt(1 + 3u) - 1
    created_all = np.sort((np.sqrt(1 + 3 * rng.random(n_items)) - 1) * span)
    birth = np.where(rng.random(n_themes) < 0.8, 0.0, rng.random(n_themes) * span)  # 20% born later
    weight = 1.0 / np.arange(1, n_themes + 1) ** 0.8
    bodies = [
        "".join(rng.choice(list("abcdefghij klmnopqrstuvwxyz"), size=int(k))) for k in rng.integers(200, 800, 500)
    ]
    for start in range(0, n_items, CHUNK):
        created = created_all[start : start + CHUNK]
        n = len(created)
        is_ticket = rng.random(n) < 0.8
        theme = rng.choice(n_themes, size=n, p=weight / weight.sum())
        theme = np.where(birth[theme] <= created, theme, rng.choice(int(n_themes * 0.8), size=n))
        theme_id: list[int | None] = [
            None if u else int(t) + 1 for u, t in zip(rng.random(n) < 0.15, theme, strict=True)
        ]
        # lifecycles (seconds after creation); NaN = never happened
        reply = np.where(rng.random(n) < 0.9, rng.lognormal(np.log(2 * HOUR), 1.2, n), np.nan)
        solve1 = np.where(rng.random(n) < 0.88, rng.lognormal(np.log(24 * HOUR), 1.3, n), np.nan)
        reopens = np.where(rng.random(n) < 0.12, np.where(rng.random(n) < 0.25, 2, 1), 0)
        gaps = rng.lognormal(np.log(48 * HOUR), 1.0, (n, 4))
        resolved_again = rng.random(n) < 0.8
        items: Rows = []
        events: Rows = []
        horizon = end.timestamp() - base
        for k in range(n):
            c = float(created[k])
            item_id, ext, body = start + k + 1, f"b{start + k}", bodies[k % len(bodies)]
            at = _at(base, c)
            if not is_ticket[k]:
                items.append(("discourse", ext, "post", None, body, at, at, None, None, None, None, None,
                              str(PRODUCTS[k % 8]), [], f"u{k % 50_000}", int(rng.integers(0, 40)), b"\0" * 32,
                              None, None, 0, str(INTENTS[k % 4]), 0.8, theme_id[k], at, False, at))  # fmt: skip
                continue
            steps: list[tuple[float, str, str]] = []  # (at, from, to)
            if not np.isnan(solve1[k]):
                t = c + float(solve1[k])
                steps.append((t, "open", "solved"))
                for r in range(int(reopens[k])):
                    t += float(gaps[k, 2 * r])
                    steps.append((t, "solved", "open"))
                    if r < int(reopens[k]) - 1 or resolved_again[k]:
                        t += float(gaps[k, 2 * r + 1])
                        steps.append((t, "open", "solved"))
            steps = [s for s in steps if s[0] < horizon]
            solves = [s[0] for s in steps if s[2] == "solved"]
            status = steps[-1][2] if steps else ("open" if c + 3600 < horizon else "new")
            first_reply = c + float(reply[k]) if not np.isnan(reply[k]) and c + reply[k] < horizon else None
            ts = [_at(base, s[0]) for s in steps]
            items.append((
                str(SOURCES[k % 5]), ext, "ticket", None, body, at, ts[-1] if ts else at, status, status,
                _at(base, first_reply) if first_reply is not None else None,
                str(CHANNELS[(k // 5) % 5]), str(PRIORITIES[(k // 25) % 4]), str(PRODUCTS[(k // 7) % 8]),
                [TAGS[(k * 7 + j * 13) % 50] for j in range(k % 4)], f"u{k % 50_000}", None, b"\0" * 32,
                _at(base, solves[0]) if solves else None,
                _at(base, solves[-1]) if solves else None,
                sum(1 for s in steps if s[2] == "open"), str(INTENTS[k % 4]), 0.8, theme_id[k], at, False, at,
            ))  # fmt: skip
            events.extend((item_id, t, f, s, f, s) for t, (_, f, s) in zip(ts, steps, strict=True))
        yield items, events


async def load(conn: asyncpg.Connection, n_items: int, n_themes: int, end: datetime) -> None:
    await conn.execute("TRUNCATE item, status_event, theme RESTART IDENTITY CASCADE")
    await conn.copy_records_to_table(
        "theme", records=[(f"theme {n}", [f"kw{n}"]) for n in range(1, n_themes + 1)], columns=["label", "keywords"]
    )
    started = time.monotonic()
    for items, events in generate(n_items, n_themes, end):
        await conn.copy_records_to_table("item", records=items, columns=ITEM_COLUMNS)
        await conn.copy_records_to_table(
            "status_event",
            records=events,
            columns=["item_id", "at", "from_status", "to_status", "from_status_raw", "to_status_raw"],
        )
        done = await conn.fetchval("SELECT max(item_id) FROM item")
        assert await conn.fetchval("SELECT external_id FROM item WHERE item_id = $1", done) == f"b{done - 1}"
        print(f"  loaded {done:>9,} items  ({time.monotonic() - started:5.1f} s)", flush=True)
    await conn.execute("VACUUM (ANALYZE) item")
    await conn.execute("VACUUM (ANALYZE) status_event")
    await conn.execute("VACUUM (ANALYZE) theme")


def cases(end: date) -> list[tuple[str, str, dict[str, str]]]:
    to = str(end)
    week12 = {"from": str(end - timedelta(weeks=12)), "to": to}
    quarter = {"from": str(end - timedelta(days=91)), "to": to}
    year = {"from": str(end - timedelta(weeks=52)), "to": to}
    return [
        ("theme-trends", "12 weeks, all themes", week12),
        ("theme-trends", "12 weeks LA, tickets, top 20", {**week12, "tz": "America/Los_Angeles", "kind": "ticket",
                                                          "top": "20"}),
        ("theme-trends", "52 weeks, top 10", {**year, "top": "10"}),
        ("reopen-rate", "quarter", quarter),
        ("reopen-rate", "quarter by source", {**quarter, "group_by": "source"}),
        ("reopen-rate", "quarter by tag", {**quarter, "group_by": "tag"}),
        ("resolution-times", "first_response, quarter by priority", {**quarter, "metric": "first_response",
                                                                     "group_by": "priority"}),
        ("resolution-times", "first_resolution, quarter by theme", {**quarter, "metric": "first_resolution",
                                                                    "group_by": "theme"}),
        ("resolution-times", "full_resolution, quarter", {**quarter, "metric": "full_resolution"}),
        ("resolution-times", "full_resolution, 12 weeks by tag", {**week12, "metric": "full_resolution",
                                                                  "group_by": "tag"}),
    ]  # fmt: skip


async def measure(database_url: str, end: date, calls: int) -> None:
    key = secrets.token_urlsafe(24)
    settings = Settings.model_validate({
        "database_url": database_url, "redis_url": "redis://127.0.0.1:1/0", "admin_api_key": key,
        "rate_limit_per_minute": 0, "environment": "test",
    })  # fmt: skip
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {key}"}
    # the machine's load average, to read the latencies against (2 shared cores here)
    print(f"\nload average before: {os.getloadavg()[0]:.1f}")
    print(f"{'report':<18}{'case':<40}{'rows':>6}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    async with app.router.lifespan_context(app) as state:

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://bench") as client:
            for name, label, params in cases(end):
                timings = []
                for n in range(calls + 2):  # two warm-up calls
                    t0 = time.perf_counter()
                    resp = await client.get(f"/v1/reports/{name}", params=params, headers=headers)
                    elapsed = (time.perf_counter() - t0) * 1000
                    resp.raise_for_status()
                    if n >= 2:
                        timings.append(elapsed)
                p95 = statistics.quantiles(timings, n=20, method="inclusive")[-1]
                rows = len(resp.json()["rows"])
                print(
                    f"{name:<18}{label:<40}{rows:>6}{statistics.median(timings):>9.1f}{p95:>9.1f}{max(timings):>9.1f}"
                )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


async def run(database_url: str, args: argparse.Namespace) -> None:
    await migrate(database_url)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    conn = await asyncpg.connect(database_url)
    try:
        count = await conn.fetchval("SELECT count(*) FROM item")
        # an outside database is loaded only when empty; our own one is (re)loaded when short
        if count == 0 or (count < args.items and "DATABASE_URL" not in os.environ):
            print(f"generating {args.items:,} items over {SPAN_DAYS} days, {args.themes} themes")
            started = time.monotonic()
            await load(conn, args.items, args.themes, end)
            print(f"loaded in {time.monotonic() - started:.0f} s")
        else:
            end = (await conn.fetchval("SELECT max(created_at) FROM item")) + timedelta(days=1)
            print(f"using the {count:,} items already there")
        size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('item'))")
        print(f"item table with indexes: {size}")
    finally:
        await conn.close()
    await measure(database_url, end.date(), args.calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--themes", type=int, default=300)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--keep", type=Path, help="keep the embedded Postgres here (reused next time)")
    args = parser.parse_args()
    if url := os.environ.get("DATABASE_URL"):
        asyncio.run(run(url, args))
        return
    data_dir = (args.keep or Path(tempfile.mkdtemp(prefix="bench-reports-"))).resolve()  # Postgres needs it absolute
    pg = Postgres(data_dir, free_port())
    pg.start()
    try:
        pg.create_database("bench")
        asyncio.run(run(pg.url("bench"), args))
    finally:
        pg.stop()
        if args.keep is None:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
