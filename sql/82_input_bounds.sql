-- Every caller-controlled input is bounded and cancellable.
--
-- Branch patterns: before 0.1.3, ops.branch_matches backtracked (the
-- pathological patterns below ran for minutes to geological times, ignoring
-- statement_timeout, pg_cancel_backend and pg_terminate_backend, since the
-- matcher never reached an interrupt check) and a pattern of a million
-- stars recursed until the backend crashed with SIGSEGV, taking every
-- session of the server down. With statement_timeout set, this suite would
-- hang there (or lose the server); now each call answers at once.
--
-- RPC arguments: an oversize text or JSON argument is refused with OD005
-- (or OD004) naming it, and changes nothing (row counts before and after).
--
-- This suite counts rows of shared tables, so it runs in a database of its own.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS odooops_regress_82;
CREATE DATABASE odooops_regress_82;
\c odooops_regress_82
CREATE EXTENSION odooops;
SET client_min_messages = warning;
SET timezone = 'UTC';
\set SHOW_CONTEXT never
-- Every statement of the suite must finish well within this.
SET statement_timeout = '10s';

-- SQLSTATE, message and detail of a refused statement ('no error' otherwise).
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  detail text;
BEGIN
  EXECUTE q;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
  RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' -- ' || nullif(detail, ''), '');
END $$;

-- ---------------------------------------------------------------------------
-- ops.branch_matches on pathological patterns (as the API role, which may
-- call it): right answers, at once.
SET ROLE odooops_api;
SELECT ops.branch_matches(repeat('*a', 127) || 'b', repeat('a', 255)) AS star_a_no,
       ops.branch_matches(repeat('*a', 127) || 'b', repeat('a', 254) || 'b') AS star_a_yes,
       ops.branch_matches(repeat('**a', 85), repeat('a/', 127)) AS globstar_no,
       ops.branch_matches(repeat('**a', 85), repeat('a/', 127) || 'a') AS globstar_yes,
       ops.branch_matches(repeat('*', 254) || 'a', 'main') AS stars_no,
       ops.branch_matches(repeat('*', 254) || 'a', 'feature/extra') AS stars_yes,
       ops.branch_matches(repeat('?*', 127) || 'b', repeat('a', 255)) AS mixed_no;
-- The old semantics hold: `*` within a segment, `**` across, `?` one byte but '/'.
SELECT ops.branch_matches('feature/*', 'feature/login') AS seg,
       ops.branch_matches('feature/*', 'feature/a/b') AS seg_deeper,
       ops.branch_matches('feature/**', 'feature/a/b') AS across,
       ops.branch_matches('release-?', 'release-1') AS one,
       ops.branch_matches('release-?', 'release-/') AS one_not_slash,
       ops.branch_matches(NULL, 'main') AS null_pattern,
       ops.branch_matches('', 'main') AS empty_pattern;
-- Limits: 255 characters each, as the columns that store them.
SELECT ops.branch_matches(repeat('é', 255), repeat('é', 255)) AS multibyte_at_limit;
SELECT pg_temp.err($$SELECT ops.branch_matches(repeat('*', 1000000) || 'a', 'main')$$) AS million_stars;
SELECT pg_temp.err($$SELECT ops.branch_matches(repeat('*', 256), 'main')$$) AS pattern_256;
SELECT pg_temp.err($$SELECT ops.branch_matches('main', repeat('a', 256))$$) AS branch_256;
SELECT pg_temp.err($$SELECT ops.branch_matches('*', repeat('é', 256))$$) AS branch_256_chars;
RESET ROLE;

-- A pathological pattern an environment manager stored is evaluated on
-- every push (GitHub ingest): it answers at once too.
INSERT INTO ops.projects (slug, name, repo_full_name) VALUES ('bounds', 'Bounds', 'acme/bounds');
SELECT id AS p FROM ops.projects WHERE slug = 'bounds' \gset
INSERT INTO ops.environments (project_id, name, stage, db_name, branch_pattern)
VALUES (:p, 'production', 'production', 'bounds_prod', NULL),
       (:p, 'dev', 'development', 'bounds_dev', repeat('*a', 127) || 'b');
SELECT e.name FROM ops.projects x, ops._environment_for_branch(x, repeat('a', 200)) e WHERE x.id = :p;
SELECT e.name FROM ops.projects x, ops._environment_for_branch(x, repeat('a', 200) || 'b') e WHERE x.id = :p;
SELECT e.name FROM ops.projects x, ops._environment_for_branch(x, 'main') e WHERE x.id = :p;

-- Many calls in one statement are still cancelled by statement_timeout: no
-- call runs long enough to delay the interrupt check between rows. (The
-- series is in the target list, so rows stream instead of being
-- materialized first.)
SET statement_timeout = '200ms';
SELECT count(*) FROM (SELECT generate_series(1, 1000000000) AS g) s
 WHERE ops.branch_matches(repeat('*a', 127) || 'b', repeat('a', 200 + g % 55));
SET statement_timeout = '10s';

-- ---------------------------------------------------------------------------
-- ops.cron_next: length capped before parsing, impossible dates answer NULL
-- at once, leap days across 2100 are found, infinite and far times are NULL.
SELECT pg_temp.err($$SELECT ops.cron_next(repeat('*', 1000000))$$) AS cron_million;
SELECT pg_temp.err($$SELECT ops.cron_next('0 0 * * *' || repeat(' ', 248))$$) AS cron_257;
SELECT ops.cron_next('0 0 * * *' || repeat(' ', 247), '2024-01-01+00') AS cron_256,
       ops.cron_next('0 0 30 2 *', '2024-01-01+00') AS feb_30,
       ops.cron_next('0 0 31 2,4,6,9,11 *', '2024-01-01+00') AS day_31_of_short_months,
       ops.cron_next('0 0 29 2 *', '2096-03-01+00') AS leap_day_after_2096,
       ops.cron_next('*/1 */1 */1 */1 */1 */1', '2024-01-01+00') AS every_second;
SELECT ops.cron_next('* * * * *', 'infinity') AS after_infinity,
       ops.cron_next('* * * * *', '-infinity') AS after_minus_infinity,
       ops.cron_next('0 0 1 1 *', '294276-06-01+00') AS past_the_end;

-- ---------------------------------------------------------------------------
-- RPC arguments. A worker holds a run; a second run is queued.
SELECT worker_id FROM ops.register_agent('bw', NULL, NULL, '{"zone": "a"}', '1.0', 'host-1');
SELECT id AS held FROM ops.queue_run(:p, 'dev', 'abc1234', 'main', '{}', 'build') \gset
SELECT id AS queued FROM ops.queue_run(:p, 'dev', 'abc1235', 'main', '{}', 'build') \gset
SELECT id = :held AS claimed_held FROM ops.claim_next_run('bw');
SELECT status FROM ops.start_run(:held, 'bw', 1);
SELECT backup_id AS b, run_id AS b_run FROM ops.create_backup(:p, 'dev', 'manual') \gset
INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason)
VALUES ('artifact', 1, 'file:///bounds/a', 'ttl');

-- Everything the refused calls could have written.
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
  SELECT concat_ws(' ',
    (SELECT count(*) FROM ops.projects), (SELECT count(*) FROM ops.environments),
    (SELECT count(*) FROM ops.runs), (SELECT count(*) FROM ops.run_events),
    (SELECT count(*) FROM ops.agents), (SELECT count(*) FROM ops.agent_events),
    (SELECT count(*) FROM ops.artifacts), (SELECT count(*) FROM ops.backups),
    (SELECT count(*) FROM ops.restores), (SELECT count(*) FROM ops.approvals),
    (SELECT count(*) FROM ops.audit_log), (SELECT count(*) FROM ops.storage_deletions),
    (SELECT count(*) FROM ops.project_members), (SELECT count(*) FROM ops.env_permissions),
    (SELECT md5(string_agg(x::text, ',' ORDER BY x.id)) FROM ops.projects x),
    (SELECT md5(string_agg(e::text, ',' ORDER BY e.id)) FROM ops.environments e),
    (SELECT md5(string_agg(r::text, ',' ORDER BY r.id)) FROM ops.runs r),
    (SELECT md5(string_agg(a::text, ',' ORDER BY a.id)) FROM ops.agents a),
    (SELECT md5(string_agg(b::text, ',' ORDER BY b.id)) FROM ops.backups b),
    (SELECT md5(string_agg(d::text, ',' ORDER BY d.id)) FROM ops.storage_deletions d))
$$;
SELECT pg_temp.state() AS before \gset

-- Native run-queue API: limits in bytes (docs/errors.md, "Input limits").
SELECT call, pg_temp.err(q) FROM (VALUES
  ('queue_run env', format($$SELECT ops.queue_run(%s, repeat('e', 1000000), 'abc1234', 'main')$$, :p)),
  ('queue_run workflow', format($$SELECT ops.queue_run(%s, 'dev', 'abc1234', 'main', '{}', repeat('w', 1000000))$$, :p)),
  ('queue_run git_ref', format($$SELECT ops.queue_run(%s, 'dev', NULL, repeat('r', 256))$$, :p)),
  ('queue_run idempotency_key', format($$SELECT ops.queue_run(%s, 'dev', 'abc1234', 'main', '{}', 'build', 0, repeat('k', 201))$$, :p)),
  ('queue_run metadata', format($$SELECT ops.queue_run(%s, 'dev', 'abc1234', 'main', jsonb_build_object('x', repeat('m', 300000)))$$, :p)),
  ('claim_next_run worker_id', $$SELECT ops.claim_next_run(repeat('w', 1000000))$$),
  ('claim_runs workflows', $$SELECT ops.claim_runs('bw', 1, 300, ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy', 'restore_test', 'build'])$$),
  ('claim_runs workflows big', $$SELECT ops.claim_runs('bw', 1, 300, (SELECT array_agg(repeat('x', 1000)) FROM generate_series(1, 100000)))$$),
  ('claim_runs workflow name', $$SELECT ops.claim_runs('bw', 1, 300, ARRAY['build', repeat('x', 1000)])$$),
  ('start_run worker_id', format($$SELECT ops.start_run(%s, repeat('w', 1000000), 1)$$, :queued)),
  ('heartbeat_run worker_id', format($$SELECT ops.heartbeat_run(%s, repeat('w', 1000000), 1)$$, :held)),
  ('release_run reason', format($$SELECT ops.release_run(%s, 'bw', 1, repeat('r', 8193))$$, :held)),
  ('append_event message', format($$SELECT ops.append_event(%s, 'info', repeat('m', 8193), '{}', 'bw', 1)$$, :held)),
  ('append_event payload', format($$SELECT ops.append_event(%s, 'info', 'x', jsonb_build_object('p', repeat('p', 70000)), 'bw', 1)$$, :held)),
  ('append_events count', format($$SELECT ops.append_events(%s, (SELECT jsonb_agg(jsonb_build_object('level', 'info', 'message', 'x')) FROM generate_series(1, 1001)), 'bw', 1)$$, :held)),
  ('append_events bytes', format($$SELECT ops.append_events(%s, jsonb_build_array(jsonb_build_object('level', 'info', 'message', 'x', 'junk', repeat('j', 17000000))), 'bw', 1)$$, :held)),
  ('finish_run metadata', format($$SELECT ops.finish_run(%s, 'succeeded', jsonb_build_object('x', repeat('m', 300000)), 'bw', 1)$$, :held)),
  ('finish_runs results', format($$SELECT ops.finish_runs('bw', jsonb_build_array(jsonb_build_object('run_id', %s, 'attempt', 1, 'status', 'succeeded', 'junk', repeat('j', 17000000))))$$, :held)),
  ('cancel_run reason', format($$SELECT ops.cancel_run(%s, repeat('r', 8193))$$, :queued))
) AS t(call, q);

-- SQL RPCs: limits in characters, as the columns they fill.
SELECT call, pg_temp.err(q) FROM (VALUES
  ('register_agent labels', $$SELECT ops.register_agent('bw', NULL, NULL, jsonb_build_object('x', repeat('l', 70000)))$$),
  ('register_agent kinds', $$SELECT ops.register_agent('bw', (SELECT array_agg('build'::text) FROM generate_series(1, 100000)))$$),
  ('register_agent version', $$SELECT ops.register_agent('bw', NULL, NULL, '{}', repeat('v', 65))$$),
  ('register_agent hostname', $$SELECT ops.register_agent('bw', NULL, NULL, '{}', '1.0', repeat('h', 256))$$),
  ('register_agent team', $$SELECT ops.register_agent('bw', NULL, repeat('t', 1000000))$$),
  ('register_agent worker_id', $$SELECT ops.register_agent(repeat('w', 1000000))$$),
  ('agent_heartbeat worker_id', $$SELECT ops.agent_heartbeat(repeat('w', 1000000))$$),
  ('set_agent_status worker_id', $$SELECT ops.set_agent_status(repeat('w', 1000000), 'draining')$$),
  ('run_context worker_id', format($$SELECT ops.run_context(%s, repeat('w', 1000000), 1)$$, :held)),
  ('record_artifact worker_id', format($$SELECT ops.record_artifact(%s, repeat('w', 1000000), 1, 'log', 'a', 'file:///a')$$, :held)),
  ('record_artifact name', format($$SELECT ops.record_artifact(%s, 'bw', 1, 'log', repeat('n', 256), 'file:///a')$$, :held)),
  ('record_artifact location', format($$SELECT ops.record_artifact(%s, 'bw', 1, 'log', 'a', repeat('l', 2049))$$, :held)),
  ('record_artifact metadata', format($$SELECT ops.record_artifact(%s, 'bw', 1, 'log', 'a', 'file:///a', NULL, NULL, jsonb_build_object('x', repeat('m', 300000)))$$, :held)),
  ('claim_storage_deletions worker_id', $$SELECT ops.claim_storage_deletions(repeat('w', 1000000))$$),
  ('finish_storage_deletion error', $$SELECT ops.finish_storage_deletion(1, false, repeat('e', 8193))$$),
  ('create_backup env', format($$SELECT ops.create_backup(%s, repeat('e', 1000000))$$, :p)),
  ('create_backup metadata', format($$SELECT ops.create_backup(%s, 'dev', 'manual', jsonb_build_object('x', repeat('m', 300000)))$$, :p)),
  ('complete_backup metadata', format($$SELECT ops.complete_backup(%s, 'bw', 1, 'file:///b', 1, repeat('b', 64), jsonb_build_object('x', repeat('m', 300000)))$$, :b)),
  ('fail_backup error', format($$SELECT ops.fail_backup(%s, 'bw', 1, repeat('e', 8193))$$, :b)),
  ('restore_backup metadata', format($$SELECT ops.restore_backup(%s, 1, NULL, jsonb_build_object('x', repeat('m', 300000)))$$, :b)),
  ('restore_backup requested_by', format($$SELECT ops.restore_backup(%s, 1, repeat('u', 1000000))$$, :b)),
  ('create_project name', $$SELECT ops.create_project('bounds-2', repeat('n', 201))$$),
  ('create_project repo_url', $$SELECT ops.create_project('bounds-2', 'B', repeat('u', 2049))$$),
  ('create_project repo_full_name', $$SELECT ops.create_project('bounds-2', 'B', NULL, repeat('a', 500000) || '/' || repeat('b', 500000))$$),
  ('destroy_environment env', format($$SELECT ops.destroy_environment(%s, repeat('e', 1000000))$$, :p)),
  ('destroy_environment reason', format($$SELECT ops.destroy_environment(%s, 'dev', repeat('r', 8193))$$, :p)),
  ('rollback_release reason', $$SELECT ops.rollback_release(1, repeat('r', 8193))$$),
  ('decide_approval reason', $$SELECT ops.decide_approval(1, 'approved', repeat('r', 2001))$$)
) AS t(call, q);

-- Columns people write directly (PostgREST) are bounded by their tables'
-- CHECK constraints (23514, as every direct write that breaks one).
CREATE FUNCTION pg_temp.err_no_detail(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE q;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT call, pg_temp.err_no_detail(q) FROM (VALUES
  ('projects.settings', format($$UPDATE ops.projects SET settings = jsonb_build_object('x', repeat('s', 70000)) WHERE id = %s$$, :p)),
  ('projects.repo_full_name', format($$UPDATE ops.projects SET repo_full_name = repeat('a', 200) || '/' || repeat('b', 200) WHERE id = %s$$, :p)),
  ('environments.settings', format($$UPDATE ops.environments SET settings = jsonb_build_object('x', repeat('s', 70000)) WHERE project_id = %s$$, :p)),
  ('project_members.added_by', format($$INSERT INTO ops.project_members (project_id, user_id, role, added_by) VALUES (%s, 'm1', 'viewer', repeat('a', 256))$$, :p)),
  ('env_permissions.permission', format($$INSERT INTO ops.env_permissions (environment_id, user_id, permission, effect) SELECT id, 'm1', repeat('a', 65), 'allow' FROM ops.environments WHERE project_id = %s AND name = 'dev'$$, :p))
) AS t(call, q);

SELECT pg_temp.state() = :'before' AS nothing_changed;
SELECT status, claimed_by, attempt FROM ops.runs WHERE id IN (:held, :queued) ORDER BY id;
SELECT worker_id, labels, version, hostname, kinds FROM ops.agents;
SELECT status, claimed_by, error FROM ops.storage_deletions;

-- At the limits the same calls go through.
SELECT ops.append_event(:held, 'info', repeat('m', 8192), jsonb_build_object('p', repeat('p', 65000)), 'bw', 1) > 0 AS message_at_limit;
SELECT worker_id, octet_length(hostname) AS hostname_chars, octet_length(version) AS version_chars
  FROM ops.register_agent('bw', ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy'], NULL,
                          jsonb_build_object('x', repeat('l', 65000)), repeat('v', 64), repeat('h', 255));
SELECT count(*) AS claimed FROM ops.claim_runs('bw', 1, 300, ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy']);
SELECT status FROM ops.release_run(:held, 'bw', 1, repeat('r', 8192));
SELECT length(message) AS release_event_chars FROM ops.run_events WHERE run_id = :held ORDER BY id DESC LIMIT 1;
SELECT id = :held AS reclaimed FROM ops.claim_next_run('bw', 300, ARRAY['build']);
-- A failure's error is cut at 8192 bytes on a character boundary.
SELECT status FROM ops.finish_run(:held, 'failed', jsonb_build_object('error', repeat('x', 8191) || 'é' || 'tail'), 'bw', 2);
SELECT octet_length(error) AS error_bytes, right(error, 1) AS last_char FROM ops.runs WHERE id = :held;
SELECT length(message) AS failed_event_chars FROM ops.run_events WHERE run_id = :held ORDER BY id DESC LIMIT 1;

-- Nothing is left queued or held.
SELECT count(*) >= 0 AS cancelled FROM (SELECT ops.cancel_run(id) FROM ops.runs
                                        WHERE status IN ('queued', 'claimed', 'running')) x;
