from __future__ import annotations

import asyncpg
from redis import Redis
from rq import Queue

from outbox.queues import CLUSTERING_QUEUE
from outbox.schedule import schedule_clustering
from schemas.settings import Settings


async def add_embedded(db: asyncpg.Connection, n: int, intent: str = "bug") -> None:
    start = await db.fetchval("SELECT count(*) FROM item")
    for k in range(start, start + n):
        await db.execute(
            "INSERT INTO item (source, external_id, kind, body, created_at, payload_hash, pending, embedded_at, intent)"
            " VALUES ('api', $1, 'ticket', 'b', now(), 'h', false, now(), $2)",
            f"{intent}-{k}", intent,
        )  # fmt: skip


async def test_a_run_starts_after_enough_new_items_and_only_once(migrated: Settings, db: asyncpg.Connection) -> None:
    settings = migrated.model_copy(update={"cluster_every_new_items": 3})
    redis = Redis.from_url(settings.redis_url)
    await add_embedded(db, 2)
    assert await schedule_clustering(db, redis, settings) == []
    await add_embedded(db, 1, intent="feature_request")
    [run_id] = await schedule_clustering(db, redis, settings)
    assert await db.fetchval("SELECT trigger FROM clustering_run WHERE run_id = $1", run_id) == "auto"
    assert Queue(CLUSTERING_QUEUE, connection=redis).job_ids == [f"cluster-{run_id}"]
    # busy now: no second run of the same scope
    assert await schedule_clustering(db, redis, settings) == []
    # three feature requests make the feature scope due too
    await add_embedded(db, 2, intent="feature_request")
    [feature_run] = await schedule_clustering(db, redis, settings)
    assert await db.fetchval("SELECT scope FROM clustering_run WHERE run_id = $1", feature_run) == "feature"
    redis.close()


async def test_a_queued_run_that_redis_lost_is_enqueued_again(migrated: Settings, db: asyncpg.Connection) -> None:
    redis = Redis.from_url(migrated.redis_url)
    run_id = await db.fetchval(
        "INSERT INTO clustering_run (scope, created_at) VALUES ('all', now() - interval '10 minutes') RETURNING run_id"
    )
    await schedule_clustering(db, redis, migrated)
    assert Queue(CLUSTERING_QUEUE, connection=redis).job_ids == [f"cluster-{run_id}"]
    redis.close()


async def test_no_automatic_run_while_an_import_is_still_being_embedded(
    migrated: Settings, db: asyncpg.Connection
) -> None:
    settings = migrated.model_copy(update={"cluster_every_new_items": 3})
    redis = Redis.from_url(settings.redis_url)
    await add_embedded(db, 3)
    for k in range(3):
        await db.execute(
            "INSERT INTO item (source, external_id, kind, body, created_at, payload_hash) VALUES ('api', $1, 'ticket',"
            " 'b', now(), 'h')",
            f"pending-{k}",
        )
    assert await schedule_clustering(db, redis, settings) == []
    await db.execute("UPDATE item SET pending = false")
    assert len(await schedule_clustering(db, redis, settings)) == 1
    redis.close()


async def test_a_backlog_holds_an_automatic_run_back_only_until_the_schedule_comes_round(
    migrated: Settings, db: asyncpg.Connection
) -> None:
    # Ingest that the workers never catch up with must not leave the themes stale for ever.
    settings = migrated.model_copy(update={"cluster_every_new_items": 3, "cluster_every_s": 3600})
    redis = Redis.from_url(settings.redis_url)
    await db.execute(
        "INSERT INTO clustering_run (scope, status, created_at, started_at, finished_at)"
        " VALUES ('all', 'done', now() - interval '50 minutes', now() - interval '50 minutes', now())"
    )
    await db.execute(
        "INSERT INTO item (source, external_id, kind, body, created_at, payload_hash)"
        " SELECT 'api', 'pending-' || k, 'ticket', 'b', now(), 'h' FROM generate_series(1, 3) k"
    )
    await add_embedded(db, 3)  # enough new items, but the backlog says wait
    assert await schedule_clustering(db, redis, settings) == []
    await db.execute("UPDATE clustering_run SET started_at = now() - interval '61 minutes'")
    [run_id] = await schedule_clustering(db, redis, settings)  # overdue: the backlog no longer holds it
    assert await db.fetchval("SELECT scope FROM clustering_run WHERE run_id = $1", run_id) == "all"
    redis.close()
