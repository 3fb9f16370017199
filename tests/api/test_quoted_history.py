"""Quoted reply history and signatures never reach the embedded text, for every vendor that sends
HTML: a signed delivery goes through the API, the delivery job and the item job, and the item's
clean_text (what was embedded) holds the customer's words only. Bodies: tests/connectors/quoted_cases.py.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from clustering.text import prepare_text
from tests.api.test_webhooks import hook_settings, hooks, new_connection, post, process_pending, signed  # noqa: F401
from tests.conftest import ROOT, auth, stop, wait_for
from tests.connectors.connector_cases import secrets_for
from tests.connectors.quoted_cases import CASES, CUSTOMER, HEADERS, QUOTED, QuotedCase, leaks


async def deliver(client: httpx.AsyncClient, case: QuotedCase) -> None:
    secret, _ = secrets_for(case.vendor)
    connection = await new_connection(client, case.vendor, secret)
    body = case.body
    resp = await post(
        client, connection["connection_id"], body, signed(case.vendor, body, secret, HEADERS.get(case.vendor))
    )
    assert resp.status_code == 202, resp.text


async def item_of(client: httpx.AsyncClient, vendor: str) -> dict[str, Any]:
    resp = await client.get("/v1/items", params={"source": vendor}, headers=auth())
    [item] = resp.json()["data"]
    return dict(item)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.vendor}-{c.client}" for c in CASES])
async def test_stored_body_keeps_the_customer_lines_and_drops_the_quoted_history(
    hooks: httpx.AsyncClient,  # noqa: F811
    db: asyncpg.Connection,
    case: QuotedCase,
) -> None:
    await deliver(hooks, case)
    assert await process_pending(db) == {"processed": 1}
    item = await item_of(hooks, case.vendor)
    body = item["body"]
    assert [line for line in QUOTED if line in body] == []
    assert [line for line in CUSTOMER if line not in body] == []
    # Line breaks survive, so the text rules can find signatures and reply headers.
    assert body.split("\n")[:2] == list(CUSTOMER)
    assert leaks(prepare_text(item["title"], body)) == []


@pytest.fixture
def embedding_worker(worker_env: dict[str, str], db: asyncpg.Connection) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker on the packaged sentence-transformers model (no ONNX build to cache)."""
    env = {**worker_env, "EMBEDDER": "sentence-transformers"}
    proc = subprocess.Popen([sys.executable, "-m", "workers", "--queues", "deliveries,items"], env=env, cwd=ROOT)
    try:
        yield proc
    finally:
        stop(proc)


@pytest.mark.model
@pytest.mark.slow
async def test_quoted_history_never_reaches_the_embedded_text_of_any_vendor(
    hooks: httpx.AsyncClient,  # noqa: F811
    db: asyncpg.Connection,
    embedding_worker: subprocess.Popen[bytes],
) -> None:
    """One worker for the five vendors (a worker start loads the model); checked per vendor."""
    for case in CASES:
        await deliver(hooks, case)

    async def all_embedded() -> list[asyncpg.Record] | None:
        rows = await db.fetch("SELECT source, clean_text FROM item WHERE embedded_at IS NOT NULL ORDER BY source")
        return rows if len(rows) == len(CASES) else None

    rows = await wait_for(all_embedded, timeout=300)
    found = {row["source"]: leaks(row["clean_text"]) for row in rows}
    assert found == {case.vendor: [] for case in CASES}
