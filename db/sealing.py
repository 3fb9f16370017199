"""Secrets at rest: sealed with AES-256-GCM under a key derived from the server's SECRET_KEY.

Each sealed value is `version (1 byte) || nonce (12 bytes) || ciphertext+tag`, with the owning
row's identity as associated data, so a sealed secret copied onto another row does not open.
Webhook connection secrets (api/secrets.py) and alert destination secrets (workers sign with them)
both live here; this module imports no web framework so the workers can open what they need.
"""

from __future__ import annotations

import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_NONCE_BYTES = 12
_INFO = b"ticket-themes connection-secret v1"


class SecretUnreadable(Exception):
    """A sealed secret does not open: SECRET_KEY changed, or the row was tampered with."""


@lru_cache(maxsize=4)
def _aead(secret_key: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret_key.encode())
    return AESGCM(key)


def seal_secret(secret_key: str, *, owner: bytes, secret: str) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return _VERSION + nonce + _aead(secret_key).encrypt(nonce, secret.encode(), _VERSION + owner)


def unseal_secret(secret_key: str, *, owner: bytes, sealed: bytes) -> str:
    if sealed[:1] != _VERSION:
        raise SecretUnreadable(f"unknown sealed-secret version {sealed[:1]!r}")
    nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        return _aead(secret_key).decrypt(nonce, ciphertext, _VERSION + owner).decode()
    except InvalidTag:
        raise SecretUnreadable("sealed secret does not open with the configured SECRET_KEY") from None


def destination_owner(alert_destination_id: int) -> bytes:
    """Associated data of an alert destination's secret (never equal to a 16-byte connection UUID)."""
    return b"alert-destination:" + alert_destination_id.to_bytes(8, "big")
