"""Dashboard page times with 100,000 items and 300 themes.

    python bench/dashboard.py                  # embedded Postgres + Valkey in a temporary directory
    python bench/dashboard.py --loads 50
    DATABASE_URL=... REDIS_URL=... python bench/dashboard.py --reset   # your own (throwaway!) stores

Seeds with COPY straight into Postgres (items over the last 26 weeks, 270 issue themes with a
long-tailed size distribution, 30 feature themes, solved/reopened tickets, runs and failures),
starts the API with uvicorn, signs in through /login, then loads each page with the session cookie
and reads its server time from the Server-Timing header (client time beside it). Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from db.migrate import migrate  # noqa: E402
from embedded.stores import Postgres, Valkey, free_port  # noqa: E402

ITEMS = 100_000
ISSUE_THEMES = 270
FEATURE_THEMES = 30
WEEKS = 26
SOURCES = ("zendesk", "freshdesk", "intercom", "discourse", "github")
CHANNELS = ("email", "chat", "web", "phone", None)
PRIORITIES = ("low", "normal", "high", "urgent", None)
WORDS = "refund login export invoice password sso billing crash slow sync mobile upload api webhook report".split()

ITEM_COLUMNS = (
    "source", "external_id", "kind", "title", "body", "created_at", "status", "first_response_at", "channel",
    "priority", "product", "tags", "requester_id", "votes", "url", "payload_hash", "first_solved_at",
    "last_solved_at", "reopen_count", "intent", "intent_confidence", "theme_id", "feature_theme_id",
    "embedded_at", "clean_text", "pending", "processed_at",
)  # fmt: skip


def theme_rows(rng: random.Random, now: datetime) -> list[tuple[Any, ...]]:
    rows = []
    for n in range(ISSUE_THEMES + FEATURE_THEMES):
        scope = "all" if n < ISSUE_THEMES else "feature"
        words = rng.sample(WORDS, 4)
        status = rng.choice(("active", "active", "active", "emerging", "fading"))
        rows.append((scope, f"{words[0]} {words[1]} issue {n + 1}", words, status, now - timedelta(weeks=WEEKS)))
    return rows


def item_rows(rng: random.Random, now: datetime, issue_ids: list[int], feature_ids: list[int]) -> list[tuple[Any, ...]]:
    start = now - timedelta(weeks=WEEKS)
    span = (now - start).total_seconds()
    # Long tail: a few big themes, many small ones (Zipf-like weights).
    issue_weights = [1 / (k + 1) ** 0.9 for k in range(len(issue_ids))]
    feature_weights = [1 / (k + 1) for k in range(len(feature_ids))]
    issue_pick = rng.choices(issue_ids, weights=issue_weights, k=ITEMS)
    feature_pick = rng.choices(feature_ids, weights=feature_weights, k=ITEMS)
    rows = []
    for n in range(ITEMS):
        created = start + timedelta(seconds=rng.random() * span)
        source = SOURCES[n % len(SOURCES)]
        is_post = source in ("discourse", "github")
        is_feature = rng.random() < 0.12
        theme_id = issue_pick[n] if rng.random() < 0.85 else None
        status = first_response = first_solved = last_solved = None
        reopens = 0
        if not is_post:
            first_response = created + timedelta(minutes=rng.expovariate(1 / 240))
            if rng.random() < 0.8:
                first_solved = created + timedelta(hours=rng.expovariate(1 / 30))
                last_solved = first_solved
                if rng.random() < 0.15:
                    reopens = rng.randint(1, 3)
                    last_solved = first_solved + timedelta(hours=rng.expovariate(1 / 20))
                status = "solved" if last_solved < now else "open"
                if last_solved >= now:
                    first_solved = last_solved = None
                    reopens = 0
            else:
                status = rng.choice(("new", "open", "pending"))
        body = f"{rng.choice(WORDS)} {rng.choice(WORDS)} problem number {n}"
        rows.append(
            (
                source, f"b-{n}", "post" if is_post else "ticket", f"Item {n}", body, created, status,
                first_response, rng.choice(CHANNELS), rng.choice(PRIORITIES), rng.choice(("app", "billing", None)),
                [rng.choice(WORDS)], f"user-{rng.randint(1, 20_000)}", rng.randint(0, 40) if is_post else None,
                f"https://{source}.example.com/items/{n}", hashlib.sha256(body.encode()).digest(), first_solved,
                last_solved, reopens, "feature_request" if is_feature else rng.choice(("bug", "question", "other")),
                0.9, theme_id, feature_pick[n] if is_feature else None, created, body, False, created,
            )
        )  # fmt: skip
    return rows


async def seed(dsn: str, *, reset: bool) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        if await conn.fetchval("SELECT count(*) FROM item") and not reset:
            raise SystemExit("the database already holds items; pass --reset to empty it (throwaway databases only)")
        await conn.execute(
            "TRUNCATE item, status_event, embedding, theme, clustering_run, api_key, job_failure, worker_heartbeat"
            " RESTART IDENTITY CASCADE"
        )
        rng = random.Random(7)
        now = datetime.now(UTC)
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "theme",
            records=theme_rows(rng, now),
            columns=("scope", "label", "keywords", "status", "first_seen_at"),
        )
        themes = await conn.fetch("SELECT theme_id, scope FROM theme ORDER BY theme_id")
        issue_ids = [r["theme_id"] for r in themes if r["scope"] == "all"]
        feature_ids = [r["theme_id"] for r in themes if r["scope"] == "feature"]
        await conn.copy_records_to_table(
            "item", records=item_rows(rng, now, issue_ids, feature_ids), columns=ITEM_COLUMNS
        )
        for column in ("theme_id", "feature_theme_id"):
            await conn.execute(
                f"UPDATE theme t SET size = s.n, representative_item_ids = s.reps, first_seen_at = s.first,"
                f" last_seen_at = s.last FROM (SELECT {column} AS theme_id, count(*) AS n, min(created_at) AS first,"
                f" max(created_at) AS last, (array_agg(item_id ORDER BY item_id))[1:5] AS reps FROM item"
                f" WHERE {column} IS NOT NULL GROUP BY 1) s WHERE t.theme_id = s.theme_id"
            )
        await conn.execute(
            "INSERT INTO clustering_run (scope, status, trigger, items, themes, unassigned, timings, started_at,"
            " finished_at) SELECT 'all', 'done', 'schedule', 100000, 270, 15000,"
            " '{\"embed_s\": 12.5, \"cluster_s\": 40.1}', now() - make_interval(hours => g * 6) - interval '55 s',"
            " now() - make_interval(hours => g * 6) FROM generate_series(1, 40) g"
        )
        await conn.execute(
            "INSERT INTO job_failure (job_id, func_name, error, attempts, failed_at)"
            " SELECT 'job-' || g, 'workers.jobs.process_items', 'TimeoutError: embed took too long', 4,"
            " now() - make_interval(mins => g * 37) FROM generate_series(1, 200) g"
        )
        await conn.execute("ANALYZE")
        top = await conn.fetchval(
            "SELECT theme_id FROM item WHERE theme_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        )
        feature = await conn.fetchval(
            "SELECT feature_theme_id FROM item WHERE feature_theme_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC"
            " LIMIT 1"
        )
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM item) AS items, (SELECT count(*) FROM theme) AS themes"
        )
        assert counts is not None
        return {
            "top_theme": top,
            "feature_theme": feature,
            "items": counts["items"],
            "themes": counts["themes"],
            "seed_s": time.perf_counter() - started,
        }
    finally:
        await conn.close()


def pages(seeded: dict[str, Any]) -> list[tuple[str, str]]:
    top, feature = seeded["top_theme"], seeded["feature_theme"]
    return [
        ("This week (UTC)", "/"),
        ("This week (Los Angeles, one source)", "/?tz=America/Los_Angeles&source=zendesk"),
        ("Theme (largest)", f"/themes/{top}"),
        ("Theme (feature)", f"/themes/{feature}"),
        ("Feature requests", "/features"),
        ("Operations", "/operations"),
        ("Operations (first response)", "/operations?metric=first_response"),
        ("Runs and health", "/runs"),
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def measure(base_url: str, admin_key: str, seeded: dict[str, Any], loads: int) -> list[dict[str, Any]]:
    results = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        resp = client.post("/login", data={"api_key": admin_key, "next": "/"})
        assert resp.status_code == 303, resp.text
        for name, path in pages(seeded):
            for _ in range(2):  # warm the pool, the plan cache and Postgres' buffers
                assert client.get(path).status_code == 200, path
            server, total = [], []
            size = 0
            for _ in range(loads):
                started = time.perf_counter()
                resp = client.get(path)
                total.append((time.perf_counter() - started) * 1000)
                assert resp.status_code == 200, (path, resp.status_code)
                server.append(float(resp.headers["server-timing"].split("dur=")[1]))
                size = len(resp.content)
            results.append(
                {
                    "page": name,
                    "path": path,
                    "p50": statistics.median(server),
                    "p95": percentile(server, 0.95),
                    "max": max(server),
                    "client_p50": statistics.median(total),
                    "kib": size / 1024,
                }
            )
    return results


def print_table(results: list[dict[str, Any]], seeded: dict[str, Any], loads: int) -> None:
    print(
        f"\n{seeded['items']:,} items, {seeded['themes']} themes (seeded in {seeded['seed_s']:.1f} s);"
        f" {loads} loads per page after 2 warm-ups; server time from Server-Timing, in ms\n"
    )
    header = f"| {'page':<38} | {'p50':>7} | {'p95':>7} | {'max':>7} | {'client p50':>10} | {'KiB':>6} |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for r in results:
        print(
            f"| {r['page']:<38} | {r['p50']:>7.1f} | {r['p95']:>7.1f} | {r['max']:>7.1f} |"
            f" {r['client_p50']:>10.1f} | {r['kib']:>6.0f} |"
        )
    worst = max(r["p95"] for r in results)
    print(f"\nslowest p95: {worst:.0f} ms ({'under' if worst < 1000 else 'OVER'} the 1 s budget)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--reset", action="store_true", help="empty DATABASE_URL's tables first")
    args = parser.parse_args()

    stores: list[Postgres | Valkey] = []
    tmp = None
    dsn, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    api = None
    try:
        if not (dsn and redis_url):
            tmp = tempfile.TemporaryDirectory(prefix="bench-dashboard-")
            pg = Postgres(Path(tmp.name) / "postgres", free_port())
            valkey = Valkey(Path(tmp.name) / "valkey", free_port())
            pg.start()
            stores.append(pg)
            valkey.start()
            stores.append(valkey)
            pg.create_database("tickets_bench")
            dsn, redis_url = pg.url("tickets_bench"), valkey.url()
            args.reset = True
        asyncio.run(migrate(dsn))
        seeded = asyncio.run(seed(dsn, reset=args.reset))
        admin_key = "tk_bench_" + secrets.token_urlsafe(24)
        port = free_port()
        env = dict(os.environ, DATABASE_URL=dsn, REDIS_URL=redis_url, ADMIN_API_KEY=admin_key, ENVIRONMENT="test")
        api = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            env=env, cwd=ROOT,
        )  # fmt: skip
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base_url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not start in 60 s")
            time.sleep(0.2)
        results = measure(base_url, admin_key, seeded, args.loads)
        print_table(results, seeded, args.loads)
        return 0
    finally:
        if api is not None:
            api.terminate()
            api.wait(timeout=30)
        for store in reversed(stores):
            store.stop()
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    raise SystemExit(main())
