"""The clustering job on synthetic vectors: themes written, ids kept across runs, lineage, stability."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import pytest

from clustering.embed import OnnxInt8Embedder
from clustering.themes import lifecycle
from db.queries.runs import unlock_scope, wait_for_scope
from schemas.settings import Settings
from tests.deadlock import through_a_deadlock
from workers.jobs import get_embedder
from workers.themes import cluster_items

MODEL = OnnxInt8Embedder.model_version
DIM = 384


def blobs(n_per: int, centres: np.ndarray, seed: int, spread: float = 0.08) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = np.concatenate([c + spread * rng.standard_normal((n_per, DIM)) for c in centres])
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def centres(k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((k, DIM))
    return c / np.linalg.norm(c, axis=1, keepdims=True)


async def add_items(db: asyncpg.Connection, vectors: np.ndarray, words: list[str], start: int) -> list[int]:
    created = datetime.now(UTC) - timedelta(days=3)
    ids = []
    for n, v in enumerate(vectors):
        word = words[n * len(words) // len(vectors)]
        item_id = await db.fetchval(
            "INSERT INTO item (source, external_id, kind, body, created_at, payload_hash, clean_text, embedded_at,"
            " pending) VALUES ('api', $1, 'ticket', $2, $3, 'h', $2, now(), false) RETURNING item_id",
            str(start + n), f"{word} problem with my {word} again", created,
        )  # fmt: skip
        await db.execute(
            "INSERT INTO embedding (item_id, model_version, content_hash, vector) VALUES ($1, $2, 'h', $3)",
            item_id, MODEL, v.astype("<f4").tobytes(),
        )  # fmt: skip
        ids.append(item_id)
    return ids


async def run(db: asyncpg.Connection) -> dict[str, object]:
    run_id = await db.fetchval("INSERT INTO clustering_run (scope) VALUES ('all') RETURNING run_id")
    assert await cluster_items(run_id) == "done"
    row = await db.fetchrow("SELECT * FROM clustering_run WHERE run_id = $1", run_id)
    assert row is not None
    return dict(row)


@pytest.fixture
def job_settings(migrated: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DATABASE_URL", migrated.database_url)
    monkeypatch.setenv("REDIS_URL", migrated.redis_url)
    from schemas.settings import get_settings

    get_settings.cache_clear()
    yield migrated
    get_settings.cache_clear()


@pytest.mark.slow
async def test_runs_find_themes_keep_ids_and_record_stability(job_settings: Settings, db: asyncpg.Connection) -> None:
    c = centres(4)
    ids = await add_items(db, blobs(40, c, seed=1), ["refund", "login", "card", "delivery"], start=0)
    first = await run(db)
    assert first["status"] == "done" and first["themes"] == 4 and first["items"] == 160
    assert first["kept_share"] is None  # nothing to compare the first run with
    themes = {r["theme_id"]: r for r in await db.fetch("SELECT * FROM theme WHERE is_current AND level = 'leaf'")}
    assert len(themes) == 4
    parents = {
        r["theme_id"] for r in await db.fetch("SELECT theme_id FROM theme WHERE is_current AND level = 'parent'")
    }
    assert parents and all(t["parent_id"] in parents for t in themes.values())  # every leaf has a parent
    labels = {r["label"] for r in themes.values()}
    assert any("refund" in label.lower() for label in labels) and any("login" in label.lower() for label in labels)
    before = dict(await db.fetch("SELECT item_id, theme_id FROM item ORDER BY item_id"))
    assert all(before[i] is not None for i in ids)
    assert all(len(t["representative_item_ids"]) == 5 and t["status"] == "emerging" for t in themes.values())

    # the same run again: identical assignment, ids kept, full stability
    second = await run(db)
    assert dict(await db.fetch("SELECT item_id, theme_id FROM item ORDER BY item_id")) == before
    assert second["kept_share"] == 1.0 and second["ari"] == 1.0 and second["themes"] == 4
    assert json.loads(str(second["timings"]))["reused"] == 1.0  # unchanged input: the result stands

    # new items of the same issues arrive: existing items keep their theme ids
    await add_items(db, blobs(20, c, seed=2), ["refund", "login", "card", "delivery"], start=1000)
    third = await run(db)
    after = dict(await db.fetch("SELECT item_id, theme_id FROM item ORDER BY item_id"))
    kept = sum(after[i] == before[i] for i in ids) / len(ids)
    assert kept >= 0.9 and third["kept_share"] >= 0.9
    assert {after[i] for i in ids} == set(themes)
    parents_after = {
        r["theme_id"] for r in await db.fetch("SELECT theme_id FROM theme WHERE is_current AND level = 'parent'")
    }
    assert parents_after == parents  # the parents keep their ids too
    timings = json.loads(str(third["timings"]))
    assert set(timings) >= {"load_s", "cluster_s", "keywords_s", "match_s", "write_s", "total_s"}


@pytest.mark.slow
async def test_two_issues_that_become_one_record_merged_into(job_settings: Settings, db: asyncpg.Connection) -> None:
    c = centres(3, seed=5)
    await add_items(db, blobs(40, c, seed=3, spread=0.05), ["alpha", "beta", "gamma"], start=0)
    await run(db)
    old = await db.fetch("SELECT theme_id FROM theme WHERE is_current AND level = 'leaf' ORDER BY theme_id")
    assert len(old) == 3
    # re-embed: the second issue's vectors move onto the first one's centre
    rows = await db.fetch("SELECT item_id, theme_id FROM item ORDER BY item_id")
    moved = blobs(40, c[:1], seed=9, spread=0.05)
    for (item_id, _), v in zip(rows[40:80], moved, strict=True):
        await db.execute(
            "UPDATE embedding SET vector = $2, content_hash = 'h2' WHERE item_id = $1",
            item_id,
            v.astype("<f4").tobytes(),
        )
    # Dates at the ends of the stored range (ingest and a CHECK keep every item inside 1970-2100,
    # migration 0010) do not fail a run.
    await db.execute("UPDATE item SET created_at = '1970-01-01T00:00:00Z' WHERE item_id = $1", rows[0]["item_id"])
    await db.execute("UPDATE item SET created_at = '2100-01-01T00:00:00Z' WHERE item_id = $1", rows[1]["item_id"])
    result = await run(db)
    assert result["themes"] == 2
    merged = await db.fetch("SELECT theme_id, merged_into FROM theme WHERE status = 'merged_into' AND level = 'leaf'")
    assert len(merged) == 1 and merged[0]["merged_into"] in {r["theme_id"] for r in old}


GREETED_REFUNDS = [
    "Hello there team, my refund has not arrived yet",
    "Hello there team, I am still waiting for my refund",
    "Hello there team, where is the refund you promised",
    "Hello there team, the refund never reached my account",
    "Hello there team, refund still missing after two weeks",
    "Hello there team, no refund received so far",
    "Hello there team, you said the refund was sent but nothing came",
    "Hello there team, I have not received my refund",
    "Hello there team, my money back has not shown up",
    "Hello there team, the refund for my order is late",
]
DECLINED = [
    "my card was declined at the shop", "card declined online", "why is my card declined",
    "the card keeps getting declined", "card declined at the supermarket", "declined card again today",
    "my card is declined everywhere", "card declined when paying", "card got declined", "payment card declined",
]  # fmt: skip


@pytest.mark.slow
async def test_a_run_names_a_theme_by_what_its_items_mean_not_by_the_greeting_they_share(
    job_settings: Settings, db: asyncpg.Connection
) -> None:
    # Every refund item opens with the same greeting: c-TF-IDF alone names that theme "Team".
    # The run asks the worker's model which distinctive phrase is closest to the theme.
    embedder = get_embedder(job_settings)
    texts = (GREETED_REFUNDS + DECLINED) * 3
    rng = np.random.default_rng(0)
    vectors = embedder.embed(texts) + 0.01 * rng.standard_normal((len(texts), DIM)).astype(np.float32)
    created = datetime.now(UTC) - timedelta(days=3)
    for n, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
        item_id = await db.fetchval(
            "INSERT INTO item (source, external_id, kind, body, created_at, payload_hash, clean_text, embedded_at,"
            " pending) VALUES ('api', $1, 'ticket', $2, $3, 'h', $2, now(), false) RETURNING item_id",
            str(n), text, created,
        )  # fmt: skip
        await db.execute(
            "INSERT INTO embedding (item_id, model_version, content_hash, vector) VALUES ($1, $2, 'h', $3)",
            item_id, embedder.model_version, (vector / np.linalg.norm(vector)).astype("<f4").tobytes(),
        )  # fmt: skip
    assert (await run(db))["themes"] == 2
    labels = {r["label"] for r in await db.fetch("SELECT label FROM theme WHERE is_current AND level = 'leaf'")}
    refund = next(label for label in labels if "declin" not in label.lower())
    assert "refund" in refund.lower() and "team" not in refund.lower(), labels


async def test_a_run_that_is_not_queued_is_skipped(job_settings: Settings, db: asyncpg.Connection) -> None:
    run_id = await db.fetchval("INSERT INTO clustering_run (scope, status) VALUES ('all', 'done') RETURNING run_id")
    assert await cluster_items(run_id) == "skipped"


async def test_a_run_waits_out_a_backfill_of_its_scope_and_another_job_of_it_is_then_skipped(
    job_settings: Settings, db: asyncpg.Connection
) -> None:
    # A run that read before a back-fill stored its seed would write over the items it joined.
    await add_items(db, blobs(4, centres(1), seed=1), ["card"], start=0)  # too few to cluster: a quick run
    run_id = await db.fetchval("INSERT INTO clustering_run (scope) VALUES ('all') RETURNING run_id")
    backfill = await asyncpg.connect(job_settings.database_url)
    try:
        await wait_for_scope(backfill, scope="all")  # what a back-fill of a person's theme holds
        job = asyncio.create_task(cluster_items(run_id))
        await asyncio.sleep(2.5)
        assert not job.done()
        assert await db.fetchval("SELECT status FROM clustering_run WHERE run_id = $1", run_id) == "queued"
        await unlock_scope(backfill, scope="all")
        assert await asyncio.wait_for(job, timeout=120) == "done"
    finally:
        await backfill.close()
    assert await cluster_items(run_id) == "skipped"  # enqueued again after it finished: nothing to redo


async def test_a_run_whose_write_meets_a_deadlock_writes_again_and_is_done(
    job_settings: Settings, db: asyncpg.Connection
) -> None:
    # A ticket updated while a run writes (a delivery batch, a bulk upsert, the embedder) locks
    # item rows in its own order; Postgres breaks the cycle by aborting one side. A run that
    # computed for minutes must not fail for that.
    old = await db.fetchval("INSERT INTO theme (label, status) VALUES ('old', 'active') RETURNING theme_id")
    ids = await add_items(db, blobs(4, centres(1), seed=1), ["card"], start=0)  # too few to cluster
    await db.execute("UPDATE item SET theme_id = $1", old)  # so the run's write moves every item
    run_id = await db.fetchval("INSERT INTO clustering_run (scope) VALUES ('all') RETURNING run_id")
    done = await through_a_deadlock(
        job_settings.database_url, ids, cluster_items(run_id), statement="UPDATE item i SET theme_id"
    )
    assert done == "done"
    assert await db.fetchval("SELECT count(*) FROM item WHERE theme_id = $1", old) == 0


def test_lifecycle_follows_the_written_definition() -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    assert lifecycle(now - timedelta(days=3), now, 5, 5, 0, now) == "emerging"
    assert lifecycle(now - timedelta(days=3), now, 4, 4, 0, now) == "active"
    assert lifecycle(now - timedelta(days=90), now - timedelta(days=29), 50, 0, 10, now) == "fading"
    assert lifecycle(now - timedelta(days=90), now, 50, 4, 10, now) == "fading"
    assert lifecycle(now - timedelta(days=90), now, 50, 10, 10, now) == "active"


async def test_a_split_theme_whose_largest_part_kept_its_id_stays_current(db: asyncpg.Connection) -> None:
    from db.queries.themes import select_theme, update_themes_retired

    run_id = await db.fetchval("INSERT INTO clustering_run (scope) VALUES ('all') RETURNING run_id")
    kept, part, gone = [
        await db.fetchval("INSERT INTO theme (label, size) VALUES ($1, 5) RETURNING theme_id", label)
        for label in ("kept", "part", "old")
    ]
    await update_themes_retired(db, run_id=run_id, merged={}, split={kept: [kept, part], gone: [part]}, gone=[])
    rows = {r["theme_id"]: r for r in await db.fetch("SELECT theme_id, is_current, status, split_into FROM theme")}
    assert (
        rows[kept]["is_current"] and rows[kept]["split_into"] == [kept, part] and rows[kept]["status"] != "split_into"
    )
    assert not rows[gone]["is_current"] and rows[gone]["status"] == "split_into"
    detail = await select_theme(db, theme_id=part)
    assert detail is not None and detail.split_from == [kept, gone]
