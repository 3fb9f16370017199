"""Authenticate a webhook delivery on its raw bytes (webhooks.md §10, reliability.md W1–W3).

Every scheme recomputes the vendor's HMAC over the exact bytes received and compares with
`hmac.compare_digest` only. Each connection may hold up to two active secrets so they can rotate:
any matching secret passes. Where the vendor signs a time, deliveries more than 300 s from `now`
(either way) are refused.

- zendesk: X-Zendesk-Webhook-Signature = base64(HMAC-SHA256(secret, ts + body)), where ts is
  X-Zendesk-Webhook-Signature-Timestamp (ISO 8601, checked against the window).
- github: X-Hub-Signature-256 = "sha256=" + hex(HMAC-SHA256(secret, body)).
- discourse: X-Discourse-Event-Signature = "sha256=" + hex(HMAC-SHA256(secret, body)).
- intercom: X-Hub-Signature = "sha1=" + hex(HMAC-SHA1(client secret, body)).
- zammad: X-Hub-Signature = "sha1=" + hex(HMAC-SHA1(token, body)); no header: shared secret.
- jira: X-Hub-Signature = "sha256=" + hex(HMAC-SHA256(secret, body)); no header: shared secret.
- helpscout: X-HelpScout-Signature = base64(HMAC-SHA1(secret, body)).
- chatwoot: X-Chatwoot-Signature = "sha256=" + hex(HMAC-SHA256(secret, ts + "." + body)), ts is
  X-Chatwoot-Timestamp (Unix seconds, checked); no signature header: shared secret.
- freshdesk: shared secret only.
- generic (Standard Webhooks): webhook-signature = space-separated "v1,<base64>" entries of
  HMAC-SHA256(base64-decoded part of "whsec_<base64>", id + "." + ts + "." + body), with
  webhook-id and webhook-timestamp (Unix seconds, checked).

Shared secret (vendors with no native signature: Freshdesk always; Jira Server/Data Center,
Zammad without a token, Chatwoot before 4.x): the sender is configured to send the secret we
issued for the connection as a custom header `X-Webhook-Secret: <secret>`, or as
`Authorization: Bearer <secret>`, or as HTTP Basic auth whose user name or password is the secret
(Freshdesk's "API key" option sends `<key>:X`). When a signature header is present it is checked
and the shared-secret headers are not consulted, so a configured signature cannot be bypassed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from connectors.results import Verified
from connectors.timeparse import parse_time

TOLERANCE_S = 300
_MAX_HEADER = 8192  # longer header values are refused before any hashing

Scheme = Callable[[Mapping[str, str], bytes, Sequence[bytes], float], Verified]


def verify(vendor: str, headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float) -> Verified:
    """Check one delivery. `now` is Unix seconds (injected so tests can freeze the clock)."""
    scheme = SCHEMES.get(vendor)
    if scheme is None:
        return Verified(False, f"unknown vendor {vendor!r}")
    keys = [s.encode() for s in secrets if isinstance(s, str) and s]
    if not keys:
        return Verified(False, "no secret configured for this connection")
    lowered = {k.lower(): v for k, v in headers.items() if len(v) <= _MAX_HEADER}
    return scheme(lowered, body, keys, now)


def _equal(expected: str, received: str) -> bool:
    return hmac.compare_digest(expected.encode(), received.encode("utf-8", "replace"))


def _hmac(key: bytes, message: bytes, algorithm: str) -> bytes:
    return hmac.new(key, message, algorithm).digest()


def _prefixed_hex(header: str, algorithm: str) -> Scheme:
    """`<algorithm>=<hex>` in one header (GitHub, Discourse, Intercom, Zammad, Jira)."""
    prefix = f"{algorithm}="

    def check(headers: Mapping[str, str], body: bytes, keys: Sequence[bytes], now: float) -> Verified:
        received = headers.get(header)
        if received is None:
            return Verified(False, f"missing {header} header")
        received = received.strip()
        if not received.startswith(prefix):
            return Verified(False, f"{header} is not of the form {prefix}<hex>")
        digest = received[len(prefix) :].lower()
        for key in keys:
            if _equal(_hmac(key, body, algorithm).hex(), digest):
                return Verified(True)
        return Verified(False, "signature does not match")

    return check


def _or_shared_secret(header: str, signed_scheme: Scheme) -> Scheme:
    """Use the native signature when the sender sent one, else the shared-secret headers."""

    def check(headers: Mapping[str, str], body: bytes, keys: Sequence[bytes], now: float) -> Verified:
        if header in headers:
            return signed_scheme(headers, body, keys, now)
        return _shared_secret(headers, body, keys, now)

    return check


def _shared_secret(headers: Mapping[str, str], body: bytes, keys: Sequence[bytes], now: float) -> Verified:
    candidates = [headers.get("x-webhook-secret", "").strip()]
    scheme, _, credential = headers.get("authorization", "").strip().partition(" ")
    match scheme.lower():
        case "bearer":
            candidates.append(credential.strip())
        case "basic":
            candidates.extend(_basic_parts(credential.strip()))
    candidates = [c for c in candidates if c]
    if not candidates:
        return Verified(False, "missing X-Webhook-Secret or Authorization header")
    for candidate in candidates:
        # Hashing both sides first makes the compare constant-time in the length as well.
        received = hashlib.sha256(candidate.encode("utf-8", "replace")).digest()
        for key in keys:
            if hmac.compare_digest(hashlib.sha256(key).digest(), received):
                return Verified(True)
    return Verified(False, "shared secret does not match")


def _basic_parts(credential: str) -> list[str]:
    try:
        decoded = base64.b64decode(credential, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return []
    user, _, password = decoded.partition(":")
    return [user, password]


def _fresh(timestamp: float | None, now: float) -> Verified | None:
    """None if the signed time is within the window, else the refusal."""
    if timestamp is None:
        return Verified(False, "signature timestamp is not a valid time")
    if abs(now - timestamp) > TOLERANCE_S:
        return Verified(False, f"signature timestamp is more than {TOLERANCE_S} s from now")
    return None


def _unix_seconds(value: str) -> float | None:
    value = value.strip()
    return float(value) if value.isdigit() and len(value) <= 12 else None


def _zendesk(headers: Mapping[str, str], body: bytes, keys: Sequence[bytes], now: float) -> Verified:
    received = headers.get("x-zendesk-webhook-signature")
    stamp = headers.get("x-zendesk-webhook-signature-timestamp")
    if received is None or stamp is None:
        return Verified(False, "missing X-Zendesk-Webhook-Signature or -Timestamp header")
    parsed: datetime | None = parse_time(stamp)
    stale = _fresh(parsed.timestamp() if parsed is not None else None, now)
    if stale is not None:
        return stale
    message = stamp.encode("utf-8", "replace") + body
    for key in keys:
        expected = base64.b64encode(_hmac(key, message, "sha256")).decode()
        if _equal(expected, received.strip()):
            return Verified(True)
    return Verified(False, "signature does not match")


def _helpscout(headers: Mapping[str, str], body: bytes, keys: Sequence[bytes], now: float) -> Verified:
    received = headers.get("x-helpscout-signature")
    if received is None:
        return Verified(False, "missing X-HelpScout-Signature header")
    for key in keys:
        expected = base64.b64encode(_hmac(key, body, "sha1")).decode()
        if _equal(expected, received.strip()):
            return Verified(True)
    return Verified(False, "signature does not match")


def _chatwoot(headers: Mapping[str, str], body: bytes, keys: Sequence[bytes], now: float) -> Verified:
    received = headers.get("x-chatwoot-signature")
    stamp = headers.get("x-chatwoot-timestamp")
    if received is None or stamp is None:
        return Verified(False, "missing X-Chatwoot-Signature or X-Chatwoot-Timestamp header")
    stale = _fresh(_unix_seconds(stamp), now)
    if stale is not None:
        return stale
    received = received.strip()
    if not received.startswith("sha256="):
        return Verified(False, "X-Chatwoot-Signature is not of the form sha256=<hex>")
    message = stamp.strip().encode() + b"." + body
    for key in keys:
        if _equal(_hmac(key, message, "sha256").hex(), received[len("sha256=") :].lower()):
            return Verified(True)
    return Verified(False, "signature does not match")


def standard_webhooks_key(secret: bytes) -> bytes | None:
    """The HMAC key of a Standard Webhooks secret `whsec_<base64>` (None if not base64)."""
    encoded = secret[len(b"whsec_") :] if secret.startswith(b"whsec_") else secret
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _standard(headers: Mapping[str, str], body: bytes, keys: Sequence[bytes], now: float) -> Verified:
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    received = headers.get("webhook-signature")
    if msg_id is None or stamp is None or received is None:
        return Verified(False, "missing webhook-id, webhook-timestamp or webhook-signature header")
    stale = _fresh(_unix_seconds(stamp), now)
    if stale is not None:
        return stale
    message = f"{msg_id}.{stamp.strip()}.".encode("utf-8", "replace") + body
    # Several space-separated `v1,<base64>` entries let the sender sign with old and new secret.
    offered = [e[3:] for e in received.split() if e.startswith("v1,")]
    for key in keys:
        raw_key = standard_webhooks_key(key)
        if raw_key is None:
            continue
        expected = base64.b64encode(_hmac(raw_key, message, "sha256")).decode()
        if any(_equal(expected, signature) for signature in offered):
            return Verified(True)
    return Verified(False, "signature does not match")


SCHEMES: dict[str, Scheme] = {
    "zendesk": _zendesk,
    "github": _prefixed_hex("x-hub-signature-256", "sha256"),
    "discourse": _prefixed_hex("x-discourse-event-signature", "sha256"),
    "intercom": _prefixed_hex("x-hub-signature", "sha1"),
    "zammad": _or_shared_secret("x-hub-signature", _prefixed_hex("x-hub-signature", "sha1")),
    "jira": _or_shared_secret("x-hub-signature", _prefixed_hex("x-hub-signature", "sha256")),
    "helpscout": _helpscout,
    "chatwoot": _or_shared_secret("x-chatwoot-signature", _chatwoot),
    "freshdesk": _shared_secret,
    "generic": _standard,
}
