-- Access control, exercised the way PostgREST calls the database: in a
-- transaction, SET LOCAL ROLE authenticated (or anon) and the JWT claims in
-- request.jwt.claims. The matrix shows, for each actor, what each read,
-- write and RPC does: "ok N" (N rows) or the SQLSTATE of the refusal.
\set SHOW_CONTEXT never

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'odooops_test_worker') THEN CREATE ROLE odooops_test_worker NOLOGIN; END IF;
END $$;
SET client_min_messages = warning;  -- the grants may exist from an earlier run
GRANT odooops_api TO authenticated;
GRANT odooops_worker TO odooops_test_worker;
RESET client_min_messages;

-- Two projects: "shop" with one member per role, "other" with its own owner.
INSERT INTO ops.projects (slug, name) VALUES ('shop', 'Shop') RETURNING id AS shop \gset
INSERT INTO ops.projects (slug, name) VALUES ('other', 'Other') RETURNING id AS other \gset
INSERT INTO ops.project_members (project_id, user_id, role) VALUES
  (:shop, 'owner-1', 'owner'), (:shop, 'admin-1', 'admin'), (:shop, 'dev-1', 'developer'),
  (:shop, 'viewer-1', 'viewer'), (:shop, 'auditor-1', 'auditor'), (:other, 'other-1', 'owner');
INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES
  (:shop, 'production', 'production', 'shop_prod'), (:shop, 'staging', 'staging', 'shop_staging'),
  (:shop, 'dev', 'development', 'shop_dev'), (:other, 'production', 'production', 'other_prod');
SELECT id AS prod FROM ops.environments WHERE project_id = :shop AND name = 'production' \gset
SELECT id AS dev FROM ops.environments WHERE project_id = :shop AND name = 'dev' \gset
SELECT (ops.queue_run(:shop, 'dev', 'abcd01', 'main', '{}', 'build')).id AS run \gset
SELECT backup_id AS backup FROM ops.create_backup(:shop, 'production', 'daily') \gset
UPDATE ops.backups SET status = 'completed', location = 'file:///b/1', size_bytes = 10,
       sha256 = repeat('a', 64), completed_at = now() WHERE id = :backup;
SELECT ops.set_project_secret(:shop, 'github_webhook_secret', 's3cr3t');
SELECT ops.audit(:shop, 'test.note', 'project', :shop);

-- Identity: the JWT's sub behind PostgREST; nobody when anonymous.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "dev-1", "role": "authenticated"}', true) IS NOT NULL AS claims_set;
SELECT ops.current_user_id(), ops.user_has_permission(:shop, 'run.deploy', :dev) AS dev_may_queue_dev,
       ops.user_has_permission(:shop, 'run.deploy', :prod) AS dev_may_queue_prod;
ROLLBACK;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"role": "authenticated"}', true) IS NOT NULL AS no_sub;
SELECT ops.current_user_id() IS NULL AS anonymous, count(*) AS visible_projects FROM ops.projects;
ROLLBACK;
-- The anon role is granted nothing: not even the schema.
BEGIN;
SET LOCAL ROLE anon;
SELECT count(*) FROM ops.projects;
ROLLBACK;

CREATE TEMP TABLE actors (ord int, actor text);
INSERT INTO actors VALUES (1, 'owner-1'), (2, 'admin-1'), (3, 'dev-1'), (4, 'viewer-1'),
                          (5, 'auditor-1'), (6, 'other-1'), (7, NULL);
GRANT SELECT ON actors TO PUBLIC;

CREATE TEMP TABLE actions (ord int, action text, q text);
INSERT INTO actions VALUES
  (1,  'read projects',            format('SELECT * FROM ops.projects WHERE id = %s', :shop)),
  (2,  'read environments',        format('SELECT * FROM ops.environments WHERE project_id = %s', :shop)),
  (3,  'read runs',                format('SELECT * FROM ops.runs WHERE project_id = %s', :shop)),
  (4,  'read run_events',          format('SELECT * FROM ops.run_events WHERE run_id = %s', :run)),
  (5,  'read backups',             format('SELECT * FROM ops.backups WHERE project_id = %s', :shop)),
  (6,  'read members',             format('SELECT * FROM ops.project_members WHERE project_id = %s', :shop)),
  (7,  'read audit_log',           format('SELECT * FROM ops.audit_log WHERE project_id = %s', :shop)),
  (8,  'read secrets',             'SELECT * FROM ops.project_secrets'),
  (9,  'read secret names',        format('SELECT * FROM ops.project_secret_names WHERE project_id = %s', :shop)),
  (10, 'read agents',              'SELECT * FROM ops.agents'),
  (11, 'update project',           format('UPDATE ops.projects SET name = ''X'' WHERE id = %s', :shop)),
  (12, 'insert dev environment',   format('INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (%s, ''dev2'', ''development'', ''shop_dev2'')', :shop)),
  (13, 'insert staging env',       format('INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (%s, ''stg2'', ''staging'', ''shop_stg2'')', :shop)),
  (14, 'update run directly',      format('UPDATE ops.runs SET priority = 9 WHERE id = %s', :run)),
  (15, 'delete run directly',      format('DELETE FROM ops.runs WHERE id = %s', :run)),
  (16, 'insert member',            format('INSERT INTO ops.project_members (project_id, user_id, role) VALUES (%s, ''new-1'', ''viewer'')', :shop)),
  (17, 'queue run (development)',  format('SELECT ops.queue_run(%s, ''dev'', ''abcd02'', ''main'')', :shop)),
  (18, 'queue run (staging)',      format('SELECT ops.queue_run(%s, ''staging'', ''abcd02'', ''main'')', :shop)),
  (19, 'queue run (production)',   format('SELECT ops.queue_run(%s, ''production'', ''abcd02'', ''main'')', :shop)),
  (20, 'cancel run (development)', format('SELECT ops.cancel_run(%s)', :run)),
  (21, 'comment on run',           format('SELECT ops.append_event(%s, ''info'', ''note'')', :run)),
  (22, 'override finish',          format('SELECT ops.finish_run(%s, ''cancelled'')', :run)),
  (23, 'claim_next_run (worker)',  'SELECT ops.claim_next_run(''w1'')'),
  (24, 'finish_run fenced (worker)', format('SELECT ops.finish_run(%s, ''failed'', ''{}'', ''w1'', 1)', :run)),
  (25, 'create backup (dev)',      format('SELECT ops.create_backup(%s, ''dev'', ''manual'')', :shop)),
  (26, 'create backup (prod)',     format('SELECT ops.create_backup(%s, ''production'', ''manual'')', :shop)),
  (27, 'restore into development', format('SELECT ops.restore_backup(%s, %s)', :backup, :dev)),
  (28, 'restore into production',  format('SELECT ops.restore_backup(%s, %s)', :backup, :prod)),
  (29, 'set secret',               format('SELECT ops.set_project_secret(%s, ''token'', ''t'')', :shop)),
  (30, 'requeue expired (admin)',  'SELECT ops.requeue_expired_runs()');
GRANT SELECT ON actions TO PUBLIC;

SELECT a.action, coalesce(u.actor, 'anonymous') AS actor, regress.probe(u.actor, a.q) AS result, a.ord, u.ord AS uord
  FROM actions a, actors u ORDER BY a.ord, u.ord
\crosstabview action actor result

-- Nothing above stayed: each probe was rolled back.
SELECT count(*) AS runs_in_shop FROM ops.runs WHERE project_id = :shop;

-- Identity cannot be faked: requested_by is checked against the session,
-- and claims are ignored unless the login role is an authenticator.
SELECT regress.as_user('dev-1', format('SELECT ops.restore_backup(%s, %s, ''owner-1'')', :backup, :dev));
CREATE ROLE odooops_test_login LOGIN;
GRANT odooops_api TO odooops_test_login;
SET SESSION AUTHORIZATION odooops_test_login;
SELECT set_config('request.jwt.claims', '{"sub": "owner-1"}', false) IS NOT NULL AS forged;
SELECT ops.current_user_id() AS not_owner;
SELECT count(*) AS forged_reads FROM ops.projects;
RESET SESSION AUTHORIZATION;
SELECT set_config('request.jwt.claims', '', false) = '' AS cleared;
INSERT INTO ops.user_logins (login, user_id) VALUES ('odooops_test_login', 'viewer-1');
SET SESSION AUTHORIZATION odooops_test_login;
SELECT ops.current_user_id() AS mapped, count(*) AS reads FROM ops.projects;
RESET SESSION AUTHORIZATION;

-- A worker role may claim and report as the worker ids bound to it, but
-- holds nothing else.
INSERT INTO ops.worker_logins (login, worker_id) VALUES ('odooops_test_worker', 'w-access');
SET ROLE odooops_test_worker;
SELECT count(*) AS claimed FROM ops.claim_next_run('w-access');
SELECT ops.claim_next_run('w-other');
SELECT ops.queue_run(1, 'dev', 'abcd01', 'main');
SELECT * FROM ops.project_secrets;
RESET ROLE;
DROP ROLE odooops_test_login;

-- A platform administrator manages schedules and webhooks (their triggers
-- run with the extension's rights) and may set secrets but never read them.
SET client_min_messages = warning;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'odooops_test_admin') THEN CREATE ROLE odooops_test_admin NOLOGIN; END IF;
END $$;
GRANT odooops_admin TO odooops_test_admin;
RESET client_min_messages;
SET ROLE odooops_test_admin;
INSERT INTO ops.backup_schedules (environment_id, cron_expr) VALUES (:dev, '0 2 * * *');
INSERT INTO ops.webhook_subscriptions (name, url, event_types) VALUES ('ops', 'http://127.0.0.1:9/hook', '{run.finished}')
RETURNING name;
INSERT INTO ops.webhook_secrets (subscription_id, secret)
SELECT id, 'hook secret' FROM ops.webhook_subscriptions WHERE name = 'ops';
SELECT secret FROM ops.webhook_secrets;
SELECT count(*) AS project_secrets FROM ops.project_secrets;
SELECT status FROM ops.cancel_run(:run);
RESET ROLE;
SELECT count(*) AS deliveries_for_the_cancel FROM ops.webhook_deliveries;
