-- start, heartbeat, events, finish, cancel, release, requeue: transitions,
-- fencing and bad input. Every refused call changes nothing.
\set SHOW_CONTEXT never
-- Everything about one run, for before/after comparisons.
CREATE FUNCTION pg_temp.fingerprint(run bigint) RETURNS text LANGUAGE sql AS $$
  SELECT md5(r::text || (SELECT count(*) FROM ops.run_events e WHERE e.run_id = r.id))
    FROM ops.runs r WHERE r.id = run
$$;

INSERT INTO ops.projects (slug, name) VALUES ('life', 'Lifecycle tests') RETURNING id AS p \gset
INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (:p, 'dev', 'development', 'l_dev');
-- Finish what earlier files left so this file sees only its own runs.
UPDATE ops.runs SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
 WHERE status IN ('queued', 'claimed', 'running');

SELECT (ops.queue_run(:p, 'dev', 'eeee01', 'main', '{}', 'build')).id AS run \gset
SELECT id = :run AS same_run, attempt FROM ops.claim_next_run('w1');

-- Start is fenced and only legal from claimed.
SELECT pg_temp.fingerprint(:run) AS before \gset
SELECT regress.err(q) FROM (VALUES
  (format($$SELECT ops.start_run(%s, 'w2', 1)$$, :run)),
  (format($$SELECT ops.start_run(%s, 'w1', 2)$$, :run)),
  (format($$SELECT ops.start_run(%s, 'w1', NULL)$$, :run)),
  (format($$SELECT ops.start_run(%s, NULL, NULL)$$, :run)),
  (format($$SELECT ops.start_run(%s, 'w1', 0)$$, :run)),
  ($$SELECT ops.start_run(999999, 'w1', 1)$$),
  (format($$SELECT ops.finish_run(%s, 'succeeded', '{}', 'w1', 1)$$, :run)),
  (format($$SELECT ops.append_event(%s, 'info', 'x', '{}', 'w2', 1)$$, :run))
) AS t(q);
SELECT pg_temp.fingerprint(:run) = :'before' AS unchanged;

SELECT status, started_at IS NOT NULL AS started FROM ops.start_run(:run, 'w1', 1);
SELECT regress.err(format($$SELECT ops.start_run(%s, 'w1', 1)$$, :run));
SELECT ops.heartbeat_run(:run, 'w1', 1, 600) BETWEEN now() + interval '599 s' AND now() + interval '601 s' AS extended;

-- Events: single and batch, ordered, fenced; notes by the session.
SELECT ops.append_event(:run, 'info', 'cloning', '{"step": 1}', 'w1', 1) > 0 AS logged;
SELECT ops.append_events(:run, '[{"level": "info", "message": "line 1", "stream": "stdout", "step": "build"},
                                 {"level": "warning", "message": "line 2", "stream": "stderr", "step": "build"},
                                 {"level": "debug", "message": "line 3", "payload": {"n": 3}}]', 'w1', 1);
SELECT ops.append_event(:run, 'notice', 'looked at by an operator') > 0 AS note;
SELECT attempt, kind, level, message, stream, step, actor, payload
  FROM ops.run_events WHERE run_id = :run AND kind = 'log' ORDER BY id;

SELECT pg_temp.fingerprint(:run) AS before \gset
SELECT regress.err(q) FROM (VALUES
  (format($$SELECT ops.append_event(%s, 'loud', 'x')$$, :run)),
  (format($$SELECT ops.append_event(%s, 'info', '')$$, :run)),
  (format($$SELECT ops.append_event(%s, 'info', NULL)$$, :run)),
  (format($$SELECT ops.append_event(%s, 'info', repeat('x', 8193))$$, :run)),
  (format($$SELECT ops.append_event(%s, 'info', 'x', '[1]')$$, :run)),
  (format($$SELECT ops.append_event(%s, 'info', 'x', jsonb_build_object('big', repeat('p', 70000)))$$, :run)),
  (format($$SELECT ops.append_event(%s, 'info', 'x', '{}', 'w1', NULL)$$, :run)),
  ($$SELECT ops.append_event(999999, 'info', 'x')$$),
  (format($$SELECT ops.append_events(%s, '{}')$$, :run)),
  (format($$SELECT ops.append_events(%s, '[]')$$, :run)),
  (format($$SELECT ops.append_events(%s, '[{"level": "info", "message": "ok"}, {"level": "info"}]', 'w1', 1)$$, :run)),
  (format($$SELECT ops.append_events(%s, '[{"level": "info", "message": "ok"}]', 'w1', 7)$$, :run)),
  (format($$SELECT ops.append_events(%s, (SELECT jsonb_agg(jsonb_build_object('level', 'info', 'message', 'm')) FROM generate_series(1, 1001)))$$, :run))
) AS t(q);
SELECT pg_temp.fingerprint(:run) = :'before' AS unchanged;

-- Finish: failed keeps the error; a second finish is refused.
SELECT status, error, result, lease_expires_at IS NULL AS lease_cleared, finished_at IS NOT NULL AS finished
  FROM ops.finish_run(:run, 'failed', '{"error": "step build exited with 2", "step": "build"}', 'w1', 1);
SELECT regress.err(q) FROM (VALUES
  (format($$SELECT ops.finish_run(%s, 'succeeded', '{}', 'w1', 1)$$, :run)),
  (format($$SELECT ops.finish_run(%s, 'running')$$, :run)),
  (format($$SELECT ops.finish_run(%s, 'done')$$, :run)),
  (format($$SELECT ops.cancel_run(%s)$$, :run)),
  (format($$SELECT ops.heartbeat_run(%s, 'w1', 1)$$, :run))
) AS t(q);
SELECT from_status, to_status, level, message, actor FROM ops.run_events
 WHERE run_id = :run AND kind = 'transition' ORDER BY id;

-- Cancel: queued, claimed and running runs; the holder is then fenced out.
SELECT (ops.queue_run(:p, 'dev', 'eeee02', 'main', '{}', 'build')).id AS run2 \gset
SELECT status, error, result FROM ops.cancel_run(:run2, 'superseded by a newer push');
SELECT (ops.queue_run(:p, 'dev', 'eeee03', 'main', '{}', 'build')).id AS run3 \gset
SELECT attempt FROM ops.claim_next_run('w1');
SELECT status FROM ops.start_run(:run3, 'w1', 1);
SELECT status FROM ops.cancel_run(:run3);
SELECT regress.err(format($$SELECT ops.heartbeat_run(%s, 'w1', 1)$$, :run3));
SELECT from_status, to_status, actor FROM ops.run_events WHERE run_id IN (:run2, :run3) AND kind = 'transition' ORDER BY id;

-- Release: a draining worker hands the run back; the attempt stays counted.
SELECT (ops.queue_run(:p, 'dev', 'eeee04', 'main', '{}', 'build')).id AS run4 \gset
SELECT attempt FROM ops.claim_next_run('w1');
SELECT status, claimed_by, attempt FROM ops.release_run(:run4, 'w1', 1, 'worker shutting down');
SELECT attempt, claimed_by FROM ops.claim_next_run('w2');
SELECT regress.err(format($$SELECT ops.release_run(%s, 'w1', 1)$$, :run4));

-- Batch finish: all or nothing.
SELECT status FROM ops.start_run(:run4, 'w2', 2);
SELECT (ops.queue_run(:p, 'dev', 'eeee05', 'main', '{}', 'build')).id AS run5 \gset
SELECT attempt FROM ops.claim_next_run('w2');
SELECT pg_temp.fingerprint(:run4) || pg_temp.fingerprint(:run5) AS before \gset
SELECT regress.err(format($$SELECT ops.finish_runs('w2', '[{"run_id": %s, "attempt": 2, "status": "succeeded"},
                                                         {"run_id": %s, "attempt": 1, "status": "succeeded"}]')$$, :run4, :run5));
SELECT regress.err(format($$SELECT ops.finish_runs('w2', '[{"run_id": %s, "attempt": 1, "status": "succeeded"}]')$$, :run4));
SELECT regress.err($$SELECT ops.finish_runs('w2', '[{"run_id": 1, "attempt": 1}]')$$);
SELECT pg_temp.fingerprint(:run4) || pg_temp.fingerprint(:run5) = :'before' AS unchanged;
SELECT id = :run4 AS is_run4, status, error FROM ops.finish_runs('w2',
  format('[{"run_id": %s, "attempt": 2, "status": "succeeded", "metadata": {"url": "http://x"}},
           {"run_id": %s, "attempt": 1, "status": "failed", "metadata": {"error": "no space"}}]', :run4, :run5)::jsonb);

-- Requeue of expired leases: backoff, then failure at max_attempts.
SET odooops.requeue_backoff_base = '10s';
SELECT (ops.queue_run(:p, 'dev', 'eeee06', 'main', '{}', 'build', 0, NULL, 2)).id AS run6 \gset
SELECT attempt FROM ops.claim_next_run('w1', 1);
SELECT count(*) AS requeued_before_expiry FROM ops.requeue_expired_runs();
UPDATE ops.runs SET lease_expires_at = now() - interval '1 s' WHERE id = :run6;
SELECT status, attempt, claimed_by, available_at BETWEEN now() + interval '9 s' AND now() + interval '11 s' AS backoff_10s
  FROM ops.requeue_expired_runs();
SELECT count(*) AS claimable_during_backoff FROM ops.claim_next_run('w2');
UPDATE ops.runs SET available_at = now() WHERE id = :run6;
SELECT attempt, claimed_by FROM ops.claim_next_run('w2');
SELECT status FROM ops.start_run(:run6, 'w2', 2);
UPDATE ops.runs SET lease_expires_at = now() - interval '1 s' WHERE id = :run6;
SELECT status, attempt, error FROM ops.requeue_expired_runs();
SELECT from_status, to_status, level, message, actor FROM ops.run_events
 WHERE run_id = :run6 AND kind = 'transition' ORDER BY id;
SELECT regress.err($$SELECT ops.requeue_expired_runs(0)$$);

-- The event log is append-only.
SELECT regress.err(q) FROM (VALUES
  ($$UPDATE ops.run_events SET message = 'rewritten'$$),
  ($$DELETE FROM ops.run_events$$),
  ($$TRUNCATE ops.run_events$$)
) AS t(q);
