"""Article exports (Zendesk Guide, Intercom) through the CLI, and the workers embedding articles.

The exports follow the vendors' article-list responses (Zendesk Help Center `articles.json`,
Intercom `GET /articles`), with their documented fields; values are ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np

from schemas.settings import Settings
from tests.conftest import ROOT, wait_for

ZENDESK_GUIDE = {
    "articles": [
        {"id": 35467, "title": "Resetting your password", "body": "<p>Open <b>Settings</b>, then <i>Security</i>.</p>",
         "html_url": "https://example.zendesk.com/hc/en-us/articles/35467", "locale": "en-us", "draft": False,
         "updated_at": "2026-10-01T09:00:00Z"},
        {"id": 35468, "title": "Upcoming: passkeys", "body": "<p>Soon.</p>", "draft": True,
         "updated_at": "2026-10-02T09:00:00Z"},
        {"id": 35469, "title": "Images only", "body": "<p><img src='a.png'></p>", "draft": False,
         "updated_at": "2026-10-02T09:00:00Z"},
    ],
    "next_page": None,
}  # fmt: skip
INTERCOM = {
    "type": "list",
    "data": [
        {"type": "article", "id": "39", "title": "Refund timelines", "description": "How long refunds take",
         "body": "<p>Refunds reach your card in 5 days.</p>", "state": "published", "updated_at": 1672928610,
         "url": "http://intercom.test/help/en/articles/39-refund-timelines"},
        {"type": "article", "id": "40", "title": "Draft", "description": "", "body": "<p>x</p>", "state": "draft",
         "updated_at": 1672928610},
    ],
    "total_count": 2,
}  # fmt: skip


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "SECRET_KEY": "x" * 40, "ENVIRONMENT": "test"}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


async def test_zendesk_guide_and_intercom_exports_import(
    db: asyncpg.Connection, migrated: Settings, tmp_path: Path
) -> None:
    for name, export, vendor in (("guide.json", ZENDESK_GUIDE, "zendesk-guide"), ("ic.json", INTERCOM, "intercom")):
        (tmp_path / name).write_text(json.dumps(export))
        out = run_cli(migrated, "import-articles", str(tmp_path / name), "--vendor", vendor)
        assert out.returncode == 0, out.stderr
    rows = await db.fetch("SELECT source, external_id, title, body, url FROM article ORDER BY article_id")
    assert [(r["source"], r["external_id"], r["title"]) for r in rows] == [
        ("zendesk_guide", "35467", "Resetting your password"),
        ("intercom_articles", "39", "Refund timelines"),
    ]
    assert rows[0]["body"] == "Open Settings, then Security." and rows[0]["url"].endswith("/articles/35467")
    assert rows[1]["body"].startswith("How long refunds take\n")
    # The draft is skipped; the article with no text once its HTML is stripped is reported and left out.
    out = run_cli(migrated, "import-articles", str(tmp_path / "guide.json"), "--vendor", "zendesk-guide")
    assert "0 created, 1 updated, 1 drafts skipped, 1 left out" in out.stdout
    assert "35469" in out.stderr and "needs a body" in out.stderr
    bad = run_cli(migrated, "import-articles", str(tmp_path / "ic.json"), "--vendor", "zendesk-guide")
    assert bad.returncode == 2 and "'articles' list" in bad.stderr


async def test_the_workers_embed_articles(
    app_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection, worker: Any
) -> None:
    articles = [
        {"source": "guide", "external_id": "1", "title": "Resetting your password", "body": "Open Settings."},
        {"source": "guide", "external_id": "2", "title": "Refund timelines", "body": "Refunds take 5 days."},
    ]
    assert (await app_client.post("/v1/articles/bulk", json=articles, headers=admin)).status_code == 202

    async def embedded() -> list[asyncpg.Record] | None:
        rows = await db.fetch("SELECT vector, model_version FROM article WHERE vector IS NOT NULL ORDER BY article_id")
        return rows if len(rows) == 2 else None

    rows = await wait_for(embedded, timeout=180)
    vectors = [np.frombuffer(r["vector"], dtype="<f4") for r in rows]
    assert all(abs(float(np.linalg.norm(v)) - 1) < 1e-3 for v in vectors)
    assert float(vectors[0] @ vectors[1]) < 0.9  # two different texts, two different vectors
    listed = (await app_client.get("/v1/articles", headers=admin)).json()["data"]
    assert all(a["embedded_at"] is not None for a in listed)
