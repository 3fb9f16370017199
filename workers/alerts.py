"""Alert jobs: detect incidents (after each clustering run and on a schedule) and deliver each
incident to each destination its rules name, one job per (incident, destination).

A delivery is idempotent by incident and destination: its row is created once, locked for each
attempt and never sent again once `sent`; the webhook-id a receiver sees is the same on every
retry. A failed attempt is retried by RQ with backoff (outbox/queues.py RETRY_INTERVALS); after
the last one the row is `dead` (the dead letter the health view lists). Each destination has its
own job, so an unreachable one holds up no other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import numpy as np
from redis import Redis
from redis.exceptions import RedisError

from clustering.incidents import Decision, OpenIncident, Series, Thresholds, detect, merge, over_represented, roll_up
from db.pool import connect
from db.queries.alerts import select_rules
from db.queries.incidents import (
    DayCount,
    DeliveryWork,
    IncidentWrite,
    finish_detection,
    insert_deliveries,
    lock_delivery,
    select_day_counts,
    select_recent_incidents,
    select_segment_rows,
    update_delivery,
    upsert_incident,
)
from db.sealing import destination_owner, unseal_secret
from outbound.messages import IncidentMessage, SegmentLine
from outbound.send import Destination, send
from outbox.queues import RETRY_INTERVALS
from outbox.schedule import enqueue_due_deliveries
from schemas.alerts import QuietHours, Rule, Segment
from schemas.settings import Settings, get_settings

log = logging.getLogger(__name__)

HISTORY_DAYS = 64  # the checked day, the 7-day window and the 8 weeks before it
BASELINE = timedelta(weeks=8)
MAX_ATTEMPTS = 1 + len(RETRY_INTERVALS)
EXAMPLES = 5


class DeliveryFailed(Exception):
    """Raised after a failed attempt is recorded, so RQ retries the job with backoff."""


def quiet_until(now: datetime, quiet: QuietHours) -> datetime | None:
    """The end of the quiet hours `now` falls in, or None when they are not on."""
    zone = ZoneInfo(quiet.tz)
    local = now.astimezone(zone)
    t = local.time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        if not quiet.start <= t < quiet.end:
            return None
        ends = local.date()
    else:  # spans midnight
        if quiet.end <= t < quiet.start:
            return None
        ends = local.date() + timedelta(days=1) if t >= quiet.start else local.date()
    return datetime.combine(ends, quiet.end, zone).astimezone(UTC)


def route(
    rules: Sequence[Rule], *, kind: str, level: str, theme_id: int, observed: int, now: datetime
) -> dict[int, datetime]:
    """Destination id -> when its message may leave, over every rule this incident matches."""
    due: dict[int, datetime] = {}
    for rule in rules:
        if kind not in rule.on or (rule.level and rule.level != level) or observed < rule.min_volume:
            continue
        if rule.theme_ids and theme_id not in rule.theme_ids:
            continue
        not_before = (quiet_until(now, rule.quiet_hours) if rule.quiet_hours else None) or now
        for dest in rule.destination_ids:
            due[dest] = min(due.get(dest, not_before), not_before)
    return due


@dataclass(frozen=True)
class Detected:
    opened: list[int]
    updated: list[int]


def _series(counts: Sequence[DayCount], day0: date, today: int) -> tuple[list[Series], dict[int, str]]:
    by_theme: dict[int, np.ndarray] = {}
    meta: dict[int, DayCount] = {}
    for c in counts:
        arr = by_theme.setdefault(c.theme_id, np.zeros(today + 1, dtype=np.int64))
        arr[(c.day - day0).days] += c.items
        meta[c.theme_id] = c
    leaves, scopes = [], {}
    for theme_id, arr in by_theme.items():
        m = meta[theme_id]
        seen = m.first_seen_at.astimezone(UTC).date() if m.first_seen_at else None
        first = (seen - day0).days if seen else int(np.flatnonzero(arr)[0])
        kind = "feature_surge" if m.scope == "feature" else "spike"
        leaves.append(Series(theme_id, "leaf", kind, min(first, int(np.flatnonzero(arr)[0])), arr))
        scopes[theme_id] = m.scope
    parent_of = {c.theme_id: c.parent_id for c in counts if c.parent_id is not None}
    parents = roll_up(leaves, parent_of)
    for p in parents:
        scopes[p.theme_id] = "feature" if p.kind == "feature_surge" else "all"
    return leaves + parents, scopes


async def run_detection(conn: asyncpg.Connection, *, now: datetime, th: Thresholds) -> Detected:
    """Detect as of `now`, record incidents and their deliveries in one transaction."""
    today = now.astimezone(UTC).date()
    day0 = today - timedelta(days=HISTORY_DAYS - 1)
    start = datetime.combine(day0, time(), UTC)
    counts = await select_day_counts(conn, since=start, until=now)
    series, scopes = _series(counts, day0, HISTORY_DAYS - 1)
    events = detect(series, HISTORY_DAYS - 1, today.weekday(), th)
    recorded = await select_recent_incidents(conn, since=start)

    def day_of(at: datetime) -> int:
        return (at.astimezone(UTC).date() - day0).days

    known = [
        OpenIncident(r.incident_id, r.kind, r.theme_id, r.level, day_of(r.window_start), day_of(r.window_end), r.score)
        for r in recorded
    ]
    starts = {r.incident_id: r.window_start for r in recorded}
    rules = await select_rules(conn)
    opened: list[int] = []
    updated: list[int] = []
    async with conn.transaction():
        for decision in merge(events, known):
            write = await _incident_write(conn, decision, day0, now, scopes, starts)
            incident_id = await upsert_incident(conn, write=write, incident_id=decision.incident_id)
            (opened if decision.incident_id is None else updated).append(incident_id)
            e = decision.event
            due = route(rules, kind=e.kind, level=e.level, theme_id=e.theme_id, observed=e.observed, now=now)
            if due:
                await insert_deliveries(conn, incident_id=incident_id, destinations=due)
    return Detected(opened, updated)


async def _incident_write(
    conn: asyncpg.Connection,
    decision: Decision,
    day0: date,
    now: datetime,
    scopes: dict[int, str],
    starts: dict[int, datetime],
) -> IncidentWrite:
    e = decision.event
    window_start = datetime.combine(day0 + timedelta(days=e.start_day), time(), UTC)
    if decision.incident_id is not None:
        window_start = min(window_start, starts[decision.incident_id])
    window_end = min(datetime.combine(day0 + timedelta(days=e.end_day + 1), time(), UTC), now)
    rows = await select_segment_rows(
        conn, theme_id=e.theme_id, level=e.level, scope=scopes[e.theme_id], since=window_start - BASELINE,
        until=window_end,
    )  # fmt: skip
    inside = [r for r in rows if r.created_at >= window_start]
    before = [r for r in rows if r.created_at < window_start]
    segments = over_represented([r.values for r in inside], [r.values for r in before])
    top = (segments[0].field, segments[0].value) if segments else None
    examples = sorted(
        inside, key=lambda r: (top is None or top[1] not in r.values.get(top[0], []), -r.created_at.timestamp())
    )[:EXAMPLES]
    return IncidentWrite(
        dedupe_key=f"{e.kind}:{e.theme_id}:{e.level}:{e.granularity}:{window_start.date().isoformat()}",
        kind=e.kind,
        theme_id=e.theme_id,
        level=e.level,
        granularity=e.granularity,
        window_start=window_start,
        window_end=window_end,
        observed=e.observed,
        expected=e.expected,
        score=e.score,
        segments=[Segment(**vars(s)) for s in segments[:10]],
        example_item_ids=[r.item_id for r in examples],
    )


async def detect_incidents(detection_id: int) -> int:
    """The detection job; returns how many incidents it opened."""
    settings = get_settings()
    conn = await connect(settings)
    redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    try:
        found = await run_detection(conn, now=datetime.now(UTC), th=Thresholds(p_value=settings.alerts_p_value))
        await finish_detection(conn, detection_id=detection_id, opened=len(found.opened), updated=len(found.updated))
        try:
            await enqueue_due_deliveries(conn, redis, settings)
        except RedisError:
            pass  # the rows stay pending; the schedule enqueues them
        log.info("alerts: %d incidents opened, %d updated", len(found.opened), len(found.updated))
        return len(found.opened)
    finally:
        redis.close()
        await conn.close()


def incident_message(work: DeliveryWork, *, incident_id: int, public_url: str) -> IncidentMessage:
    return IncidentMessage(
        incident_id=incident_id,
        kind=work.incident_kind,
        level=work.level,
        theme_id=work.theme_id,
        theme_label=work.theme_label,
        observed=work.observed,
        expected=work.expected,
        window_start=work.window_start,
        window_end=work.window_end,
        segments=[SegmentLine(s.field, s.value, s.share, s.lift) for s in work.segments],
        example_item_ids=work.example_item_ids,
        theme_url=f"{public_url.rstrip('/')}/themes/{work.theme_id}",
    )


async def attempt_delivery(
    conn: asyncpg.Connection, settings: Settings, *, incident_id: int, destination_id: int
) -> str:
    """One attempt: "sent", "dead", "retry" (recorded; the caller raises) or "skipped"."""
    async with conn.transaction():
        work = await lock_delivery(conn, incident_id=incident_id, destination_id=destination_id)
        if work is None or work.status != "pending" or work.not_before > datetime.now(UTC):
            return "skipped"
        secret = None
        if work.sealed_secret is not None and settings.secret_key is not None:
            secret = unseal_secret(
                settings.secret_key.get_secret_value(),
                owner=destination_owner(destination_id),
                sealed=work.sealed_secret,
            )
        dest = Destination(destination_id, work.kind, work.url, work.email_to, secret)
        msg = incident_message(work, incident_id=incident_id, public_url=settings.public_url)
        outcome = await asyncio.to_thread(
            send, dest, msg, settings=settings, message_id=f"incident-{incident_id}-{destination_id}"
        )
        attempts = work.attempts + 1
        status = "sent" if outcome.is_sent else ("dead" if attempts >= MAX_ATTEMPTS else "pending")
        await update_delivery(
            conn, incident_id=incident_id, destination_id=destination_id, status=status, attempts=attempts,
            error=outcome.error,
        )  # fmt: skip
    if status == "pending":
        log.warning(
            "alerts: delivery %s/%s failed (attempt %d): %s", incident_id, destination_id, attempts, outcome.error
        )
        return "retry"
    return status


async def deliver_incident(incident_id: int, destination_id: int) -> str:
    """The delivery job: one attempt; raises after a recorded failure so RQ retries with backoff."""
    settings = get_settings()
    conn = await connect(settings)
    try:
        result = await attempt_delivery(conn, settings, incident_id=incident_id, destination_id=destination_id)
    finally:
        await conn.close()
    if result == "retry":
        raise DeliveryFailed(f"delivery of incident {incident_id} to destination {destination_id} failed")
    return result
