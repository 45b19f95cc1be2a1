-- Upgrades tried before they happen (docs/upgrades.md): a deploy plan lists
-- the modules a deploy of a revision would install and update, decided on
-- the environment's database by the same function every deploy decides
-- with; an upgrade test runs the operator's major-version upgrade hook on a
-- copy of production's latest backup. Both are runs of an existing
-- workflow with a metadata.mode that only odooops writes (a plan is a
-- build: it only reads; an upgrade test is a test: it works on a throw-away
-- database), so the queue, claims and fencing treat them as those.

-- The environment `env` of a project, for a request: outside the project
-- its environments are as unknown as missing ones (OD002).
CREATE FUNCTION ops._request_environment(project_id bigint, env text) RETURNS ops.environments
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
BEGIN
  PERFORM ops._check_length('env', env, 255);
  SELECT * INTO e FROM ops.environments x WHERE x.project_id = _request_environment.project_id AND x.name = env;
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  RETURN e;
END $$;
COMMENT ON FUNCTION ops._request_environment IS
  'The environment of a project named in a request; OD002 when it does not exist or the caller is not a member';

-- A deploy plan of a revision for an environment, queued by odooops (no
-- authorization here: ops.queue_deploy_plan authorizes its caller,
-- ops.plan_gated_deploy acts for a deploy already queued). With for_run,
-- the plan of that queued deploy (same environment; its revision unless
-- one is given), shown with it by ops.deploy_plan.
CREATE FUNCTION ops._queue_deploy_plan(e ops.environments, git_sha text, git_ref text, for_run bigint)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  d ops.runs;
  run ops.runs;
  metadata jsonb := jsonb_build_object('mode', 'plan');
BEGIN
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  IF for_run IS NOT NULL THEN
    SELECT * INTO d FROM ops.runs r WHERE r.id = for_run AND r.project_id = e.project_id;
    IF NOT FOUND THEN
      PERFORM ops._raise('OD002', format('run %s does not exist', for_run));
    END IF;
    IF d.workflow <> 'deploy' OR d.environment_id <> e.id OR d.metadata ? 'mode' THEN
      PERFORM ops._raise('OD004', format('run %s is not a deploy of environment "%s"', for_run, e.name));
    END IF;
    IF git_sha IS NULL AND git_ref IS NULL THEN
      git_sha := d.git_sha;
      git_ref := d.git_ref;
    END IF;
    metadata := metadata || jsonb_build_object('plan_for_run', d.id);
  END IF;
  IF git_sha IS NULL AND git_ref IS NULL THEN
    PERFORM ops._raise('OD004', 'a deploy plan needs git_sha or git_ref', 'Name the revision the deploy would run.');
  END IF;
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, git_sha, git_ref, metadata, 'build', 10);
  -- It reads the environment's database: it runs where the environment
  -- lives (as of now; a later move does not re-route a queued plan).
  UPDATE ops.runs r SET host_worker_id = e.host_worker_id, team_id = coalesce(e.host_team_id, r.team_id)
   WHERE r.id = run.id RETURNING * INTO run;
  PERFORM ops.audit(e.project_id, 'plan.queue', 'run', run.id,
                    jsonb_build_object('environment', e.name, 'for_run', for_run));
  RETURN run;
END $$;
COMMENT ON FUNCTION ops._queue_deploy_plan IS
  'Internal: queues a deploy plan of an environment (callers authorize)';

-- A deploy plan requested by a member: permission run.build on the
-- environment (a plan is a build that also reads its module list).
CREATE FUNCTION ops.queue_deploy_plan(project_id bigint, env text, git_sha text DEFAULT NULL,
                                      git_ref text DEFAULT NULL, for_run bigint DEFAULT NULL)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments := ops._request_environment(project_id, env);
BEGIN
  PERFORM ops.authorize(e.project_id, 'run.build', e.id);
  RETURN ops._queue_deploy_plan(e, git_sha, git_ref, for_run);
END $$;
COMMENT ON FUNCTION ops.queue_deploy_plan IS
  'Queues a deploy plan: the modules a deploy of a revision would install and update in an environment, read from its database (run.build)';

-- The newest plan of a deploy run (its plan_for_run), or the plan a plan
-- run holds: {"plan_run_id", "status", "git_sha", "plan"} (plan null until
-- it succeeded); status not_queued and the error when the plan of a
-- waiting deploy could not be queued; null when the deploy has none.
-- Readable by the project's members (project.read).
CREATE FUNCTION ops.deploy_plan(run_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r ops.runs;
  p ops.runs;
BEGIN
  SELECT * INTO r FROM ops.runs x WHERE x.id = run_id;
  IF NOT FOUND OR NOT ops.can_read_project(r.project_id) THEN
    PERFORM ops._raise('OD002', format('run %s does not exist', run_id));
  END IF;
  PERFORM ops.authorize(r.project_id, 'project.read', r.environment_id);
  IF r.workflow = 'build' AND r.metadata ->> 'mode' = 'plan' THEN
    p := r;
  ELSE
    SELECT * INTO p FROM ops.runs x
     WHERE x.project_id = r.project_id AND x.workflow = 'build' AND x.metadata ->> 'mode' = 'plan'
       AND x.metadata ->> 'plan_for_run' = r.id::text
     ORDER BY x.id DESC LIMIT 1;
    IF NOT FOUND THEN   -- none, or why a waiting deploy has none (ops.plan_gated_deploy)
      RETURN (SELECT jsonb_build_object('plan_run_id', NULL, 'status', 'not_queued', 'git_sha', r.git_sha,
                                        'plan', NULL, 'error', ev.message)
                FROM ops.run_events ev
               WHERE ev.run_id = r.id AND ev.attempt = 0 AND ev.payload ->> 'deploy_plan' = 'not_queued'
               ORDER BY ev.id DESC LIMIT 1);
    END IF;
  END IF;
  RETURN jsonb_build_object('plan_run_id', p.id, 'status', p.status,
                            'git_sha', coalesce(p.result #>> '{git,sha}', p.git_sha),
                            'plan', p.result -> 'plan', 'error', p.error);
END $$;
COMMENT ON FUNCTION ops.deploy_plan IS
  'The newest deploy plan of a deploy run (or a plan run''s own): the modules it would install and update (project.read)';

-- A production deploy that waits for its approval (65_approvals.sql) has
-- its plan queued with it, whoever queued it (a member with run.deploy, or
-- a push through the ingest), so the approver sees what it would install
-- and update (ops.deploy_plan of the deploy). The plan is odooops's own
-- part of the deploy, read-only, and readable by the project's members
-- only. A plan that cannot be queued changes nothing else: the deploy
-- waits as before, the reason in its log and in ops.deploy_plan (status
-- not_queued). Upgrades and rollbacks replace the database: no plan.
CREATE FUNCTION ops.plan_gated_deploy() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF ops._carried_over(NEW.created_at) THEN   -- restored from a dump with its plan
    RETURN NULL;
  END IF;
  BEGIN
    PERFORM ops._queue_deploy_plan(e, NULL, NULL, NEW.id)
       FROM ops.environments e WHERE e.id = NEW.environment_id;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO ops.run_events (run_id, kind, level, message, actor, payload)
    VALUES (NEW.id, 'log', 'warning', left('deploy plan not queued: ' || SQLERRM, 8192), ops.current_actor(),
            '{"deploy_plan": "not_queued"}');
  END;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION ops.plan_gated_deploy IS
  'Trigger: queues the deploy plan of a production deploy waiting for its approval';
CREATE TRIGGER runs_plan_gated_deploy AFTER INSERT ON ops.runs
  FOR EACH ROW WHEN (NEW.workflow = 'deploy' AND NEW.available_at = 'infinity'
                     AND NOT NEW.metadata ?| ARRAY['mode', 'rollback_to_release'])
  EXECUTE FUNCTION ops.plan_gated_deploy();

-- An upgrade test (Odoo.sh's Upgrade tab, for Community Edition): the
-- operator's upgrade hook (the worker's --upgrade-hook, never a setting)
-- runs on a copy of the production environment's latest completed backup,
-- restored beside production into a throw-away database the worker names
-- and drops; production itself is not touched. The revision is the code
-- the upgraded database is to run (default: the project's production
-- branch). Permission upgrade.test on the production environment.
CREATE FUNCTION ops.queue_upgrade_test(project_id bigint, env text, git_sha text DEFAULT NULL,
                                       git_ref text DEFAULT NULL)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments := ops._request_environment(project_id, env);
  b ops.backups;
  run ops.runs;
BEGIN
  PERFORM ops.authorize(e.project_id, 'upgrade.test', e.id);
  IF e.stage <> 'production' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s: an upgrade test copies production', e.name, e.stage));
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  SELECT * INTO b FROM ops.backups x
   WHERE x.environment_id = e.id AND x.status = 'completed' AND (x.expires_at IS NULL OR x.expires_at > now())
     AND x.sha256 IS NOT NULL AND x.metadata #>> '{backup,filestore,sha256}' IS NOT NULL
   ORDER BY x.completed_at DESC NULLS LAST, x.id DESC LIMIT 1;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD004', format('environment "%s" has no completed backup to test the upgrade on', e.name),
                       'Take one first: ops.create_backup.');
  END IF;
  IF git_sha IS NULL AND git_ref IS NULL THEN
    SELECT p.production_branch INTO git_ref FROM ops.projects p WHERE p.id = e.project_id;
  END IF;
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, git_sha, git_ref,
    jsonb_build_object('mode', 'upgrade_test', 'backup_id', b.id), 'test', 10);
  PERFORM ops.audit(e.project_id, 'upgrade.test', 'run', run.id,
                    jsonb_build_object('environment', e.name, 'backup_id', b.id));
  RETURN run;
END $$;
COMMENT ON FUNCTION ops.queue_upgrade_test IS
  'Queues an upgrade test: the operator''s upgrade hook on a copy of production''s latest backup, production untouched (upgrade.test)';

-- A production upgrade: a deploy of `mode` upgrade of the revision the
-- upgraded database is to run. It waits for another member's approval
-- (ops.gate_production_run, 65_approvals.sql), then the worker stops
-- production, takes the pre-deploy backup (the run stops without it), runs
-- the operator's upgrade hook on a copy of the database and filestore,
-- swaps the upgraded copy in, starts the new release and checks its
-- health, and puts the previous database, filestore and release back when
-- anything fails (worker/steps/upgrade/). Permission upgrade.run on the
-- production environment.
CREATE FUNCTION ops.request_upgrade(project_id bigint, env text, git_sha text DEFAULT NULL,
                                    git_ref text DEFAULT NULL)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments := ops._request_environment(project_id, env);
  run ops.runs;
BEGIN
  PERFORM ops.authorize(e.project_id, 'upgrade.run', e.id);
  IF e.stage <> 'production' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s: upgrades are tried on copies elsewhere (ops.queue_upgrade_test)',
                                       e.name, e.stage));
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  IF git_sha IS NULL AND git_ref IS NULL THEN
    SELECT p.production_branch INTO git_ref FROM ops.projects p WHERE p.id = e.project_id;
  END IF;
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, git_sha, git_ref,
    jsonb_build_object('mode', 'upgrade'), 'deploy', 0);
  PERFORM ops.audit(e.project_id, 'upgrade.request', 'run', run.id, jsonb_build_object('environment', e.name));
  RETURN run;
END $$;
COMMENT ON FUNCTION ops.request_upgrade IS
  'Requests a production upgrade with the operator''s upgrade hook: approval, pre-deploy backup, put back on failure (upgrade.run)';
