-- Covering indexes for the reports (db/queries/reports.py). Each report reads a time range of
-- items (created, first solved, last solved) and only a handful of narrow columns; carrying
-- those columns in the index lets Postgres answer from the index alone (an index-only scan)
-- instead of visiting the wide item rows with their bodies. At a million items this took the
-- 12-week theme trend from a sequential scan to a range scan of the index.
-- Index-only scans rely on the visibility map: autovacuum keeps it current.

-- theme trends (theme_id, kind, source) and first response times (the rest)
CREATE INDEX item_report_created_idx ON item (created_at)
    INCLUDE (theme_id, kind, source, first_response_at, channel, priority, product, tags)
    WHERE deleted_at IS NULL;

-- reopen rate and first resolution times
CREATE INDEX item_report_first_solved_idx ON item (first_solved_at)
    INCLUDE (created_at, reopen_count, kind, theme_id, source, channel, priority, product, tags)
    WHERE deleted_at IS NULL AND first_solved_at IS NOT NULL;

-- full resolution times
CREATE INDEX item_report_last_solved_idx ON item (last_solved_at)
    INCLUDE (created_at, status, kind, theme_id, source, channel, priority, product, tags)
    WHERE deleted_at IS NULL AND last_solved_at IS NOT NULL;
