-- The append-only audit trail of runs: every transition and every log line.
-- Partitioned by month on created_at so old months are dropped, not deleted.
-- The monthly partitions are made by the scheduler and are not the
-- extension's: a pg_dump of the control plane carries them as tables of
-- their own, keys and all, and restores them in any month (90_dump.sql).

CREATE SEQUENCE ops.run_events_id_seq AS bigint;

-- The rules of an event row, one native check like ops.run_row_is_valid.
CREATE FUNCTION ops.run_event_row_is_valid(kind text, level text, message text, stream text, step text,
                                           to_status text, payload jsonb)
RETURNS boolean LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'odooops_run_event_row_is_valid';
COMMENT ON FUNCTION ops.run_event_row_is_valid IS
  'CHECK of ops.run_events: kind, level, lengths, payload object, to_status exactly on transitions';

CREATE TABLE ops.run_events (
  id          bigint NOT NULL DEFAULT nextval('ops.run_events_id_seq'),
  run_id      bigint NOT NULL,                      -- ops.runs (each partition's key)
  created_at  timestamptz NOT NULL DEFAULT now(),
  attempt     integer NOT NULL DEFAULT 0,
  kind        text NOT NULL,                        -- transition or log
  level       text NOT NULL,                        -- debug, info, notice, warning, error
  message     text NOT NULL,                        -- 1 to 8192 characters
  stream      text,                                 -- stdout, stderr, ... (up to 128)
  step        text,                                 -- workflow step name (up to 128)
  from_status text,
  to_status   text,                                 -- set exactly on transitions
  actor       text,                                 -- worker id or user
  payload     jsonb NOT NULL DEFAULT '{}',          -- an object
  CONSTRAINT run_events_row_is_valid CHECK (ops.run_event_row_is_valid(
    kind, level, message, stream, step, to_status, payload))
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE ops.run_events_id_seq OWNED BY ops.run_events.id;
COMMENT ON TABLE ops.run_events IS 'Append-only log of run transitions and output, partitioned by month';

-- The highest sequence number of a worker's lines stored per run attempt.
-- A worker numbers its lines 1, 2, ... per attempt and sends them in that
-- order, again after a lost acknowledgement; ops.append_events stores only
-- the lines above the mark and moves it in the same transaction, so each
-- line is stored exactly once. A mark rather than a unique index: an index
-- of the partitioned ops.run_events must include created_at, which a line
-- sent again does not share with its first copy; and one row per attempt
-- stays small whatever the volume of output.
CREATE TABLE ops.run_event_marks (
  run_id   bigint NOT NULL REFERENCES ops.runs ON DELETE CASCADE,
  attempt  integer NOT NULL CHECK (attempt >= 1),
  last_seq bigint NOT NULL CHECK (last_seq >= 0),
  PRIMARY KEY (run_id, attempt)
);
COMMENT ON TABLE ops.run_event_marks IS
  'Per run attempt, the last sequence number of the worker''s lines stored in run_events (dedupe of resent batches)';

-- Refuses any change to an append-only table (audit trails). The table is
-- named by the trigger's argument: on a partitioned table TG_TABLE_NAME
-- would name the partition.
CREATE FUNCTION ops.refuse_change() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'OD008',
    MESSAGE = format('ops.%s is append-only', TG_ARGV[0]),
    HINT = 'Old rows are removed by dropping whole partitions, never edited.';
END $$;

CREATE TRIGGER run_events_append_only
  BEFORE UPDATE OR DELETE ON ops.run_events
  FOR EACH ROW EXECUTE FUNCTION ops.refuse_change('run_events');
CREATE TRIGGER run_events_no_truncate
  BEFORE TRUNCATE ON ops.run_events
  FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_change('run_events');

-- Row triggers of the parent reach every partition, statement triggers do
-- not: each partition refuses TRUNCATE itself, so a partition is never
-- emptied, even by the tables' owner, except by dropping it whole
-- (ops.drop_old_run_event_partitions).
CREATE FUNCTION ops._guard_run_event_partition(partition regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('CREATE TRIGGER run_events_no_truncate BEFORE TRUNCATE ON %s '
                 'FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_change(''run_events'')', partition);
END $$;
COMMENT ON FUNCTION ops._guard_run_event_partition IS 'Makes a run_events partition refuse TRUNCATE';

-- Each partition has its own primary key (id, created_at), index on
-- (run_id, id) and reference to ops.runs, none of them the parent's: a key
-- of the parent would be made again by pg_restore when a dumped partition
-- is attached, and the reference of a dumped partition must come after the
-- runs are restored, as its own constraint does. Rows of different
-- partitions differ in created_at, so the keys together are the parent's.
-- No grant: a partition is reached only through its parent.
CREATE FUNCTION ops._key_run_event_partition(partition regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  name text := (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = partition);
BEGIN
  EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (id, created_at)', partition, name || '_pkey');
  EXECUTE format('CREATE INDEX %I ON %s (run_id, id)', name || '_run_id_id_idx', partition);
  EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I FOREIGN KEY (run_id) REFERENCES ops.runs ON DELETE RESTRICT',
                 partition, name || '_run_id_fkey');
  EXECUTE format('REVOKE ALL ON %s FROM odooops_admin', partition);
END $$;
COMMENT ON FUNCTION ops._key_run_event_partition IS
  'Gives a run_events partition its primary key, index and reference to ops.runs, and no grant';

-- Rows that fall outside every monthly partition land here instead of
-- failing; ops.ensure_run_event_partitions() keeps months ahead so it stays empty.
CREATE TABLE ops.run_events_default PARTITION OF ops.run_events DEFAULT;
SELECT ops._guard_run_event_partition('ops.run_events_default'),
       ops._key_run_event_partition('ops.run_events_default');

-- One month's partition, bounded in UTC whatever the session's TimeZone, so
-- partitions made by sessions in different zones never overlap. Rows that
-- landed in the default partition while the month had none (the scheduler
-- was down) move into it: the default partition is detached for the move
-- (which also lifts its append-only trigger, a clone of the parent's) and
-- attached again, all in this transaction. Made by an extension script (an
-- upgrade), the partition leaves the extension: partitions are never the
-- extension's (see above).
CREATE FUNCTION ops.create_run_event_partition(month_start date)
RETURNS boolean LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  name text := 'run_events_' || to_char(month_start, 'YYYY_MM');
  lower_bound text := to_char(date_trunc('month', month_start), 'YYYY-MM-DD') || ' 00:00:00+00';
  upper_bound text := to_char(date_trunc('month', month_start) + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00';
  strays boolean;
  rel regclass;
BEGIN
  IF pg_catalog.to_regclass('ops.' || name) IS NOT NULL THEN
    RETURN false;
  END IF;
  EXECUTE format('SELECT EXISTS (SELECT 1 FROM ops.run_events_default WHERE created_at >= %L AND created_at < %L)',
                 lower_bound, upper_bound) INTO strays;
  IF strays THEN
    ALTER TABLE ops.run_events DETACH PARTITION ops.run_events_default;
  END IF;
  EXECUTE format('CREATE TABLE ops.%I PARTITION OF ops.run_events FOR VALUES FROM (%L) TO (%L)',
                 name, lower_bound, upper_bound);
  rel := format('ops.%I', name)::regclass;
  PERFORM ops._guard_run_event_partition(rel), ops._key_run_event_partition(rel);
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
              WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = rel AND d.deptype = 'e') THEN
    EXECUTE format('ALTER EXTENSION odooops DROP TABLE %s', rel);
  END IF;
  IF strays THEN
    EXECUTE format('INSERT INTO %s SELECT * FROM ops.run_events_default WHERE created_at >= %L AND created_at < %L',
                   rel, lower_bound, upper_bound);
    EXECUTE format('DELETE FROM ops.run_events_default WHERE created_at >= %L AND created_at < %L',
                   lower_bound, upper_bound);
    ALTER TABLE ops.run_events ATTACH PARTITION ops.run_events_default DEFAULT;
  END IF;
  RETURN true;
END $$;
COMMENT ON FUNCTION ops.create_run_event_partition IS
  'Creates the UTC month partition of run_events holding month_start, moving its rows out of the default partition';

-- Creates the monthly partitions from the current month (in UTC) through
-- `months_ahead` months ahead; returns how many it created.
CREATE FUNCTION ops.ensure_run_event_partitions(months_ahead integer DEFAULT 2)
RETURNS integer LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  first_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
  created integer := 0;
BEGIN
  IF months_ahead IS NULL OR months_ahead NOT BETWEEN 0 AND 60 THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004', MESSAGE = 'months_ahead must be between 0 and 60';
  END IF;
  FOR i IN 0..months_ahead LOOP
    IF ops.create_run_event_partition((first_month + make_interval(months => i))::date) THEN
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END $$;
COMMENT ON FUNCTION ops.ensure_run_event_partitions IS
  'Creates the run_events partitions of the current UTC month and months_ahead more; returns how many it created';

-- Drops monthly run_events partitions whose month ended more than
-- `retention_months` months before the current UTC month (0 keeps everything).
-- Returns how many it dropped.
CREATE FUNCTION ops.drop_old_run_event_partitions(retention_months integer)
RETURNS integer LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel record;
  cutoff date;
  dropped integer := 0;
BEGIN
  IF retention_months IS NULL OR retention_months < 0 OR retention_months > 1200 THEN
    PERFORM ops._raise('OD004', 'retention_months must be between 0 and 1200');
  END IF;
  IF retention_months = 0 THEN
    RETURN 0;
  END IF;
  cutoff := (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => retention_months))::date;
  FOR rel IN
    SELECT c.oid, c.relname FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'ops.run_events'::regclass AND c.relname ~ '^run_events_\d{4}_\d{2}$'
       AND to_date(substr(c.relname, 12), 'YYYY_MM') < cutoff
     ORDER BY c.relname
  LOOP
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = rel.oid AND d.deptype = 'e') THEN
      EXECUTE format('ALTER EXTENSION odooops DROP TABLE ops.%I', rel.relname);
    END IF;
    EXECUTE format('DROP TABLE ops.%I', rel.relname);
    dropped := dropped + 1;
  END LOOP;
  RETURN dropped;
END $$;
COMMENT ON FUNCTION ops.drop_old_run_event_partitions IS 'Drops run_events months older than the retention; returns how many';

-- No monthly partition is made here: the scheduler makes them
-- (ops.ensure_run_event_partitions; rows meanwhile wait in the default
-- partition and move into their month when it comes). Made by the install,
-- a partition would be the extension's and named after the install's
-- month: a dump restored in another month would not find it.
