"""Send one incident message to one destination, through the SSRF guard; never raises.

Used by the delivery job (workers/alerts.py) and, synchronously, by the API's test-message route.
E-mail goes to the operator's SMTP server (SMTP_HOST, a setting, not a URL anyone can enter
through the API), with the same 5 s timeout.
"""

from __future__ import annotations

import json
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

from standardwebhooks import Webhook

from outbound.guard import TIMEOUT_S, Outbound, OutboundError, Refused
from outbound.messages import IncidentMessage, email_message, slack_blocks, teams_card, webhook_event
from schemas.settings import Settings


@dataclass(frozen=True)
class Destination:
    """A destination as a sender needs it, with its signing secret unsealed (webhooks only)."""

    destination_id: int
    kind: str
    url: str | None
    email_to: list[str]
    secret: str | None = None


@dataclass(frozen=True)
class Outcome:
    is_sent: bool
    http_status: int | None = None
    error: str | None = None


def outbound_for(settings: Settings) -> Outbound:
    return Outbound(allowed_hosts=frozenset(settings.outbound_allowed_hosts))


def send(dest: Destination, msg: IncidentMessage, *, settings: Settings, message_id: str) -> Outcome:
    """Deliver; `message_id` is the webhook-id a receiver dedupes on (stable across retries)."""
    if dest.kind == "email":
        return _send_email(dest, msg, settings)
    assert dest.url is not None
    headers = {"Content-Type": "application/json", "User-Agent": "ticket-themes-alerts/1"}
    if dest.kind == "slack":
        payload = slack_blocks(msg)
    elif dest.kind == "teams":
        payload = teams_card(msg)
    else:
        payload = webhook_event(msg)
    body = json.dumps(payload, separators=(",", ":"))
    if dest.kind == "webhook":
        if not dest.secret:
            return Outcome(False, error="the destination has no signing secret")
        now = datetime.now(UTC)
        headers["webhook-id"] = message_id
        headers["webhook-timestamp"] = str(int(now.timestamp()))
        headers["webhook-signature"] = Webhook(dest.secret).sign(message_id, now, body)
    try:
        response = outbound_for(settings).post(dest.url, body.encode(), headers)
    except Refused as exc:
        return Outcome(False, error=f"refused: {exc.reason}")
    except OutboundError as exc:
        return Outcome(False, error=str(exc))
    if response.is_success:
        return Outcome(True, http_status=response.status)
    snippet = response.body[:200].decode("utf-8", "replace")
    return Outcome(False, http_status=response.status, error=f"HTTP {response.status}: {snippet}")


def _send_email(dest: Destination, msg: IncidentMessage, settings: Settings) -> Outcome:
    if not settings.smtp_host:
        return Outcome(False, error="SMTP_HOST is not configured")
    email = email_message(msg, sender=settings.smtp_from, to=dest.email_to)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_S) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user and settings.smtp_password:
                smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            refused = smtp.send_message(email)
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome(False, error=f"SMTP: {type(exc).__name__}: {exc}")
    if refused:
        return Outcome(False, error=f"SMTP refused {sorted(refused)}")
    return Outcome(True)
