-- Alerts raised by the scheduler background worker: opened once per
-- condition (deduplicated while open), resolved automatically when the
-- condition clears. Kinds: docs/background-workers.md.

CREATE TABLE ops.alerts (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind           text NOT NULL CHECK (kind IN ('queue_backpressure', 'stale_run', 'backup_failed',
                                               'production_restore_requested', 'worker_lost',
                                               'restore_test_failed')),
  dedup_key      text NOT NULL CHECK (length(dedup_key) BETWEEN 1 AND 200),
  severity       text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  project_id     bigint REFERENCES ops.projects ON DELETE CASCADE,
  environment_id bigint REFERENCES ops.environments ON DELETE CASCADE,
  message        text NOT NULL CHECK (length(message) BETWEEN 1 AND 2000),
  details        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
  status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
  opened_at      timestamptz NOT NULL DEFAULT now(),
  last_seen_at   timestamptz NOT NULL DEFAULT now(),
  resolved_at    timestamptz,
  resolved_by    text,
  CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);
COMMENT ON TABLE ops.alerts IS 'Operational alerts: one open row per (kind, dedup_key), resolved when the condition clears';
CREATE UNIQUE INDEX alerts_open_once ON ops.alerts (kind, dedup_key) WHERE status = 'open';
CREATE INDEX alerts_opened ON ops.alerts (opened_at DESC);
ALTER TABLE ops.alerts ENABLE ROW LEVEL SECURITY;

CREATE TYPE ops._alert_condition AS (kind text, dedup_key text, severity text, project_id bigint,
                                     environment_id bigint, message text, details jsonb);

-- The conditions that should have an open alert right now.
CREATE FUNCTION ops.alert_conditions(backpressure_threshold integer DEFAULT 50,
                                     agent_timeout_seconds integer DEFAULT 120)
RETURNS SETOF ops._alert_condition
LANGUAGE sql STABLE AS $$
  -- more runs waiting than the threshold
  SELECT 'queue_backpressure', 'queue', 'warning', NULL::bigint, NULL::bigint,
         format('%s runs queued (threshold %s)', q.n, backpressure_threshold),
         jsonb_build_object('queued', q.n, 'threshold', backpressure_threshold)
    FROM (SELECT count(*) AS n FROM ops.runs WHERE status = 'queued') q
   WHERE q.n > backpressure_threshold
  UNION ALL
  -- runs the stale-run detector took back (requeued and waiting, or failed)
  SELECT 'stale_run', 'run:' || r.id, CASE WHEN r.status = 'failed' THEN 'critical' ELSE 'warning' END,
         r.project_id, r.environment_id,
         format('%s run %s %s after its lease expired (attempt %s of %s)', r.workflow, r.id,
                CASE WHEN r.status = 'failed' THEN 'failed' ELSE 'was requeued' END, r.attempt, r.max_attempts),
         jsonb_build_object('run_id', r.id, 'status', r.status, 'attempt', r.attempt)
    FROM ops.runs r
   WHERE r.status IN ('queued', 'failed') AND r.attempt > 0
     AND r.updated_at > now() - interval '7 days'
     AND (SELECT e.actor = 'odooops' AND e.from_status IN ('claimed', 'running')
            FROM ops.run_events e
           WHERE e.run_id = r.id AND e.kind = 'transition'
           ORDER BY e.id DESC LIMIT 1)
  UNION ALL
  -- the latest finished backup of an environment failed
  SELECT 'backup_failed', 'environment:' || b.environment_id, 'critical', b.project_id, b.environment_id,
         format('%s backup %s failed: %s', b.backup_type, b.id, coalesce(b.error, 'unknown error')),
         jsonb_build_object('backup_id', b.id)
    FROM (SELECT DISTINCT ON (environment_id) * FROM ops.backups
           WHERE status IN ('completed', 'failed', 'expired', 'deleted')
           ORDER BY environment_id, created_at DESC, id DESC) b
   WHERE b.status = 'failed'
  UNION ALL
  -- the latest finished restore test of an environment failed
  SELECT 'restore_test_failed', 'environment:' || r.environment_id, 'critical', r.project_id, r.environment_id,
         format('restore test run %s failed: %s', r.id, coalesce(r.error, 'unknown error')),
         jsonb_build_object('run_id', r.id, 'backup_id', r.result -> 'restore_test' -> 'backup_id')
    FROM (SELECT DISTINCT ON (environment_id) * FROM ops.runs
           WHERE workflow = 'restore_test' AND status IN ('succeeded', 'failed')
           ORDER BY environment_id, id DESC) r
   WHERE r.status = 'failed'
  UNION ALL
  -- a restore into production is pending approval or in progress
  SELECT 'production_restore_requested', 'restore:' || rs.id, 'warning', rs.project_id,
         rs.target_environment_id,
         format('restore %s of backup %s into production %s is %s', rs.id, rs.backup_id, e.name, rs.status),
         jsonb_build_object('restore_id', rs.id, 'backup_id', rs.backup_id, 'requested_by', rs.requested_by)
    FROM ops.restores rs JOIN ops.environments e ON e.id = rs.target_environment_id
   WHERE e.stage = 'production' AND rs.status IN ('pending_approval', 'queued', 'running')
  UNION ALL
  -- a worker stopped heartbeating
  SELECT 'worker_lost', 'agent:' || a.worker_id, 'warning', NULL, NULL,
         format('worker %s has not sent a heartbeat since %s', a.worker_id, a.last_heartbeat_at),
         jsonb_build_object('worker_id', a.worker_id, 'last_heartbeat_at', a.last_heartbeat_at)
    FROM ops.agents a
   WHERE a.status <> 'disabled'
     AND a.last_heartbeat_at < now() - make_interval(secs => agent_timeout_seconds)
$$;
COMMENT ON FUNCTION ops.alert_conditions IS 'The conditions that should have an open alert right now';

-- Opens an alert for every new condition, refreshes open ones, resolves the
-- ones whose condition cleared; marks silent workers offline. Returns the
-- number of alerts opened and resolved.
CREATE FUNCTION ops.evaluate_alerts(backpressure_threshold integer DEFAULT 50,
                                    agent_timeout_seconds integer DEFAULT 120,
                                    OUT opened integer, OUT resolved integer)
LANGUAGE plpgsql AS $$
DECLARE
  conditions jsonb;
BEGIN
  -- One snapshot of the conditions for all three steps.
  SELECT coalesce(jsonb_agg(to_jsonb(c)), '[]') INTO conditions
    FROM ops.alert_conditions(backpressure_threshold, agent_timeout_seconds) c;

  WITH c AS (SELECT * FROM jsonb_populate_recordset(NULL::ops._alert_condition, conditions)),
  lost AS (
    UPDATE ops.agents a SET status = 'offline'
      FROM c
     WHERE c.kind = 'worker_lost' AND c.dedup_key = 'agent:' || a.worker_id AND a.status <> 'offline'
    RETURNING a.id, a.worker_id, a.last_heartbeat_at
  )
  INSERT INTO ops.agent_events (agent_id, kind, message, payload)
  SELECT id, 'lost', format('worker %s marked offline: no heartbeat since %s', worker_id, last_heartbeat_at),
         jsonb_build_object('last_heartbeat_at', last_heartbeat_at)
    FROM lost;

  WITH c AS (SELECT * FROM jsonb_populate_recordset(NULL::ops._alert_condition, conditions))
  UPDATE ops.alerts a SET last_seen_at = now(), message = c.message, details = c.details
    FROM c
   WHERE a.status = 'open' AND a.kind = c.kind AND a.dedup_key = c.dedup_key;

  WITH c AS (SELECT * FROM jsonb_populate_recordset(NULL::ops._alert_condition, conditions))
  INSERT INTO ops.alerts (kind, dedup_key, severity, project_id, environment_id, message, details)
  SELECT c.kind, c.dedup_key, c.severity, c.project_id, c.environment_id, c.message, c.details
    FROM c
  ON CONFLICT (kind, dedup_key) WHERE status = 'open' DO NOTHING;
  GET DIAGNOSTICS opened = ROW_COUNT;

  WITH c AS (SELECT * FROM jsonb_populate_recordset(NULL::ops._alert_condition, conditions))
  UPDATE ops.alerts a SET status = 'resolved', resolved_at = now(), resolved_by = 'odooops'
   WHERE a.status = 'open'
     AND NOT EXISTS (SELECT 1 FROM c WHERE c.kind = a.kind AND c.dedup_key = a.dedup_key);
  GET DIAGNOSTICS resolved = ROW_COUNT;
END $$;
COMMENT ON FUNCTION ops.evaluate_alerts IS 'Opens, refreshes and resolves alerts from the current conditions';

-- Resolves an alert by hand (it reopens if its condition still holds).
CREATE FUNCTION ops.resolve_alert(alert_id bigint) RETURNS ops.alerts LANGUAGE plpgsql AS $$
DECLARE
  a ops.alerts;
BEGIN
  UPDATE ops.alerts SET status = 'resolved', resolved_at = now(), resolved_by = ops.current_actor()
   WHERE id = alert_id AND status = 'open' RETURNING * INTO a;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('no open alert %s', alert_id));
  END IF;
  RETURN a;
END $$;
COMMENT ON FUNCTION ops.resolve_alert IS 'Resolves an open alert';
