"""L1: every kind of traffic at once, then a ledger check (#17).

    python bench/mixed_load.py                      # 15 minutes, the rates of the goal
    python bench/mixed_load.py --duration-s 180     # the short run recorded on a shared machine
    python bench/mixed_load.py --lanes webhook --workers 0 --duration-s 60 --hooks-per-s 600
                                                    # one lane's capacity, nothing else running
    python bench/mixed_load.py --workers-nice 19    # workers as if on another host

--lanes picks the kinds of traffic (default all five). --workers-nice runs the workers (and their
autogroup) at that niceness, so they take only the CPU the API, the stores and the generator leave
(a model of workers on other hosts on a machine that has no other hosts). --profile FILE runs the API under
cProfile and writes its stats there when the API exits. The result holds the CPU seconds each
process used during the load (`cpu_s`) and the API's CPU milliseconds per answered request.

At once, for --duration-s: signed `generic` webhook deliveries (--hooks-per-s), bulk requests of
--bulk-items items (--bulk-per-s), report reads (--reports-per-s), --sessions dashboard sessions
reading pages, a clustering run every --cluster-every-s, and (with --edit-every-s) a person
renaming a theme at that interval, which makes every stored report's copy unservable. Everything
on loopback: embedded Postgres and Valkey, the API and the workers as processes
(tests/faults/harness.py). Each loop is
paced by the clock and ends at the deadline, even when the service is behind (then the achieved
rate, `sent_per_s`, falls short of the asked one). Then the deliveries' processing is awaited and
SQL checks that every acknowledged delivery and bulk item is stored (0 lost); items still waiting
for their embedding are counted, not awaited. Goals: webhook ack p99 < 50 ms, report
p95 < 200 ms, 0 lost, 0 5xx. Prints one JSON object; exit status 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import shutil
import signal
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
import psutil  # noqa: E402

from bench.webhooks import exchange  # noqa: E402
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


class RawSender:
    """HTTP/1.1 POSTs on keep-alive loopback sockets.

    The webhook lane sends hundreds of requests a second from the same two cores as the service;
    with httpx the generator used twice the API's CPU (1.6 ms against 0.8 ms a request, at
    300/s), with this sender 0.26 ms. A webhook sender is another host in production, so its cost
    here is only noise.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", f"Content-Length: {len(body)}",
                *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        for attempt in range(2):
            reused = attempt == 0 and bool(self.idle)
            if reused:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                status, reusable = await asyncio.wait_for(exchange(reader, writer, request), 30.0)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                writer.close()
                if reused:  # the server closed an idle keep-alive connection: retry on a fresh one
                    continue
                raise
            except TimeoutError:
                writer.close()
                raise
            if reusable:
                self.idle.append((reader, writer))
            else:
                writer.close()
            return status
        raise ConnectionError("no connection")

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def _timed_raw(lane: Lane, call: Awaitable[int]) -> int | None:
    started = time.monotonic()
    try:
        code: int | None = await call
        status = str(code)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        code, status = None, type(exc).__name__
    lane.record(status, time.monotonic() - started)
    return code


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
        self.lanes = {name: Lane() for name in ("webhook", "bulk", "report", "dashboard", "clustering", "edit")}
        self.loop_lag: list[float] = []
        today = datetime.now(UTC).date()
        self.window = {"from": (today - timedelta(weeks=12)).isoformat(), "to": today.isoformat()}

    async def webhook(self, sender: RawSender, n: int) -> None:
        msg_id = f"msg_{n}"
        item = _item(f"w{n}", self.texts[n % len(self.texts)], n) | {"source": "generic"}
        body = json.dumps({"type": "item.upserted", "data": item}).encode()
        call = sender.post(f"/v1/webhooks/{self.connection_id}", body, sign_generic(self.secret, msg_id, body))
        if await _timed_raw(self.lanes["webhook"], call) in (200, 202):
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

    async def edits(self, client: httpx.AsyncClient, deadline: float) -> None:
        """A person's theme, renamed every --edit-every-s: each rename is a curation change."""
        created = await client.post("/v1/themes", json={"label": "Edit 0", "examples": [self.texts[0]]}, headers=ADMIN)
        theme_id = created.json()["theme_id"]
        n = 0
        while time.monotonic() + self.args.edit_every_s < deadline:
            await asyncio.sleep(self.args.edit_every_s)
            n += 1
            rename = client.patch(f"/v1/themes/{theme_id}", json={"label": f"Edit {n}"}, headers=ADMIN)
            await _timed(self.lanes["edit"], rename)

    async def run(self) -> None:
        deadline = time.monotonic() + self.args.duration_s
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        lanes = set(self.args.lanes.split(","))
        sender = RawSender(self.cluster.api_port)
        async with httpx.AsyncClient(base_url=self.cluster.url, timeout=30.0, limits=limits) as client:
            paced_lanes = {
                "webhook": lambda: paced(self.args.hooks_per_s, deadline, lambda n: self.webhook(sender, n)),
                "bulk": lambda: paced(self.args.bulk_per_s, deadline, lambda n: self.bulk(client, n), limit=16),
                "report": lambda: paced(self.args.reports_per_s, deadline, lambda n: self.report(client, n), limit=16),
            }
            chosen = [name for name in paced_lanes if name in lanes]
            others: list[Awaitable[None]] = []
            if "dashboard" in lanes:
                others += [self.dashboard(deadline) for _ in range(self.args.sessions)]
            if "clustering" in lanes:
                others.append(self.clustering(client, deadline))
            if self.args.edit_every_s > 0:
                others.append(self.edits(client, deadline))
            lag = asyncio.create_task(self.watch_lag(deadline))
            sent = await asyncio.gather(*[paced_lanes[name]() for name in chosen], *others)
            await lag
        sender.close()
        for name, count in zip(chosen, sent, strict=False):
            self.lanes[name].sent = int(count or 0)

    async def watch_lag(self, deadline: float) -> None:
        """How late this generator's own event loop wakes up: lag here is latency the service did
        not cause (the lanes share one loop, and a bulk body takes milliseconds to encode)."""
        while time.monotonic() < deadline:
            started = time.monotonic()
            await asyncio.sleep(0.01)
            self.loop_lag.append(time.monotonic() - started - 0.01)


def _processes(cluster: Cluster) -> dict[str, list[psutil.Process]]:
    """The processes whose CPU the result reports: each with its children (forked job horses,
    Postgres backends)."""

    def tree(pid: int | None) -> list[psutil.Process]:
        if pid is None:
            return []
        try:
            root = psutil.Process(pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    pg_pid = int((cluster.pg.pgdata / "postmaster.pid").read_text().split()[0])
    return {
        "api": tree(cluster.api.pid if cluster.api else None),
        "workers": [p for w in cluster.workers for p in tree(w.pid if w else None)],
        "postgres": tree(pg_pid),
        "generator": [psutil.Process()],
    }


def cpu_seconds(cluster: Cluster) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each group of processes that is alive now."""
    used: dict[str, float] = {}
    for name, procs in _processes(cluster).items():
        total = 0.0
        for proc in procs:
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system + (t.children_user + t.children_system if name == "workers" else 0.0)
        used[name] = total
    return used


async def ledger_check(cluster: Cluster, traffic: Traffic, timeout: float) -> dict[str, Any]:
    conn = await asyncpg.connect(cluster.pg.url("tickets"))
    try:
        started = time.monotonic()
        pending = await conn.fetchval("SELECT count(*) FROM delivery WHERE status = 'pending'")
        while traffic.args.workers and time.monotonic() - started < timeout:
            # Deliveries must be processed into items; items waiting for their embedding are
            # stored already (the backlog bench measures that drain), so they are not awaited.
            pending = await conn.fetchval("SELECT count(*) FROM delivery WHERE status = 'pending'")
            if pending == 0:
                break
            await asyncio.sleep(2.0)
        drain_s = time.monotonic() - started
        hooks = {r["id"] for r in await conn.fetch("SELECT headers->>'webhook-id' AS id FROM delivery")}
        items = {r["external_id"] for r in await conn.fetch("SELECT external_id FROM item WHERE source = 'fault'")}
        # Processed deliveries first, then items: a worker still draining commits a delivery and its
        # item together, so read the other way round a delivery processed between the two reads
        # would count as one without its item.
        processed = {
            r["id"]
            for r in await conn.fetch("SELECT headers->>'webhook-id' AS id FROM delivery WHERE status = 'processed'")
        }
        hook_items = {
            r["external_id"] for r in await conn.fetch("SELECT external_id FROM item WHERE source = 'generic'")
        }
        run_rows = await conn.fetch("SELECT status, error FROM clustering_run ORDER BY run_id")
        runs = Counter(r["status"] for r in run_rows)
        return {
            "drain_s": round(drain_s, 1),
            "deliveries_still_pending": pending,
            "items_waiting_for_embedding": await conn.fetchval("SELECT count(*) FROM item WHERE pending"),
            "lost_deliveries": len(traffic.lanes["webhook"].acked - hooks),
            "lost_bulk_items": len(traffic.lanes["bulk"].acked - items),
            "deliveries_without_item": len({p.replace("msg_", "w") for p in processed} - hook_items),
            "clustering_runs": dict(runs),
            # why a run failed: the run's directory, with the workers' logs, goes at the end
            "clustering_run_errors": [r["error"][:500] for r in run_rows if r["error"]],
        }
    finally:
        await conn.close()


# uvicorn re-raises the SIGTERM it caught once it has shut down, which would end the process before
# cProfile writes: a no-op handler installed first is the one it restores and re-raises into.
_PROFILED_API = """
import cProfile, signal, sys, uvicorn
signal.signal(signal.SIGTERM, lambda *_: None)
profile = cProfile.Profile()
profile.enable()
uvicorn.run("api.main:create_app", factory=True, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning",
            access_log=False)
profile.disable()
profile.dump_stats(sys.argv[1])
"""


def start_api(cluster: Cluster, profile: str | None) -> None:
    if profile is None:
        cluster.start_api()
        return
    cluster.api = cluster._spawn(["-c", _PROFILED_API, profile, str(cluster.api_port)], "api.log")


async def wait_up(cluster: Cluster, *, workers: int) -> None:
    """Ready (a worker heartbeat) with workers; with none, the API answering is enough."""
    if workers:
        await wait_ready(cluster, timeout=300)
        return
    async with httpx.AsyncClient(base_url=cluster.url, timeout=2.0) as client:
        for _ in range(600):
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"API did not start:\n{cluster.log_tail('api.log')}")


def deprioritise(pid: int, nice: int) -> None:
    """Run a process (and what it forks) at `nice`. Each child of the harness has its own session,
    and with the kernel's autogroup scheduling (sched_autogroup_enabled) a session's processes
    share one group whose weight ignores their niceness: a worker at nice 19 still took an equal
    share beside the API (measured: 23 % a worker, 25 % the API). So the group is niced too."""
    os.setpriority(os.PRIO_PROCESS, pid, nice)
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))


def stop_api_gently(cluster: Cluster) -> None:
    """SIGTERM, so uvicorn returns and cProfile writes its stats (stop() would SIGKILL)."""
    if cluster.api is not None and cluster.api.poll() is None:
        cluster.api.send_signal(signal.SIGTERM)
        try:
            cluster.api.wait(timeout=60)
        except Exception:
            pass


async def main_async(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    try:
        start_api(cluster, args.profile)
        for index in range(args.workers):
            cluster.start_worker(index)  # all queues: items, deliveries and clustering
            worker = cluster.workers[index]
            if args.workers_nice and worker is not None:
                deprioritise(worker.pid, args.workers_nice)
        await wait_up(cluster, workers=args.workers)
        connection = await create_connection(cluster)
        traffic = Traffic(args, cluster, connection)
        load_before = os.getloadavg()
        cpu_before = cpu_seconds(cluster)
        started = time.monotonic()
        await traffic.run()
        load_s = time.monotonic() - started
        cpu_after = cpu_seconds(cluster)
        load_after = os.getloadavg()
        ledger = await ledger_check(cluster, traffic, args.drain_timeout_s)
        if args.profile:
            stop_api_gently(cluster)
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
    cpu = {name: round(cpu_after[name] - cpu_before.get(name, 0.0), 1) for name in cpu_after}
    answered = sum(sum(lane.statuses.values()) for lane in traffic.lanes.values())
    return {"args": vars(args), "load_s": round(load_s, 1), "sent_per_s": rates, "lanes": lanes, "ledger": ledger,
            "server_errors": server_errors, "goals": goals, "cpu_s": cpu,
            "api_cpu_ms_per_request": round(1000 * cpu["api"] / answered, 2) if answered else None,
            "generator_loop_lag_ms": Lane(latencies=traffic.loop_lag).summary(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after]}  # fmt: skip


def log_summary(path: Path, top: int = 10) -> dict[str, int]:
    """The log's most frequent lines, numbers blanked so repeats group ("database unavailable:
    QueryCanceledError" x 2): the result keeps why a 5xx happened after the run's directory goes."""
    if not path.exists():
        return {}
    lines = (re.sub(r"\d+", "#", line.strip())[:200] for line in path.read_text(errors="replace").splitlines())
    return dict(collections.Counter(line for line in lines if line).most_common(top))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/mixed_load.py", description=__doc__.split("\n")[0])
    parser.add_argument("--duration-s", type=float, default=900.0)
    parser.add_argument("--hooks-per-s", type=float, default=300.0)
    parser.add_argument("--bulk-per-s", type=float, default=20.0)
    parser.add_argument("--bulk-items", type=int, default=500)
    parser.add_argument("--reports-per-s", type=float, default=20.0)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--cluster-every-s", type=float, default=300.0)
    parser.add_argument("--edit-every-s", type=float, default=0.0, help="rename a theme this often (0: never)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--api-processes", type=int, default=1, help="uvicorn processes serving the API")
    parser.add_argument("--drain-timeout-s", type=float, default=1800.0)
    parser.add_argument("--lanes", default="webhook,bulk,report,dashboard,clustering",
                        help="comma-separated: webhook, bulk, report, dashboard, clustering")  # fmt: skip
    parser.add_argument("--workers-nice", type=int, default=0, help="niceness of the worker processes (0-19)")
    parser.add_argument("--profile", default=None, help="write the API's cProfile stats to this file")
    args = parser.parse_args(argv)
    if args.profile:
        args.profile = os.path.abspath(args.profile)
    base = Path(tempfile.mkdtemp(prefix="mixed-load-"))
    cluster = Cluster(base, workers=args.workers, sweep_after_s=60, api_processes=args.api_processes)
    cluster.env.update(CLUSTER_EVERY_S=str(10**9), DB_POOL_MAX="20")
    try:
        cluster.start_stores()  # runs the migrations in its own event loop
        result = asyncio.run(main_async(args, cluster))
        cluster.stop()  # flushes the API's log before it is read
        result["api_log"] = log_summary(base / "api.log")
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0 if all(result["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
