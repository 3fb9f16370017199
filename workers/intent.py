"""The intent retrain job and the current intent model of a worker process.

Postgres is the record: a retrain's status, progress, figures and artefact live in intent_model,
and the current model is the row marked `current` (none: the shipped default). Every batch a
worker classifies first asks Postgres which model is current, so a new one is picked up without a
restart, on any host.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from pathlib import Path

import asyncpg

from clustering.intent import IntentClassifier, shipped_paths
from db.deadlocks import again_after_deadlock
from db.pool import connect
from db.queries.intent import (
    select_corrections,
    select_current_intent_model_id,
    select_intent_artefact,
    select_intent_model,
    select_model_labelled_items,
    update_intent_model_failed,
    update_intent_model_finished,
    update_intent_model_progress,
    update_intent_model_started,
    update_model_intents,
)
from schemas.settings import Settings, get_settings

log = logging.getLogger(__name__)

_LOCK_NAMESPACE = 7_301_003
RECLASSIFY_BATCH = 2_000

_shipped: dict[Path, IntentClassifier] = {}
_current: tuple[int | None, IntentClassifier] | None = None


def shipped_classifier(settings: Settings) -> IntentClassifier:
    """The shipped model of the configured variant, loaded once per process."""
    path = shipped_paths(settings.intent_model_variant, settings.intent_model_dir)[0]
    if path not in _shipped:
        _shipped[path] = IntentClassifier.load(path)
    return _shipped[path]


async def current_classifier(conn: asyncpg.Connection, settings: Settings) -> IntentClassifier:
    """The current intent model: one indexed read per call, the artefact only when it changed."""
    global _current
    model_id = await select_current_intent_model_id(conn)
    if model_id is None:
        return shipped_classifier(settings)
    if _current is not None and _current[0] == model_id:
        return _current[1]
    blob = await select_intent_artefact(conn, model_id=model_id)
    if blob is None:  # replaced between the two reads; the next batch loads the new one
        return _current[1] if _current is not None else shipped_classifier(settings)
    clf = IntentClassifier.from_bytes(blob)
    log.info("intent model %s (%s) is current", model_id, clf.model_version)
    _current = (model_id, clf)
    return clf


async def retrain_intent(model_id: int) -> str:
    """Run intent retrain `model_id`; returns its final status ("done", "rejected", "failed" or
    "skipped" when it is not queued or another retrain holds the lock)."""
    settings = get_settings()
    conn = await connect(settings)
    try:
        model = await select_intent_model(conn, model_id=model_id)
        if model is None or model.status not in ("queued", "running"):
            return "skipped"
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1, 0)", _LOCK_NAMESPACE):
            log.info("intent retrain %s skipped: another one holds the lock", model_id)
            return "skipped"
        try:
            await update_intent_model_started(conn, model_id=model_id)
            return await _retrain(conn, model_id)
        except Exception as exc:
            log.exception("intent retrain %s failed", model_id)
            await update_intent_model_failed(conn, model_id=model_id, error=f"{type(exc).__name__}: {exc}")
            return "failed"
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1, 0)", _LOCK_NAMESPACE)
    finally:
        await conn.close()


async def _retrain(conn: asyncpg.Connection, model_id: int) -> str:
    from clustering.intent_train import LabelledSet, retrain
    from workers.jobs import get_embedder

    settings = get_settings()
    embedder = get_embedder(settings)
    started = time.perf_counter()
    await update_intent_model_progress(conn, model_id=model_id, progress=0.02, stage="loading corrections")
    base = LabelledSet.from_bytes(
        shipped_paths(settings.intent_model_variant, settings.intent_model_dir)[1].read_bytes()
    )
    rows = await select_corrections(conn, embedder_version=embedder.model_version, dim=embedder.dim)
    corrections = LabelledSet(rows.texts, rows.labels, [1.0] * len(rows.texts), rows.vectors.astype(float))
    current = await current_classifier(conn, settings)
    # Corrections made before the current model's retrain started trained it: not a fair test.
    current_id = await select_current_intent_model_id(conn)
    current_row = await select_intent_model(conn, model_id=current_id) if current_id is not None else None
    since = current_row.started_at if current_row is not None else None
    unseen = [since is None or at is None or at >= since for at in rows.corrected_at]
    stages: list[tuple[float, str]] = []
    # The fits are CPU-bound and synchronous: they run in a thread while this loop writes their
    # progress to the row.
    future = asyncio.get_running_loop().run_in_executor(
        None,
        lambda: retrain(
            base,
            corrections,
            current,
            unseen_by_current=unseen,
            progress=lambda share, stage: stages.append((share, stage)),
        ),  # fmt: skip
    )
    written = 0
    while not future.done():
        await asyncio.wait({future}, timeout=0.5)
        if len(stages) > written:
            written = len(stages)
            share, stage = stages[-1]
            await update_intent_model_progress(conn, model_id=model_id, progress=share, stage=stage)
    outcome = future.result()
    status = "done" if outcome.accepted else "rejected"
    held_back = {**outcome.held_back, "reason": outcome.reason, "seconds": round(time.perf_counter() - started, 1)}
    async with conn.transaction():
        await update_intent_model_finished(
            conn,
            model_id=model_id,
            status=status,
            corrections_used=outcome.corrections_used,
            macro_f1=outcome.cv.macro_f1,
            per_class_f1=outcome.cv.per_class_f1,
            held_back=held_back,
            model_version=outcome.model.model_version,
            artefact=outcome.model.to_bytes(),
            error=None if outcome.accepted else outcome.reason,
        )
    log.info("intent retrain %s %s: %s", model_id, status, outcome.reason)
    if outcome.accepted:
        changed = await reclassify_model_items(conn, outcome.model, embedder.model_version, embedder.dim)
        log.info("intent retrain %s re-labelled %d items", model_id, changed)
    return status


async def reclassify_model_items(
    conn: asyncpg.Connection, clf: IntentClassifier, embedder_version: str, dim: int
) -> int:
    """Re-classify every item a model labelled, a page at a time (one transaction each, so
    reports follow as it goes); items a person or a source labelled are left alone."""
    changed, after = 0, 0
    while True:
        page = await select_model_labelled_items(
            conn, embedder_version=embedder_version, dim=dim, after_id=after, limit=RECLASSIFY_BATCH
        )
        if not page.item_ids:
            return changed
        labels, confidence = clf.predict(page.vectors, page.texts)
        relabel = functools.partial(_relabel, conn, page.item_ids, labels, [float(c) for c in confidence])
        changed += await again_after_deadlock(relabel, what="a page of re-labelled intents")
        after = page.item_ids[-1]


async def _relabel(conn: asyncpg.Connection, item_ids: list[int], intents: list[str], confidences: list[float]) -> int:
    async with conn.transaction():
        return await update_model_intents(conn, item_ids=item_ids, intents=intents, confidences=confidences)
