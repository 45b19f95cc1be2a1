-- Stale-run detection (requeue, then fail at max_attempts) and alerts that
-- open once and resolve by themselves.
-- This suite counts rows of shared tables (backups, runs, alerts, ...), so
-- it runs in a database of its own, untouched by the other suites.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS odooops_regress_72;
CREATE DATABASE odooops_regress_72;
\c odooops_regress_72
CREATE EXTENSION odooops;
SET client_min_messages = warning;
SET odooops.requeue_backoff_base = 0;
SET timezone = 'UTC';
-- start from a quiet queue: earlier suites leave runs and agents behind
SELECT count(*) >= 0 AS cancelled FROM (SELECT ops.cancel_run(id) FROM ops.runs
                                        WHERE status IN ('queued', 'claimed', 'running')) x;
UPDATE ops.agents SET status = 'disabled';
INSERT INTO ops.projects (slug, name) VALUES ('alerts', 'Alerts');
INSERT INTO ops.environments (project_id, name, stage, db_name)
SELECT id, 'production', 'production', 'alerts_prod' FROM ops.projects WHERE slug = 'alerts';
CREATE TEMP TABLE t AS SELECT id AS project_id FROM ops.projects WHERE slug = 'alerts';

-- two runs: A (max 2 attempts) claimed and started, B claimed but never started
SELECT (ops.queue_run(project_id, 'production', 'aaa1111', 'main', '{}', 'build', 0, 'stale-a', 2)).status FROM t;
SELECT (ops.queue_run(project_id, 'production', 'bbb2222', 'main', '{}', 'build', 0, 'stale-b', 1)).status FROM t;
SELECT count(*) FROM ops.claim_runs('alerts-w', 2, 600);
SELECT (ops.start_run(id, 'alerts-w', 1)).status FROM ops.runs WHERE idempotency_key = 'stale-a';

-- nothing is stale yet
SELECT count(*) AS requeued FROM ops.requeue_stale_runs(300);
-- A's lease expires; B was claimed 10 minutes ago and not started
UPDATE ops.runs SET lease_expires_at = now() - interval '1 second' WHERE idempotency_key = 'stale-a';
UPDATE ops.runs SET claimed_at = now() - interval '10 minutes' WHERE idempotency_key = 'stale-b';
SELECT idempotency_key, status, attempt, claimed_by FROM ops.requeue_stale_runs(300) ORDER BY id;
SELECT r.idempotency_key, e.kind, e.level, e.message, e.from_status, e.to_status
  FROM ops.run_events e JOIN ops.runs r ON r.id = e.run_id
 WHERE r.idempotency_key LIKE 'stale-%' AND e.actor = 'odooops' ORDER BY e.id;

-- alerts: backpressure above 0 queued, the stale run A (requeued), B (failed)
SELECT * FROM ops.evaluate_alerts(0, 120);
SELECT kind, severity, message, status FROM ops.alerts ORDER BY kind, dedup_key;
-- deduplicated while open
SELECT * FROM ops.evaluate_alerts(0, 120);
SELECT count(*) AS alerts FROM ops.alerts;

-- A is claimed again, expires again and fails at its max_attempts
SELECT count(*) FROM ops.claim_runs('alerts-w', 1, 600);
UPDATE ops.runs SET lease_expires_at = now() - interval '1 second' WHERE idempotency_key = 'stale-a';
SELECT idempotency_key, status, attempt, error FROM ops.requeue_stale_runs(300);
SELECT * FROM ops.evaluate_alerts(0, 120);
SELECT kind, dedup_key LIKE 'run:%' AS per_run, severity, status FROM ops.alerts ORDER BY id;

-- the queue drains: backpressure resolves; the failed runs stay alerted
SELECT * FROM ops.evaluate_alerts(50, 120);
SELECT kind, status, resolved_by FROM ops.alerts ORDER BY id;

-- a failed backup alerts until a later backup of the environment completes
INSERT INTO ops.backups (project_id, environment_id, backup_type, status, error, created_at)
SELECT project_id, e.id, 'daily', 'failed', 'disk full', now() - interval '1 hour'
  FROM t JOIN ops.environments e USING (project_id);
-- a restore into production is requested; a worker stopped heartbeating
INSERT INTO ops.backups (project_id, environment_id, backup_type, status, location, size_bytes, sha256,
                         completed_at, created_at)
SELECT project_id, e.id, 'manual', 'completed', 'file:///x', 1, repeat('c', 64), now(), now() - interval '2 hours'
  FROM t JOIN ops.environments e USING (project_id);
INSERT INTO ops.approvals (project_id, environment_id, subject, subject_id, requested_by)
SELECT project_id, e.id, 'restore', 1, 'alice' FROM t JOIN ops.environments e USING (project_id);
INSERT INTO ops.restores (backup_id, project_id, target_environment_id, approval_id, status, requested_by)
SELECT b.id, b.project_id, b.environment_id, a.id, 'pending_approval', 'alice'
  FROM ops.backups b, ops.approvals a WHERE b.backup_type = 'manual';
SELECT (ops.register_agent('alerts-agent')).status;
UPDATE ops.agents SET last_heartbeat_at = now() - interval '10 minutes' WHERE worker_id = 'alerts-agent';
SELECT * FROM ops.evaluate_alerts(50, 120);
SELECT kind, severity, regexp_replace(message, 'since .*', 'since …') AS message
  FROM ops.alerts WHERE status = 'open' AND kind <> 'stale_run' ORDER BY kind;
SELECT status FROM ops.agents WHERE worker_id = 'alerts-agent';
SELECT kind, regexp_replace(message, 'since .*', 'since …') AS message FROM ops.agent_events WHERE kind = 'lost';

-- conditions clear: a daily backup completes, the restore is rejected, the
-- worker heartbeats again; each alert resolves
INSERT INTO ops.backups (project_id, environment_id, backup_type, status, location, size_bytes, sha256, completed_at)
SELECT project_id, e.id, 'daily', 'completed', 'file:///y', 1, repeat('d', 64), now()
  FROM t JOIN ops.environments e USING (project_id);
UPDATE ops.restores SET status = 'rejected', finished_at = now();
SELECT ops.agent_heartbeat('alerts-agent');
SELECT * FROM ops.evaluate_alerts(50, 120);
SELECT kind, status FROM ops.alerts WHERE kind NOT IN ('stale_run', 'queue_backpressure') ORDER BY kind;
-- by hand
SELECT (ops.resolve_alert(id)).status FROM ops.alerts WHERE status = 'open' ORDER BY id LIMIT 1;
SELECT ops.resolve_alert(-1);
SELECT count(*) FROM ops.requeue_stale_runs(0);
RESET odooops.requeue_backoff_base;
