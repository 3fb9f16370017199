-- History imports from vendor APIs, one row per (vendor, account). The cursor says where the next
-- page starts, and is committed in the same transaction as that page's items, so a crash or a
-- revoked token resumes from the last page written: nothing lost, nothing twice. The reconciler
-- re-pulls the last hours of each row marked `reconcile` and counts what the webhooks had missed.
CREATE TABLE import_state (
    import_id          bigserial PRIMARY KEY,
    vendor             text NOT NULL,
    account            text NOT NULL,          -- base URL, or owner/repo for GitHub
    since              timestamptz NOT NULL,
    cursor             jsonb,                  -- null: start from `since`
    status             text NOT NULL DEFAULT 'idle',
    reconcile          boolean NOT NULL DEFAULT false,
    pages              bigint NOT NULL DEFAULT 0,
    items_seen         bigint NOT NULL DEFAULT 0,
    items_created      bigint NOT NULL DEFAULT 0,
    items_updated      bigint NOT NULL DEFAULT 0,
    last_error         text,
    started_at         timestamptz,
    finished_at        timestamptz,
    reconciled_at      timestamptz,
    reconcile_runs     bigint NOT NULL DEFAULT 0,
    reconcile_missed   bigint NOT NULL DEFAULT 0,  -- items the webhooks never delivered
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT import_state_account_key UNIQUE (vendor, account),
    CONSTRAINT import_state_status_check CHECK (status IN ('idle', 'running', 'done', 'failed'))
);
