"""The clustering run: embedded items in, themes and assignments out, in one transaction.

One run per scope at a time: the job holds a session advisory lock on its own connection (never a
pooled one, whose reset would drop it) for the whole run. Theme ids are carried over from the
previous run by shared members and centroid similarity, so a trend line keeps meaning something.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np

from db.pool import connect
from db.queries.runs import (
    select_last_digest,
    select_run,
    update_run_digest,
    update_run_done,
    update_run_failed,
    update_run_started,
)
from db.queries.themes import (
    ClusteringInput,
    ThemeWrite,
    select_clustering_input,
    select_theme_centroids,
    update_item_themes,
    update_themes_retired,
    upsert_theme,
)
from schemas.settings import Settings, get_settings

log = logging.getLogger(__name__)

_LOCK_NAMESPACE = 7_301_002
_SCOPE_KEYS = {"all": 1, "feature": 2}
# match_themes mints ids for new themes; we mint far above any real id and swap in the ids
# Postgres gives the inserted rows.
_PLACEHOLDER_BASE = 2**62
SEED = 42


def lifecycle(first_seen: datetime, last_seen: datetime, size: int, recent: int, before: int, now: datetime) -> str:
    """emerging: first item under 14 days old and at least 5 items (metrics.md); fading: nothing in
    the last 28 days, or under half the volume of the 28 days before; otherwise active."""
    if first_seen > now - timedelta(days=14) and size >= 5:
        return "emerging"
    if last_seen < now - timedelta(days=28) or (before >= 5 and recent < before / 2):
        return "fading"
    return "active"


async def cluster_items(run_id: int) -> str:
    """Run clustering run `run_id`; returns its final status ("done", "failed" or "skipped")."""
    settings = get_settings()
    conn = await connect(settings)
    try:
        run = await select_run(conn, run_id=run_id)
        if run is None or run.status not in ("queued", "running"):
            return "skipped"
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", _LOCK_NAMESPACE, _SCOPE_KEYS[run.scope]):
            log.info("run %s skipped: another run of scope %s holds the lock", run_id, run.scope)
            return "skipped"
        try:
            await update_run_started(conn, run_id=run_id)
            await _run(conn, settings, run_id, run.scope)
            return "done"
        except Exception as exc:
            log.exception("clustering run %s failed", run_id)
            await update_run_failed(conn, run_id=run_id, error=f"{type(exc).__name__}: {exc}")
            return "failed"
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1, $2)", _LOCK_NAMESPACE, _SCOPE_KEYS[run.scope])
    finally:
        await conn.close()


async def _run(conn: asyncpg.Connection, settings: Settings, run_id: int, scope: str) -> None:
    from clustering.cluster import ClusterParams, centroids, cluster_vectors, representatives
    from clustering.embed import OnnxInt8Embedder, SentenceTransformerEmbedder
    from clustering.keywords import label_themes
    from clustering.matching import PreviousTheme, keep_merged_apart, match_themes, stability, stick_to_previous

    timings: dict[str, float] = {}
    started = time.perf_counter()
    embedder_class = OnnxInt8Embedder if settings.embedder == "onnx-int8" else SentenceTransformerEmbedder
    model_version = embedder_class.model_version  # the stored vectors' key; no need to load the model
    data = await select_clustering_input(
        conn, scope=scope, model_version=model_version, window_days=settings.cluster_window_days
    )
    timings["load_s"] = round(time.perf_counter() - started, 3)
    n = len(data.item_ids)
    params = ClusterParams(sample_threshold=settings.cluster_sample_threshold)
    digest = input_digest(data, f"{scope}|{model_version}|{params}")
    if n and digest == await select_last_digest(conn, scope=scope):
        # Nothing changed since the last run: its result stands, to the item (a re-run must not
        # move items for nothing).
        timings["total_s"] = round(time.perf_counter() - started, 3)
        timings["reused"] = 1.0
        async with conn.transaction():
            await update_run_digest(conn, run_id=run_id, digest=digest)
            await update_run_done(
                conn, run_id=run_id, items=n, themes=len({t for t in data.theme_ids if t is not None}),
                unassigned=sum(t is None for t in data.theme_ids), kept_share=1.0, ari=1.0, timings=timings,
            )  # fmt: skip
        return

    step = time.perf_counter()
    labels = cluster_vectors(data.vectors, seed=SEED, params=params) if n else np.zeros(0, dtype=np.int64)
    timings["cluster_s"] = round(time.perf_counter() - step, 3)

    step = time.perf_counter()
    empty = (np.zeros(0, np.int64), np.zeros((0, 0), np.float32))
    label_ids, centres = centroids(data.vectors, labels) if n else empty
    previous = await _previous_themes(conn, scope, data)
    match = match_themes(
        [PreviousTheme(theme_id=t, centroid=c, member_ids=frozenset(m)) for t, c, m in previous],
        data.item_ids.tolist(),
        labels,
        label_ids,
        centres,
        first_new_id=_PLACEHOLDER_BASE,
    )
    if n and previous:
        # Hysteresis: a theme that a grown cluster swallowed although it is still distinct lives
        # on, and an item on the border of a theme that lives on stays in it, so a re-run does
        # not shuffle themes and boundary items back and forth.
        labels, match = keep_merged_apart(data.vectors, labels, data.theme_ids, match)
        labels = stick_to_previous(data.vectors, labels, data.theme_ids, match)
        label_ids, centres = centroids(data.vectors, labels)
    timings["match_s"] = round(time.perf_counter() - step, 3)

    step = time.perf_counter()
    reps = representatives(data.vectors, labels, k=5) if n else {}
    named = label_themes(data.texts, labels, reps) if n else {}
    timings["keywords_s"] = round(time.perf_counter() - step, 3)

    step = time.perf_counter()
    now = datetime.now(UTC)
    rows_of: dict[int, list[int]] = defaultdict(list)
    for row, label in enumerate(labels.tolist()):
        if label >= 0:
            rows_of[label].append(row)
    async with conn.transaction():
        real: dict[int, int] = {}
        for position, label in enumerate(label_ids.tolist()):
            rows = rows_of[label]
            created = [data.created_at[r] for r in rows]
            recent = sum(c >= now - timedelta(days=28) for c in created)
            before = sum(now - timedelta(days=56) <= c < now - timedelta(days=28) for c in created)
            minted = match.theme_ids[label]
            label_text, keywords = named.get(label, ("", []))
            write = ThemeWrite(
                theme_id=None if minted >= _PLACEHOLDER_BASE else minted,
                label=label_text or "unlabelled theme",
                keywords=keywords,
                size=len(rows),
                status=lifecycle(min(created), max(created), len(rows), recent, before, now),
                centroid=centres[position],
                representative_item_ids=[int(data.item_ids[r]) for r in reps.get(label, [])],
                first_seen_at=min(created),
                last_seen_at=max(created),
            )
            real[minted] = await upsert_theme(conn, scope=scope, run_id=run_id, theme=write)
        # A theme whose items all went back to their previous themes (hysteresis) is gone too;
        # successors that no longer exist are dropped from the lineage.
        present = {match.theme_ids[label] for label in label_ids.tolist()}
        vanished = [t for t in match.theme_ids.values() if t not in present and t < _PLACEHOLDER_BASE]
        split = {old: [real[p] for p in parts if p in real] for old, parts in match.split_into.items()}
        await update_themes_retired(
            conn,
            run_id=run_id,
            merged={old: real[new] for old, new in match.merged_into.items() if new in real},
            split={old: parts for old, parts in split.items() if parts},
            gone=sorted(
                {
                    *match.disappeared,
                    *vanished,
                    *[o for o, n in match.merged_into.items() if n not in real],
                    *[o for o, parts in split.items() if not parts],
                }
            ),
        )
        new_assignment = [real[match.theme_ids[label]] if label >= 0 else None for label in labels.tolist()]
        await update_item_themes(conn, scope=scope, item_ids=data.item_ids.tolist(), theme_ids=new_assignment)
        ids = data.item_ids.tolist()
        kept_share, ari = stability(
            dict(zip(ids, data.theme_ids, strict=True)), dict(zip(ids, new_assignment, strict=True))
        )
        timings["write_s"] = round(time.perf_counter() - step, 3)
        timings["total_s"] = round(time.perf_counter() - started, 3)
        unassigned = int((labels < 0).sum())
        await update_run_digest(conn, run_id=run_id, digest=digest)
        await update_run_done(
            conn, run_id=run_id, items=n, themes=len(label_ids), unassigned=unassigned,
            kept_share=kept_share if previous else None, ari=ari if previous else None, timings=timings,
        )  # fmt: skip
    log.info("run %s: %d items, %d themes, %d unassigned, %s", run_id, n, len(label_ids), unassigned, timings)


def input_digest(data: ClusteringInput, settings_key: str) -> bytes:
    """What a run clusters: the items, their vectors' content hashes, the model and parameters."""
    digest = hashlib.sha256(settings_key.encode())
    for item_id, content_hash in zip(data.item_ids.tolist(), data.content_hashes, strict=True):
        digest.update(item_id.to_bytes(8, "little"))
        digest.update(content_hash)
    return digest.digest()


async def _previous_themes(
    conn: asyncpg.Connection, scope: str, data: ClusteringInput
) -> list[tuple[int, np.ndarray, set[int]]]:
    theme_ids, centres = await select_theme_centroids(conn, scope=scope)
    members: dict[int, set[int]] = defaultdict(set)
    for item_id, theme_id in zip(data.item_ids.tolist(), data.theme_ids, strict=True):
        if theme_id is not None:
            members[theme_id].add(item_id)
    return [(t, centres[i], members.get(t, set())) for i, t in enumerate(theme_ids)]
