-- Restore tests: runs of workflow restore_test, queued for production
-- environments by a person allowed to restore there or by a schedule of
-- kind 'restore_test'; the latest completed backup is the one tested; a
-- failed one opens an alert.
\set SHOW_CONTEXT never

INSERT INTO ops.projects (slug, name) VALUES ('rt-shop', 'Restore tests') RETURNING id AS p \gset
INSERT INTO ops.projects (slug, name) VALUES ('rt-other', 'Another project') RETURNING id AS q \gset
INSERT INTO ops.environments (project_id, name, stage, db_name)
VALUES (:p, 'prod', 'production', 'rt_prod'), (:p, 'dev', 'development', 'rt_dev'),
       (:p, 'staging', 'staging', 'rt_staging'), (:q, 'prod', 'production', 'rt_other_prod');
SELECT id AS prod FROM ops.environments WHERE project_id = :p AND name = 'prod' \gset
SELECT id AS dev FROM ops.environments WHERE project_id = :p AND name = 'dev' \gset
INSERT INTO ops.project_members (project_id, user_id, role)
VALUES (:p, 'r-owner', 'owner'), (:p, 'r-admin', 'admin'), (:p, 'r-dev', 'developer'),
       (:p, 'r-viewer', 'viewer'), (:q, 'o-owner', 'owner');

-- 1. Who may queue one: owners and admins of the project, on production.
SELECT regress.probe('r-owner', format($$SELECT ops.queue_restore_test(%s, 'prod')$$, :p)) AS owner,
       regress.probe('r-admin', format($$SELECT ops.queue_restore_test(%s, 'prod')$$, :p)) AS admin,
       regress.probe('r-dev', format($$SELECT ops.queue_restore_test(%s, 'prod')$$, :p)) AS developer,
       regress.probe('r-viewer', format($$SELECT ops.queue_restore_test(%s, 'prod')$$, :p)) AS viewer,
       regress.probe(NULL, format($$SELECT ops.queue_restore_test(%s, 'prod')$$, :p)) AS anonymous;
-- another project's production is as unknown as a missing environment
SELECT regexp_replace(regress.as_user('o-owner', format($$SELECT ops.queue_restore_test(%s, 'prod')$$, :p)), 'project [0-9]+', 'project <p>') AS other_project,
       regexp_replace(regress.as_user('r-owner', format($$SELECT ops.queue_restore_test(%s, 'nowhere')$$, :p)), 'project [0-9]+', 'project <p>') AS missing;
-- only production: a developer may restore in development, yet no restore test there
SELECT count(*) AS runs_before FROM ops.runs WHERE project_id = :p \gset
SELECT regress.as_user('r-dev', format($$SELECT ops.queue_restore_test(%s, 'dev')$$, :p)) AS development,
       regress.as_user('r-owner', format($$SELECT ops.queue_restore_test(%s, 'staging')$$, :p)) AS staging,
       regress.as_user('r-owner', format($$SELECT ops.queue_restore_test(%s, repeat('x', 256))$$, :p)) AS too_long;
SELECT count(*) - :runs_before AS queued_by_refusals FROM ops.runs WHERE project_id = :p;
-- queue_run does not queue them: they have their own RPC
SELECT regress.as_user('r-owner', format($$SELECT ops.queue_run(%s, 'prod', NULL, NULL, '{}', 'restore_test')$$, :p)) AS via_queue_run;

-- the owner's run: workflow restore_test, not exclusive (the environment is not touched)
SELECT regress.as_user('r-owner', format($$SELECT ops.queue_restore_test(%s, 'prod')$$, :p)) AS queued;
SELECT workflow, status, exclusive, metadata ->> 'requested_by' AS requested_by
  FROM ops.runs WHERE environment_id = :prod AND workflow = 'restore_test';

-- 2. The schedule kind: a restore_test schedule queues a restore test per slot;
-- on a non-production environment the slot records the refusal.
INSERT INTO ops.backup_schedules (environment_id, cron_expr, kind) VALUES (:prod, '0 3 * * *', 'restore_test')
RETURNING id AS s_prod \gset
INSERT INTO ops.backup_schedules (environment_id, cron_expr) VALUES (:prod, '0 3 * * *')
RETURNING id AS s_backup \gset
INSERT INTO ops.backup_schedules (environment_id, cron_expr, kind) VALUES (:dev, '0 4 * * *', 'restore_test')
RETURNING id AS s_dev \gset
SELECT regress.err(format($$INSERT INTO ops.backup_schedules (environment_id, cron_expr, kind) VALUES (%s, '0 5 * * *', 'restore')$$, :prod))
       AS unknown_kind;
UPDATE ops.backup_schedules SET next_fire_at = now() - interval '1 minute' WHERE id IN (:s_prod, :s_backup, :s_dev);
SELECT ops.fire_due_backup_schedules() AS fired;
SELECT bs.kind, f.backup_id IS NOT NULL AS made_backup, r.workflow, f.error
  FROM ops.backup_schedule_fires f JOIN ops.backup_schedules bs ON bs.id = f.schedule_id
  LEFT JOIN ops.runs r ON r.id = f.run_id
 WHERE f.schedule_id IN (:s_prod, :s_backup, :s_dev) ORDER BY bs.id;
SELECT count(*) AS restore_tests_queued FROM ops.runs WHERE environment_id = :prod AND workflow = 'restore_test';

-- 3. A failed restore test opens an alert until a later one succeeds.
SELECT id AS rt FROM ops.runs WHERE environment_id = :prod AND workflow = 'restore_test' ORDER BY id LIMIT 1 \gset
SET session_replication_role = replica;   -- the worker's transitions are tested elsewhere
UPDATE ops.runs SET status = 'failed', error = 'health check failed', finished_at = now() WHERE id = :rt;
SET session_replication_role = DEFAULT;
SELECT kind, severity, message = format('restore test run %s failed: health check failed', :rt) AS message_names_run
  FROM ops.alert_conditions() WHERE kind = 'restore_test_failed' AND environment_id = :prod;
SELECT ops.evaluate_alerts() IS NOT NULL AS evaluated;
SELECT kind, status, details ->> 'run_id' = :'rt' AS names_run FROM ops.alerts
 WHERE kind = 'restore_test_failed' AND environment_id = :prod;
SET session_replication_role = replica;
UPDATE ops.runs SET status = 'succeeded', finished_at = now() WHERE environment_id = :prod AND workflow = 'restore_test' AND id > :rt;
SET session_replication_role = DEFAULT;
SELECT count(*) AS open_after_success FROM ops.alert_conditions() WHERE kind = 'restore_test_failed';
SELECT ops.evaluate_alerts() IS NOT NULL AS evaluated;
SELECT kind, status FROM ops.alerts WHERE kind = 'restore_test_failed' AND environment_id = :prod;

-- 4. Workers take restore_test as a kind.
SELECT 'restore_test' = ANY (kinds) AS default_kinds FROM (SELECT ops.register_agent('rt-worker') AS a) x,
       LATERAL (SELECT (x.a).kinds) k(kinds);
