"""Connection secrets: generation, and sealing at rest with AES-256-GCM.

Webhook secrets must be usable as HMAC keys, so unlike API keys they cannot be stored as hashes.
Each is sealed as `version (1 byte) || nonce (12 bytes) || ciphertext+tag` under a key derived
with HKDF-SHA256 from the server's SECRET_KEY. The connection id is the associated data, so a
sealed secret copied onto another connection does not open.
"""

from __future__ import annotations

import base64
import os
import secrets
from functools import lru_cache
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from api.errors import ServiceUnavailable

SECRET_PREFIX = "whsec_"
_VERSION = b"\x01"
_NONCE_BYTES = 12
_INFO = b"ticket-themes connection-secret v1"


class SecretUnreadable(Exception):
    """A sealed secret does not open: SECRET_KEY changed, or the row was tampered with."""


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes: the Standard Webhooks form the `generic` vendor needs."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@lru_cache(maxsize=4)
def _aead(secret_key: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret_key.encode())
    return AESGCM(key)


def _box(secret_key: SecretStr | None) -> AESGCM:
    if secret_key is None:
        raise ServiceUnavailable("SECRET_KEY is not configured on the server; webhook connections are unavailable")
    return _aead(secret_key.get_secret_value())


def seal(secret_key: SecretStr | None, *, connection_id: UUID, secret: str) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return _VERSION + nonce + _box(secret_key).encrypt(nonce, secret.encode(), _VERSION + connection_id.bytes)


def unseal(secret_key: SecretStr | None, *, connection_id: UUID, sealed: bytes) -> str:
    box = _box(secret_key)
    if sealed[:1] != _VERSION:
        raise SecretUnreadable(f"unknown sealed-secret version {sealed[:1]!r}")
    nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        return box.decrypt(nonce, ciphertext, _VERSION + connection_id.bytes).decode()
    except InvalidTag:
        raise SecretUnreadable("sealed secret does not open with the configured SECRET_KEY") from None
