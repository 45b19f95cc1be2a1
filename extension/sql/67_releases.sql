-- Releases: every successful deploy is a release of an environment (its
-- revision, image and the backup taken just before it), so a rollback can
-- restore code and database together. Production deploys can also be gated
-- by an approval (project setting production_deploy_approval).

CREATE TABLE ops.releases (
  id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id           bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  environment_id       bigint NOT NULL REFERENCES ops.environments ON DELETE RESTRICT,
  run_id               bigint NOT NULL UNIQUE REFERENCES ops.runs ON DELETE RESTRICT,
  git_sha              text,
  git_ref              text,
  image                text,                                   -- container image or revision
  pre_deploy_backup_id bigint REFERENCES ops.backups ON DELETE RESTRICT,
  rollback_of          bigint REFERENCES ops.releases ON DELETE RESTRICT,  -- set on rollbacks
  created_at           timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.releases IS 'Successful deploys of an environment: revision, image and the backup taken before';
CREATE INDEX releases_environment ON ops.releases (environment_id, id DESC);

-- A succeeded deploy becomes a release (result.image names the container
-- image or revision) that references the pre-deploy backup its worker
-- recorded for this very run (ops.record_run_backup). The result is
-- the steps' output, which a branch can forge: it never creates, completes
-- or names a backup.
CREATE FUNCTION ops.record_deploy_outcome() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.status = 'succeeded' THEN
    INSERT INTO ops.releases (project_id, environment_id, run_id, git_sha, git_ref, image,
                              pre_deploy_backup_id, rollback_of)
    VALUES (NEW.project_id, NEW.environment_id, NEW.id, NEW.git_sha, NEW.git_ref, NEW.result ->> 'image',
            (SELECT max(b.id) FROM ops.backups b
              WHERE b.run_id = NEW.id AND b.environment_id = NEW.environment_id
                AND b.backup_type = 'pre_deploy' AND b.status = 'completed'),
            (NEW.metadata ->> 'rollback_to_release')::bigint);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER runs_record_deploy_outcome AFTER UPDATE OF status ON ops.runs
  FOR EACH ROW WHEN (NEW.workflow = 'deploy' AND NEW.status IN ('succeeded', 'failed')
                     AND OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION ops.record_deploy_outcome();

-- Rolls an environment back to an earlier release: a deploy of that
-- release's revision that also restores the database as it was while the
-- release was live (the backup taken before the release that replaced it).
CREATE FUNCTION ops.rollback_release(release_id bigint, reason text DEFAULT NULL)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  target ops.releases;
  e ops.environments;
  restore_from bigint;
  run ops.runs;
BEGIN
  PERFORM ops._check_length('reason', reason, 8192);
  SELECT * INTO target FROM ops.releases WHERE id = release_id;
  -- Outside the project its releases are as unknown as missing ones.
  IF NOT FOUND OR NOT ops.can_read_project(target.project_id) THEN
    PERFORM ops._raise('OD002', format('release %s does not exist', release_id));
  END IF;
  SELECT * INTO e FROM ops.environments WHERE id = target.environment_id;
  PERFORM ops.authorize(e.project_id, 'run.deploy', e.id);
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  SELECT r.pre_deploy_backup_id INTO restore_from FROM ops.releases r
   WHERE r.environment_id = target.environment_id AND r.id > target.id
   ORDER BY r.id LIMIT 1;
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, target.git_sha, coalesce(target.git_ref, 'rollback'),
    jsonb_build_object('rollback_to_release', target.id, 'image', target.image,
                       'restore_backup_id', restore_from, 'reason', reason),
    'deploy', 100);
  PERFORM ops.audit(e.project_id, 'release.rollback', 'release', target.id,
                    jsonb_build_object('run_id', run.id, 'restore_backup_id', restore_from));
  RETURN run;
END $$;
COMMENT ON FUNCTION ops.rollback_release IS 'Queues a deploy back to an earlier release, restoring its database too';

-- A rebuild, as Odoo.sh's "Rebuild" button: the environment's current
-- commit (its latest release) deployed again from scratch, on a new
-- database with an empty filestore (worker/steps/lib/rebuild.sh), the one
-- it replaces kept aside until the rebuilt one stands. It destroys the
-- environment's data, so it needs env.manage as well as run.deploy on the
-- environment; production is never rebuilt (its database is its data:
-- ops.rollback_release and ops.restore_backup bring an earlier state back).
CREATE FUNCTION ops.rebuild_environment(project_id bigint, env text)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  rel ops.releases;
  run ops.runs;
BEGIN
  PERFORM ops._check_length('env', env, 255);
  SELECT * INTO e FROM ops.environments x WHERE x.project_id = rebuild_environment.project_id AND x.name = env;
  -- Outside the project its environments are as unknown as missing ones.
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  PERFORM ops.authorize(e.project_id, 'env.manage', e.id);
  PERFORM ops.authorize(e.project_id, 'run.deploy', e.id);
  IF e.stage = 'production' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is production: production is never rebuilt', env),
                       'Use ops.rollback_release or ops.restore_backup to bring an earlier state back.');
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', env, e.status));
  END IF;
  SELECT * INTO rel FROM ops.releases r WHERE r.environment_id = e.id ORDER BY r.id DESC LIMIT 1;
  IF NOT FOUND OR rel.git_sha IS NULL THEN
    PERFORM ops._raise('OD004', format('environment "%s" has no release to rebuild', env),
                       'Deploy it first (a push, or ops.queue_run).');
  END IF;
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, rel.git_sha, coalesce(rel.git_ref, e.branch),
    jsonb_build_object('rebuild', true, 'rebuild_of_release', rel.id, 'requested_by', ops.current_actor()), 'deploy');
  RETURN run;
END $$;
COMMENT ON FUNCTION ops.rebuild_environment IS
  'Deploys the environment''s current commit again from scratch: a new database and filestore (permissions env.manage and run.deploy; never production)';
