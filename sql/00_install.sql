-- Installing odooops creates the ops schema with every table the design names.
CREATE EXTENSION odooops;

SELECT extversion FROM pg_extension WHERE extname = 'odooops';

SELECT c.relname, c.relkind
  FROM pg_class c
 WHERE c.relnamespace = 'ops'::regnamespace AND c.relkind IN ('r', 'p')
   AND c.relname NOT LIKE 'run\_events\_%'
 ORDER BY c.relname;

-- run_events has no monthly partition yet: the scheduler makes them
-- (ops.ensure_run_event_partitions), as tables of their own, not the extension's.
SELECT count(*) AS monthly_partitions
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'ops.run_events'::regclass AND c.relname ~ '^run_events_\d{4}_\d{2}$';

-- Every table's data is kept by pg_dump.
SELECT count(*) FILTER (WHERE NOT c.oid = ANY (e.extconfig)) AS tables_not_dumped
  FROM pg_extension e, pg_class c
 WHERE e.extname = 'odooops' AND c.relnamespace = 'ops'::regnamespace AND c.relkind IN ('r', 'p');

SELECT name, rank FROM ops.roles ORDER BY rank DESC;
