"""Webhook ack latency through the real service (uvicorn on loopback, real Postgres and Redis).

    python bench/webhooks.py [--rate 300] [--seconds 60] [--variants running,stopped]

Signed Zendesk (event envelope) and GitHub (discussion.created) deliveries, half each, every one
with fresh ids, are sent open-loop at --rate requests/s from a separate process over keep-alive
HTTP/1.1 connections. Latency runs from the moment a request was *scheduled* to the end of its
response, so a stalled server cannot hide behind a slowed-down client (no coordinated omission).
Variant `running`: a worker (`python -m workers`, relay included) processes deliveries during
the run; `stopped`: no worker at all, so the ack path alone is measured. The first --warmup
seconds (connections opening on both sides) are sent but not measured. Prints ack latency
p50/p95/p99/max, non-2xx and transport errors, and the deliveries stored (and processed).
Stores: DATABASE_URL / REDIS_URL when set, otherwise embedded servers in a temp dir.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import multiprocessing
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ADMIN_KEY, SHARED, machine, percentile, service, stores

FIXTURES = SHARED / "fixtures" / "webhooks"
SECRET_KEY = "bench-server-secret-key-" + secrets.token_urlsafe(24)
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
MAX_CONNECTIONS = 256
TIMEOUT_S = 10.0


# --- the load generator (runs in its own process) ---------------------------------------------


class Requests:
    """Fresh, validly signed deliveries: even n Zendesk, odd n GitHub."""

    def __init__(self, port: int, hooks: dict[str, tuple[str, str]]) -> None:
        self.port = port
        self.hooks = hooks
        self.zendesk = json.loads((FIXTURES / "zendesk" / "event.ticket.created.json").read_bytes())
        self.github = json.loads((FIXTURES / "github" / "discussion.created.json").read_bytes())
        self.run = uuid.uuid4().hex[:8]

    def build(self, n: int) -> bytes:
        if n % 2 == 0:
            cid, secret = self.hooks["zendesk"]
            envelope = dict(self.zendesk)
            envelope["id"] = str(uuid.uuid4())
            envelope["detail"] = {**self.zendesk["detail"], "id": f"{self.run}-{n}", "subject": f"bench ticket {n}"}
            body = json.dumps(envelope).encode()
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
            headers = {
                "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
                "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            }
        else:
            cid, secret = self.hooks["github"]
            payload = dict(self.github)
            payload["discussion"] = {**self.github["discussion"], "id": n, "title": f"bench discussion {n}"}
            body = json.dumps(payload).encode()
            headers = {
                "X-GitHub-Event": "discussion",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            }
        head = [f"POST /v1/webhooks/{cid} HTTP/1.1", f"Host: 127.0.0.1:{self.port}",
                "Content-Type: application/json", f"Content-Length: {len(body)}",
                *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bool]:
    """One request/response on a keep-alive connection: (status, connection still usable)."""
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length, reusable = 0, True
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection" and value.strip().lower() == "close":
            reusable = False
    await reader.readexactly(length)
    return status, reusable


async def load(
    port: int, hooks: dict[str, tuple[str, str]], rate: float, seconds: float, warmup_s: float
) -> dict[str, Any]:
    requests = Requests(port, hooks)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened = 0
    slots = asyncio.Semaphore(MAX_CONNECTIONS)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    lateness = 0.0

    warmup = int(rate * warmup_s)

    async def one(n: int, scheduled: float) -> None:
        nonlocal opened
        request = requests.build(n)
        async with slots:
            for attempt in range(2):
                reused = attempt == 0 and bool(idle)
                try:
                    if reused:
                        reader, writer = idle.pop()
                    else:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                        opened += 1
                    status, reusable = await asyncio.wait_for(exchange(reader, writer, request), TIMEOUT_S)
                except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                    if reused and not isinstance(exc, TimeoutError):
                        # The server closed this idle keep-alive connection (uvicorn's keep-alive
                        # timeout): retry on a fresh one, as HTTP clients do. A duplicate is harmless.
                        writer.close()
                        continue
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    return
                break
            if n >= warmup:  # the first requests open connections on both sides: not measured
                latencies.append(loop.time() - scheduled)
                statuses[status] = statuses.get(status, 0) + 1
            if reusable:
                idle.append((reader, writer))
            else:
                writer.close()

    total = warmup + int(rate * seconds)
    tasks = []
    start = loop.time() + 0.1
    for n in range(total):
        scheduled = start + n / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        lateness = max(lateness, loop.time() - scheduled)
        tasks.append(asyncio.create_task(one(n, scheduled)))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return {
        "sent": total - warmup,
        "warmup": warmup,
        "latencies": latencies,
        "statuses": statuses,
        "errors": errors,
        "connections": opened,
        "max_dispatch_lateness_s": lateness,
        "elapsed_s": loop.time() - start,
    }


def _load_process(
    port: int, hooks: dict[str, tuple[str, str]], rate: float, seconds: float, warmup_s: float, out: Any
) -> None:
    out.send(asyncio.run(load(port, hooks, rate, seconds, warmup_s)))
    out.close()


def run_load(
    port: int, hooks: dict[str, tuple[str, str]], rate: float, seconds: float, warmup_s: float
) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_load_process, args=(port, hooks, rate, seconds, warmup_s, sender))
    proc.start()
    result: dict[str, Any] = receiver.recv()
    proc.join()
    return result


# --- orchestration ------------------------------------------------------------------------------


def create_hooks(base: str) -> dict[str, tuple[str, str]]:
    hooks = {}
    for vendor in ("zendesk", "github"):
        resp = httpx.post(f"{base}/v1/connections", json={"vendor": vendor, "name": f"bench {vendor}"}, headers=ADMIN)
        resp.raise_for_status()
        hooks[vendor] = (resp.json()["connection_id"], resp.json()["secret"])
    return hooks


def wait_ready(base: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{base}/readyz", timeout=3).status_code == 200:
            return
        time.sleep(0.5)
    raise RuntimeError("worker did not become ready")


async def delivery_counts(db_url: str, since: datetime) -> dict[str, int]:
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM delivery WHERE received_at >= $1 GROUP BY status", since
        )
    finally:
        await conn.close()
    return {r["status"]: r["n"] for r in rows}


def report(variant: str, rate: float, seconds: float, result: dict[str, Any], counts: dict[str, int]) -> None:
    lat = [x * 1000 for x in result["latencies"]]
    non_2xx = sum(n for status, n in result["statuses"].items() if not 200 <= status < 300)
    print(f"\n== workers {variant}: {rate:.0f} req/s for {seconds:.0f} s (half Zendesk, half GitHub) ==")
    print(
        f"sent {result['sent']} (+{result['warmup']} warm-up, not measured), answered {len(lat)}"
        f" over {result['connections']} connections, statuses {dict(sorted(result['statuses'].items()))}"
    )
    print(f"ack latency ms: p50 {percentile(lat, 0.5):.1f}  p95 {percentile(lat, 0.95):.1f}"
          f"  p99 {percentile(lat, 0.99):.1f}  max {max(lat, default=float('nan')):.1f}")  # fmt: skip
    print(f"non-2xx: {non_2xx}   transport errors: {sum(result['errors'].values())} {result['errors'] or ''}")
    print(f"client dispatch lateness max: {result['max_dispatch_lateness_s'] * 1000:.1f} ms")
    print(f"deliveries stored (incl. warm-up): {sum(counts.values())}   by status at the end: {counts}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=2, help="seconds at the rate before measuring")
    parser.add_argument("--variants", default="running,stopped")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    hooks: dict[str, tuple[str, str]] | None = None
    with stores() as (db_url, redis_url):
        for variant in args.variants.split(","):
            workers = 1 if variant == "running" else 0
            with service(db_url, redis_url, workers=workers, extra_env={"SECRET_KEY": SECRET_KEY}) as svc:
                hooks = hooks or create_hooks(svc.base_url)
                if workers:
                    wait_ready(svc.base_url)
                port = int(svc.base_url.rsplit(":", 1)[1])
                since = datetime.now(UTC)
                result = run_load(port, hooks, args.rate, args.seconds, args.warmup)
                counts = asyncio.run(delivery_counts(db_url, since))
                report(variant, args.rate, args.seconds, result, counts)
                print(f"API RSS at the end: {svc.api_rss_mb():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
