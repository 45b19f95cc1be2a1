-- Restores: into production they wait for an approval decided by someone
-- other than the requester (four-eyes); elsewhere they are queued at once as
-- runs of workflow `restore`. Decided approvals are immutable.

-- Queues the restore run of a restore request and records it: `x` is an
-- approved request (already stored) or a new one (id NULL, stored here).
-- The run's metadata carries what the worker needs (location, checksum).
CREATE FUNCTION ops._queue_restore(x ops.restores) RETURNS ops.restores
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b ops.backups;
  env_name text;
  run ops.runs;
BEGIN
  SELECT * INTO b FROM ops.backups WHERE id = x.backup_id;
  SELECT name INTO env_name FROM ops.environments WHERE id = x.target_environment_id;
  SELECT * INTO run FROM ops._queue_run_trusted(x.project_id, env_name, NULL, NULL,
    x.metadata || jsonb_build_object('backup_id', b.id, 'location', b.location,
                                     'sha256', b.sha256, 'size_bytes', b.size_bytes,
                                     'source_environment_id', b.environment_id,
                                     'requested_by', x.requested_by),
    'restore', 10);
  IF x.id IS NULL THEN
    INSERT INTO ops.restores (backup_id, project_id, target_environment_id, status, requested_by, metadata, run_id)
    VALUES (x.backup_id, x.project_id, x.target_environment_id, 'queued', x.requested_by, x.metadata, run.id)
    RETURNING * INTO x;
  ELSE
    UPDATE ops.restores r SET status = 'queued', run_id = run.id, updated_at = now()
     WHERE r.id = x.id RETURNING * INTO x;
  END IF;
  UPDATE ops.runs r SET metadata = r.metadata || jsonb_build_object('restore_id', x.id) WHERE r.id = run.id;
  RETURN x;
END $$;


CREATE FUNCTION ops.restore_backup(backup_id bigint, target_env_id bigint, requested_by text DEFAULT NULL,
                                   metadata jsonb DEFAULT '{}')
RETURNS ops.restores LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  actor text := ops.current_user_id();
  b ops.backups;
  e ops.environments;
  x ops.restores;
  approval ops.approvals;
BEGIN
  IF actor IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'only an identified user can request a restore';
  END IF;
  -- The requester is the session's user; the parameter is only checked.
  PERFORM ops._check_length('requested_by', requested_by, 255);
  IF requested_by IS NOT NULL AND requested_by <> actor THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = 'requested_by must be the calling user',
      DETAIL = format('The session belongs to %s.', quote_literal(actor));
  END IF;
  IF metadata IS NULL OR jsonb_typeof(metadata) <> 'object' THEN
    PERFORM ops._raise('OD004', 'metadata must be a JSON object');
  END IF;
  PERFORM ops._check_json_size('metadata', metadata, 262144);
  PERFORM ops._check_request_metadata(metadata);
  -- Outside a project its backups and environments are as unknown as
  -- missing ones.
  SELECT * INTO b FROM ops.backups WHERE id = backup_id;
  IF NOT FOUND OR NOT ops.can_read_project(b.project_id) THEN
    PERFORM ops._raise('OD002', format('backup %s does not exist', backup_id));
  END IF;
  SELECT * INTO e FROM ops.environments WHERE id = target_env_id;
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
    PERFORM ops._raise('OD002', format('environment %s does not exist', target_env_id));
  END IF;
  PERFORM ops.authorize(e.project_id, 'backup.restore', e.id);
  IF e.project_id <> b.project_id THEN
    PERFORM ops._raise('OD004', format('backup %s belongs to another project', backup_id));
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  IF b.status = 'expired' OR b.status = 'deleted' OR (b.status = 'completed' AND b.expires_at <= now()) THEN
    PERFORM ops._raise('OD004', format('backup %s has expired', backup_id));
  END IF;
  IF b.status <> 'completed' THEN
    PERFORM ops._raise('OD004', format('backup %s is %s, not completed', backup_id, b.status));
  END IF;

  IF e.stage = 'production' THEN
    INSERT INTO ops.approvals (project_id, environment_id, subject, subject_id, requested_by)
    VALUES (e.project_id, e.id, 'restore', 0, actor) RETURNING * INTO approval;
    INSERT INTO ops.restores (backup_id, project_id, target_environment_id, approval_id, status,
                              requested_by, metadata)
    VALUES (b.id, e.project_id, e.id, approval.id, 'pending_approval', actor, metadata)
    RETURNING * INTO x;
    UPDATE ops.approvals a SET subject_id = x.id WHERE a.id = approval.id;
    PERFORM ops.audit(e.project_id, 'approval.request', 'restore', x.id,
                      jsonb_build_object('approval_id', approval.id, 'backup_id', b.id,
                                         'environment', e.name));
    RETURN x;
  END IF;

  x.backup_id := b.id;
  x.project_id := e.project_id;
  x.target_environment_id := e.id;
  x.requested_by := actor;
  x.metadata := metadata;
  RETURN ops._queue_restore(x);
END $$;
COMMENT ON FUNCTION ops.restore_backup IS
  'Requests a restore of a backup into an environment; into production it needs an approval';



