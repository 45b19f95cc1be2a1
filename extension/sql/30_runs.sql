-- The one queue: build, test, deploy, backup, restore and destroy are
-- workflows of a run. States and transitions: docs/run-states.md; the legal
-- transitions live in extension/core/run_state.cpp and the invariants of each
-- state are the CHECK constraints below.

-- Every rule a run row obeys, as one native check (the rules and why they are
-- native: extension/core/row_invariants.cpp). A violation is SQLSTATE 23514,
-- "violates check constraint runs_row_is_valid", with the rule as detail.
CREATE FUNCTION ops.run_row_is_valid(
  workflow text, status text, priority integer, git_sha text, git_ref text, idempotency_key text,
  attempt integer, max_attempts integer, claimed_by text, claimed_at timestamptz, started_at timestamptz,
  lease_expires_at timestamptz, finished_at timestamptz, metadata jsonb, result jsonb)
RETURNS boolean LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'odooops_run_row_is_valid';
COMMENT ON FUNCTION ops.run_row_is_valid IS
  'CHECK of ops.runs: request fields in range, and each status with exactly its claim, lease and timestamps';

CREATE TABLE ops.runs (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id       bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  environment_id   bigint NOT NULL REFERENCES ops.environments ON DELETE RESTRICT,
  workflow         text NOT NULL,   -- build, test, deploy, backup, restore, destroy
  -- Deploy, restore and destroy change the environment itself: at most one
  -- of them is claimed or running per environment (index below).
  exclusive        boolean GENERATED ALWAYS AS (workflow IN ('deploy', 'restore', 'destroy')) STORED,
  status           text NOT NULL DEFAULT 'queued',   -- docs/run-states.md
  priority         integer NOT NULL DEFAULT 0,       -- -1000 .. 1000
  git_sha          text,                             -- 4 to 64 hex digits
  git_ref          text,                             -- 1 to 255 characters
  metadata         jsonb NOT NULL DEFAULT '{}',      -- an object
  result           jsonb NOT NULL DEFAULT '{}',      -- an object
  error            text,
  idempotency_key  text,                             -- 1 to 200 characters
  team_id          bigint REFERENCES ops.agent_teams ON DELETE RESTRICT,
  requested_by     text,
  -- attempt is the fencing token: it grows on every claim, and every worker
  -- call must present the attempt it was handed.
  attempt          integer NOT NULL DEFAULT 0,       -- 0 .. max_attempts
  max_attempts     integer NOT NULL DEFAULT 3,       -- 1 .. 100
  available_at     timestamptz NOT NULL DEFAULT now(),   -- not claimable before
  claimed_by       text,
  claimed_at       timestamptz,
  started_at       timestamptz,
  lease_expires_at timestamptz,
  finished_at      timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  -- queued: unheld; claimed: claimed_by, claimed_at, lease, attempt >= 1,
  -- not started; running: the same and started; succeeded, failed,
  -- cancelled: finished_at and no lease. Build, test and deploy runs name a
  -- revision (git_sha or git_ref).
  CONSTRAINT runs_row_is_valid CHECK (ops.run_row_is_valid(
    workflow, status, priority, git_sha, git_ref, idempotency_key, attempt, max_attempts, claimed_by,
    claimed_at, started_at, lease_expires_at, finished_at, metadata, result))
);
-- A busy queue churns its head: vacuum early so the claim index stays short.
ALTER TABLE ops.runs SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
                          autovacuum_analyze_scale_factor = 0.02);
COMMENT ON TABLE ops.runs IS 'The run queue: one row per requested build, test, deploy, backup, restore or destroy';
COMMENT ON COLUMN ops.runs.attempt IS 'Fencing token: incremented by every claim; worker calls must present it';

-- The claim path: queued runs in claim order, and nothing else. The order is
-- priority, then when the run was first queued: a run requeued after a lost
-- lease keeps its place (available_at only gates when it may be claimed).
CREATE INDEX runs_claim_order ON ops.runs (priority DESC, created_at, id) WHERE status = 'queued';
-- The stale-run detector: held runs by lease expiry.
CREATE INDEX runs_held_by_lease ON ops.runs (lease_expires_at) WHERE status IN ('claimed', 'running');
-- Backstop for the per-environment exclusivity the claim enforces.
CREATE UNIQUE INDEX runs_one_exclusive_per_environment
  ON ops.runs (environment_id) WHERE exclusive AND status IN ('claimed', 'running');
-- Idempotency keys are unique per project. Partial: most runs have no key,
-- and every non-HOT update of a run would otherwise index its NULL key again.
CREATE UNIQUE INDEX runs_idempotency ON ops.runs (project_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_project_created ON ops.runs (project_id, created_at DESC);
CREATE INDEX runs_environment_created ON ops.runs (environment_id, created_at DESC);

ALTER TABLE ops.agent_tasks
  ADD CONSTRAINT agent_tasks_run_fk FOREIGN KEY (run_id) REFERENCES ops.runs ON DELETE CASCADE;
