-- native_cycle.sql written as plain SQL: the statements that
-- extension/api/claim.cpp, transitions.cpp and events.cpp execute through
-- SPI, with the same columns, predicates, locks and transition events, minus
-- the C++ around them (argument checks, refusal diagnosis). 6 commits per run.
-- The claim's three SPI statements (agent lookup, candidate lock, claiming
-- UPDATE + event) are folded into one statement here.
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
WITH started AS (
  UPDATE ops.runs r SET status = 'running', started_at = now(),
         lease_expires_at = now() + make_interval(secs => 300), updated_at = now()
   WHERE r.id = :rid AND r.status = ANY ('{claimed}'::text[]) AND r.claimed_by = 'w' || :client_id AND r.attempt = :att
  RETURNING r.*
), logged AS (
  INSERT INTO ops.run_events (run_id, attempt, kind, level, message, from_status, to_status, actor)
  SELECT s.id, s.attempt, 'transition', 'info', 'started by ' || s.claimed_by, 'claimed', 'running', s.claimed_by
    FROM started s
)
SELECT 1 FROM started;
INSERT INTO ops.run_events (run_id, attempt, kind, level, message, actor, payload)
SELECT r.id, r.attempt, 'log', 'info', 'step 1', coalesce('w' || :client_id, ops.current_actor()), '{"n": 1}'::jsonb
  FROM ops.runs r
 WHERE r.id = :rid AND (('w' || :client_id)::text IS NULL OR (r.status IN ('claimed', 'running')
       AND r.claimed_by = 'w' || :client_id AND r.attempt = :att))
   FOR SHARE OF r
RETURNING id;
INSERT INTO ops.run_events (run_id, attempt, kind, level, message, actor, payload)
SELECT r.id, r.attempt, 'log', 'info', 'step 2', coalesce('w' || :client_id, ops.current_actor()), '{"n": 2}'::jsonb
  FROM ops.runs r
 WHERE r.id = :rid AND (('w' || :client_id)::text IS NULL OR (r.status IN ('claimed', 'running')
       AND r.claimed_by = 'w' || :client_id AND r.attempt = :att))
   FOR SHARE OF r
RETURNING id;
INSERT INTO ops.run_events (run_id, attempt, kind, level, message, actor, payload)
SELECT r.id, r.attempt, 'log', 'info', 'step 3', coalesce('w' || :client_id, ops.current_actor()), '{"n": 3}'::jsonb
  FROM ops.runs r
 WHERE r.id = :rid AND (('w' || :client_id)::text IS NULL OR (r.status IN ('claimed', 'running')
       AND r.claimed_by = 'w' || :client_id AND r.attempt = :att))
   FOR SHARE OF r
RETURNING id;
WITH finished AS (
  UPDATE ops.runs r SET status = 'succeeded', finished_at = now(), lease_expires_at = NULL,
         result = r.result || '{}'::jsonb, error = NULL, updated_at = now()
   WHERE r.id = :rid AND r.status = ANY ('{running}'::text[])
     AND (('w' || :client_id)::text IS NULL OR (r.claimed_by = 'w' || :client_id AND r.attempt = :att))
  RETURNING r AS run, CASE WHEN r.claimed_by IS NULL THEN 'queued' WHEN r.started_at IS NULL
                           THEN 'claimed' ELSE 'running' END AS from_status
), logged AS (
  INSERT INTO ops.run_events (run_id, attempt, kind, level, message, from_status, to_status, actor, payload)
  SELECT (f.run).id, (f.run).attempt, 'transition', 'info', 'succeeded', f.from_status, 'succeeded',
         (f.run).claimed_by, '{}'::jsonb
    FROM finished f
)
SELECT 1 FROM finished;
\endif
