-- Dashboard sign-in sessions. The browser holds a random token; only its SHA-256 is stored, with
-- the API key it was opened with. Every page load joins the key, so revoking the key ends its
-- sessions at once. Sessions opened with the bootstrap ADMIN_API_KEY (which has no api_key row)
-- keep a hash of that key instead, so changing ADMIN_API_KEY ends them too.

CREATE TABLE dashboard_session (
    dashboard_session_id  bigserial PRIMARY KEY,
    token_hash            bytea NOT NULL,
    api_key_id            bigint REFERENCES api_key (api_key_id) ON DELETE CASCADE,
    bootstrap_key_hash    bytea,
    created_at            timestamptz NOT NULL DEFAULT now(),
    expires_at            timestamptz NOT NULL,
    CONSTRAINT dashboard_session_token_hash_key UNIQUE (token_hash),
    CONSTRAINT dashboard_session_key_check CHECK ((api_key_id IS NULL) <> (bootstrap_key_hash IS NULL))
);
CREATE INDEX dashboard_session_expires_at_idx ON dashboard_session (expires_at);
CREATE INDEX dashboard_session_api_key_idx ON dashboard_session (api_key_id);
