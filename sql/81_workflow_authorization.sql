-- Authorization per action: who may start which workflow on which stage.
-- Build, test and deploy are queued with ops.queue_run and each needs its
-- own permission on the environment; backups, restores and destruction are
-- only started through ops.create_backup, ops.restore_backup (production
-- restores wait for an approval) and ops.destroy_environment. A request
-- never sets the metadata that tells a worker which backup or release to
-- use, and no id of another project's object is accepted.
\set SHOW_CONTEXT never

INSERT INTO ops.projects (slug, name) VALUES ('wa-shop', 'WA Shop') RETURNING id AS shop \gset
INSERT INTO ops.projects (slug, name) VALUES ('wa-other', 'WA Other') RETURNING id AS other \gset
INSERT INTO ops.project_members (project_id, user_id, role) VALUES
  (:shop, 'wa-owner', 'owner'), (:shop, 'wa-admin', 'admin'), (:shop, 'wa-dev', 'developer'),
  (:shop, 'wa-viewer', 'viewer'), (:other, 'wa-outsider', 'owner');
INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES
  (:shop, 'production', 'production', 'wa_shop_prod'), (:shop, 'staging', 'staging', 'wa_shop_staging'),
  (:shop, 'dev', 'development', 'wa_shop_dev'), (:other, 'production', 'production', 'wa_other_prod');
-- A completed backup in each project.
CREATE TEMP TABLE wa_backups AS
SELECT p.slug, (ops.create_backup(p.id, 'production', 'daily')).backup_id AS id
  FROM ops.projects p WHERE p.slug IN ('wa-shop', 'wa-other');
UPDATE ops.backups b SET status = 'completed', location = 'file:///b/' || b.id, size_bytes = 10,
       sha256 = repeat('a', 64), completed_at = now()
  FROM wa_backups w WHERE b.id = w.id;
SELECT id AS shop_backup FROM wa_backups WHERE slug = 'wa-shop' \gset
SELECT id AS other_backup FROM wa_backups WHERE slug = 'wa-other' \gset
UPDATE ops.runs SET status = 'cancelled', finished_at = now() WHERE status = 'queued';
GRANT SELECT ON wa_backups TO PUBLIC;

-- The matrix: each member of the shop, and an outsider, tries each way of
-- starting each workflow on each stage. "ok" or the refusal's SQLSTATE;
-- every attempt is rolled back.
CREATE TEMP TABLE wa_actors (ord int, actor text);
INSERT INTO wa_actors VALUES (1, 'wa-owner'), (2, 'wa-admin'), (3, 'wa-dev'), (4, 'wa-viewer'), (5, 'wa-outsider');
CREATE TEMP TABLE wa_attempts (ord int, attempt text, q text);
INSERT INTO wa_attempts
SELECT row_number() OVER (ORDER BY s.ord, w.ord), w.label || ' ' || s.env, format(w.q, :shop, s.env, :shop_backup, e.id)
  FROM (VALUES (1, 'production'), (2, 'staging'), (3, 'dev')) s(ord, env)
  JOIN ops.environments e ON e.project_id = :shop AND e.name = s.env,
       (VALUES
         (1, 'queue_run build',   'SELECT ops.queue_run(%s, %L, ''abcd01'', ''main'', ''{}'', ''build'')'),
         (2, 'queue_run test',    'SELECT ops.queue_run(%s, %L, ''abcd01'', ''main'', ''{}'', ''test'')'),
         (3, 'queue_run deploy',  'SELECT ops.queue_run(%s, %L, ''abcd01'', ''main'', ''{}'', ''deploy'')'),
         (4, 'queue_run backup',  'SELECT ops.queue_run(%s, %L, NULL, NULL, ''{}'', ''backup'')'),
         (5, 'queue_run restore', 'SELECT ops.queue_run(%s, %L, NULL, NULL, format(''{"backup_id": %s}'', %3$s)::jsonb, ''restore'')'),
         (6, 'queue_run destroy', 'SELECT ops.queue_run(%s, %L, NULL, NULL, ''{}'', ''destroy'')'),
         (7, 'create_backup',     'SELECT ops.create_backup(%s, %L, ''manual'')'),
         (8, 'restore_backup',    'SELECT ops.restore_backup(%3$s, %4$s)'),
         (9, 'destroy_environment', 'SELECT ops.destroy_environment(%s, %L)')
       ) w(ord, label, q);
GRANT SELECT ON wa_actors, wa_attempts TO PUBLIC;
SELECT a.attempt, u.actor, regress.probe(u.actor, a.q) AS result, a.ord, u.ord AS uord
  FROM wa_attempts a, wa_actors u ORDER BY a.ord, u.ord
\crosstabview attempt actor result

-- What an allowed production restore does: it waits for an approval, no run.
SELECT regress.as_user('wa-owner', format('SELECT ops.restore_backup(%s, e.id) FROM ops.environments e WHERE e.project_id = %s AND e.name = ''production''', :shop_backup, :shop)) AS owner_restore;
SELECT r.status, r.run_id IS NULL AS no_run_yet, a.status AS approval
  FROM ops.restores r JOIN ops.approvals a ON a.id = r.approval_id WHERE r.project_id = :shop;

-- Metadata a worker acts on is odooops's to write: a request that names a
-- backup to restore or a release to go back to is refused (OD004) ...
SELECT regress.as_user('wa-owner', format('SELECT ops.queue_run(%s, ''staging'', ''abcd01'', ''main'', ''{"restore_backup_id": %s}'', ''deploy'')', :shop, :shop_backup)) AS named_backup;
SELECT regress.as_user('wa-owner', format('SELECT ops.queue_run(%s, ''staging'', ''abcd01'', ''main'', ''{"rollback_to_release": 1}'', ''deploy'')', :shop)) AS named_release;
SELECT regress.as_user('wa-owner', format('SELECT ops.create_backup(%s, ''dev'', ''manual'', ''{"backup_id": %s}'')', :shop, :other_backup)) AS backup_names_backup;
SELECT regress.as_user('wa-owner', format('SELECT ops.restore_backup(%s, e.id, NULL, ''{"location": "file:///etc/shadow"}'') FROM ops.environments e WHERE e.project_id = %s AND e.name = ''dev''', :shop_backup, :shop)) AS restore_names_location;
-- ... and internal callers cannot reach another project's objects either:
-- the answer is the same as for an id that does not exist.
SELECT replace(regress.err(format('SELECT ops._queue_run_trusted(%s, ''production'', NULL, NULL, ''{"backup_id": %s}'', ''restore'')', :shop, :other_backup)), :'other_backup', 'N') AS other_projects_backup;
SELECT replace(regress.err(format('SELECT ops._queue_run_trusted(%s, ''production'', NULL, NULL, ''{"backup_id": %s}'', ''restore'')', :shop, 999999999)), '999999999', 'N') AS missing_backup;
SELECT replace(regress.err(format('SELECT ops._queue_run_trusted(%s, ''production'', ''abcd01'', ''main'', ''{"restore_backup_id": %s}'', ''deploy'')', :shop, :other_backup)), :'other_backup', 'N') AS other_projects_rollback_backup;
SELECT regress.err(format('SELECT ops._queue_run_trusted(%s, ''production'', NULL, NULL, ''{"backup_id": "1"}'', ''restore'')', :shop)) AS backup_id_as_text;

-- Nothing else was written: no run but the cancelled runs of the two
-- backups, and only the owner's production restore waiting for approval.
SELECT count(*) AS runs_left FROM ops.runs WHERE project_id IN (:shop, :other) AND status <> 'cancelled';
SELECT count(*) AS restores FROM ops.restores WHERE project_id IN (:shop, :other);
