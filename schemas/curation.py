"""Curation requests and answers (spec/api.md "Curation")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator
from pydantic.json_schema import SkipJsonSchema

from schemas.patterns import STORABLE_TEXT


def _not_bool(value: Any) -> Any:
    # pydantic reads false as 0.0; a threshold or a group count is never a yes/no.
    if isinstance(value, bool):
        raise ValueError("Expected a number, not a boolean")
    return value


RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]
# Stripped, then not empty and free of NUL: the schema says so with a pattern, because a length
# alone lets a client send "\u000b", which the strip turns into nothing, or "\u0000".
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=STORABLE_TEXT)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000, pattern=STORABLE_TEXT)]
MAX_ITEMS = 1000
CurationAction = Literal["rename", "hide", "unhide", "reparent", "merge", "split", "move", "create", "intent", "undo"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ThemePatch(_Body):
    """Send at least one of `label`, `hidden`, `parent_id`; `version` alone changes nothing (422)."""

    label: Label | SkipJsonSchema[None] = None
    hidden: bool | SkipJsonSchema[None] = None
    parent_id: RowId | None = Field(default=None, description="a current parent theme; null makes it top-level")
    version: int | None = Field(default=None, description="the theme's version you saw; 409 if it has changed")

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not {"label", "hidden", "parent_id"} & self.model_fields_set:
            raise ValueError("Send at least one of label, hidden, parent_id")
        if "label" in self.model_fields_set and self.label is None:
            raise ValueError("label cannot be null")
        if "hidden" in self.model_fields_set and self.hidden is None:
            raise ValueError("hidden cannot be null")
        return self


class ThemeMerge(_Body):
    """The themes in `theme_ids` join `into`; a theme cannot be merged into itself (422)."""

    theme_ids: list[RowId] = Field(min_length=1, max_length=100)
    into: RowId


class SplitPreviewCreate(_Body):
    k: Annotated[int | None, BeforeValidator(_not_bool)] = Field(
        default=None, ge=2, le=12, description="number of groups; chosen by silhouette when absent"
    )


class ThemeSplit(_Body):
    """Send either `preview_id` (apply a stored preview) or `groups`, not both (422).

    `groups` holds two or more lists of item ids; an item can be in one group only (422).
    """

    preview_id: RowId | None = None
    groups: list[Annotated[list[RowId], Field(min_length=1)]] | None = Field(default=None, min_length=2, max_length=12)

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.preview_id is None) == (self.groups is None):
            raise ValueError("Send either preview_id or groups")
        if self.groups is not None:
            if any(not g for g in self.groups):
                raise ValueError("A group cannot be empty")
            flat = [i for g in self.groups for i in g]
            if len(flat) > 100_000:
                raise ValueError("At most 100000 items in groups")
            if len(set(flat)) != len(flat):
                raise ValueError("An item can be in one group only")
        return self


class ThemeItemsAdd(_Body):
    item_ids: list[RowId] = Field(min_length=1, max_length=MAX_ITEMS)


class PersonThemeCreate(_Body):
    label: Label
    description: Text | None = None
    examples: list[Text] = Field(default_factory=list, max_length=50)
    item_ids: list[RowId] = Field(default_factory=list, max_length=MAX_ITEMS)
    scope: Literal["all", "feature"] = "all"
    seed_threshold: Annotated[float | None, BeforeValidator(_not_bool)] = Field(
        default=None, ge=0.0, le=1.0, description="cosine floor for joining; the setting CURATION_SEED_THRESHOLD"
    )


class CuratedTheme(BaseModel):
    theme_id: int
    scope: str
    label: str
    label_pinned: bool
    hidden: bool
    parent_id: int | None
    parent_pinned: bool
    level: str
    origin: str
    status: str
    is_current: bool
    size: int
    version: int


class ThemePatched(BaseModel):
    theme: CuratedTheme
    change_ids: list[int]


class Merged(BaseModel):
    change_id: int
    into: CuratedTheme
    merged: list[int]


class Split(BaseModel):
    change_id: int
    theme_id: int
    split_into: list[CuratedTheme]


class ItemsMoved(BaseModel):
    change_id: int
    theme: CuratedTheme
    moved: int


class Backfill(BaseModel):
    theme_id: int
    status: str
    scanned: int
    total: int | None
    joined: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class PersonThemeCreated(BaseModel):
    change_id: int
    theme_id: int
    label: str
    size: int
    seed_threshold: float
    backfill: Backfill


class ExampleItem(BaseModel):
    item_id: int
    text: str


class SplitPreviewGroup(BaseModel):
    size: int
    label: str
    keywords: list[str]
    examples: list[ExampleItem]


class SplitPreview(BaseModel):
    preview_id: int
    theme_id: int
    k: int
    silhouette: float
    groups: list[SplitPreviewGroup]


class CurationChange(BaseModel):
    change_id: int
    at: datetime
    key_id: int | None
    action: str
    detail: dict[str, Any]
    theme_ids: list[int]
    undone_at: datetime | None


class CurationChangePage(BaseModel):
    data: list[CurationChange]
    next_cursor: str | None


class Undone(BaseModel):
    change_id: int
    undone_change_id: int
    action: str
