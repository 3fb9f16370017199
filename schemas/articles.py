"""Help-centre articles (spec/api.md "Reports added"): what knowledge gaps are measured against."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from schemas.items import MAX_BODY_CHARS, clean_str

MAX_BULK_ARTICLES = 1_000


class ArticleCreate(BaseModel):
    """A help-centre article; its `body` must hold text other than whitespace (422)."""

    model_config = ConfigDict(extra="forbid")

    source: Annotated[str, Field(min_length=1, max_length=64)]
    external_id: Annotated[str, Field(min_length=1, max_length=256)]
    title: Annotated[str, Field(min_length=1, max_length=2048)]
    body: str
    url: Annotated[str, Field(max_length=2048)] | None = None
    updated_at: AwareDatetime | None = None

    @field_validator("source", "external_id", "title", "url")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return clean_str(value) if value is not None else None

    @field_validator("body")
    @classmethod
    def _body_not_blank(cls, value: str) -> str:
        value = clean_str(value)
        if not value.strip():
            raise ValueError("an article needs a body: the text is what is matched against themes")
        if len(value) > MAX_BODY_CHARS:
            raise ValueError(f"body is longer than the limit of {MAX_BODY_CHARS} characters")
        return value


class Article(BaseModel):
    article_id: int
    source: str
    external_id: str
    title: str
    url: str | None
    updated_at: datetime | None
    embedded_at: datetime | None
    ingested_at: datetime


class ArticlePage(BaseModel):
    data: list[Article]
    next_cursor: str | None


class ArticleBulkResult(BaseModel):
    accepted: int
    created: int
    updated: int
