-- Times outside 1970-01-01..2100-01-01 UTC, and card numbers, IBANs and tokens at rest (#17).
--
-- 1. Times. The API now refuses them (schemas/items.py bounded_time), but rows written before
--    could hold '-infinity' or year 1, which broke every later clustering run. They are clamped
--    into the range: clamping is monotone, so the order of an item's events, and the derived
--    first/last solved times computed from them, stay as they were. Two events of one item that
--    clamp onto the same instant would collide on status_event_key; the out-of-range one goes.
--    CHECK constraints then keep the range for every writer.

-- NULL stays NULL (greatest/least would turn it into a bound).
CREATE OR REPLACE FUNCTION pg_temp.clamp_time(t timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN t < '1970-01-01T00:00:00Z' THEN '1970-01-01T00:00:00Z'::timestamptz
                WHEN t > '2100-01-01T00:00:00Z' THEN '2100-01-01T00:00:00Z'::timestamptz
                ELSE t END
$$;

DELETE FROM status_event e
USING (
    SELECT ctid AS row_ctid,
           row_number() OVER (
               PARTITION BY item_id,
                            pg_temp.clamp_time(at),
                            from_status_raw, to_status_raw
               ORDER BY (at BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z') DESC, at
           ) AS n
    FROM status_event
    WHERE item_id IN (
        SELECT item_id FROM status_event
        WHERE at NOT BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z'
    )
) d
WHERE e.ctid = d.row_ctid AND d.n > 1;

UPDATE status_event
SET at = pg_temp.clamp_time(at)
WHERE at NOT BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z';

UPDATE item
SET created_at = pg_temp.clamp_time(created_at),
    source_updated_at = pg_temp.clamp_time(source_updated_at),
    first_response_at = pg_temp.clamp_time(first_response_at),
    first_solved_at = pg_temp.clamp_time(first_solved_at),
    last_solved_at = pg_temp.clamp_time(last_solved_at),
    changed_at = now(),
    pending = true
WHERE created_at NOT BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z'
   OR source_updated_at NOT BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z'
   OR first_response_at NOT BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z'
   OR first_solved_at NOT BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z'
   OR last_solved_at NOT BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z';

-- A theme's first/last seen times come from its items' times.
UPDATE theme
SET first_seen_at = pg_temp.clamp_time(first_seen_at),
    last_seen_at = pg_temp.clamp_time(last_seen_at)
WHERE first_seen_at NOT BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z'
   OR last_seen_at NOT BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z';

ALTER TABLE item
    ADD CONSTRAINT item_times_range_check CHECK (
        created_at BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z'
        AND (source_updated_at IS NULL OR source_updated_at BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z')
        AND (first_response_at IS NULL OR first_response_at BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z')
        AND (first_solved_at IS NULL OR first_solved_at BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z')
        AND (last_solved_at IS NULL OR last_solved_at BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z')
    );
ALTER TABLE status_event
    ADD CONSTRAINT status_event_at_range_check CHECK (at BETWEEN '1970-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z');
