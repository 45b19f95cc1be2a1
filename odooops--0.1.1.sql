-- odooops schema. Built by concatenating extension/sql/*.sql in name order
-- into odooops--<version>.sql; each file holds one concept.
\echo Use "CREATE EXTENSION odooops" to load this file. \quit

COMMENT ON SCHEMA ops IS 'odooops: Odoo.sh-style control plane (runs, environments, backups, approvals)';

-- Raises an odooops error from SQL with its documented SQLSTATE (docs/errors.md).
CREATE FUNCTION ops._raise(code text, message text, detail text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF detail IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message;
  END IF;
  RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, DETAIL = detail;
END $$;
-- Database roles of odooops (cluster-wide, so created only when missing).
-- Grant them to login roles or to PostgREST/Supabase roles:
--   odooops_api            people: user RPCs and row-level-secured reads
--   odooops_worker         odooops-worker daemons: claim and report runs
--   odooops_admin          platform administrators: everything, all projects
--   odooops_authenticator  grant to PostgREST's login role so the `sub` of
--                          request.jwt.claims is trusted as the user id
--   odooops_ingest         may call the GitHub webhook entry points (grant
--                          to PostgREST's anon: the signature authenticates)
DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['odooops_api', 'odooops_worker', 'odooops_admin', 'odooops_authenticator', 'odooops_ingest'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END $$;
GRANT odooops_api, odooops_worker TO odooops_admin;
-- Projects and their environments (Odoo.sh branches: production, staging,
-- development, and preview environments for pull requests).

CREATE TABLE ops.projects (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  slug              text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  repo_url          text CHECK (length(repo_url) <= 2048),   -- clone URL or local path
  repo_full_name    text CHECK (repo_full_name ~ '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$'),
  production_branch text NOT NULL DEFAULT 'main' CHECK (length(production_branch) BETWEEN 1 AND 255),
  settings          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.projects IS 'An Odoo code base (one git repository) and its environments';

CREATE TABLE ops.environments (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id     bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  name           text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  stage          text NOT NULL CHECK (stage IN ('production', 'staging', 'development', 'preview')),
  branch_pattern text CHECK (length(branch_pattern) BETWEEN 1 AND 255),  -- glob: main, feature/*
  db_name        text NOT NULL CHECK (db_name ~ '^[a-z0-9_][a-z0-9_-]{0,62}$'),
  status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'destroying', 'destroyed')),
  settings       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
  branch         text CHECK (length(branch) BETWEEN 1 AND 255),  -- the one branch a per-branch env tracks
  pull_request   integer CHECK (pull_request > 0),                -- preview environments
  expires_at     timestamptz,                                     -- development and preview TTL
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  destroyed_at   timestamptz,
  UNIQUE (project_id, name),
  CHECK ((status = 'destroyed') = (destroyed_at IS NOT NULL))
);
COMMENT ON TABLE ops.environments IS 'A deployment target of a project: its stage, branch pattern and database';

-- One live production environment per project, as on Odoo.sh.
CREATE UNIQUE INDEX environments_one_production
  ON ops.environments (project_id) WHERE stage = 'production' AND status <> 'destroyed';
CREATE UNIQUE INDEX environments_branch_live
  ON ops.environments (project_id, branch) WHERE branch IS NOT NULL AND status <> 'destroyed';
CREATE UNIQUE INDEX environments_db_name_live
  ON ops.environments (db_name) WHERE status <> 'destroyed';
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
-- The one queue: build, test, deploy, backup, restore and destroy are
-- workflows of a run. States and transitions: docs/run-states.md; the legal
-- transitions live in extension/core/run_state.cpp and the invariants of each
-- state are the CHECK constraints below.

CREATE TABLE ops.runs (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id       bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  environment_id   bigint NOT NULL REFERENCES ops.environments ON DELETE RESTRICT,
  workflow         text NOT NULL
                   CHECK (workflow IN ('build', 'test', 'deploy', 'backup', 'restore', 'destroy')),
  -- Deploy, restore and destroy change the environment itself: at most one
  -- of them is claimed or running per environment (index below).
  exclusive        boolean GENERATED ALWAYS AS (workflow IN ('deploy', 'restore', 'destroy')) STORED,
  status           text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'claimed', 'running', 'succeeded', 'failed', 'cancelled')),
  priority         integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN -1000 AND 1000),
  git_sha          text CHECK (git_sha ~ '^[0-9a-fA-F]{4,64}$'),
  git_ref          text CHECK (length(git_ref) BETWEEN 1 AND 255),
  metadata         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  result           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(result) = 'object'),
  error            text,
  idempotency_key  text CHECK (length(idempotency_key) BETWEEN 1 AND 200),
  team_id          bigint REFERENCES ops.agent_teams ON DELETE RESTRICT,
  requested_by     text,
  -- attempt is the fencing token: it grows on every claim, and every worker
  -- call must present the attempt it was handed.
  attempt          integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  max_attempts     integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
  available_at     timestamptz NOT NULL DEFAULT now(),   -- not claimable before
  claimed_by       text,
  claimed_at       timestamptz,
  started_at       timestamptz,
  lease_expires_at timestamptz,
  finished_at      timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project_id, idempotency_key),
  CHECK (attempt <= max_attempts),
  CONSTRAINT runs_queued_is_unheld CHECK (
    status <> 'queued' OR (claimed_by IS NULL AND lease_expires_at IS NULL AND finished_at IS NULL)),
  CONSTRAINT runs_held_has_lease CHECK (
    status NOT IN ('claimed', 'running') OR (claimed_by IS NOT NULL AND claimed_at IS NOT NULL
      AND lease_expires_at IS NOT NULL AND attempt >= 1 AND finished_at IS NULL)),
  -- started_at is NULL exactly while claimed: together with claimed_by it
  -- tells a held run's state, which transition events record as from_status.
  CONSTRAINT runs_running_has_started CHECK (status <> 'running' OR started_at IS NOT NULL),
  CONSTRAINT runs_claimed_not_started CHECK (status <> 'claimed' OR started_at IS NULL),
  CONSTRAINT runs_finished_has_finished_at CHECK (
    (status IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
  CONSTRAINT runs_finished_has_no_lease CHECK (
    status NOT IN ('succeeded', 'failed', 'cancelled') OR lease_expires_at IS NULL),
  CONSTRAINT runs_code_workflows_have_revision CHECK (
    workflow NOT IN ('build', 'test', 'deploy') OR git_sha IS NOT NULL OR git_ref IS NOT NULL)
);
-- A busy queue churns its head: vacuum early so the claim index stays short.
ALTER TABLE ops.runs SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
                          autovacuum_analyze_scale_factor = 0.02);
COMMENT ON TABLE ops.runs IS 'The run queue: one row per requested build, test, deploy, backup, restore or destroy';
COMMENT ON COLUMN ops.runs.attempt IS 'Fencing token: incremented by every claim; worker calls must present it';

-- The claim path: queued runs in claim order, and nothing else.
CREATE INDEX runs_claim_order ON ops.runs (priority DESC, available_at, id) WHERE status = 'queued';
-- The stale-run detector: held runs by lease expiry.
CREATE INDEX runs_held_by_lease ON ops.runs (lease_expires_at) WHERE status IN ('claimed', 'running');
-- Backstop for the per-environment exclusivity the claim enforces.
CREATE UNIQUE INDEX runs_one_exclusive_per_environment
  ON ops.runs (environment_id) WHERE exclusive AND status IN ('claimed', 'running');
CREATE INDEX runs_project_created ON ops.runs (project_id, created_at DESC);
CREATE INDEX runs_environment_created ON ops.runs (environment_id, created_at DESC);

ALTER TABLE ops.agent_tasks
  ADD CONSTRAINT agent_tasks_run_fk FOREIGN KEY (run_id) REFERENCES ops.runs ON DELETE CASCADE;
-- The append-only audit trail of runs: every transition and every log line.
-- Partitioned by month on created_at so old months are dropped, not deleted.

CREATE SEQUENCE ops.run_events_id_seq AS bigint;

CREATE TABLE ops.run_events (
  id          bigint NOT NULL DEFAULT nextval('ops.run_events_id_seq'),
  run_id      bigint NOT NULL REFERENCES ops.runs ON DELETE RESTRICT,
  created_at  timestamptz NOT NULL DEFAULT now(),
  attempt     integer NOT NULL DEFAULT 0,
  kind        text NOT NULL CHECK (kind IN ('transition', 'log')),
  level       text NOT NULL CHECK (level IN ('debug', 'info', 'notice', 'warning', 'error')),
  message     text NOT NULL CHECK (length(message) BETWEEN 1 AND 8192),
  stream      text CHECK (length(stream) <= 128),   -- stdout, stderr, ...
  step        text CHECK (length(step) <= 128),     -- workflow step name
  from_status text,
  to_status   text,
  actor       text,                                 -- worker id or user
  payload     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
  PRIMARY KEY (id, created_at),
  CHECK ((kind = 'transition') = (to_status IS NOT NULL))
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE ops.run_events_id_seq OWNED BY ops.run_events.id;
COMMENT ON TABLE ops.run_events IS 'Append-only log of run transitions and output, partitioned by month';

CREATE INDEX run_events_run ON ops.run_events (run_id, id);

-- Rows that fall outside every monthly partition land here instead of
-- failing; ops.ensure_run_event_partitions() keeps months ahead so it stays empty.
CREATE TABLE ops.run_events_default PARTITION OF ops.run_events DEFAULT;

-- Refuses any change to an append-only table (audit trails). The table is
-- named by the trigger's argument: on a partitioned table TG_TABLE_NAME
-- would name the partition.
CREATE FUNCTION ops.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'OD008',
    MESSAGE = format('ops.%s is append-only', TG_ARGV[0]),
    HINT = 'Old rows are removed by dropping whole partitions, never edited.';
END $$;

CREATE TRIGGER run_events_append_only
  BEFORE UPDATE OR DELETE ON ops.run_events
  FOR EACH ROW EXECUTE FUNCTION ops.refuse_change('run_events');
CREATE TRIGGER run_events_no_truncate
  BEFORE TRUNCATE ON ops.run_events
  FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_change('run_events');

-- Creates the monthly partitions from the current month through
-- `months_ahead` months ahead; returns how many it created.
CREATE FUNCTION ops.ensure_run_event_partitions(months_ahead integer DEFAULT 2)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  first_month date := date_trunc('month', now())::date;
  month date;
  name text;
  created integer := 0;
BEGIN
  IF months_ahead NOT BETWEEN 0 AND 60 THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004', MESSAGE = 'months_ahead must be between 0 and 60';
  END IF;
  FOR i IN 0..months_ahead LOOP
    month := first_month + make_interval(months => i);
    name := 'run_events_' || to_char(month, 'YYYY_MM');
    IF to_regclass('ops.' || name) IS NULL THEN
      EXECUTE format('CREATE TABLE ops.%I PARTITION OF ops.run_events FOR VALUES FROM (%L) TO (%L)',
                     name, month::timestamptz, (month + interval '1 month')::timestamptz);
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END $$;

SELECT ops.ensure_run_event_partitions(2);
-- Outputs of runs: images, logs, reports, archives, with expiry.

CREATE TABLE ops.artifacts (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id      bigint NOT NULL REFERENCES ops.runs ON DELETE RESTRICT,
  project_id  bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  kind        text NOT NULL CHECK (kind IN ('image', 'log', 'sbom', 'archive', 'report', 'other')),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
  location    text NOT NULL CHECK (length(location) BETWEEN 1 AND 2048),  -- file://, s3://, image ref
  size_bytes  bigint CHECK (size_bytes >= 0),
  sha256      text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  metadata    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  expired_at  timestamptz,
  UNIQUE (run_id, name),
  CHECK (expires_at IS NULL OR expires_at > created_at)
);
COMMENT ON TABLE ops.artifacts IS 'Build outputs (images, logs, SBOMs, archives) with their location and expiry';
CREATE INDEX artifacts_expiry ON ops.artifacts (expires_at) WHERE expired_at IS NULL AND expires_at IS NOT NULL;
-- Backups of an environment's database and filestore, and restores of them.

CREATE TABLE ops.backups (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id     bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  environment_id bigint NOT NULL REFERENCES ops.environments ON DELETE RESTRICT,
  run_id         bigint REFERENCES ops.runs ON DELETE RESTRICT,   -- the backup run
  backup_type    text NOT NULL
                 CHECK (backup_type IN ('daily', 'weekly', 'monthly', 'manual', 'pre_deploy', 'pre_restore')),
  status         text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'completed', 'failed', 'expired', 'deleted')),
  location       text CHECK (length(location) BETWEEN 1 AND 2048),
  size_bytes     bigint CHECK (size_bytes >= 0),
  sha256         text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  metadata       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  error          text,
  requested_by   text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  started_at     timestamptz,
  completed_at   timestamptz,
  expires_at     timestamptz,
  expired_at     timestamptz,
  CONSTRAINT backups_completed_is_recorded CHECK (
    status NOT IN ('completed', 'expired', 'deleted')
    OR (location IS NOT NULL AND size_bytes IS NOT NULL AND sha256 IS NOT NULL AND completed_at IS NOT NULL)),
  CONSTRAINT backups_failed_has_error CHECK (status <> 'failed' OR error IS NOT NULL),
  CONSTRAINT backups_expired_has_time CHECK ((status IN ('expired', 'deleted')) = (expired_at IS NOT NULL))
);
COMMENT ON TABLE ops.backups IS 'Database dump + filestore of an environment: location, size, checksum, expiry';
CREATE INDEX backups_environment_created ON ops.backups (environment_id, created_at DESC);
CREATE INDEX backups_expiry ON ops.backups (expires_at) WHERE status = 'completed';

CREATE TABLE ops.approvals (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id     bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  environment_id bigint NOT NULL REFERENCES ops.environments ON DELETE RESTRICT,
  subject        text NOT NULL CHECK (subject IN ('restore', 'deploy')),
  subject_id     bigint NOT NULL,            -- ops.restores.id or ops.runs.id
  status         text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
  requested_by   text NOT NULL,
  decided_by     text,
  decided_at     timestamptz,
  reason         text CHECK (length(reason) <= 2000),
  created_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL DEFAULT now() + interval '24 hours',
  UNIQUE (subject, subject_id),
  CONSTRAINT approvals_decision_recorded CHECK ((status = 'pending') = (decided_at IS NULL)),
  CONSTRAINT approvals_decider_named CHECK (status NOT IN ('approved', 'rejected') OR decided_by IS NOT NULL),
  CONSTRAINT approvals_four_eyes CHECK (decided_by IS NULL OR decided_by <> requested_by),
  CHECK (expires_at > created_at)
);
COMMENT ON TABLE ops.approvals IS 'Gate on production changes: decided by someone other than the requester; immutable once decided';
CREATE INDEX approvals_pending ON ops.approvals (expires_at) WHERE status = 'pending';

CREATE TABLE ops.restores (
  id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  backup_id             bigint NOT NULL REFERENCES ops.backups ON DELETE RESTRICT,
  project_id            bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  target_environment_id bigint NOT NULL REFERENCES ops.environments ON DELETE RESTRICT,
  approval_id           bigint REFERENCES ops.approvals ON DELETE RESTRICT,
  run_id                bigint REFERENCES ops.runs ON DELETE RESTRICT,
  status                text NOT NULL
                        CHECK (status IN ('pending_approval', 'queued', 'running', 'completed',
                                          'failed', 'rejected', 'expired', 'cancelled')),
  requested_by          text NOT NULL,
  metadata              jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  finished_at           timestamptz,
  CHECK (status <> 'pending_approval' OR approval_id IS NOT NULL),
  CHECK (status NOT IN ('queued', 'running', 'completed') OR run_id IS NOT NULL),
  CHECK ((status IN ('completed', 'failed', 'rejected', 'expired', 'cancelled')) = (finished_at IS NOT NULL))
);
COMMENT ON TABLE ops.restores IS 'A request to restore a backup into an environment; into production it waits for an approval';
CREATE INDEX restores_target ON ops.restores (target_environment_id, created_at DESC);
-- Who may do what: roles, their permissions (optionally per stage), project
-- membership and per-environment grants and denials. User ids are text: the
-- `sub` of a JWT (PostgREST/Supabase) or a mapped login role.

CREATE TABLE ops.roles (
  name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z_]{0,31}$'),
  rank        integer NOT NULL UNIQUE CHECK (rank BETWEEN 0 AND 1000),  -- higher holds more
  description text NOT NULL
);
COMMENT ON TABLE ops.roles IS 'Project roles, as on Odoo.sh: owner, admin, developer, viewer, auditor';

INSERT INTO ops.roles (name, rank, description) VALUES
  ('owner', 100, 'Everything, including membership and deletion'),
  ('admin', 80, 'Production tools, approvals, staging backups, settings'),
  ('developer', 50, 'Development and staging work; reads production history'),
  ('viewer', 20, 'Reads the project'),
  ('auditor', 10, 'Reads the audit trail');

CREATE TABLE ops.policies (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  role       text NOT NULL REFERENCES ops.roles ON DELETE CASCADE,
  permission text NOT NULL CHECK (permission ~ '^[a-z_]+(\.[a-z_]+)*$'),
  stage      text CHECK (stage IN ('production', 'staging', 'development', 'preview')),  -- NULL: every stage
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.policies IS 'Permissions granted to a role, for every stage or for one stage';
CREATE UNIQUE INDEX policies_role_permission_stage
  ON ops.policies (role, permission, coalesce(stage, '*'));

CREATE TABLE ops.project_members (
  project_id bigint NOT NULL REFERENCES ops.projects ON DELETE CASCADE,
  user_id    text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 255),
  role       text NOT NULL REFERENCES ops.roles ON DELETE RESTRICT,
  added_by   text,
  added_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, user_id)
);
COMMENT ON TABLE ops.project_members IS 'Users of a project and their role';
CREATE INDEX project_members_user ON ops.project_members (user_id);

CREATE TABLE ops.env_permissions (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  environment_id bigint NOT NULL REFERENCES ops.environments ON DELETE CASCADE,
  user_id        text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 255),
  permission     text NOT NULL CHECK (permission ~ '^[a-z_]+(\.[a-z_]+)*$'),
  effect         text NOT NULL CHECK (effect IN ('allow', 'deny')),
  created_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (environment_id, user_id, permission)
);
COMMENT ON TABLE ops.env_permissions IS 'Per-user, per-environment grants and denials; a denial wins';
-- Who is calling. The actor always comes from the session, never from a
-- parameter a caller could fake:
--  * behind PostgREST/Supabase: the `sub` of request.jwt.claims — trusted
--    only when the login role (PostgREST's authenticator) was granted
--    odooops_authenticator, so a plain database user cannot forge claims;
--  * on plain PostgreSQL: the invoking role (SET ROLE target, else the
--    login role), mapped through ops.user_logins, else its own name when it
--    can log in.
-- docs/access-control.md describes the set-up.

CREATE TABLE ops.user_logins (
  login      name PRIMARY KEY,
  user_id    text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 255),
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.user_logins IS 'Maps PostgreSQL login roles to odooops user ids (plain PostgreSQL identity)';

-- The role a call was made as, even inside SECURITY DEFINER functions
-- (which change current_user but not the session's role setting).
CREATE FUNCTION ops.invoking_role() RETURNS name LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN current_setting('role') IN ('none', '') THEN session_user
              ELSE current_setting('role')::name END
$$;

CREATE FUNCTION ops.current_user_id() RETURNS text LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  claims text := current_setting('request.jwt.claims', true);
  invoker name := ops.invoking_role();
  mapped text;
BEGIN
  IF coalesce(claims, '') <> '' AND pg_has_role(session_user, 'odooops_authenticator', 'MEMBER') THEN
    BEGIN
      RETURN nullif(claims::jsonb ->> 'sub', '');
    EXCEPTION WHEN invalid_text_representation THEN
      RAISE EXCEPTION USING ERRCODE = '28000', MESSAGE = 'request.jwt.claims is not valid JSON';
    END;
  END IF;
  SELECT l.user_id INTO mapped FROM ops.user_logins l WHERE l.login = invoker;
  IF mapped IS NOT NULL THEN
    RETURN mapped;
  END IF;
  RETURN (SELECT r.rolname::text FROM pg_roles r WHERE r.rolname = invoker AND r.rolcanlogin);
END $$;
COMMENT ON FUNCTION ops.current_user_id IS 'The calling user: JWT sub behind PostgREST, else the mapped or own login role; NULL for anonymous';

-- Platform administrators (odooops_admin members and superusers) are not
-- bound by project permissions.
CREATE FUNCTION ops.is_admin() RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
  SELECT pg_has_role(ops.invoking_role(), 'odooops_admin', 'MEMBER')
$$;

-- The actor recorded in events and requests.
CREATE FUNCTION ops.current_actor() RETURNS text LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(ops.current_user_id(), ops.invoking_role()::text)
$$;
-- What each role may do, per stage, in the spirit of Odoo.sh: development
-- is open to every project role, staging backups and restores are for
-- admins, production tools are for admins while others see history.
-- Evaluated by the native ops.user_has_permission().

INSERT INTO ops.policies (role, permission, stage)
SELECT r.role, p.permission, p.stage
  FROM (VALUES
    -- permission,        stage,         roles
    ('project.read',      NULL,          ARRAY['owner', 'admin', 'developer', 'viewer', 'auditor']),
    ('audit.read',        NULL,          ARRAY['owner', 'admin', 'auditor']),
    ('project.manage',    NULL,          ARRAY['owner', 'admin']),
    ('members.manage',    NULL,          ARRAY['owner']),
    ('secrets.manage',    NULL,          ARRAY['owner', 'admin']),
    ('env.manage',        NULL,          ARRAY['owner', 'admin']),
    ('env.manage',        'development', ARRAY['developer']),
    ('env.manage',        'preview',     ARRAY['developer']),
    ('run.queue',         NULL,          ARRAY['owner', 'admin']),
    ('run.queue',         'staging',     ARRAY['developer']),
    ('run.queue',         'development', ARRAY['developer']),
    ('run.queue',         'preview',     ARRAY['developer']),
    ('run.cancel',        NULL,          ARRAY['owner', 'admin']),
    ('run.cancel',        'staging',     ARRAY['developer']),
    ('run.cancel',        'development', ARRAY['developer']),
    ('run.cancel',        'preview',     ARRAY['developer']),
    ('run.comment',       NULL,          ARRAY['owner', 'admin', 'developer']),
    ('run.override',      NULL,          ARRAY['owner', 'admin']),
    ('backup.create',     NULL,          ARRAY['owner', 'admin']),
    ('backup.create',     'development', ARRAY['developer']),
    ('backup.create',     'preview',     ARRAY['developer']),
    ('backup.restore',    NULL,          ARRAY['owner', 'admin']),
    ('backup.restore',    'development', ARRAY['developer']),
    ('backup.restore',    'preview',     ARRAY['developer']),
    ('approval.decide',   NULL,          ARRAY['owner', 'admin'])
  ) AS p(permission, stage, roles),
  LATERAL unnest(p.roles) AS r(role);

-- Does the calling user hold `permission` in the project (project-wide
-- when env_id is NULL, else for that environment's stage)? An environment
-- grant or denial for the user wins over the role's policies.
CREATE FUNCTION ops.user_has_permission(project_id bigint, permission text, env_id bigint DEFAULT NULL)
RETURNS boolean LANGUAGE c STABLE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'odooops_user_has_permission';

-- The same for a stage rather than an existing environment (creating one).
CREATE FUNCTION ops.user_has_stage_permission(project_id bigint, permission text, stage text)
RETURNS boolean LANGUAGE c STABLE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'odooops_user_has_stage_permission';

-- Is the calling user a member of the project (or a platform admin)? Used by
-- row-level security; SECURITY DEFINER so policies need no access to
-- ops.project_members themselves.
CREATE FUNCTION ops.can_read_project(project_id bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT ops.is_admin() OR EXISTS (
    SELECT 1 FROM ops.project_members m
     WHERE m.project_id = can_read_project.project_id AND m.user_id = ops.current_user_id())
$$;

-- Raises 42501 (insufficient_privilege, which PostgREST answers with 403)
-- unless the caller is a platform admin or holds the permission.
CREATE FUNCTION ops.authorize(project_id bigint, permission text, env_id bigint DEFAULT NULL)
RETURNS void LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF ops.is_admin() OR ops.user_has_permission(project_id, permission, env_id) THEN
    RETURN;
  END IF;
  RAISE EXCEPTION USING ERRCODE = '42501',
    MESSAGE = format('permission denied: %s on project %s%s', permission, project_id,
                     CASE WHEN env_id IS NULL THEN ''
                          ELSE format(' (%s)', (SELECT e.stage || ' environment ' || e.name
                                                 FROM ops.environments e WHERE e.id = env_id)) END),
    DETAIL = format('User %s.', coalesce(quote_literal(ops.current_user_id()), 'anonymous'));
END $$;
-- Decisions and administrative actions that are not run transitions
-- (approval requests and decisions, secrets set, projects created). Like
-- run_events it is append-only.

CREATE TABLE ops.audit_log (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id bigint REFERENCES ops.projects ON DELETE RESTRICT,
  actor      text NOT NULL,
  action     text NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)*$'),
  subject    text NOT NULL,
  subject_id bigint,
  payload    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.audit_log IS 'Append-only trail of approvals, decisions and administrative actions';
CREATE INDEX audit_log_project ON ops.audit_log (project_id, id);

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON ops.audit_log
  FOR EACH ROW EXECUTE FUNCTION ops.refuse_change('audit_log');
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON ops.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_change('audit_log');

CREATE FUNCTION ops.audit(project_id bigint, action text, subject text, subject_id bigint,
                          payload jsonb DEFAULT '{}')
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  INSERT INTO ops.audit_log (project_id, actor, action, subject, subject_id, payload)
  VALUES (project_id, ops.current_actor(), action, subject, subject_id, payload)
$$;

-- Secrets (GitHub webhook secret, storage keys, tokens): written through
-- ops.set_project_secret, never readable by user or worker roles.
CREATE TABLE ops.project_secrets (
  project_id bigint NOT NULL REFERENCES ops.projects ON DELETE CASCADE,
  name       text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  value      text NOT NULL CHECK (length(value) BETWEEN 1 AND 8192),
  updated_by text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, name)
);
COMMENT ON TABLE ops.project_secrets IS 'Secrets of a project; no user-facing role may read this table';
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
-- environment, and the backup it makes or restores (with the environment the
-- backup came from). Fenced like every worker call.
CREATE FUNCTION ops.run_context(run_id bigint, worker_id text, attempt integer)
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
                                                                'source_db', se.db_name, 'source_stage', se.stage)
                        FROM ops.backups b JOIN ops.environments se ON se.id = b.environment_id
                       WHERE b.id = (r.metadata ->> 'backup_id')::bigint
                          OR (r.metadata ->> 'backup_id' IS NULL AND b.run_id = r.id)
                       ORDER BY b.id DESC LIMIT 1))
    INTO result
    FROM ops.runs r JOIN ops.projects p ON p.id = r.project_id JOIN ops.environments e ON e.id = r.environment_id
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
-- Destroying an environment is a run of workflow `destroy`: the worker stops
-- the instance and drops the database; the environment is marked destroying
-- now and destroyed when that run succeeds (ops.sync_run_subjects).

CREATE FUNCTION ops._destroy_environment(e ops.environments, metadata jsonb, idempotency_key text DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run ops.runs;
BEGIN
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, NULL, NULL, metadata, 'destroy', 0,
                                                idempotency_key);
  UPDATE ops.environments x SET status = 'destroying', updated_at = now() WHERE x.id = e.id;
  RETURN jsonb_build_object('run_id', run.id, 'environment', e.name, 'workflow', 'destroy');
END $$;

CREATE FUNCTION ops.destroy_environment(project_id bigint, env text, reason text DEFAULT NULL)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  queued jsonb;
  run ops.runs;
BEGIN
  SELECT * INTO e FROM ops.environments x WHERE x.project_id = destroy_environment.project_id AND x.name = env;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  PERFORM ops.authorize(e.project_id, 'env.manage', e.id);
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is already %s', env, e.status));
  END IF;
  queued := ops._destroy_environment(e, jsonb_build_object('reason', coalesce(reason, 'requested'),
                                                           'requested_by', ops.current_actor()));
  SELECT * INTO run FROM ops.runs r WHERE r.id = (queued ->> 'run_id')::bigint;
  RETURN run;
END $$;
COMMENT ON FUNCTION ops.destroy_environment IS 'Queues the destruction of an environment (permission env.manage)';

-- Development and preview environments live until expires_at (renewed by
-- every push): then they are destroyed, as Odoo.sh garbage-collects
-- development builds. Called by the scheduler; returns how many.
CREATE FUNCTION ops.expire_environments() RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  n integer := 0;
BEGIN
  FOR e IN SELECT * FROM ops.environments x
            WHERE x.status = 'active' AND x.expires_at <= now() AND x.stage IN ('development', 'preview')
            ORDER BY x.id FOR UPDATE SKIP LOCKED LOOP
    PERFORM ops._destroy_environment(e, jsonb_build_object('reason', 'expired'),
                                     'expire:' || e.id || ':' || extract(epoch FROM e.expires_at));
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;
-- The run queue API. These are native functions (extension/api/*.cpp):
-- they validate input, enforce the state machine and fencing, and write a
-- run event for every transition, all in the caller's transaction.
-- Errors: docs/errors.md. Notification channel: odooops_runs.

CREATE FUNCTION ops.queue_run(
  project_id bigint, env text, git_sha text, git_ref text,
  metadata jsonb DEFAULT '{}', workflow text DEFAULT 'deploy',
  priority integer DEFAULT 0, idempotency_key text DEFAULT NULL,
  max_attempts integer DEFAULT 3)
RETURNS ops.runs LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_queue_run';
COMMENT ON FUNCTION ops.queue_run IS
  'Queues a run of `workflow` for environment `env`; a repeated idempotency key (argument or metadata.idempotency_key) returns the existing run';

-- The same without the permission check, for internal callers only (no
-- grant to any role): GitHub ingest after verifying the signature.
CREATE FUNCTION ops._queue_run_trusted(
  project_id bigint, env text, git_sha text, git_ref text,
  metadata jsonb DEFAULT '{}', workflow text DEFAULT 'deploy',
  priority integer DEFAULT 0, idempotency_key text DEFAULT NULL,
  max_attempts integer DEFAULT 3)
RETURNS ops.runs LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_queue_run_trusted';

CREATE FUNCTION ops.claim_next_run(worker_id text, lease_seconds integer DEFAULT 300, workflows text[] DEFAULT NULL)
RETURNS SETOF ops.runs LANGUAGE c VOLATILE ROWS 1 AS 'MODULE_PATHNAME', 'odooops_claim_next_run';
COMMENT ON FUNCTION ops.claim_next_run IS
  'Claims the next claimable run for the worker (FOR UPDATE SKIP LOCKED): sets a lease and increments attempt, the fencing token';

CREATE FUNCTION ops.claim_runs(worker_id text, n integer, lease_seconds integer DEFAULT 300, workflows text[] DEFAULT NULL)
RETURNS SETOF ops.runs LANGUAGE c VOLATILE ROWS 10 AS 'MODULE_PATHNAME', 'odooops_claim_runs';
COMMENT ON FUNCTION ops.claim_runs IS 'Claims up to n runs at once for a high-throughput worker';

CREATE FUNCTION ops.start_run(run_id bigint, worker_id text, attempt integer, lease_seconds integer DEFAULT 300)
RETURNS ops.runs LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_start_run';
COMMENT ON FUNCTION ops.start_run IS 'Moves a claimed run to running; fenced by worker_id and attempt';

CREATE FUNCTION ops.heartbeat_run(run_id bigint, worker_id text, attempt integer, lease_seconds integer DEFAULT 300)
RETURNS timestamptz LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_heartbeat_run';
COMMENT ON FUNCTION ops.heartbeat_run IS
  'Extends the lease of a held run and returns the new expiry; fails with OD003 once the run was requeued, reclaimed or cancelled';

CREATE FUNCTION ops.release_run(run_id bigint, worker_id text, attempt integer, reason text DEFAULT NULL)
RETURNS ops.runs LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_release_run';
COMMENT ON FUNCTION ops.release_run IS 'Hands a held run back to the queue at once (a draining worker); the attempt stays counted';

-- Worker calls carry (worker_id, attempt) and are fenced to the run's
-- holder; they are granted to odooops_worker. The shorter overloads are the
-- operator forms granted to odooops_api and checked against project
-- permissions. Both reach the same native function.
CREATE FUNCTION ops.append_event(run_id bigint, level text, message text, payload jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_append_event';
COMMENT ON FUNCTION ops.append_event(bigint, text, text, jsonb) IS
  'Appends a note by the calling user to a run (permission run.comment)';
CREATE FUNCTION ops.append_event(run_id bigint, level text, message text, payload jsonb,
                                 worker_id text, attempt integer)
RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_append_event';
COMMENT ON FUNCTION ops.append_event(bigint, text, text, jsonb, text, integer) IS
  'Appends a log event to a run held by the worker (fenced by worker_id and attempt)';

CREATE FUNCTION ops.append_events(run_id bigint, events jsonb)
RETURNS integer LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_append_events';
CREATE FUNCTION ops.append_events(run_id bigint, events jsonb, worker_id text, attempt integer)
RETURNS integer LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_append_events';
COMMENT ON FUNCTION ops.append_events(bigint, jsonb, text, integer) IS
  'Appends a batch of events ([{level, message, payload?, stream?, step?}]) in order; returns how many';

CREATE FUNCTION ops.finish_run(run_id bigint, status text, metadata jsonb DEFAULT '{}')
RETURNS ops.runs LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_finish_run';
COMMENT ON FUNCTION ops.finish_run(bigint, text, jsonb) IS
  'Operator override: finishes a run whoever holds it (permission run.override)';
CREATE FUNCTION ops.finish_run(run_id bigint, status text, metadata jsonb, worker_id text, attempt integer)
RETURNS ops.runs LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_finish_run';
COMMENT ON FUNCTION ops.finish_run(bigint, text, jsonb, text, integer) IS
  'Finishes a held run as succeeded, failed or cancelled; metadata is merged into result (metadata.error names a failure)';

CREATE FUNCTION ops.finish_runs(worker_id text, results jsonb)
RETURNS SETOF ops.runs LANGUAGE c VOLATILE ROWS 10 AS 'MODULE_PATHNAME', 'odooops_finish_runs';
COMMENT ON FUNCTION ops.finish_runs IS
  'Finishes many held runs at once: [{run_id, attempt, status, metadata?}]; all or nothing';

CREATE FUNCTION ops.cancel_run(run_id bigint, reason text DEFAULT NULL)
RETURNS ops.runs LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_cancel_run';
COMMENT ON FUNCTION ops.cancel_run IS 'Cancels a queued, claimed or running run; its worker''s next call fails with OD003';

CREATE FUNCTION ops.requeue_expired_runs(max_runs integer DEFAULT 1000)
RETURNS SETOF ops.runs LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_requeue_expired_runs';
COMMENT ON FUNCTION ops.requeue_expired_runs IS
  'Requeues held runs whose lease expired (with backoff), or fails them once max_attempts is used; returns them';

-- Registers (or updates) a worker: the workflows it serves, its team, labels
-- and version. Re-registering an offline worker makes it active again.
CREATE FUNCTION ops.register_agent(
  worker_id text, kinds text[] DEFAULT NULL, team text DEFAULT NULL,
  labels jsonb DEFAULT '{}', version text DEFAULT NULL, hostname text DEFAULT NULL)
RETURNS ops.agents LANGUAGE plpgsql AS $$
DECLARE
  agent ops.agents;
  team_row ops.agent_teams;
BEGIN
  IF worker_id IS NULL OR length(worker_id) NOT BETWEEN 1 AND 128 THEN
    PERFORM ops._raise('OD004', 'worker_id must be 1 to 128 characters');
  END IF;
  IF kinds IS NOT NULL AND (cardinality(kinds) = 0 OR NOT kinds <@
      ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy']) THEN
    PERFORM ops._raise('OD004', 'kinds must be a non-empty list of workflows',
                       'Workflows: build, test, deploy, backup, restore, destroy.');
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
          coalesce(kinds, ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy']),
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
LANGUAGE plpgsql AS $$
DECLARE
  result text;
BEGIN
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
-- Backups are executed as runs of workflow `backup`, so they share the
-- queue's claim path, lease and fencing. Their rows follow their runs
-- (trigger below); expiry comes from the backup type and the environment.

-- Days a backup of `backup_type` is kept, before count-based retention
-- (environment settings may override: backup_ttl_days.<type>).
CREATE FUNCTION ops.backup_ttl(backup_type text, env_settings jsonb DEFAULT '{}')
RETURNS interval LANGUAGE sql IMMUTABLE AS $$
  SELECT make_interval(days => coalesce((env_settings -> 'backup_ttl_days' ->> backup_type)::int,
    CASE backup_type WHEN 'daily' THEN 7 WHEN 'weekly' THEN 28 WHEN 'monthly' THEN 92
                     WHEN 'manual' THEN 30 ELSE 14 END))
$$;

CREATE FUNCTION ops.create_backup(project_id bigint, env text, backup_type text DEFAULT 'manual',
                                  metadata jsonb DEFAULT '{}')
RETURNS TABLE (backup_id bigint, run_id bigint, expires_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  backup ops.backups;
  run ops.runs;
  limit_per_day integer;
BEGIN
  SELECT * INTO e FROM ops.environments x WHERE x.project_id = create_backup.project_id AND x.name = env;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', env, e.status));
  END IF;
  IF backup_type IS NULL OR backup_type NOT IN ('daily', 'weekly', 'monthly', 'manual', 'pre_deploy', 'pre_restore') THEN
    PERFORM ops._raise('OD004', format('unknown backup type "%s"', backup_type),
                       'Types: daily, weekly, monthly, manual, pre_deploy, pre_restore.');
  END IF;
  IF metadata IS NULL OR jsonb_typeof(metadata) <> 'object' THEN
    PERFORM ops._raise('OD004', 'metadata must be a JSON object');
  END IF;
  PERFORM ops.authorize(e.project_id, 'backup.create', e.id);

  -- Manual backups are limited per environment and day, as on Odoo.sh.
  IF backup_type = 'manual' THEN
    limit_per_day := coalesce((e.settings ->> 'manual_backups_per_day')::int, 5);
    PERFORM pg_advisory_xact_lock(1869571956, hashint8(e.id));
    IF (SELECT count(*) FROM ops.backups b WHERE b.environment_id = e.id AND b.backup_type = 'manual'
          AND b.created_at > now() - interval '1 day') >= limit_per_day THEN
      RAISE EXCEPTION USING ERRCODE = 'OD009',
        MESSAGE = format('environment "%s" already has %s manual backups in the last 24 hours', env, limit_per_day),
        HINT = 'Raise settings.manual_backups_per_day of the environment, or wait.';
    END IF;
  END IF;

  INSERT INTO ops.backups (project_id, environment_id, backup_type, metadata, requested_by, expires_at)
  VALUES (e.project_id, e.id, backup_type, metadata, ops.current_actor(),
          now() + ops.backup_ttl(backup_type, e.settings))
  RETURNING * INTO backup;
  SELECT * INTO run FROM ops.queue_run(e.project_id, e.name, NULL, NULL,
                                       metadata || jsonb_build_object('backup_id', backup.id,
                                                                      'backup_type', backup_type),
                                       'backup');
  UPDATE ops.backups b SET run_id = run.id WHERE b.id = backup.id;
  RETURN QUERY SELECT backup.id, run.id, backup.expires_at;
END $$;
COMMENT ON FUNCTION ops.create_backup IS
  'Requests a backup of an environment: a pending backup row and a queued run of workflow backup';

-- Claims the next backup run and starts it (a backup worker needs nothing
-- between the two). Returns what the worker needs to dump the database.
CREATE FUNCTION ops.claim_next_backup(worker_id text, lease_seconds integer DEFAULT 300)
RETURNS TABLE (backup_id bigint, run_id bigint, attempt integer, project_id bigint,
               environment_id bigint, db_name text, backup_type text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run ops.runs;
BEGIN
  SELECT * INTO run FROM ops.claim_runs(worker_id, 1, lease_seconds, ARRAY['backup']);
  IF run.id IS NULL THEN
    RETURN;
  END IF;
  PERFORM ops.start_run(run.id, worker_id, run.attempt, lease_seconds);
  RETURN QUERY
    SELECT b.id, run.id, run.attempt, run.project_id, run.environment_id, e.db_name, b.backup_type
      FROM ops.environments e LEFT JOIN ops.backups b ON b.run_id = run.id
     WHERE e.id = run.environment_id;
END $$;

CREATE FUNCTION ops.complete_backup(backup_id bigint, worker_id text, attempt integer, location text,
                                    size_bytes bigint, sha256 text, metadata jsonb DEFAULT '{}')
RETURNS ops.backups LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  backup ops.backups;
BEGIN
  IF location IS NULL OR length(location) NOT BETWEEN 1 AND 2048 THEN
    PERFORM ops._raise('OD004', 'location must be 1 to 2048 characters');
  END IF;
  IF size_bytes IS NULL OR size_bytes < 0 THEN
    PERFORM ops._raise('OD004', 'size_bytes must be 0 or more');
  END IF;
  IF sha256 IS NULL OR sha256 !~ '^[0-9a-f]{64}$' THEN
    PERFORM ops._raise('OD004', 'sha256 must be 64 lowercase hex digits');
  END IF;
  SELECT * INTO backup FROM ops.backups b WHERE b.id = complete_backup.backup_id FOR UPDATE;
  IF NOT FOUND OR backup.run_id IS NULL THEN
    PERFORM ops._raise('OD002', format('backup %s does not exist', backup_id));
  END IF;
  UPDATE ops.backups b SET location = complete_backup.location, size_bytes = complete_backup.size_bytes,
         sha256 = complete_backup.sha256, metadata = b.metadata || coalesce(complete_backup.metadata, '{}')
   WHERE b.id = backup.id;
  -- Fenced: a worker that lost the run changes nothing (the UPDATE above is
  -- rolled back with the error). The run trigger marks the backup completed.
  PERFORM ops.finish_run(backup.run_id, 'succeeded',
                         jsonb_build_object('location', location, 'size_bytes', size_bytes, 'sha256', sha256),
                         worker_id, attempt);
  SELECT * INTO backup FROM ops.backups b WHERE b.id = backup.id;
  RETURN backup;
END $$;

CREATE FUNCTION ops.fail_backup(backup_id bigint, worker_id text, attempt integer, error text)
RETURNS ops.backups LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  backup ops.backups;
BEGIN
  SELECT * INTO backup FROM ops.backups b WHERE b.id = fail_backup.backup_id;
  IF NOT FOUND OR backup.run_id IS NULL THEN
    PERFORM ops._raise('OD002', format('backup %s does not exist', backup_id));
  END IF;
  PERFORM ops.finish_run(backup.run_id, 'failed',
                         jsonb_build_object('error', coalesce(nullif(error, ''), 'backup failed')),
                         worker_id, attempt);
  SELECT * INTO backup FROM ops.backups b WHERE b.id = backup.id;
  RETURN backup;
END $$;

-- Backups and restores follow their runs, whichever path moved the run
-- (worker, cancel, lease expiry); a succeeded destroy run destroys its
-- environment.
CREATE FUNCTION ops.sync_run_subjects() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.workflow = 'backup' THEN
    UPDATE ops.backups b SET
      status = CASE NEW.status WHEN 'running' THEN 'running' WHEN 'succeeded' THEN 'completed'
                               WHEN 'queued' THEN 'pending' WHEN 'claimed' THEN 'pending'
                               ELSE 'failed' END,
      started_at = CASE WHEN NEW.status = 'running' THEN coalesce(b.started_at, now()) ELSE b.started_at END,
      completed_at = CASE WHEN NEW.status = 'succeeded' THEN now() ELSE b.completed_at END,
      error = CASE WHEN NEW.status IN ('failed', 'cancelled') THEN coalesce(NEW.error, NEW.status) ELSE b.error END
     WHERE b.run_id = NEW.id AND b.status IN ('pending', 'running');
  ELSIF NEW.workflow = 'destroy' AND NEW.status = 'succeeded' THEN
    UPDATE ops.environments e SET status = 'destroyed', destroyed_at = now(), updated_at = now()
     WHERE e.id = NEW.environment_id AND e.status <> 'destroyed';
  ELSIF NEW.workflow = 'restore' THEN
    UPDATE ops.restores x SET
      status = CASE NEW.status WHEN 'running' THEN 'running' WHEN 'succeeded' THEN 'completed'
                               WHEN 'queued' THEN 'queued' WHEN 'claimed' THEN 'queued'
                               WHEN 'cancelled' THEN 'cancelled' ELSE 'failed' END,
      finished_at = CASE WHEN NEW.status IN ('succeeded', 'failed', 'cancelled') THEN now() END,
      updated_at = now()
     WHERE x.run_id = NEW.id AND x.status IN ('queued', 'running');
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER runs_sync_subjects AFTER UPDATE OF status ON ops.runs
  FOR EACH ROW WHEN (NEW.workflow IN ('backup', 'restore', 'destroy') AND NEW.status IS DISTINCT FROM OLD.status)
  EXECUTE FUNCTION ops.sync_run_subjects();
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
  SELECT * INTO run FROM ops.queue_run(x.project_id, env_name, NULL, NULL,
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

-- A deploy that waited for its approval becomes claimable, or is cancelled.
CREATE FUNCTION ops._release_gated_deploy(run_id bigint, approved boolean, reason text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF approved THEN
    UPDATE ops.runs r SET available_at = now(), updated_at = now()
     WHERE r.id = run_id AND r.status = 'queued' AND r.available_at = 'infinity';
    INSERT INTO ops.run_events (run_id, kind, level, message, actor)
    VALUES (run_id, 'log', 'notice', reason, ops.current_actor());
    NOTIFY odooops_runs;
  ELSIF EXISTS (SELECT 1 FROM ops.runs r WHERE r.id = run_id AND r.status = 'queued') THEN
    PERFORM ops.cancel_run(run_id, reason);
  END IF;
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
  IF requested_by IS NOT NULL AND requested_by <> actor THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = 'requested_by must be the calling user',
      DETAIL = format('The session belongs to %s.', quote_literal(actor));
  END IF;
  IF metadata IS NULL OR jsonb_typeof(metadata) <> 'object' THEN
    PERFORM ops._raise('OD004', 'metadata must be a JSON object');
  END IF;
  SELECT * INTO b FROM ops.backups WHERE id = backup_id;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('backup %s does not exist', backup_id));
  END IF;
  SELECT * INTO e FROM ops.environments WHERE id = target_env_id;
  IF NOT FOUND THEN
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

CREATE FUNCTION ops.decide_approval(approval_id bigint, decision text, reason text DEFAULT NULL)
RETURNS ops.approvals LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  actor text := ops.current_user_id();
  a ops.approvals;
BEGIN
  IF actor IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'only an identified user can decide an approval';
  END IF;
  IF decision IS NULL OR decision NOT IN ('approved', 'rejected') THEN
    PERFORM ops._raise('OD004', 'decision must be approved or rejected');
  END IF;
  IF reason IS NOT NULL AND length(reason) > 2000 THEN
    PERFORM ops._raise('OD005', 'reason is too long', 'The limit is 2000 characters.');
  END IF;
  SELECT * INTO a FROM ops.approvals x WHERE x.id = approval_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('approval %s does not exist', approval_id));
  END IF;
  PERFORM ops.authorize(a.project_id, 'approval.decide', a.environment_id);
  IF a.status <> 'pending' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010', MESSAGE = format('approval %s is already %s', a.id, a.status);
  END IF;
  IF a.expires_at <= now() THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010', MESSAGE = format('approval %s has expired', a.id);
  END IF;
  IF a.requested_by = actor THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'you cannot decide your own request',
      HINT = 'Another member with the approval.decide permission must decide it.';
  END IF;

  UPDATE ops.approvals x SET status = decision, decided_by = actor, decided_at = now(), reason = decide_approval.reason
   WHERE x.id = a.id RETURNING * INTO a;
  PERFORM ops.audit(a.project_id, 'approval.' || CASE decision WHEN 'approved' THEN 'approve' ELSE 'reject' END,
                    a.subject, a.subject_id, jsonb_build_object('approval_id', a.id, 'reason', reason));
  IF a.subject = 'restore' THEN
    IF decision = 'approved' THEN
      PERFORM ops._queue_restore(r) FROM ops.restores r WHERE r.id = a.subject_id;
    ELSE
      UPDATE ops.restores r SET status = 'rejected', finished_at = now(), updated_at = now()
       WHERE r.id = a.subject_id;
    END IF;
  ELSIF a.subject = 'deploy' THEN
    PERFORM ops._release_gated_deploy(a.subject_id, decision = 'approved', 'deploy ' || decision);
  END IF;
  RETURN a;
END $$;
COMMENT ON FUNCTION ops.decide_approval IS
  'Approves or rejects a pending approval; the decider needs approval.decide and must not be the requester';

-- Pending approvals past their expiry become expired, and their restores
-- never run. Called by the scheduler; returns how many expired.
CREATE FUNCTION ops.expire_approvals() RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  a ops.approvals;
  n integer := 0;
BEGIN
  FOR a IN SELECT * FROM ops.approvals x WHERE x.status = 'pending' AND x.expires_at <= now()
           ORDER BY x.id FOR UPDATE SKIP LOCKED LOOP
    UPDATE ops.approvals x SET status = 'expired', decided_at = now() WHERE x.id = a.id;
    IF a.subject = 'restore' THEN
      UPDATE ops.restores r SET status = 'expired', finished_at = now(), updated_at = now()
       WHERE r.id = a.subject_id AND r.status = 'pending_approval';
    ELSIF a.subject = 'deploy' THEN
      PERFORM ops._release_gated_deploy(a.subject_id, false, 'deploy approval expired');
    END IF;
    INSERT INTO ops.audit_log (project_id, actor, action, subject, subject_id, payload)
    VALUES (a.project_id, 'odooops', 'approval.expire', a.subject, a.subject_id,
            jsonb_build_object('approval_id', a.id));
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;

-- A decided approval is immutable, for its owner and for superusers alike;
-- approvals are never deleted.
CREATE FUNCTION ops.guard_approval() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010', MESSAGE = format('approval %s cannot be deleted', OLD.id);
  END IF;
  IF OLD.status <> 'pending' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010',
      MESSAGE = format('approval %s is %s and cannot be changed', OLD.id, OLD.status);
  END IF;
  IF NEW.requested_by <> OLD.requested_by OR NEW.project_id <> OLD.project_id
     OR NEW.environment_id <> OLD.environment_id OR NEW.subject <> OLD.subject
     OR (OLD.subject_id <> 0 AND NEW.subject_id <> OLD.subject_id) THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010', MESSAGE = format('approval %s: only its decision may change', OLD.id);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER approvals_immutable BEFORE UPDATE OR DELETE ON ops.approvals
  FOR EACH ROW EXECUTE FUNCTION ops.guard_approval();
CREATE TRIGGER approvals_no_truncate BEFORE TRUNCATE ON ops.approvals
  FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_change('approvals');
-- GitHub ingest: the SQL entry point for GitHub webhooks (push,
-- pull_request, ping). It verifies X-Hub-Signature-256 over the exact bytes
-- received, deduplicates on X-GitHub-Delivery, maps branches to
-- environments, creates development and preview environments as Odoo.sh
-- does, applies a per-project rate limit, and answers with what it queued.

CREATE FUNCTION ops.github_signature_valid(secret text, body text, signature text)
RETURNS boolean LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'odooops_github_signature_valid';
CREATE FUNCTION ops.branch_matches(pattern text, branch text)
RETURNS boolean LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'odooops_branch_matches';
CREATE FUNCTION ops.branch_slug(branch text, max_length integer DEFAULT 40)
RETURNS text LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'odooops_branch_slug';

CREATE TABLE ops.ingest_deliveries (
  delivery_id text PRIMARY KEY CHECK (length(delivery_id) BETWEEN 1 AND 100),
  project_id  bigint NOT NULL REFERENCES ops.projects ON DELETE CASCADE,
  event       text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  result      jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE ops.ingest_deliveries IS 'GitHub deliveries received, by X-GitHub-Delivery: redeliveries are answered from here';
CREATE INDEX ingest_deliveries_project_time ON ops.ingest_deliveries (project_id, received_at);

-- The environment a push to `branch` deploys to: one already tracking the
-- branch, else the one whose pattern matches (exact names before globs,
-- production before staging before development). A development glob such
-- as feature/* is a template: ops._branch_environment creates the branch's
-- own environment from it.
CREATE FUNCTION ops._environment_for_branch(p ops.projects, branch text)
RETURNS ops.environments LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT x.* FROM ops.environments x
   WHERE x.project_id = p.id AND x.status = 'active'
     AND (x.branch = _environment_for_branch.branch
          OR (x.branch IS NULL AND ops.branch_matches(
                coalesce(x.branch_pattern, CASE WHEN x.stage = 'production' THEN p.production_branch END),
                _environment_for_branch.branch)))
   ORDER BY x.branch IS NULL, x.branch_pattern ~ '[*?]',
            array_position(ARRAY['production', 'staging', 'development', 'preview'], x.stage), x.id
   LIMIT 1
$$;

CREATE FUNCTION ops._is_branch_template(e ops.environments) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT e.stage = 'development' AND e.branch IS NULL AND e.branch_pattern ~ '[*?]'
$$;

-- Odoo.sh gives every development branch its own build and database, kept
-- for settings.development_ttl_days (3) after its last push.
CREATE FUNCTION ops._branch_environment(p ops.projects, template ops.environments, branch text)
RETURNS ops.environments LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  slug text := ops.branch_slug(branch, 40);
  e ops.environments;
BEGIN
  INSERT INTO ops.environments (project_id, name, stage, db_name, settings, branch, expires_at)
  VALUES (p.id, 'dev-' || slug, 'development', replace(left(p.slug, 20) || '_' || slug, '-', '_'),
          template.settings, branch,
          now() + make_interval(days => coalesce((p.settings ->> 'development_ttl_days')::int, 3)))
  ON CONFLICT DO NOTHING
  RETURNING * INTO e;
  IF e.id IS NULL THEN
    PERFORM ops._raise('OD004', format('cannot create an environment for branch "%s": its name is taken', branch));
  END IF;
  RETURN e;
END $$;

CREATE FUNCTION ops.ingest_github(event text, delivery_id text, signature text, body text)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  payload jsonb;
  p ops.projects;
  secret text;
  e ops.environments;
  run ops.runs;
  ref_branch text;
  answer jsonb;
  queued jsonb := '[]';
  created jsonb := '[]';
  per_minute integer;
  max_bytes constant integer := 2 * 1024 * 1024;
BEGIN
  IF body IS NULL OR octet_length(body) > max_bytes THEN
    RAISE EXCEPTION USING ERRCODE = 'OD005', MESSAGE = 'webhook body is missing or too large',
      DETAIL = format('%s bytes, the limit is %s.', octet_length(body), max_bytes);
  END IF;
  IF event IS NULL OR event !~ '^[a-z_]{1,64}$' THEN
    PERFORM ops._raise('OD004', 'X-GitHub-Event is missing or malformed');
  END IF;
  IF delivery_id IS NULL OR length(delivery_id) NOT BETWEEN 1 AND 100 THEN
    PERFORM ops._raise('OD004', 'X-GitHub-Delivery is missing or malformed');
  END IF;
  BEGIN
    payload := body::jsonb;
  EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
    PERFORM ops._raise('OD004', 'webhook body is not valid JSON');
  END;
  IF jsonb_typeof(payload) <> 'object' OR jsonb_typeof(payload -> 'repository') <> 'object' THEN
    PERFORM ops._raise('OD004', 'webhook body has no repository');
  END IF;
  SELECT * INTO p FROM ops.projects x WHERE lower(x.repo_full_name) = lower(payload -> 'repository' ->> 'full_name');
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('no project for repository "%s"', payload -> 'repository' ->> 'full_name'));
  END IF;
  SELECT s.value INTO secret FROM ops.project_secrets s WHERE s.project_id = p.id AND s.name = 'github_webhook_secret';
  IF secret IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'OD011', MESSAGE = format('project "%s" has no github_webhook_secret', p.slug),
      HINT = 'Set it with ops.set_project_secret(project_id, ''github_webhook_secret'', ...).';
  END IF;
  IF signature IS NULL OR NOT ops.github_signature_valid(secret, body, signature) THEN
    RAISE EXCEPTION USING ERRCODE = 'OD011', MESSAGE = 'invalid or missing X-Hub-Signature-256';
  END IF;

  -- Redelivery: answer as the first time.
  INSERT INTO ops.ingest_deliveries AS d (delivery_id, project_id, event)
  VALUES (ingest_github.delivery_id, p.id, ingest_github.event)
  ON CONFLICT ON CONSTRAINT ingest_deliveries_pkey DO NOTHING;
  IF NOT FOUND THEN
    SELECT d.result || jsonb_build_object('duplicate', true) INTO answer
      FROM ops.ingest_deliveries d WHERE d.delivery_id = ingest_github.delivery_id;
    RETURN answer;
  END IF;

  per_minute := coalesce((p.settings ->> 'ingest_per_minute')::int, 60);
  IF (SELECT count(*) FROM ops.ingest_deliveries d
       WHERE d.project_id = p.id AND d.received_at > now() - interval '1 minute') > per_minute THEN
    RAISE EXCEPTION USING ERRCODE = 'OD009',
      MESSAGE = format('project "%s" received more than %s webhooks in a minute', p.slug, per_minute);
  END IF;

  answer := jsonb_build_object('delivery', delivery_id, 'event', event, 'project', p.slug);
  IF event = 'ping' THEN
    answer := answer || jsonb_build_object('pong', true);

  ELSIF event = 'push' THEN
    IF payload ->> 'ref' !~ '^refs/heads/' THEN
      answer := answer || jsonb_build_object('ignored', 'not a branch push');
    ELSE
      ref_branch := substr(payload ->> 'ref', 12);
      IF (payload ->> 'deleted')::boolean THEN
        SELECT * INTO e FROM ops.environments x
         WHERE x.project_id = p.id AND x.branch = ref_branch AND x.status = 'active'
           AND x.stage IN ('development', 'preview');
        IF FOUND THEN
          queued := queued || ops._destroy_environment(e, jsonb_build_object('reason', 'branch deleted', 'github_delivery', delivery_id), 'github:' || delivery_id || ':destroy');
        ELSE
          answer := answer || jsonb_build_object('ignored', 'no environment for the deleted branch');
        END IF;
      ELSE
        e := ops._environment_for_branch(p, ref_branch);
        IF ops._is_branch_template(e) THEN
          e := ops._branch_environment(p, e, ref_branch);
          created := created || jsonb_build_array(e.name);
        ELSIF e.branch = ref_branch THEN
          UPDATE ops.environments x SET expires_at = now() + make_interval(days =>
                   coalesce((p.settings ->> 'development_ttl_days')::int, 3)), updated_at = now()
           WHERE x.id = e.id AND x.expires_at IS NOT NULL;
        END IF;
        IF e.id IS NULL THEN
          answer := answer || jsonb_build_object('ignored', format('no environment for branch %s', ref_branch));
        ELSE
          SELECT * INTO run FROM ops._queue_run_trusted(p.id, e.name, payload ->> 'after', ref_branch,
            jsonb_build_object('source', 'github', 'github_delivery', delivery_id,
                               'pusher', payload -> 'pusher' ->> 'name',
                               'commits', jsonb_array_length(coalesce(payload -> 'commits', '[]'))),
            'deploy', 0, 'github:' || delivery_id);
          queued := queued || jsonb_build_object('run_id', run.id, 'environment', e.name, 'workflow', 'deploy');
        END IF;
      END IF;
    END IF;

  ELSIF event = 'pull_request' THEN
    ref_branch := payload -> 'pull_request' -> 'head' ->> 'ref';
    SELECT * INTO e FROM ops.environments x
     WHERE x.project_id = p.id AND x.pull_request = (payload ->> 'number')::int AND x.status = 'active';
    IF payload ->> 'action' IN ('opened', 'reopened', 'synchronize') THEN
      IF e.id IS NULL THEN
        INSERT INTO ops.environments (project_id, name, stage, db_name, branch, pull_request, expires_at)
        VALUES (p.id, 'pr-' || (payload ->> 'number'), 'preview',
                replace(left(p.slug, 20), '-', '_') || '_pr_' || (payload ->> 'number'), NULL, (payload ->> 'number')::int,
                now() + make_interval(days => coalesce((p.settings ->> 'preview_ttl_days')::int, 7)))
        RETURNING * INTO e;
        created := created || jsonb_build_array(e.name);
      ELSE
        UPDATE ops.environments x SET expires_at = now() + make_interval(days =>
                 coalesce((p.settings ->> 'preview_ttl_days')::int, 7)), updated_at = now()
         WHERE x.id = e.id;
      END IF;
      SELECT * INTO run FROM ops._queue_run_trusted(p.id, e.name,
        payload -> 'pull_request' -> 'head' ->> 'sha', ref_branch,
        jsonb_build_object('source', 'github', 'github_delivery', delivery_id,
                           'pull_request', (payload ->> 'number')::int),
        'deploy', 0, 'github:' || delivery_id);
      queued := queued || jsonb_build_object('run_id', run.id, 'environment', e.name, 'workflow', 'deploy');
    ELSIF payload ->> 'action' = 'closed' AND e.id IS NOT NULL THEN
      queued := queued || ops._destroy_environment(e, jsonb_build_object('reason', 'pull request closed', 'github_delivery', delivery_id), 'github:' || delivery_id || ':destroy');
    ELSE
      answer := answer || jsonb_build_object('ignored', format('pull_request action %s', payload ->> 'action'));
    END IF;

  ELSE
    answer := answer || jsonb_build_object('ignored', format('event %s is not handled', event));
  END IF;

  answer := answer || jsonb_build_object('queued', queued, 'created_environments', created);
  UPDATE ops.ingest_deliveries d SET result = answer WHERE d.delivery_id = ingest_github.delivery_id;
  RETURN answer;
END $$;
COMMENT ON FUNCTION ops.ingest_github IS
  'GitHub webhook entry point: (X-GitHub-Event, X-GitHub-Delivery, X-Hub-Signature-256, raw body)';

-- PostgREST form: POST /rpc/github_webhook with the raw JSON body; the
-- headers come from request.headers. `json` (not jsonb) keeps the bytes.
CREATE FUNCTION ops.github_webhook(json) RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  headers jsonb := coalesce(nullif(current_setting('request.headers', true), ''), '{}')::jsonb;
BEGIN
  RETURN ops.ingest_github(headers ->> 'x-github-event', headers ->> 'x-github-delivery',
                           headers ->> 'x-hub-signature-256', $1::text);
END $$;
-- Operational metrics: queue depth, worker utilisation, success rates and
-- duration percentiles by workflow and stage, and the same in Prometheus'
-- text format for a scraper (e.g. through PostgREST: GET /rpc/metrics_prometheus
-- with Accept: text/plain). For platform administrators.

CREATE VIEW ops.metrics_queue AS
  SELECT r.workflow, e.stage,
         count(*) FILTER (WHERE r.status = 'queued') AS queued,
         count(*) FILTER (WHERE r.status = 'queued' AND r.available_at <= now()) AS claimable,
         count(*) FILTER (WHERE r.status = 'claimed') AS claimed,
         count(*) FILTER (WHERE r.status = 'running') AS running,
         coalesce(extract(epoch FROM now() - min(r.created_at) FILTER (WHERE r.status = 'queued')), 0)
           AS oldest_queued_seconds
    FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id
   WHERE r.status IN ('queued', 'claimed', 'running')
   GROUP BY r.workflow, e.stage;
COMMENT ON VIEW ops.metrics_queue IS 'Runs waiting or held, by workflow and stage';

CREATE VIEW ops.metrics_workers AS
  SELECT a.worker_id, a.status, a.kinds,
         extract(epoch FROM now() - a.last_heartbeat_at) AS seconds_since_heartbeat,
         (SELECT count(*) FROM ops.runs r
           WHERE r.claimed_by = a.worker_id AND r.status IN ('claimed', 'running')) AS runs_held
    FROM ops.agents a;
COMMENT ON VIEW ops.metrics_workers IS 'Registered workers: liveness and the runs they hold';

-- Finished runs of the last 24 hours.
CREATE VIEW ops.metrics_runs AS
  SELECT r.workflow, e.stage,
         count(*) AS finished,
         count(*) FILTER (WHERE r.status = 'succeeded') AS succeeded,
         count(*) FILTER (WHERE r.status = 'failed') AS failed,
         count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
         round(count(*) FILTER (WHERE r.status = 'succeeded')::numeric
               / nullif(count(*) FILTER (WHERE r.status IN ('succeeded', 'failed')), 0), 4) AS success_rate,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - r.started_at))
           FILTER (WHERE r.started_at IS NOT NULL) AS p50_seconds,
         percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - r.started_at))
           FILTER (WHERE r.started_at IS NOT NULL) AS p90_seconds,
         percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - r.started_at))
           FILTER (WHERE r.started_at IS NOT NULL) AS p99_seconds
    FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id
   WHERE r.finished_at > now() - interval '24 hours'
   GROUP BY r.workflow, e.stage;
COMMENT ON VIEW ops.metrics_runs IS 'Runs finished in the last 24 hours: outcomes and duration percentiles';
CREATE INDEX runs_finished_recent ON ops.runs (finished_at) WHERE finished_at IS NOT NULL;

-- A Prometheus label value: backslash, quote and newline escaped.
CREATE FUNCTION ops._prometheus_label(value text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT '"' || replace(replace(replace(coalesce(value, ''), E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n') || '"'
$$;

CREATE FUNCTION ops.metrics_prometheus() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
  WITH samples(metric, help, kind, labels, value, ord) AS (
    SELECT 'odooops_queue_runs', 'Runs by state (queued, claimable, claimed, running).', 'gauge',
           format('workflow=%s,stage=%s,state=%s', ops._prometheus_label(q.workflow),
                  ops._prometheus_label(q.stage), ops._prometheus_label(s.state)), s.value, 1
      FROM ops.metrics_queue q,
           LATERAL (VALUES ('queued', q.queued::float8), ('claimable', q.claimable::float8),
                           ('claimed', q.claimed::float8), ('running', q.running::float8)) AS s(state, value)
    UNION ALL
    SELECT 'odooops_queue_oldest_seconds', 'Age of the oldest queued run.', 'gauge',
           format('workflow=%s,stage=%s', ops._prometheus_label(q.workflow), ops._prometheus_label(q.stage)),
           q.oldest_queued_seconds::float8, 2
      FROM ops.metrics_queue q
    UNION ALL
    SELECT 'odooops_worker_runs_held', 'Runs a worker holds (claimed or running).', 'gauge',
           format('worker=%s,status=%s', ops._prometheus_label(w.worker_id), ops._prometheus_label(w.status)),
           w.runs_held::float8, 3
      FROM ops.metrics_workers w
    UNION ALL
    SELECT 'odooops_worker_heartbeat_age_seconds', 'Seconds since a worker''s last heartbeat.', 'gauge',
           format('worker=%s', ops._prometheus_label(w.worker_id)), w.seconds_since_heartbeat::float8, 4
      FROM ops.metrics_workers w
    UNION ALL
    SELECT 'odooops_runs_finished_24h', 'Runs finished in the last 24 hours, by outcome.', 'gauge',
           format('workflow=%s,stage=%s,status=%s', ops._prometheus_label(m.workflow),
                  ops._prometheus_label(m.stage), ops._prometheus_label(s.status)), s.value, 5
      FROM ops.metrics_runs m,
           LATERAL (VALUES ('succeeded', m.succeeded::float8), ('failed', m.failed::float8),
                           ('cancelled', m.cancelled::float8)) AS s(status, value)
    UNION ALL
    SELECT 'odooops_run_duration_seconds', 'Run duration percentiles over the last 24 hours.', 'gauge',
           format('workflow=%s,stage=%s,quantile=%s', ops._prometheus_label(m.workflow),
                  ops._prometheus_label(m.stage), ops._prometheus_label(s.q)), s.value, 6
      FROM ops.metrics_runs m,
           LATERAL (VALUES ('0.5', m.p50_seconds), ('0.9', m.p90_seconds), ('0.99', m.p99_seconds)) AS s(q, value)
     WHERE s.value IS NOT NULL
  ), families AS (
    SELECT metric, help, kind, min(ord) AS ord,
           string_agg(metric || '{' || labels || '} ' || value::text, E'\n' ORDER BY labels) AS lines
      FROM samples GROUP BY metric, help, kind
  )
  SELECT coalesce(string_agg(format(E'# HELP %s %s\n# TYPE %s %s\n%s', metric, help, metric, kind, lines),
                             E'\n' ORDER BY ord) || E'\n', '')
    FROM families
$$;
COMMENT ON FUNCTION ops.metrics_prometheus IS 'Queue, worker and run metrics in the Prometheus text exposition format';
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

-- A finished deploy records the backup its worker took before updating the
-- database (result.pre_deploy_backup: location, size_bytes, sha256, and the
-- filestore archive), whether the deploy succeeded or was rolled back; a
-- succeeded deploy becomes a release that references it (result.image names
-- the container image or revision).
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
  SELECT * INTO target FROM ops.releases WHERE id = release_id;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('release %s does not exist', release_id));
  END IF;
  SELECT * INTO e FROM ops.environments WHERE id = target.environment_id;
  PERFORM ops.authorize(e.project_id, 'run.queue', e.id);
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  SELECT r.pre_deploy_backup_id INTO restore_from FROM ops.releases r
   WHERE r.environment_id = target.environment_id AND r.id > target.id
   ORDER BY r.id LIMIT 1;
  SELECT * INTO run FROM ops.queue_run(e.project_id, e.name, target.git_sha, coalesce(target.git_ref, 'rollback'),
    jsonb_build_object('rollback_to_release', target.id, 'image', target.image,
                       'restore_backup_id', restore_from, 'reason', reason),
    'deploy', 100);
  PERFORM ops.audit(e.project_id, 'release.rollback', 'release', target.id,
                    jsonb_build_object('run_id', run.id, 'restore_backup_id', restore_from));
  RETURN run;
END $$;
COMMENT ON FUNCTION ops.rollback_release IS 'Queues a deploy back to an earlier release, restoring its database too';

-- Production deploys wait for an approval when the project asks for it.
CREATE FUNCTION ops.gate_production_deploy() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_WHEN = 'BEFORE' THEN
    IF EXISTS (SELECT 1 FROM ops.environments e JOIN ops.projects p ON p.id = e.project_id
                WHERE e.id = NEW.environment_id AND e.stage = 'production'
                  AND coalesce((p.settings ->> 'production_deploy_approval')::boolean, false)) THEN
      NEW.available_at := 'infinity';   -- not claimable until approved
    END IF;
    RETURN NEW;
  END IF;
  -- AFTER INSERT: the gated run exists, ask for the approval.
  INSERT INTO ops.approvals (project_id, environment_id, subject, subject_id, requested_by)
  VALUES (NEW.project_id, NEW.environment_id, 'deploy', NEW.id, coalesce(NEW.requested_by, 'odooops'));
  PERFORM ops.audit(NEW.project_id, 'approval.request', 'deploy', NEW.id);
  RETURN NULL;
END $$;
CREATE TRIGGER runs_gate_production_deploy BEFORE INSERT ON ops.runs
  FOR EACH ROW WHEN (NEW.workflow = 'deploy') EXECUTE FUNCTION ops.gate_production_deploy();
CREATE TRIGGER runs_request_deploy_approval AFTER INSERT ON ops.runs
  FOR EACH ROW WHEN (NEW.workflow = 'deploy' AND NEW.available_at = 'infinity')
  EXECUTE FUNCTION ops.gate_production_deploy();
-- Scheduled backups, retention, expiry of stored objects and run_events
-- partition upkeep: the scheduler background worker (bgworker/scheduler.cpp)
-- calls these functions, each in a short transaction of its own; they are
-- plain SQL functions so tests and admins can call them too.
-- Cron expressions: extension/core/cron.h (UTC; 5 fields, or 6 with seconds).

-- The next slot of a cron expression strictly after `after` (UTC); NULL
-- when it never fires. A malformed expression raises OD004 naming the field.
CREATE FUNCTION ops.cron_next(expression text, after timestamptz DEFAULT now())
RETURNS timestamptz LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'odooops_cron_next';
COMMENT ON FUNCTION ops.cron_next IS 'Next slot of a cron expression after a time, in UTC; OD004 on a malformed expression';

-- Wakes the scheduler / dispatcher background worker when the calling
-- transaction commits (no effect if it aborts, or without the workers).
CREATE FUNCTION ops._wake_scheduler() RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_wake_scheduler';
CREATE FUNCTION ops._wake_dispatcher() RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_wake_dispatcher';

CREATE TABLE ops.backup_schedules (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  environment_id bigint NOT NULL REFERENCES ops.environments ON DELETE CASCADE,
  cron_expr      text NOT NULL CHECK (length(cron_expr) BETWEEN 1 AND 256),
  backup_type    text NOT NULL DEFAULT 'daily' CHECK (backup_type IN ('daily', 'weekly', 'monthly')),
  enabled        boolean NOT NULL DEFAULT true,
  next_fire_at   timestamptz,       -- the next slot; NULL: disabled or never fires
  last_slot      timestamptz,       -- the slot fired last
  last_fired_at  timestamptz,
  last_backup_id bigint,
  last_error     text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (environment_id, cron_expr, backup_type)
);
COMMENT ON TABLE ops.backup_schedules IS 'Cron schedules of automatic backups per environment (UTC)';
CREATE INDEX backup_schedules_due ON ops.backup_schedules (next_fire_at) WHERE enabled;
ALTER TABLE ops.backup_schedules ENABLE ROW LEVEL SECURITY;

-- One row per fired slot: the primary key makes a slot fire at most once.
CREATE TABLE ops.backup_schedule_fires (
  schedule_id bigint NOT NULL REFERENCES ops.backup_schedules ON DELETE CASCADE,
  slot        timestamptz NOT NULL,
  backup_id   bigint REFERENCES ops.backups ON DELETE SET NULL,
  run_id      bigint REFERENCES ops.runs ON DELETE SET NULL,
  fired_at    timestamptz NOT NULL DEFAULT now(),
  error       text,
  PRIMARY KEY (schedule_id, slot)
);
COMMENT ON TABLE ops.backup_schedule_fires IS 'Slots fired by backup schedules (each exactly once) and the backup they created';
ALTER TABLE ops.backup_schedule_fires ENABLE ROW LEVEL SECURITY;

-- Validates the expression and computes the first slot; wakes the scheduler.
CREATE FUNCTION ops._backup_schedule_before() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.cron_expr IS DISTINCT FROM OLD.cron_expr
     OR NEW.enabled IS DISTINCT FROM OLD.enabled THEN
    NEW.next_fire_at := CASE WHEN NEW.enabled THEN ops.cron_next(NEW.cron_expr, now()) END;
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER backup_schedules_before BEFORE INSERT OR UPDATE ON ops.backup_schedules
  FOR EACH ROW EXECUTE FUNCTION ops._backup_schedule_before();

CREATE FUNCTION ops._wake_scheduler_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM ops._wake_scheduler();
  RETURN NULL;
END $$;
CREATE TRIGGER backup_schedules_wake AFTER INSERT OR UPDATE ON ops.backup_schedules
  FOR EACH STATEMENT EXECUTE FUNCTION ops._wake_scheduler_trigger();

-- Fires every due schedule once: each due slot becomes one backup through
-- ops.create_backup (a queued 'backup' run), recorded in
-- backup_schedule_fires, and the schedule moves to its next slot after now —
-- so slots missed while the server was down fire once, not once each.
-- Returns the number of slots fired.
CREATE FUNCTION ops.fire_due_backup_schedules(max_schedules integer DEFAULT 100)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  s record;
  created record;
  fired integer := 0;
BEGIN
  FOR s IN
    SELECT bs.id, bs.cron_expr, bs.backup_type, bs.next_fire_at, e.project_id, e.name AS env, e.status
      FROM ops.backup_schedules bs JOIN ops.environments e ON e.id = bs.environment_id
     WHERE bs.enabled AND bs.next_fire_at <= now()
     ORDER BY bs.next_fire_at, bs.id
     LIMIT max_schedules
       FOR UPDATE OF bs SKIP LOCKED
  LOOP
    BEGIN
      IF s.status <> 'active' THEN
        RAISE EXCEPTION 'environment % is %', s.env, s.status;
      END IF;
      SELECT * INTO created FROM ops.create_backup(s.project_id, s.env, s.backup_type,
        jsonb_build_object('schedule_id', s.id, 'slot', s.next_fire_at,
                           'idempotency_key', format('schedule-%s-%s', s.id, extract(epoch FROM s.next_fire_at)::bigint)));
      INSERT INTO ops.backup_schedule_fires (schedule_id, slot, backup_id, run_id)
      VALUES (s.id, s.next_fire_at, created.backup_id, created.run_id);
      UPDATE ops.backup_schedules SET last_slot = s.next_fire_at, last_fired_at = now(),
             last_backup_id = created.backup_id, last_error = NULL,
             next_fire_at = ops.cron_next(s.cron_expr, greatest(now(), s.next_fire_at))
       WHERE id = s.id;
      fired := fired + 1;
    EXCEPTION WHEN OTHERS THEN
      -- The slot is skipped, with the reason recorded; it is not retried.
      INSERT INTO ops.backup_schedule_fires (schedule_id, slot, error)
      VALUES (s.id, s.next_fire_at, SQLERRM) ON CONFLICT DO NOTHING;
      UPDATE ops.backup_schedules SET last_slot = s.next_fire_at, last_error = SQLERRM,
             next_fire_at = ops.cron_next(s.cron_expr, greatest(now(), s.next_fire_at))
       WHERE id = s.id;
    END;
  END LOOP;
  RETURN fired;
END $$;
COMMENT ON FUNCTION ops.fire_due_backup_schedules IS
  'Fires each due backup schedule slot exactly once (missed slots fire once); returns how many';

-- Milliseconds until the next schedule slot (NULL: none), for the scheduler's sleep.
CREATE FUNCTION ops._next_schedule_due_ms() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT greatest(0, (extract(epoch FROM min(next_fire_at) - clock_timestamp()) * 1000)::bigint)
    FROM ops.backup_schedules WHERE enabled
$$;

-- Retention per environment; environments without a row keep the Odoo.sh
-- defaults (7 daily, 4 weekly, 3 monthly; manual backups 14 days).
CREATE TABLE ops.backup_retention (
  environment_id bigint PRIMARY KEY REFERENCES ops.environments ON DELETE CASCADE,
  keep_daily     integer NOT NULL DEFAULT 7 CHECK (keep_daily BETWEEN 0 AND 366),
  keep_weekly    integer NOT NULL DEFAULT 4 CHECK (keep_weekly BETWEEN 0 AND 520),
  keep_monthly   integer NOT NULL DEFAULT 3 CHECK (keep_monthly BETWEEN 0 AND 1200),
  manual_ttl     interval NOT NULL DEFAULT '14 days' CHECK (manual_ttl > interval '0'),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.backup_retention IS 'Backup retention of an environment: GFS counts for automatic backups, TTL for manual ones';
ALTER TABLE ops.backup_retention ENABLE ROW LEVEL SECURITY;

-- Stored objects to delete (expired backups and artifacts): an outbox the
-- worker daemon drains with ops.claim_storage_deletions / ops.finish_storage_deletion.
CREATE TABLE ops.storage_deletions (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  object_kind  text NOT NULL CHECK (object_kind IN ('backup', 'artifact')),
  object_id    bigint NOT NULL,
  location     text NOT NULL CHECK (length(location) BETWEEN 1 AND 2048),
  reason       text NOT NULL CHECK (reason IN ('retention', 'ttl', 'manual')),
  status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed', 'done', 'failed')),
  attempts     integer NOT NULL DEFAULT 0,
  claimed_by   text,
  claimed_at   timestamptz,
  completed_at timestamptz,
  error        text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (object_kind, object_id)
);
COMMENT ON TABLE ops.storage_deletions IS 'Outbox of stored objects (backup dumps, artifacts) to delete, drained by the worker daemon';
CREATE INDEX storage_deletions_pending ON ops.storage_deletions (id) WHERE status = 'pending';
ALTER TABLE ops.storage_deletions ENABLE ROW LEVEL SECURITY;

-- Keeps the newest completed daily/weekly/monthly backups per environment's
-- policy (extension/core/retention.h) and marks the others expired,
-- queueing their objects for deletion. Backups an active restore uses are
-- kept. Returns how many it expired. Native: extension/api/retention.cpp.
CREATE FUNCTION ops.apply_backup_retention() RETURNS integer
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'odooops_apply_backup_retention';

-- Expires backups: automatic ones by retention counts, manual and
-- pre-deploy/pre-restore ones once their TTL (expires_at, or completion +
-- the environment's manual_ttl) has passed. Returns how many it expired.
CREATE FUNCTION ops.expire_backups() RETURNS integer LANGUAGE plpgsql AS $$
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
    RETURNING b.id, b.location
  ), q AS (
    INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason)
    SELECT 'backup', x.id, x.location, 'ttl' FROM x
    ON CONFLICT DO NOTHING RETURNING 1
  ) SELECT count(*) INTO n FROM x;
  RETURN n + ops.apply_backup_retention();
END $$;
COMMENT ON FUNCTION ops.expire_backups IS 'Marks backups past retention or TTL expired and queues their objects for deletion';

-- Expires artifacts whose expires_at has passed and queues their objects.
CREATE FUNCTION ops.expire_artifacts(max_rows integer DEFAULT 10000) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  WITH due AS (
    SELECT a.id FROM ops.artifacts a
     WHERE a.expired_at IS NULL AND a.expires_at <= now()
     ORDER BY a.expires_at LIMIT max_rows FOR UPDATE SKIP LOCKED
  ), x AS (
    UPDATE ops.artifacts a SET expired_at = now() FROM due WHERE a.id = due.id
    RETURNING a.id, a.location
  ), q AS (
    INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason)
    SELECT 'artifact', x.id, x.location, 'ttl' FROM x ON CONFLICT DO NOTHING RETURNING 1
  ) SELECT count(*) INTO n FROM x;
  RETURN n;
END $$;

-- The worker daemon's side of the deletion outbox.
CREATE FUNCTION ops.claim_storage_deletions(worker_id text, n integer DEFAULT 10)
RETURNS SETOF ops.storage_deletions LANGUAGE sql VOLATILE AS $$
  WITH c AS (
    SELECT id FROM ops.storage_deletions
     WHERE status = 'pending' OR (status = 'claimed' AND claimed_at < now() - interval '1 hour')
     ORDER BY id LIMIT least(greatest(n, 1), 1000) FOR UPDATE SKIP LOCKED
  )
  UPDATE ops.storage_deletions d SET status = 'claimed', claimed_by = worker_id, claimed_at = now(),
         attempts = d.attempts + 1
    FROM c WHERE d.id = c.id RETURNING d.*
$$;

CREATE FUNCTION ops.finish_storage_deletion(deletion_id bigint, ok boolean, error text DEFAULT NULL)
RETURNS ops.storage_deletions LANGUAGE plpgsql AS $$
DECLARE
  d ops.storage_deletions;
BEGIN
  UPDATE ops.storage_deletions s
     SET status = CASE WHEN ok THEN 'done' WHEN s.attempts >= 5 THEN 'failed' ELSE 'pending' END,
         completed_at = CASE WHEN ok OR s.attempts >= 5 THEN now() END,
         error = finish_storage_deletion.error
   WHERE s.id = deletion_id AND s.status = 'claimed' RETURNING * INTO d;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('storage deletion %s is not claimed', deletion_id));
  END IF;
  IF ok AND d.object_kind = 'backup' THEN
    UPDATE ops.backups SET status = 'deleted' WHERE id = d.object_id AND status = 'expired';
  END IF;
  RETURN d;
END $$;

-- Drops monthly run_events partitions whose month ended more than
-- `retention_months` months before the current one (0 keeps everything).
-- Returns how many it dropped.
CREATE FUNCTION ops.drop_old_run_event_partitions(retention_months integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  rel record;
  cutoff date;
  dropped integer := 0;
BEGIN
  IF retention_months IS NULL OR retention_months < 0 OR retention_months > 1200 THEN
    PERFORM ops._raise('OD004', 'retention_months must be between 0 and 1200');
  END IF;
  IF retention_months = 0 THEN
    RETURN 0;
  END IF;
  cutoff := (date_trunc('month', now()) - make_interval(months => retention_months))::date;
  FOR rel IN
    SELECT c.oid, c.relname FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'ops.run_events'::regclass AND c.relname ~ '^run_events_\d{4}_\d{2}$'
       AND to_date(substr(c.relname, 12), 'YYYY_MM') < cutoff
     ORDER BY c.relname
  LOOP
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = rel.oid AND d.deptype = 'e') THEN
      EXECUTE format('ALTER EXTENSION odooops DROP TABLE ops.%I', rel.relname);
    END IF;
    EXECUTE format('DROP TABLE ops.%I', rel.relname);
    dropped := dropped + 1;
  END LOOP;
  RETURN dropped;
END $$;
COMMENT ON FUNCTION ops.drop_old_run_event_partitions IS 'Drops run_events months older than the retention; returns how many';
-- Alerts raised by the scheduler background worker: opened once per
-- condition (deduplicated while open), resolved automatically when the
-- condition clears. Kinds: docs/background-workers.md.

CREATE TABLE ops.alerts (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind           text NOT NULL CHECK (kind IN ('queue_backpressure', 'stale_run', 'backup_failed',
                                               'production_restore_requested', 'worker_lost')),
  dedup_key      text NOT NULL CHECK (length(dedup_key) BETWEEN 1 AND 200),
  severity       text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  project_id     bigint REFERENCES ops.projects ON DELETE CASCADE,
  environment_id bigint REFERENCES ops.environments ON DELETE CASCADE,
  message        text NOT NULL CHECK (length(message) BETWEEN 1 AND 2000),
  details        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
  status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
  opened_at      timestamptz NOT NULL DEFAULT now(),
  last_seen_at   timestamptz NOT NULL DEFAULT now(),
  resolved_at    timestamptz,
  resolved_by    text,
  CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);
COMMENT ON TABLE ops.alerts IS 'Operational alerts: one open row per (kind, dedup_key), resolved when the condition clears';
CREATE UNIQUE INDEX alerts_open_once ON ops.alerts (kind, dedup_key) WHERE status = 'open';
CREATE INDEX alerts_opened ON ops.alerts (opened_at DESC);
ALTER TABLE ops.alerts ENABLE ROW LEVEL SECURITY;

CREATE TYPE ops._alert_condition AS (kind text, dedup_key text, severity text, project_id bigint,
                                     environment_id bigint, message text, details jsonb);

-- The conditions that should have an open alert right now.
CREATE FUNCTION ops.alert_conditions(backpressure_threshold integer DEFAULT 50,
                                     agent_timeout_seconds integer DEFAULT 120)
RETURNS SETOF ops._alert_condition
LANGUAGE sql STABLE AS $$
  -- more runs waiting than the threshold
  SELECT 'queue_backpressure', 'queue', 'warning', NULL::bigint, NULL::bigint,
         format('%s runs queued (threshold %s)', q.n, backpressure_threshold),
         jsonb_build_object('queued', q.n, 'threshold', backpressure_threshold)
    FROM (SELECT count(*) AS n FROM ops.runs WHERE status = 'queued') q
   WHERE q.n > backpressure_threshold
  UNION ALL
  -- runs the stale-run detector took back (requeued and waiting, or failed)
  SELECT 'stale_run', 'run:' || r.id, CASE WHEN r.status = 'failed' THEN 'critical' ELSE 'warning' END,
         r.project_id, r.environment_id,
         format('%s run %s %s after its lease expired (attempt %s of %s)', r.workflow, r.id,
                CASE WHEN r.status = 'failed' THEN 'failed' ELSE 'was requeued' END, r.attempt, r.max_attempts),
         jsonb_build_object('run_id', r.id, 'status', r.status, 'attempt', r.attempt)
    FROM ops.runs r
   WHERE r.status IN ('queued', 'failed') AND r.attempt > 0
     AND r.updated_at > now() - interval '7 days'
     AND (SELECT e.actor = 'odooops' AND e.from_status IN ('claimed', 'running')
            FROM ops.run_events e
           WHERE e.run_id = r.id AND e.kind = 'transition'
           ORDER BY e.id DESC LIMIT 1)
  UNION ALL
  -- the latest finished backup of an environment failed
  SELECT 'backup_failed', 'environment:' || b.environment_id, 'critical', b.project_id, b.environment_id,
         format('%s backup %s failed: %s', b.backup_type, b.id, coalesce(b.error, 'unknown error')),
         jsonb_build_object('backup_id', b.id)
    FROM (SELECT DISTINCT ON (environment_id) * FROM ops.backups
           WHERE status IN ('completed', 'failed', 'expired', 'deleted')
           ORDER BY environment_id, created_at DESC, id DESC) b
   WHERE b.status = 'failed'
  UNION ALL
  -- a restore into production is pending approval or in progress
  SELECT 'production_restore_requested', 'restore:' || rs.id, 'warning', rs.project_id,
         rs.target_environment_id,
         format('restore %s of backup %s into production %s is %s', rs.id, rs.backup_id, e.name, rs.status),
         jsonb_build_object('restore_id', rs.id, 'backup_id', rs.backup_id, 'requested_by', rs.requested_by)
    FROM ops.restores rs JOIN ops.environments e ON e.id = rs.target_environment_id
   WHERE e.stage = 'production' AND rs.status IN ('pending_approval', 'queued', 'running')
  UNION ALL
  -- a worker stopped heartbeating
  SELECT 'worker_lost', 'agent:' || a.worker_id, 'warning', NULL, NULL,
         format('worker %s has not sent a heartbeat since %s', a.worker_id, a.last_heartbeat_at),
         jsonb_build_object('worker_id', a.worker_id, 'last_heartbeat_at', a.last_heartbeat_at)
    FROM ops.agents a
   WHERE a.status <> 'disabled'
     AND a.last_heartbeat_at < now() - make_interval(secs => agent_timeout_seconds)
$$;

-- Opens an alert for every new condition, refreshes open ones, resolves the
-- ones whose condition cleared; marks silent workers offline. Returns the
-- number of alerts opened and resolved.
CREATE FUNCTION ops.evaluate_alerts(backpressure_threshold integer DEFAULT 50,
                                    agent_timeout_seconds integer DEFAULT 120,
                                    OUT opened integer, OUT resolved integer)
LANGUAGE plpgsql AS $$
DECLARE
  conditions jsonb;
BEGIN
  -- One snapshot of the conditions for all three steps.
  SELECT coalesce(jsonb_agg(to_jsonb(c)), '[]') INTO conditions
    FROM ops.alert_conditions(backpressure_threshold, agent_timeout_seconds) c;

  WITH c AS (SELECT * FROM jsonb_populate_recordset(NULL::ops._alert_condition, conditions)),
  lost AS (
    UPDATE ops.agents a SET status = 'offline'
      FROM c
     WHERE c.kind = 'worker_lost' AND c.dedup_key = 'agent:' || a.worker_id AND a.status <> 'offline'
    RETURNING a.id, a.worker_id, a.last_heartbeat_at
  )
  INSERT INTO ops.agent_events (agent_id, kind, message, payload)
  SELECT id, 'lost', format('worker %s marked offline: no heartbeat since %s', worker_id, last_heartbeat_at),
         jsonb_build_object('last_heartbeat_at', last_heartbeat_at)
    FROM lost;

  WITH c AS (SELECT * FROM jsonb_populate_recordset(NULL::ops._alert_condition, conditions))
  UPDATE ops.alerts a SET last_seen_at = now(), message = c.message, details = c.details
    FROM c
   WHERE a.status = 'open' AND a.kind = c.kind AND a.dedup_key = c.dedup_key;

  WITH c AS (SELECT * FROM jsonb_populate_recordset(NULL::ops._alert_condition, conditions))
  INSERT INTO ops.alerts (kind, dedup_key, severity, project_id, environment_id, message, details)
  SELECT c.kind, c.dedup_key, c.severity, c.project_id, c.environment_id, c.message, c.details
    FROM c
  ON CONFLICT (kind, dedup_key) WHERE status = 'open' DO NOTHING;
  GET DIAGNOSTICS opened = ROW_COUNT;

  WITH c AS (SELECT * FROM jsonb_populate_recordset(NULL::ops._alert_condition, conditions))
  UPDATE ops.alerts a SET status = 'resolved', resolved_at = now(), resolved_by = 'odooops'
   WHERE a.status = 'open'
     AND NOT EXISTS (SELECT 1 FROM c WHERE c.kind = a.kind AND c.dedup_key = a.dedup_key);
  GET DIAGNOSTICS resolved = ROW_COUNT;
END $$;
COMMENT ON FUNCTION ops.evaluate_alerts IS 'Opens, refreshes and resolves alerts from the current conditions';

-- Resolves an alert by hand (it reopens if its condition still holds).
CREATE FUNCTION ops.resolve_alert(alert_id bigint) RETURNS ops.alerts LANGUAGE plpgsql AS $$
DECLARE
  a ops.alerts;
BEGIN
  UPDATE ops.alerts SET status = 'resolved', resolved_at = now(), resolved_by = ops.current_actor()
   WHERE id = alert_id AND status = 'open' RETURNING * INTO a;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('no open alert %s', alert_id));
  END IF;
  RETURN a;
END $$;

-- The stale-run detector's step: runs claimed but not started within
-- `claim_timeout_seconds` have their lease ended early (with a log event),
-- then every held run with an expired lease goes through
-- ops.requeue_expired_runs (requeue with backoff, or fail at max_attempts).
CREATE FUNCTION ops.requeue_stale_runs(claim_timeout_seconds integer DEFAULT 300, max_runs integer DEFAULT 1000)
RETURNS SETOF ops.runs LANGUAGE plpgsql AS $$
BEGIN
  IF claim_timeout_seconds IS NULL OR claim_timeout_seconds < 1 THEN
    PERFORM ops._raise('OD004', 'claim_timeout_seconds must be at least 1');
  END IF;
  WITH slow AS (
    UPDATE ops.runs r SET lease_expires_at = now() - interval '1 millisecond', updated_at = now()
     WHERE r.status = 'claimed' AND r.claimed_at < now() - make_interval(secs => claim_timeout_seconds)
       AND r.lease_expires_at >= now()
    RETURNING r.id, r.attempt
  )
  INSERT INTO ops.run_events (run_id, attempt, kind, level, message, actor)
  SELECT id, attempt, 'log', 'warning',
         format('claimed but not started within %s s; lease ended early', claim_timeout_seconds), 'odooops'
    FROM slow;
  RETURN QUERY SELECT * FROM ops.requeue_expired_runs(max_runs);
END $$;
COMMENT ON FUNCTION ops.requeue_stale_runs IS
  'Ends the lease of runs claimed but not started in time, then requeues or fails every expired lease';
-- Outbound webhooks: subscriptions, their secrets, and a durable outbox of
-- deliveries written by triggers in the same transaction as the change that
-- caused them. The dispatcher background worker (bgworker/dispatcher.cpp)
-- claims due deliveries, commits, sends them over HTTP outside any
-- transaction, and records the results in a new one.
-- Formats and the signature header: docs/background-workers.md.

CREATE TABLE ops.webhook_subscriptions (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  url          text NOT NULL CHECK (url ~ '^https?://[^\s]+$' AND length(url) <= 2048),
  format       text NOT NULL DEFAULT 'json' CHECK (format IN ('json', 'slack', 'github')),
  -- empty: every event type
  event_types  text[] NOT NULL DEFAULT '{}' CHECK (event_types <@ ARRAY[
                 'run.queued', 'run.started', 'run.finished', 'backup.completed', 'backup.failed',
                 'restore.requested', 'restore.approved', 'restore.finished',
                 'alert.opened', 'alert.resolved']),
  project_id   bigint REFERENCES ops.projects ON DELETE CASCADE,   -- NULL: every project
  active       boolean NOT NULL DEFAULT true,
  max_attempts integer CHECK (max_attempts BETWEEN 1 AND 100),     -- NULL: odooops.webhook_max_attempts
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.webhook_subscriptions IS 'Where events are sent: URL, format (json, slack, github), event types, project filter';
ALTER TABLE ops.webhook_subscriptions ENABLE ROW LEVEL SECURITY;

-- Secrets live apart from the subscriptions so no user-facing role is ever
-- granted them: the HMAC key of a json subscription, the token of a github one.
CREATE TABLE ops.webhook_secrets (
  subscription_id bigint PRIMARY KEY REFERENCES ops.webhook_subscriptions ON DELETE CASCADE,
  secret          text NOT NULL CHECK (length(secret) BETWEEN 1 AND 4096),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.webhook_secrets IS 'Signing secrets and tokens of webhook subscriptions (never granted to users)';
ALTER TABLE ops.webhook_secrets ENABLE ROW LEVEL SECURITY;

CREATE TABLE ops.webhook_deliveries (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription_id  bigint NOT NULL REFERENCES ops.webhook_subscriptions ON DELETE CASCADE,
  event_type       text NOT NULL,
  payload          jsonb NOT NULL,   -- the event envelope (core/webhook_payload.h)
  status           text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'sending', 'delivered', 'dead')),
  attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  claimed_until    timestamptz,
  last_status_code integer,
  last_latency_ms  integer,
  last_error       text,
  last_response    text,             -- truncated; cleared after odooops.webhook_response_ttl
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  delivered_at     timestamptz,
  dead_at          timestamptz,
  CHECK ((status = 'sending') = (claimed_until IS NOT NULL)),
  CHECK ((status = 'delivered') = (delivered_at IS NOT NULL)),
  CHECK ((status = 'dead') = (dead_at IS NOT NULL))
);
COMMENT ON TABLE ops.webhook_deliveries IS 'Durable outbox: one row per (event, subscription), with its delivery state';
CREATE INDEX webhook_deliveries_due ON ops.webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_sending ON ops.webhook_deliveries (claimed_until) WHERE status = 'sending';
CREATE INDEX webhook_deliveries_dead ON ops.webhook_deliveries (subscription_id) WHERE status = 'dead';
CREATE INDEX webhook_deliveries_finished ON ops.webhook_deliveries (updated_at) WHERE status IN ('delivered', 'dead');
ALTER TABLE ops.webhook_deliveries ENABLE ROW LEVEL SECURITY;

CREATE TABLE ops.webhook_delivery_attempts (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id   bigint NOT NULL REFERENCES ops.webhook_deliveries ON DELETE CASCADE,
  attempt       integer NOT NULL,
  started_at    timestamptz NOT NULL,
  recorded_at   timestamptz NOT NULL DEFAULT now(),
  outcome       text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead')),
  status_code   integer,             -- NULL: no HTTP response (connect error, timeout, ...)
  latency_ms    integer,
  error         text,
  response_body text                 -- truncated; cleared after odooops.webhook_response_ttl
);
COMMENT ON TABLE ops.webhook_delivery_attempts IS 'Every HTTP attempt of a delivery: status code, latency, error, truncated response';
CREATE INDEX webhook_delivery_attempts_delivery ON ops.webhook_delivery_attempts (delivery_id, attempt);
CREATE INDEX webhook_delivery_attempts_recorded ON ops.webhook_delivery_attempts (recorded_at);
ALTER TABLE ops.webhook_delivery_attempts ENABLE ROW LEVEL SECURITY;

-- Writes one delivery per matching active subscription for an event and
-- wakes the dispatcher at commit. Returns how many deliveries it wrote.
-- SECURITY DEFINER: the triggers below run it for any user whose change
-- causes an event, while the outbox and subscriptions stay private (RLS
-- without policies). Not to be granted to users directly.
CREATE FUNCTION ops.enqueue_webhook_event(event_type text, project_id bigint, environment_id bigint, data jsonb)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
  n integer;
  envelope jsonb;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ops.webhook_subscriptions s WHERE s.active) THEN
    RETURN 0;
  END IF;
  envelope := jsonb_build_object(
    'type', event_type,
    'occurred_at', now(),
    'project', (SELECT jsonb_build_object('id', p.id, 'slug', p.slug, 'repo_full_name', p.repo_full_name)
                  FROM ops.projects p WHERE p.id = enqueue_webhook_event.project_id),
    'environment', (SELECT jsonb_build_object('id', e.id, 'name', e.name, 'stage', e.stage)
                      FROM ops.environments e WHERE e.id = enqueue_webhook_event.environment_id),
    'data', data);
  INSERT INTO ops.webhook_deliveries (subscription_id, event_type, payload)
  SELECT s.id, enqueue_webhook_event.event_type, envelope
    FROM ops.webhook_subscriptions s
   WHERE s.active
     AND (cardinality(s.event_types) = 0 OR enqueue_webhook_event.event_type = ANY (s.event_types))
     AND (s.project_id IS NULL OR s.project_id = enqueue_webhook_event.project_id)
     AND (s.format <> 'github'
          OR (enqueue_webhook_event.event_type LIKE 'run.%' AND data->>'git_sha' IS NOT NULL
              AND envelope->'project'->>'repo_full_name' IS NOT NULL));
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN
    PERFORM ops._wake_dispatcher();
  END IF;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.enqueue_webhook_event IS 'Writes the outbox deliveries of an event (called by triggers)';

-- Event triggers: run.queued / run.started / run.finished
CREATE FUNCTION ops._runs_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  event text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    event := 'run.queued';
  ELSIF NEW.status = 'running' THEN
    event := 'run.started';
  ELSIF NEW.status IN ('succeeded', 'failed', 'cancelled') THEN
    event := 'run.finished';
  ELSE
    RETURN NULL;
  END IF;
  PERFORM ops.enqueue_webhook_event(event, NEW.project_id, NEW.environment_id,
    jsonb_build_object('id', NEW.id, 'workflow', NEW.workflow, 'status', NEW.status,
                       'attempt', NEW.attempt, 'git_sha', NEW.git_sha, 'git_ref', NEW.git_ref,
                       'error', NEW.error, 'requested_by', NEW.requested_by,
                       'target_url', NEW.result->>'url'));
  RETURN NULL;
END $$;
CREATE TRIGGER runs_webhook_insert AFTER INSERT ON ops.runs
  FOR EACH ROW EXECUTE FUNCTION ops._runs_webhook();
CREATE TRIGGER runs_webhook_status AFTER UPDATE OF status ON ops.runs
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION ops._runs_webhook();

-- backup.completed / backup.failed
CREATE FUNCTION ops._backups_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status IN ('completed', 'failed') AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status) THEN
    PERFORM ops.enqueue_webhook_event('backup.' || NEW.status, NEW.project_id, NEW.environment_id,
      jsonb_build_object('id', NEW.id, 'backup_type', NEW.backup_type, 'status', NEW.status,
                         'run_id', NEW.run_id, 'size_bytes', NEW.size_bytes, 'sha256', NEW.sha256,
                         'error', NEW.error));
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER backups_webhook AFTER INSERT OR UPDATE OF status ON ops.backups
  FOR EACH ROW EXECUTE FUNCTION ops._backups_webhook();

-- restore.requested / restore.approved / restore.finished
CREATE FUNCTION ops._restores_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  event text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    event := 'restore.requested';
  ELSIF OLD.status IS NOT DISTINCT FROM NEW.status THEN
    RETURN NULL;
  ELSIF OLD.status = 'pending_approval' AND NEW.status = 'queued' THEN
    event := 'restore.approved';
  ELSIF NEW.status IN ('completed', 'failed', 'rejected', 'expired', 'cancelled') THEN
    event := 'restore.finished';
  ELSE
    RETURN NULL;
  END IF;
  PERFORM ops.enqueue_webhook_event(event, NEW.project_id, NEW.target_environment_id,
    jsonb_build_object('id', NEW.id, 'backup_id', NEW.backup_id, 'status', NEW.status,
                       'run_id', NEW.run_id, 'requested_by', NEW.requested_by));
  RETURN NULL;
END $$;
CREATE TRIGGER restores_webhook AFTER INSERT OR UPDATE OF status ON ops.restores
  FOR EACH ROW EXECUTE FUNCTION ops._restores_webhook();

-- alert.opened / alert.resolved
CREATE FUNCTION ops._alerts_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR (NEW.status = 'resolved' AND OLD.status = 'open') THEN
    PERFORM ops.enqueue_webhook_event(CASE WHEN TG_OP = 'INSERT' THEN 'alert.opened' ELSE 'alert.resolved' END,
      NEW.project_id, NEW.environment_id,
      jsonb_build_object('id', NEW.id, 'kind', NEW.kind, 'severity', NEW.severity,
                         'status', NEW.status, 'message', NEW.message, 'details', NEW.details));
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER alerts_webhook AFTER INSERT OR UPDATE OF status ON ops.alerts
  FOR EACH ROW EXECUTE FUNCTION ops._alerts_webhook();

-- Wakes the dispatcher when deliveries are written directly (e.g. bulk
-- inserts by admins or benchmarks).
CREATE FUNCTION ops._wake_dispatcher_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM ops._wake_dispatcher();
  RETURN NULL;
END $$;
CREATE TRIGGER webhook_deliveries_wake AFTER INSERT ON ops.webhook_deliveries
  FOR EACH STATEMENT EXECUTE FUNCTION ops._wake_dispatcher_trigger();

-- The dispatcher's side (internal). Claims up to n due deliveries: they go
-- to 'sending' with attempts + 1 and a claim deadline, and are returned with
-- what rendering needs (including the secret). The caller commits before
-- any HTTP.
CREATE FUNCTION ops._claim_webhook_deliveries(n integer, claim_ms integer, default_max_attempts integer)
RETURNS TABLE(id bigint, format text, url text, secret text, event_type text, payload text,
              attempts integer, max_attempts integer)
LANGUAGE sql VOLATILE AS $$
  WITH c AS (
    SELECT d.id FROM ops.webhook_deliveries d
     WHERE d.status = 'pending' AND d.next_attempt_at <= now()
     ORDER BY d.next_attempt_at, d.id
     LIMIT n FOR UPDATE SKIP LOCKED
  ), u AS (
    UPDATE ops.webhook_deliveries d
       SET status = 'sending', attempts = d.attempts + 1,
           claimed_until = now() + make_interval(secs => claim_ms / 1000.0), updated_at = now()
      FROM c WHERE d.id = c.id
    RETURNING d.id, d.subscription_id, d.event_type, d.payload, d.attempts
  )
  SELECT u.id, s.format, s.url, coalesce(k.secret, ''), u.event_type, u.payload::text, u.attempts,
         coalesce(s.max_attempts, default_max_attempts)
    FROM u JOIN ops.webhook_subscriptions s ON s.id = u.subscription_id
    LEFT JOIN ops.webhook_secrets k ON k.subscription_id = s.id
   ORDER BY u.id
$$;

-- Records a batch of attempt results:
--   [{id, attempt, outcome: delivered|retry|dead, delay_ms, status_code,
--     latency_ms, error, response, started_ms}]
-- Fenced by (status = 'sending', attempts = attempt): a result for a claim
-- that was recovered meanwhile changes nothing. Returns how many it applied.
CREATE FUNCTION ops._record_webhook_results(results jsonb) RETURNS integer LANGUAGE sql VOLATILE AS $$
  WITH r AS (
    SELECT * FROM jsonb_to_recordset(results)
      AS r(id bigint, attempt integer, outcome text, delay_ms bigint, status_code integer,
           latency_ms integer, error text, response text, started_ms bigint)
  ), u AS (
    UPDATE ops.webhook_deliveries d
       SET status = CASE r.outcome WHEN 'delivered' THEN 'delivered' WHEN 'dead' THEN 'dead' ELSE 'pending' END,
           next_attempt_at = CASE WHEN r.outcome = 'retry'
                                  THEN now() + make_interval(secs => r.delay_ms / 1000.0)
                                  ELSE d.next_attempt_at END,
           claimed_until = NULL,
           last_status_code = r.status_code, last_latency_ms = r.latency_ms,
           last_error = r.error, last_response = r.response,
           delivered_at = CASE WHEN r.outcome = 'delivered' THEN now() END,
           dead_at = CASE WHEN r.outcome = 'dead' THEN now() END,
           updated_at = now()
      FROM r
     WHERE d.id = r.id AND d.status = 'sending' AND d.attempts = r.attempt
    RETURNING d.id
  ), a AS (
    INSERT INTO ops.webhook_delivery_attempts
      (delivery_id, attempt, started_at, outcome, status_code, latency_ms, error, response_body)
    SELECT r.id, r.attempt, to_timestamp(r.started_ms / 1000.0), r.outcome, r.status_code,
           r.latency_ms, r.error, r.response
      FROM r JOIN u ON u.id = r.id
    RETURNING 1
  ) SELECT count(*)::integer FROM a
$$;

-- Puts deliveries a crash left in 'sending' back to 'pending' (all of them
-- when the dispatcher starts; otherwise those past their claim deadline).
-- The unrecorded attempt is not counted. Returns how many.
CREATE FUNCTION ops._recover_webhook_deliveries(everything boolean) RETURNS integer LANGUAGE sql VOLATILE AS $$
  WITH u AS (
    UPDATE ops.webhook_deliveries d
       SET status = 'pending', attempts = greatest(d.attempts - 1, 0), claimed_until = NULL,
           next_attempt_at = now(), updated_at = now()
     WHERE d.status = 'sending' AND (everything OR d.claimed_until < now())
    RETURNING 1
  ) SELECT count(*)::integer FROM u
$$;

-- Milliseconds until the next pending delivery is due (NULL: none).
CREATE FUNCTION ops._next_webhook_due_ms() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT greatest(0, (extract(epoch FROM min(next_attempt_at) - clock_timestamp()) * 1000)::bigint)
    FROM ops.webhook_deliveries WHERE status = 'pending'
$$;

-- Re-drives dead deliveries (all, one subscription's, or the given ids):
-- back to pending with a fresh attempt budget. Returns how many.
CREATE FUNCTION ops.redrive_webhook_deliveries(subscription_id bigint DEFAULT NULL, delivery_ids bigint[] DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  UPDATE ops.webhook_deliveries d
     SET status = 'pending', attempts = 0, next_attempt_at = now(), dead_at = NULL, updated_at = now()
   WHERE d.status = 'dead'
     AND (redrive_webhook_deliveries.subscription_id IS NULL OR d.subscription_id = redrive_webhook_deliveries.subscription_id)
     AND (delivery_ids IS NULL OR d.id = ANY (delivery_ids));
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN
    PERFORM ops._wake_dispatcher();
  END IF;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.redrive_webhook_deliveries IS 'Sends dead deliveries again with a fresh attempt budget';

-- History TTLs: response bodies are cleared after `response_ttl_seconds`,
-- delivered deliveries (and their attempts) deleted after
-- `retention_seconds`, at most `max_rows` per call. Returns rows touched.
CREATE FUNCTION ops.prune_webhook_history(response_ttl_seconds integer, retention_seconds integer,
                                          max_rows integer DEFAULT 10000)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  a integer;
  b integer;
  c integer;
BEGIN
  UPDATE ops.webhook_delivery_attempts SET response_body = NULL
   WHERE id IN (SELECT id FROM ops.webhook_delivery_attempts
                 WHERE response_body IS NOT NULL
                   AND recorded_at < now() - make_interval(secs => response_ttl_seconds)
                 LIMIT max_rows);
  GET DIAGNOSTICS a = ROW_COUNT;
  UPDATE ops.webhook_deliveries SET last_response = NULL
   WHERE id IN (SELECT id FROM ops.webhook_deliveries
                 WHERE status IN ('delivered', 'dead') AND last_response IS NOT NULL
                   AND updated_at < now() - make_interval(secs => response_ttl_seconds)
                 LIMIT max_rows);
  GET DIAGNOSTICS b = ROW_COUNT;
  DELETE FROM ops.webhook_deliveries
   WHERE id IN (SELECT id FROM ops.webhook_deliveries
                 WHERE status = 'delivered' AND updated_at < now() - make_interval(secs => retention_seconds)
                 LIMIT max_rows);
  GET DIAGNOSTICS c = ROW_COUNT;
  RETURN a + b + c;
END $$;
-- Privileges and row-level security. Tables are private: people read them
-- through row-level security and change them through RPCs (plus a few
-- column-limited table writes that PostgREST users expect); workers only
-- call worker RPCs. docs/access-control.md has the matrix.

REVOKE ALL ON ALL TABLES IN SCHEMA ops FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA ops FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA ops FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA ops REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
GRANT USAGE ON SCHEMA ops TO odooops_api, odooops_worker, odooops_admin, odooops_ingest;

-- Native queue functions run with the extension owner's rights (workers and
-- people have no table privileges). Their statements are prepared under a
-- pinned search_path (extension/pg/spi.cpp), which the plan cache keeps, so
-- they need no per-call SET search_path.
DO $$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
            WHERE p.pronamespace = 'ops'::regnamespace AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
  LOOP
    EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f);
  END LOOP;
END $$;
-- Trigger functions (outbox, wake-ups, run subjects, releases) act for the
-- extension whoever changed the row: they call internal functions that no
-- user role may execute.
DO $$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
            WHERE p.pronamespace = 'ops'::regnamespace AND p.prorettype = 'trigger'::regtype
  LOOP
    EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp', f);
  END LOOP;
END $$;
ALTER FUNCTION ops.register_agent(text, text[], text, jsonb, text, text)
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.agent_heartbeat(text, boolean) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Worker RPCs.
GRANT EXECUTE ON FUNCTION
  ops.claim_next_run(text, integer, text[]),
  ops.claim_runs(text, integer, integer, text[]),
  ops.start_run(bigint, text, integer, integer),
  ops.heartbeat_run(bigint, text, integer, integer),
  ops.release_run(bigint, text, integer, text),
  ops.append_event(bigint, text, text, jsonb, text, integer),
  ops.append_events(bigint, jsonb, text, integer),
  ops.finish_run(bigint, text, jsonb, text, integer),
  ops.finish_runs(text, jsonb),
  ops.register_agent(text, text[], text, jsonb, text, text),
  ops.agent_heartbeat(text, boolean),
  ops.set_agent_status(text, text),
  ops.run_context(bigint, text, integer),
  ops.record_artifact(bigint, text, integer, text, text, text, bigint, text, jsonb, timestamptz),
  ops.requeue_expired_runs(integer),
  ops.claim_next_backup(text, integer),
  ops.complete_backup(bigint, text, integer, text, bigint, text, jsonb),
  ops.fail_backup(bigint, text, integer, text)
TO odooops_worker;

-- People's RPCs, and the functions row-level security policies call.
GRANT EXECUTE ON FUNCTION
  ops.queue_run(bigint, text, text, text, jsonb, text, integer, text, integer),
  ops.cancel_run(bigint, text),
  ops.append_event(bigint, text, text, jsonb),
  ops.append_events(bigint, jsonb),
  ops.finish_run(bigint, text, jsonb),
  ops.create_backup(bigint, text, text, jsonb),
  ops.restore_backup(bigint, bigint, text, jsonb),
  ops.decide_approval(bigint, text, text),
  ops.create_project(text, text, text, text),
  ops.destroy_environment(bigint, text, text),
  ops.rollback_release(bigint, text),
  ops.set_project_secret(bigint, text, text),
  ops.user_has_permission(bigint, text, bigint),
  ops.user_has_stage_permission(bigint, text, text),
  ops.can_read_project(bigint),
  ops.current_user_id(),
  ops.current_actor(),
  ops.invoking_role(),
  ops.is_admin(),
  ops.backup_ttl(text, jsonb)
TO odooops_api;

-- GitHub webhooks: the signature is the authentication.
GRANT EXECUTE ON FUNCTION ops.ingest_github(text, text, text, text), ops.github_webhook(json)
  TO odooops_ingest, odooops_api;

-- The worker daemon drains the storage-deletion outbox (retention).
ALTER FUNCTION ops.claim_storage_deletions(text, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.finish_storage_deletion(bigint, boolean, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
GRANT EXECUTE ON FUNCTION ops.claim_storage_deletions(text, integer), ops.finish_storage_deletion(bigint, boolean, text)
  TO odooops_worker;

-- Platform administration.
GRANT EXECUTE ON FUNCTION
  ops.redrive_webhook_deliveries(bigint, bigint[]),
  ops.resolve_alert(bigint),
  ops.cron_next(text, timestamptz),
  ops.requeue_expired_runs(integer),
  ops.expire_approvals(),
  ops.expire_environments(),
  ops.ensure_run_event_partitions(integer),
  ops.metrics_prometheus()
TO odooops_admin;
GRANT SELECT ON ops.metrics_queue, ops.metrics_workers, ops.metrics_runs TO odooops_admin;
GRANT EXECUTE ON FUNCTION ops.branch_matches(text, text), ops.branch_slug(text, integer)
  TO odooops_api, odooops_worker;

-- Reads for people (rows filtered below), and the writes they may make.
GRANT SELECT ON ops.projects, ops.environments, ops.runs, ops.run_events, ops.artifacts, ops.releases,
                ops.backups, ops.restores, ops.approvals, ops.roles, ops.policies,
                ops.project_members, ops.env_permissions, ops.audit_log, ops.alerts
  TO odooops_api;
GRANT SELECT ON ops.project_secret_names TO odooops_api;
GRANT UPDATE (name, repo_url, repo_full_name, production_branch, settings) ON ops.projects TO odooops_api;
GRANT INSERT (project_id, name, stage, branch_pattern, db_name, settings),
      UPDATE (branch_pattern, settings) ON ops.environments TO odooops_api;
GRANT INSERT, UPDATE (role), DELETE ON ops.project_members TO odooops_api;
GRANT INSERT, DELETE ON ops.env_permissions TO odooops_api;

-- Administrators: every table but the secrets.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ops TO odooops_admin;
REVOKE ALL ON ops.project_secrets FROM odooops_admin;
-- Webhook secrets: administrators set them, nobody reads them back.
REVOKE ALL ON ops.webhook_secrets FROM odooops_admin;
GRANT INSERT, DELETE, SELECT (subscription_id), UPDATE (secret, updated_at) ON ops.webhook_secrets TO odooops_admin;

-- Row-level security on every table; administrators see everything.
DO $$
DECLARE
  t regclass;
BEGIN
  FOR t IN SELECT c.oid::regclass FROM pg_class c
            WHERE c.relnamespace = 'ops'::regnamespace AND c.relkind IN ('r', 'p')
              AND NOT c.relispartition
  LOOP
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
    IF t NOT IN ('ops.project_secrets'::regclass) THEN
      EXECUTE format('CREATE POLICY admin_all ON %s TO odooops_admin USING (true) WITH CHECK (true)', t);
    END IF;
  END LOOP;
END $$;

-- Project members read their projects' rows.
CREATE POLICY projects_member_select ON ops.projects FOR SELECT TO odooops_api
  USING (ops.can_read_project(id));
CREATE POLICY projects_manager_update ON ops.projects FOR UPDATE TO odooops_api
  USING (ops.user_has_permission(id, 'project.manage'))
  WITH CHECK (ops.user_has_permission(id, 'project.manage'));

CREATE POLICY environments_member_select ON ops.environments FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
CREATE POLICY environments_manager_insert ON ops.environments FOR INSERT TO odooops_api
  WITH CHECK (ops.user_has_stage_permission(project_id, 'env.manage', stage));
CREATE POLICY environments_manager_update ON ops.environments FOR UPDATE TO odooops_api
  USING (ops.user_has_permission(project_id, 'env.manage', id))
  WITH CHECK (ops.user_has_permission(project_id, 'env.manage', id));

CREATE POLICY runs_member_select ON ops.runs FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
CREATE POLICY run_events_member_select ON ops.run_events FOR SELECT TO odooops_api
  USING (EXISTS (SELECT 1 FROM ops.runs r WHERE r.id = run_id));  -- runs' own policy filters
CREATE POLICY releases_member_select ON ops.releases FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
CREATE POLICY artifacts_member_select ON ops.artifacts FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
CREATE POLICY backups_member_select ON ops.backups FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
CREATE POLICY restores_member_select ON ops.restores FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
CREATE POLICY approvals_member_select ON ops.approvals FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
CREATE POLICY audit_log_auditor_select ON ops.audit_log FOR SELECT TO odooops_api
  USING (ops.user_has_permission(project_id, 'audit.read'));

CREATE POLICY alerts_member_select ON ops.alerts FOR SELECT TO odooops_api
  USING (project_id IS NOT NULL AND ops.can_read_project(project_id));

CREATE POLICY roles_all_select ON ops.roles FOR SELECT TO odooops_api USING (true);
CREATE POLICY policies_all_select ON ops.policies FOR SELECT TO odooops_api USING (true);

CREATE POLICY project_members_member_select ON ops.project_members FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
CREATE POLICY project_members_owner_insert ON ops.project_members FOR INSERT TO odooops_api
  WITH CHECK (ops.user_has_permission(project_id, 'members.manage'));
CREATE POLICY project_members_owner_update ON ops.project_members FOR UPDATE TO odooops_api
  USING (ops.user_has_permission(project_id, 'members.manage'))
  WITH CHECK (ops.user_has_permission(project_id, 'members.manage'));
CREATE POLICY project_members_owner_delete ON ops.project_members FOR DELETE TO odooops_api
  USING (ops.user_has_permission(project_id, 'members.manage'));

CREATE POLICY env_permissions_member_select ON ops.env_permissions FOR SELECT TO odooops_api
  USING (EXISTS (SELECT 1 FROM ops.environments e WHERE e.id = environment_id));
CREATE POLICY env_permissions_owner_insert ON ops.env_permissions FOR INSERT TO odooops_api
  WITH CHECK (EXISTS (SELECT 1 FROM ops.environments e WHERE e.id = environment_id
                        AND ops.user_has_permission(e.project_id, 'members.manage')));
CREATE POLICY env_permissions_owner_delete ON ops.env_permissions FOR DELETE TO odooops_api
  USING (EXISTS (SELECT 1 FROM ops.environments e WHERE e.id = environment_id
                   AND ops.user_has_permission(e.project_id, 'members.manage')));
-- Extension tables are skipped by pg_dump unless marked: mark every table of
-- the schema (and the events sequence) so a dump of the database keeps the
-- control plane's data. One call per statement: each call updates the same
-- pg_extension row.
DO $$
DECLARE
  rel regclass;
BEGIN
  FOR rel IN
    SELECT c.oid::regclass FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'ops'::regnamespace AND c.relkind IN ('r', 'p', 'S')
       AND c.relname <> 'roles'
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
  LOOP
    PERFORM pg_catalog.pg_extension_config_dump(rel, '');
  END LOOP;
  -- The built-in roles come with the extension; only added roles are data.
  PERFORM pg_catalog.pg_extension_config_dump('ops.roles', 'WHERE rank NOT IN (100, 80, 50, 20, 10)');
END $$;
