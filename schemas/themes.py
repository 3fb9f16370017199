"""Theme and clustering-run models (spec/api.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Scope = Literal["all", "feature"]
ThemeStatus = Literal["emerging", "active", "fading", "merged_into", "split_into"]
ThemeLevel = Literal["parent", "leaf"]
RunStatus = Literal["queued", "running", "done", "failed"]


class Theme(BaseModel):
    theme_id: int
    scope: str
    label: str
    keywords: list[str]
    size: int
    status: str
    is_current: bool
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    representative_item_ids: list[int]
    merged_into: int | None
    split_into: list[int] | None
    parent_id: int | None  # null on a top-level theme (a parent, or a leaf without one)
    level: str
    label_pinned: bool
    hidden: bool
    origin: str


class ThemePage(BaseModel):
    data: list[Theme]
    next_cursor: str | None


class WeekVolume(BaseModel):
    week: date
    volume: int


class ThemeBrief(BaseModel):
    theme_id: int
    label: str
    size: int


class ThemeDetail(Theme):
    merged_from: list[int]
    split_from: list[int]
    weekly_volume: list[WeekVolume]
    children: list[ThemeBrief]  # a parent's current leaves
    parent: ThemeBrief | None


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: Scope = "all"


class RunCreated(BaseModel):
    run_id: int


class Run(BaseModel):
    run_id: int
    scope: str
    status: str
    trigger: str
    items: int | None
    themes: int | None
    unassigned: int | None
    kept_share: float | None
    ari: float | None
    timings: dict[str, Any]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunPage(BaseModel):
    data: list[Run]
    next_cursor: str | None
