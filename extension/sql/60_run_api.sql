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
  PERFORM ops._check_length('team', team, 255);
  PERFORM ops._check_length('version', version, 64);
  PERFORM ops._check_length('hostname', hostname, 255);
  PERFORM ops._check_json_size('labels', labels, 65536);
  IF cardinality(kinds) > 6 THEN
    RAISE EXCEPTION USING ERRCODE = 'OD005', MESSAGE = 'kinds has too many entries',
      DETAIL = format('%s entries, the limit is 6.', cardinality(kinds));
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
  PERFORM ops._check_length('worker_id', worker_id, 128);
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
