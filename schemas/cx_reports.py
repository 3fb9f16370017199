"""Customer-experience report rows: satisfaction, effort, theme impact, knowledge gaps.

Definitions in docs/metrics.md ("Satisfaction and effort", "Impact and knowledge gaps"). Rows hold
the group's key fields (only those of the request's `group_by`, see schemas/reports.py) beside
the figures.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from schemas.reports import GROUP_KEYS, GroupBy, GroupKeys, Report

Hours = Literal["calendar", "business"]

# The knowledge-gap threshold: an article covers a theme when its cosine to the theme's centroid
# reaches this (all-MiniLM-L6-v2 vectors; docs/metrics.md says how it was chosen).
COVERAGE_THRESHOLD = 0.5


class SatisfactionRow(GroupKeys):
    solved: int
    rated: int
    satisfied: int
    csat: float | None
    mean_score: float | None


class EffortRow(GroupKeys):
    tickets: int
    customer_replies_mean: float | None
    agent_replies_mean: float | None
    assignee_changes_mean: float | None
    reopens_mean: float | None
    effort_index: float | None


class ThemeImpactRow(BaseModel):
    theme_id: int | None
    label: str
    volume: int
    share: float
    reopen_rate: float | None
    reopen_rate_others: float | None
    median_resolution_s: float | None
    median_resolution_s_others: float | None
    csat: float | None
    csat_others: float | None
    excess_hours: float | None


class ArticleRef(BaseModel):
    """The article nearest a theme: `id` is its `article_id` (GET /v1/articles)."""

    id: int
    title: str
    url: str | None
    similarity: float


class KnowledgeGapRow(BaseModel):
    theme_id: int
    label: str
    volume: int
    best_article: ArticleRef | None
    covered: bool
    gap_volume: int


SatisfactionReport = Report[SatisfactionRow]
EffortReport = Report[EffortRow]
ThemeImpactReport = Report[ThemeImpactRow]
KnowledgeGapsReport = Report[KnowledgeGapRow]

THEME_IMPACT_COLUMNS = list(ThemeImpactRow.model_fields)


def satisfaction_columns(group_by: GroupBy | None) -> list[str]:
    return [*GROUP_KEYS[group_by], "solved", "rated", "satisfied", "csat", "mean_score"]


def effort_columns(group_by: GroupBy | None) -> list[str]:
    figures = [
        "tickets", "customer_replies_mean", "agent_replies_mean", "assignee_changes_mean", "reopens_mean",
        "effort_index",
    ]  # fmt: skip
    return [*GROUP_KEYS[group_by], *figures]


class KnowledgeGapLine(BaseModel):
    """A knowledge-gap row flattened for CSV and terminal tables."""

    theme_id: int
    label: str
    volume: int
    best_article_id: int | None
    best_article_title: str | None
    similarity: float | None
    covered: bool
    gap_volume: int


def knowledge_gap_line(row: KnowledgeGapRow) -> KnowledgeGapLine:
    best = row.best_article
    return KnowledgeGapLine(
        theme_id=row.theme_id,
        label=row.label,
        volume=row.volume,
        best_article_id=best.id if best else None,
        best_article_title=best.title if best else None,
        similarity=best.similarity if best else None,
        covered=row.covered,
        gap_volume=row.gap_volume,
    )


KNOWLEDGE_GAP_COLUMNS = list(KnowledgeGapLine.model_fields)
