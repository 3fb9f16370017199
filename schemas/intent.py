"""Intent corrections and intent models (spec/api.md, "Curation" and `/v1/intent/models`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from schemas.items import Intent

IntentModelStatus = Literal["queued", "running", "done", "failed", "rejected"]


class ItemIntentUpdate(BaseModel):
    """`PATCH /v1/items/{item_id}`: a person's intent, kept over any model's."""

    model_config = ConfigDict(extra="forbid")

    intent: Intent


class IntentModel(BaseModel):
    """One retrain. `done` models that beat the current one on held-back corrections become
    `current`; `rejected` ones scored worse and `failed` ones broke (`error` says why in both)."""

    model_id: int
    status: IntentModelStatus
    trigger: Literal["manual", "auto"]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: float
    stage: str | None
    corrections_used: int | None
    macro_f1: float | None
    per_class_f1: dict[str, float] | None
    held_back: dict[str, Any] | None
    current: bool
    error: str | None
    model_version: str | None


class IntentModelPage(BaseModel):
    data: list[IntentModel]
    next_cursor: str | None
    default_in_use: bool  # no trained model is current: the shipped model classifies items


class IntentModelCreated(BaseModel):
    model_id: int
