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
                    DEFAULT ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy']
                    CHECK (cardinality(kinds) > 0
                           AND kinds <@ ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy']),
  labels            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
  version           text CHECK (length(version) <= 64),
  hostname          text CHECK (length(hostname) <= 255),
  status            text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'draining', 'disabled', 'offline')),
  registered_at     timestamptz NOT NULL DEFAULT now(),
  last_heartbeat_at timestamptz NOT NULL DEFAULT now()
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
