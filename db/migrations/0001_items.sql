-- Items (tickets and forum posts), their status histories, API keys, embeddings, themes and
-- clustering runs. Work state lives on the rows themselves (pending/enqueued_at/processed_at):
-- the relay claims pending rows and enqueues their ids, so a committed row is never left
-- unprocessed even if Redis was down when it was written.

CREATE TABLE api_key (
    api_key_id  bigserial PRIMARY KEY,
    name        text NOT NULL,
    prefix      text NOT NULL,
    key_hash    bytea NOT NULL,
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CONSTRAINT api_key_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_key_scopes_check CHECK (scopes <@ ARRAY['ingest', 'read', 'admin']::text[])
);

CREATE TABLE theme (
    theme_id                bigserial PRIMARY KEY,
    scope                   text NOT NULL DEFAULT 'all',   -- 'all' items or 'feature' requests
    label                   text NOT NULL,
    keywords                text[] NOT NULL DEFAULT '{}',
    size                    integer NOT NULL DEFAULT 0,
    status                  text NOT NULL DEFAULT 'emerging',
    is_current              boolean NOT NULL DEFAULT true,
    centroid                bytea,
    representative_item_ids bigint[] NOT NULL DEFAULT '{}',
    merged_into             bigint REFERENCES theme (theme_id),
    split_into              bigint[],
    first_seen_at           timestamptz,
    last_seen_at            timestamptz,
    created_run_id          bigint,
    updated_run_id          bigint,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT theme_scope_check CHECK (scope IN ('all', 'feature')),
    CONSTRAINT theme_status_check
        CHECK (status IN ('emerging', 'active', 'fading', 'merged_into', 'split_into'))
);
CREATE INDEX theme_scope_current_idx ON theme (scope, is_current);

CREATE TABLE item (
    item_id            bigserial PRIMARY KEY,
    source             text NOT NULL,
    external_id        text NOT NULL,
    kind               text NOT NULL,
    title              text,
    body               text NOT NULL,
    created_at         timestamptz NOT NULL,
    source_updated_at  timestamptz,
    status             text,
    status_raw         text,
    first_response_at  timestamptz,
    reopens_reported   integer,
    channel            text,
    priority           text,
    product            text,
    tags               text[] NOT NULL DEFAULT '{}',
    requester_id       text,
    votes              integer,
    url                text,
    intent_hint        text,
    payload_hash       bytea NOT NULL,
    deleted_at         timestamptz,   -- deleted in the source system (kept for recovery)
    -- derived from the status history (db/queries/items.py refresh_item_derived)
    first_solved_at    timestamptz,
    last_solved_at     timestamptz,
    reopen_count       integer NOT NULL DEFAULT 0,
    -- derived by the workers
    intent             text,
    intent_confidence  real,
    intent_source      text,
    theme_id           bigint REFERENCES theme (theme_id) ON DELETE SET NULL,
    feature_theme_id   bigint REFERENCES theme (theme_id) ON DELETE SET NULL,
    embedded_at        timestamptz,
    content_hash       bytea,
    clean_text         text,          -- prepared and redacted text (keywords, labels)
    -- work state
    ingested_at        timestamptz NOT NULL DEFAULT now(),
    changed_at         timestamptz NOT NULL DEFAULT now(),
    pending            boolean NOT NULL DEFAULT true,
    enqueued_at        timestamptz,
    processed_at       timestamptz,
    CONSTRAINT item_source_external_id_key UNIQUE (source, external_id),
    CONSTRAINT item_kind_check CHECK (kind IN ('ticket', 'post')),
    CONSTRAINT item_status_check
        CHECK (status IS NULL OR status IN ('new', 'open', 'pending', 'on_hold', 'solved', 'closed')),
    CONSTRAINT item_intent_check
        CHECK (intent IS NULL OR intent IN ('feature_request', 'bug', 'question', 'other'))
);
CREATE INDEX item_pending_idx ON item (item_id) WHERE pending;
CREATE INDEX item_created_at_idx ON item (created_at, item_id);
CREATE INDEX item_theme_created_idx ON item (theme_id, created_at);
CREATE INDEX item_feature_theme_created_idx ON item (feature_theme_id, created_at)
    WHERE feature_theme_id IS NOT NULL;
CREATE INDEX item_first_solved_idx ON item (first_solved_at) WHERE first_solved_at IS NOT NULL;
CREATE INDEX item_last_solved_idx ON item (last_solved_at) WHERE last_solved_at IS NOT NULL;
CREATE INDEX item_intent_created_idx ON item (intent, created_at);
CREATE INDEX item_requester_idx ON item (requester_id) WHERE requester_id IS NOT NULL;

CREATE TABLE status_event (
    item_id          bigint NOT NULL REFERENCES item (item_id) ON DELETE CASCADE,
    at               timestamptz NOT NULL,
    from_status      text,
    to_status        text,
    from_status_raw  text,
    to_status_raw    text NOT NULL,
    CONSTRAINT status_event_key UNIQUE NULLS NOT DISTINCT (item_id, at, from_status_raw, to_status_raw)
);
CREATE INDEX status_event_item_at_idx ON status_event (item_id, at);

CREATE TABLE embedding (
    item_id        bigint NOT NULL REFERENCES item (item_id) ON DELETE CASCADE,
    model_version  text NOT NULL,
    content_hash   bytea NOT NULL,
    vector         bytea NOT NULL,   -- float32 little-endian, L2-normalised
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (item_id, model_version)
);

CREATE TABLE clustering_run (
    run_id       bigserial PRIMARY KEY,
    scope        text NOT NULL DEFAULT 'all',
    status       text NOT NULL DEFAULT 'queued',
    trigger      text NOT NULL DEFAULT 'manual',
    items        integer,
    themes       integer,
    unassigned   integer,
    kept_share   double precision,
    ari          double precision,
    timings      jsonb NOT NULL DEFAULT '{}',
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    CONSTRAINT clustering_run_status_check
        CHECK (status IN ('queued', 'running', 'done', 'failed')),
    CONSTRAINT clustering_run_scope_check CHECK (scope IN ('all', 'feature'))
);
-- At most one queued or running run per scope: the API answers 409 on the second.
CREATE UNIQUE INDEX clustering_run_one_active_idx ON clustering_run (scope)
    WHERE status IN ('queued', 'running');

-- Jobs whose retries ran out, with their error: Postgres is the record, not RQ.
CREATE TABLE job_failure (
    job_failure_id  bigserial PRIMARY KEY,
    job_id          text NOT NULL,
    func_name       text NOT NULL,
    args            jsonb NOT NULL DEFAULT '[]',
    error           text NOT NULL,
    attempts        integer NOT NULL DEFAULT 1,
    failed_at       timestamptz NOT NULL DEFAULT now(),
    replayed_at     timestamptz
);
CREATE INDEX job_failure_failed_at_idx ON job_failure (failed_at);

CREATE TABLE worker_heartbeat (
    worker_name  text PRIMARY KEY,
    seen_at      timestamptz NOT NULL DEFAULT now()
);
