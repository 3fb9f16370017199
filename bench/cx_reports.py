"""CX report latency on a million items: p50/p95 of each new report over N calls through the API.

    python -m bench.cx_reports [--items 1000000] [--themes 300] [--calls 30] [--keep var/bench-cx]

Loads the items of bench/reports.py (two years of tickets and posts, 300 themes), then fills in
what the CX reports read: CSAT on ~30% of tickets, the effort counters, 30 parent themes over the
leaves, theme centroids and 2,000 embedded articles (random unit vectors, 384 dimensions), and a
split-shift business-hours schedule in New York. Uses DATABASE_URL when set, else an embedded
Postgres (in --keep, reused on the next run).
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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np

from api.main import create_app
from bench.reports import load
from db.migrate import migrate
from embedded.stores import Postgres, free_port
from schemas.settings import Settings

DIM = 384
ARTICLES = 2_000
PARENTS = 30

_FILL = """
UPDATE item SET
    csat = CASE WHEN random() < 0.3 THEN 1 + floor(random() * 5)::int END,
    customer_replies = floor(random() * 6)::int,
    agent_replies = floor(random() * 6)::int,
    assignee_changes = CASE WHEN random() < 0.9 THEN floor(random() * 3)::int END
WHERE kind = 'ticket' AND csat IS NULL AND customer_replies IS NULL
"""


def _unit(rng: np.random.Generator, n: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    out: np.ndarray[Any, np.dtype[np.float32]] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


async def fill(conn: asyncpg.Connection) -> None:
    rng = np.random.default_rng(19)
    if await conn.fetchval("SELECT count(*) FROM article") >= ARTICLES:
        return
    started = time.monotonic()
    await conn.execute(_FILL)
    leaves = [r["theme_id"] for r in await conn.fetch("SELECT theme_id FROM theme WHERE level = 'leaf'")]
    centroids = _unit(rng, len(leaves))
    await conn.executemany(
        "UPDATE theme SET centroid = $2 WHERE theme_id = $1",
        [(t, c.astype("<f4").tobytes()) for t, c in zip(leaves, centroids, strict=True)],
    )
    parents = [
        await conn.fetchval("INSERT INTO theme (label, level) VALUES ($1, 'parent') RETURNING theme_id", f"area {n}")
        for n in range(PARENTS)
    ]
    await conn.executemany(
        "UPDATE theme SET parent_id = $2 WHERE theme_id = $1", [(t, parents[n % PARENTS]) for n, t in enumerate(leaves)]
    )
    vectors = _unit(rng, ARTICLES)
    await conn.copy_records_to_table(
        "article",
        records=[
            (
                "bench",
                f"a{n}",
                f"article {n}",
                "body",
                secrets.token_bytes(32),
                v.astype("<f4").tobytes(),
                "bench",
                datetime.now(UTC),
            )
            for n, v in enumerate(vectors)
        ],  # fmt: skip
        columns=["source", "external_id", "title", "body", "content_hash", "vector", "model_version", "embedded_at"],
    )
    await conn.execute("VACUUM (ANALYZE) item")
    print(f"filled CX fields in {time.monotonic() - started:.0f} s")


def cases(end: date, schedule_id: int) -> list[tuple[str, str, dict[str, str]]]:
    to = str(end)
    quarter = {"from": str(end - timedelta(days=91)), "to": to}
    week12 = {"from": str(end - timedelta(weeks=12)), "to": to}
    business = {"hours": "business", "schedule_id": str(schedule_id)}
    return [
        # anchors: existing reports of bench/reports.py, measured in the same conditions
        ("reopen-rate", "ANCHOR quarter", quarter),
        ("resolution-times", "ANCHOR full_resolution calendar, quarter", {**quarter, "metric": "full_resolution"}),
        ("satisfaction", "quarter", quarter),
        ("satisfaction", "quarter by theme", {**quarter, "group_by": "theme"}),
        ("satisfaction", "quarter by parent theme", {**quarter, "group_by": "theme", "level": "parent"}),
        ("effort", "quarter by theme", {**quarter, "group_by": "theme"}),
        ("effort", "quarter by tag", {**quarter, "group_by": "tag"}),
        ("theme-impact", "quarter", quarter),
        ("theme-impact", "quarter, parents", {**quarter, "level": "parent"}),
        ("knowledge-gaps", "12 weeks", week12),
        ("resolution-times", "full_resolution business, quarter", {**quarter, "metric": "full_resolution", **business}),
        ("resolution-times", "first_response business, quarter by priority",
         {**quarter, "metric": "first_response", "group_by": "priority", **business}),
        ("resolution-times", "first_resolution business, 12 weeks by theme",
         {**week12, "metric": "first_resolution", "group_by": "theme", **business}),
    ]  # fmt: skip


async def measure(database_url: str, end: date, calls: int) -> None:
    key = secrets.token_urlsafe(24)
    settings = Settings.model_validate({
        "database_url": database_url, "redis_url": "redis://127.0.0.1:1/0", "admin_api_key": key,
        "rate_limit_per_minute": 0, "environment": "test",
    })  # fmt: skip
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {key}"}
    print(f"\nload average before: {os.getloadavg()[0]:.1f}")
    print(f"{'report':<18}{'case':<48}{'rows':>6}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    async with app.router.lifespan_context(app) as state:

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://bench") as client:
            hours = {d: [["09:00", "12:00"], ["13:00", "17:30"]] for d in ("mon", "tue", "wed", "thu", "fri")}
            schedule = {"name": "bench", "tz": "America/New_York", "hours": hours, "holidays": ["2026-11-26"]}
            resp = await client.post("/v1/schedules", json=schedule, headers=headers)
            resp.raise_for_status()
            for name, label, params in cases(end, resp.json()["schedule_id"]):
                timings = []
                for n in range(calls + 2):  # two warm-up calls (the first builds the schedule's clock)
                    t0 = time.perf_counter()
                    resp = await client.get(f"/v1/reports/{name}", params=params, headers=headers)
                    elapsed = (time.perf_counter() - t0) * 1000
                    if resp.status_code != 200:
                        raise SystemExit(f"{name} {label}: {resp.status_code} {resp.text}")
                    if n >= 2:
                        timings.append(elapsed)
                p95 = statistics.quantiles(timings, n=20, method="inclusive")[-1]
                rows = len(resp.json()["rows"])
                print(
                    f"{name:<18}{label:<48}{rows:>6}{statistics.median(timings):>9.1f}{p95:>9.1f}{max(timings):>9.1f}"
                )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


async def run(database_url: str, args: argparse.Namespace) -> None:
    await migrate(database_url)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    conn = await asyncpg.connect(database_url)
    try:
        count = await conn.fetchval("SELECT count(*) FROM item")
        if count == 0 or (count < args.items and "DATABASE_URL" not in os.environ):
            print(f"generating {args.items:,} items, {args.themes} themes")
            await conn.execute("TRUNCATE article")
            await load(conn, args.items, args.themes, end)
        else:
            end = (await conn.fetchval("SELECT max(created_at) FROM item")) + timedelta(days=1)
            print(f"using the {count:,} items already there")
        await fill(conn)
    finally:
        await conn.close()
    await measure(database_url, end.date(), args.calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--themes", type=int, default=300)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--keep", type=Path, help="keep the embedded Postgres here (reused next time)")
    args = parser.parse_args()
    if url := os.environ.get("DATABASE_URL"):
        asyncio.run(run(url, args))
        return
    data_dir = (args.keep or Path(tempfile.mkdtemp(prefix="bench-cx-"))).resolve()  # Postgres needs it absolute
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
