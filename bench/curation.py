"""Curation latency at 100k items (issue 15): p50/p95 of each curation call through the HTTP API,
and the split preview of a 5k-item theme.

    python -m bench.curation [--items 100000] [--calls 30]

Embedded Postgres and Valkey in a temporary directory (or DATABASE_URL / REDIS_URL), items and
384-d vectors written with COPY: themes of 300 items around their own centres (~316 themes at 100k, as in
bench/dashboard.py), plus one theme
of 5,000 items made of three sub-topics. The API runs as a uvicorn subprocess. Calls that change
a theme are paired with their undo, so every call acts on the same sizes (merges two 300-item
themes, splits one, moves 10 items, creates a theme from 10 items).

Goals: every curation call p95 < 300 ms; split preview of the 5k theme < 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import numpy as np

from bench.common import ADMIN_KEY, banking77_texts, machine, percentile, service, stores

DIM = 384
THEME_SIZE = 300
BIG = 5_000


async def load(database_url: str, n_items: int) -> tuple[list[int], int]:
    """Items, vectors and themes; returns the ids of the 300-item themes and of the 5k theme."""
    conn = await asyncpg.connect(database_url)
    try:
        if await conn.fetchval("SELECT count(*) FROM item") > 0:
            raise SystemExit("the database already holds items; use an empty one")
        rng = np.random.default_rng(0)
        texts = banking77_texts()
        n_small = (n_items - BIG) // THEME_SIZE
        themes = [
            await conn.fetchval(
                "INSERT INTO theme (label, status, size) VALUES ($1, 'active', $2) RETURNING theme_id",
                f"theme {t}",
                size,
            )
            for t, size in enumerate([*[THEME_SIZE] * n_small, BIG])
        ]
        centres = rng.standard_normal((n_small + 3, DIM))
        start = datetime(2026, 6, 1, tzinfo=UTC)
        item_rows, theme_of, vectors = [], [], []
        for n in range(n_items):
            theme_index = min(n // THEME_SIZE, n_small) if n < n_small * THEME_SIZE else n_small
            centre = centres[theme_index] if theme_index < n_small else centres[n_small + n % 3]
            vectors.append(centre + 0.6 * rng.standard_normal(DIM))
            text = texts[(theme_index * 37 + n % 50) % len(texts)][0]
            created = start + timedelta(minutes=n % 200_000)
            item_rows.append(("bench", f"c-{n}", "ticket", text, text, created, b"h", themes[theme_index], False))
            theme_of.append(themes[theme_index])
        await conn.copy_records_to_table(
            "item",
            records=item_rows,
            columns=["source", "external_id", "kind", "body", "clean_text", "created_at", "payload_hash", "theme_id",
                     "pending"],
        )  # fmt: skip
        ids = [r["item_id"] for r in await conn.fetch("SELECT item_id FROM item ORDER BY item_id")]
        unit = np.asarray(vectors, dtype=np.float32)
        unit /= np.linalg.norm(unit, axis=1, keepdims=True)
        await conn.copy_records_to_table(
            "embedding",
            records=[(i, "bench", b"h", unit[k].astype("<f4").tobytes()) for k, i in enumerate(ids)],
            columns=["item_id", "model_version", "content_hash", "vector"],
        )
        await conn.execute("ANALYZE")
        return themes[:-1], themes[-1]
    finally:
        await conn.close()


async def timed(calls: int, step: Callable[[int], Awaitable[None]]) -> list[float]:
    spent = []
    for n in range(calls):
        started = time.perf_counter()
        await step(n)
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def ok(resp: httpx.Response) -> dict[str, object]:
    if resp.status_code >= 300:
        raise RuntimeError(f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text[:300]}")
    body: dict[str, object] = resp.json()
    return body


async def item_ids(http: httpx.AsyncClient, theme_id: int) -> list[int]:
    listed = ok(await http.get("/v1/items", params={"theme_id": theme_id, "limit": 10}))
    rows = listed["data"]
    assert isinstance(rows, list)
    return [int(row["item_id"]) for row in rows]


async def run(base_url: str, small: list[int], big: int, calls: int) -> dict[str, list[float]]:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    results: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=base_url, headers=admin, timeout=60) as http:
        a, b, c = small[0], small[1], small[2]
        moved = await item_ids(http, c)
        parts = await item_ids(http, b)
        undo_times: list[float] = []

        async def undo(change_id: object) -> None:
            started = time.perf_counter()
            ok(await http.post(f"/v1/curation/{change_id}/undo"))
            undo_times.append((time.perf_counter() - started) * 1000)

        async def rename(n: int) -> None:
            ok(await http.patch(f"/v1/themes/{a}", json={"label": f"renamed {n}"}))

        async def hide(n: int) -> None:
            ok(await http.patch(f"/v1/themes/{a}", json={"hidden": n % 2 == 0}))

        async def history(n: int) -> None:
            ok(await http.get(f"/v1/themes/{a}/history"))

        results["rename (PATCH label)"] = await timed(calls, rename)
        results["hide / unhide (PATCH hidden)"] = await timed(calls, hide)
        results["history (GET)"] = await timed(calls, history)

        pending: list[object] = []

        async def move(n: int) -> None:
            pending.append(ok(await http.post(f"/v1/themes/{b}/items", json={"item_ids": moved}))["change_id"])

        async def merge(n: int) -> None:
            pending.append(ok(await http.post("/v1/themes/merge", json={"theme_ids": [b], "into": c}))["change_id"])

        async def split(n: int) -> None:
            pending.append(
                ok(await http.post(f"/v1/themes/{b}/split", json={"groups": [parts[:5], parts[5:]]}))["change_id"]
            )

        async def create(n: int) -> None:
            body = {"label": f"person {n}", "description": "card arrival", "item_ids": moved}
            pending.append(ok(await http.post("/v1/themes", json=body))["change_id"])

        for name, step in (
            ("move 10 items", move), (f"merge two {THEME_SIZE}-item themes", merge),
            (f"split a {THEME_SIZE}-item theme (groups)", split),
            ("create a person's theme (10 items)", create),
        ):  # fmt: skip
            spent = []
            for n in range(calls):
                started = time.perf_counter()
                await step(n)
                spent.append((time.perf_counter() - started) * 1000)
                await undo(pending.pop())
            results[name] = spent
        results["undo (of the calls above)"] = undo_times

        async def preview_small(n: int) -> None:
            ok(await http.post(f"/v1/themes/{small[3]}/split-preview", json={"k": 3}))

        results[f"split preview, {THEME_SIZE}-item theme, k=3"] = await timed(calls, preview_small)

        async def preview_big(n: int) -> None:
            ok(await http.post(f"/v1/themes/{big}/split-preview", json={}))

        results["split preview, 5k theme, k by silhouette"] = await timed(max(5, calls // 3), preview_big)
        preview = ok(await http.post(f"/v1/themes/{big}/split-preview", json={}))
        groups = preview["groups"]
        assert isinstance(groups, list)
        print("5k preview groups:", [g["size"] for g in groups], "silhouette", preview["silhouette"])
    return results


def main() -> None:
    global THEME_SIZE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--theme-size", type=int, default=THEME_SIZE, help="items per theme (all but the 5k one)")
    args = parser.parse_args()
    THEME_SIZE = args.theme_size
    with stores() as (db_url, redis_url):
        started = time.perf_counter()
        small, big = asyncio.run(load(db_url, args.items))
        print(f"loaded {args.items} items in {time.perf_counter() - started:.0f} s; {machine()}")
        with service(db_url, redis_url) as svc:
            results = asyncio.run(run(svc.base_url, small, big, args.calls))
    print(f"\n| call ({args.items:,} items, themes of {THEME_SIZE}) | calls | p50 ms | p95 ms |\n|---|---|---|---|")
    for name, spent in results.items():
        print(f"| {name} | {len(spent)} | {percentile(spent, 0.5):.1f} | {percentile(spent, 0.95):.1f} |")


if __name__ == "__main__":
    main()
