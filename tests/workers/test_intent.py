"""The intent retrain job on a small synthetic set: it trains from the shipped rows plus people's
corrections, becomes current only when it beats the current model on held-back corrections,
re-labels what a model labelled, and a worker picks the new model up on its next batch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from clustering.embed import OnnxInt8Embedder
from clustering.intent import LABELS, IntentClassifier, shipped_paths
from clustering.intent_train import LabelledSet, ModelConfig, fit_classifier
from schemas.settings import Settings
from tests.deadlock import through_a_deadlock
from workers import intent as intent_job
from workers import jobs

DIM = 384
WORDS = {
    "feature_request": "wish add option",
    "bug": "crash error broken",
    "question": "how where why",
    "other": "thanks hello",
}
CONFIG = ModelConfig(c=1.0, vocab_size=50, min_df=1)


@dataclass
class FakeEmbedder:
    """Only the identity of the worker's embedder: the job reads stored vectors, never embeds."""

    model_version: str = OnnxInt8Embedder.model_version
    dim: int = DIM


def centres() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    rows = rng.standard_normal((len(LABELS), DIM))
    return {label: rows[n] / np.linalg.norm(rows[n]) for n, label in enumerate(LABELS)}


def sample(label: str, n: int, seed: int, centre: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    points = (centres()[label] if centre is None else centre) + 0.05 * rng.standard_normal((n, DIM))
    return points / np.linalg.norm(points, axis=1, keepdims=True), [f"{WORDS[label]} item {i}" for i in range(n)]


def labelled(per_class: dict[str, int], seed: int) -> LabelledSet:
    texts, labels, vectors = [], [], []
    for n, (label, count) in enumerate(per_class.items()):
        v, t = sample(label, count, seed + n)
        vectors.append(v)
        texts += t
        labels += [label] * count
    return LabelledSet(texts, labels, [1.0] * len(texts), np.vstack(vectors), ["synthetic"] * len(texts))


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """A tiny shipped model and its training rows, in the layout the job reads."""
    base = labelled({label: 30 for label in LABELS}, seed=1)
    model_path, base_path = shipped_paths("permissive", tmp_path)
    fit_classifier(base, CONFIG).save(model_path)
    base_path.write_bytes(base.to_bytes())
    return tmp_path


@pytest.fixture
def job_settings(migrated: Settings, shipped: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("DATABASE_URL", migrated.database_url)
    monkeypatch.setenv("REDIS_URL", migrated.redis_url)
    monkeypatch.setenv("INTENT_MODEL_DIR", str(shipped))
    monkeypatch.setenv("INTENT_MODEL_VARIANT", "permissive")
    monkeypatch.setattr(jobs, "_embedder", FakeEmbedder())
    monkeypatch.setattr(intent_job, "_current", None)
    from schemas.settings import get_settings

    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


async def add_item(db: asyncpg.Connection, n: int, vector: np.ndarray, text: str, intent: str, source: str) -> int:
    item_id: int = await db.fetchval(
        "INSERT INTO item (source, external_id, kind, body, created_at, payload_hash, clean_text, embedded_at,"
        " pending, intent, intent_confidence, intent_source)"
        " VALUES ('api', $1, 'ticket', $2, now(), 'h', $2, now(), false, $3, 0.4, $4) RETURNING item_id",
        str(n), text, intent, source,
    )  # fmt: skip
    await db.execute(
        "INSERT INTO embedding (item_id, model_version, content_hash, vector) VALUES ($1, $2, 'h', $3)",
        item_id, FakeEmbedder.model_version, vector.astype("<f4").tobytes(),
    )  # fmt: skip
    return item_id


async def queue_retrain(db: asyncpg.Connection) -> int:
    model_id: int = await db.fetchval("INSERT INTO intent_model DEFAULT VALUES RETURNING model_id")
    return model_id


async def test_retrain_with_no_corrections_uses_the_shipped_rows_and_becomes_current(
    job_settings: Settings, db: asyncpg.Connection
) -> None:
    model_id = await queue_retrain(db)

    assert await intent_job.retrain_intent(model_id) == "done"

    row = await db.fetchrow("SELECT * FROM intent_model WHERE model_id = $1", model_id)
    assert row["status"] == "done" and row["current"] and row["corrections_used"] == 0 and row["progress"] == 1
    assert 0.9 <= row["macro_f1"] <= 1.0  # well-separated synthetic classes
    clf = IntentClassifier.from_bytes(row["artefact"])
    assert clf.model_version == row["model_version"] and set(clf.classes) == set(LABELS)
    assert await intent_job.retrain_intent(model_id) == "skipped"  # a finished retrain is not redone


async def test_corrections_teach_a_new_phrasing_and_items_a_model_labelled_follow(
    job_settings: Settings, db: asyncpg.Connection
) -> None:
    # This team's feature requests sit where the shipped rows have nothing: only corrections teach it.
    novel = np.random.default_rng(3).standard_normal(DIM)
    novel /= np.linalg.norm(novel)
    vectors, _ = sample("feature_request", 30, seed=11, centre=novel)
    texts = [f"roadmap idea number {i}" for i in range(30)]
    corrected = [await add_item(db, n, vectors[n], texts[n], "feature_request", "person") for n in range(20)]
    model_labelled = [await add_item(db, n, vectors[n], texts[n], "other", "model") for n in range(20, 30)]
    bug_v, bug_t = sample("bug", 3, seed=12)
    from_source = [await add_item(db, 100 + n, bug_v[n], bug_t[n], "question", "source") for n in range(3)]
    model_id = await queue_retrain(db)

    assert await intent_job.retrain_intent(model_id) == "done"

    row = await db.fetchrow("SELECT * FROM intent_model WHERE model_id = $1", model_id)
    assert row["current"] and row["corrections_used"] == 20
    assert '"corrections": 20' in row["held_back"]  # all 20 compared out of fold
    relabelled = await db.fetch(
        "SELECT intent, intent_source FROM item WHERE item_id = ANY($1::bigint[])", model_labelled
    )
    assert all((r["intent"], r["intent_source"]) == ("feature_request", "model") for r in relabelled)
    untouched = await db.fetch("SELECT intent FROM item WHERE item_id = ANY($1::bigint[])", corrected + from_source)
    assert sorted(r["intent"] for r in untouched) == ["feature_request"] * 20 + ["question"] * 3

    # A worker's next batch uses the new model, read from Postgres, without a restart.
    clf = await intent_job.current_classifier(db, job_settings)
    assert clf.model_version == row["model_version"]
    assert clf.predict(vectors[25:26], texts[25:26])[0] == ["feature_request"]


async def test_a_candidate_worse_on_held_back_corrections_is_rejected_and_the_current_model_stays(
    job_settings: Settings, db: asyncpg.Connection
) -> None:
    # The current model learned that this team's "bug"-looking items are questions; the shipped
    # rows (and so a candidate trained mostly on them) say bug.
    vectors, texts = sample("bug", 20, seed=21)
    for n in range(20):
        await add_item(db, n, vectors[n], texts[n], "question", "person")
    team = LabelledSet(texts, ["question"] * 20, [1.0] * 20, vectors)
    current = fit_classifier(labelled({"feature_request": 20, "other": 20}, seed=5) + team, CONFIG)
    current_id = await db.fetchval(
        "INSERT INTO intent_model (status, current, artefact, model_version) VALUES ('done', true, $1, $2)"
        " RETURNING model_id",
        current.to_bytes(), current.model_version,
    )  # fmt: skip
    base_path = shipped_paths("permissive", job_settings.intent_model_dir)[1]
    base_path.write_bytes(labelled({label: 300 for label in LABELS}, seed=1).to_bytes())
    model_id = await queue_retrain(db)

    assert await intent_job.retrain_intent(model_id) == "rejected"

    rows = {r["model_id"]: r for r in await db.fetch("SELECT * FROM intent_model")}
    assert rows[current_id]["current"] and not rows[model_id]["current"]
    assert rows[model_id]["status"] == "rejected" and "scores worse" in rows[model_id]["error"]
    assert (await intent_job.current_classifier(db, job_settings)).model_version == current.model_version


async def test_a_relabelled_page_that_meets_a_deadlock_is_written_again(
    job_settings: Settings, db: asyncpg.Connection
) -> None:
    # A ticket updated meanwhile (a delivery batch, the embedder) locks the same rows in another
    # order; Postgres aborts one side. The retrain's model is already current by then.
    vectors, texts = sample("bug", 8, seed=21)
    ids = [await add_item(db, n, vectors[n], texts[n], "other", "model") for n in range(8)]
    clf = fit_classifier(labelled({label: 12 for label in LABELS}, seed=5), CONFIG)
    job = intent_job.reclassify_model_items(db, clf, FakeEmbedder.model_version, DIM)
    changed = await through_a_deadlock(job_settings.database_url, ids, job, statement="UPDATE item i SET intent")
    assert changed == len(ids)
    assert await db.fetchval("SELECT count(*) FROM item WHERE intent = 'bug'") == len(ids)


async def test_a_retrain_that_breaks_is_failed_with_its_reason(job_settings: Settings, db: asyncpg.Connection) -> None:
    shipped_paths("permissive", job_settings.intent_model_dir)[1].write_bytes(b"not an archive")
    model_id = await queue_retrain(db)

    assert await intent_job.retrain_intent(model_id) == "failed"

    row = await db.fetchrow("SELECT status, error, current FROM intent_model WHERE model_id = $1", model_id)
    assert row["status"] == "failed" and not row["current"] and row["error"]
    assert await db.fetchval("SELECT count(*) FROM intent_model WHERE current") == 0
