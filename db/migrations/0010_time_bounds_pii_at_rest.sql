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

-- 2. Card numbers, IBANs and tokens at rest. New text is masked before it is stored
--    (clustering/redact.py mask_at_rest, on item titles and bodies and on raw webhook bodies);
--    rows stored before are masked here in place: item title, body and clean_text, and the raw
--    delivery bodies (a JSON body string by string, identifier and time fields left alone, as
--    mask_json_at_rest does). The same checks as the Python: Luhn for 13-19 digit cards, the
--    country's length and mod 97 for IBANs, known key shapes for tokens. Two differences: a card
--    glued to a neighbouring number ("qty 2 4111 ...") and an IBAN printed in groups other than
--    four are found by the Python only.

CREATE OR REPLACE FUNCTION pg_temp.is_luhn_valid(digits text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    total int := 0;
    d int;
    n int := length(digits);
BEGIN
    FOR i IN 0 .. n - 1 LOOP
        d := substr(digits, n - i, 1)::int;
        IF i % 2 = 1 THEN
            d := d * 2;
            IF d > 9 THEN d := d - 9; END IF;
        END IF;
        total := total + d;
    END LOOP;
    RETURN total % 10 = 0;
END $$;

CREATE OR REPLACE FUNCTION pg_temp.iban_length(country text) RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT ('{"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
      "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
      "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
      "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
      "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
      "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
      "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
      "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
      "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20}'::jsonb ->> upper(country))::int
$$;

CREATE OR REPLACE FUNCTION pg_temp.is_iban_valid(compact text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    rearranged text := upper(substr(compact, 5) || substr(compact, 1, 4));
    remainder int := 0;
    c text;
    v int;
BEGIN
    FOR i IN 1 .. length(rearranged) LOOP
        c := substr(rearranged, i, 1);
        IF c ~ '[0-9]' THEN
            remainder := (remainder * 10 + c::int) % 97;
        ELSE
            v := ascii(c) - 55;  -- A = 10 ... Z = 35
            remainder := (remainder * 100 + v) % 97;
        END IF;
    END LOOP;
    RETURN remainder = 1;
END $$;

CREATE OR REPLACE FUNCTION pg_temp.mask_at_rest(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    m text[];
    candidate text;
    compact text;
    wanted int;
    taken int;
    cut int;
BEGIN
    IF t IS NULL THEN
        RETURN t;
    END IF;
    -- Tokens: known key shapes, JWTs, PEM private keys, and values after password:/api_key= ...
    t := regexp_replace(t,
        '-----BEGIN ([A-Z]+ )*PRIVATE KEY-----.*?-----END ([A-Z]+ )*PRIVATE KEY-----', '[token]', 'g');
    t := regexp_replace(t,
        '(?<![[:alnum:]_-])(tk_[A-Za-z0-9_-]{32,}|(sk|rk)_(live|test)_[A-Za-z0-9]{16,}'
        '|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|xox[abposr]-[A-Za-z0-9-]{10,}'
        '|(AKIA|ASIA)[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20,}'
        '|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})(?![[:alnum:]_-])',
        '[token]', 'g');
    t := regexp_replace(t,
        '(\m(password|passwd|pwd|passcode|secret|client[_ -]?secret|api[_ -]?key|access[_ -]?key'
        '|access[_ -]?token|auth[_ -]?token|token)\M["'']?\s{0,3}([:=]|\mis\M)\s{0,3}["'']?(bearer\s+)?'
        '|\mbearer\s+)'
        '((?=[^\s"'',;]{0,200}[0-9])[^\s"'',;]{8,200}|[A-Za-z0-9_.=+/-]{24,200})',
        '\1[token]', 'gi');
    -- IBANs before cards: an IBAN's digits can pass Luhn.
    -- The printed forms: compact, or in groups of four (a looser candidate could run on into a
    -- second IBAN and hide it).
    FOR m IN SELECT regexp_matches(t,
            '(?<![[:alnum:]])([A-Za-z]{2}[0-9]{2}[A-Za-z0-9]{11,30}|[A-Za-z]{2}[0-9]{2}( [A-Za-z0-9]{4}){2,7}( [A-Za-z0-9]{1,4})?)',
            'g') LOOP
        candidate := m[1];
        wanted := pg_temp.iban_length(left(candidate, 2));
        CONTINUE WHEN wanted IS NULL;
        compact := replace(candidate, ' ', '');
        CONTINUE WHEN length(compact) < wanted;
        CONTINUE WHEN NOT pg_temp.is_iban_valid(left(compact, wanted));
        taken := 0;
        cut := 0;
        WHILE taken < wanted LOOP
            cut := cut + 1;
            IF substr(candidate, cut, 1) <> ' ' THEN taken := taken + 1; END IF;
        END LOOP;
        t := replace(t, left(candidate, cut), '[iban]');
    END LOOP;
    FOR m IN SELECT regexp_matches(t, '(?<![[:alnum:]_-])([0-9]([ -]?[0-9]){12,40})(?![[:alnum:]_-])', 'g') LOOP
        candidate := m[1];
        compact := regexp_replace(candidate, '[ -]', '', 'g');
        IF length(compact) BETWEEN 13 AND 19 AND pg_temp.is_luhn_valid(compact) THEN
            t := replace(t, candidate, '[card]');
        END IF;
    END LOOP;
    RETURN t;
END $$;

CREATE OR REPLACE FUNCTION pg_temp.mask_json(j jsonb) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    CASE jsonb_typeof(j)
        WHEN 'string' THEN
            RETURN to_jsonb(pg_temp.mask_at_rest(j #>> '{}'));
        WHEN 'array' THEN
            RETURN (SELECT coalesce(jsonb_agg(pg_temp.mask_json(e) ORDER BY n), '[]'::jsonb)
                    FROM jsonb_array_elements(j) WITH ORDINALITY AS a(e, n));
        WHEN 'object' THEN
            RETURN (SELECT coalesce(jsonb_object_agg(k, CASE
                        WHEN k ~ '(^|_|\m)(id|ids|uuid|timestamp|time|date|at|ts)$' OR k ~ '[a-z](Id|Ids|At)$' THEN v
                        ELSE pg_temp.mask_json(v) END), '{}'::jsonb)
                    FROM jsonb_each(j) AS o(k, v));
        ELSE
            RETURN j;
    END CASE;
END $$;

CREATE OR REPLACE FUNCTION pg_temp.mask_delivery_body(body bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    t text;
    j jsonb;
    masked jsonb;
BEGIN
    BEGIN
        t := convert_from(body, 'UTF8');
    EXCEPTION WHEN others THEN
        RETURN body;  -- not UTF-8: kept as received (the API masks new ones before storing)
    END;
    BEGIN
        j := t::jsonb;
    EXCEPTION WHEN others THEN
        RETURN convert_to(pg_temp.mask_at_rest(t), 'UTF8');
    END;
    masked := pg_temp.mask_json(j);
    IF masked = j THEN
        RETURN body;
    END IF;
    RETURN convert_to(masked::text, 'UTF8');
END $$;

UPDATE item
SET title = pg_temp.mask_at_rest(title),
    body = pg_temp.mask_at_rest(body),
    clean_text = pg_temp.mask_at_rest(clean_text)
WHERE pg_temp.mask_at_rest(title) IS DISTINCT FROM title
   OR pg_temp.mask_at_rest(body) IS DISTINCT FROM body
   OR pg_temp.mask_at_rest(clean_text) IS DISTINCT FROM clean_text;

UPDATE delivery
SET body = pg_temp.mask_delivery_body(body)
WHERE pg_temp.mask_delivery_body(body) IS DISTINCT FROM body;
