-- Customer-experience reports (issue #19): business-hours schedules, the CSAT and effort fields on
-- items, and help-centre articles for knowledge gaps. Definitions: docs/metrics.md.

CREATE TABLE schedule (
    schedule_id  bigserial PRIMARY KEY,
    name         text NOT NULL,
    tz           text NOT NULL,
    hours        jsonb NOT NULL,              -- {"mon": [["09:00", "17:30"]], ...}, checked by the API
    holidays     date[] NOT NULL DEFAULT '{}',
    -- The open intervals 1970-2100 as epoch seconds (api/business_hours.py BusinessClock), made
    -- once when the schedule is created: the reports read them in SQL instead of receiving
    -- three 70,000-element arrays as parameters with every request.
    clock_starts   float8[] NOT NULL,
    clock_lengths  float8[] NOT NULL,
    clock_before   float8[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- All optional: NULL means the source did not say (not "zero").
ALTER TABLE item
    ADD COLUMN csat              smallint,
    ADD COLUMN customer_replies  integer,
    ADD COLUMN agent_replies     integer,
    ADD COLUMN assignee_changes  integer,
    ADD COLUMN language          text,
    ADD CONSTRAINT item_csat_check CHECK (csat IS NULL OR csat BETWEEN 1 AND 5),
    ADD CONSTRAINT item_effort_counters_check CHECK (
        coalesce(customer_replies, 0) >= 0 AND coalesce(agent_replies, 0) >= 0
        AND coalesce(assignee_changes, 0) >= 0);

-- Satisfaction, effort and theme impact read the tickets last solved in a window: the index that
-- already serves full resolution times carries their columns too, so they stay index-only scans.
-- (Replacing the index keeps the number of indexes an insert pays for unchanged.)
DROP INDEX IF EXISTS item_report_last_solved_idx;
CREATE INDEX item_report_last_solved_idx ON item (last_solved_at)
    INCLUDE (created_at, status, kind, theme_id, source, channel, priority, product, tags,
             reopen_count, csat, customer_replies, agent_replies, assignee_changes)
    WHERE deleted_at IS NULL AND last_solved_at IS NOT NULL;

CREATE TABLE article (
    article_id         bigserial PRIMARY KEY,
    source             text NOT NULL,
    external_id        text NOT NULL,
    title              text NOT NULL,
    body               text NOT NULL,
    url                text,
    source_updated_at  timestamptz,
    content_hash       bytea NOT NULL,
    vector             bytea,        -- float32 little-endian, L2-normalised; null until embedded
    model_version      text,
    embedded_at        timestamptz,
    ingested_at        timestamptz NOT NULL DEFAULT now(),
    changed_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT article_source_external_id_key UNIQUE (source, external_id)
);
CREATE INDEX article_unembedded_idx ON article (article_id) WHERE embedded_at IS NULL;
