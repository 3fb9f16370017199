"""Time from POST /v1/items to a stored vector, with a worker running (issue 4).

    python bench/latency.py [--rate 20] [--seconds 60]

Posts Banking77 texts one by one at a fixed open-loop rate through the real API (uvicorn on
loopback) with one worker (`python -m workers`), then reads each item's ingested_at (set in the
ingest transaction) and embedded_at (set in the worker's transaction that stores the vector).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from pathlib import Path

import asyncpg
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ADMIN_KEY, machine, percentile, realistic_items, service, stores

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}


async def post_all(base: str, rate: float, seconds: float) -> int:
    items = realistic_items(int(rate * seconds), seed=7, source="latency")
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        start = time.perf_counter()
        tasks = []
        for n, item in enumerate(items):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(client.post("/v1/items", json=item, headers=HEADERS)))
        responses = await asyncio.gather(*tasks)
    return sum(r.status_code != 202 for r in responses)


async def latencies(db_url: str, expected: int) -> list[float]:
    conn = await asyncpg.connect(db_url)
    try:
        deadline = time.monotonic() + 300
        while await conn.fetchval("SELECT count(*) FROM item WHERE embedded_at IS NOT NULL") < expected:
            if time.monotonic() > deadline:
                raise TimeoutError("items not embedded within 300 s")
            await asyncio.sleep(0.5)
        rows = await conn.fetch("SELECT extract(epoch FROM embedded_at - ingested_at) AS s FROM item")
    finally:
        await conn.close()
    return [float(r["s"]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    with stores() as (db_url, redis_url), service(db_url, redis_url, workers=1) as svc:
        with httpx.Client(base_url=svc.base_url) as client:  # the worker is up once it beats
            while client.get("/readyz").status_code != 200:
                time.sleep(0.5)
        worker = psutil.Process(svc.workers[0].pid)
        peak = [0.0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], worker.memory_info().rss / 2**20)
                time.sleep(0.1)

        threading.Thread(target=sample, daemon=True).start()
        errors = asyncio.run(post_all(svc.base_url, args.rate, args.seconds))
        values = asyncio.run(latencies(db_url, int(args.rate * args.seconds)))
        stop.set()
    print(f"machine: {machine()}")
    print("| rate | items | errors | ingest-to-vector p50 | p95 | max | worker peak RSS |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {args.rate:.0f}/s for {args.seconds:.0f} s | {len(values)} | {errors} | "
          f"{percentile(values, 0.5):.2f} s | {percentile(values, 0.95):.2f} s | {max(values):.2f} s | "
          f"{peak[0]:.0f} MB |")  # fmt: skip


if __name__ == "__main__":
    main()
