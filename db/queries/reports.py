"""Report statements: theme trends, reopen rate, resolution times, and the per-item export.

Every figure is aggregated in Postgres over the indexed columns (created_at, theme_id,
first_solved_at, last_solved_at); Python only touches the aggregated rows. Deleted items
(`deleted_at IS NOT NULL`) are left out everywhere. Definitions: docs/metrics.md.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from clustering.trends import EMERGING_MAX_AGE, EMERGING_MIN_ITEMS, TRAILING_WEEKS, is_spike
from db.queries.item_reads import ItemFilter, filter_clauses
from db.queries.metrics import (
    PERCENTILES,
    REOPEN_FIGURES,
    REOPEN_WINDOW_COLUMN,
    TICKETS,
    TIME_METRICS,
    bucket_label,
    local_week,
    theme_bucket,
    theme_join,
    theme_key,
    theme_label,
    theme_members,
)
from schemas.reports import (
    EXCLUDED_COUNT,
    GROUP_KEYS,
    FeatureRequestRow,
    GroupBy,
    ItemExportRow,
    ReopenRateRow,
    ResolutionTimeRow,
    ThemeLevel,
    ThemeTrendRow,
    TimeMetric,
    human_duration,
)
from schemas.timezones import monday_of

# Theme volume per (local week, theme) over the window plus the trailing weeks, as a dense grid
# (a shown theme gets a row for every week, zero included) so lag() and the trailing mean see
# the empty weeks too. Weeks are numbered 1..n: `bounds` holds the n + 1 local Monday midnights
# as instants (so a DST week is 167 or 169 hours), and width_bucket() finds an item's week by
# binary search, far cheaper per row than converting each created_at to local time.
# tkey is metrics.theme_bucket: the theme id, 0 for unassigned, -1 for hidden (a row only when
# hidden items are in range).
_THEME_TRENDS = """
WITH bounds AS (
    SELECT array_agg(d AT TIME ZONE $3 ORDER BY d) AS at
    FROM generate_series($1::date::timestamp, $2::date::timestamp, interval '1 week') AS d
), leaf_counts AS (
    SELECT width_bucket(i.created_at, (SELECT at FROM bounds)) AS n, i.theme_id, count(*)::int AS volume
    FROM item i
    WHERE i.created_at >= (SELECT at[1] FROM bounds)
      AND i.created_at < (SELECT at[cardinality(at)] FROM bounds)
      AND i.deleted_at IS NULL
      AND ($4::text IS NULL OR i.source = $4) AND ($5::text IS NULL OR i.kind = $5)
    GROUP BY 1, 2
), counts AS (  -- the level and hidden themes applied to the per-theme counts, not to every item
    SELECT i.n, {bucket} AS tkey, sum(i.volume)::int AS volume
    FROM leaf_counts i {join}
    GROUP BY 1, 2
), shown AS (
    SELECT tkey, row_number() OVER (ORDER BY total DESC, tkey) AS rank
    FROM (SELECT tkey, sum(volume) AS total FROM counts
          WHERE n > $6 AND tkey > 0
          GROUP BY tkey ORDER BY total DESC, tkey LIMIT $7) AS top_themes
    UNION ALL SELECT 0, NULL
    UNION ALL SELECT -1, NULL WHERE EXISTS (SELECT 1 FROM counts WHERE tkey = -1)
), grid AS (
    SELECT w.n, s.tkey, s.rank, coalesce(c.volume, 0) AS volume
    FROM generate_series(1, (SELECT cardinality(at) - 1 FROM bounds)) AS w(n)
    CROSS JOIN shown s
    LEFT JOIN counts c ON c.n = w.n AND c.tkey = s.tkey
), trend AS (
    SELECT n, tkey, rank, volume,
           lag(volume) OVER w AS last_week,
           avg(volume) OVER (w ROWS BETWEEN $6 PRECEDING AND 1 PRECEDING)::float8 AS trailing_mean
    FROM grid WINDOW w AS (PARTITION BY tkey ORDER BY n)
), emerging AS (
    SELECT s.tkey,
           NOT EXISTS (SELECT 1 FROM item i WHERE {members} AND i.created_at <= $9 AND i.deleted_at IS NULL)
           AND (SELECT count(*) FROM item i WHERE {members} AND i.created_at > $9
                AND i.created_at < $8 AND i.deleted_at IS NULL) >= $10 AS is_emerging
    FROM shown s WHERE s.tkey > 0
)
SELECT $1::date + 7 * (tr.n - 1) AS week, CASE WHEN tr.tkey > 0 THEN tr.tkey END AS theme_id,
       {label} AS label, tr.volume, tr.last_week, tr.trailing_mean, coalesce(e.is_emerging, false) AS is_emerging
FROM trend tr
LEFT JOIN theme t ON t.theme_id = tr.tkey
LEFT JOIN emerging e ON e.tkey = tr.tkey
WHERE tr.n > $6
ORDER BY tr.n, tr.rank NULLS LAST, tr.tkey DESC
"""


async def select_theme_trends(
    conn: asyncpg.Connection,
    *,
    first_week: date,
    end_week: date,
    tz: str,
    as_of: datetime,
    source: str | None = None,
    kind: str | None = None,
    top: int | None = None,
    level: ThemeLevel = "leaf",
) -> list[ThemeTrendRow]:
    """Rows per local week in [first_week, end_week) (Mondays) and theme, the top themes first.

    `as_of` is the moment "emerging" is judged at; the trailing weeks before `first_week` are
    read too, for the first week's change and for spikes.
    """
    trailing_start = first_week - timedelta(weeks=TRAILING_WEEKS)
    sql = _THEME_TRENDS.format(
        bucket=theme_bucket(level),
        join=theme_join(),
        members=theme_members(level, "s.tkey"),
        label=bucket_label("tr.tkey", "t.label"),
    )
    rows = await conn.fetch(
        sql,
        trailing_start, end_week, tz, source, kind, TRAILING_WEEKS, top,
        as_of, as_of - EMERGING_MAX_AGE, EMERGING_MIN_ITEMS,
    )  # fmt: skip
    return [
        ThemeTrendRow(
            week=r["week"],
            theme_id=r["theme_id"],
            label=r["label"],
            volume=r["volume"],
            wow_change=(r["volume"] - r["last_week"]) / max(r["last_week"], 1),
            is_spike=is_spike(r["volume"], r["trailing_mean"]),
            is_emerging=r["is_emerging"],
        )
        for r in rows
    ]


# group_by -> (key columns, join, GROUP BY expressions, ORDER BY); whitelisted, never user text.
# Rows come in key order, the null key (unassigned and hidden, no tag, no channel...) last.
def _group(group_by: GroupBy, level: ThemeLevel) -> tuple[str, str, str, str]:
    if group_by == "theme":
        keys = f"{theme_key(level)} AS theme_id, {theme_label(level)} AS label"
        return keys, theme_join(), "1, 2", "1 NULLS LAST, 2"
    if group_by == "tag":
        # A ticket counts once under each of its (distinct) tags; a ticket without tags under null.
        join = "LEFT JOIN LATERAL (SELECT DISTINCT u.tag FROM unnest(i.tags) AS u(tag)) g ON true"
        return "g.tag", join, "g.tag", "1 NULLS LAST"
    return f"i.{group_by}", "", f"i.{group_by}", "1 NULLS LAST"


def _grouped(select: str, where: str, group_by: GroupBy | None, level: ThemeLevel) -> str:
    if group_by is None:
        return f"SELECT {select} FROM item i WHERE {where}"
    keys, join, group, order = _group(group_by, level)
    return f"SELECT {keys}, {select} FROM item i {join} WHERE {where} GROUP BY {group} ORDER BY {order}"


def _keys(row: asyncpg.Record, group_by: GroupBy | None) -> dict[str, Any]:
    return {key: row[key] for key in GROUP_KEYS[group_by]}


async def select_reopen_rates(
    conn: asyncpg.Connection,
    *,
    start_at: datetime,
    end_at: datetime,
    group_by: GroupBy | None = None,
    level: ThemeLevel = "leaf",
) -> list[ReopenRateRow]:
    """Tickets whose first solve falls in [start_at, end_at), and how many of them reopened.

    `reopen_count` is derived on write (db/queries/status.py): reopens in the status history, or
    the source's counter when the item has no history.
    """
    column = REOPEN_WINDOW_COLUMN
    sql = _grouped(REOPEN_FIGURES, f"{TICKETS} AND {column} >= $1 AND {column} < $2", group_by, level)
    rows = await conn.fetch(sql, start_at, end_at)
    return [
        ReopenRateRow(
            **_keys(r, group_by),
            solved=r["solved"],
            reopened=r["reopened"],
            reopen_rate=r["reopened"] / r["solved"] if r["solved"] else None,
            reopens=r["reopens"],
            reopens_per_solved=r["reopens"] / r["solved"] if r["solved"] else None,
        )
        for r in rows
    ]


async def select_resolution_times(
    conn: asyncpg.Connection,
    *,
    metric: TimeMetric,
    start_at: datetime,
    end_at: datetime,
    group_by: GroupBy | None = None,
    level: ThemeLevel = "leaf",
) -> list[ResolutionTimeRow]:
    """Count, median, p90 and mean (seconds, calendar time) of one time metric per group.

    The window selects tickets by creation for first_response and by the (first or last) solve
    for the resolution metrics. Left-out tickets have a NULL duration, which the aggregates skip.
    """
    m = TIME_METRICS[metric]
    sql = _grouped(
        f"count({m.duration}) AS n, {PERCENTILES.format(duration=m.duration)} AS pct,"
        f" avg({m.duration}) AS mean, count(*) FILTER (WHERE {m.excluded}) AS excluded",
        f"{TICKETS} AND {m.column} >= $1 AND {m.column} < $2",
        group_by,
        level,
    )
    rows = await conn.fetch(sql, start_at, end_at)
    excluded_field = EXCLUDED_COUNT[metric]
    result = []
    for r in rows:
        median, p90 = r["pct"] if r["n"] else (None, None)
        row = ResolutionTimeRow(
            **_keys(r, group_by),
            count=r["n"],
            median_s=median,
            p90_s=p90,
            mean_s=r["mean"],
            median_human=human_duration(median),
            p90_human=human_duration(p90),
            mean_human=human_duration(r["mean"]),
            **({excluded_field: r["excluded"]} if excluded_field else {}),
        )
        result.append(row)
    return result


async def select_item_export_rows(
    conn: asyncpg.Connection, *, filters: ItemFilter, after_id: int, limit: int
) -> list[ItemExportRow]:
    """One page of the per-item export in id order (keyset), with the list route's filters."""
    clauses, args = filter_clauses(filters, after_id=after_id, alias="i")
    args.append(limit)
    rows = await conn.fetch(
        "SELECT i.item_id, i.source, i.external_id, i.kind, i.theme_id, t.label AS theme_label, i.intent, i.status,"
        " i.created_at, i.first_response_at, i.first_solved_at, i.last_solved_at, i.reopen_count, i.channel,"
        " i.priority, i.product, i.tags"
        f" FROM item i LEFT JOIN theme t ON t.theme_id = i.theme_id WHERE {' AND '.join(clauses)}"
        f" ORDER BY i.item_id LIMIT ${len(args)}",
        *args,
    )
    return [ItemExportRow(**dict(r)) for r in rows]


# Feature requests per (local) week and feature theme. A requester asking twice in a group
# counts once; items without a requester id count in `count` but not among requesters. The
# theme is metrics.theme_bucket over feature_theme_id: the id, 0 unassigned, -1 hidden.
_FEATURE_REQUESTS = """
SELECT {keys}, count(*) AS count, coalesce(sum(coalesce(i.votes, 0)), 0)::bigint AS votes,
       count(DISTINCT i.requester_id) AS distinct_requesters,
       count(*) FILTER (WHERE i.intent_source = 'model' AND i.intent_confidence < {uncertain}) AS uncertain
FROM item i {join}
WHERE i.intent = 'feature_request' AND i.deleted_at IS NULL AND i.created_at >= $1 AND i.created_at < $2
GROUP BY {group}
"""


async def select_feature_requests(
    conn: asyncpg.Connection,
    *,
    start_at: datetime,
    end_at: datetime,
    tz: str,
    group_by: str,
    top: int | None,
    uncertain_below: float,
    level: ThemeLevel = "leaf",
) -> list[FeatureRequestRow]:
    """Rows per week and/or feature theme. wow_change compares each week with the one before; a
    theme-only row compares the window's last week with the week before it ("is it growing")."""
    by_week, by_theme = "week" in group_by, "theme" in group_by
    week, bucket = local_week("i.created_at", "$3"), theme_bucket(level)
    label = bucket_label(bucket, "lt.label" if level == "leaf" else "coalesce(pt.label, lt.label)")
    join = theme_join("i.feature_theme_id")
    keys = ", ".join(
        ([f"{week} AS week"] if by_week else []) + ([f"{bucket} AS tkey, {label} AS label"] if by_theme else [])
    )
    group = ", ".join(str(n + 1) for n in range(int(by_week) + 2 * int(by_theme)))
    last_week_start = end_at - timedelta(weeks=1)
    # Weekly counts from one week before the window, to compare each week with the previous one.
    weekly = await conn.fetch(
        _FEATURE_REQUESTS.format(
            keys=f"{week} AS week, {bucket} AS tkey", join=join, group="1, 2", uncertain=float(uncertain_below)
        ),
        start_at - timedelta(weeks=1), end_at, tz,
    )  # fmt: skip
    per_week: dict[tuple[date, int], int] = {(r["week"], r["tkey"]): r["count"] for r in weekly}
    week_totals: dict[date, int] = {}
    for (monday, _), count in per_week.items():
        week_totals[monday] = week_totals.get(monday, 0) + count

    def weekly_count(monday: date, tkey: int) -> int:
        return per_week.get((monday, tkey), 0) if by_theme else week_totals.get(monday, 0)

    rows = await conn.fetch(
        _FEATURE_REQUESTS.format(
            keys=keys, join=join if by_theme else "", group=group, uncertain=float(uncertain_below)
        ),
        start_at, end_at, *([tz] if by_week else []),
    )  # fmt: skip
    result = []
    for r in rows:
        tkey = r["tkey"] if by_theme else 0
        if by_week:
            this, prev = weekly_count(r["week"], tkey), weekly_count(r["week"] - timedelta(weeks=1), tkey)
        else:
            last_monday = monday_of(last_week_start.astimezone(ZoneInfo(tz)).date())
            this = per_week.get((last_monday, tkey), 0)
            prev = per_week.get((last_monday - timedelta(weeks=1), tkey), 0)
        fields: dict[str, Any] = {
            "count": r["count"], "votes": r["votes"], "distinct_requesters": r["distinct_requesters"],
            "uncertain": r["uncertain"],
            "wow_change": (this - prev) / max(prev, 1),
        }  # fmt: skip
        if by_week:
            fields["week"] = r["week"]
        if by_theme:
            fields["theme_id"], fields["label"] = (tkey if tkey > 0 else None), r["label"]
        result.append(FeatureRequestRow(**fields))
    if by_week:
        result.sort(key=lambda row: (row.week, -row.count, row.theme_id or 0, row.label or ""))
    else:
        result.sort(key=lambda row: (-row.count, row.theme_id is None, row.theme_id or 0, row.label or ""))
        result = result[:top] if top else result
    return result
