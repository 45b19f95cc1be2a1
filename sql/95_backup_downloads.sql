-- Backups users can use: the operator's manual-backup limit per environment
-- and day (settings may lower it, never raise it), and time-limited
-- download links that a member asks for and a worker signs.
\set SHOW_CONTEXT never

INSERT INTO ops.projects (slug, name) VALUES ('dl-shop', 'Download tests') RETURNING id AS p \gset
INSERT INTO ops.projects (slug, name) VALUES ('dl-other', 'Another project') RETURNING id AS q \gset
INSERT INTO ops.environments (project_id, name, stage, db_name)
VALUES (:p, 'prod', 'production', 'dl_prod'), (:p, 'dev', 'development', 'dl_dev'),
       (:q, 'prod', 'production', 'dl_other_prod');
SELECT id AS prod FROM ops.environments WHERE project_id = :p AND name = 'prod' \gset
SELECT id AS dev FROM ops.environments WHERE project_id = :p AND name = 'dev' \gset
SELECT id AS other_prod FROM ops.environments WHERE project_id = :q AND name = 'prod' \gset
INSERT INTO ops.project_members (project_id, user_id, role)
VALUES (:p, 'd-owner', 'owner'), (:p, 'd-dev', 'developer'), (:p, 'd-viewer', 'viewer'),
       (:q, 'o-owner', 'owner');

-- 1. Manual backups per environment and 24 hours: odooops.manual_backups_per_day
SHOW odooops.manual_backups_per_day;
SELECT ops.manual_backups_per_day('{}') AS default_limit,
       ops.manual_backups_per_day('{"manual_backups_per_day": 2}') AS lowered,
       ops.manual_backups_per_day('{"manual_backups_per_day": 500}') AS not_raised,
       ops.manual_backups_per_day('{"manual_backups_per_day": "lots"}') AS garbage_ignored;
-- only a superuser sets it; a developer neither sets it nor raises it through settings
SELECT regress.as_user('d-dev', 'SET odooops.manual_backups_per_day = 100') AS dev_sets_guc;
SELECT regress.as_user('d-dev', format($$UPDATE ops.environments SET settings = '{"manual_backups_per_day": 100}' WHERE id = %s$$, :dev))
       AS dev_writes_setting;
SELECT settings FROM ops.environments WHERE id = :dev;
SET odooops.manual_backups_per_day = 2;
SELECT count(*) AS first FROM ops.create_backup(:p, 'dev', 'manual');
SELECT count(*) AS second FROM ops.create_backup(:p, 'dev', 'manual');
SELECT count(*) AS runs_before FROM ops.runs WHERE environment_id = :dev \gset
SELECT regress.err(format($$SELECT ops.create_backup(%s, 'dev', 'manual')$$, :p)) AS third;
SELECT regress.as_user('d-dev', format($$SELECT ops.create_backup(%s, 'dev', 'manual')$$, :p)) AS third_as_dev;
SELECT count(*) - :runs_before AS runs_queued_by_refusals,
       (SELECT count(*) FROM ops.backups WHERE environment_id = :dev) AS backups
  FROM ops.runs WHERE environment_id = :dev;
-- other types do not count, and are not limited
SELECT count(*) AS daily_allowed FROM ops.create_backup(:p, 'dev', 'daily');
-- 0 allows none
SET odooops.manual_backups_per_day = 0;
SELECT regress.err(format($$SELECT ops.create_backup(%s, 'prod', 'manual')$$, :p)) AS none_allowed;
RESET odooops.manual_backups_per_day;

-- 2. Download links. A completed backup of production and one of the other project.
INSERT INTO ops.backups (project_id, environment_id, backup_type, status, location, size_bytes, sha256,
                         metadata, completed_at)
VALUES (:p, :prod, 'daily', 'completed', 's3://bucket/root/backups/dl-shop/prod/1/db.dump', 10, repeat('a', 64),
        '{"backup": {"filestore": {"location": "s3://bucket/root/backups/dl-shop/prod/1/filestore.tar"}}}', now())
RETURNING id AS b1 \gset
INSERT INTO ops.backups (project_id, environment_id, backup_type, status, location, size_bytes, sha256, completed_at)
VALUES (:q, :other_prod, 'daily', 'completed', 'file:///srv/backups/backups/dl-other/prod/1/db.dump', 10,
        repeat('b', 64), now())
RETURNING id AS b2 \gset
SELECT backup_id AS pending_backup FROM ops.create_backup(:p, 'prod', 'weekly') \gset

-- who may ask: owners and admins anywhere, developers outside production
SELECT regress.probe('d-viewer', format('SELECT ops.request_backup_download(%s)', :b1)) AS viewer,
       regress.probe('d-dev', format('SELECT ops.request_backup_download(%s)', :b1)) AS dev_production,
       regress.probe('o-owner', format('SELECT ops.request_backup_download(%s)', :b1)) AS other_project,
       regress.probe('o-owner', 'SELECT ops.request_backup_download(-1)') AS missing,
       regress.probe(NULL, format('SELECT ops.request_backup_download(%s)', :b1)) AS anonymous;
-- bad input changes nothing
SELECT regress.as_user('d-owner', format($$SELECT ops.request_backup_download(%s, '30 seconds')$$, :b1)) AS too_short,
       regress.as_user('d-owner', format($$SELECT ops.request_backup_download(%s, '25 hours')$$, :b1)) AS too_long,
       regress.as_user('d-owner', format($$SELECT ops.request_backup_download(%s, NULL)$$, :b1)) AS no_ttl,
       regress.as_user('d-owner', format($$SELECT ops.request_backup_download(%s)$$, :pending_backup)) AS not_completed;
SELECT count(*) AS requests FROM ops.backup_downloads;

SELECT regress.as_user('d-owner', format($$SELECT ops.request_backup_download(%s, '2 hours')$$, :b1)) AS owner_asks;
SELECT regress.as_user('o-owner', format($$SELECT ops.request_backup_download(%s)$$, :b2)) AS other_asks;
SELECT id AS d1 FROM ops.backup_downloads WHERE backup_id = :b1 \gset
SELECT id AS d2 FROM ops.backup_downloads WHERE backup_id = :b2 \gset
SELECT backup_id = :b1 AS backup, requested_by, ttl_seconds, status, url FROM ops.backup_downloads WHERE id = :d1;
SELECT actor, action, subject, subject_id = :b1 AS backup, payload ->> 'ttl_seconds' AS ttl
  FROM ops.audit_log WHERE action = 'backup.download_requested' AND project_id = :p;
-- the request and its link are the requester's: other members see nothing
SELECT regress.probe('d-owner', 'SELECT * FROM ops.backup_downloads') AS requester_sees,
       regress.probe('d-viewer', 'SELECT * FROM ops.backup_downloads') AS member_sees,
       regress.probe('o-owner', format('SELECT * FROM ops.backup_downloads WHERE id = %s', :d1)) AS other_project_sees;

-- A worker signs what lies in its storage only.
SET client_min_messages = warning;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'odooops_test_dl_worker') THEN
    CREATE ROLE odooops_test_dl_worker;
  END IF;
END $$;
RESET client_min_messages;
GRANT odooops_worker TO odooops_test_dl_worker;
INSERT INTO ops.worker_logins (login, worker_id) VALUES ('odooops_test_dl_worker', 'dl-w1'), ('odooops_test_dl_worker', 'dl-w2');
SET ROLE odooops_test_dl_worker;
SELECT regress.err($$SELECT * FROM ops.claim_backup_downloads('dl-w9', 's3://bucket/root')$$) AS not_my_worker_id;
SELECT regress.err($$SELECT * FROM ops.claim_backup_downloads('dl-w1', 'https://bucket/root')$$) AS not_storage;
SELECT count(*) AS other_storage FROM ops.claim_backup_downloads('dl-w1', 's3://bucket/roo');
SELECT download_id = :d1 AS d1, backup_id = :b1 AS b1, project_slug, location, filestore_location, ttl_seconds
  FROM ops.claim_backup_downloads('dl-w1', 's3://bucket/root/');
SELECT count(*) AS claimed_again FROM ops.claim_backup_downloads('dl-w2', 's3://bucket/root');
-- only the claiming worker finishes; links are http(s) and expire within the ttl
SELECT regress.err(format($$SELECT ops.finish_backup_download(%s, 'dl-w2', 'https://x/y', NULL, now() + interval '1 hour')$$, :d1)) AS other_worker;
SELECT regress.err(format($$SELECT ops.finish_backup_download(%s, 'dl-w1', 'file:///etc/passwd', NULL, now() + interval '1 hour')$$, :d1)) AS not_http;
SELECT regress.err(format($$SELECT ops.finish_backup_download(%s, 'dl-w1', 'https://x/y', NULL, now() + interval '3 hours')$$, :d1)) AS too_late;
SELECT regress.err(format($$SELECT ops.finish_backup_download(%s, 'dl-w1', 'https://x/y', NULL, NULL)$$, :d1)) AS no_expiry;
SELECT status, url FROM ops.finish_backup_download(:d1, 'dl-w1', 'https://s3.example/bucket/root/db.dump?X-Amz-Signature=1',
                                                   'https://s3.example/bucket/root/filestore.tar?X-Amz-Signature=2',
                                                   now() + interval '2 hours');
SELECT regress.err(format($$SELECT ops.finish_backup_download(%s, 'dl-w1', 'https://x/y', NULL, now())$$, :d1)) AS finished_twice;
SELECT download_id = :d2 AS d2 FROM ops.claim_backup_downloads('dl-w2', 'file:///srv/backups');
SELECT status, error FROM ops.finish_backup_download(:d2, 'dl-w2', NULL, NULL, NULL, 'no file:// listener');
-- the worker reads no link back
SELECT regress.err('SELECT * FROM ops.backup_downloads') AS worker_reads;
RESET ROLE;

SELECT regress.probe('d-owner', format('SELECT * FROM ops.backup_downloads WHERE status = ''ready'' AND url LIKE ''https://%%'' AND filestore_url IS NOT NULL AND id = %s', :d1)) AS requester_reads_link;
-- a member who leaves the project loses the link
INSERT INTO ops.project_members (project_id, user_id, role) VALUES (:p, 'd-admin', 'admin');
SELECT regress.as_user('d-admin', format($$SELECT ops.request_backup_download(%s)$$, :b1)) AS admin_asks;
SELECT regress.probe('d-admin', 'SELECT * FROM ops.backup_downloads') AS admin_sees;
DELETE FROM ops.project_members WHERE project_id = :p AND user_id = 'd-admin';
SELECT regress.probe('d-admin', 'SELECT * FROM ops.backup_downloads') AS former_member_sees;

-- at most 10 requests of a project wait at once (the admin's is one)
SELECT regress.as_user('d-owner', format($$SELECT ops.request_backup_download(%s) FROM generate_series(1, 9)$$, :b1)) AS nine;
SELECT regress.as_user('d-owner', format($$SELECT ops.request_backup_download(%s)$$, :b1)) AS eleventh;
SELECT count(*) AS waiting FROM ops.backup_downloads WHERE status = 'pending' AND project_id = :p;
