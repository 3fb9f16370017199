"""Customer-experience reports: satisfaction, effort, theme impact, knowledge gaps, and
business-hours resolution times (docs/metrics.md). The `build_*` functions are shared with the
CLI (`python -m api.cli report ...`) and the dashboard panels."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import numpy as np
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from api.csv_export import CSV_RESPONSE, respond
from api.deps import DbConn, ReadKey
from api.errors import NotFound
from api.routes.reports import From, GroupByParam, To, Tz
from api.windows import Window, parse_window
from db.queries.articles import select_article_vectors
from db.queries.cx_metrics import (
    select_business_times,
    select_effort,
    select_satisfaction,
    select_theme_impact,
    select_theme_volumes,
)
from db.queries.schedules import select_schedule
from schemas.cx_reports import (
    COVERAGE_THRESHOLD,
    KNOWLEDGE_GAP_COLUMNS,
    THEME_IMPACT_COLUMNS,
    ArticleRef,
    EffortReport,
    KnowledgeGapRow,
    KnowledgeGapsReport,
    SatisfactionReport,
    ThemeImpactReport,
    effort_columns,
    knowledge_gap_line,
    satisfaction_columns,
)
from schemas.reports import GroupBy, Report, ResolutionTimesReport, ThemeLevel, TimeMetric

router = APIRouter(prefix="/v1/reports", tags=["reports"])

LevelParam = Annotated[ThemeLevel, Query(description="Themes as leaves (default) or as their parents")]


async def build_business_times(
    conn: asyncpg.Connection,
    *,
    window: Window,
    metric: TimeMetric,
    schedule_id: int,
    group_by: GroupBy | None = None,
    level: ThemeLevel = "leaf",
) -> ResolutionTimesReport:
    schedule = await select_schedule(conn, schedule_id=schedule_id)
    if schedule is None:
        raise NotFound(f"Schedule {schedule_id} does not exist.")
    rows = await select_business_times(
        conn,
        metric=metric,
        start_at=window.start,
        end_at=window.end,
        schedule_id=schedule_id,
        group_by=group_by,
        level=level,
    )
    return ResolutionTimesReport(
        definition=f"{metric}_business", window=window.model(), generated_at=datetime.now(UTC), rows=rows
    )


async def build_satisfaction(
    conn: asyncpg.Connection, *, window: Window, group_by: GroupBy | None = None, level: ThemeLevel = "leaf"
) -> SatisfactionReport:
    rows = await select_satisfaction(conn, start_at=window.start, end_at=window.end, group_by=group_by, level=level)
    return SatisfactionReport(definition="csat", window=window.model(), generated_at=datetime.now(UTC), rows=rows)


async def build_effort(
    conn: asyncpg.Connection, *, window: Window, group_by: GroupBy | None = None, level: ThemeLevel = "leaf"
) -> EffortReport:
    rows = await select_effort(conn, start_at=window.start, end_at=window.end, group_by=group_by, level=level)
    return EffortReport(definition="effort_index", window=window.model(), generated_at=datetime.now(UTC), rows=rows)


async def build_theme_impact(
    conn: asyncpg.Connection, *, window: Window, level: ThemeLevel = "leaf", top: int | None = None
) -> ThemeImpactReport:
    rows = await select_theme_impact(conn, start_at=window.start, end_at=window.end, level=level)
    return ThemeImpactReport(
        definition="theme_impact",
        window=window.model(),
        generated_at=datetime.now(UTC),
        rows=rows[:top] if top else rows,
    )


async def build_knowledge_gaps(
    conn: asyncpg.Connection, *, window: Window, level: ThemeLevel = "leaf", top: int | None = None
) -> KnowledgeGapsReport:
    """Per theme by volume: the article nearest its centroid (cosine), covered when it reaches
    COVERAGE_THRESHOLD; an uncovered theme's volume is its gap volume."""
    themes = await select_theme_volumes(conn, start_at=window.start, end_at=window.end, level=level)
    themes = themes[:top] if top else themes
    refs, vectors = await select_article_vectors(conn)
    # One matrix product for every theme: cosine of each (normalised) centroid to each article.
    usable = [t.centroid is not None and refs and len(t.centroid) == vectors.shape[1] for t in themes]
    nearest: dict[int, tuple[int, float]] = {}
    if any(usable):
        centroids = np.stack(
            [t.centroid for t, ok in zip(themes, usable, strict=True) if ok and t.centroid is not None]
        )
        norms = np.linalg.norm(centroids, axis=1, keepdims=True)
        similarity = (centroids / np.where(norms > 0, norms, 1)) @ vectors.T
        best_n = similarity.argmax(axis=1)
        ids = [t.theme_id for t, ok in zip(themes, usable, strict=True) if ok]
        nearest = {
            tid: (int(n), float(similarity[row, n])) for row, (tid, n) in enumerate(zip(ids, best_n, strict=True))
        }
    rows = []
    for theme in themes:
        best: ArticleRef | None = None
        if theme.theme_id in nearest:
            n, score = nearest[theme.theme_id]
            article_id, title, url = refs[n]
            best = ArticleRef(id=article_id, title=title, url=url, similarity=score)
        covered = best is not None and best.similarity >= COVERAGE_THRESHOLD
        rows.append(
            KnowledgeGapRow(
                theme_id=theme.theme_id,
                label=theme.label,
                volume=theme.volume,
                best_article=best,
                covered=covered,
                gap_volume=0 if covered else theme.volume,
            )
        )
    return KnowledgeGapsReport(
        definition="knowledge_gap", window=window.model(), generated_at=datetime.now(UTC), rows=rows
    )


Top = Annotated[int | None, Query(ge=1, le=1000, description="Keep the first N rows")]


@router.get("/satisfaction", response_model=SatisfactionReport, responses=CSV_RESPONSE)
async def get_satisfaction(
    request: Request,
    conn: DbConn,
    _: ReadKey,
    from_: From,
    to: To,
    tz: Tz = "UTC",
    group_by: GroupByParam = None,
    level: LevelParam = "leaf",
) -> Response:
    """CSAT (rated 4 or 5 / rated) and the mean score of the tickets last solved in the window."""
    return await _answer(request, conn, "satisfaction", parse_window(from_, to, tz), group_by=group_by, level=level)


@router.get("/effort", response_model=EffortReport, responses=CSV_RESPONSE)
async def get_effort(
    request: Request,
    conn: DbConn,
    _: ReadKey,
    from_: From,
    to: To,
    tz: Tz = "UTC",
    group_by: GroupByParam = None,
    level: LevelParam = "leaf",
) -> Response:
    """Customer effort per ticket last solved in the window: replies, reopens, reassignments, and
    the effort index (customer replies + 2 x reopens + assignee changes)."""
    return await _answer(request, conn, "effort", parse_window(from_, to, tz), group_by=group_by, level=level)


@router.get("/theme-impact", response_model=ThemeImpactReport, responses=CSV_RESPONSE)
async def get_theme_impact(
    request: Request,
    conn: DbConn,
    _: ReadKey,
    from_: From,
    to: To,
    tz: Tz = "UTC",
    level: LevelParam = "leaf",
    top: Top = None,
) -> Response:
    """Each theme against all other tickets last solved in the window, ranked by excess hours
    ("what to fix first")."""
    return await _answer(request, conn, "theme-impact", parse_window(from_, to, tz), level=level, top=top)


@router.get("/knowledge-gaps", response_model=KnowledgeGapsReport, responses=CSV_RESPONSE)
async def get_knowledge_gaps(
    request: Request,
    conn: DbConn,
    _: ReadKey,
    from_: From,
    to: To,
    tz: Tz = "UTC",
    level: LevelParam = "leaf",
    top: Top = None,
) -> Response:
    """Themes by volume (items created in the window) with the nearest help-centre article."""
    return await _answer(request, conn, "knowledge-gaps", parse_window(from_, to, tz), level=level, top=top)


CX_REPORTS = ("satisfaction", "effort", "theme-impact", "knowledge-gaps")


async def build_cx_report(
    conn: asyncpg.Connection,
    name: str,
    window: Window,
    *,
    group_by: GroupBy | None = None,
    level: ThemeLevel = "leaf",
    top: int | None = None,
) -> tuple[Report[Any], list[BaseModel], list[str]]:
    """One of CX_REPORTS for the routes and the CLI: the report, its table rows and their columns."""
    if name == "satisfaction":
        sat = await build_satisfaction(conn, window=window, group_by=group_by, level=level)
        return sat, list(sat.rows), satisfaction_columns(group_by)
    if name == "effort":
        effort = await build_effort(conn, window=window, group_by=group_by, level=level)
        return effort, list(effort.rows), effort_columns(group_by)
    if name == "theme-impact":
        impact = await build_theme_impact(conn, window=window, level=level, top=top)
        return impact, list(impact.rows), THEME_IMPACT_COLUMNS
    gaps = await build_knowledge_gaps(conn, window=window, level=level, top=top)
    # CSV is flat: the best article's fields inline.
    return gaps, [knowledge_gap_line(r) for r in gaps.rows], KNOWLEDGE_GAP_COLUMNS


async def _answer(
    request: Request,
    conn: asyncpg.Connection,
    name: str,
    window: Window,
    *,
    group_by: GroupBy | None = None,
    level: ThemeLevel = "leaf",
    top: int | None = None,
) -> Response:
    report, rows, columns = await build_cx_report(conn, name, window, group_by=group_by, level=level, top=top)
    return respond(request, report, rows, columns, name)
