-- A worker across control-plane outages: its numbered lines are stored
-- exactly once however often a batch is resent; a finish repeated after a
-- lost acknowledgement returns the finished run; a run handed back with a
-- delay waits and stays claimable on its last attempt; a worker reports its
-- health and an unhealthy one claims nothing. Every refusal has its
-- SQLSTATE and changes nothing.
\set SHOW_CONTEXT never
-- Errors without the serial ids they name.
CREATE FUNCTION pg_temp.e(q text) RETURNS text LANGUAGE sql AS $$
  SELECT regexp_replace(regress.err(q), '(run|backup) [0-9]+', '\1 N', 'g')
$$;
-- The log lines of a run, in order.
CREATE FUNCTION pg_temp.lines(run bigint) RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(attempt || ':' || message, ',' ORDER BY id)
    FROM ops.run_events WHERE run_id = run AND kind = 'log'
$$;
-- Everything a refusal could have changed.
CREATE FUNCTION pg_temp.state(run bigint) RETURNS text LANGUAGE sql AS $$
  SELECT md5((SELECT r::text FROM ops.runs r WHERE r.id = run)
          || coalesce(pg_temp.lines(run), '')
          || (SELECT coalesce(string_agg(m::text, ',' ORDER BY m.attempt), '')
                FROM ops.run_event_marks m WHERE m.run_id = run)
          || (SELECT coalesce(string_agg(a::text, ',' ORDER BY a.id), '') FROM ops.agents a))
$$;

SET client_min_messages = warning;
DROP ROLE IF EXISTS wd_worker;
RESET client_min_messages;
CREATE ROLE wd_worker LOGIN;
GRANT odooops_worker TO wd_worker;
INSERT INTO ops.worker_logins (login, worker_id) VALUES ('wd_worker', 'dw1');

-- Earlier suites leave runs: finish them so the claims below see only this suite's.
UPDATE ops.runs SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
 WHERE status IN ('queued', 'claimed', 'running');
INSERT INTO ops.projects (slug, name) VALUES ('durable', 'Durable worker') RETURNING id AS p \gset
INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (:p, 'dev', 'development', 'du_dev');

-- One attempt only (max_attempts 1), to show a run handed back stays claimable.
SELECT (ops.queue_run(:p, 'dev', 'dddd01', 'main', '{}', 'build', 0, NULL, 1)).id AS run \gset
SET ROLE wd_worker;
SELECT attempt FROM ops.claim_next_run('dw1');
SELECT status FROM ops.start_run(:run, 'dw1', 1);

-- Lines 1-3; the same batch again (its acknowledgement was lost); then a
-- batch that starts inside what is stored: every line once, in order.
SELECT ops.append_events(:run, '[{"level": "info", "message": "l1", "seq": 1},
                                 {"level": "info", "message": "l2", "seq": 2},
                                 {"level": "info", "message": "l3", "seq": 3}]', 'dw1', 1) AS stored;
SELECT ops.append_events(:run, '[{"level": "info", "message": "l1", "seq": 1},
                                 {"level": "info", "message": "l2", "seq": 2},
                                 {"level": "info", "message": "l3", "seq": 3}]', 'dw1', 1) AS stored_again;
SELECT ops.append_events(:run, '[{"level": "info", "message": "l3", "seq": 3},
                                 {"level": "info", "message": "l4", "seq": 4},
                                 {"level": "info", "message": "l5", "seq": 7}]', 'dw1', 1) AS stored_overlap;
-- Unnumbered lines (a worker of an earlier release) are stored as sent.
SELECT ops.append_events(:run, '[{"level": "info", "message": "u1"}]', 'dw1', 1) AS unnumbered;
RESET ROLE;
SELECT pg_temp.lines(:run) AS lines;
SELECT attempt, last_seq FROM ops.run_event_marks WHERE run_id = :run;

-- Refusals: numbering on some events only, not increasing, out of range;
-- numbered lines from an operator (no fence); another worker; a missing run.
SELECT pg_temp.state(:run) AS before \gset
SET ROLE wd_worker;
SELECT pg_temp.e(q) FROM (VALUES
  (format($$SELECT ops.append_events(%s, '[{"level":"info","message":"a","seq":8},{"level":"info","message":"b"}]', 'dw1', 1)$$, :run)),
  (format($$SELECT ops.append_events(%s, '[{"level":"info","message":"a","seq":9},{"level":"info","message":"b","seq":9}]', 'dw1', 1)$$, :run)),
  (format($$SELECT ops.append_events(%s, '[{"level":"info","message":"a","seq":0}]', 'dw1', 1)$$, :run)),
  (format($$SELECT ops.append_events(%s, '[{"level":"info","message":"a","seq":"9"}]', 'dw1', 1)$$, :run)),
  (format($$SELECT ops.append_events(%s, '[{"level":"info","message":"a","seq":8}]', 'dw2', 1)$$, :run)),
  (format($$SELECT ops.append_events(%s, '[{"level":"info","message":"a","seq":8}]', 'dw1', 2)$$, :run)),
  ($$SELECT ops.append_events(999999, '[{"level":"info","message":"a","seq":8}]', 'dw1', 1)$$)
) AS t(q);
RESET ROLE;
SELECT pg_temp.e(format($$SELECT ops.append_events(%s, '[{"level":"info","message":"a","seq":8}]')$$, :run))
       AS operator_numbered;
SELECT pg_temp.state(:run) = :'before' AS unchanged;

-- Handed back after a problem of the worker's own: claimable again only
-- after the delay, and although attempt 1 was its last, claimable at all.
SELECT pg_temp.state(:run) AS before \gset
SET ROLE wd_worker;
SELECT pg_temp.e(q) FROM (VALUES
  (format($$SELECT ops.release_run(%s, 'dw1', 1, 'disk full', -1)$$, :run)),
  (format($$SELECT ops.release_run(%s, 'dw1', 1, 'disk full', 86401)$$, :run)),
  (format($$SELECT ops.release_run(%s, 'dw2', 1, 'disk full', 60)$$, :run))
) AS t(q);
RESET ROLE;
SELECT pg_temp.state(:run) = :'before' AS unchanged;
SET ROLE wd_worker;
SELECT status, attempt, max_attempts, claimed_by,
       available_at BETWEEN now() + interval '59 s' AND now() + interval '61 s' AS waits_a_minute
  FROM ops.release_run(:run, 'dw1', 1, 'disk full', 60);
SELECT count(*) AS claimed_too_early FROM ops.claim_next_run('dw1');
RESET ROLE;
SELECT message FROM ops.run_events WHERE run_id = :run AND kind = 'transition' ORDER BY id DESC LIMIT 1;
-- (The minute passes.)
UPDATE ops.runs SET available_at = now() WHERE id = :run;
SET ROLE wd_worker;
SELECT id = :run AS same_run, attempt, max_attempts FROM ops.claim_next_run('dw1');
SELECT status FROM ops.start_run(:run, 'dw1', 2);
-- A new attempt numbers its lines afresh.
SELECT ops.append_events(:run, '[{"level": "info", "message": "m1", "seq": 1}]', 'dw1', 2) AS stored;
RESET ROLE;
SELECT pg_temp.lines(:run) AS lines;
SELECT attempt, last_seq FROM ops.run_event_marks WHERE run_id = :run ORDER BY attempt;

-- A finish repeated after its acknowledgement was lost returns the finished
-- run, with one transition; another status or another worker is refused.
SET ROLE wd_worker;
SELECT status FROM ops.finish_run(:run, 'succeeded', '{"n": 1}', 'dw1', 2);
SELECT status, result->>'n' AS n FROM ops.finish_run(:run, 'succeeded', '{"n": 1}', 'dw1', 2);
SELECT pg_temp.e(q) FROM (VALUES
  (format($$SELECT ops.finish_run(%s, 'failed', '{}', 'dw1', 2)$$, :run)),
  (format($$SELECT ops.finish_run(%s, 'succeeded', '{}', 'dw1', 1)$$, :run)),
  (format($$SELECT ops.finish_run(%s, 'succeeded', '{}', 'dw2', 2)$$, :run)),
  (format($$SELECT ops.append_events(%s, '[{"level":"info","message":"late","seq":2}]', 'dw1', 2)$$, :run))
) AS t(q);
RESET ROLE;
SELECT count(*) AS succeeded_transitions FROM ops.run_events
 WHERE run_id = :run AND kind = 'transition' AND to_status = 'succeeded';

-- Health: an unhealthy worker claims nothing until it is healthy again;
-- each change is logged once.
SET ROLE wd_worker;
SELECT worker_id, healthy FROM ops.register_agent('dw1', ARRAY['build']);
SELECT ops.set_agent_health('dw1', false, 'state directory: 3 MiB free');
SELECT ops.set_agent_health('dw1', false, 'state directory: 2 MiB free');
RESET ROLE;
SELECT (ops.queue_run(:p, 'dev', 'dddd02', 'main', '{}', 'build')).id AS run2 \gset
SELECT healthy, health_detail FROM ops.agents WHERE worker_id = 'dw1';
SET ROLE wd_worker;
SELECT count(*) AS claimed_while_unhealthy FROM ops.claim_next_run('dw1');
SELECT ops.set_agent_health('dw1', true);
SELECT id = :run2 AS claimed_when_healthy FROM ops.claim_next_run('dw1');
RESET ROLE;
SELECT healthy, health_detail FROM ops.agents WHERE worker_id = 'dw1';
SELECT e.message FROM ops.agent_events e JOIN ops.agents a ON a.id = e.agent_id
 WHERE a.worker_id = 'dw1' AND e.kind = 'status' ORDER BY e.id;

SELECT pg_temp.state(:run2) AS before \gset
SET ROLE wd_worker;
SELECT pg_temp.e(q) FROM (VALUES
  ($$SELECT ops.set_agent_health('dw1', NULL)$$),
  ($$SELECT ops.set_agent_health('dw1', false, repeat('x', 1025))$$),
  ($$SELECT ops.set_agent_health('dw2', false, 'not mine')$$)
) AS t(q);
RESET ROLE;
SELECT pg_temp.e($$SELECT ops.set_agent_health('nobody', false)$$) AS unknown_worker;
SELECT pg_temp.state(:run2) = :'before' AS unchanged;

-- Clean up the role.
SET client_min_messages = warning;
DELETE FROM ops.worker_logins WHERE login = 'wd_worker';
DROP OWNED BY wd_worker;
DROP ROLE wd_worker;
RESET client_min_messages;
