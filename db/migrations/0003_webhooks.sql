-- Webhook connections (one per sender), their signing secrets and the raw deliveries.
--
-- A delivery row is the durable record of one authenticated webhook request: the API answers 2xx
-- only after it is committed, and the relay turns pending rows into RQ jobs (same pattern as
-- item.pending). The unique (connection_id, dedupe_key) absorbs sender retries and concurrent
-- duplicates. Rows are kept: dedupe keys must outlive the senders' replay windows (>= 30 days,
-- reliability.md W6), so nothing here deletes them.

CREATE TABLE connection (
    connection_id  uuid PRIMARY KEY,
    vendor         text NOT NULL,
    name           text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT connection_vendor_check CHECK (vendor IN (
        'zendesk', 'freshdesk', 'jira', 'intercom', 'zammad', 'chatwoot', 'helpscout',
        'discourse', 'github', 'generic'))
);

-- Secrets are needed in clear for HMAC, so they cannot be hashed: each is sealed with
-- AES-256-GCM under a key derived from the server's SECRET_KEY (api/secrets.py), with the
-- connection id as associated data. A database dump holds no usable secret.
-- At most two per connection (rotation); revoking deletes the row.
CREATE TABLE connection_secret (
    connection_secret_id  bigserial PRIMARY KEY,
    connection_id         uuid NOT NULL REFERENCES connection (connection_id) ON DELETE CASCADE,
    sealed                bytea NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX connection_secret_connection_idx ON connection_secret (connection_id, connection_secret_id);

CREATE TABLE delivery (
    delivery_id    bigserial PRIMARY KEY,
    connection_id  uuid NOT NULL REFERENCES connection (connection_id) ON DELETE CASCADE,
    dedupe_key     text NOT NULL,
    headers        jsonb NOT NULL DEFAULT '{}',  -- only the vendor headers parsing needs
    body           bytea NOT NULL,               -- the exact bytes received (NUL, bad UTF-8 survive)
    received_at    timestamptz NOT NULL DEFAULT now(),
    status         text NOT NULL DEFAULT 'pending',
    event_type     text,
    error          text,
    attempts       integer NOT NULL DEFAULT 0,
    items          integer,
    deletes        integer,
    enqueued_at    timestamptz,
    processed_at   timestamptz,
    CONSTRAINT delivery_connection_dedupe_key UNIQUE (connection_id, dedupe_key),
    CONSTRAINT delivery_status_check CHECK (status IN ('pending', 'processed', 'ignored', 'failed'))
);
CREATE INDEX delivery_pending_idx ON delivery (delivery_id) WHERE status = 'pending';
CREATE INDEX delivery_connection_received_idx ON delivery (connection_id, received_at);
