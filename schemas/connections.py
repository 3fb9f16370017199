"""Webhook connection and delivery models (spec/api.md: /v1/connections, /v1/webhooks)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

Vendor = Literal[
    "zendesk", "freshdesk", "jira", "intercom", "zammad", "chatwoot", "helpscout", "discourse", "github", "generic"
]
DeliveryStatus = Literal["pending", "processed", "ignored", "failed"]

# Secrets we accept from the caller: vendors generate some (Zendesk, Intercom's client secret),
# admins type others. Printable ASCII, no spaces, long enough to be worth an HMAC key.
SecretValue = Annotated[str, Field(min_length=16, max_length=512, pattern=r"^[\x21-\x7e]+$")]
# The `generic` vendor signs the Standard Webhooks way, so its secret has that form (422 otherwise).
SECRET_HELP = (
    "Generated (whsec_...) when absent. A generic connection's is whsec_ followed by base64 of at least 16 bytes."
)


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vendor: Vendor
    name: Annotated[str, Field(min_length=1, max_length=200)]
    secret: SecretValue | None = Field(None, description=SECRET_HELP)


class SecretCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: SecretValue | None = Field(None, description=SECRET_HELP)


class SecretInfo(BaseModel):
    """A secret as listed: never its value."""

    secret_id: int
    created_at: datetime


class DeliveryCounts(BaseModel):
    pending: int = 0
    processed: int = 0
    ignored: int = 0
    failed: int = 0


class Connection(BaseModel):
    connection_id: UUID
    vendor: Vendor
    name: str
    webhook_url: str
    created_at: datetime
    secrets: list[SecretInfo]
    last_delivery_at: datetime | None
    deliveries: DeliveryCounts


class ConnectionCreated(BaseModel):
    connection_id: UUID
    vendor: Vendor
    name: str
    webhook_url: str
    created_at: datetime
    secret_id: int
    secret: str  # shown once


class SecretCreated(BaseModel):
    secret_id: int
    created_at: datetime
    secret: str  # shown once
    dropped_secret_ids: list[int]  # the oldest goes when a third would be active


class ConnectionPage(BaseModel):
    data: list[Connection]
    next_cursor: str | None


class DeliveryAccepted(BaseModel):
    delivery_id: int | None  # None only for a duplicate whose row this request could not see yet
    duplicate: bool
