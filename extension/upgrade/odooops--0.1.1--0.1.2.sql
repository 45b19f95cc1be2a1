-- odooops 0.1.1 -> 0.1.2 (unreleased; see CHANGELOG.md).
\echo Use "ALTER EXTENSION odooops UPDATE TO '0.1.2'" to load this file. \quit

-- ---------------------------------------------------------------- run queue

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
