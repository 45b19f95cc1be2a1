-- TEMPORARY PLACEHOLDER (bgworker branch) — the lead deletes this file at
-- merge: the real ops.create_backup comes with issue 3 (access control).
-- Same signature; it queues a 'backup' run through ops.queue_run and inserts
-- a pending backup row for it. The scheduler calls ops.create_backup only.
CREATE FUNCTION ops.create_backup(project_id bigint, env text, backup_type text, metadata jsonb DEFAULT '{}')
RETURNS TABLE(backup_id bigint, run_id bigint, expires_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  r ops.runs;
  b ops.backups;
BEGIN
  r := ops.queue_run(create_backup.project_id, create_backup.env, NULL, NULL,
                     coalesce(create_backup.metadata, '{}'), 'backup');
  SELECT * INTO b FROM ops.backups x WHERE x.run_id = r.id;
  IF NOT FOUND THEN
    INSERT INTO ops.backups AS x (project_id, environment_id, run_id, backup_type, metadata, requested_by, expires_at)
    VALUES (r.project_id, r.environment_id, r.id, create_backup.backup_type, coalesce(create_backup.metadata, '{}'),
            ops.current_actor(),
            CASE WHEN create_backup.backup_type IN ('manual', 'pre_deploy', 'pre_restore')
                 THEN now() + interval '14 days' END)
    RETURNING * INTO b;
  END IF;
  RETURN QUERY SELECT b.id, r.id, b.expires_at;
END $$;
