-- Environment hosts: the worker (or team) holding an environment's state
-- claims every run of it that touches that state; other workers never do,
-- a run whose host is gone waits and says why, a move is explicit and
-- audited. And a run requeued after a lost lease keeps its place.
\set SHOW_CONTEXT never

INSERT INTO ops.projects (slug, name) VALUES ('hosts', 'Host tests') RETURNING id AS p \gset
INSERT INTO ops.environments (project_id, name, stage, db_name)
VALUES (:p, 'main', 'staging', 'h_main'), (:p, 'other', 'development', 'h_other');
INSERT INTO ops.project_members (project_id, user_id, role)
VALUES (:p, 'h-owner', 'owner'), (:p, 'h-admin', 'admin'), (:p, 'h-dev', 'developer');

-- Drain what earlier files left so this file sees only its own runs.
UPDATE ops.runs SET status = 'cancelled', finished_at = now() WHERE status = 'queued';

SELECT worker_id FROM ops.register_agent('host-a');
SELECT worker_id FROM ops.register_agent('host-b');
INSERT INTO ops.agent_teams (name) VALUES ('pool');

-- A new environment has no host: its first deploy goes to any worker.
SELECT host_worker_id, host_team_id FROM ops.environments WHERE project_id = :p AND name = 'main';
SELECT id AS d1 FROM ops.queue_run(:p, 'main', 'eeee01', 'main', '{}', 'deploy') \gset
SELECT host_worker_id, team_id FROM ops.runs WHERE id = :d1;
SELECT id = :d1 AS a_claims_first_deploy FROM ops.claim_next_run('host-a');
-- A backup queued while the first deploy runs follows the host it gets.
SELECT (ops._queue_run_trusted(:p, 'main', NULL, NULL, '{}', 'backup')).id AS b0 \gset
SELECT status FROM ops.start_run(:d1, 'host-a', 1);
SELECT status FROM ops.finish_run(:d1, 'succeeded', '{}', 'host-a', 1);
-- The worker that completed it is the host, on the environment, on the
-- queued backup, and in the audit trail.
SELECT host_worker_id, host_team_id FROM ops.environments WHERE project_id = :p AND name = 'main';
SELECT host_worker_id FROM ops.runs WHERE id = :b0;
SELECT actor = current_user AS by_caller, action, subject, payload - 'run_id' AS payload,
       (payload ->> 'run_id')::bigint = :d1 AS names_deploy
  FROM ops.audit_log WHERE project_id = :p ORDER BY id;
SELECT count(*) AS b_claims_hosted_backup FROM ops.claim_next_run('host-b');
SELECT id = :b0 AS a_claims_backup FROM ops.claim_next_run('host-a');
SELECT status FROM ops.start_run(:b0, 'host-a', 1);
SELECT status FROM ops.finish_run(:b0, 'succeeded', '{}', 'host-a', 1);

-- Later runs that touch the state (deploy, backup, restore, destroy) are
-- the host's; builds and tests go to any worker.
SELECT (ops._queue_run_trusted(:p, 'main', NULL, NULL, '{}', 'backup')).id AS b1 \gset
SELECT (ops.queue_run(:p, 'main', 'eeee02', 'main', '{}', 'test')).id AS t1 \gset
SELECT host_worker_id, team_id FROM ops.runs WHERE id = :b1;
SELECT count(*) AS unregistered_claims_hosted FROM ops.claim_next_run('w-none', 300, ARRAY['backup']);
SELECT id = :t1 AS b_claims_test_not_backup FROM ops.claim_next_run('host-b');
SELECT ops.run_waiting_reason(:b1);
SELECT id = :b1 AS a_claims_backup FROM ops.claim_next_run('host-a');

-- A run whose lease was lost goes back to its host, not to another worker.
SET odooops.requeue_backoff_base = 0;
UPDATE ops.runs SET lease_expires_at = now() - interval '1 s' WHERE id = :b1;
SELECT status FROM ops.requeue_expired_runs();
SELECT count(*) AS b_claims_requeued FROM ops.claim_runs('host-b', 10);
SELECT id = :b1 AS a_claims_requeued, attempt FROM ops.claim_next_run('host-a');
SELECT status FROM ops.start_run(:b1, 'host-a', 2);
SELECT status FROM ops.finish_run(:b1, 'succeeded', '{}', 'host-a', 2);

-- The host is gone: its runs wait, and say why.
SELECT ops.set_agent_status('host-a', 'offline');
SELECT (ops.queue_run(:p, 'main', 'eeee03', 'main', '{}', 'deploy')).id AS d2 \gset
SELECT count(*) AS b_claims_while_host_offline FROM ops.claim_runs('host-b', 10);
SELECT ops.run_waiting_reason(:d2);
UPDATE ops.agents SET status = 'active', healthy = false, health_detail = 'disk full' WHERE worker_id = 'host-a';
SELECT ops.run_waiting_reason(:d2);
UPDATE ops.agents SET healthy = true, health_detail = NULL WHERE worker_id = 'host-a';
DELETE FROM ops.agents WHERE worker_id = 'host-a';
SELECT ops.run_waiting_reason(:d2);
SELECT count(*) AS b_claims_after_host_deleted FROM ops.claim_runs('host-b', 10);
SELECT ops.run_waiting_reason(:t1) AS held_run_reason;
SELECT regress.err($$SELECT ops.run_waiting_reason(-1)$$);

-- Moving an environment: project managers only, to a registered worker or
-- an existing team, never while one of its runs is held; bad input changes
-- nothing.
SELECT regress.probe('h-dev', format($$SELECT ops.move_environment(%s, 'main', 'host-b')$$, :p)) AS developer_moves;
SELECT regress.probe('h-outsider', format($$SELECT ops.move_environment(%s, 'main', 'host-b')$$, :p)) AS outsider_moves;
SELECT regress.err(format($$SELECT ops.move_environment(%s, 'main')$$, :p));
SELECT regress.err(format($$SELECT ops.move_environment(%s, 'main', 'host-b', 'pool')$$, :p));
SELECT regress.err(format($$SELECT ops.move_environment(%s, 'main', 'host-z')$$, :p));
SELECT regress.err(format($$SELECT ops.move_environment(%s, 'main', NULL, 'no-such-team')$$, :p));
SELECT replace(regress.err(format($$SELECT ops.move_environment(%s, 'nope', 'host-b')$$, :p)), :p::text, '<p>');
SELECT regress.err(format($$SELECT ops.move_environment(%s, 'main', 'host-b', NULL, repeat('x', 8193))$$, :p));
SELECT regress.err(format($$SELECT ops.move_environment(%s, 'main', repeat('x', 129))$$, :p));
SELECT host_worker_id, host_team_id FROM ops.environments WHERE project_id = :p AND name = 'main';
-- A direct write of the host by an administrator is refused: it would
-- leave the waiting runs routed to the old host, unaudited.
SET ROLE odooops_admin;
SELECT regress.err(format($$UPDATE ops.environments SET host_worker_id = 'host-b' WHERE project_id = %s AND name = 'main'$$, :p));
SELECT regress.err(format($$INSERT INTO ops.environments (project_id, name, stage, db_name, host_worker_id)
                            VALUES (%s, 'pinned', 'development', 'h_pinned', 'host-b')$$, :p));
RESET ROLE;
-- An admin moves it to host-b: the waiting deploy follows.
SELECT regress.as_user('h-admin', format($$SELECT ops.move_environment(%s, 'main', 'host-b', NULL, 'host-a was retired')$$, :p));
RESET ROLE;
SELECT host_worker_id, host_team_id FROM ops.environments WHERE project_id = :p AND name = 'main';
SELECT host_worker_id FROM ops.runs WHERE id = :d2;
SELECT actor, action, subject, payload FROM ops.audit_log WHERE project_id = :p AND action = 'environment.move' ORDER BY id;
SELECT id = :d2 AS b_claims_moved_deploy FROM ops.claim_next_run('host-b');
-- Not while that deploy is held.
SELECT replace(regress.err(format($$SELECT ops.move_environment(%s, 'main', NULL, 'pool')$$, :p)), :d2::text, '<d2>');
SELECT status FROM ops.start_run(:d2, 'host-b', 1);
SELECT status FROM ops.finish_run(:d2, 'succeeded', '{}', 'host-b', 1);
-- A later successful deploy does not change the host.
SELECT host_worker_id FROM ops.environments WHERE project_id = :p AND name = 'main';

-- Pinned to a team: any member claims, nobody else.
SELECT worker_id FROM ops.register_agent('pool-1', NULL, 'pool');
SELECT worker_id FROM ops.register_agent('pool-2', NULL, 'pool');
SELECT (ops._queue_run_trusted(:p, 'main', NULL, NULL, '{}', 'backup')).id AS b2 \gset
SELECT host_worker_id FROM ops.move_environment(:p, 'main', NULL, 'pool');
SELECT e.host_worker_id, t.name AS host_team FROM ops.environments e JOIN ops.agent_teams t ON t.id = e.host_team_id
 WHERE e.project_id = :p AND e.name = 'main';
SELECT r.host_worker_id, t.name AS team FROM ops.runs r JOIN ops.agent_teams t ON t.id = r.team_id WHERE r.id = :b2;
SELECT (ops._queue_run_trusted(:p, 'main', NULL, NULL, '{}', 'backup')).id AS b3 \gset
SELECT r.host_worker_id, t.name AS team FROM ops.runs r JOIN ops.agent_teams t ON t.id = r.team_id WHERE r.id = :b3;
SELECT count(*) AS b_claims_team_backup FROM ops.claim_runs('host-b', 10);
SELECT id = :b2 AS pool_1_claims FROM ops.claim_next_run('pool-1');
SELECT id = :b3 AS pool_2_claims FROM ops.claim_next_run('pool-2');
UPDATE ops.agents SET status = 'draining' WHERE worker_id IN ('pool-1', 'pool-2');
SELECT (ops._queue_run_trusted(:p, 'main', NULL, NULL, '{}', 'backup')).id AS b4 \gset
SELECT ops.run_waiting_reason(:b4);
UPDATE ops.agents SET status = 'active' WHERE worker_id IN ('pool-1', 'pool-2');
SELECT ops.run_waiting_reason(:b4);
-- A team with environments pinned to it cannot be dropped.
SELECT left(regress.err($$DELETE FROM ops.agent_teams WHERE name = 'pool'$$), 5) AS refused;
UPDATE ops.runs SET status = 'cancelled', finished_at = now() WHERE status = 'queued';

-- A successful restore makes its worker the host too (it leaves the
-- database, the filestore and a started Odoo there); a failed one does not.
SELECT (ops._queue_run_trusted(:p, 'other', NULL, NULL, '{}', 'restore')).id AS x1 \gset
SELECT id = :x1 AS b_claims_restore FROM ops.claim_next_run('host-b');
SELECT status FROM ops.start_run(:x1, 'host-b', 1);
SELECT status FROM ops.finish_run(:x1, 'failed', '{"error": "bad dump"}', 'host-b', 1);
SELECT host_worker_id FROM ops.environments WHERE project_id = :p AND name = 'other';
SELECT (ops._queue_run_trusted(:p, 'other', NULL, NULL, '{}', 'restore')).id AS x2 \gset
SELECT id = :x2 AS pool_1_claims_restore FROM ops.claim_next_run('pool-1');
SELECT status FROM ops.start_run(:x2, 'pool-1', 1);
SELECT status FROM ops.finish_run(:x2, 'succeeded', '{}', 'pool-1', 1);
SELECT host_worker_id FROM ops.environments WHERE project_id = :p AND name = 'other';
SELECT action, payload ->> 'workflow' AS workflow, (payload ->> 'run_id')::bigint = :x2 AS names_restore
  FROM ops.audit_log WHERE project_id = :p AND subject_id = (SELECT id FROM ops.environments WHERE project_id = :p AND name = 'other');
-- Builds of 'other' (as below) still go anywhere.

-- A run requeued after a lost lease keeps its place: it is claimed before
-- the backlog queued after it (same priority), though after a run of
-- higher priority.
SELECT (ops.queue_run(:p, 'other', 'ffff00', 'main', '{}', 'build')).id AS r0 \gset
SELECT id = :r0 AS w1_claims_r0 FROM ops.claim_next_run('w1');
SELECT count(*) AS backlog FROM (SELECT ops.queue_run(:p, 'other', 'ffff0' || i, 'main', '{}', 'build')
                                   FROM generate_series(1, 3) i) q;
SELECT (ops.queue_run(:p, 'other', 'ffff09', 'main', '{}', 'build', 10)).id > 0 AS urgent;
UPDATE ops.runs SET lease_expires_at = now() - interval '1 s' WHERE id = :r0;
SELECT id = :r0 AS requeued, status FROM ops.requeue_expired_runs();
SELECT git_sha, attempt FROM ops.claim_next_run('w2');
SELECT git_sha, attempt FROM ops.claim_next_run('w2');
SELECT git_sha, attempt FROM ops.claim_next_run('w2');
-- The same for a run its worker handed back.
SELECT (ops.queue_run(:p, 'other', 'ffff10', 'main', '{}', 'build')).id AS r1 \gset
UPDATE ops.runs SET status = 'cancelled', finished_at = now() WHERE status = 'queued' AND id <> :r1;
SELECT id = :r1 AS w1_claims_r1 FROM ops.claim_next_run('w1');
SELECT count(*) AS backlog FROM (SELECT ops.queue_run(:p, 'other', 'ffff1' || i, 'main', '{}', 'build')
                                   FROM generate_series(1, 3) i) q;
SELECT status FROM ops.release_run(:r1, 'w1', 1, 'disk full', 0);
SELECT git_sha, attempt FROM ops.claim_next_run('w2');
RESET odooops.requeue_backoff_base;
UPDATE ops.runs SET status = 'cancelled', finished_at = now() WHERE status = 'queued';
