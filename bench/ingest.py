"""Ingest throughput and latency through the real HTTP API (uvicorn on loopback, real Postgres).

    python bench/ingest.py [--items 100000] [--batch 5000] [--rate 200] [--seconds 30]

Prints: bulk items/s (--items new items in JSON arrays of --batch, from one sender posting one
batch after another; then --items more from two senders at once, as an import tool with two
workers would), single POST /v1/items latency p50/p99 at a fixed open-loop request rate, and the
API's peak RSS. No worker runs: this measures the ingest path (the ack), which is what a sender
waits for.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ADMIN_KEY, machine, percentile, realistic_items, service, stores

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}


def bulk(base: str, items: list[dict[str, object]], batch: int, senders: int) -> tuple[float, int]:
    """Items/s for `senders` clients each posting its share of the batches one after another."""
    bodies = [json.dumps(items[i : i + batch]).encode() for i in range(0, len(items), batch)]
    created = 0

    def send(share: list[bytes]) -> None:
        nonlocal created
        with httpx.Client(timeout=120) as client:
            for body in share:
                resp = client.post(f"{base}/v1/items/bulk", content=body, headers=HEADERS)
                resp.raise_for_status()
                created += resp.json()["created"]

    threads = [threading.Thread(target=send, args=(bodies[n::senders],)) for n in range(senders)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return len(items) / elapsed, created


async def single(base: str, items: list[dict[str, object]], rate: float, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    total = int(rate * seconds)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:

        async def one(n: int) -> None:
            nonlocal errors
            t0 = time.perf_counter()
            try:
                resp = await client.post(f"{base}/v1/items", content=json.dumps(items[n]), headers=HEADERS)
                if resp.status_code != 202:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        tasks = []
        for n in range(total):  # open loop: requests leave on schedule whatever the answers do
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()

    items = realistic_items(2 * args.items)
    singles = realistic_items(int(args.rate * args.seconds), seed=1, source="api")
    with stores() as (db_url, redis_url), service(db_url, redis_url) as svc:
        peak = [svc.api_rss_mb()]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], svc.api_rss_mb())
                time.sleep(0.2)

        threading.Thread(target=sample, daemon=True).start()
        rate, created = bulk(svc.base_url, items[: args.items], args.batch, senders=1)
        rate2, created2 = bulk(svc.base_url, items[args.items :], args.batch, senders=2)
        latencies, errors = asyncio.run(single(svc.base_url, singles, args.rate, args.seconds))
        stop.set()
    print(f"machine: {machine()}")
    print("| measure | value |")
    print("|---|---|")
    print(
        f"| bulk ingest, {args.items:,} items in batches of {args.batch:,}, one sender "
        f"| {rate:,.0f} items/s ({created:,} created) |"
    )
    print(
        f"| bulk ingest, {args.items:,} more in batches of {args.batch:,}, two senders at once "
        f"| {rate2:,.0f} items/s ({created2:,} created) |"
    )
    print(f"| single POST /v1/items at {args.rate:.0f} req/s for {args.seconds:.0f} s | "
          f"p50 {percentile(latencies, 0.5) * 1000:.1f} ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
          f"{errors} errors of {len(latencies)} |")  # fmt: skip
    print(f"| API peak RSS | {peak[0]:.0f} MB |")


if __name__ == "__main__":
    main()
