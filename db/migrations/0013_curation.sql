-- What curation needs beyond 0008: split previews kept in Postgres (API processes are
-- stateless, so the preview a person looked at must be found by any process that applies it),
-- and the progress of a person's theme back-fill, a background job over every past item.

CREATE TABLE split_preview (
    preview_id     bigserial PRIMARY KEY,
    theme_id       bigint NOT NULL REFERENCES theme (theme_id) ON DELETE CASCADE,
    theme_version  integer NOT NULL,        -- applying it after the theme changed is a 409
    api_key_id     bigint REFERENCES api_key (api_key_id) ON DELETE SET NULL,
    k              integer NOT NULL,
    groups         jsonb NOT NULL,          -- [{"item_ids", "label", "keywords", "centroid"}]
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX split_preview_theme_idx ON split_preview (theme_id);
CREATE INDEX split_preview_created_idx ON split_preview (created_at);

-- One row per person's theme: the back-fill job's state and progress (items scanned of total).
CREATE TABLE theme_backfill (
    theme_id     bigint PRIMARY KEY REFERENCES theme (theme_id) ON DELETE CASCADE,
    change_id    bigint NOT NULL REFERENCES curation_change (change_id),
    status       text NOT NULL DEFAULT 'queued',
    scanned      integer NOT NULL DEFAULT 0,
    total        integer,
    joined       integer NOT NULL DEFAULT 0,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    CONSTRAINT theme_backfill_status_check CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled'))
);
