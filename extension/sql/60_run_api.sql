-- The run queue API. These are native functions (extension/api/*.cpp):
-- they validate input, enforce the state machine and fencing, and write a
-- run event for every transition, all in the caller's transaction.
-- Errors: docs/errors.md. Notification channel: odooops_runs.

CREATE FUNCTION ops.queue_run(
  project_id bigint, env text, git_sha text, git_ref text,
  metadata jsonb DEFAULT '{}', workflow text DEFAULT 'deploy',
  priority integer DEFAULT 0, idempotency_key text DEFAULT NULL,
  max_attempts integer DEFAULT 3)
RETURNS ops.runs LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_queue_run';
COMMENT ON FUNCTION ops.queue_run IS
  'Queues a run of `workflow` for environment `env`; a repeated idempotency key (argument or metadata.idempotency_key) returns the existing run';

-- The same without the permission check, for internal callers only (no
-- grant to any role): GitHub ingest after verifying the signature.
CREATE FUNCTION ops._queue_run_trusted(
  project_id bigint, env text, git_sha text, git_ref text,
  metadata jsonb DEFAULT '{}', workflow text DEFAULT 'deploy',
  priority integer DEFAULT 0, idempotency_key text DEFAULT NULL,
  max_attempts integer DEFAULT 3)
RETURNS ops.runs LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_queue_run_trusted';
COMMENT ON FUNCTION ops._queue_run_trusted IS
  'ops.queue_run for internal callers that authorized the action themselves (create_backup, restore_backup, ingest); metadata references are still checked';

-- Refuses the metadata keys odooops writes itself (backup_id,
-- restore_backup_id, location, ...) in a person's request.
CREATE FUNCTION ops._check_request_metadata(metadata jsonb) RETURNS void
LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'odooops_check_request_metadata';
COMMENT ON FUNCTION ops._check_request_metadata IS 'Raises OD004 when a request sets a run metadata key that odooops writes itself';

-- The run a worker holds and has started, for the worker RPCs written in
-- SQL: locked FOR SHARE (FOR UPDATE when `exclusive`) so that a concurrent
-- requeue or cancel is seen before the fence is judged. OD002 when the run
-- does not exist, OD003 when the worker no longer holds it (the fence of
-- every worker write), OD001 before ops.start_run (`why` says what waits).
CREATE FUNCTION ops._held_running_run(run_id bigint, worker_id text, attempt integer, exclusive boolean,
                                      why text)
RETURNS ops.runs LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r ops.runs;
BEGIN
  IF attempt IS NULL THEN
    PERFORM ops._raise('OD004', 'worker_id and attempt are required');
  END IF;
  IF exclusive THEN
    SELECT * INTO r FROM ops.runs x WHERE x.id = _held_running_run.run_id FOR UPDATE;
  ELSE
    SELECT * INTO r FROM ops.runs x WHERE x.id = _held_running_run.run_id FOR SHARE;
  END IF;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('run %s does not exist', run_id));
  END IF;
  IF r.status NOT IN ('claimed', 'running') OR r.claimed_by IS DISTINCT FROM worker_id
     OR r.attempt <> _held_running_run.attempt THEN
    RAISE EXCEPTION USING ERRCODE = 'OD003',
      MESSAGE = format('worker "%s" no longer holds run %s', worker_id, run_id),
      DETAIL = format('The run is %s; the call came from worker "%s" on attempt %s.', r.status, worker_id, attempt),
      HINT = 'Stop working on this run; its result will be ignored.';
  END IF;
  IF r.status <> 'running' THEN
    PERFORM ops._raise('OD001', format('run %s is not started: %s', run_id, why), 'Call ops.start_run first.');
  END IF;
  RETURN r;
END $$;
COMMENT ON FUNCTION ops._held_running_run IS
  'The started run a worker holds, locked; OD002, OD003 (fence) or OD001 otherwise';

CREATE FUNCTION ops.claim_next_run(worker_id text, lease_seconds integer DEFAULT 300, workflows text[] DEFAULT NULL)
RETURNS SETOF ops.runs LANGUAGE c VOLATILE ROWS 1
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_claim_next_run';
COMMENT ON FUNCTION ops.claim_next_run IS
  'Claims the next claimable run for the worker (FOR UPDATE SKIP LOCKED): sets a lease and increments attempt, the fencing token';

CREATE FUNCTION ops.claim_runs(worker_id text, n integer, lease_seconds integer DEFAULT 300, workflows text[] DEFAULT NULL)
RETURNS SETOF ops.runs LANGUAGE c VOLATILE ROWS 10
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_claim_runs';
COMMENT ON FUNCTION ops.claim_runs IS 'Claims up to n runs at once for a high-throughput worker';

CREATE FUNCTION ops.start_run(run_id bigint, worker_id text, attempt integer, lease_seconds integer DEFAULT 300)
RETURNS ops.runs LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_start_run';
COMMENT ON FUNCTION ops.start_run IS 'Moves a claimed run to running; fenced by worker_id and attempt';

CREATE FUNCTION ops.heartbeat_run(run_id bigint, worker_id text, attempt integer, lease_seconds integer DEFAULT 300)
RETURNS timestamptz LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_heartbeat_run';
COMMENT ON FUNCTION ops.heartbeat_run IS
  'Extends the lease of a held run and returns the new expiry; fails with OD003 once the run was requeued, reclaimed or cancelled';

CREATE FUNCTION ops.release_run(run_id bigint, worker_id text, attempt integer, reason text DEFAULT NULL)
RETURNS ops.runs LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_release_run';
COMMENT ON FUNCTION ops.release_run(bigint, text, integer, text) IS
  'Hands a held run back to the queue at once (a draining worker); the attempt stays counted';
CREATE FUNCTION ops.release_run(run_id bigint, worker_id text, attempt integer, reason text,
                                retry_after_seconds integer)
RETURNS ops.runs LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_release_run';
COMMENT ON FUNCTION ops.release_run(bigint, text, integer, text, integer) IS
  'Hands a held run back to the queue, claimable again after retry_after_seconds (0 to 86400: a worker whose disk is full)';

-- Worker calls carry (worker_id, attempt) and are fenced to the run's
-- holder; they are granted to odooops_worker. The shorter overloads are the
-- operator forms granted to odooops_api and checked against project
-- permissions. Both reach the same native function.
CREATE FUNCTION ops.append_event(run_id bigint, level text, message text, payload jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_append_event';
COMMENT ON FUNCTION ops.append_event(bigint, text, text, jsonb) IS
  'Appends a note by the calling user to a run (permission run.comment)';
CREATE FUNCTION ops.append_event(run_id bigint, level text, message text, payload jsonb,
                                 worker_id text, attempt integer)
RETURNS bigint LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_append_event';
COMMENT ON FUNCTION ops.append_event(bigint, text, text, jsonb, text, integer) IS
  'Appends a log event to a run held by the worker (fenced by worker_id and attempt)';

CREATE FUNCTION ops.append_events(run_id bigint, events jsonb)
RETURNS integer LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_append_events';
COMMENT ON FUNCTION ops.append_events(bigint, jsonb) IS 'Appends a batch of log lines to a run, in order (people: comments on runs they may manage)';
CREATE FUNCTION ops.append_events(run_id bigint, events jsonb, worker_id text, attempt integer)
RETURNS integer LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_append_events';
COMMENT ON FUNCTION ops.append_events(bigint, jsonb, text, integer) IS
  'Appends a batch of events ([{level, message, payload?, stream?, step?, seq?}]) in order; numbered events (seq) already stored for the attempt are skipped; returns how many were stored';

CREATE FUNCTION ops.finish_run(run_id bigint, status text, metadata jsonb DEFAULT '{}')
RETURNS ops.runs LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_finish_run';
COMMENT ON FUNCTION ops.finish_run(bigint, text, jsonb) IS
  'Operator override: finishes a run whoever holds it (permission run.override)';
CREATE FUNCTION ops.finish_run(run_id bigint, status text, metadata jsonb, worker_id text, attempt integer)
RETURNS ops.runs LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_finish_run';
COMMENT ON FUNCTION ops.finish_run(bigint, text, jsonb, text, integer) IS
  'Finishes a held run as succeeded, failed or cancelled; metadata is merged into result (metadata.error names a failure)';

CREATE FUNCTION ops.finish_runs(worker_id text, results jsonb)
RETURNS SETOF ops.runs LANGUAGE c VOLATILE ROWS 10
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_finish_runs';
COMMENT ON FUNCTION ops.finish_runs IS
  'Finishes many held runs at once: [{run_id, attempt, status, metadata?}]; all or nothing';

CREATE FUNCTION ops.cancel_run(run_id bigint, reason text DEFAULT NULL)
RETURNS ops.runs LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_cancel_run';
COMMENT ON FUNCTION ops.cancel_run IS 'Cancels a queued, claimed or running run; its worker''s next call fails with OD003';

CREATE FUNCTION ops.requeue_expired_runs(max_runs integer DEFAULT 1000)
RETURNS SETOF ops.runs LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_requeue_expired_runs';
COMMENT ON FUNCTION ops.requeue_expired_runs IS
  'Requeues held runs whose lease expired (with backoff), or fails them once max_attempts is used; returns them';

-- The stale-run detector's step: runs claimed but not started within
-- `claim_timeout_seconds` have their lease ended early (with a log event),
-- then every held run with an expired lease goes through
-- ops.requeue_expired_runs (requeue with backoff, or fail at max_attempts).
CREATE FUNCTION ops.requeue_stale_runs(claim_timeout_seconds integer DEFAULT 300, max_runs integer DEFAULT 1000)
RETURNS SETOF ops.runs LANGUAGE plpgsql AS $$
BEGIN
  IF claim_timeout_seconds IS NULL OR claim_timeout_seconds < 1 THEN
    PERFORM ops._raise('OD004', 'claim_timeout_seconds must be at least 1');
  END IF;
  WITH slow AS (
    UPDATE ops.runs r SET lease_expires_at = now() - interval '1 millisecond', updated_at = now()
     WHERE r.status = 'claimed' AND r.claimed_at < now() - make_interval(secs => claim_timeout_seconds)
       AND r.lease_expires_at >= now()
    RETURNING r.id, r.attempt
  )
  INSERT INTO ops.run_events (run_id, attempt, kind, level, message, actor)
  SELECT id, attempt, 'log', 'warning',
         format('claimed but not started within %s s; lease ended early', claim_timeout_seconds), 'odooops'
    FROM slow;
  RETURN QUERY SELECT * FROM ops.requeue_expired_runs(max_runs);
END $$;
COMMENT ON FUNCTION ops.requeue_stale_runs IS
  'Ends the lease of runs claimed but not started in time, then requeues or fails every expired lease';

-- What a worker needs to execute a run it holds: the run, its project and
-- environment, and the backup it makes, restores or deploys on (with the
-- environment the backup came from, and its purpose). Fenced like every
-- worker call.
--   backup, restore runs: metadata.backup_id, else the backup the run makes.
--   deploy runs ('rollback'): metadata.restore_backup_id, set by
--     ops.rollback_release -- the pre-deploy backup of the same environment
--     that goes back together with the older release's code. A key present
--     but null means there is no such backup; the deploy steps say so.
--   deploy runs in a staging environment ('refresh'): the latest completed
--     backup of the project's production environment, which the deploy
--     restores as a neutralized copy before updating the changed modules,
--     as Odoo.sh does (settings.refresh_from_production, read by the steps,
--     limits that to the first deploy). No backup when production has none
--     yet. Another backup goes into staging with ops.restore_backup, which
--     needs backup.restore.
--   restore_test runs: the latest completed, unexpired backup of the
--     environment itself (73_restore_tests.sql); none when it has none.
--   other deploy runs: no backup (a production deploy never restores one
--     except through a rollback).
-- How Odoo runs comes from the operator's configuration only: `runtime` is
-- the environment's runtime profile, else the project's, else null (the
-- worker's own defaults); the worker still refuses values its own
-- configuration does not allow. `repo_url_schemes` is the operator's
-- allow-list (odooops.repo_url_schemes), which the worker hands to git; a
-- build, test or deploy of a project whose repo_url it no longer allows is
-- refused here (OD004), before any step runs.
CREATE FUNCTION ops.run_context(run_id bigint, worker_id text, attempt integer)
RETURNS jsonb LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result jsonb;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops.authorize_worker(worker_id);
  SELECT jsonb_build_object(
           'run', to_jsonb(r),
           'project', jsonb_build_object('id', p.id, 'slug', p.slug, 'repo_url', p.repo_url,
                                         'repo_full_name', p.repo_full_name,
                                         'production_branch', p.production_branch, 'settings', p.settings),
           'environment', jsonb_build_object('id', e.id, 'name', e.name, 'stage', e.stage,
                                             'db_name', e.db_name, 'settings', e.settings),
           'runtime', (SELECT jsonb_build_object('name', rp.name, 'runtime', rp.runtime, 'odoo_bin', rp.odoo_bin,
                                                 'odoo_addons', rp.odoo_addons, 'odoo_image', rp.odoo_image)
                         FROM ops.runtime_profiles rp
                        WHERE rp.name = coalesce(e.runtime_profile, p.runtime_profile)),
           'repo_url_schemes', pg_catalog.current_setting('odooops.repo_url_schemes'),
           'backup', (SELECT to_jsonb(b) || jsonb_build_object('source_environment', se.name,
                                                                'source_db', se.db_name, 'source_stage', se.stage,
                                                                'purpose', k.purpose)
                        FROM ops.backups b JOIN ops.environments se ON se.id = b.environment_id
                       WHERE CASE WHEN r.workflow = 'restore_test'
                                    THEN b.environment_id = r.environment_id AND b.status = 'completed'
                                         AND (b.expires_at IS NULL OR b.expires_at > now())
                                  WHEN r.workflow <> 'deploy'
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
  IF result -> 'run' ->> 'workflow' IN ('build', 'test', 'deploy') THEN
    PERFORM ops.repo_url_scheme(result -> 'project' ->> 'repo_url');
  END IF;
  RETURN result;
END $$;
COMMENT ON FUNCTION ops.run_context IS
  'What a worker needs to execute a run it holds: the run, its project and environment, and the backup involved';
