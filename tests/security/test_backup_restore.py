"""#17: backup and restore with pg_dump / pg_restore (docs/backup.md), into a fresh instance.

The data goes in through the API (the dashboard seed: themes, status histories, feature requests),
the database is dumped in pg_dump's custom format, restored into a Postgres that never saw it, and
every report and the item list read through the API from the restored copy must equal the
original's. The dump itself must hold no card number (they are masked before storage).
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from embedded.stores import PG_USER, Postgres, _pg_bin, free_port
from schemas.settings import Settings
from tests.browser.seed import anchor_week, apply_themes, build_items
from tests.conftest import auth, running_app

CARD = "4111 1111 1111 1111"


def _report_requests(week: Any) -> list[tuple[str, dict[str, str]]]:
    window = {"from": (week - timedelta(weeks=8)).isoformat(), "to": (week + timedelta(weeks=1)).isoformat()}
    return [
        ("/v1/reports/theme-trends", {**window, "tz": "Europe/Berlin"}),
        ("/v1/reports/reopen-rate", {**window, "group_by": "theme"}),
        ("/v1/reports/resolution-times", {**window, "metric": "first_resolution", "group_by": "source"}),
        ("/v1/reports/feature-requests", {**window, "group_by": "theme"}),
        ("/v1/items", {"limit": "1000"}),
        ("/v1/themes", {}),
    ]


async def _read_all(client: httpx.AsyncClient, week: Any) -> list[Any]:
    answers = []
    for path, params in _report_requests(week):
        resp = await client.get(path, params=params, headers=auth())
        assert resp.status_code == 200, (path, resp.text)
        body = resp.json()
        if isinstance(body, dict):
            body.pop("generated_at", None)
        answers.append(body)
    return answers


def _pg(tool: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(_pg_bin() / tool), *args], check=True, capture_output=True, timeout=300)


@pytest.mark.slow
async def test_a_dump_restored_into_a_fresh_instance_gives_identical_reports(
    migrated: Settings, app_client: httpx.AsyncClient, db: asyncpg.Connection, tmp_path: Path
) -> None:
    week = anchor_week(datetime.now(UTC))
    items = build_items(week)
    items[0]["body"] += f" Paid with {CARD}."
    resp = await app_client.post("/v1/items/bulk", json=items, headers=auth())
    assert resp.status_code == 202 and resp.json()["accepted"] == len(items), resp.text
    await apply_themes(db)
    before = await _read_all(app_client, week)
    assert before[4]["data"] and before[1]["rows"]  # something to compare

    dump = tmp_path / "tickets.dump"
    _pg("pg_dump", "--format=custom", "--no-owner", f"--file={dump}", "--dbname", migrated.database_url)
    assert CARD.replace(" ", "") not in _pg("pg_restore", "--file=-", str(dump)).stdout.decode().replace(" ", "")

    fresh = Postgres(tmp_path / "restored", free_port())
    fresh.start()
    try:
        fresh.create_database("tickets")
        _pg("pg_restore", "--no-owner", "--exit-on-error", "--single-transaction", "-h", "127.0.0.1",
            "-p", str(fresh.port), "-U", PG_USER, "-d", "tickets", str(dump))  # fmt: skip
        restored = migrated.model_copy(update={"database_url": fresh.url("tickets")})
        async with running_app(restored) as (client, _):
            after = await _read_all(client, week)
            # The restored copy keeps working: a new item gets the next id, not a clash.
            new = dict(items[0], external_id="after-restore")
            created = await client.post("/v1/items", json=new, headers=auth())
            assert created.status_code == 202, created.text
            assert created.json()["item_id"] > max(i["item_id"] for i in before[4]["data"])
    finally:
        fresh.stop()
    assert after == before
