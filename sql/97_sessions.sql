-- Sessions in an environment's runtime (odooops shell, psql, odoo-logs):
-- a person opens one with their project permission on the environment and
-- gets a one-time token; a worker login redeems it once, before it expires,
-- for an environment it hosts, and closes it once; each step is one row of
-- the audit trail. Bad input changes nothing.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
END $$;
GRANT odooops_api TO authenticated;
RESET client_min_messages;

INSERT INTO ops.projects (slug, name) VALUES ('shells', 'Shell tests') RETURNING id AS p \gset
INSERT INTO ops.projects (slug, name) VALUES ('othershop', 'Another project') RETURNING id AS q \gset
INSERT INTO ops.environments (project_id, name, stage, db_name)
VALUES (:p, 'prod', 'production', 'sh_prod'), (:p, 'stage', 'staging', 'sh_stage'),
       (:p, 'dev', 'development', 'sh_dev'), (:q, 'prod', 'production', 'os_prod');
INSERT INTO ops.environments (project_id, name, stage, db_name, host_worker_id)
VALUES (:p, 'hosted', 'development', 'sh_hosted', 'sess-elsewhere');
INSERT INTO ops.project_members (project_id, user_id, role)
VALUES (:p, 's-owner', 'owner'), (:p, 's-dev', 'developer'), (:p, 's-viewer', 'viewer'),
       (:q, 'o-owner', 'owner');

-- Who may open what: developers never a shell or psql on production,
-- viewers only the Odoo log, every member the Odoo log.
SELECT k AS kind,
       regress.probe('s-owner', format('SELECT * FROM ops.open_session(''shells'', ''prod'', %L)', k)) AS owner_prod,
       regress.probe('s-dev', format('SELECT * FROM ops.open_session(''shells'', ''prod'', %L)', k)) AS dev_prod,
       regress.probe('s-dev', format('SELECT * FROM ops.open_session(''shells'', ''stage'', %L)', k)) AS dev_stage,
       regress.probe('s-dev', format('SELECT * FROM ops.open_session(''shells'', ''dev'', %L)', k)) AS dev_dev,
       regress.probe('s-viewer', format('SELECT * FROM ops.open_session(''shells'', ''dev'', %L)', k)) AS viewer_dev,
       regress.probe('stranger', format('SELECT * FROM ops.open_session(''shells'', ''dev'', %L)', k)) AS stranger
  FROM unnest(ARRAY['shell', 'psql', 'odoo_logs']) k;
-- The refusal a developer gets on production names the permission.
SELECT regexp_replace(regress.as_user('s-dev', 'SELECT * FROM ops.open_session(''shells'', ''prod'', ''shell'')'),
                      'project \d+', 'project N') AS dev_shell_prod;

-- Another project's environment answers exactly as a missing one.
SELECT regress.as_user('s-dev', 'SELECT * FROM ops.open_session(''othershop'', ''prod'', ''odoo_logs'')') AS foreign_env,
       regress.as_user('s-dev', 'SELECT * FROM ops.open_session(''othershop'', ''nope'', ''odoo_logs'')') AS missing_env;
SELECT regress.as_user('s-dev', 'SELECT * FROM ops.open_session(''nosuchshop'', ''prod'', ''odoo_logs'')') AS missing_project;

-- Bad input: a clear error, and nothing is written.
SELECT count(*) AS sessions_before FROM ops.sessions \gset
SELECT regress.as_user('s-owner', 'SELECT * FROM ops.open_session(''shells'', ''dev'', ''bash'')') AS bad_kind,
       regress.as_user('s-owner', 'SELECT * FROM ops.open_session(''shells'', ''dev'', NULL)') AS no_kind,
       regress.as_user('s-owner', format('SELECT * FROM ops.open_session(''shells'', %L, ''shell'')', repeat('x', 256))) AS long_env;
SELECT count(*) = :sessions_before AS nothing_written,
       (SELECT count(*) FROM ops.audit_log WHERE action LIKE 'session.%') AS audit_rows
  FROM ops.sessions;

-- A developer opens a shell on development: a token, shown once, valid a minute.
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "s-dev", "role": "authenticated"}', true) IS NOT NULL AS as_dev;
SET LOCAL ROLE authenticated;
SELECT session_id AS s1, token AS t1, expires_at - now() AS ttl, environment_id IS NOT NULL AS has_env,
       host_worker_id, host_team
  FROM ops.open_session('shells', 'dev', 'shell') \gset
SELECT :'ttl' AS ttl, :'t1' ~ '^odooops_s_[0-9a-f]{64}$' AS token_shape;
COMMIT;
-- people do not read the sessions table, nor redeem
SELECT regress.probe('s-owner', format('SELECT ops.redeem_session(%L, ''sess-a'')', :'t1')) AS person_redeems,
       regress.probe('s-owner', 'SELECT * FROM ops.sessions') AS person_reads;
-- only a hash is stored
SELECT kind, opened_by, redeemed_by, token_sha256 = sha256(convert_to(:'t1', 'UTF8')) AS hashed,
       position(convert_to(:'t1', 'UTF8') IN token_sha256) = 0 AS token_not_stored
  FROM ops.sessions WHERE id = :s1;

-- The worker's login, bound to sess-a, redeems it once.
SET client_min_messages = warning;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'odooops_test_session_worker') THEN
    CREATE ROLE odooops_test_session_worker;
  END IF;
END $$;
RESET client_min_messages;
GRANT odooops_worker TO odooops_test_session_worker;
INSERT INTO ops.worker_logins (login, worker_id) VALUES ('odooops_test_session_worker', 'sess-a');
SET ROLE odooops_test_session_worker;
-- as a worker id the login is not bound to: refused, the token stays unused
SELECT ops.redeem_session(:'t1', 'sess-b');
SELECT c->'session'->>'kind' AS kind, c->'session'->>'opened_by' AS opened_by,
       c->'project'->>'slug' AS project, c->'environment'->>'name' AS environment,
       c->'environment'->>'stage' AS stage, c->'environment'->>'db_name' AS db_name,
       c->'release' AS release, c ? 'repo_url_schemes' AS has_schemes
  FROM ops.redeem_session(:'t1', 'sess-a') c;
-- a token opens one session
SELECT ops.redeem_session(:'t1', 'sess-a');
SELECT ops.redeem_session('odooops_s_0000', 'sess-a');
SELECT ops.redeem_session(repeat('x', 129), 'sess-a');
-- closing: the redeeming worker, once, with an exit status in range
SELECT ops.close_session(:s1, 'sess-a', 256);
SELECT ops.close_session(:s1, 'sess-a', 3);
SELECT ops.close_session(:s1, 'sess-a', 0);
SELECT ops.close_session(-1, 'sess-a', 0);
-- the worker reads nothing directly
SELECT count(*) FROM ops.sessions;
RESET ROLE;
SELECT kind, redeemed_by, redeemed_at IS NOT NULL AS redeemed, closed_at >= redeemed_at AS closed, exit_status
  FROM ops.sessions WHERE id = :s1;

-- An expired token is refused and stays unredeemed.
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "s-viewer", "role": "authenticated"}', true) IS NOT NULL AS as_viewer;
SET LOCAL ROLE authenticated;
SELECT session_id AS s2, token AS t2 FROM ops.open_session('shells', 'prod', 'odoo_logs') \gset
COMMIT;
UPDATE ops.sessions SET expires_at = now() - interval '1 second' WHERE id = :s2;
SET ROLE odooops_test_session_worker;
SELECT ops.redeem_session(:'t2', 'sess-a');
RESET ROLE;
SELECT redeemed_at IS NULL AS unredeemed FROM ops.sessions WHERE id = :s2;

-- An environment with a host runs its sessions there only.
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "s-dev", "role": "authenticated"}', true) IS NOT NULL AS as_dev;
SET LOCAL ROLE authenticated;
SELECT session_id AS s3, token AS t3, host_worker_id FROM ops.open_session('shells', 'hosted', 'psql') \gset
COMMIT;
SELECT :'host_worker_id' AS host_worker_id;
SET ROLE odooops_test_session_worker;
SELECT ops.redeem_session(:'t3', 'sess-a');
RESET ROLE;
SELECT c->'environment'->>'name' AS redeemed_on_its_host FROM ops.redeem_session(:'t3', 'sess-elsewhere') c;

-- Nobody but the RPCs writes sessions or the trail, administrators included.
SET client_min_messages = warning;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'odooops_test_session_admin') THEN
    CREATE ROLE odooops_test_session_admin;
  END IF;
END $$;
RESET client_min_messages;
GRANT odooops_admin TO odooops_test_session_admin;
SET ROLE odooops_test_session_admin;
SELECT count(*) > 0 AS admin_reads FROM ops.sessions;
UPDATE ops.sessions SET redeemed_at = NULL, redeemed_by = NULL WHERE id = :s1;
RESET ROLE;

-- The trail: who opened what, which worker ran it, how it ended.
SELECT action, CASE WHEN actor = current_user THEN '(the superuser)' ELSE actor END AS actor, subject, payload->>'kind' AS kind, payload->>'environment' AS environment,
       payload->>'opened_by' AS opened_by, payload->>'worker_id' AS worker_id,
       payload->>'exit_status' AS exit_status, (payload->>'session_id')::bigint = :s1 AS first_session
  FROM ops.audit_log WHERE action LIKE 'session.%' ORDER BY id;
-- auditors and owners read it; developers do not
SELECT regress.probe('s-owner', 'SELECT * FROM ops.audit_log WHERE action LIKE ''session.%''') AS owner_reads,
       regress.probe('s-dev', 'SELECT * FROM ops.audit_log WHERE action LIKE ''session.%''') AS dev_reads;
