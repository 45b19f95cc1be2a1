-- Scheduled backups: cron schedules per environment, fired exactly once per
-- slot. The scheduler background worker (bgworker/scheduler.cpp) calls these
-- functions, and those of retention (71_retention.sql) and run_events
-- partition upkeep (31_run_events.sql), each in a short transaction of its
-- own; they are plain SQL functions so tests and admins can call them too.
-- Cron expressions: extension/core/cron.h (UTC; 5 fields, or 6 with seconds).

-- The next slot of a cron expression strictly after `after` (UTC); NULL
-- when it never fires. A malformed expression raises OD004 naming the field.
CREATE FUNCTION ops.cron_next(expression text, after timestamptz DEFAULT now())
RETURNS timestamptz LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'odooops_cron_next';
COMMENT ON FUNCTION ops.cron_next IS 'Next slot of a cron expression after a time, in UTC; OD004 on a malformed expression';

-- Wakes the scheduler / dispatcher background worker when the calling
-- transaction commits (no effect if it aborts, or without the workers).
CREATE FUNCTION ops._wake_scheduler() RETURNS void LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_wake_scheduler';
CREATE FUNCTION ops._wake_dispatcher() RETURNS void LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_wake_dispatcher';

CREATE TABLE ops.backup_schedules (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  environment_id bigint NOT NULL REFERENCES ops.environments ON DELETE CASCADE,
  cron_expr      text NOT NULL CHECK (length(cron_expr) BETWEEN 1 AND 256),
  backup_type    text NOT NULL DEFAULT 'daily' CHECK (backup_type IN ('daily', 'weekly', 'monthly')),
  enabled        boolean NOT NULL DEFAULT true,
  next_fire_at   timestamptz,       -- the next slot; NULL: disabled or never fires
  last_slot      timestamptz,       -- the slot fired last
  last_fired_at  timestamptz,
  last_backup_id bigint,
  last_error     text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  -- 'backup': the slot takes a backup of backup_type; 'restore_test': the
  -- slot queues a restore test of the latest backup (73_restore_tests.sql).
  kind           text NOT NULL DEFAULT 'backup' CHECK (kind IN ('backup', 'restore_test')),
  UNIQUE (environment_id, cron_expr, backup_type, kind)
);
COMMENT ON TABLE ops.backup_schedules IS 'Cron schedules of automatic backups and restore tests per environment (UTC)';
CREATE INDEX backup_schedules_due ON ops.backup_schedules (next_fire_at) WHERE enabled;
ALTER TABLE ops.backup_schedules ENABLE ROW LEVEL SECURITY;

-- One row per fired slot: the primary key makes a slot fire at most once.
CREATE TABLE ops.backup_schedule_fires (
  schedule_id bigint NOT NULL REFERENCES ops.backup_schedules ON DELETE CASCADE,
  slot        timestamptz NOT NULL,
  backup_id   bigint REFERENCES ops.backups ON DELETE SET NULL,
  run_id      bigint REFERENCES ops.runs ON DELETE SET NULL,
  fired_at    timestamptz NOT NULL DEFAULT now(),
  error       text,
  PRIMARY KEY (schedule_id, slot)
);
COMMENT ON TABLE ops.backup_schedule_fires IS 'Slots fired by backup schedules (each exactly once) and the backup they created';
ALTER TABLE ops.backup_schedule_fires ENABLE ROW LEVEL SECURITY;

-- Validates the expression and computes the first slot; wakes the scheduler.
CREATE FUNCTION ops._backup_schedule_before() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF TG_OP = 'INSERT' AND ops._carried_over(NEW.created_at) THEN
    RETURN NEW;   -- restored from a dump with its next slot
  END IF;
  IF TG_OP = 'INSERT' OR NEW.cron_expr IS DISTINCT FROM OLD.cron_expr
     OR NEW.enabled IS DISTINCT FROM OLD.enabled THEN
    NEW.next_fire_at := CASE WHEN NEW.enabled THEN ops.cron_next(NEW.cron_expr, now()) END;
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER backup_schedules_before BEFORE INSERT OR UPDATE ON ops.backup_schedules
  FOR EACH ROW EXECUTE FUNCTION ops._backup_schedule_before();

CREATE FUNCTION ops._wake_scheduler_trigger() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM ops._wake_scheduler();
  RETURN NULL;
END $$;
CREATE TRIGGER backup_schedules_wake AFTER INSERT OR UPDATE ON ops.backup_schedules
  FOR EACH STATEMENT EXECUTE FUNCTION ops._wake_scheduler_trigger();

-- Fires every due schedule once: each due slot becomes one backup through
-- ops.create_backup (a queued 'backup' run), or for kind 'restore_test' one
-- queued 'restore_test' run (ops._queue_restore_test), recorded in
-- backup_schedule_fires, and the schedule moves to its next slot after now —
-- so slots missed while the server was down fire once, not once each.
-- Returns the number of slots fired.
CREATE FUNCTION ops.fire_due_backup_schedules(max_schedules integer DEFAULT 100)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  s record;
  created record;
  fired integer := 0;
BEGIN
  FOR s IN
    SELECT bs.id, bs.cron_expr, bs.backup_type, bs.kind, bs.next_fire_at, e.id AS env_id,
           e.project_id, e.name AS env, e.status
      FROM ops.backup_schedules bs JOIN ops.environments e ON e.id = bs.environment_id
     WHERE bs.enabled AND bs.next_fire_at <= now()
     ORDER BY bs.next_fire_at, bs.id
     LIMIT max_schedules
       FOR UPDATE OF bs SKIP LOCKED
  LOOP
    BEGIN
      IF s.status <> 'active' THEN
        RAISE EXCEPTION 'environment % is %', s.env, s.status;
      END IF;
      IF s.kind = 'restore_test' THEN
        SELECT NULL::bigint AS backup_id, t.id AS run_id INTO created
          FROM ops._queue_restore_test(s.env_id,
                 jsonb_build_object('schedule_id', s.id, 'slot', s.next_fire_at,
                                    'idempotency_key', format('schedule-%s-%s', s.id, extract(epoch FROM s.next_fire_at)::bigint))) t;
      ELSE
        SELECT * INTO created FROM ops.create_backup(s.project_id, s.env, s.backup_type,
          jsonb_build_object('schedule_id', s.id, 'slot', s.next_fire_at,
                             'idempotency_key', format('schedule-%s-%s', s.id, extract(epoch FROM s.next_fire_at)::bigint)));
      END IF;
      INSERT INTO ops.backup_schedule_fires (schedule_id, slot, backup_id, run_id)
      VALUES (s.id, s.next_fire_at, created.backup_id, created.run_id);
      UPDATE ops.backup_schedules SET last_slot = s.next_fire_at, last_fired_at = now(),
             last_backup_id = created.backup_id, last_error = NULL,
             next_fire_at = ops.cron_next(s.cron_expr, greatest(now(), s.next_fire_at))
       WHERE id = s.id;
      fired := fired + 1;
    EXCEPTION WHEN OTHERS THEN
      -- The slot is skipped, with the reason recorded; it is not retried.
      INSERT INTO ops.backup_schedule_fires (schedule_id, slot, error)
      VALUES (s.id, s.next_fire_at, SQLERRM) ON CONFLICT DO NOTHING;
      UPDATE ops.backup_schedules SET last_slot = s.next_fire_at, last_error = SQLERRM,
             next_fire_at = ops.cron_next(s.cron_expr, greatest(now(), s.next_fire_at))
       WHERE id = s.id;
    END;
  END LOOP;
  RETURN fired;
END $$;
COMMENT ON FUNCTION ops.fire_due_backup_schedules IS
  'Fires each due backup or restore-test schedule slot exactly once (missed slots fire once); returns how many';

-- Milliseconds until the next schedule slot (NULL: none), for the scheduler's sleep.
-- NULL when no schedule is enabled: the scheduler then sleeps its naptime
-- (a 0 here woke it every few milliseconds while idle).
CREATE FUNCTION ops._next_schedule_due_ms() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN due IS NOT NULL
              THEN greatest(0, (extract(epoch FROM due - clock_timestamp()) * 1000)::bigint) END
    FROM (SELECT min(next_fire_at) AS due FROM ops.backup_schedules WHERE enabled) s
$$;
