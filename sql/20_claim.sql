-- ops.claim_next_run / ops.claim_runs: order, leases, fencing tokens,
-- worker kinds and teams, per-environment exclusivity, bad input.
\set SHOW_CONTEXT never

INSERT INTO ops.projects (slug, name) VALUES ('claim', 'Claim tests') RETURNING id AS p \gset
INSERT INTO ops.environments (project_id, name, stage, db_name)
VALUES (:p, 'dev', 'development', 'c_dev'), (:p, 'staging', 'staging', 'c_staging');

-- Drain what earlier files left so this file sees only its own runs.
UPDATE ops.runs SET status = 'cancelled', finished_at = now() WHERE status = 'queued';

-- Claim order: priority first, then age.
SELECT (ops.queue_run(:p, 'dev', 'aaaa01', 'main', '{}', 'build', 0)).id > 0 AS q1,
       (ops.queue_run(:p, 'dev', 'aaaa02', 'main', '{}', 'build', 10)).id > 0 AS q2,
       (ops.queue_run(:p, 'dev', 'aaaa03', 'main', '{}', 'test', 0)).id > 0 AS q3;
SELECT git_sha, status, claimed_by, attempt, lease_expires_at BETWEEN now() + interval '299 s' AND now() + interval '301 s' AS lease_300s
  FROM ops.claim_next_run('w1');
SELECT git_sha, attempt, lease_expires_at BETWEEN now() + interval '59 s' AND now() + interval '61 s' AS lease_60s
  FROM ops.claim_next_run('w2', 60);
SELECT r.git_sha, e.from_status, e.to_status, e.actor, e.message
  FROM ops.run_events e JOIN ops.runs r ON r.id = e.run_id
 WHERE r.project_id = :p AND e.to_status = 'claimed' ORDER BY e.id;

-- A run queued for later (backoff) is not claimable yet.
UPDATE ops.runs SET available_at = now() + interval '1 hour' WHERE git_sha = 'aaaa03';
SELECT count(*) AS claimed_early FROM ops.claim_next_run('w3');
UPDATE ops.runs SET available_at = now() WHERE git_sha = 'aaaa03';

-- A registered worker claims only its kinds; its team's runs are its own.
INSERT INTO ops.agent_teams (name) VALUES ('prod-team');
SELECT worker_id, kinds, status FROM ops.register_agent('tester', ARRAY['test']);
SELECT worker_id, kinds FROM ops.register_agent('builder', ARRAY['build', 'deploy'], 'prod-team');
SELECT count(*) AS builder_gets_test FROM ops.claim_next_run('builder');
SELECT git_sha, claimed_by FROM ops.claim_next_run('tester');
SELECT (ops.queue_run(:p, 'dev', 'bbbb01', 'main', '{}', 'build')).id > 0 AS queued;
UPDATE ops.runs SET team_id = (SELECT id FROM ops.agent_teams WHERE name = 'prod-team') WHERE git_sha = 'bbbb01';
SELECT count(*) AS unregistered_gets_team_run FROM ops.claim_next_run('w9');
SELECT git_sha, claimed_by FROM ops.claim_next_run('builder');
SELECT kind, message FROM ops.agent_events ORDER BY id;

-- Draining workers get nothing; disabled workers are refused.
SELECT (ops.queue_run(:p, 'dev', 'cccc01', 'main', '{}', 'test')).id > 0 AS queued;
UPDATE ops.agents SET status = 'draining' WHERE worker_id = 'tester';
SELECT count(*) AS draining_claims FROM ops.claim_next_run('tester');
UPDATE ops.agents SET status = 'disabled' WHERE worker_id = 'tester';
SELECT regress.err($$SELECT ops.claim_next_run('tester')$$);
SELECT ops.agent_heartbeat('builder');

-- Deploy, restore and destroy are exclusive per environment.
UPDATE ops.runs SET status = 'cancelled', finished_at = now() WHERE status = 'queued';
SELECT (ops.queue_run(:p, 'staging', 'dddd01', 'main', '{}', 'deploy')).id > 0 AS d1,
       (ops.queue_run(:p, 'staging', 'dddd02', 'main', '{}', 'deploy')).id > 0 AS d2,
       (ops._queue_run_trusted(:p, 'staging', NULL, NULL, '{}', 'restore')).id > 0 AS r1,
       (ops.queue_run(:p, 'dev', 'dddd03', 'main', '{}', 'deploy')).id > 0 AS d3,
       (ops.queue_run(:p, 'staging', 'dddd04', 'main', '{}', 'build')).id > 0 AS b1;
-- One batch: one exclusive run per environment, plus the build.
SELECT workflow, git_sha, attempt FROM ops.claim_runs('w5', 10) ORDER BY id;
SELECT count(*) AS second_deploy_while_first_held FROM ops.claim_runs('w6', 10);
-- Once the staging deploy finishes, the next exclusive run there is claimable.
SELECT status FROM ops.start_run((SELECT id FROM ops.runs WHERE git_sha = 'dddd01'), 'w5', 1);
SELECT status FROM ops.finish_run((SELECT id FROM ops.runs WHERE git_sha = 'dddd01'), 'succeeded', '{}', 'w5', 1);
SELECT workflow, git_sha FROM ops.claim_runs('w6', 10);

-- Bad input.
SELECT regress.err(q) FROM (VALUES
  ($$SELECT ops.claim_next_run('')$$),
  ($$SELECT ops.claim_next_run(NULL)$$),
  ($$SELECT ops.claim_next_run(repeat('w', 129))$$),
  ($$SELECT ops.claim_next_run('w1', 0)$$),
  ($$SELECT ops.claim_next_run('w1', 100000)$$),
  ($$SELECT ops.claim_runs('w1', 0)$$),
  ($$SELECT ops.claim_runs('w1', 1001)$$),
  ($$SELECT ops.claim_runs('w1', NULL)$$),
  ($$SELECT ops.register_agent('x', ARRAY['paint'])$$),
  ($$SELECT ops.register_agent('x', NULL, 'no-such-team')$$),
  ($$SELECT ops.register_agent('x', NULL, NULL, '[]')$$),
  ($$SELECT ops.agent_heartbeat('ghost')$$)
) AS t(q);
