-- odooops 0.1.0 -> 0.1.1: a finished deploy records the pre-deploy backup its
-- worker took (result.pre_deploy_backup) as an ops.backups row of type
-- pre_deploy, whether it succeeded or was rolled back; releases reference it.
\echo Use "ALTER EXTENSION odooops UPDATE TO '0.1.1'" to load this file. \quit

DROP TRIGGER runs_record_release ON ops.runs;
DROP FUNCTION ops.record_release();

CREATE FUNCTION ops.record_deploy_outcome() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  taken jsonb := NEW.result -> 'pre_deploy_backup';
  backup_id bigint := (SELECT b.id FROM ops.backups b WHERE b.id = (NEW.result ->> 'pre_deploy_backup_id')::bigint);
BEGIN
  IF jsonb_typeof(taken) = 'object' AND taken ->> 'location' IS NOT NULL
     AND taken ->> 'sha256' ~ '^[0-9a-f]{64}$' AND (taken ->> 'size_bytes') ~ '^[0-9]+$' THEN
    INSERT INTO ops.backups (project_id, environment_id, run_id, backup_type, status, location, size_bytes,
                             sha256, metadata, requested_by, started_at, completed_at, expires_at)
    SELECT NEW.project_id, NEW.environment_id, NEW.id, 'pre_deploy', 'completed', taken ->> 'location',
           (taken ->> 'size_bytes')::bigint, taken ->> 'sha256', jsonb_build_object('backup', taken),
           NEW.claimed_by, NEW.started_at, now(), now() + ops.backup_ttl('pre_deploy', e.settings)
      FROM ops.environments e WHERE e.id = NEW.environment_id
    RETURNING id INTO backup_id;
  END IF;
  IF NEW.status = 'succeeded' THEN
    INSERT INTO ops.releases (project_id, environment_id, run_id, git_sha, git_ref, image,
                              pre_deploy_backup_id, rollback_of)
    VALUES (NEW.project_id, NEW.environment_id, NEW.id, NEW.git_sha, NEW.git_ref, NEW.result ->> 'image',
            backup_id, (NEW.metadata ->> 'rollback_to_release')::bigint);
  END IF;
  RETURN NULL;
END $$;
-- As 80_security.sql does for every trigger function of a fresh install.
ALTER FUNCTION ops.record_deploy_outcome() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE EXECUTE ON FUNCTION ops.record_deploy_outcome() FROM PUBLIC;

CREATE TRIGGER runs_record_deploy_outcome AFTER UPDATE OF status ON ops.runs
  FOR EACH ROW WHEN (NEW.workflow = 'deploy' AND NEW.status IN ('succeeded', 'failed')
                     AND OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION ops.record_deploy_outcome();
