-- The append-only audit trail of runs: every transition and every log line.
-- Partitioned by month on created_at so old months are dropped, not deleted.

CREATE SEQUENCE ops.run_events_id_seq AS bigint;

-- The rules of an event row, one native check like ops.run_row_is_valid.
CREATE FUNCTION ops.run_event_row_is_valid(kind text, level text, message text, stream text, step text,
                                           to_status text, payload jsonb)
RETURNS boolean LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'odooops_run_event_row_is_valid';
COMMENT ON FUNCTION ops.run_event_row_is_valid IS
  'CHECK of ops.run_events: kind, level, lengths, payload object, to_status exactly on transitions';

CREATE TABLE ops.run_events (
  id          bigint NOT NULL DEFAULT nextval('ops.run_events_id_seq'),
  run_id      bigint NOT NULL REFERENCES ops.runs ON DELETE RESTRICT,
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
  PRIMARY KEY (id, created_at),
  CONSTRAINT run_events_row_is_valid CHECK (ops.run_event_row_is_valid(
    kind, level, message, stream, step, to_status, payload))
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE ops.run_events_id_seq OWNED BY ops.run_events.id;
COMMENT ON TABLE ops.run_events IS 'Append-only log of run transitions and output, partitioned by month';

CREATE INDEX run_events_run ON ops.run_events (run_id, id);

-- Rows that fall outside every monthly partition land here instead of
-- failing; ops.ensure_run_event_partitions() keeps months ahead so it stays empty.
CREATE TABLE ops.run_events_default PARTITION OF ops.run_events DEFAULT;

-- Refuses any change to an append-only table (audit trails). The table is
-- named by the trigger's argument: on a partitioned table TG_TABLE_NAME
-- would name the partition.
CREATE FUNCTION ops.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
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

-- Creates the monthly partitions from the current month through
-- `months_ahead` months ahead; returns how many it created.
CREATE FUNCTION ops.ensure_run_event_partitions(months_ahead integer DEFAULT 2)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  first_month date := date_trunc('month', now())::date;
  month date;
  name text;
  created integer := 0;
BEGIN
  IF months_ahead NOT BETWEEN 0 AND 60 THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004', MESSAGE = 'months_ahead must be between 0 and 60';
  END IF;
  FOR i IN 0..months_ahead LOOP
    month := first_month + make_interval(months => i);
    name := 'run_events_' || to_char(month, 'YYYY_MM');
    IF to_regclass('ops.' || name) IS NULL THEN
      EXECUTE format('CREATE TABLE ops.%I PARTITION OF ops.run_events FOR VALUES FROM (%L) TO (%L)',
                     name, month::timestamptz, (month + interval '1 month')::timestamptz);
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END $$;

SELECT ops.ensure_run_event_partitions(2);
