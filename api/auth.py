"""Bearer API keys: generation, hashing and the scope check."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_PREFIX = "tk_"


@dataclass(frozen=True)
class Principal:
    api_key_id: int | None  # None for the bootstrap key from ADMIN_API_KEY
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        """admin implies every scope; curate implies read."""
        return "admin" in self.scopes or scope in self.scopes or (scope == "read" and "curate" in self.scopes)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def is_bootstrap_key(presented: str, bootstrap: str | None) -> bool:
    if not bootstrap:
        return False
    return hmac.compare_digest(hash_key(presented), hash_key(bootstrap))
