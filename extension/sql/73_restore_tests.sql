-- Restore tests: the latest backup of a production environment is restored
-- into a throwaway database, started with Odoo and health-checked, and the
-- database dropped again (worker/steps/restore_test). They are runs of
-- workflow `restore_test`, queued by a schedule of kind 'restore_test'
-- (70_schedules.sql) or by a person with ops.queue_restore_test; which
-- backup is tested is decided when the run starts (ops.run_context: the
-- latest completed one). The run's result records the outcome
-- (result.restore_test); a failed one opens an alert (72_alerts.sql) and
-- sends the webhook of a failed run. The environment itself is not touched,
-- so the run is neither exclusive nor bound to the environment's host.

-- Queues a restore test of a production environment, for callers that
-- authorized it themselves (the scheduler, ops.queue_restore_test).
CREATE FUNCTION ops._queue_restore_test(env_id bigint, metadata jsonb DEFAULT '{}')
RETURNS ops.runs LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
BEGIN
  SELECT * INTO e FROM ops.environments x WHERE x.id = env_id;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('environment %s does not exist', env_id));
  END IF;
  IF e.stage <> 'production' THEN
    PERFORM ops._raise('OD004',
      format('environment "%s" is a %s environment: restore tests are for production', e.name, e.stage),
      'A restore test checks that the backups of production can be brought back.');
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  RETURN ops._queue_run_trusted(e.project_id, e.name, NULL, NULL, metadata, 'restore_test', 0);
END $$;
COMMENT ON FUNCTION ops._queue_restore_test IS
  'Queues a restore_test run of a production environment without a permission check (internal callers only)';

CREATE FUNCTION ops.queue_restore_test(project_id bigint, env text)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
BEGIN
  PERFORM ops._check_length('env', env, 255);
  SELECT * INTO e FROM ops.environments x WHERE x.project_id = queue_restore_test.project_id AND x.name = env;
  -- Outside the project its environments are as unknown as missing ones.
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  PERFORM ops.authorize(e.project_id, 'backup.restore', e.id);
  RETURN ops._queue_restore_test(e.id, jsonb_build_object('requested_by', ops.current_actor()));
END $$;
COMMENT ON FUNCTION ops.queue_restore_test IS
  'Queues a restore test of the latest backup of a production environment (needs backup.restore there)';
