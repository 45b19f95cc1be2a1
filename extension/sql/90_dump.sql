-- Extension tables are skipped by pg_dump unless marked: mark every table of
-- the schema (and the events sequence) so a dump of the database keeps the
-- control plane's data. One call per statement: each call updates the same
-- pg_extension row.
DO $$
DECLARE
  rel regclass;
BEGIN
  FOR rel IN
    SELECT c.oid::regclass FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'ops'::regnamespace AND c.relkind IN ('r', 'p', 'S')
       AND c.relname <> 'roles'
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
  LOOP
    PERFORM pg_catalog.pg_extension_config_dump(rel, '');
  END LOOP;
  -- The built-in roles come with the extension; only added roles are data.
  PERFORM pg_catalog.pg_extension_config_dump('ops.roles', 'WHERE rank NOT IN (100, 80, 50, 20, 10)');
END $$;
