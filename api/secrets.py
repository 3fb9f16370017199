"""Connection secrets: generation, and sealing at rest (the AES-256-GCM core is db/sealing.py).

Webhook secrets must be usable as HMAC keys, so unlike API keys they cannot be stored as hashes.
The connection id is the associated data, so a sealed secret copied onto another connection does
not open.
"""

from __future__ import annotations

import base64
import secrets
from uuid import UUID

from pydantic import SecretStr

from api.errors import ServiceUnavailable
from db.sealing import SecretUnreadable, seal_secret, unseal_secret

__all__ = ["SECRET_PREFIX", "SecretUnreadable", "new_secret", "require_key", "seal", "unseal"]

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes: the Standard Webhooks form the `generic` vendor needs."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def require_key(secret_key: SecretStr | None) -> str:
    if secret_key is None:
        raise ServiceUnavailable("SECRET_KEY is not configured on the server; webhook connections are unavailable")
    return secret_key.get_secret_value()


def seal(secret_key: SecretStr | None, *, connection_id: UUID, secret: str) -> bytes:
    return seal_secret(require_key(secret_key), owner=connection_id.bytes, secret=secret)


def unseal(secret_key: SecretStr | None, *, connection_id: UUID, sealed: bytes) -> str:
    return unseal_secret(require_key(secret_key), owner=connection_id.bytes, sealed=sealed)
