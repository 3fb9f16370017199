-- The theme tree (parent and leaf themes) and a person's curation of it, plus the two new key
-- scopes. Curation is stored as constraints that every later clustering run reads (pinned
-- labels, pinned parents, pinned members, seeded centroids, hidden themes), never as a patch
-- applied after a run, and every change is audited in curation_change with what undoes it.

ALTER TABLE api_key DROP CONSTRAINT api_key_scopes_check;
ALTER TABLE api_key ADD CONSTRAINT api_key_scopes_check
    CHECK (scopes <@ ARRAY['ingest', 'read', 'curate', 'pii', 'admin']::text[]);

ALTER TABLE theme
    ADD COLUMN parent_id      bigint REFERENCES theme (theme_id),
    ADD COLUMN level          text NOT NULL DEFAULT 'leaf',
    ADD COLUMN label_pinned   boolean NOT NULL DEFAULT false,  -- a person named it; runs keep the label
    ADD COLUMN parent_pinned  boolean NOT NULL DEFAULT false,  -- a person chose its parent; runs keep it
    ADD COLUMN hidden         boolean NOT NULL DEFAULT false,  -- out of reports and the dashboard
    ADD COLUMN origin         text NOT NULL DEFAULT 'clustered',
    ADD COLUMN description    text,                            -- a person's theme: what it is about
    ADD COLUMN seed_centroid  bytea,    -- a person's theme: float32 LE, L2-normalised; items near it join
    ADD COLUMN seed_threshold real,     -- cosine floor for joining a seeded theme
    ADD COLUMN version        integer NOT NULL DEFAULT 0,      -- bumped by every curation change (409 on races)
    ADD CONSTRAINT theme_level_check CHECK (level IN ('parent', 'leaf')),
    ADD CONSTRAINT theme_origin_check CHECK (origin IN ('clustered', 'person')),
    ADD CONSTRAINT theme_parent_level_check CHECK (parent_id IS NULL OR level = 'leaf');
CREATE INDEX theme_parent_idx ON theme (parent_id) WHERE parent_id IS NOT NULL;

-- One row per curation decision. `theme_ids` and `item_ids` are what it touched (history and the
-- "a later change depends on it" check of undo); `detail` is what was asked and done (shown in
-- history); `undo` is the state that reverses it. For action 'intent' undo holds
-- {"item_id", "intent", "intent_confidence", "intent_source"} of the item before the change.
CREATE TABLE curation_change (
    change_id       bigserial PRIMARY KEY,
    action          text NOT NULL,
    api_key_id      bigint REFERENCES api_key (api_key_id) ON DELETE SET NULL,  -- null: bootstrap key
    theme_ids       bigint[] NOT NULL DEFAULT '{}',
    item_ids        bigint[] NOT NULL DEFAULT '{}',
    detail          jsonb NOT NULL DEFAULT '{}',
    undo            jsonb NOT NULL DEFAULT '{}',
    at              timestamptz NOT NULL DEFAULT now(),
    undone_at       timestamptz,
    CONSTRAINT curation_change_action_check CHECK (action IN
        ('rename', 'hide', 'unhide', 'reparent', 'merge', 'split', 'move', 'create', 'intent', 'undo'))
);
CREATE INDEX curation_change_theme_ids_idx ON curation_change USING gin (theme_ids);
CREATE INDEX curation_change_item_ids_idx ON curation_change USING gin (item_ids);

-- Pinned members: a person put this item in this theme (move, split, merge, a person's theme).
-- Clustering runs treat pins as must-link (same theme) and cannot-link (different themes).
CREATE TABLE theme_pin (
    item_id    bigint NOT NULL REFERENCES item (item_id) ON DELETE CASCADE,
    scope      text NOT NULL DEFAULT 'all',
    theme_id   bigint NOT NULL REFERENCES theme (theme_id),
    change_id  bigint NOT NULL REFERENCES curation_change (change_id),
    PRIMARY KEY (item_id, scope)
);
CREATE INDEX theme_pin_theme_idx ON theme_pin (theme_id);
CREATE INDEX theme_pin_change_idx ON theme_pin (change_id);
