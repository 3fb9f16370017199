-- Every index on item costs every insert; bulk ingest paid for three that a new row never needs.
--
-- item_created_at_idx: created_at ranges are served by item_report_created_idx (0002), which
-- covers every row that is not deleted, and that is all any reader asks for.
DROP INDEX IF EXISTS item_created_at_idx;

-- A new item has no theme and no intent yet; readers only ask for a given theme or intent. Partial
-- indexes leave the new rows out until a worker fills those fields in.
DROP INDEX IF EXISTS item_theme_created_idx;
CREATE INDEX item_theme_created_idx ON item (theme_id, created_at) WHERE theme_id IS NOT NULL;
DROP INDEX IF EXISTS item_intent_created_idx;
CREATE INDEX item_intent_created_idx ON item (intent, created_at) WHERE intent IS NOT NULL;

-- status_event_key (item_id, at, ...) already orders an item's events by time.
DROP INDEX IF EXISTS status_event_item_at_idx;
