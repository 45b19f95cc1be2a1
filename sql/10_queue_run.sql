-- ops.queue_run: validation, idempotency, events; bad input changes nothing.
\set SHOW_CONTEXT never


INSERT INTO ops.projects (slug, name) VALUES ('queue', 'Queue tests');
INSERT INTO ops.environments (project_id, name, stage, db_name, status, destroyed_at)
VALUES (1, 'production', 'production', 'q_prod', 'active', NULL),
       (1, 'staging', 'staging', 'q_staging', 'active', NULL),
       (1, 'old', 'development', 'q_old', 'destroyed', now());

-- A deploy by default; the first event records the request.
SELECT id, workflow, status, priority, git_sha, git_ref, attempt, max_attempts, requested_by
  FROM ops.queue_run(1, 'staging', 'abc123', 'main');
SELECT run_id, attempt, kind, level, message, from_status, to_status, actor, payload
  FROM ops.run_events WHERE run_id = 1;

-- Other workflows, priorities and attempt limits.
SELECT id, workflow, priority, max_attempts
  FROM ops.queue_run(1, 'staging', NULL, 'main', '{}', 'build', 5, NULL, 1);
-- Backups, restores and destruction have RPCs of their own (ops.create_backup,
-- ops.restore_backup, ops.destroy_environment); internal callers queue them
-- through the trusted entry point.
SELECT id, workflow, git_sha, git_ref FROM ops.queue_run(1, 'production', NULL, NULL, '{}', 'backup');
SELECT id, workflow, git_sha, git_ref FROM ops._queue_run_trusted(1, 'production', NULL, NULL, '{}', 'backup');

-- Idempotency: the key in metadata or as an argument returns the same run.
SELECT id FROM ops.queue_run(1, 'staging', 'abc123', 'main', '{"idempotency_key": "push-1"}', 'build');
SELECT id FROM ops.queue_run(1, 'staging', 'abc123', 'main', '{"idempotency_key": "push-1"}', 'build');
SELECT id FROM ops.queue_run(1, 'staging', 'abc123', 'main', '{}', 'build', 0, 'push-1');
SELECT count(*) AS runs_with_key FROM ops.runs WHERE idempotency_key = 'push-1';
SELECT count(*) AS queued_events FROM ops.run_events WHERE run_id = 4;

-- Bad input: each is refused with its SQLSTATE and nothing is written.
SELECT count(*) AS runs_before FROM ops.runs \gset
SELECT count(*) AS events_before FROM ops.run_events \gset
SELECT regress.err(q) FROM (VALUES
  ($$SELECT ops.queue_run(99, 'staging', 'abc123', 'main')$$),
  ($$SELECT ops.queue_run(1, 'nope', 'abc123', 'main')$$),
  ($$SELECT ops.queue_run(1, 'old', 'abc123', 'main')$$),
  ($$SELECT ops.queue_run(1, 'staging', 'abc123', 'main', '{}', 'rebuild')$$),
  ($$SELECT ops.queue_run(1, 'staging', 'xyz', 'main')$$),
  ($$SELECT ops.queue_run(1, 'staging', NULL, NULL)$$),
  ($$SELECT ops.queue_run(1, 'staging', 'abc123', '')$$),
  ($$SELECT ops.queue_run(1, 'staging', 'abc123', repeat('r', 256))$$),
  ($$SELECT ops.queue_run(1, 'staging', 'abc123', 'main', '[1, 2]')$$),
  ($$SELECT ops.queue_run(1, 'staging', 'abc123', 'main', '{"idempotency_key": 7}')$$),
  ($$SELECT ops.queue_run(1, 'staging', 'abc123', 'main', '{}', 'deploy', 5000)$$),
  ($$SELECT ops.queue_run(1, 'staging', 'abc123', 'main', '{}', 'deploy', 0, NULL, 0)$$),
  ($$SELECT ops.queue_run(1, 'staging', 'abc123', 'main', '{}', 'deploy', 0, repeat('k', 201))$$),
  ($$SELECT ops.queue_run(1, 'staging', 'abc123', 'main', jsonb_build_object('x', repeat('m', 300000)))$$),
  ($$SELECT ops.queue_run(1, 'staging', 'abc999', 'main', '{"idempotency_key": "push-1"}', 'build')$$),
  ($$SELECT ops.queue_run(1, 'staging', 'abc123', 'main', '{"idempotency_key": "push-1"}', 'deploy')$$),
  ($$SELECT ops.queue_run(NULL, 'staging', 'abc123', 'main')$$),
  ($$SELECT ops.queue_run(1, 'staging', 'abc123', 'main', '{bad json')$$)
) AS t(q);
SELECT count(*) = :runs_before AS runs_unchanged, 
       (SELECT count(*) FROM ops.run_events) = :events_before AS events_unchanged
  FROM ops.runs;

-- The same error outside a savepoint, with its detail.
SELECT ops.queue_run(1, 'staging', 'abc999', 'main', '{"idempotency_key": "push-1"}', 'build');
\echo :LAST_ERROR_SQLSTATE

-- The table's own invariants hold against direct writes too (one native
-- CHECK per table; the DETAIL names the rule).
CREATE TEMP TABLE before_bad_writes AS SELECT * FROM ops.runs;
SELECT regress.err_detail(q) FROM (VALUES
  ($$UPDATE ops.runs SET status = 'succeeded' WHERE id = 1$$),
  ($$UPDATE ops.runs SET status = 'claimed' WHERE id = 1$$),
  ($$UPDATE ops.runs SET status = 'running', claimed_by = 'w', claimed_at = now(), lease_expires_at = now(), attempt = 1 WHERE id = 1$$),
  ($$UPDATE ops.runs SET attempt = 4 WHERE id = 1$$),
  ($$UPDATE ops.runs SET status = 'paused' WHERE id = 1$$),
  ($$UPDATE ops.runs SET priority = 5000 WHERE id = 1$$),
  ($$UPDATE ops.runs SET git_sha = 'not-hex' WHERE id = 1$$),
  ($$UPDATE ops.runs SET git_ref = repeat('é', 256) WHERE id = 1$$),
  ($$UPDATE ops.runs SET git_sha = NULL, git_ref = NULL WHERE id = 1$$),
  ($$UPDATE ops.runs SET metadata = '[1]' WHERE id = 1$$),
  ($$UPDATE ops.runs SET result = to_jsonb(repeat('x', 100000)) WHERE id = 1$$),
  ($$UPDATE ops.runs SET workflow = 'compile' WHERE id = 1$$),
  ($$INSERT INTO ops.run_events (run_id, kind, level, message) VALUES (1, 'transition', 'info', 'x')$$),
  ($$INSERT INTO ops.run_events (run_id, kind, level, message) VALUES (1, 'log', 'fatal', 'x')$$),
  ($$INSERT INTO ops.run_events (run_id, kind, level, message) VALUES (1, 'log', 'info', '')$$),
  ($$INSERT INTO ops.run_events (run_id, kind, level, message, step) VALUES (1, 'log', 'info', 'x', repeat('s', 129))$$),
  ($$INSERT INTO ops.run_events (run_id, kind, level, message, payload) VALUES (1, 'log', 'info', 'x', '"text"')$$),
  ($$INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (1, 'prod2', 'production', 'q_prod2')$$)
) AS t(q);
-- Valid edges pass: 255 two-byte characters, a large (toasted) object.
SELECT regress.err_detail(q) FROM (VALUES
  ($$UPDATE ops.runs SET git_ref = repeat('é', 255), result = jsonb_build_object('log', repeat('x', 100000)) WHERE id = 1$$),
  ($$UPDATE ops.runs SET git_ref = 'main', result = '{}' WHERE id = 1$$)
) AS t(q);
-- ... and the refused writes changed nothing.
SELECT count(*) AS changed FROM (SELECT * FROM ops.runs EXCEPT SELECT * FROM before_bad_writes) d;
