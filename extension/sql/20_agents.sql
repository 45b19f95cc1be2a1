-- Workers (agents) that execute runs, their teams, commands addressed to
-- them and their activity log.

CREATE TABLE ops.agent_teams (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  description text,
  created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.agent_teams IS 'A pool of workers; a run with a team_id is claimed only by its members';

CREATE TABLE ops.agents (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  worker_id         text NOT NULL UNIQUE CHECK (length(worker_id) BETWEEN 1 AND 128),
  kinds             text[] NOT NULL
                    DEFAULT ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy', 'restore_test']
                    CHECK (cardinality(kinds) > 0
                           AND kinds <@ ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy', 'restore_test']),
  labels            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
  version           text CHECK (length(version) <= 64),
  hostname          text CHECK (length(hostname) <= 255),
  status            text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'draining', 'disabled', 'offline')),
  registered_at     timestamptz NOT NULL DEFAULT now(),
  last_heartbeat_at timestamptz NOT NULL DEFAULT now(),
  -- The worker's own report (ops.set_agent_health): an unhealthy worker,
  -- e.g. one whose disk is full, claims nothing until it is healthy again.
  healthy           boolean NOT NULL DEFAULT true,
  health_detail     text CHECK (length(health_detail) <= 1024)
);
COMMENT ON TABLE ops.agents IS 'Registered workers: the workflows (kinds) they serve and their liveness';

CREATE TABLE ops.agent_team_members (
  team_id  bigint NOT NULL REFERENCES ops.agent_teams ON DELETE CASCADE,
  agent_id bigint NOT NULL REFERENCES ops.agents ON DELETE CASCADE,
  added_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, agent_id)
);
CREATE INDEX agent_team_members_agent ON ops.agent_team_members (agent_id);

CREATE TABLE ops.agent_tasks (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  agent_id        bigint NOT NULL REFERENCES ops.agents ON DELETE CASCADE,
  command         text NOT NULL CHECK (command IN ('drain', 'resume', 'reload', 'cancel_run')),
  run_id          bigint,   -- for cancel_run; constraint added with ops.runs
  payload         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
  status          text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'acknowledged', 'done', 'failed')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  acknowledged_at timestamptz,
  completed_at    timestamptz,
  CHECK ((status IN ('done', 'failed')) = (completed_at IS NOT NULL)),
  CHECK (status = 'pending' OR acknowledged_at IS NOT NULL),
  CHECK ((command = 'cancel_run') = (run_id IS NOT NULL))
);
COMMENT ON TABLE ops.agent_tasks IS 'Commands addressed to one worker (drain, resume, reload, cancel a run)';
CREATE INDEX agent_tasks_pending ON ops.agent_tasks (agent_id, id) WHERE status = 'pending';

CREATE TABLE ops.agent_events (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  agent_id   bigint NOT NULL REFERENCES ops.agents ON DELETE CASCADE,
  kind       text NOT NULL CHECK (kind IN ('registered', 'status', 'task', 'lost', 'note')),
  message    text NOT NULL CHECK (length(message) BETWEEN 1 AND 8192),
  payload    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.agent_events IS 'Worker activity log: registration, status changes, tasks, lost heartbeats';
CREATE INDEX agent_events_agent ON ops.agent_events (agent_id, id);

-- Registers (or updates) a worker: the workflows it serves, its team, labels
-- and version. Re-registering an offline worker makes it active again.
-- Like every worker RPC, only a login bound to worker_id may call it
-- (ops.authorize_worker, 55_worker_identity.sql).
CREATE FUNCTION ops.register_agent(
  worker_id text, kinds text[] DEFAULT NULL, team text DEFAULT NULL,
  labels jsonb DEFAULT '{}', version text DEFAULT NULL, hostname text DEFAULT NULL)
RETURNS ops.agents LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  agent ops.agents;
  team_row ops.agent_teams;
BEGIN
  IF worker_id IS NULL OR length(worker_id) NOT BETWEEN 1 AND 128 THEN
    PERFORM ops._raise('OD004', 'worker_id must be 1 to 128 characters');
  END IF;
  PERFORM ops._check_length('team', team, 255);
  PERFORM ops._check_length('version', version, 64);
  PERFORM ops._check_length('hostname', hostname, 255);
  PERFORM ops._check_json_size('labels', labels, 65536);
  IF cardinality(kinds) > 7 THEN
    RAISE EXCEPTION USING ERRCODE = 'OD005', MESSAGE = 'kinds has too many entries',
      DETAIL = format('%s entries, the limit is 7.', cardinality(kinds));
  END IF;
  PERFORM ops.authorize_worker(worker_id);
  IF kinds IS NOT NULL AND (cardinality(kinds) = 0 OR NOT kinds <@
      ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy', 'restore_test']) THEN
    PERFORM ops._raise('OD004', 'kinds must be a non-empty list of workflows',
                       'Workflows: build, test, deploy, backup, restore, destroy, restore_test.');
  END IF;
  IF labels IS NULL OR jsonb_typeof(labels) <> 'object' THEN
    PERFORM ops._raise('OD004', 'labels must be a JSON object');
  END IF;
  IF team IS NOT NULL THEN
    SELECT * INTO team_row FROM ops.agent_teams t WHERE t.name = team;
    IF NOT FOUND THEN
      PERFORM ops._raise('OD002', format('unknown agent team "%s"', team));
    END IF;
  END IF;

  INSERT INTO ops.agents AS a (worker_id, kinds, labels, version, hostname)
  VALUES (register_agent.worker_id,
          coalesce(kinds, ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy', 'restore_test']),
          labels, version, hostname)
  ON CONFLICT ON CONSTRAINT agents_worker_id_key DO UPDATE
    SET kinds = EXCLUDED.kinds, labels = EXCLUDED.labels, version = EXCLUDED.version,
        hostname = EXCLUDED.hostname, last_heartbeat_at = now(),
        status = CASE WHEN a.status = 'disabled' THEN 'disabled' ELSE 'active' END
  RETURNING * INTO agent;

  DELETE FROM ops.agent_team_members m WHERE m.agent_id = agent.id
    AND m.team_id IS DISTINCT FROM team_row.id;
  IF team_row.id IS NOT NULL THEN
    INSERT INTO ops.agent_team_members (team_id, agent_id) VALUES (team_row.id, agent.id)
    ON CONFLICT DO NOTHING;
  END IF;

  INSERT INTO ops.agent_events (agent_id, kind, message, payload)
  VALUES (agent.id, 'registered', format('worker %s registered (%s)', agent.worker_id, agent.status),
          jsonb_build_object('kinds', agent.kinds, 'team', team, 'version', agent.version));
  RETURN agent;
END $$;
COMMENT ON FUNCTION ops.register_agent IS 'Registers or updates a worker; claims then honour its kinds and team';

-- Records that a worker is alive; returns its status (a draining or disabled
-- worker should stop claiming). `required` false: an unregistered worker
-- gets NULL instead of an error.
CREATE FUNCTION ops.agent_heartbeat(worker_id text, required boolean DEFAULT true) RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  result text;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops.authorize_worker(worker_id);
  UPDATE ops.agents a SET last_heartbeat_at = now(),
         status = CASE WHEN a.status = 'offline' THEN 'active' ELSE a.status END
   WHERE a.worker_id = agent_heartbeat.worker_id
  RETURNING a.status INTO result;
  IF NOT FOUND AND required THEN
    PERFORM ops._raise('OD002', format('unknown worker "%s"', worker_id),
                       'Register it first with ops.register_agent().');
  END IF;
  RETURN result;
END $$;
COMMENT ON FUNCTION ops.agent_heartbeat IS 'Records that a worker is alive and returns its status';

-- A worker announces it is draining (stops claiming) or going offline; a
-- disabled worker stays disabled.
CREATE FUNCTION ops.set_agent_status(worker_id text, status text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result text;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops.authorize_worker(worker_id);
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
COMMENT ON FUNCTION ops.set_agent_status IS 'A worker marks itself draining or offline (a disabled worker stays disabled)';

-- A worker reports whether it can take work (false: e.g. its state
-- directory's disk is full) and why; a change is logged in agent_events.
-- Claims skip an unhealthy worker (ops.claim_next_run).
CREATE FUNCTION ops.set_agent_health(worker_id text, healthy boolean, detail text DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  agent ops.agents;
  was boolean;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops._check_length('detail', detail, 1024);
  PERFORM ops.authorize_worker(worker_id);
  IF healthy IS NULL THEN
    PERFORM ops._raise('OD004', 'healthy must be true or false');
  END IF;
  SELECT a.healthy INTO was FROM ops.agents a WHERE a.worker_id = set_agent_health.worker_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('unknown worker "%s"', worker_id),
                       'Register it first with ops.register_agent().');
  END IF;
  UPDATE ops.agents a SET healthy = set_agent_health.healthy,
         health_detail = CASE WHEN set_agent_health.healthy THEN NULL ELSE detail END,
         last_heartbeat_at = now()
   WHERE a.worker_id = set_agent_health.worker_id
  RETURNING * INTO agent;
  IF was IS DISTINCT FROM healthy THEN
    INSERT INTO ops.agent_events (agent_id, kind, message, payload)
    VALUES (agent.id, 'status',
            format('worker %s is %s', agent.worker_id,
                   CASE WHEN healthy THEN 'healthy again' ELSE 'unhealthy' END
                   || coalesce(': ' || agent.health_detail, '')),
            jsonb_build_object('healthy', healthy));
  END IF;
  RETURN agent.healthy;
END $$;
COMMENT ON FUNCTION ops.set_agent_health IS
  'A worker reports whether it can take work (false, with a reason, while e.g. its disk is full); claims skip it meanwhile';
