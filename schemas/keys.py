"""API key models. Scopes: ingest, read, curate, pii, admin (admin implies the others; curate implies
read)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Scope = Literal["ingest", "read", "curate", "pii", "admin"]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=5)]


class ApiKey(BaseModel):
    api_key_id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKey):
    key: str  # shown once


class ApiKeyList(BaseModel):
    data: list[ApiKey]
    next_cursor: str | None = None
