-- Where an environment lives. Its running Odoo, filestore and ports are on
-- one worker's host: the registered worker that completed its first
-- successful deploy (or restore: both create the state), or a team of workers an operator pinned it to (workers
-- sharing one host). Every later run that touches that state (deploy,
-- backup, restore, destroy) is claimed there only; builds and tests, which
-- work on a checkout and a throw-away database, go to any worker. A run
-- whose host is gone waits (ops.run_waiting_reason says why); moving an
-- environment is ops.move_environment. docs/environment-hosts.md.
--
-- The route is copied onto each run (runs.host_worker_id, runs.team_id) so
-- that a claim decides on the run row it locks: a claim racing a move
-- re-reads that row (READ COMMITTED re-check), never a stale environment.

ALTER TABLE ops.environments
  ADD COLUMN host_worker_id text CHECK (length(host_worker_id) BETWEEN 1 AND 128),
  ADD COLUMN host_team_id   bigint REFERENCES ops.agent_teams ON DELETE RESTRICT,
  ADD CONSTRAINT environments_one_host CHECK (host_worker_id IS NULL OR host_team_id IS NULL);
COMMENT ON COLUMN ops.environments.host_worker_id IS
  'The worker holding this environment''s state; its deploy, backup, restore and destroy runs are claimed by it only';
COMMENT ON COLUMN ops.environments.host_team_id IS
  'The team of workers (one host) this environment is pinned to; its deploy, backup, restore and destroy runs are claimed by members only';

ALTER TABLE ops.runs ADD COLUMN host_worker_id text CHECK (length(host_worker_id) BETWEEN 1 AND 128);
COMMENT ON COLUMN ops.runs.host_worker_id IS
  'Only this worker may claim the run: the host of its environment (ops.environments.host_worker_id)';

-- The host changes only through ops.move_environment and the first
-- deploy or restore (functions owned by the extension owner, which keep the
-- waiting runs routed and write the audit trail): a direct write by an
-- administrator is refused. The operator (a superuser or the extension
-- owner) may still write it, as any row.
CREATE FUNCTION ops._guard_environment_host() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT coalesce((SELECT pg_catalog.pg_has_role(current_user, x.extowner, 'MEMBER')
                     FROM pg_catalog.pg_extension x WHERE x.extname = 'odooops'), false) THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('the host of environment "%s" changes only through ops.move_environment', NEW.name);
  END IF;
  RETURN NEW;
END $$;
COMMENT ON FUNCTION ops._guard_environment_host IS
  'Refuses a direct write of an environment''s host: it changes through ops.move_environment (audited, waiting runs re-routed)';
CREATE TRIGGER environments_guard_host_insert BEFORE INSERT ON ops.environments
  FOR EACH ROW WHEN (NEW.host_worker_id IS NOT NULL OR NEW.host_team_id IS NOT NULL)
  EXECUTE FUNCTION ops._guard_environment_host();
CREATE TRIGGER environments_guard_host_update BEFORE UPDATE OF host_worker_id, host_team_id ON ops.environments
  FOR EACH ROW WHEN (NEW.host_worker_id IS DISTINCT FROM OLD.host_worker_id
                     OR NEW.host_team_id IS DISTINCT FROM OLD.host_team_id)
  EXECUTE FUNCTION ops._guard_environment_host();

-- The workflows that read or change an environment's state on its host.
CREATE FUNCTION ops._runs_on_host(workflow text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT workflow IN ('deploy', 'backup', 'restore', 'destroy')
$$;
COMMENT ON FUNCTION ops._runs_on_host IS
  'Whether runs of a workflow touch their environment''s state and so run on its host (deploy, backup, restore, destroy)';

-- A new run of such a workflow goes where its environment lives. The
-- environment row is key-share locked (as the foreign key does anyway): a
-- move or a first host being recorded, which lock it FOR UPDATE, either
-- waits for this insert (and then re-routes the run) or finishes first (and
-- this read returns the row they wrote). Ordinary updates of the
-- environment do not conflict with it.
CREATE FUNCTION ops.route_run_to_host() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
BEGIN
  IF ops._carried_over(NEW.created_at) OR NOT ops._runs_on_host(NEW.workflow) THEN
    RETURN NEW;   -- restored from a dump with its route, or free to go anywhere
  END IF;
  SELECT * INTO e FROM ops.environments x WHERE x.id = NEW.environment_id FOR KEY SHARE;
  NEW.host_worker_id := e.host_worker_id;
  NEW.team_id := coalesce(e.host_team_id, NEW.team_id);
  RETURN NEW;
END $$;
CREATE TRIGGER runs_route_to_host BEFORE INSERT ON ops.runs
  FOR EACH ROW EXECUTE FUNCTION ops.route_run_to_host();

-- The first successful deploy or restore by a registered worker (both leave
-- a database, a filestore and a started Odoo on its host) makes that worker
-- the host of an environment that has none; the runs already waiting follow.
CREATE FUNCTION ops.record_environment_host() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ops.agents a WHERE a.worker_id = NEW.claimed_by)
     OR NOT EXISTS (SELECT 1 FROM ops.environments x WHERE x.id = NEW.environment_id
                       AND x.host_worker_id IS NULL AND x.host_team_id IS NULL) THEN
    RETURN NULL;   -- hosted already, or a worker that never registered (not tracked as a host)
  END IF;
  -- FOR UPDATE waits for runs being queued (ops.route_run_to_host), so the
  -- re-routing below sees them.
  SELECT * INTO e FROM ops.environments x WHERE x.id = NEW.environment_id FOR UPDATE;
  IF e.host_worker_id IS NOT NULL OR e.host_team_id IS NOT NULL THEN
    RETURN NULL;
  END IF;
  UPDATE ops.environments x SET host_worker_id = NEW.claimed_by, updated_at = now()
   WHERE x.id = e.id
  RETURNING * INTO e;
  UPDATE ops.runs r SET host_worker_id = e.host_worker_id, updated_at = now()
   WHERE r.environment_id = e.id AND r.status = 'queued' AND ops._runs_on_host(r.workflow);
  PERFORM ops.audit(e.project_id, 'environment.host', 'environment', e.id,
                    jsonb_build_object('environment', e.name, 'host_worker_id', e.host_worker_id,
                                       'run_id', NEW.id, 'workflow', NEW.workflow));
  RETURN NULL;
END $$;
CREATE TRIGGER runs_record_environment_host AFTER UPDATE OF status ON ops.runs
  FOR EACH ROW WHEN (NEW.workflow IN ('deploy', 'restore') AND NEW.status = 'succeeded' AND OLD.status <> 'succeeded')
  EXECUTE FUNCTION ops.record_environment_host();

-- Moves an environment to another worker or team. A move changes where its
-- runs go, nothing else: the files of the environment stay on the old
-- host, so the new one starts without them (its next deploy builds the
-- release, a restore brings data and filestore back). It is refused while
-- a deploy, backup, restore or destroy of the environment is held, and it
-- is audited.
CREATE FUNCTION ops.move_environment(project_id bigint, env text, to_worker text DEFAULT NULL,
                                     to_team text DEFAULT NULL, reason text DEFAULT NULL)
RETURNS ops.environments LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  team_row ops.agent_teams;
  held ops.runs;
  moved integer;
BEGIN
  PERFORM ops._check_length('env', env, 255);
  PERFORM ops._check_length('to_worker', to_worker, 128);
  PERFORM ops._check_length('to_team', to_team, 255);
  PERFORM ops._check_length('reason', reason, 8192);
  SELECT * INTO e FROM ops.environments x
   WHERE x.project_id = move_environment.project_id AND x.name = env;
  -- Outside the project its environments are as unknown as missing ones.
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  PERFORM ops.authorize(e.project_id, 'project.manage');
  IF (to_worker IS NULL) = (to_team IS NULL) THEN
    PERFORM ops._raise('OD004', 'name either to_worker or to_team',
                       'A worker hosts an environment alone; a team is workers sharing one host.');
  END IF;
  IF to_worker IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ops.agents a WHERE a.worker_id = to_worker) THEN
    PERFORM ops._raise('OD002', format('unknown worker "%s"', to_worker), 'A worker registers itself when it starts.');
  END IF;
  IF to_team IS NOT NULL THEN
    SELECT * INTO team_row FROM ops.agent_teams t WHERE t.name = to_team;
    IF NOT FOUND THEN
      PERFORM ops._raise('OD002', format('unknown agent team "%s"', to_team));
    END IF;
  END IF;

  SELECT * INTO e FROM ops.environments x WHERE x.id = e.id FOR UPDATE;
  -- Re-route the waiting runs first: a claim holding one of them makes this
  -- wait, and the check below then sees that claim.
  UPDATE ops.runs r SET host_worker_id = to_worker, team_id = team_row.id, updated_at = now()
   WHERE r.environment_id = e.id AND r.status = 'queued' AND ops._runs_on_host(r.workflow);
  GET DIAGNOSTICS moved = ROW_COUNT;
  SELECT * INTO held FROM ops.runs r
   WHERE r.environment_id = e.id AND r.status IN ('claimed', 'running') AND ops._runs_on_host(r.workflow)
   ORDER BY r.id LIMIT 1;
  IF FOUND THEN
    PERFORM ops._raise('OD004', format('environment "%s" has %s run %s held by %s', env, held.workflow, held.id,
                                       held.claimed_by),
                       'Move it once the run has finished (or cancel the run).');
  END IF;

  UPDATE ops.environments x SET host_worker_id = to_worker, host_team_id = team_row.id, updated_at = now()
   WHERE x.id = e.id;
  PERFORM ops.audit(e.project_id, 'environment.move', 'environment', e.id,
                    jsonb_build_object('environment', e.name,
                                       'from_worker', e.host_worker_id,
                                       'from_team', (SELECT t.name FROM ops.agent_teams t WHERE t.id = e.host_team_id),
                                       'to_worker', to_worker, 'to_team', to_team,
                                       'queued_runs', moved, 'reason', reason));
  SELECT * INTO e FROM ops.environments x WHERE x.id = e.id;
  RETURN e;
END $$;
COMMENT ON FUNCTION ops.move_environment IS
  'Moves an environment''s runs to another worker or team (permission project.manage; audited); its files stay on the old host';

-- Why a queued run is not claimed yet, in words: waiting for an approval,
-- its retry time, the environment's host (and what is wrong with it), a
-- run holding the environment, or just a free worker. NULL once the run
-- left the queue.
CREATE FUNCTION ops.run_waiting_reason(run_id bigint) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r ops.runs;
  e ops.environments;
  a ops.agents;
  team text;
  holder ops.runs;
BEGIN
  SELECT * INTO r FROM ops.runs x WHERE x.id = run_id;
  IF NOT FOUND OR NOT ops.can_read_project(r.project_id) THEN
    PERFORM ops._raise('OD002', format('run %s does not exist', run_id));
  END IF;
  IF r.status <> 'queued' THEN
    RETURN NULL;
  END IF;
  SELECT * INTO e FROM ops.environments x WHERE x.id = r.environment_id;
  IF r.available_at = 'infinity' THEN
    RETURN 'waiting for an approval';
  ELSIF r.available_at > now() THEN
    RETURN 'waiting for its retry time';
  END IF;
  IF r.host_worker_id IS NOT NULL THEN
    SELECT * INTO a FROM ops.agents x WHERE x.worker_id = r.host_worker_id;
    IF NOT FOUND THEN
      RETURN format('waiting for worker %s, the host of environment %s, which is no longer registered',
                    r.host_worker_id, e.name);
    ELSIF a.status <> 'active' THEN
      RETURN format('waiting for worker %s, the host of environment %s, which is %s', a.worker_id, e.name, a.status);
    ELSIF NOT a.healthy THEN
      RETURN format('waiting for worker %s, the host of environment %s, which is unhealthy%s', a.worker_id, e.name,
                    coalesce(': ' || a.health_detail, ''));
    ELSIF NOT r.workflow = ANY (a.kinds) THEN
      RETURN format('waiting for worker %s, the host of environment %s, which does not take %s runs',
                    a.worker_id, e.name, r.workflow);
    END IF;
  END IF;
  IF r.team_id IS NOT NULL THEN
    SELECT t.name INTO team FROM ops.agent_teams t WHERE t.id = r.team_id;
    IF NOT EXISTS (SELECT 1 FROM ops.agent_team_members m JOIN ops.agents x ON x.id = m.agent_id
                    WHERE m.team_id = r.team_id AND x.status = 'active' AND x.healthy
                      AND r.workflow = ANY (x.kinds)) THEN
      RETURN format('waiting for a worker of team %s%s: none is active, healthy and taking %s runs', team,
                    CASE WHEN e.host_team_id = r.team_id THEN format(', the host of environment %s', e.name) ELSE '' END,
                    r.workflow);
    END IF;
  END IF;
  IF r.exclusive THEN
    SELECT * INTO holder FROM ops.runs x
     WHERE x.environment_id = r.environment_id AND x.exclusive AND x.status IN ('claimed', 'running') LIMIT 1;
    IF FOUND THEN
      RETURN format('waiting for %s run %s of environment %s to finish', holder.workflow, holder.id, e.name);
    END IF;
  END IF;
  IF r.host_worker_id IS NOT NULL THEN
    RETURN format('waiting for worker %s, the host of environment %s, to claim it', r.host_worker_id, e.name);
  ELSIF r.team_id IS NOT NULL THEN
    RETURN format('waiting for a worker of team %s to claim it', team);
  END IF;
  RETURN 'waiting for a free worker';
END $$;
COMMENT ON FUNCTION ops.run_waiting_reason IS
  'Why a queued run is not claimed yet (approval, retry time, its environment''s host, a run holding the environment); NULL once claimed';
