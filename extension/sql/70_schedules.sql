-- Scheduled backups, retention, expiry of stored objects and run_events
-- partition upkeep: the scheduler background worker (bgworker/scheduler.cpp)
-- calls these functions, each in a short transaction of its own; they are
-- plain SQL functions so tests and admins can call them too.
-- Cron expressions: extension/core/cron.h (UTC; 5 fields, or 6 with seconds).

-- The next slot of a cron expression strictly after `after` (UTC); NULL
-- when it never fires. A malformed expression raises OD004 naming the field.
CREATE FUNCTION ops.cron_next(expression text, after timestamptz DEFAULT now())
RETURNS timestamptz LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'odooops_cron_next';
COMMENT ON FUNCTION ops.cron_next IS 'Next slot of a cron expression after a time, in UTC; OD004 on a malformed expression';

-- Wakes the scheduler / dispatcher background worker when the calling
-- transaction commits (no effect if it aborts, or without the workers).
CREATE FUNCTION ops._wake_scheduler() RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_wake_scheduler';
CREATE FUNCTION ops._wake_dispatcher() RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_wake_dispatcher';

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
  UNIQUE (environment_id, cron_expr, backup_type)
);
COMMENT ON TABLE ops.backup_schedules IS 'Cron schedules of automatic backups per environment (UTC)';
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
CREATE FUNCTION ops._backup_schedule_before() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.cron_expr IS DISTINCT FROM OLD.cron_expr
     OR NEW.enabled IS DISTINCT FROM OLD.enabled THEN
    NEW.next_fire_at := CASE WHEN NEW.enabled THEN ops.cron_next(NEW.cron_expr, now()) END;
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER backup_schedules_before BEFORE INSERT OR UPDATE ON ops.backup_schedules
  FOR EACH ROW EXECUTE FUNCTION ops._backup_schedule_before();

CREATE FUNCTION ops._wake_scheduler_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM ops._wake_scheduler();
  RETURN NULL;
END $$;
CREATE TRIGGER backup_schedules_wake AFTER INSERT OR UPDATE ON ops.backup_schedules
  FOR EACH STATEMENT EXECUTE FUNCTION ops._wake_scheduler_trigger();

-- Fires every due schedule once: each due slot becomes one backup through
-- ops.create_backup (a queued 'backup' run), recorded in
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
    SELECT bs.id, bs.cron_expr, bs.backup_type, bs.next_fire_at, e.project_id, e.name AS env, e.status
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
      SELECT * INTO created FROM ops.create_backup(s.project_id, s.env, s.backup_type,
        jsonb_build_object('schedule_id', s.id, 'slot', s.next_fire_at,
                           'idempotency_key', format('schedule-%s-%s', s.id, extract(epoch FROM s.next_fire_at)::bigint)));
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
  'Fires each due backup schedule slot exactly once (missed slots fire once); returns how many';

-- Milliseconds until the next schedule slot (NULL: none), for the scheduler's sleep.
CREATE FUNCTION ops._next_schedule_due_ms() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT greatest(0, (extract(epoch FROM min(next_fire_at) - clock_timestamp()) * 1000)::bigint)
    FROM ops.backup_schedules WHERE enabled
$$;

-- Retention per environment; environments without a row keep the Odoo.sh
-- defaults (7 daily, 4 weekly, 3 monthly; manual backups 14 days).
CREATE TABLE ops.backup_retention (
  environment_id bigint PRIMARY KEY REFERENCES ops.environments ON DELETE CASCADE,
  keep_daily     integer NOT NULL DEFAULT 7 CHECK (keep_daily BETWEEN 0 AND 366),
  keep_weekly    integer NOT NULL DEFAULT 4 CHECK (keep_weekly BETWEEN 0 AND 520),
  keep_monthly   integer NOT NULL DEFAULT 3 CHECK (keep_monthly BETWEEN 0 AND 1200),
  manual_ttl     interval NOT NULL DEFAULT '14 days' CHECK (manual_ttl > interval '0'),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.backup_retention IS 'Backup retention of an environment: GFS counts for automatic backups, TTL for manual ones';
ALTER TABLE ops.backup_retention ENABLE ROW LEVEL SECURITY;

-- Stored objects to delete (expired backups and artifacts): an outbox the
-- worker daemon drains with ops.claim_storage_deletions / ops.finish_storage_deletion.
CREATE TABLE ops.storage_deletions (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  object_kind  text NOT NULL CHECK (object_kind IN ('backup', 'artifact')),
  object_id    bigint NOT NULL,
  location     text NOT NULL CHECK (length(location) BETWEEN 1 AND 2048),
  reason       text NOT NULL CHECK (reason IN ('retention', 'ttl', 'manual')),
  status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed', 'done', 'failed')),
  attempts     integer NOT NULL DEFAULT 0,
  claimed_by   text,
  claimed_at   timestamptz,
  completed_at timestamptz,
  error        text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (object_kind, object_id)
);
COMMENT ON TABLE ops.storage_deletions IS 'Outbox of stored objects (backup dumps, artifacts) to delete, drained by the worker daemon';
CREATE INDEX storage_deletions_pending ON ops.storage_deletions (id) WHERE status = 'pending';
ALTER TABLE ops.storage_deletions ENABLE ROW LEVEL SECURITY;

-- Keeps the newest completed daily/weekly/monthly backups per environment's
-- policy (extension/core/retention.h) and marks the others expired,
-- queueing their objects for deletion. Backups an active restore uses are
-- kept. Returns how many it expired. Native: extension/api/retention.cpp.
CREATE FUNCTION ops.apply_backup_retention() RETURNS integer
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_apply_backup_retention';

-- Expires backups: automatic ones by retention counts, manual and
-- pre-deploy/pre-restore ones once their TTL (expires_at, or completion +
-- the environment's manual_ttl) has passed. A backup an active restore or
-- an unfinished rollback deploy (metadata.restore_backup_id) uses is kept.
-- Returns how many it expired.
CREATE FUNCTION ops.expire_backups() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  WITH x AS (
    UPDATE ops.backups b SET status = 'expired', expired_at = now()
     WHERE b.status = 'completed'
       AND b.backup_type IN ('manual', 'pre_deploy', 'pre_restore')
       AND coalesce(b.expires_at, b.completed_at + coalesce(
             (SELECT r.manual_ttl FROM ops.backup_retention r WHERE r.environment_id = b.environment_id),
             interval '14 days')) <= now()
       AND NOT EXISTS (SELECT 1 FROM ops.restores rs WHERE rs.backup_id = b.id
                          AND rs.status IN ('pending_approval', 'queued', 'running'))
       AND NOT EXISTS (SELECT 1 FROM ops.runs r WHERE r.environment_id = b.environment_id
                          AND r.workflow = 'deploy' AND r.status IN ('queued', 'claimed', 'running')
                          AND r.metadata ->> 'restore_backup_id' = b.id::text)
    RETURNING b.id, b.location
  ), q AS (
    INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason)
    SELECT 'backup', x.id, x.location, 'ttl' FROM x
    ON CONFLICT DO NOTHING RETURNING 1
  ) SELECT count(*) INTO n FROM x;
  RETURN n + ops.apply_backup_retention();
END $$;
COMMENT ON FUNCTION ops.expire_backups IS 'Marks backups past retention or TTL expired and queues their objects for deletion';

-- Expires artifacts whose expires_at has passed and queues their objects.
CREATE FUNCTION ops.expire_artifacts(max_rows integer DEFAULT 10000) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  WITH due AS (
    SELECT a.id FROM ops.artifacts a
     WHERE a.expired_at IS NULL AND a.expires_at <= now()
     ORDER BY a.expires_at LIMIT max_rows FOR UPDATE SKIP LOCKED
  ), x AS (
    UPDATE ops.artifacts a SET expired_at = now() FROM due WHERE a.id = due.id
    RETURNING a.id, a.location
  ), q AS (
    INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason)
    SELECT 'artifact', x.id, x.location, 'ttl' FROM x ON CONFLICT DO NOTHING RETURNING 1
  ) SELECT count(*) INTO n FROM x;
  RETURN n;
END $$;

-- The worker daemon's side of the deletion outbox.
CREATE FUNCTION ops.claim_storage_deletions(worker_id text, n integer DEFAULT 10)
RETURNS SETOF ops.storage_deletions LANGUAGE sql VOLATILE AS $$
  SELECT ops._check_length('worker_id', worker_id, 128);
  WITH c AS (
    SELECT id FROM ops.storage_deletions
     WHERE status = 'pending' OR (status = 'claimed' AND claimed_at < now() - interval '1 hour')
     ORDER BY id LIMIT least(greatest(n, 1), 1000) FOR UPDATE SKIP LOCKED
  )
  UPDATE ops.storage_deletions d SET status = 'claimed', claimed_by = worker_id, claimed_at = now(),
         attempts = d.attempts + 1
    FROM c WHERE d.id = c.id RETURNING d.*
$$;

CREATE FUNCTION ops.finish_storage_deletion(deletion_id bigint, ok boolean, error text DEFAULT NULL)
RETURNS ops.storage_deletions LANGUAGE plpgsql AS $$
DECLARE
  d ops.storage_deletions;
BEGIN
  PERFORM ops._check_length('error', error, 8192);
  UPDATE ops.storage_deletions s
     SET status = CASE WHEN ok THEN 'done' WHEN s.attempts >= 5 THEN 'failed' ELSE 'pending' END,
         completed_at = CASE WHEN ok OR s.attempts >= 5 THEN now() END,
         error = finish_storage_deletion.error
   WHERE s.id = deletion_id AND s.status = 'claimed' RETURNING * INTO d;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('storage deletion %s is not claimed', deletion_id));
  END IF;
  IF ok AND d.object_kind = 'backup' THEN
    UPDATE ops.backups SET status = 'deleted' WHERE id = d.object_id AND status = 'expired';
  END IF;
  RETURN d;
END $$;
