-- One worker step through the native API, each call its own transaction
-- (6 commits per run): claim -> start -> 3 log events -> finish.
-- pgbench -M prepared; :client_id names the worker. A step that finds the
-- queue empty does nothing (queue_bench.sh reports such a phase as dry).
SELECT coalesce(c.id, 0) AS rid, coalesce(c.attempt, 0) AS att
  FROM (VALUES (1)) AS one(x)
  LEFT JOIN ops.claim_next_run('w' || :client_id) AS c ON true \gset
\if :rid > 0
SELECT 1 FROM ops.start_run(:rid, 'w' || :client_id, :att);
SELECT ops.append_event(:rid, 'info', 'step 1', '{"n": 1}', 'w' || :client_id, :att);
SELECT ops.append_event(:rid, 'info', 'step 2', '{"n": 2}', 'w' || :client_id, :att);
SELECT ops.append_event(:rid, 'info', 'step 3', '{"n": 3}', 'w' || :client_id, :att);
SELECT 1 FROM ops.finish_run(:rid, 'succeeded', '{}', 'w' || :client_id, :att);
\endif
