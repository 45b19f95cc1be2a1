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
