"""Intent statements: people's corrections, the intent_model table (the record of retrains and
the home of the current artefact), and the re-classification of items a model labelled."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
from numpy.typing import NDArray

from schemas.intent import IntentModel

_COLUMNS = """model_id, status, trigger, created_at, started_at, finished_at, progress, stage,
    corrections_used, macro_f1, per_class_f1, held_back, current, error, model_version"""


def _to_model(row: asyncpg.Record) -> IntentModel:
    data = dict(row)
    for key in ("per_class_f1", "held_back"):
        if isinstance(data[key], str):
            data[key] = json.loads(data[key])
    return IntentModel(**data)


@dataclass(frozen=True)
class IntentBefore:
    """An item's intent before a person's correction: the undo of curation_change."""

    item_id: int
    intent: str | None
    intent_confidence: float | None
    intent_source: str | None


async def update_item_intent_by_person(
    conn: asyncpg.Connection, *, item_id: int, intent: str, api_key_id: int | None
) -> IntentBefore | None:
    """Set a person's intent and audit it in curation_change; None when the item does not exist.
    Call inside a transaction: the row lock, the update and the audit row are one change."""
    row = await conn.fetchrow(
        "SELECT item_id, intent, intent_confidence, intent_source FROM item"
        " WHERE item_id = $1 AND deleted_at IS NULL FOR UPDATE",
        item_id,
    )
    if row is None:
        return None
    before = IntentBefore(**dict(row))
    # A feature-request theme only means something for a feature request; a new one waits for the
    # next feature clustering run.
    await conn.execute(
        "UPDATE item SET intent = $2, intent_confidence = 1.0, intent_source = 'person',"
        " feature_theme_id = CASE WHEN $2 = 'feature_request' THEN feature_theme_id END WHERE item_id = $1",
        item_id,
        intent,
    )
    await conn.execute(
        "INSERT INTO curation_change (action, api_key_id, item_ids, detail, undo)"
        " VALUES ('intent', $1, ARRAY[$2::bigint], $3::jsonb, $4::jsonb)",
        api_key_id,
        item_id,
        json.dumps({"intent": intent, "from": before.intent}),
        json.dumps(
            {
                "item_id": item_id,
                "intent": before.intent,
                "intent_confidence": before.intent_confidence,
                "intent_source": before.intent_source,
            }
        ),
    )
    return before


async def insert_intent_model(conn: asyncpg.Connection, *, trigger: str, stale_after_s: int) -> int | None:
    """A queued retrain, or None when one is already queued or running. One queued or running for
    longer than `stale_after_s` (its worker died, or Redis lost the job) is failed first, so it
    cannot block retrains for ever."""
    await conn.execute(
        "UPDATE intent_model SET status = 'failed', finished_at = now(), stage = 'failed',"
        " error = 'not finished within ' || $1 || ' s (worker lost?)'"
        " WHERE status IN ('queued', 'running') AND created_at < now() - make_interval(secs => $1)",
        stale_after_s,
    )
    model_id: int | None = await conn.fetchval(
        "INSERT INTO intent_model (trigger) VALUES ($1) ON CONFLICT DO NOTHING RETURNING model_id", trigger
    )
    return model_id


async def select_intent_model(conn: asyncpg.Connection, *, model_id: int) -> IntentModel | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM intent_model WHERE model_id = $1", model_id)
    return _to_model(row) if row else None


async def select_intent_models(conn: asyncpg.Connection, *, before_id: int | None, limit: int) -> list[IntentModel]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM intent_model WHERE $1::bigint IS NULL OR model_id < $1"
        " ORDER BY model_id DESC LIMIT $2",
        before_id,
        limit,
    )
    return [_to_model(r) for r in rows]


async def select_current_intent_model_id(conn: asyncpg.Connection) -> int | None:
    """The current model's id (None: the shipped default); workers check it on every batch."""
    model_id: int | None = await conn.fetchval("SELECT model_id FROM intent_model WHERE current")
    return model_id


async def select_intent_artefact(conn: asyncpg.Connection, *, model_id: int) -> bytes | None:
    blob: bytes | None = await conn.fetchval("SELECT artefact FROM intent_model WHERE model_id = $1", model_id)
    return blob


async def count_corrections_since_last_model(conn: asyncpg.Connection) -> int:
    """People's intent corrections made after the newest retrain was requested."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM curation_change WHERE action = 'intent' AND undone_at IS NULL"
        " AND at > coalesce((SELECT max(created_at) FROM intent_model), '-infinity')"
    )
    return count


async def update_intent_model_started(conn: asyncpg.Connection, *, model_id: int) -> bool:
    status: str = await conn.execute(
        "UPDATE intent_model SET status = 'running', started_at = now(), error = NULL, progress = 0"
        " WHERE model_id = $1 AND status IN ('queued', 'running')",
        model_id,
    )
    return status.endswith(" 1")


async def update_intent_model_progress(conn: asyncpg.Connection, *, model_id: int, progress: float, stage: str) -> None:
    await conn.execute(
        "UPDATE intent_model SET progress = $2, stage = $3 WHERE model_id = $1 AND status = 'running'",
        model_id,
        progress,
        stage,
    )


async def update_intent_model_finished(
    conn: asyncpg.Connection,
    *,
    model_id: int,
    status: str,
    corrections_used: int,
    macro_f1: float,
    per_class_f1: dict[str, float],
    held_back: dict[str, Any],
    model_version: str,
    artefact: bytes,
    error: str | None,
) -> None:
    """Record a finished retrain; a `done` one becomes the only current model. Call inside a
    transaction so no reader sees zero or two current models."""
    if status == "done":
        await conn.execute("UPDATE intent_model SET current = false WHERE current")
    await conn.execute(
        "UPDATE intent_model SET status = $2, finished_at = now(), progress = 1, stage = $2,"
        " corrections_used = $3, macro_f1 = $4, per_class_f1 = $5::jsonb, held_back = $6::jsonb,"
        " model_version = $7, artefact = $8, error = $9, current = ($2 = 'done') WHERE model_id = $1",
        model_id, status, corrections_used, macro_f1, json.dumps(per_class_f1), json.dumps(held_back),
        model_version, artefact, error,
    )  # fmt: skip


async def update_intent_model_failed(conn: asyncpg.Connection, *, model_id: int, error: str) -> None:
    await conn.execute(
        "UPDATE intent_model SET status = 'failed', finished_at = now(), stage = 'failed', error = $2"
        " WHERE model_id = $1",
        model_id,
        error,
    )


@dataclass(frozen=True)
class LabelledRows:
    """Items with their prepared text and stored vector (float32, one row per item), and for
    corrections when a person last set the intent (None when no audit row says)."""

    item_ids: list[int]
    texts: list[str]
    labels: list[str]
    vectors: NDArray[np.float32]
    corrected_at: list[datetime | None]


def _labelled(rows: Sequence[asyncpg.Record], dim: int, label: str) -> LabelledRows:
    vectors = np.zeros((len(rows), dim), dtype=np.float32)
    for n, r in enumerate(rows):
        vectors[n] = np.frombuffer(r["vector"], dtype="<f4")
    return LabelledRows(
        item_ids=[r["item_id"] for r in rows],
        texts=[r["clean_text"] or "" for r in rows],
        labels=[r[label] or "" for r in rows],
        vectors=vectors,
        corrected_at=[r.get("corrected_at") for r in rows],
    )


async def select_corrections(conn: asyncpg.Connection, *, embedder_version: str, dim: int) -> LabelledRows:
    """Every item whose intent a person set and whose vector is stored, in item order."""
    rows = await conn.fetch(
        "SELECT i.item_id, i.clean_text, i.intent, e.vector,"
        " (SELECT max(c.at) FROM curation_change c WHERE c.action = 'intent' AND c.undone_at IS NULL"
        "  AND c.item_ids @> ARRAY[i.item_id]) AS corrected_at"
        " FROM item i JOIN embedding e ON e.item_id = i.item_id AND e.model_version = $1"
        " WHERE i.intent_source = 'person' AND i.intent IS NOT NULL AND i.deleted_at IS NULL ORDER BY i.item_id",
        embedder_version,
    )
    return _labelled(rows, dim, "intent")


async def select_model_labelled_items(
    conn: asyncpg.Connection, *, embedder_version: str, dim: int, after_id: int, limit: int
) -> LabelledRows:
    """A page of items a model labelled (intent_source 'model'), with their current intent."""
    rows = await conn.fetch(
        "SELECT i.item_id, i.clean_text, i.intent, e.vector FROM item i"
        " JOIN embedding e ON e.item_id = i.item_id AND e.model_version = $1"
        " WHERE i.intent_source = 'model' AND i.item_id > $2 AND i.deleted_at IS NULL ORDER BY i.item_id LIMIT $3",
        embedder_version,
        after_id,
        limit,
    )
    return _labelled(rows, dim, "intent")


async def update_model_intents(
    conn: asyncpg.Connection, *, item_ids: Sequence[int], intents: Sequence[str], confidences: Sequence[float]
) -> int:
    """Re-label items a model labelled; a person's or a source's intent meanwhile is left alone."""
    status: str = await conn.execute(
        "UPDATE item i SET intent = r.intent, intent_confidence = r.conf,"
        " feature_theme_id = CASE WHEN r.intent = 'feature_request' THEN i.feature_theme_id END"
        " FROM unnest($1::bigint[], $2::text[], $3::real[]) AS r(id, intent, conf)"
        " WHERE i.item_id = r.id AND i.intent_source = 'model'"
        " AND (i.intent IS DISTINCT FROM r.intent OR i.intent_confidence IS DISTINCT FROM r.conf)",
        list(item_ids), list(intents), list(confidences),
    )  # fmt: skip
    return int(status.split()[-1])
