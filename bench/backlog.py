"""Backlog: queue many items with no worker, then measure the drain rate per worker (#17).

    python bench/backlog.py                             # 1,000,000 items, 5-minute windows
    python bench/backlog.py --items 20000 --window-s 60 # the short run recorded on a shared machine

Loopback only (tests/faults/harness.py). With no worker running, --items items go in by bulk
requests of 5,000, while single `POST /v1/items` probes measure the ack latency of a service
that is behind; /readyz must stay 200 and show the lag. Then one worker drains for --window-s,
then two workers for another --window-s; the items processed in each window give the rate per
worker. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from tests.faults.harness import ADMIN_KEY, Cluster, _item, _texts  # noqa: E402

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
BATCH = 5_000


def _ms(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else None


async def fill(client: httpx.AsyncClient, items: int) -> dict[str, Any]:
    texts = _texts(11)
    probes: list[float] = []
    started = time.monotonic()
    for start in range(0, items, BATCH):
        rows = [_item(f"q{n}", texts[n % len(texts)], n % 100_000) for n in range(start, min(start + BATCH, items))]
        resp = await client.post("/v1/items/bulk", json=rows, headers=ADMIN)
        resp.raise_for_status()
        t = time.monotonic()
        probe = await client.post("/v1/items", json=_item(f"probe{start}", "probe while behind", 0), headers=ADMIN)
        assert probe.status_code == 202, probe.text
        probes.append(time.monotonic() - t)
    elapsed = time.monotonic() - started
    return {"fill_s": round(elapsed, 1), "ingest_items_per_s": round(items / elapsed),
            "ack_while_behind_p50_ms": _ms(probes, 0.5), "ack_while_behind_p99_ms": _ms(probes, 0.99)}  # fmt: skip


async def processed(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM item WHERE NOT pending"))
    finally:
        await conn.close()


async def drain_window(cluster: Cluster, workers: int, window_s: float) -> dict[str, Any]:
    dsn = cluster.pg.url("tickets")
    for index in range(workers):
        if cluster.workers[index] is None or cluster.workers[index].poll() is not None:  # type: ignore[union-attr]
            cluster.workers[index] = cluster._spawn(["-m", "workers", "--queues", "items"], f"worker{index}.log")
    async with httpx.AsyncClient(base_url=cluster.url, timeout=10.0) as client:
        while (await client.get("/readyz")).status_code != 200:  # the workers' heartbeats
            await asyncio.sleep(1.0)
        before, started = await processed(dsn), time.monotonic()
        await asyncio.sleep(window_s)
        after, elapsed = await processed(dsn), time.monotonic() - started
        lag = (await client.get("/readyz")).json()["lag"]
    rate = (after - before) / elapsed
    return {"workers": workers, "processed": after - before, "items_per_s": round(rate, 1),
            "items_per_s_per_worker": round(rate / workers, 1), "readyz_lag_after": lag}  # fmt: skip


async def run(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    cluster.start_api()
    async with httpx.AsyncClient(base_url=cluster.url, timeout=120.0) as client:
        for _ in range(600):
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
        filled = await fill(client, args.items)
        readyz = await client.get("/readyz")
    result: dict[str, Any] = {"args": vars(args), **filled,
                              "readyz_while_no_worker": {"status": readyz.status_code, **readyz.json()}}  # fmt: skip
    result["one_worker"] = await drain_window(cluster, 1, args.window_s)
    result["two_workers"] = await drain_window(cluster, 2, args.window_s)
    per_worker = result["one_worker"]["items_per_s_per_worker"]
    result["hours_to_drain_1m_with_one_worker"] = round(1_000_000 / per_worker / 3600, 1) if per_worker else None
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/backlog.py", description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--window-s", type=float, default=300.0)
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="backlog-"))
    cluster = Cluster(base, workers=2, sweep_after_s=600)
    try:
        cluster.start_stores()  # runs the migrations in its own event loop
        result = asyncio.run(run(args, cluster))
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
