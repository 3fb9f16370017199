"""Shared bench plumbing: embedded stores, a uvicorn subprocess, realistic items, percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ADMIN_KEY = "tk_bench_admin_key_0123456789abcdef"


def banking77_texts() -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for split in ("train", "test"):
        with open(SHARED / "data" / "banking77" / f"{split}.csv", newline="") as f:
            rows += [(r["text"], r["category"]) for r in csv.DictReader(f)]
    return rows


def realistic_items(n: int, *, seed: int = 0, source: str = "zendesk") -> list[dict[str, Any]]:
    """Tickets with Banking77 texts, spread over 8 weeks, with solves and some reopens."""
    rng = random.Random(seed)
    texts = banking77_texts()
    start = datetime(2026, 9, 1, tzinfo=UTC)
    items = []
    for i in range(n):
        text, category = texts[i % len(texts)]
        created = start + timedelta(seconds=rng.randrange(0, 56 * 86400))
        solved = created + timedelta(seconds=rng.randrange(600, 5 * 86400))
        events = [{"at": solved.isoformat(), "from_status": "open", "to_status": "solved"}]
        if rng.random() < 0.1:
            reopened = solved + timedelta(hours=rng.randrange(1, 48))
            events.append({"at": reopened.isoformat(), "from_status": "solved", "to_status": "open"})
        items.append(
            {
                "source": source,
                "external_id": f"b-{seed}-{i}",
                "kind": "ticket",
                "title": category.replace("_", " "),
                "body": text,
                "created_at": created.isoformat(),
                "updated_at": events[-1]["at"],
                "status": events[-1]["to_status"],
                "status_events": events,
                "first_response_at": (created + timedelta(minutes=rng.randrange(1, 600))).isoformat(),
                "channel": rng.choice(["email", "web", "chat"]),
                "priority": rng.choice(["low", "normal", "high"]),
                "tags": [category],
                "requester_id": f"u-{rng.randrange(0, n // 3 + 1)}",
            }
        )
    return items


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class Service:
    base_url: str
    env: dict[str, str]
    api: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]

    def api_rss_mb(self) -> float:
        proc = psutil.Process(self.api.pid)
        return float(sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20)


def _free_port() -> int:
    from embedded.stores import free_port

    return free_port()


@contextlib.contextmanager
def stores() -> Iterator[tuple[str, str]]:
    """DATABASE_URL / REDIS_URL from the environment, else embedded servers in a temp dir."""
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        yield os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
        return
    from db.migrate import migrate
    from embedded.stores import Postgres, Valkey

    base = Path(tempfile.mkdtemp(prefix="bench-"))
    pg, vk = Postgres(base / "pg", _free_port()), Valkey(base / "vk", _free_port())
    pg.start()
    vk.start()
    try:
        pg.create_database("bench")
        asyncio.run(migrate(pg.url("bench")))
        yield pg.url("bench"), vk.url()
    finally:
        vk.stop()
        pg.stop()


@contextlib.contextmanager
def service(
    db_url: str, redis_url: str, *, workers: int = 0, extra_env: dict[str, str] | None = None
) -> Iterator[Service]:
    port = _free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url, REDIS_URL=redis_url, ADMIN_API_KEY=ADMIN_KEY, RATE_LIMIT_PER_MINUTE="0",
        MODEL_CACHE_DIR=str(ROOT / "var" / "models"), **(extra_env or {}),
    )  # fmt: skip
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log", "--log-level", "warning"],
        env=env, cwd=ROOT,
    )  # fmt: skip
    procs = [
        subprocess.Popen([sys.executable, "-m", "workers"], env=env, cwd=ROOT, start_new_session=True)
        for _ in range(workers)
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("API did not start")
            time.sleep(0.2)
        yield Service(base, env, api, procs)
    finally:
        for p in [api, *procs]:
            p.terminate()
        for p in [api, *procs]:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def machine() -> str:
    return f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, Python {sys.version.split()[0]}"
