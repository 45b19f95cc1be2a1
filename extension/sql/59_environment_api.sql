-- Destroying an environment is a run of workflow `destroy`: the worker stops
-- the instance and drops the database; the environment is marked destroying
-- now and destroyed when that run succeeds (ops.sync_run_subjects). A
-- production destroy waits for an approval (ops.gate_production_run), the
-- environment active meanwhile, and its worker takes a final backup first.

CREATE FUNCTION ops._destroy_environment(e ops.environments, metadata jsonb, idempotency_key text DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run ops.runs;
BEGIN
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, NULL, NULL, metadata, 'destroy', 0,
                                                idempotency_key);
  IF run.available_at <> 'infinity' THEN
    UPDATE ops.environments x SET status = 'destroying', updated_at = now() WHERE x.id = e.id;
  END IF;
  RETURN jsonb_build_object('run_id', run.id, 'environment', e.name, 'workflow', 'destroy');
END $$;

CREATE FUNCTION ops.destroy_environment(project_id bigint, env text, reason text DEFAULT NULL)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  queued jsonb;
  run ops.runs;
BEGIN
  PERFORM ops._check_length('env', env, 255);
  PERFORM ops._check_length('reason', reason, 8192);
  SELECT * INTO e FROM ops.environments x WHERE x.project_id = destroy_environment.project_id AND x.name = env;
  -- Outside the project its environments are as unknown as missing ones.
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  PERFORM ops.authorize(e.project_id, 'env.manage', e.id);
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is already %s', env, e.status));
  END IF;
  SELECT * INTO run FROM ops.runs r
   WHERE r.environment_id = e.id AND r.workflow = 'destroy' AND r.status = 'queued' LIMIT 1;
  IF FOUND THEN
    PERFORM ops._raise('OD004', format('environment "%s" already has destroy run %s waiting for its approval', env, run.id),
                       'Another member with approval.decide decides it (ops.decide_approval), or cancel the run.');
  END IF;
  queued := ops._destroy_environment(e, jsonb_build_object('reason', coalesce(reason, 'requested'),
                                                           'requested_by', ops.current_actor()));
  SELECT * INTO run FROM ops.runs r WHERE r.id = (queued ->> 'run_id')::bigint;
  RETURN run;
END $$;
COMMENT ON FUNCTION ops.destroy_environment IS
  'Queues the destruction of an environment (permission env.manage); a production one waits for an approval and is backed up first';

-- Development and preview environments live until expires_at (renewed by
-- every push): then they are destroyed, as Odoo.sh garbage-collects
-- development builds. Called by the scheduler; returns how many.
CREATE FUNCTION ops.expire_environments() RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  n integer := 0;
BEGIN
  FOR e IN SELECT * FROM ops.environments x
            WHERE x.status = 'active' AND x.expires_at <= now() AND x.stage IN ('development', 'preview')
            ORDER BY x.id FOR UPDATE SKIP LOCKED LOOP
    PERFORM ops._destroy_environment(e, jsonb_build_object('reason', 'expired'),
                                     'expire:' || e.id || ':' || extract(epoch FROM e.expires_at));
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.expire_environments IS 'Destroys development and preview environments past their expiry; returns how many';
