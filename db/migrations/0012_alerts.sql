-- Alerts: where messages go (destinations), which events go where (rules), the detected events
-- (incidents, one per event however many items it holds) and each message of an incident to a
-- destination (incident_delivery, the idempotency record: one row per incident and destination).

CREATE TABLE alert_destination (
    alert_destination_id  bigserial PRIMARY KEY,
    kind                  text NOT NULL,
    name                  text NOT NULL,
    url                   text,                      -- slack, teams, webhook
    email_to              text[] NOT NULL DEFAULT '{}',
    sealed_secret         bytea,                     -- webhook signing secret, sealed (db/sealing.py)
    created_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alert_destination_kind_check CHECK (kind IN ('slack', 'teams', 'webhook', 'email')),
    CONSTRAINT alert_destination_target_check
        CHECK ((kind = 'email') = (url IS NULL) AND (kind <> 'email' OR cardinality(email_to) > 0))
);

CREATE TABLE alert_rule (
    alert_rule_id    bigserial PRIMARY KEY,
    name             text NOT NULL,
    kinds            text[] NOT NULL,
    level            text,                -- 'leaf', 'parent', or null for both
    theme_ids        bigint[] NOT NULL DEFAULT '{}',   -- empty: every theme
    min_volume       integer NOT NULL DEFAULT 0,
    destination_ids  bigint[] NOT NULL,
    quiet_hours      jsonb,               -- {"start": "22:00", "end": "07:00", "tz": "Europe/Berlin"}
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alert_rule_kinds_check CHECK (kinds <@ ARRAY['spike', 'emerging', 'feature_surge']::text[]),
    CONSTRAINT alert_rule_level_check CHECK (level IS NULL OR level IN ('leaf', 'parent'))
);

CREATE TABLE incident (
    incident_id       bigserial PRIMARY KEY,
    dedupe_key        text NOT NULL,      -- kind:theme:level:granularity:start of the event's first window
    kind              text NOT NULL,
    theme_id          bigint NOT NULL REFERENCES theme (theme_id) ON DELETE CASCADE,
    level             text NOT NULL,
    granularity       text NOT NULL,      -- 'day' (trailing 7 days, checked daily), 'week', 'new'
    window_start      timestamptz NOT NULL,
    window_end        timestamptz NOT NULL,
    observed          integer NOT NULL,
    expected          double precision NOT NULL,
    score             double precision NOT NULL,   -- -log10 of the Poisson upper tail
    segments          jsonb NOT NULL DEFAULT '[]',
    example_item_ids  bigint[] NOT NULL DEFAULT '{}',
    status            text NOT NULL DEFAULT 'open',
    detected_at       timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT incident_dedupe_key UNIQUE (dedupe_key),
    CONSTRAINT incident_kind_check CHECK (kind IN ('spike', 'emerging', 'feature_surge')),
    CONSTRAINT incident_level_check CHECK (level IN ('leaf', 'parent')),
    CONSTRAINT incident_status_check CHECK (status IN ('open', 'acknowledged', 'resolved'))
);
CREATE INDEX incident_detected_idx ON incident (detected_at DESC, incident_id DESC);
CREATE INDEX incident_theme_idx ON incident (theme_id, kind, level, granularity, window_end);

-- pending -> sent | dead (retries exhausted: the dead letter). A delivery held by a rule's quiet
-- hours is pending with not_before at their end. The primary key makes a delivery idempotent per
-- incident and destination; enqueued_at lets the schedule re-enqueue one whose job was lost.
CREATE TABLE incident_delivery (
    incident_id           bigint NOT NULL REFERENCES incident (incident_id) ON DELETE CASCADE,
    alert_destination_id  bigint NOT NULL REFERENCES alert_destination (alert_destination_id) ON DELETE CASCADE,
    status                text NOT NULL DEFAULT 'pending',
    attempts              integer NOT NULL DEFAULT 0,
    last_error            text,
    not_before            timestamptz NOT NULL DEFAULT now(),
    enqueued_at           timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    sent_at               timestamptz,
    PRIMARY KEY (incident_id, alert_destination_id),
    CONSTRAINT incident_delivery_status_check CHECK (status IN ('pending', 'sent', 'dead'))
);
CREATE INDEX incident_delivery_open_idx ON incident_delivery (status, not_before) WHERE status <> 'sent';

-- One row per detection run: the schedule reads the last one, the health view shows it.
CREATE TABLE alert_detection (
    alert_detection_id  bigserial PRIMARY KEY,
    trigger             text NOT NULL,
    started_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    opened              integer,
    updated             integer
);
CREATE INDEX alert_detection_started_idx ON alert_detection (started_at);
