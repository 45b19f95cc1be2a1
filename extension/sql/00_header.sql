-- odooops schema. Built by concatenating extension/sql/*.sql in name order
-- into odooops--<version>.sql; each file holds one concept.
\echo Use "CREATE EXTENSION odooops" to load this file. \quit

COMMENT ON SCHEMA ops IS 'odooops: Odoo.sh-style control plane (runs, environments, backups, approvals)';

-- Raises an odooops error from SQL with its documented SQLSTATE (docs/errors.md).
CREATE FUNCTION ops._raise(code text, message text, detail text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF detail IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message;
  END IF;
  RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, DETAIL = detail;
END $$;

-- Input limits of the SQL functions (docs/errors.md, "Input limits"): a text
-- over `max_chars` characters (counted as length() and the columns' CHECKs
-- count them) or a JSON value whose text is over `max_bytes` bytes (as the
-- native API measures it) is refused with OD005 naming the argument, before
-- the function does anything else. NULL passes.
CREATE FUNCTION ops._check_length(field text, value text, max_chars integer)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  -- octet_length() reads the header only: most texts are decided without
  -- counting characters.
  IF octet_length(value) > max_chars AND length(value) > max_chars THEN
    RAISE EXCEPTION USING ERRCODE = 'OD005', MESSAGE = field || ' is too long',
      DETAIL = format('%s characters, the limit is %s.', length(value), max_chars);
  END IF;
END $$;
COMMENT ON FUNCTION ops._check_length IS
  'Raises OD005 when a text argument is longer than max_chars characters';

CREATE FUNCTION ops._check_json_size(field text, value jsonb, max_bytes integer)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  bytes integer;
BEGIN
  IF value IS NULL THEN
    RETURN;
  END IF;
  bytes := octet_length(value::text);
  IF bytes > max_bytes THEN
    RAISE EXCEPTION USING ERRCODE = 'OD005', MESSAGE = field || ' is too large',
      DETAIL = format('%s bytes of JSON, the limit is %s.', bytes, max_bytes);
  END IF;
END $$;
COMMENT ON FUNCTION ops._check_json_size IS
  'Raises OD005 when a JSON argument''s text is longer than max_bytes bytes';

-- A row created before the transaction that inserts it was not made by
-- that transaction: pg_restore is bringing it back from a dump of the
-- control plane (90_dump.sql). The triggers that act on new rows (request
-- an approval, send a webhook, compute a schedule's next slot) take such a
-- row as it was; only the extension's functions and its owner insert into
-- those tables, never with a creation time of their choosing.
-- No SET clause, so that it is inlined into the triggers that call it once
-- per row (a SET makes every call a function call with its own GUC
-- switch); every name in it is schema-qualified.
CREATE FUNCTION ops._carried_over(created_at timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT created_at OPERATOR(pg_catalog.<) pg_catalog.now()
$$;
COMMENT ON FUNCTION ops._carried_over IS
  'Whether a row being inserted was created before this transaction (restored from a dump): insert triggers take it as it is';
