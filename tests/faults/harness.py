"""The fault harness: real stores, the API and workers as separate processes, a ledger-checked load
and injected faults (reliability.md W4, Q1, Q3, D3, L2; harness in §8).

Everything listens on 127.0.0.1. Postgres and Valkey come from embedded/stores.py; the API runs
as `python -m uvicorn --factory api.main:create_app`, each worker as `python -m workers`, every
child in its own session so a fault can `kill -9` its whole process group. The load client posts
items (`POST /v1/items`) and signed `generic` webhook deliveries (`POST /v1/webhooks/{id}`),
retries what was not acknowledged (as senders do), re-sends some acknowledged ones (duplicates),
and writes every 2xx-acknowledged key to a ledger. The invariants are then checked by SQL.

Used by tests/faults (short, CI) and bench/faults.py (long).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import hashlib
import hmac
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis import Redis

from db.migrate import migrate
from embedded.stores import Postgres, Valkey, free_port

ROOT = Path(__file__).resolve().parents[2]
BANKING77 = ROOT.parent / "shared" / "data" / "banking77" / "train.csv"
ADMIN_KEY = "tk_faults_admin_key_0123456789abcdef"
SECRET_KEY = "faults-server-secret-key-0123456789abcdefghijkl"
FAULT_KINDS = ("worker_kill", "api_kill", "valkey_restart", "pg_restart", "pg_terminate")
ITEM_SOURCE = "fault"


@dataclass
class Scenario:
    deliveries: int = 2_000  # units of load: items + webhook deliveries
    webhook_share: float = 0.2
    faults: int = 5
    workers: int = 2
    load_s: float = 60.0  # the load is spread over this long; faults fall inside it
    concurrency: int = 8
    duplicate_share: float = 0.03  # acknowledged units sent once more
    drain_timeout_s: float = 120.0  # stored = processed within this long after the last fault
    outage_s: float = 5.0  # how long Postgres / Valkey stay down
    sweep_after_s: int = 10
    seed: int = 7


@dataclass
class FaultRecord:
    kind: str
    at_s: float
    detail: str = ""
    recovery_s: float | None = None  # store/process back → first 2xx from the API
    acks_during: int = 0  # 2xx acknowledgements while the fault lasted


@dataclass
class Result:
    scenario: Scenario
    sent: int = 0  # distinct units
    attempts: int = 0
    acked: set[str] = field(default_factory=set)
    gave_up: set[str] = field(default_factory=set)
    duplicates_sent: int = 0
    duplicates_acked: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    outage_latencies: list[float] = field(default_factory=list)  # non-2xx answers while a store was down
    faults: list[FaultRecord] = field(default_factory=list)
    unexpected_exits: list[str] = field(default_factory=list)
    # invariants, filled by check_invariants
    stored_items: int = 0
    stored_deliveries: int = 0
    missing: list[str] = field(default_factory=list)  # acked but not stored
    unprocessed_items: int = -1
    unprocessed_deliveries: int = -1
    failed_deliveries: int = 0
    failed_delivery_errors: list[str] = field(default_factory=list)
    duplicate_rows: int = -1
    drained_after_last_fault_s: float | None = None
    load_s: float = 0.0
    total_s: float = 0.0
    ledger_path: Path | None = None

    def figures(self) -> list[tuple[str, str]]:
        kinds = Counter(f.kind for f in self.faults)
        rows = [
            ("units sent (items + webhooks)", str(self.sent)),
            ("requests (with retries)", str(self.attempts)),
            ("acknowledged (2xx)", str(len(self.acked))),
            ("gave up (never acked)", str(len(self.gave_up))),
            ("duplicates sent / acked 2xx", f"{self.duplicates_sent} / {self.duplicates_acked}"),
            ("stored items / deliveries", f"{self.stored_items} / {self.stored_deliveries}"),
            ("acked but not stored", str(len(self.missing))),
            ("unprocessed items / deliveries", f"{self.unprocessed_items} / {self.unprocessed_deliveries}"),
            ("failed deliveries", str(self.failed_deliveries)),
            ("duplicate rows", str(self.duplicate_rows)),
            ("drained after last fault (s)", _num(self.drained_after_last_fault_s)),
            ("faults", ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items()))),
            ("unexpected process exits", str(len(self.unexpected_exits))),
            ("status counts", ", ".join(f"{k}: {n}" for k, n in sorted(self.statuses.items()))),
            ("ack latency p50 / p99 / max (s)", _pcts(self.latencies)),
            ("non-2xx latency during outages max (s)", _num(max(self.outage_latencies, default=0.0))),
            ("load / total time (s)", f"{self.load_s:.1f} / {self.total_s:.1f}"),
        ]
        for kind in FAULT_KINDS:
            times = [f.recovery_s for f in self.faults if f.kind == kind and f.recovery_s is not None]
            if times:
                rows.append(
                    (f"{kind}: back to 2xx (s) max / mean", f"{max(times):.2f} / {sum(times) / len(times):.2f}")
                )
        return rows

    def table(self) -> str:
        rows = self.figures()
        width = max(len(k) for k, _ in rows)
        lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
        lines.append("")
        lines += [f"  {f.at_s:6.1f}s {f.kind:15} {f.detail} recovery={_num(f.recovery_s)}s" for f in self.faults]
        if self.unexpected_exits:
            lines += ["", "restarted by the supervisor: " + "; ".join(self.unexpected_exits)]
        return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _pcts(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"{at(0.5):.3f} / {at(0.99):.3f} / {ordered[-1]:.3f}"


# --- processes --------------------------------------------------------------------------------


class Cluster:
    """Postgres, Valkey, the API (one process, or uvicorn's `--workers api_processes`) and N
    workers on loopback, all killable."""

    def __init__(self, base: Path, workers: int, sweep_after_s: int, api_processes: int = 1) -> None:
        self.base = base
        self.api_processes = api_processes
        self.pg = Postgres(base / "postgres", free_port())
        self.valkey = Valkey(base / "valkey", free_port())
        self.api_port = free_port()
        self.n_workers = workers
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * workers
        self.env = dict(os.environ)
        self.env.update(
            DATABASE_URL=self.pg.url("tickets"),
            REDIS_URL=self.valkey.url(0),
            ADMIN_API_KEY=ADMIN_KEY,
            SECRET_KEY=SECRET_KEY,
            ENVIRONMENT="test",
            MODEL_CACHE_DIR=str(ROOT / "var" / "models"),
            SWEEP_AFTER_S=str(sweep_after_s),
            RELAY_POLL_S="0.5",
            DB_POOL_MAX="10",
            CLUSTER_EVERY_NEW_ITEMS=str(10**9),
            CLUSTER_EVERY_S=str(10**9),
            PYTHONUNBUFFERED="1",
        )
        self.url = f"http://127.0.0.1:{self.api_port}"

    def start_stores(self) -> None:
        self.pg.start()
        self.valkey.start()
        self.pg.create_database("tickets")
        asyncio.run(migrate(self.pg.url("tickets")))

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.base / log_name, "ab")  # the child keeps its own descriptor
        try:
            return subprocess.Popen(
                [sys.executable, *args], env=self.env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True
            )
        finally:
            log.close()

    def start_api(self) -> None:
        self.api = self._spawn(
            ["-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1",
             "--port", str(self.api_port), "--log-level", "warning", "--no-access-log",
             *(["--workers", str(self.api_processes)] if self.api_processes > 1 else [])],
            "api.log",
        )  # fmt: skip

    def start_worker(self, index: int) -> None:
        self.workers[index] = self._spawn(["-m", "workers"], f"worker{index}.log")

    def kill_api(self) -> None:
        _kill_group(self.api)

    def kill_worker(self, index: int) -> None:
        _kill_group(self.workers[index])

    def stop(self) -> None:
        for proc in [self.api, *self.workers]:
            _kill_group(proc)
        with contextlib.suppress(Exception):
            self.valkey.stop()
        with contextlib.suppress(Exception):
            self.pg.stop(immediate=True)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.base / name
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _kill_group(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


# --- load -------------------------------------------------------------------------------------


def _texts(seed: int) -> list[str]:
    with open(BANKING77, newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    random.Random(seed).shuffle(texts)
    return texts


def _item(external_id: str, text: str, n: int) -> dict[str, Any]:
    created = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(minutes=n)
    return {
        "source": ITEM_SOURCE,
        "external_id": external_id,
        "kind": "ticket",
        "title": text[:60],
        "body": text,
        "created_at": created.isoformat(),
        "status": "open",
    }


def sign_generic(secret: str, msg_id: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers for our `generic` vendor, with a fresh timestamp."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    stamp = str(int(time.time()))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        "content-type": "application/json",
    }


@dataclass
class Unit:
    key: str  # ledger key: "item:<external_id>" or "hook:<webhook-id>"
    url: str
    body: bytes
    secret: str | None = None  # webhooks: signed at each attempt
    attempts: int = 0


class Load:
    def __init__(self, cluster: Cluster, scenario: Scenario, result: Result, connection: tuple[str, str]) -> None:
        self.cluster = cluster
        self.scenario = scenario
        self.result = result
        rng = random.Random(scenario.seed)
        texts = _texts(scenario.seed)
        connection_id, secret = connection
        self.units: list[Unit] = []
        for n in range(scenario.deliveries):
            text = texts[n % len(texts)]
            if rng.random() < scenario.webhook_share:
                payload = {"type": "item.upserted", "data": _item(f"w{n}", text, n) | {"source": "generic"}}
                self.units.append(
                    Unit(f"hook:msg_{n}", f"/v1/webhooks/{connection_id}", json.dumps(payload).encode(), secret)
                )
            else:
                self.units.append(Unit(f"item:i{n}", "/v1/items", json.dumps(_item(f"i{n}", text, n)).encode()))
        self.rng = rng
        self.active_faults: list[FaultRecord] = []
        self.pending = 0
        self.queue: asyncio.Queue[Unit | None] = asyncio.Queue()
        self.outage = False  # a store is down right now (latencies of refusals are recorded)
        self.ledger = open(cluster.base / "ledger.tsv", "w")  # closed at the end of run()
        result.ledger_path = cluster.base / "ledger.tsv"

    async def send(self, client: httpx.AsyncClient, unit: Unit) -> bool:
        headers = {"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"}
        if unit.secret is not None:
            headers = sign_generic(unit.secret, unit.key.removeprefix("hook:"), unit.body)
        started = time.monotonic()
        try:
            resp = await client.post(unit.url, content=unit.body, headers=headers)
            status = str(resp.status_code)
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        elapsed = time.monotonic() - started
        self.result.attempts += 1
        self.result.statuses[status] += 1
        ok = status.startswith("2")
        if ok:
            self.result.latencies.append(elapsed)
        elif self.outage:
            self.result.outage_latencies.append(elapsed)
        return ok

    async def sender(self, client: httpx.AsyncClient, deadline: float) -> None:
        while True:
            unit = await self.queue.get()
            if unit is None:
                return
            unit.attempts += 1
            if await self.send(client, unit):
                first = unit.key not in self.result.acked
                self.result.acked.add(unit.key)
                self.ledger.write(f"{unit.key}\n")
                for fault in self.active_faults:
                    fault.acks_during += 1
                if first and self.rng.random() < self.scenario.duplicate_share:
                    self.result.duplicates_sent += 1
                    if await self.send(client, unit):
                        self.result.duplicates_acked += 1
            elif time.monotonic() < deadline and unit.attempts < 200:
                asyncio.get_running_loop().call_later(0.5, self.queue.put_nowait, unit)  # retry, as senders do
            else:
                self.result.gave_up.add(unit.key)
            self.pending -= 1

    async def run(self) -> None:
        scenario = self.scenario
        self.pending = len(self.units)
        self.result.sent = len(self.units)
        deadline = time.monotonic() + scenario.load_s + 90  # retries stop after this
        limits = httpx.Limits(max_connections=scenario.concurrency * 2)
        async with httpx.AsyncClient(base_url=self.cluster.url, timeout=10.0, limits=limits) as client:
            senders = [asyncio.create_task(self.sender(client, deadline)) for _ in range(scenario.concurrency)]
            started = time.monotonic()
            for n, unit in enumerate(self.units):  # spread evenly over load_s
                delay = started + n * scenario.load_s / len(self.units) - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.queue.put_nowait(unit)
            while self.pending > 0:
                await asyncio.sleep(0.1)
            for _ in senders:
                self.queue.put_nowait(None)
            await asyncio.gather(*senders)
        self.ledger.close()


# --- faults -----------------------------------------------------------------------------------


async def probe_until_2xx(cluster: Cluster, timeout: float = 60.0) -> float:
    """Seconds until a request that needs Postgres answers 2xx."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=cluster.url, timeout=2.0) as client:
        while time.monotonic() - started < timeout:
            with contextlib.suppress(httpx.HTTPError):
                resp = await client.get(
                    "/v1/items", params={"limit": 1}, headers={"authorization": f"Bearer {ADMIN_KEY}"}
                )
                if resp.status_code == 200:
                    return time.monotonic() - started
            await asyncio.sleep(0.1)
    raise AssertionError(f"the API did not answer 2xx within {timeout} s")


async def busy_worker(cluster: Cluster, timeout: float = 5.0) -> int:
    """Index of a worker that is running a job now (falls back to worker 0 after `timeout`)."""
    from rq import Worker

    redis = Redis.from_url(cluster.valkey.url(0), socket_timeout=2)
    pids = {p.pid: i for i, p in enumerate(cluster.workers) if p is not None}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                for w in await asyncio.to_thread(Worker.all, connection=redis):
                    if w.get_state() == "busy" and w.pid in pids:
                        return pids[w.pid]
            await asyncio.sleep(0.1)
    finally:
        redis.close()
    return 0


async def inject(kind: str, cluster: Cluster, load: Load, scenario: Scenario, started: float) -> FaultRecord:
    record = FaultRecord(kind, time.monotonic() - started)
    load.active_faults.append(record)
    try:
        if kind == "worker_kill":
            index = await busy_worker(cluster)
            record.detail = f"worker{index} pid {cluster.workers[index].pid}"  # type: ignore[union-attr]
            cluster.kill_worker(index)
            cluster.workers[index] = None  # ours to restart, not the supervisor's
            await asyncio.sleep(1.0)
            cluster.start_worker(index)
        elif kind == "api_kill":
            record.detail = f"pid {cluster.api.pid}"  # type: ignore[union-attr]
            cluster.kill_api()
            restarted = time.monotonic()
            cluster.start_api()
            await probe_until_2xx(cluster)
            record.recovery_s = time.monotonic() - restarted
        elif kind == "valkey_restart":
            await asyncio.to_thread(cluster.valkey.stop)
            load.outage = True
            await asyncio.sleep(scenario.outage_s)
            await asyncio.to_thread(cluster.valkey.start)
            load.outage = False
            record.detail = f"down {scenario.outage_s:.0f}s"
        elif kind == "pg_restart":
            await asyncio.to_thread(cluster.pg.stop, immediate=True)
            load.outage = True
            await asyncio.sleep(scenario.outage_s)
            await asyncio.to_thread(cluster.pg.start)
            load.outage = False
            record.recovery_s = await probe_until_2xx(cluster)
            record.detail = f"immediate stop, down {scenario.outage_s:.0f}s"
        elif kind == "pg_terminate":
            conn = await asyncpg.connect(cluster.pg.url("tickets"))
            try:
                killed = await conn.fetchval(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'tickets-api') t"
                )
            finally:
                await conn.close()
            record.recovery_s = await probe_until_2xx(cluster)
            record.detail = f"{killed} API backends terminated"
        else:
            raise ValueError(kind)
    finally:
        load.active_faults.remove(record)
    return record


async def supervise(
    cluster: Cluster,
    exits: list[str],
    stop: asyncio.Event,
    started: float,
    start_worker: Callable[[int], None] | None = None,
) -> None:
    """Restart any process that died on its own (compose `restart: unless-stopped`, `make run`'s loop).

    Each restart is appended to ``exits``. ``start_worker`` replaces `Cluster.start_worker` for
    a caller that starts its workers with other arguments (bench/soak.py).
    """
    restart_worker = start_worker or cluster.start_worker
    while not stop.is_set():
        at = time.monotonic() - started
        if cluster.api is not None and cluster.api.poll() is not None:
            exits.append(f"{at:.1f}s api exited {cluster.api.returncode}")
            cluster.start_api()
        for index, proc in enumerate(cluster.workers):
            if proc is not None and proc.poll() is not None:
                exits.append(f"{at:.1f}s worker{index} exited {proc.returncode}")
                restart_worker(index)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)


# --- invariants -------------------------------------------------------------------------------


async def check_invariants(cluster: Cluster, result: Result, last_fault_at: float) -> None:
    conn = await asyncpg.connect(cluster.pg.url("tickets"))
    try:
        deadline = last_fault_at + result.scenario.drain_timeout_s
        while True:
            unprocessed_items = await conn.fetchval(
                "SELECT count(*) FROM item WHERE pending OR embedded_at IS NULL"
                " OR NOT EXISTS (SELECT 1 FROM embedding e WHERE e.item_id = item.item_id)"
            )
            unprocessed_deliveries = await conn.fetchval("SELECT count(*) FROM delivery WHERE status = 'pending'")
            if unprocessed_items == 0 and unprocessed_deliveries == 0:
                result.drained_after_last_fault_s = time.monotonic() - last_fault_at
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
        result.unprocessed_items = unprocessed_items
        result.unprocessed_deliveries = unprocessed_deliveries
        items = {
            r["external_id"] for r in await conn.fetch("SELECT external_id FROM item WHERE source = $1", ITEM_SOURCE)
        }
        hooks = {
            r["id"]
            for r in await conn.fetch("SELECT headers->>'webhook-id' AS id FROM delivery")
            if r["id"] is not None
        }
        hook_items = {
            r["external_id"] for r in await conn.fetch("SELECT external_id FROM item WHERE source = 'generic'")
        }
        result.stored_items = len(items) + len(hook_items)
        result.stored_deliveries = len(hooks)
        for key in sorted(result.acked):
            kind, _, ident = key.partition(":")
            if kind == "item" and ident not in items:
                result.missing.append(key)
            if kind == "hook" and ident not in hooks:
                result.missing.append(key)
        # a processed delivery wrote its item (the effect exists, not only the status)
        result.missing += [
            f"effect:{r['id']}"
            for r in await conn.fetch("SELECT headers->>'webhook-id' AS id FROM delivery WHERE status = 'processed'")
            if r["id"].replace("msg_", "w") not in hook_items
        ]
        failed = await conn.fetch("SELECT error FROM delivery WHERE status <> 'processed' AND status <> 'pending'")
        result.failed_deliveries = len(failed)
        result.failed_delivery_errors = sorted({str(r["error"])[:200] for r in failed})
        result.duplicate_rows = await conn.fetchval(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM item GROUP BY source, external_id HAVING count(*) > 1) a)"
            " + (SELECT count(*) FROM (SELECT 1 FROM delivery GROUP BY headers->>'webhook-id'"
            "    HAVING count(*) > 1) b)"
            " + (SELECT count(*) FROM (SELECT 1 FROM embedding GROUP BY item_id, model_version"
            "    HAVING count(*) > 1) c)"
        )
    finally:
        await conn.close()


# --- the scenario -----------------------------------------------------------------------------


async def create_connection(cluster: Cluster) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=cluster.url, timeout=10.0) as client:
        resp = await client.post(
            "/v1/connections",
            json={"vendor": "generic", "name": "faults"},
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        )
        resp.raise_for_status()
        body = resp.json()
        return body["connection_id"], body["secret"]


async def wait_ready(cluster: Cluster, timeout: float = 120.0) -> None:
    """The API answers and a worker heartbeat is fresh (/readyz 200)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=cluster.url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise AssertionError(f"not ready in {timeout} s:\n{cluster.log_tail('api.log')}\n{cluster.log_tail('worker0.log')}")


def fault_plan(scenario: Scenario) -> list[tuple[float, str]]:
    """Evenly spaced over the load, every kind in turn (a deterministic shuffle per round)."""
    rng = random.Random(scenario.seed)
    kinds: list[str] = []
    while len(kinds) < scenario.faults:
        round_ = list(FAULT_KINDS)
        rng.shuffle(round_)
        kinds += round_
    gap = scenario.load_s / (scenario.faults + 1)
    return [(gap * (n + 1), kinds[n]) for n in range(scenario.faults)]


async def run_scenario(scenario: Scenario, base: Path) -> Result:
    """Start everything, drive the load through the faults, check the invariants, stop everything."""
    result = Result(scenario)
    cluster = Cluster(base, scenario.workers, scenario.sweep_after_s)
    stop = asyncio.Event()
    began = time.monotonic()
    try:
        await asyncio.to_thread(cluster.start_stores)
        cluster.start_api()
        for index in range(scenario.workers):
            cluster.start_worker(index)
        await wait_ready(cluster)
        connection = await create_connection(cluster)
        load = Load(cluster, scenario, result, connection)
        started = time.monotonic()
        supervisor = asyncio.create_task(supervise(cluster, result.unexpected_exits, stop, started))
        load_task = asyncio.create_task(load.run())
        last_fault_at = started
        for at, kind in fault_plan(scenario):
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            result.faults.append(await inject(kind, cluster, load, scenario, started))
            last_fault_at = time.monotonic()
        await asyncio.wait_for(load_task, timeout=scenario.load_s + 240)
        result.load_s = time.monotonic() - started
        await check_invariants(cluster, result, last_fault_at)
        stop.set()
        await supervisor
    finally:
        stop.set()
        await asyncio.to_thread(cluster.stop)
        result.total_s = time.monotonic() - began
    return result
