"""POST /v1/webhooks/{connection_id}: authenticate on the raw bytes, store durably, ack fast.

receive (size capped by BodyLimitMiddleware) → look up the connection → verify the vendor's
signature on the exact bytes → dedupe key → mask cards, IBANs and tokens → one transaction:
INSERT delivery ... ON CONFLICT DO NOTHING + NOTIFY → COMMIT → 202 (new) or 200 (duplicate).
Items are parsed later by the job (workers/deliveries.py), so the ack does not depend on Redis,
workers or the item mapping.
"""

from __future__ import annotations

import logging
import time
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import DbConn, RawBody
from api.errors import BadRequest, NotFound, ServiceUnavailable, Unauthorized, UnsupportedMediaType
from api.secrets import SecretUnreadable, unseal
from clustering.redact import mask_json_at_rest
from connectors import dedupe_key, verify
from connectors.payload import try_decode
from db.queries.connections import select_connection_secrets
from db.queries.deliveries import insert_delivery
from schemas.connections import DeliveryAccepted
from schemas.settings import Settings

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
log = logging.getLogger(__name__)

# The only request headers stored with a delivery: the ones the connectors read when parsing
# (event names, delivery ids, instance URLs) plus two for diagnosis. Signatures, Authorization,
# X-Webhook-Secret and any admin-configured auth header are never stored.
STORED_HEADERS = frozenset(
    {
        "content-type",
        "user-agent",
        "x-zendesk-webhook-id",
        "x-zendesk-webhook-invocation-id",
        "x-zendesk-account-id",
        "x-discourse-instance",
        "x-discourse-event",
        "x-discourse-event-type",
        "x-discourse-event-id",
        "x-github-event",
        "x-github-delivery",
        "x-github-hook-id",
        "x-atlassian-webhook-identifier",
        "x-atlassian-webhook-retry",
        "x-atlassian-webhook-flow",
        "x-zammad-trigger",
        "x-zammad-delivery",
        "x-helpscout-event",
        "x-chatwoot-delivery",
        "webhook-id",
        "webhook-timestamp",
    }
)
_MAX_HEADER_VALUE = 1024


def stored_headers(request: Request) -> dict[str, str]:
    kept = {}
    for name, value in request.headers.items():
        if name in STORED_HEADERS:
            # jsonb refuses NUL; values are diagnostic or short ids, so bound them too.
            kept[name] = value.replace("\x00", "")[:_MAX_HEADER_VALUE]
    return kept


_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": DeliveryAccepted, "description": "Duplicate of a stored delivery; nothing changed"},
    400: {"description": "Authenticated, but the body is not JSON (kept as a failed delivery)"},
    401: {"description": "Signature or shared secret missing or wrong; nothing stored"},
    404: {"description": "No such connection"},
    413: {"description": "Body larger than MAX_WEBHOOK_BYTES"},
    415: {"description": "Authenticated, but a non-JSON content type and body (kept as a failed delivery)"},
    503: {"description": "Database unavailable; retry after Retry-After seconds"},
}


@router.post("/{connection_id}", status_code=202, response_model=DeliveryAccepted, responses=_RESPONSES)
async def receive_webhook(connection_id: str, body: RawBody, conn: DbConn, request: Request) -> JSONResponse:
    """Receive one vendor delivery; 2xx only after it is committed to Postgres."""
    # Not the AppSettings alias: it is a sync dependency, which FastAPI runs in the thread pool,
    # and this is the hottest route.
    settings: Settings = request.state.settings
    try:
        cid = UUID(connection_id)
    except ValueError:
        raise NotFound(f"Connection {connection_id} does not exist.") from None
    found = await select_connection_secrets(conn, connection_id=cid)
    if found is None:
        raise NotFound(f"Connection {connection_id} does not exist.")
    secrets = []
    for sealed in found.sealed:
        try:
            secrets.append(unseal(settings.secret_key, connection_id=cid, sealed=sealed))
        except SecretUnreadable as exc:
            log.error("connection %s: %s", cid, exc)
    if found.sealed and not secrets:
        # Our configuration is wrong, not the sender's request: ask it to come back later.
        raise ServiceUnavailable("The connection's secrets cannot be read with the configured SECRET_KEY")

    checked = verify(found.vendor, request.headers, body, secrets, time.time())
    if not checked.ok:
        log.info("webhook refused for connection %s: %s", cid, checked.reason)
        raise Unauthorized(f"Webhook authentication failed: {checked.reason}")

    is_json, payload = try_decode(body)
    key = dedupe_key(found.vendor, request.headers, body, payload)
    refusal = None if is_json else _refusal(request)
    # One statement, so one transaction: the row, and the NOTIFY that wakes the relays, commit
    # together before we answer.
    stored = await insert_delivery(
        conn,
        connection_id=cid,
        dedupe_key=key,
        headers=stored_headers(request),
        # Cards, IBANs and tokens never reach the table (or a backup of it); the signature was
        # checked on the bytes as sent, and the dedupe key was taken from them above.
        body=mask_json_at_rest(body),
        failed_error=str(refusal.detail) if refusal else None,
    )
    if refusal is not None:
        raise refusal
    accepted = DeliveryAccepted(delivery_id=stored.delivery_id, duplicate=not stored.inserted)
    return JSONResponse(accepted.model_dump(), status_code=202 if stored.inserted else 200)


def _refusal(request: Request) -> BadRequest | UnsupportedMediaType:
    """Every vendor sends JSON: tell a misconfigured sender now (Discourse or Freshdesk set to
    form-encoding, say) rather than acking what can never be mapped."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and "json" not in media:
        return UnsupportedMediaType(f"Webhook bodies must be JSON; got Content-Type {media}")
    return BadRequest("Webhook body is not valid JSON")
