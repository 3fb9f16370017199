-- Reports reused while they are fresh enough (api/report_cache.py). A report over millions of
-- items costs Postgres seconds; read twenty times a second it would take every core. A report that
-- took at least REPORT_REUSE_MIN_MS is kept here and served again for a time proportional to its
-- cost, so each distinct report costs Postgres a bounded share of a core. `version` names the
-- curation, clustering and intent state it was built on: a change to any of them is seen at once.
-- UNLOGGED: a cache, rebuilt on demand; a crash may empty it and lose nothing.
CREATE UNLOGGED TABLE report_cache (
    key              text PRIMARY KEY,           -- sha256 of the path and its sorted query
    version          text NOT NULL,
    body             text NOT NULL,              -- the report as JSON
    computed_at      timestamptz NOT NULL,
    cost_ms          real NOT NULL,
    refreshing_until timestamptz                 -- one reader rebuilds; the others serve the body
);
CREATE INDEX report_cache_computed_idx ON report_cache (computed_at);
