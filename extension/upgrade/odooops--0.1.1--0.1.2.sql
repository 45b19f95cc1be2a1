-- odooops 0.1.1 -> 0.1.2: one native row check per run table, statement-level run
-- webhooks, a partial idempotency index; deploy backups (staging refresh,
-- rollback) in ops.run_context; backups a rollback needs are kept.
\echo Use "ALTER EXTENSION odooops UPDATE TO '0.1.2'" to load this file. \quit

-- ---------------------------------------------------------------- run queue
-- One native CHECK per table instead of eighteen (ops.runs) and seven
-- (ops.run_events) expression checks: the same rules, read back far faster
-- at the start of every statement (extension/core/row_invariants.cpp).
CREATE FUNCTION ops.run_row_is_valid(
  workflow text, status text, priority integer, git_sha text, git_ref text, idempotency_key text,
  attempt integer, max_attempts integer, claimed_by text, claimed_at timestamptz, started_at timestamptz,
  lease_expires_at timestamptz, finished_at timestamptz, metadata jsonb, result jsonb)
RETURNS boolean LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'odooops_run_row_is_valid';
COMMENT ON FUNCTION ops.run_row_is_valid IS
  'CHECK of ops.runs: request fields in range, and each status with exactly its claim, lease and timestamps';
CREATE FUNCTION ops.run_event_row_is_valid(kind text, level text, message text, stream text, step text,
                                           to_status text, payload jsonb)
RETURNS boolean LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'odooops_run_event_row_is_valid';
COMMENT ON FUNCTION ops.run_event_row_is_valid IS
  'CHECK of ops.run_events: kind, level, lengths, payload object, to_status exactly on transitions';
-- (revoked first so the privileges read as after a fresh install)
REVOKE EXECUTE ON FUNCTION
  ops.run_row_is_valid(text, text, integer, text, text, text, integer, integer, text, timestamptz, timestamptz,
                       timestamptz, timestamptz, jsonb, jsonb),
  ops.run_event_row_is_valid(text, text, text, text, text, text, jsonb)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  ops.run_row_is_valid(text, text, integer, text, text, text, integer, integer, text, timestamptz, timestamptz,
                       timestamptz, timestamptz, jsonb, jsonb),
  ops.run_event_row_is_valid(text, text, text, text, text, text, jsonb)
  TO PUBLIC;

ALTER TABLE ops.runs
  DROP CONSTRAINT runs_workflow_check,
  DROP CONSTRAINT runs_status_check,
  DROP CONSTRAINT runs_priority_check,
  DROP CONSTRAINT runs_git_sha_check,
  DROP CONSTRAINT runs_git_ref_check,
  DROP CONSTRAINT runs_metadata_check,
  DROP CONSTRAINT runs_result_check,
  DROP CONSTRAINT runs_idempotency_key_check,
  DROP CONSTRAINT runs_attempt_check,
  DROP CONSTRAINT runs_max_attempts_check,
  DROP CONSTRAINT runs_check,
  DROP CONSTRAINT runs_queued_is_unheld,
  DROP CONSTRAINT runs_held_has_lease,
  DROP CONSTRAINT runs_running_has_started,
  DROP CONSTRAINT runs_claimed_not_started,
  DROP CONSTRAINT runs_finished_has_finished_at,
  DROP CONSTRAINT runs_finished_has_no_lease,
  DROP CONSTRAINT runs_code_workflows_have_revision,
  ADD CONSTRAINT runs_row_is_valid CHECK (ops.run_row_is_valid(
    workflow, status, priority, git_sha, git_ref, idempotency_key, attempt, max_attempts, claimed_by,
    claimed_at, started_at, lease_expires_at, finished_at, metadata, result));
ALTER TABLE ops.run_events
  DROP CONSTRAINT run_events_kind_check,
  DROP CONSTRAINT run_events_level_check,
  DROP CONSTRAINT run_events_message_check,
  DROP CONSTRAINT run_events_stream_check,
  DROP CONSTRAINT run_events_step_check,
  DROP CONSTRAINT run_events_payload_check,
  DROP CONSTRAINT run_events_check,
  ADD CONSTRAINT run_events_row_is_valid CHECK (ops.run_event_row_is_valid(
    kind, level, message, stream, step, to_status, payload));

-- Idempotency keys: a partial unique index (keyless runs are not indexed).
CREATE UNIQUE INDEX runs_idempotency ON ops.runs (project_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
ALTER TABLE ops.runs DROP CONSTRAINT runs_project_id_idempotency_key_key;

-- Run webhooks fire once per statement (transition tables), not per row.
DROP TRIGGER runs_webhook_insert ON ops.runs;
DROP TRIGGER runs_webhook_status ON ops.runs;
CREATE OR REPLACE FUNCTION ops._runs_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ops.webhook_subscriptions s WHERE s.active) THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    PERFORM ops._enqueue_run_webhook('run.queued', n) FROM new_runs n ORDER BY n.id;
  ELSE
    PERFORM ops._enqueue_run_webhook(CASE WHEN n.status = 'running' THEN 'run.started' ELSE 'run.finished' END, n)
       FROM new_runs n JOIN old_runs o ON o.id = n.id
      WHERE o.status IS DISTINCT FROM n.status AND n.status IN ('running', 'succeeded', 'failed', 'cancelled')
      ORDER BY n.id;
  END IF;
  RETURN NULL;
END $$;
CREATE FUNCTION ops._enqueue_run_webhook(event text, run ops.runs) RETURNS integer LANGUAGE sql AS $$
  SELECT ops.enqueue_webhook_event(event, run.project_id, run.environment_id,
    jsonb_build_object('id', run.id, 'workflow', run.workflow, 'status', run.status,
                       'attempt', run.attempt, 'git_sha', run.git_sha, 'git_ref', run.git_ref,
                       'error', run.error, 'requested_by', run.requested_by,
                       'target_url', run.result->>'url'))
$$;
CREATE TRIGGER runs_webhook_insert AFTER INSERT ON ops.runs
  REFERENCING NEW TABLE AS new_runs FOR EACH STATEMENT EXECUTE FUNCTION ops._runs_webhook();
CREATE TRIGGER runs_webhook_status AFTER UPDATE ON ops.runs
  REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs FOR EACH STATEMENT EXECUTE FUNCTION ops._runs_webhook();
REVOKE EXECUTE ON FUNCTION ops._enqueue_run_webhook(text, ops.runs) FROM PUBLIC;
ALTER FUNCTION ops._runs_webhook() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- ---------------------------------------------------------------- pipeline

-- ops.run_context: deploy runs carry the backup they restore (a rollback's
-- pre-deploy backup, or the production backup a staging deploy refreshes from).
CREATE OR REPLACE FUNCTION ops.run_context(run_id bigint, worker_id text, attempt integer)
RETURNS jsonb LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result jsonb;
BEGIN
  SELECT jsonb_build_object(
           'run', to_jsonb(r),
           'project', jsonb_build_object('id', p.id, 'slug', p.slug, 'repo_url', p.repo_url,
                                         'repo_full_name', p.repo_full_name,
                                         'production_branch', p.production_branch, 'settings', p.settings),
           'environment', jsonb_build_object('id', e.id, 'name', e.name, 'stage', e.stage,
                                             'db_name', e.db_name, 'settings', e.settings),
           'backup', (SELECT to_jsonb(b) || jsonb_build_object('source_environment', se.name,
                                                                'source_db', se.db_name, 'source_stage', se.stage,
                                                                'purpose', k.purpose)
                        FROM ops.backups b JOIN ops.environments se ON se.id = b.environment_id
                       WHERE CASE WHEN r.workflow <> 'deploy'
                                    THEN b.id = k.named_id OR (r.metadata ->> 'backup_id' IS NULL AND b.run_id = r.id)
                                  WHEN k.purpose = 'rollback'
                                    THEN b.id = k.restore_id AND b.environment_id = r.environment_id
                                  WHEN k.purpose = 'refresh'
                                    THEN b.project_id = r.project_id AND se.stage = 'production'
                                         AND b.status = 'completed'
                                  ELSE false END
                       ORDER BY b.completed_at DESC NULLS LAST, b.id DESC LIMIT 1))
    INTO result
    FROM ops.runs r JOIN ops.projects p ON p.id = r.project_id JOIN ops.environments e ON e.id = r.environment_id
         CROSS JOIN LATERAL (
           SELECT CASE WHEN r.workflow <> 'deploy' THEN r.workflow
                       WHEN r.metadata ? 'restore_backup_id' THEN 'rollback'
                       WHEN e.stage = 'staging' THEN 'refresh' END AS purpose,
                  CASE WHEN r.metadata ->> 'backup_id' ~ '^[0-9]{1,18}$'
                       THEN (r.metadata ->> 'backup_id')::bigint END AS named_id,
                  CASE WHEN r.metadata ->> 'restore_backup_id' ~ '^[0-9]{1,18}$'
                       THEN (r.metadata ->> 'restore_backup_id')::bigint END AS restore_id) k
   WHERE r.id = run_context.run_id AND r.status IN ('claimed', 'running')
     AND r.claimed_by = run_context.worker_id AND r.attempt = run_context.attempt;
  IF result IS NULL THEN
    IF NOT EXISTS (SELECT 1 FROM ops.runs r WHERE r.id = run_context.run_id) THEN
      PERFORM ops._raise('OD002', format('run %s does not exist', run_id));
    END IF;
    PERFORM ops._raise('OD003', format('worker "%s" no longer holds run %s', worker_id, run_id));
  END IF;
  RETURN result;
END $$;

-- ops.expire_backups: keeps the backup an unfinished rollback deploy restores.
CREATE OR REPLACE FUNCTION ops.expire_backups() RETURNS integer LANGUAGE plpgsql AS $$
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
