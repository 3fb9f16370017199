"""L1: every kind of traffic at once, then a ledger check (#17).

    python bench/mixed_load.py                      # 15 minutes, the rates of the goal
    python bench/mixed_load.py --duration-s 180     # the short run recorded on a shared machine

At once, for --duration-s: signed `generic` webhook deliveries (--hooks-per-s), bulk requests of
--bulk-items items (--bulk-per-s), report reads (--reports-per-s), --sessions dashboard sessions
reading pages, and a clustering run every --cluster-every-s. Everything on loopback: embedded
Postgres and Valkey, the API and the workers as processes (tests/faults/harness.py). Each loop is
paced by the clock and ends at the deadline, even when the service is behind (then the achieved
rate, `sent_per_s`, falls short of the asked one). Then the deliveries' processing is awaited and
SQL checks that every acknowledged delivery and bulk item is stored (0 lost); items still waiting
for their embedding are counted, not awaited. Goals: webhook ack p99 < 50 ms, report
p95 < 200 ms, 0 lost, 0 5xx. Prints one JSON object; exit status 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from tests.faults.harness import (  # noqa: E402
    ADMIN_KEY,
    Cluster,
    _item,
    _texts,
    create_connection,
    sign_generic,
    wait_ready,
)

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


@dataclass
class Lane:
    """One kind of request: latencies of 2xx answers, every status seen, what was acknowledged."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    acked: set[str] = field(default_factory=set)
    sent: int = 0

    def record(self, status: str, elapsed: float) -> bool:
        self.statuses[status] += 1
        if status.startswith("2"):
            self.latencies.append(elapsed)
            return True
        return False

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def at(q: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else None

        return {"sent": self.sent, "ok": len(ordered), "p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99),
                "statuses": dict(self.statuses)}  # fmt: skip


async def _timed(lane: Lane, call: Awaitable[httpx.Response]) -> httpx.Response | None:
    started = time.monotonic()
    try:
        resp = await call
        status = str(resp.status_code)
    except httpx.HTTPError as exc:
        resp, status = None, type(exc).__name__
    lane.record(status, time.monotonic() - started)
    return resp


async def paced(rate: float, deadline: float, fire: Callable[[int], Awaitable[None]], limit: int = 64) -> int:
    """Call `fire(n)` `rate` times a second until the deadline, at most `limit` in flight.

    Stops at the deadline by the clock even when the service is behind (the requests it could not
    send are the shortfall, seen in the lane's achieved rate); returns how many it sent.
    """
    gate = asyncio.Semaphore(limit)
    tasks: set[asyncio.Task[None]] = set()
    started = time.monotonic()
    n = 0
    while True:
        due = max(started + n / rate, time.monotonic())
        if due >= deadline:
            break
        if due > time.monotonic():
            await asyncio.sleep(due - time.monotonic())
        try:
            await asyncio.wait_for(gate.acquire(), timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            break

        async def one(k: int) -> None:
            try:
                await fire(k)
            finally:
                gate.release()

        task = asyncio.create_task(one(n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    if tasks:
        await asyncio.gather(*tasks)
    return n


class Traffic:
    def __init__(self, args: argparse.Namespace, cluster: Cluster, connection: tuple[str, str]) -> None:
        self.args = args
        self.cluster = cluster
        self.connection_id, self.secret = connection
        self.texts = _texts(7)
        self.lanes = {name: Lane() for name in ("webhook", "bulk", "report", "dashboard", "clustering")}
        today = datetime.now(UTC).date()
        self.window = {"from": (today - timedelta(weeks=12)).isoformat(), "to": today.isoformat()}

    async def webhook(self, client: httpx.AsyncClient, n: int) -> None:
        msg_id = f"msg_{n}"
        item = _item(f"w{n}", self.texts[n % len(self.texts)], n) | {"source": "generic"}
        body = json.dumps({"type": "item.upserted", "data": item}).encode()
        call = client.post(
            f"/v1/webhooks/{self.connection_id}", content=body, headers=sign_generic(self.secret, msg_id, body)
        )
        if (resp := await _timed(self.lanes["webhook"], call)) is not None and resp.status_code in (200, 202):
            self.lanes["webhook"].acked.add(msg_id)

    async def bulk(self, client: httpx.AsyncClient, n: int) -> None:
        size = self.args.bulk_items
        rows = [_item(f"b{n}-{k}", self.texts[(n * size + k) % len(self.texts)], k) for k in range(size)]
        call = client.post("/v1/items/bulk", json=rows, headers=ADMIN)
        resp = await _timed(self.lanes["bulk"], call)
        if resp is not None and resp.status_code == 202 and not resp.json()["rejected"]:
            self.lanes["bulk"].acked.update(r["external_id"] for r in rows)

    async def report(self, client: httpx.AsyncClient, n: int) -> None:
        path, params = [
            ("/v1/reports/theme-trends", {**self.window, "tz": "Europe/Berlin"}),
            ("/v1/reports/reopen-rate", {**self.window, "group_by": "theme"}),
            ("/v1/reports/resolution-times", {**self.window, "metric": "first_response"}),
            ("/v1/reports/feature-requests", self.window),
        ][n % 4]
        await _timed(self.lanes["report"], client.get(path, params=params, headers=ADMIN))

    async def dashboard(self, deadline: float) -> None:
        """One person: signs in, then reads a page every few seconds."""
        async with httpx.AsyncClient(base_url=self.cluster.url, timeout=30.0) as client:
            await client.post("/login", data={"api_key": ADMIN_KEY, "next": "/"})
            pages = ["/", "/operations", "/features", "/runs"]
            n = 0
            while time.monotonic() < deadline:
                await _timed(self.lanes["dashboard"], client.get(pages[n % len(pages)]))
                n += 1
                await asyncio.sleep(2.0)

    async def clustering(self, client: httpx.AsyncClient, deadline: float) -> None:
        while time.monotonic() < deadline:
            await _timed(self.lanes["clustering"], client.post("/v1/clustering/runs", headers=ADMIN))
            await asyncio.sleep(min(self.args.cluster_every_s, max(0.0, deadline - time.monotonic())))

    async def run(self) -> None:
        deadline = time.monotonic() + self.args.duration_s
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=self.cluster.url, timeout=30.0, limits=limits) as client:
            sent = await asyncio.gather(
                paced(self.args.hooks_per_s, deadline, lambda n: self.webhook(client, n)),
                paced(self.args.bulk_per_s, deadline, lambda n: self.bulk(client, n), limit=16),
                paced(self.args.reports_per_s, deadline, lambda n: self.report(client, n), limit=16),
                *[self.dashboard(deadline) for _ in range(self.args.sessions)],
                self.clustering(client, deadline),
            )
        for name, count in zip(("webhook", "bulk", "report"), sent[:3], strict=True):
            self.lanes[name].sent = int(count or 0)


async def ledger_check(cluster: Cluster, traffic: Traffic, timeout: float) -> dict[str, Any]:
    conn = await asyncpg.connect(cluster.pg.url("tickets"))
    try:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            # Deliveries must be processed into items; items waiting for their embedding are
            # stored already (the backlog bench measures that drain), so they are not awaited.
            pending = await conn.fetchval("SELECT count(*) FROM delivery WHERE status = 'pending'")
            if pending == 0:
                break
            await asyncio.sleep(2.0)
        drain_s = time.monotonic() - started
        hooks = {r["id"] for r in await conn.fetch("SELECT headers->>'webhook-id' AS id FROM delivery")}
        items = {r["external_id"] for r in await conn.fetch("SELECT external_id FROM item WHERE source = 'fault'")}
        hook_items = {
            r["external_id"] for r in await conn.fetch("SELECT external_id FROM item WHERE source = 'generic'")
        }
        processed = {
            r["id"]
            for r in await conn.fetch("SELECT headers->>'webhook-id' AS id FROM delivery WHERE status = 'processed'")
        }
        runs = Counter(r["status"] for r in await conn.fetch("SELECT status FROM clustering_run"))
        return {
            "drain_s": round(drain_s, 1),
            "deliveries_still_pending": pending,
            "items_waiting_for_embedding": await conn.fetchval("SELECT count(*) FROM item WHERE pending"),
            "lost_deliveries": len(traffic.lanes["webhook"].acked - hooks),
            "lost_bulk_items": len(traffic.lanes["bulk"].acked - items),
            "deliveries_without_item": len({p.replace("msg_", "w") for p in processed} - hook_items),
            "clustering_runs": dict(runs),
        }
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    try:
        cluster.start_api()
        for index in range(args.workers):
            cluster.start_worker(index)  # all queues: items, deliveries and clustering
        await wait_ready(cluster, timeout=300)
        connection = await create_connection(cluster)
        traffic = Traffic(args, cluster, connection)
        started = time.monotonic()
        await traffic.run()
        load_s = time.monotonic() - started
        ledger = await ledger_check(cluster, traffic, args.drain_timeout_s)
    finally:
        cluster.stop()
    lanes = {name: lane.summary() for name, lane in traffic.lanes.items()}
    server_errors = sum(n for lane in traffic.lanes.values() for s, n in lane.statuses.items() if s.startswith("5"))
    goals = {
        "webhook_ack_p99_lt_50ms": (lanes["webhook"]["p99_ms"] or 1e9) < 50,
        "report_p95_lt_200ms": (lanes["report"]["p95_ms"] or 1e9) < 200,
        "zero_lost": ledger["lost_deliveries"] == 0 and ledger["lost_bulk_items"] == 0,
        "zero_5xx": server_errors == 0,
    }
    rates = {name: round(traffic.lanes[name].sent / load_s, 1) for name in ("webhook", "bulk", "report")}
    return {"args": vars(args), "load_s": round(load_s, 1), "sent_per_s": rates, "lanes": lanes, "ledger": ledger,
            "server_errors": server_errors, "goals": goals}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/mixed_load.py", description=__doc__.split("\n")[0])
    parser.add_argument("--duration-s", type=float, default=900.0)
    parser.add_argument("--hooks-per-s", type=float, default=300.0)
    parser.add_argument("--bulk-per-s", type=float, default=20.0)
    parser.add_argument("--bulk-items", type=int, default=500)
    parser.add_argument("--reports-per-s", type=float, default=20.0)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--cluster-every-s", type=float, default=300.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--drain-timeout-s", type=float, default=1800.0)
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="mixed-load-"))
    cluster = Cluster(base, workers=args.workers, sweep_after_s=60)
    cluster.env.update(CLUSTER_EVERY_S=str(10**9), DB_POOL_MAX="20")
    try:
        cluster.start_stores()  # runs the migrations in its own event loop
        result = asyncio.run(main_async(args, cluster))
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0 if all(result["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
