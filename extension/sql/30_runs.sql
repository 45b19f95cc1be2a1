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
