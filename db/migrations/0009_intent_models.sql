-- Intent models trained in this install from the shipped data plus people's corrections
-- (PATCH /v1/items/{id} sets intent_source = 'person'). Postgres is the record: the artefact itself
-- is stored here, so a worker on any host loads the current model from this table, never from a
-- local file. With no current row the shipped default model is in use.

-- The contract calls a model's decision 'model' (it was 'classifier'); 'source' and 'person' stay.
UPDATE item SET intent_source = 'model' WHERE intent_source = 'classifier';

CREATE TABLE intent_model (
    model_id          bigserial PRIMARY KEY,
    status            text NOT NULL DEFAULT 'queued',
    trigger           text NOT NULL DEFAULT 'manual',
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    progress          real NOT NULL DEFAULT 0,       -- 0..1 while running
    stage             text,                          -- what the job is doing now
    corrections_used  integer,
    macro_f1          real,                          -- cross-validated, feature_request/bug/question
    per_class_f1      jsonb,                         -- cross-validated F1 per class
    held_back         jsonb,                         -- candidate vs current on held-back corrections
    current           boolean NOT NULL DEFAULT false,
    error             text,                          -- failed: what went wrong; rejected: why
    model_version     text,
    artefact          bytea,                         -- clustering.intent npz bytes (no pickle)
    CONSTRAINT intent_model_status_check
        CHECK (status IN ('queued', 'running', 'done', 'failed', 'rejected')),
    CONSTRAINT intent_model_trigger_check CHECK (trigger IN ('manual', 'auto')),
    CONSTRAINT intent_model_current_check CHECK (NOT current OR (status = 'done' AND artefact IS NOT NULL))
);
-- One retrain at a time (the second POST gets 409), and at most one current model.
CREATE UNIQUE INDEX intent_model_one_active_idx ON intent_model ((true)) WHERE status IN ('queued', 'running');
CREATE UNIQUE INDEX intent_model_one_current_idx ON intent_model ((true)) WHERE current;

-- Corrections since the last retrain are counted from curation_change (action 'intent').
CREATE INDEX curation_change_intent_at_idx ON curation_change (at) WHERE action = 'intent';
