-- Following a run's events (odooops logs --follow): a member follows a run
-- of its project; a run of another project answers like a missing one; a
-- session follows at most 64 runs; a refusal writes nothing. Events of runs
-- nobody follows send no notification (the notifications themselves:
-- tests/isolation/specs/run_event_followers.spec).
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
END $$;
GRANT odooops_api TO authenticated;
RESET client_min_messages;

INSERT INTO ops.projects (slug, name) VALUES ('follow', 'Follow tests') RETURNING id AS p \gset
INSERT INTO ops.projects (slug, name) VALUES ('elsewhere', 'Another project') RETURNING id AS q \gset
INSERT INTO ops.environments (project_id, name, stage, db_name)
VALUES (:p, 'dev', 'development', 'fw_dev'), (:q, 'dev', 'development', 'ew_dev');
INSERT INTO ops.project_members (project_id, user_id, role) VALUES (:p, 'f-viewer', 'viewer');
SELECT id AS mine FROM ops.queue_run(:p, 'dev', 'abc123', 'main', '{}', 'build') \gset
SELECT id AS theirs FROM ops.queue_run(:q, 'dev', 'abc123', 'main', '{}', 'build') \gset
DELETE FROM ops.run_followers;

-- A viewer follows a run of its project; another project's run and a
-- missing one get the same answer, and write nothing.
SELECT regress.as_user('f-viewer', format('SELECT ops.follow_run_events(%s)', :mine)) AS own_run,
       regexp_replace(regress.as_user('f-viewer', format('SELECT ops.follow_run_events(%s)', :theirs)),
                      'run \d+', 'run N') AS foreign_run,
       regexp_replace(regress.as_user('f-viewer', 'SELECT ops.follow_run_events(987654321)'),
                      'run \d+', 'run N') AS missing_run,
       regexp_replace(regress.as_user('stranger', format('SELECT ops.follow_run_events(%s)', :mine)),
                      'run \d+', 'run N') AS stranger;
SELECT count(*) AS followers, bool_and(pid = pg_backend_pid()) AS this_session,
       bool_and(run_id = :mine) AS only_own_run
  FROM ops.run_followers;
-- Following again changes nothing.
SELECT regress.as_user('f-viewer', format('SELECT ops.follow_run_events(%s)', :mine)) AS again;
SELECT count(*) AS followers FROM ops.run_followers;
-- Nobody reads or writes the table directly but administrators.
SELECT regress.probe('f-viewer', 'SELECT * FROM ops.run_followers') AS viewer_reads,
       regress.probe('f-viewer', format('INSERT INTO ops.run_followers (run_id, pid) VALUES (%s, 1)', :theirs)) AS viewer_writes;

-- At most 64 runs per session: the 65th is refused and not written.
SELECT count(ops.follow_run_events(r.id)) AS followed_more
  FROM (SELECT (ops.queue_run(:p, 'dev', 'abc123', 'main', jsonb_build_object('n', i), 'build')).id
          FROM generate_series(1, 63) i) r;
SELECT count(*) AS followers FROM ops.run_followers;
SELECT id AS extra FROM ops.queue_run(:p, 'dev', 'abc123', 'main', '{"n": 64}', 'build') \gset
SELECT regress.err(format('SELECT ops.follow_run_events(%s)', :extra)) AS sixty_fifth;
SELECT count(*) AS followers, count(*) FILTER (WHERE run_id = :extra) AS extra_followed FROM ops.run_followers;

-- A follower whose session ended is swept by the next follow.
INSERT INTO ops.run_followers (run_id, pid) VALUES (:theirs, -1);
SELECT regress.err(format('SELECT ops.follow_run_events(%s)', :mine)) AS followed;
SELECT count(*) FILTER (WHERE pid = -1) AS gone_sessions FROM ops.run_followers;

-- Clean up.
DELETE FROM ops.run_followers;
