"""L2: a soak under faults, with resource samples and a ledger check (#17).

    python bench/soak.py                          # 2 hours, kill -9 of a worker every 10 minutes
    python bench/soak.py --duration-s 180 --kill-every-s 60     # the CI version (tests/faults)

A steady load of signed webhook deliveries and single items runs for --duration-s against the
API and two workers on loopback (tests/faults/harness.py). Every --kill-every-s one worker's
process group gets SIGKILL and a new worker starts; Valkey restarts once (at a third of the run)
and Postgres once (at two thirds). Every --sample-every-s: RSS of the API and the workers,
Postgres connections, Valkey memory, and the queue lag (age of the oldest pending item, pending
deliveries). A worker or the API that exits on its own is restarted, as compose's restart policy
and `make run` would, and listed in the result. At the end, after the drain: every acknowledged
unit is stored (0 lost) and no key is stored twice (0 duplicated). Goals also checked: API RSS
within 10 % after warm-up, connections and Valkey memory bounded. Prints one JSON object; exit
status 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402
from redis import Redis  # noqa: E402

from tests.faults.harness import (  # noqa: E402
    ADMIN_KEY,
    Cluster,
    _item,
    _texts,
    create_connection,
    sign_generic,
    supervise,
    wait_ready,
)

WORKERS = 2
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Group|Exit)\b")
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"}


@dataclass
class Soak:
    args: argparse.Namespace
    cluster: Cluster
    connection: tuple[str, str]
    acked: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    samples: list[dict[str, float]] = field(default_factory=list)
    faults: list[tuple[float, str]] = field(default_factory=list)
    outage: bool = False
    texts: list[str] = field(default_factory=list)
    exits: list[str] = field(default_factory=list)

    def start_worker(self, index: int) -> None:
        self.cluster.workers[index] = self.cluster._spawn(
            ["-m", "workers", "--queues", "deliveries,items"], f"worker{index}.log"
        )

    async def send(self, client: httpx.AsyncClient, n: int, deadline: float) -> None:
        """One unit (a delivery or an item), retried as a sender would until acknowledged."""
        texts = self.texts
        if n % 3:
            key = f"msg_{n}"
            item = _item(f"w{n}", texts[n % len(texts)], n) | {"source": "generic"}
            body = json.dumps({"type": "item.upserted", "data": item}).encode()
            url, secret = f"/v1/webhooks/{self.connection[0]}", self.connection[1]
        else:
            key = f"i{n}"
            body = json.dumps(_item(key, texts[n % len(texts)], n)).encode()
            url, secret = "/v1/items", None
        while time.monotonic() < deadline:
            headers = sign_generic(secret, key, body) if secret else ADMIN
            try:
                status = str((await client.post(url, content=body, headers=headers)).status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            self.statuses[status] += 1
            if status.startswith("2"):
                self.acked.add(key)
                return
            await asyncio.sleep(0.5)

    async def load(self, deadline: float) -> None:
        self.texts = _texts(3)
        rate = self.args.units_per_s
        tasks: set[asyncio.Task[None]] = set()
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=self.cluster.url, timeout=10.0) as client:
            n = 0
            while (due := started + n / rate) < deadline:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                task = asyncio.create_task(self.send(client, n, deadline + 120))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            await asyncio.gather(*tasks)

    async def inject(self, deadline: float) -> None:
        started = time.monotonic()
        store_faults = {"valkey_restart": started + self.args.duration_s / 3,
                        "pg_restart": started + 2 * self.args.duration_s / 3}  # fmt: skip
        next_kill = started + self.args.kill_every_s
        victim = 0
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            if now >= next_kill:
                self.cluster.kill_worker(victim)
                self.start_worker(victim)
                self.faults.append((round(now - started, 1), f"kill -9 worker{victim}"))
                victim, next_kill = (victim + 1) % WORKERS, next_kill + self.args.kill_every_s
            for kind, at in list(store_faults.items()):
                if now >= at:
                    del store_faults[kind]
                    self.faults.append((round(now - started, 1), kind))
                    store = self.cluster.valkey if kind == "valkey_restart" else self.cluster.pg
                    self.outage = True
                    await asyncio.to_thread(store.stop)
                    await asyncio.sleep(self.args.outage_s)
                    await asyncio.to_thread(store.start)
                    self.outage = False

    async def sample(self, deadline: float) -> None:
        started = time.monotonic()
        while time.monotonic() < deadline + 1:
            if not self.outage:
                with contextlib.suppress(Exception):
                    self.samples.append({"t": round(time.monotonic() - started, 1), **await self._measure()})
            await asyncio.sleep(self.args.sample_every_s)

    async def _measure(self) -> dict[str, float]:
        def rss_mb(proc: Any) -> float:
            if proc is None or proc.poll() is not None:
                return 0.0
            root = psutil.Process(proc.pid)
            return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20

        conn = await asyncpg.connect(self.cluster.pg.url("tickets"), timeout=5)
        try:
            connections = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = 'tickets'")
            lag = await conn.fetchval(
                "SELECT coalesce(extract(epoch FROM now() - min(changed_at)), 0) FROM item WHERE pending"
            )
            deliveries = await conn.fetchval("SELECT count(*) FROM delivery WHERE status = 'pending'")
        finally:
            await conn.close()
        redis = Redis.from_url(self.cluster.valkey.url(0), socket_timeout=5)
        try:
            valkey_mb = float(redis.info("memory")["used_memory"]) / 2**20
        finally:
            redis.close()
        return {
            "api_rss_mb": round(rss_mb(self.cluster.api), 1),
            "worker_rss_mb": round(max(rss_mb(w) for w in self.cluster.workers), 1),
            "pg_connections": float(connections),
            "valkey_mb": round(valkey_mb, 2),
            "item_lag_s": round(float(lag), 1),
            "pending_deliveries": float(deliveries),
        }

    async def check(self) -> dict[str, Any]:
        conn = await asyncpg.connect(self.cluster.pg.url("tickets"))
        try:
            deadline = time.monotonic() + self.args.drain_timeout_s
            while time.monotonic() < deadline:
                pending = await conn.fetchval(
                    "SELECT (SELECT count(*) FROM item WHERE pending)"
                    " + (SELECT count(*) FROM delivery WHERE status = 'pending')"
                )
                if pending == 0:
                    break
                await asyncio.sleep(1.0)
            hooks = {r["id"] for r in await conn.fetch("SELECT headers->>'webhook-id' AS id FROM delivery")}
            items = {r["external_id"] for r in await conn.fetch("SELECT external_id FROM item")}
            lost = [k for k in self.acked if (k not in hooks if k.startswith("msg_") else k not in items)]
            duplicated = await conn.fetchval(
                "SELECT (SELECT count(*) FROM (SELECT 1 FROM item GROUP BY source, external_id"
                "   HAVING count(*) > 1) a)"
                " + (SELECT count(*) FROM (SELECT 1 FROM delivery GROUP BY connection_id, dedupe_key"
                "   HAVING count(*) > 1) b)"
                " + (SELECT count(*) FROM (SELECT 1 FROM embedding GROUP BY item_id, model_version"
                "   HAVING count(*) > 1) c)"
            )
            return {"still_pending": pending, "lost": len(lost), "duplicated": duplicated}
        finally:
            await conn.close()


def _spread(samples: list[dict[str, float]], key: str, warm_up_s: float) -> dict[str, float | None]:
    """First and last value after warm-up (medians of the first and last fifth) and the maximum."""
    values = [s[key] for s in samples if s["t"] >= warm_up_s]
    if len(values) < 5:
        return {"first": None, "last": None, "max": max(values) if values else None}
    fifth = max(1, len(values) // 5)
    first, last = sorted(values[:fifth])[fifth // 2], sorted(values[-fifth:])[fifth // 2]
    return {"first": first, "last": last, "max": max(values)}


async def run_soak(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    """The soak on a cluster whose stores are started; returns the figures and the goals."""
    cluster.start_api()
    soak = Soak(args, cluster, ("", ""))
    for index in range(WORKERS):
        soak.start_worker(index)
    await wait_ready(cluster, timeout=300)
    soak.connection = await create_connection(cluster)
    deadline = time.monotonic() + args.duration_s
    # A process that exits on its own is restarted, as compose and `make run` do; the kills
    # restart their own victims at once, so the supervisor never sees them.
    stop = asyncio.Event()
    supervisor = asyncio.create_task(supervise(cluster, soak.exits, stop, time.monotonic(), soak.start_worker))
    try:
        await asyncio.gather(soak.load(deadline), soak.inject(deadline), soak.sample(deadline))
        ledger = await soak.check()
    finally:
        stop.set()
        await supervisor
    warm_up = min(args.warm_up_s, args.duration_s / 3)
    spread = {k: _spread(soak.samples, k, warm_up) for k in soak.samples[0] if k != "t"} if soak.samples else {}
    api = spread.get("api_rss_mb", {})
    server_errors = sum(n for s, n in soak.statuses.items() if s.startswith("5"))
    goals = {
        "zero_lost": ledger["lost"] == 0,
        "zero_duplicated": ledger["duplicated"] == 0,
        "drained": ledger["still_pending"] == 0,
        "api_rss_within_10pct": api.get("first") is None or (api["last"] or 0) <= 1.10 * (api["first"] or 0),
        "pg_connections_bounded": (spread.get("pg_connections", {}).get("max") or 0) <= args.max_pg_connections,
        "no_500": soak.statuses.get("500", 0) == 0,
    }
    return {
        "args": vars(args),
        "acked": len(soak.acked),
        "statuses": dict(soak.statuses),
        "server_errors_during_faults": server_errors,
        "unhandled_errors": unhandled_errors(cluster.base / "api.log"),
        "faults": soak.faults,
        "restarted_by_the_supervisor": soak.exits,
        "resources": spread,
        "ledger": ledger,
        "goals": goals,
    }


def unhandled_errors(log_path: Path) -> list[str]:
    """Each 500 the API logged: the request, then the exception lines of its traceback in order."""
    found: list[list[str]] = []
    if not log_path.exists():
        return []
    for line in log_path.read_text(errors="replace").splitlines():
        if "unhandled error on" in line:
            found.append([line.split("unhandled error on", 1)[1].strip()])
        elif found and _EXCEPTION_LINE.match(line):
            found[-1].append(line[:200])
    return [" | ".join(entry) for entry in found]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python bench/soak.py", description=__doc__.split("\n")[0])
    p.add_argument("--duration-s", type=float, default=7200.0)
    p.add_argument("--kill-every-s", type=float, default=600.0)
    p.add_argument("--units-per-s", type=float, default=30.0, help="deliveries (2/3) and items (1/3)")
    p.add_argument("--outage-s", type=float, default=5.0)
    p.add_argument("--sample-every-s", type=float, default=10.0)
    p.add_argument("--warm-up-s", type=float, default=600.0)
    p.add_argument("--drain-timeout-s", type=float, default=600.0)
    p.add_argument("--max-pg-connections", type=int, default=60)
    p.add_argument("--keep-logs", action="store_true", help="keep the run's directory (API and worker logs)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="soak-"))
    cluster = Cluster(base, workers=WORKERS, sweep_after_s=30)
    try:
        cluster.start_stores()  # runs the migrations in its own event loop
        result = asyncio.run(run_soak(args, cluster))
    finally:
        cluster.stop()
        if args.keep_logs:
            print(f"logs kept in {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0 if all(result["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
