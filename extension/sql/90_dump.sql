-- Extension tables are skipped by pg_dump unless marked: mark every table of
-- the schema (and the events sequence) so a dump of the database keeps the
-- control plane's data. Restored rows do not set off insert triggers again
-- (ops._carried_over). One call per statement: each call updates the same
-- pg_extension row.
DO $$
DECLARE
  rel regclass;
BEGIN
  FOR rel IN
    SELECT c.oid::regclass FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'ops'::regnamespace AND c.relkind IN ('r', 'p', 'S')
       AND c.relname NOT IN ('roles', 'policies')
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
  LOOP
    PERFORM pg_catalog.pg_extension_config_dump(rel, '');
  END LOOP;
  -- The roles and policies that come with the extension are created again
  -- by CREATE EXTENSION when a dump is restored: only the operator's own
  -- rows are data (dumping the shipped ones would make the restore fail on
  -- their keys).
  PERFORM pg_catalog.pg_extension_config_dump('ops.roles', 'WHERE NOT shipped');
  PERFORM pg_catalog.pg_extension_config_dump('ops.policies', 'WHERE NOT shipped');
END $$;
