"""History imports: file import throughput, and API imports paced to the vendor's budget.

    python bench/imports.py                 # 100,000-ticket NDJSON file, then paced API imports
    python bench/imports.py --items 20000 --pace-s 20

File: realistic tickets (Banking77 texts, status histories) written to NDJSON, then
`imports.files.import_file` into an embedded Postgres, timed end to end (read, validate, upsert).
Goal: >= 5,000 tickets/s on 2 cores.
API: the local vendor server of the tests (127.0.0.1) serves GitHub-shaped issue pages without
end; the import runs for --pace-s seconds with the real clock, and we count the requests it made
against the vendor's documented budget (GitHub 5,000 an hour for a token; Intercom 10,000 a
minute). Goal: as fast as the budget allows and no faster: requests close to budget x elapsed, and no
5-second window holding more than its share of the budget (+1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, realistic_items, stores
from db.migrate import migrate
from imports.client import VendorClient
from imports.files import import_file
from imports.sources import all_sources
from tests.imports.vendor_server import TOKEN, VendorState, vendor_server


async def bench_file(db_url: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tickets.ndjson"
        with path.open("w") as out:
            for item in realistic_items(n, seed=7):
                out.write(json.dumps(item) + "\n")
        conn = await asyncpg.connect(db_url)
        try:
            started = time.perf_counter()
            report = await import_file(conn, path)
            elapsed = time.perf_counter() - started
            again_started = time.perf_counter()
            again = await import_file(conn, path)
            again_elapsed = time.perf_counter() - again_started
        finally:
            await conn.close()
    print(f"file import: {n} tickets in {elapsed:.1f} s = {n / elapsed:,.0f} tickets/s "
          f"(created {report.created}, refused {len(report.errors)}); goal >= 5,000/s")  # fmt: skip
    print(f"file re-import (all unchanged): {n / again_elapsed:,.0f} tickets/s, created {again.created}")


async def bench_pace(vendor: str, seconds: float) -> None:
    source = all_sources()[vendor]
    state = VendorState(throttle_first=False)
    with vendor_server(state) as base:
        import httpx

        async with httpx.AsyncClient(base_url=base, headers=source.headers(_env())) as http:
            client = VendorClient(http, rate_per_minute=source.rate_per_minute)
            client.account = "acme/app"
            started = time.monotonic()
            since = datetime(2025, 1, 1, tzinfo=UTC)
            try:
                async with asyncio.timeout(seconds):
                    while True:  # the fake serves a fixed history; import it again and again
                        async for _ in source.pages(client, since=since, cursor=None):
                            pass
            except TimeoutError:
                pass
            elapsed = time.monotonic() - started
    allowed = source.rate_per_minute * elapsed / 60
    window = 5.0
    busiest = max(sum(1 for t in state.served_at if s <= t < s + window) for s in state.served_at)
    print(f"{vendor}: {len(state.requests)} requests in {elapsed:.1f} s; budget allows {allowed:.1f} "
          f"({source.rate_per_minute:,.0f}/min); busiest {window:.0f} s window {busiest} requests, "
          f"budget {source.rate_per_minute * window / 60 + 1:.1f}")  # fmt: skip


def _env() -> dict[str, str]:
    return {"GITHUB_TOKEN": TOKEN, "INTERCOM_TOKEN": TOKEN}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--pace-s", type=float, default=30.0)
    args = parser.parse_args()
    print(machine())
    with stores() as (db_url, _redis_url):
        asyncio.run(migrate(db_url))
        asyncio.run(bench_file(db_url, args.items))
    asyncio.run(bench_pace("github", args.pace_s))
    asyncio.run(bench_pace("intercom", min(args.pace_s, 10.0)))


if __name__ == "__main__":
    main()
