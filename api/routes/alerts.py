"""Alert destinations and rules (spec/api.md "Alerts and incidents").

A destination URL is checked by the SSRF guard when it is created (422 with the reason) and again,
with its addresses resolved, every time a message is sent. A webhook destination's signing secret
is in the creating response only and is stored sealed (db/sealing.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from api.deps import AdminKey, AppSettings, DbConn, RowId
from api.errors import NotFound, ServiceUnavailable, Unprocessable
from api.secrets import new_secret, require_key
from db.queries.alerts import (
    DestinationRow,
    delete_rule,
    insert_destination,
    insert_rule,
    select_destination,
    select_destinations,
    select_missing_destination_ids,
    select_missing_theme_ids,
    select_rules,
    update_destination_secret,
)
from db.sealing import SecretUnreadable, destination_owner, seal_secret, unseal_secret
from outbound.guard import OutboundError, Refused, check_url
from outbound.messages import IncidentMessage, SegmentLine
from outbound.send import Destination as SendTo
from outbound.send import outbound_for, send
from schemas.alerts import (
    DeliveryResult,
    Destination,
    DestinationCreate,
    DestinationCreated,
    DestinationList,
    Rule,
    RuleCreate,
    RuleList,
)

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


def _problem(field: str, msg: str) -> Unprocessable:
    return Unprocessable([{"type": "value_error", "loc": ["body", field], "msg": msg}])


def shown_url(url: str | None) -> str | None:
    """Scheme and host only: the path of a Slack or Teams webhook URL is its credential."""
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


def _destination(row: DestinationRow) -> Destination:
    return Destination(
        destination_id=row.destination_id,
        kind=row.kind,
        name=row.name,
        url=shown_url(row.url),
        to=row.email_to,
        created_at=row.created_at,
    )


@router.post("/destinations", status_code=201)
async def create_destination(
    body: DestinationCreate, conn: DbConn, settings: AppSettings, _: AdminKey
) -> DestinationCreated:
    """A webhook destination's signing secret (Standard Webhooks) is in this response only."""
    if body.url is not None:
        try:
            target = check_url(body.url, settings.outbound_allowed_hosts)
            # A name that resolves to a refused address now is refused now; a name that does not
            # resolve yet is accepted (every send resolves and checks again).
            await run_in_threadpool(outbound_for(settings).checked_addresses, target)
        except Refused as exc:
            raise _problem("url", f"refused: {exc.reason}") from None
        except OutboundError:
            pass
    secret = new_secret() if body.kind == "webhook" else None
    key = require_key(settings.secret_key) if secret else None
    async with conn.transaction():
        row = await insert_destination(conn, kind=body.kind, name=body.name, url=body.url, email_to=body.to or [])
        if secret and key:
            sealed = seal_secret(key, owner=destination_owner(row.destination_id), secret=secret)
            await update_destination_secret(conn, destination_id=row.destination_id, sealed=sealed)
    return DestinationCreated(**_destination(row).model_dump(), secret=secret)


@router.get("/destinations")
async def list_destinations(conn: DbConn, _: AdminKey) -> DestinationList:
    """Destinations without their secrets, URLs shortened to scheme and host."""
    return DestinationList(data=[_destination(r) for r in await select_destinations(conn)])


def sample_message(settings_url: str) -> IncidentMessage:
    now = datetime.now(UTC)
    return IncidentMessage(
        incident_id=0,
        kind="spike",
        level="leaf",
        theme_id=0,
        theme_label="Test message from ticket-themes",
        observed=42,
        expected=14.0,
        window_start=now - timedelta(days=7),
        window_end=now,
        segments=[SegmentLine("channel", "chat", 0.6, 3.0)],
        example_item_ids=[],
        theme_url=f"{settings_url.rstrip('/')}/",
        is_test=True,
    )


@router.post("/destinations/{destination_id}/test")
async def test_destination(destination_id: RowId, conn: DbConn, settings: AppSettings, _: AdminKey) -> DeliveryResult:
    """Send a test message now, through the SSRF guard, and answer with what happened."""
    row = await select_destination(conn, destination_id=destination_id)
    if row is None:
        raise NotFound(f"Destination {destination_id} does not exist.")
    secret = None
    if row.sealed_secret is not None:
        try:
            secret = unseal_secret(
                require_key(settings.secret_key), owner=destination_owner(row.destination_id), sealed=row.sealed_secret
            )
        except SecretUnreadable:
            raise ServiceUnavailable(f"Destination {destination_id}'s secret does not open with SECRET_KEY.") from None
    dest = SendTo(row.destination_id, row.kind, row.url, row.email_to, secret)
    outcome = await run_in_threadpool(
        send, dest, sample_message(settings.public_url), settings=settings, message_id=f"test-{uuid.uuid4()}"
    )
    return DeliveryResult(
        destination_id=destination_id,
        status="sent" if outcome.is_sent else "failed",
        http_status=outcome.http_status,
        error=outcome.error,
    )


@router.post("/rules", status_code=201)
async def create_rule(body: RuleCreate, conn: DbConn, _: AdminKey) -> Rule:
    """Which incidents go to which destinations; a rule naming an unknown theme or destination is 422."""
    async with conn.transaction():
        missing = await select_missing_destination_ids(conn, ids=body.destination_ids)
        if missing:
            raise _problem("destination_ids", f"unknown destination ids: {missing}")
        missing = await select_missing_theme_ids(conn, ids=body.theme_ids)
        if missing:
            raise _problem("theme_ids", f"unknown theme ids: {missing}")
        return await insert_rule(
            conn,
            name=body.name,
            kinds=list(dict.fromkeys(body.on)),
            level=body.level,
            theme_ids=sorted(set(body.theme_ids)),
            min_volume=body.min_volume,
            destination_ids=sorted(set(body.destination_ids)),
            quiet_hours=body.quiet_hours,
        )


@router.get("/rules")
async def list_rules(conn: DbConn, _: AdminKey) -> RuleList:
    return RuleList(data=await select_rules(conn))


@router.delete("/rules/{rule_id}", status_code=204, response_class=Response)
async def delete_rule_route(rule_id: RowId, conn: DbConn, _: AdminKey) -> Response:
    async with conn.transaction():
        deleted = await delete_rule(conn, rule_id=rule_id)
    if not deleted:
        raise NotFound(f"Rule {rule_id} does not exist.")
    return Response(status_code=204)
