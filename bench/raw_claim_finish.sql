-- claim_finish.sql written as plain SQL (see raw_cycle.sql): the claim
-- statement, then the finish statement of transitions.cpp for failed. 2 commits per run.
WITH agent AS (
  SELECT a.status, a.healthy, a.kinds,
         ARRAY(SELECT m.team_id FROM ops.agent_team_members m WHERE m.agent_id = a.id) AS teams
    FROM ops.agents a WHERE a.worker_id = 'w' || :client_id
), candidate AS (
  SELECT r.id FROM ops.runs r
   WHERE r.status = 'queued' AND r.available_at <= now()
     AND NOT EXISTS (SELECT 1 FROM agent WHERE agent.status <> 'active' OR NOT agent.healthy)
     AND ((SELECT kinds FROM agent) IS NULL OR r.workflow = ANY ((SELECT kinds FROM agent)::text[]))
     AND (r.team_id IS NULL OR r.team_id = ANY (coalesce((SELECT teams FROM agent), ARRAY[]::bigint[])))
     AND (r.host_worker_id IS NULL OR r.host_worker_id = 'w' || :client_id)
     AND (NOT r.exclusive OR NOT EXISTS (
          SELECT 1 FROM ops.runs h WHERE h.environment_id = r.environment_id
             AND h.exclusive AND h.status IN ('claimed', 'running')))
   ORDER BY r.priority DESC, r.created_at, r.id
   LIMIT 1 FOR UPDATE OF r SKIP LOCKED
), claimed AS (
  UPDATE ops.runs r SET status = 'claimed', attempt = r.attempt + 1,
         claimed_by = 'w' || :client_id, claimed_at = now(), started_at = NULL,
         lease_expires_at = now() + make_interval(secs => 300), updated_at = now()
    FROM candidate c WHERE r.id = c.id
  RETURNING r.*
), logged AS (
  INSERT INTO ops.run_events (run_id, attempt, kind, level, message, from_status, to_status, actor)
  SELECT c.id, c.attempt, 'transition', 'info',
         'claimed by ' || c.claimed_by || ' (attempt ' || c.attempt || ')', 'queued', 'claimed', c.claimed_by
    FROM claimed c
)
SELECT coalesce(max(id), 0) AS rid, coalesce(max(attempt), 0) AS att FROM claimed \gset
\if :rid > 0
WITH finished AS (
  UPDATE ops.runs r SET status = 'failed', finished_at = now(), lease_expires_at = NULL,
         result = r.result || '{}'::jsonb, error = 'failed', updated_at = now()
   WHERE r.id = :rid AND r.status = ANY ('{claimed,running}'::text[])
     AND (('w' || :client_id)::text IS NULL OR (r.claimed_by = 'w' || :client_id AND r.attempt = :att))
  RETURNING r AS run, CASE WHEN r.claimed_by IS NULL THEN 'queued' WHEN r.started_at IS NULL
                           THEN 'claimed' ELSE 'running' END AS from_status
), logged AS (
  INSERT INTO ops.run_events (run_id, attempt, kind, level, message, from_status, to_status, actor, payload)
  SELECT (f.run).id, (f.run).attempt, 'transition', 'error', 'failed: failed', f.from_status, 'failed',
         (f.run).claimed_by, '{}'::jsonb
    FROM finished f
)
SELECT 1 FROM finished;
\endif
