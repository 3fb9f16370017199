"""`python -m api.cli import-file`: our NDJSON, vendor JSON exports and CSV, with broken rows reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import asyncpg

from imports.files import import_file
from schemas.settings import Settings
from tests.imports.vendor_server import FIXTURES

ROOT = Path(__file__).resolve().parents[2]


def _item(n: int) -> dict[str, object]:
    return {
        "source": "shop",
        "external_id": f"T-{n}",
        "kind": "ticket",
        "title": f"Order {n} late",
        "body": f"My order {n} has not arrived yet.",
        "created_at": "2026-02-01T10:00:00Z",
    }


async def test_ndjson_rows_go_in_and_broken_lines_are_reported_by_number(
    db: asyncpg.Connection, tmp_path: Path
) -> None:
    lines = [json.dumps(_item(1)), "{not json", json.dumps(_item(2)), json.dumps({**_item(3), "body": "  "}), ""]
    path = tmp_path / "items.ndjson"
    path.write_text("\n".join(lines) + "\n")
    report = await import_file(db, path)
    assert (report.rows, report.created) == (4, 2)
    assert any(e.startswith("line 2: not JSON") for e in report.errors)
    assert any(e.startswith("line 4: body") for e in report.errors)
    again = await import_file(db, path)
    assert again.created == 0 and await db.fetchval("SELECT count(DISTINCT external_id) = count(*) FROM item")


async def test_vendor_json_export_maps_through_the_vendor_connector(db: asyncpg.Connection, tmp_path: Path) -> None:
    ticket = json.loads((FIXTURES / "zendesk" / "api_ticket.json").read_text())
    broken = {"id": 99}  # no creation time, no text
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"tickets": [ticket, broken]}))
    report = await import_file(db, path, vendor="zendesk")
    assert report.created == 1 and report.rows == 2
    assert report.errors == ["entry 2: the object has no id, creation time or text"]
    row = await db.fetchrow("SELECT source, external_id, status FROM item")
    assert (row["source"], row["external_id"], row["status"]) == ("zendesk", str(ticket["id"]), "pending")


async def test_zendesk_csv_export_columns_and_our_own(db: asyncpg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text(
        "Id,Subject,Status,Priority,Tags,Via,Requester id,Created at,Updated at,Reopens\n"
        "101,Password reset loops,solved,high,login sso,email,55,2026-01-05T09:00:00Z,2026-01-06T09:00:00Z,1\n"
        "102,Broken row,open,low,,web,56,not a date,,\n"
    )
    report = await import_file(db, path, source="zendesk")
    assert report.created == 1
    assert report.errors and report.errors[0].startswith("line 3: created_at")
    row = await db.fetchrow("SELECT external_id, body, tags, reopens_reported, channel FROM item")
    assert row["external_id"] == "101" and row["body"] == "Password reset loops"
    assert row["tags"] == ["login", "sso"] and row["reopens_reported"] == 1 and row["channel"] == "email"


def test_cli_import_file_prints_a_summary_and_refused_rows(migrated: Settings, tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(_item(7)) + "\n" + "[]\n")
    env = {"DATABASE_URL": migrated.database_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "import-file", str(path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 rows, 1 new, 0 updated, 1 refused" in done.stdout
    assert "refused: line 2" in done.stderr


def test_cli_import_without_a_token_fails_clearly(migrated: Settings) -> None:
    env = {"DATABASE_URL": migrated.database_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "import", "freshdesk", "--url", "http://127.0.0.1:9",
         "--since", "2026-01-01"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "set FRESHDESK_API_KEY in the environment" in done.stderr
