"""Detection and delivery jobs on real Postgres and Redis, sending to real receivers on 127.0.0.1
(HTTP receivers, and an aiosmtpd SMTP server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from standardwebhooks import Webhook

from clustering.incidents import Thresholds
from db.sealing import destination_owner, seal_secret
from outbox.queues import DELIVERIES_QUEUE, RETRY_INTERVALS
from outbox.schedule import enqueue_due_deliveries, schedule_alerts
from schemas.alerts import QuietHours, Rule
from schemas.settings import Settings, get_settings
from tests.conftest import SECRET_KEY, auth, running_app
from tests.outbound.loopback import Mailbox, Receiver, smtp_server
from workers.alerts import MAX_ATTEMPTS, attempt_delivery, quiet_until, route, run_detection

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # a Friday
TH = Thresholds(p_value=Settings.model_fields["alerts_p_value"].default)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    rs = {name: Receiver().start() for name in ("slack", "teams", "webhook")}
    yield rs
    for r in rs.values():
        r.stop()


@pytest.fixture
def alert_settings(migrated: Settings, smtp: tuple[Mailbox, int]) -> Settings:
    return migrated.model_copy(
        update={
            "outbound_allowed_hosts": ["127.0.0.1"],
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp[1],
            "smtp_starttls": False,
            "public_url": "https://themes.example.com",
        }
    )


async def add_theme(db: asyncpg.Connection, label: str, *, parent_id: int | None = None, level: str = "leaf") -> int:
    theme_id: int = await db.fetchval(
        "INSERT INTO theme (label, parent_id, level, first_seen_at) VALUES ($1, $2, $3, $4) RETURNING theme_id",
        label, parent_id, level, NOW - timedelta(days=80),
    )  # fmt: skip
    return theme_id


async def add_items(
    db: asyncpg.Connection,
    theme_id: int,
    days: range,
    per_day: int,
    *,
    channel: str = "email",
    start: int = 0,
    at: datetime = NOW,
) -> None:
    """`per_day` items on each of the days `days` before `at` (0 is `at`'s day, items before `at`)."""
    rows = [
        (f"t{theme_id}-{start}-{d}-{n}", min(datetime.combine((at - timedelta(days=d)).date(), time(9, n), UTC),
                                             at - timedelta(minutes=n + 1)), channel, theme_id)
        for d in days for n in range(per_day)
    ]  # fmt: skip
    await db.executemany(
        "INSERT INTO item (source, external_id, kind, body, created_at, channel, priority, payload_hash, theme_id,"
        " pending) VALUES ('zendesk', $1, 'ticket', 'text', $2, $3, 'normal', '\\x00', $4, false)",
        rows,
    )


async def add_destination(
    db: asyncpg.Connection, kind: str, *, url: str | None = None, secret: str | None = None
) -> int:
    dest_id: int = await db.fetchval(
        "INSERT INTO alert_destination (kind, name, url, email_to) VALUES ($1, $1, $2, $3)"
        " RETURNING alert_destination_id",
        kind, url, ["lead@example.com"] if kind == "email" else [],
    )  # fmt: skip
    if secret:
        sealed = seal_secret(SECRET_KEY, owner=destination_owner(dest_id), secret=secret)
        await db.execute(
            "UPDATE alert_destination SET sealed_secret = $2 WHERE alert_destination_id = $1", dest_id, sealed
        )
    return dest_id


async def add_rule(db: asyncpg.Connection, destination_ids: list[int], **extra: Any) -> None:
    await db.execute(
        "INSERT INTO alert_rule (name, kinds, level, destination_ids, quiet_hours) VALUES ('r', $1, $2, $3, $4)",
        extra.get("kinds", ["spike", "emerging", "feature_surge"]), extra.get("level"), destination_ids,
        extra.get("quiet_hours"),
    )  # fmt: skip


async def surge(db: asyncpg.Connection, at: datetime = NOW) -> tuple[int, int]:
    """A parent with two leaves; 'refunds' steady at 3 a day for 9 weeks, then 12 a day for the
    last 3 days, the extra all by chat."""
    parent = await add_theme(db, "payments", level="parent")
    refunds = await add_theme(db, "refunds", parent_id=parent)
    other = await add_theme(db, "card declined", parent_id=parent)
    await add_items(db, refunds, range(0, 63), 3, at=at)
    await add_items(db, other, range(0, 63), 3, at=at)
    await add_items(db, refunds, range(0, 3), 9, channel="chat", start=1, at=at)
    return parent, refunds


async def incident_at(db: asyncpg.Connection, level: str) -> int:
    incident_id: int = await db.fetchval("SELECT incident_id FROM incident WHERE level = $1", level)
    return incident_id


async def test_a_surge_makes_one_incident_per_level_with_its_segment_and_examples(db: asyncpg.Connection) -> None:
    parent, refunds = await surge(db)
    found = await run_detection(db, now=NOW, th=TH)
    assert len(found.opened) == 2 and found.updated == []
    rows = await db.fetch("SELECT * FROM incident ORDER BY level")
    assert [(r["kind"], r["theme_id"], r["level"]) for r in rows] == [
        ("spike", refunds, "leaf"),
        ("spike", parent, "parent"),
    ]
    leaf = rows[0]
    assert leaf["observed"] > leaf["expected"] + 5
    segments = json.loads(leaf["segments"])
    assert segments[0]["field"] == "channel" and segments[0]["value"] == "chat"
    assert segments[0]["lift"] >= 2 and segments[0]["count"] == 27
    examples = await db.fetch("SELECT channel FROM item WHERE item_id = ANY($1)", leaf["example_item_ids"])
    assert len(examples) == 5 and {e["channel"] for e in examples} == {"chat"}

    # Later items of the same event, and the next day's check: the same incidents, updated.
    await add_items(db, refunds, range(0, 1), 6, channel="chat", start=2)
    again = await run_detection(db, now=NOW + timedelta(hours=2), th=TH)
    tomorrow = await run_detection(db, now=NOW + timedelta(days=1), th=TH)
    assert again.opened == [] and tomorrow.opened == [] and sorted(again.updated) == sorted(found.opened)
    assert await db.fetchval("SELECT count(*) FROM incident") == 2
    assert await db.fetchval("SELECT observed FROM incident WHERE level = 'leaf'") > leaf["observed"]


async def test_a_steady_theme_and_a_new_one(db: asyncpg.Connection) -> None:
    steady = await add_theme(db, "steady")
    await add_items(db, steady, range(0, 63), 4)
    young: int = await db.fetchval(
        "INSERT INTO theme (label, first_seen_at) VALUES ('new', $1) RETURNING theme_id", NOW - timedelta(days=3)
    )
    await add_items(db, young, range(0, 3), 2)
    found = await run_detection(db, now=NOW, th=TH)
    rows = await db.fetch("SELECT kind, theme_id, granularity, observed FROM incident")
    assert [tuple(r) for r in rows] == [("emerging", young, "new", 6)]
    assert len(found.opened) == 1


async def test_feature_request_themes_surge(db: asyncpg.Connection) -> None:
    feature: int = await db.fetchval(
        "INSERT INTO theme (label, scope, first_seen_at) VALUES ('dark mode', 'feature', $1) RETURNING theme_id",
        NOW - timedelta(days=80),
    )
    await add_items(db, feature, range(0, 63), 2)
    await add_items(db, feature, range(0, 2), 10, start=1)
    await db.execute("UPDATE item SET feature_theme_id = theme_id, theme_id = NULL")
    await run_detection(db, now=NOW, th=TH)
    assert [tuple(r) for r in await db.fetch("SELECT kind, theme_id FROM incident")] == [("feature_surge", feature)]


async def test_incident_reaches_slack_teams_webhook_and_email_once_each(
    db: asyncpg.Connection, alert_settings: Settings, receivers: dict[str, Receiver], smtp: tuple[Mailbox, int]
) -> None:
    secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    dests = {
        "slack": await add_destination(db, "slack", url=receivers["slack"].url("/services/T/B/x")),
        "teams": await add_destination(db, "teams", url=receivers["teams"].url("/workflows/x")),
        "webhook": await add_destination(db, "webhook", url=receivers["webhook"].url(), secret=secret),
        "email": await add_destination(db, "email"),
    }
    await add_rule(db, list(dests.values()), level="leaf")
    _, refunds = await surge(db)
    await run_detection(db, now=NOW, th=TH)
    incident_id = await incident_at(db, "leaf")
    for dest_id in dests.values():
        assert await attempt_delivery(db, alert_settings, incident_id=incident_id, destination_id=dest_id) == "sent"
        # a second run of the same job (RQ retry after a lost ack, a re-enqueue) sends nothing
        assert await attempt_delivery(db, alert_settings, incident_id=incident_id, destination_id=dest_id) == "skipped"

    [slack] = receivers["slack"].received
    blocks = slack.json()["blocks"]
    assert blocks[0]["text"]["text"] == "Spike: refunds"
    fields = " ".join(f["text"] for f in blocks[1]["fields"])
    assert "*Observed*" in fields and "*Expected*" in fields
    assert "channel = chat" in blocks[2]["text"]["text"]
    assert blocks[3]["elements"][0]["url"] == f"https://themes.example.com/themes/{refunds}"

    [teams] = receivers["teams"].received
    card = teams.json()["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard" and card["content"]["body"][0]["text"] == "Spike: refunds"

    [hook] = receivers["webhook"].received
    event = Webhook(secret).verify(hook.body, hook.headers)
    assert event["type"] == "incident.opened" and event["data"]["incident_id"] == incident_id
    assert hook.headers["webhook-id"] == f"incident-{incident_id}-{dests['webhook']}"

    [mail] = smtp[0].messages
    assert mail["Subject"] == "Spike: refunds" and "channel = chat" in mail.get_payload()

    statuses = await db.fetch("SELECT status, attempts FROM incident_delivery")
    assert {tuple(s) for s in statuses} == {("sent", 1)}


async def test_an_unreachable_destination_is_retried_then_dead_lettered_and_holds_up_no_other(
    db: asyncpg.Connection, alert_settings: Settings, receivers: dict[str, Receiver]
) -> None:
    closed = Receiver().start()
    dead_url = closed.url()
    closed.stop()
    bad = await add_destination(db, "slack", url=dead_url)
    good = await add_destination(db, "slack", url=receivers["slack"].url())
    await add_rule(db, [bad, good], level="leaf")
    await surge(db)
    await run_detection(db, now=NOW, th=TH)
    incident_id = await incident_at(db, "leaf")

    assert await attempt_delivery(db, alert_settings, incident_id=incident_id, destination_id=good) == "sent"
    outcomes = [
        await attempt_delivery(db, alert_settings, incident_id=incident_id, destination_id=bad)
        for _ in range(MAX_ATTEMPTS)
    ]
    assert outcomes == ["retry"] * (MAX_ATTEMPTS - 1) + ["dead"]
    assert await attempt_delivery(db, alert_settings, incident_id=incident_id, destination_id=bad) == "skipped"
    assert len(receivers["slack"].received) == 1

    async with running_app(alert_settings) as (client, _):
        listed = (await client.get("/v1/incidents", headers=auth())).json()["data"]
    [incident] = [i for i in listed if i["incident_id"] == incident_id]
    deliveries = {d["destination_id"]: d for d in incident["deliveries"]}
    assert deliveries[good]["status"] == "sent" and deliveries[good]["attempts"] == 1
    assert deliveries[bad]["status"] == "dead" and deliveries[bad]["attempts"] == MAX_ATTEMPTS
    assert "connect" in deliveries[bad]["last_error"]


async def test_deliveries_are_enqueued_once_with_retries_and_backoff(
    db: asyncpg.Connection, alert_settings: Settings, receivers: dict[str, Receiver]
) -> None:
    dest = await add_destination(db, "slack", url=receivers["slack"].url())
    await add_rule(db, [dest], level="parent")
    await surge(db)
    await run_detection(db, now=NOW, th=TH)
    incident_id = await incident_at(db, "parent")
    redis = Redis.from_url(alert_settings.redis_url)
    try:
        assert await enqueue_due_deliveries(db, redis, alert_settings) == 1
        assert await enqueue_due_deliveries(db, redis, alert_settings) == 0  # enqueued once
        [job] = Queue(DELIVERIES_QUEUE, connection=redis).get_jobs()
        assert job.func_name == "workers.alerts.deliver_incident" and job.args == (incident_id, dest)
        assert job.retries_left == len(RETRY_INTERVALS) and job.retry_intervals == RETRY_INTERVALS
    finally:
        redis.close()


async def test_quiet_hours_hold_a_message_until_they_end(
    db: asyncpg.Connection, alert_settings: Settings, receivers: dict[str, Receiver]
) -> None:
    dest = await add_destination(db, "slack", url=receivers["slack"].url())
    now = datetime.now(UTC)
    around_now = {"start": (now - timedelta(hours=1)).time(), "end": (now + timedelta(hours=1)).time(), "tz": "UTC"}
    quiet = QuietHours.model_validate(around_now)
    await add_rule(db, [dest], level="leaf", quiet_hours=quiet.model_dump_json())
    await surge(db, at=now)
    await run_detection(db, now=now, th=TH)
    incident_id = await incident_at(db, "leaf")
    not_before = await db.fetchval("SELECT not_before FROM incident_delivery")
    assert not_before > datetime.now(UTC)
    assert await attempt_delivery(db, alert_settings, incident_id=incident_id, destination_id=dest) == "skipped"
    redis = Redis.from_url(alert_settings.redis_url)
    try:
        assert await enqueue_due_deliveries(db, redis, alert_settings) == 0
    finally:
        redis.close()
    assert receivers["slack"].received == []


def test_quiet_hours_across_midnight() -> None:
    q = QuietHours.model_validate({"start": "22:00", "end": "07:00", "tz": "Europe/Berlin"})
    late = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    assert quiet_until(late, q) == datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
    early = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)  # 06:00 in Berlin
    assert quiet_until(early, q) == datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
    assert quiet_until(datetime(2026, 11, 21, 12, 0, tzinfo=UTC), q) is None


def test_rules_route_by_kind_level_theme_and_volume() -> None:
    base = {"rule_id": 1, "name": "r", "quiet_hours": None, "created_at": NOW, "theme_ids": [], "min_volume": 0}
    rules = [
        Rule.model_validate({**base, "on": ["spike"], "level": "leaf", "destination_ids": [1]}),
        Rule.model_validate({**base, "on": ["emerging"], "level": None, "destination_ids": [2]}),
        Rule.model_validate({**base, "on": ["spike"], "level": None, "destination_ids": [3], "theme_ids": [9]}),
        Rule.model_validate({**base, "on": ["spike"], "level": None, "destination_ids": [4], "min_volume": 100}),
    ]
    assert route(rules, kind="spike", level="leaf", theme_id=9, observed=50, now=NOW) == {1: NOW, 3: NOW}
    assert route(rules, kind="spike", level="parent", theme_id=8, observed=150, now=NOW) == {4: NOW}
    assert route(rules, kind="emerging", level="parent", theme_id=8, observed=5, now=NOW) == {2: NOW}


async def test_schedule_starts_detection_on_time_and_after_a_clustering_run(
    db: asyncpg.Connection, alert_settings: Settings
) -> None:
    redis = Redis.from_url(alert_settings.redis_url)
    try:
        first = await schedule_alerts(db, redis, alert_settings)
        assert first is not None and await schedule_alerts(db, redis, alert_settings) is None
        await db.execute("INSERT INTO clustering_run (status, finished_at) VALUES ('done', now() + interval '1 s')")
        second = await schedule_alerts(db, redis, alert_settings)
        assert second is not None
        assert await db.fetchval("SELECT trigger FROM alert_detection WHERE alert_detection_id = $1", second) == (
            "clustering"
        )
        jobs = Queue(DELIVERIES_QUEUE, connection=redis).get_jobs()
        assert [j.args for j in jobs] == [(first,), (second,)]
    finally:
        redis.close()


def test_the_worker_runs_detection_then_delivery(
    db: asyncpg.Connection,
    alert_settings: Settings,
    receivers: dict[str, Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real RQ path: the schedule enqueues detection, a worker (in this process, so the test's
    loopback-only sockets hold) runs it and then the delivery job it enqueued."""
    for name, value in {
        "DATABASE_URL": alert_settings.database_url,
        "REDIS_URL": alert_settings.redis_url,
        "SECRET_KEY": SECRET_KEY,
        "OUTBOUND_ALLOWED_HOSTS": '["127.0.0.1"]',
        "ENVIRONMENT": "test",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()

    async def arrange() -> None:
        conn = await asyncpg.connect(alert_settings.database_url)
        redis = Redis.from_url(alert_settings.redis_url)
        try:
            dest = await add_destination(conn, "slack", url=receivers["slack"].url())
            await add_rule(conn, [dest], level="leaf")
            await surge(conn, at=datetime.now(UTC))  # the surge ends today, whatever today is
            assert await schedule_alerts(conn, redis, alert_settings) is not None
        finally:
            redis.close()
            await conn.close()

    async def outcome() -> tuple[bool, str]:
        conn = await asyncpg.connect(alert_settings.database_url)
        try:
            finished = await conn.fetchval("SELECT finished_at IS NOT NULL FROM alert_detection")
            return finished, await conn.fetchval("SELECT status FROM incident_delivery")
        finally:
            await conn.close()

    asyncio.run(arrange())
    redis = Redis.from_url(alert_settings.redis_url)
    try:
        SimpleWorker([DELIVERIES_QUEUE], connection=redis).work(burst=True)
    finally:
        redis.close()
        get_settings.cache_clear()
    assert asyncio.run(outcome()) == (True, "sent")
    [message] = receivers["slack"].received
    assert message.json()["blocks"][0]["text"]["text"] == "Spike: refunds"


async def test_api_shows_incidents_from_detection(db: asyncpg.Connection, alert_settings: Settings) -> None:
    await surge(db)
    await run_detection(db, now=NOW, th=TH)
    async with running_app(alert_settings) as (client, _):
        r = await client.get("/v1/incidents", headers=auth())
    assert isinstance(r, httpx.Response) and r.status_code == 200
    data = r.json()["data"]
    assert {(d["kind"], d["level"]) for d in data} == {("spike", "leaf"), ("spike", "parent")}
    assert all(len(d["example_item_ids"]) == 5 for d in data)
