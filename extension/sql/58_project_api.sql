-- Project-level RPCs for people: create a project (its creator becomes its
-- owner), set a secret (write-only), and the context a worker needs.

CREATE FUNCTION ops.create_project(slug text, name text, repo_url text DEFAULT NULL,
                                   repo_full_name text DEFAULT NULL)
RETURNS ops.projects LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  actor text := ops.current_user_id();
  project ops.projects;
BEGIN
  IF actor IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'only an identified user can create a project';
  END IF;
  PERFORM ops._check_length('name', name, 200);
  PERFORM ops._check_length('repo_url', repo_url, 2048);
  PERFORM ops._check_length('repo_full_name', repo_full_name, 255);
  IF slug IS NULL OR slug !~ '^[a-z0-9][a-z0-9-]{0,62}$' THEN
    PERFORM ops._raise('OD004', 'slug must be 1-63 lowercase letters, digits or dashes');
  END IF;
  IF EXISTS (SELECT 1 FROM ops.projects p WHERE p.slug = create_project.slug) THEN
    PERFORM ops._raise('OD004', format('a project "%s" already exists', slug));
  END IF;
  INSERT INTO ops.projects (slug, name, repo_url, repo_full_name)
  VALUES (slug, name, repo_url, repo_full_name) RETURNING * INTO project;
  INSERT INTO ops.project_members (project_id, user_id, role, added_by)
  VALUES (project.id, actor, 'owner', actor);
  PERFORM ops.audit(project.id, 'project.create', 'project', project.id);
  RETURN project;
END $$;

CREATE FUNCTION ops.set_project_secret(project_id bigint, name text, value text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM ops.authorize(project_id, 'secrets.manage');
  IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    PERFORM ops._raise('OD004', 'secret name must be a lowercase identifier');
  END IF;
  IF value IS NULL OR length(value) NOT BETWEEN 1 AND 8192 THEN
    PERFORM ops._raise('OD004', 'secret value must be 1 to 8192 characters');
  END IF;
  INSERT INTO ops.project_secrets AS s (project_id, name, value, updated_by)
  VALUES (project_id, name, value, ops.current_actor())
  ON CONFLICT ON CONSTRAINT project_secrets_pkey
  DO UPDATE SET value = EXCLUDED.value, updated_by = EXCLUDED.updated_by, updated_at = now();
  PERFORM ops.audit(project_id, 'secret.set', 'project_secret', NULL, jsonb_build_object('name', name));
END $$;

-- Names (never values) of a project's secrets, for consoles.
CREATE VIEW ops.project_secret_names WITH (security_barrier) AS
  SELECT s.project_id, s.name, s.updated_by, s.updated_at
    FROM ops.project_secrets s WHERE ops.can_read_project(s.project_id);

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
--   other deploy runs: no backup (a production deploy never restores one
--     except through a rollback).
CREATE FUNCTION ops.run_context(run_id bigint, worker_id text, attempt integer)
RETURNS jsonb LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result jsonb;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
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

-- An artifact of a run the worker holds (running); nothing when the worker
-- lost the run. Recording the same name again replaces it.
CREATE FUNCTION ops.record_artifact(run_id bigint, worker_id text, attempt integer, kind text, name text,
                                    location text, size_bytes bigint DEFAULT NULL, sha256 text DEFAULT NULL,
                                    metadata jsonb DEFAULT '{}', expires_at timestamptz DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT ops._check_length('worker_id', worker_id, 128), ops._check_length('name', name, 255),
         ops._check_length('location', location, 2048), ops._check_json_size('metadata', metadata, 262144);
  INSERT INTO ops.artifacts AS a (run_id, project_id, kind, name, location, size_bytes, sha256, metadata, expires_at)
  SELECT r.id, r.project_id, kind, name, location, size_bytes, sha256, coalesce(metadata, '{}'), expires_at
    FROM ops.runs r
   WHERE r.id = record_artifact.run_id AND r.claimed_by = record_artifact.worker_id
     AND r.attempt = record_artifact.attempt AND r.status = 'running'
     FOR SHARE OF r
  ON CONFLICT (run_id, name) DO UPDATE SET location = EXCLUDED.location, size_bytes = EXCLUDED.size_bytes,
     sha256 = EXCLUDED.sha256, metadata = EXCLUDED.metadata, expires_at = EXCLUDED.expires_at
  RETURNING a.id
$$;

-- A worker announces it is draining (stops claiming) or going offline; a
-- disabled worker stays disabled.
CREATE FUNCTION ops.set_agent_status(worker_id text, status text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result text;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  IF status IS NULL OR status NOT IN ('active', 'draining', 'offline') THEN
    PERFORM ops._raise('OD004', 'status must be active, draining or offline');
  END IF;
  UPDATE ops.agents a SET status = CASE WHEN a.status = 'disabled' THEN 'disabled' ELSE set_agent_status.status END,
         last_heartbeat_at = now()
   WHERE a.worker_id = set_agent_status.worker_id
  RETURNING a.status INTO result;
  IF result IS NULL THEN
    PERFORM ops._raise('OD002', format('unknown worker "%s"', worker_id));
  END IF;
  INSERT INTO ops.agent_events (agent_id, kind, message)
  SELECT a.id, 'status', format('worker %s is %s', a.worker_id, result) FROM ops.agents a
   WHERE a.worker_id = set_agent_status.worker_id;
  RETURN result;
END $$;
