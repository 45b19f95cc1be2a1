-- Mail caught outside production: the host worker of an environment that
-- is not production hands messages over, project members read them,
-- developers delete them outside production, retention expires them by
-- age and per-environment count and size.
\set SHOW_CONTEXT never

INSERT INTO ops.projects (slug, name) VALUES ('mailbox', 'Mail tests') RETURNING id AS p \gset
INSERT INTO ops.environments (project_id, name, stage, db_name, host_worker_id)
VALUES (:p, 'prod', 'production', 'mb_prod', 'mail-a'), (:p, 'stage', 'staging', 'mb_stage', 'mail-a'),
       (:p, 'dev', 'development', 'mb_dev', 'mail-a'), (:p, 'elsewhere', 'development', 'mb_elsewhere', 'mail-b');
SELECT id AS stage FROM ops.environments WHERE project_id = :p AND name = 'stage' \gset
SELECT id AS dev FROM ops.environments WHERE project_id = :p AND name = 'dev' \gset
SELECT id AS prod FROM ops.environments WHERE project_id = :p AND name = 'prod' \gset
SELECT id AS elsewhere FROM ops.environments WHERE project_id = :p AND name = 'elsewhere' \gset
INSERT INTO ops.project_members (project_id, user_id, role)
VALUES (:p, 'm-owner', 'owner'), (:p, 'm-dev', 'developer'), (:p, 'm-viewer', 'viewer');

-- The worker's login may hand over mail for the environments it hosts only.
SET client_min_messages = warning;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'odooops_test_mail_worker') THEN
    CREATE ROLE odooops_test_mail_worker;
  END IF;
END $$;
RESET client_min_messages;
GRANT odooops_worker TO odooops_test_mail_worker;
INSERT INTO ops.worker_logins (login, worker_id) VALUES ('odooops_test_mail_worker', 'mail-a');
SET ROLE odooops_test_mail_worker;
SELECT ops.ingest_caught_mail('mail-a', :stage, 'odoo@example.com', '{a@example.com,b@example.com}',
                              'Your order', convert_to(E'Subject: Your order\r\n\r\nThanks', 'UTF8')) > 0 AS stored;
-- production never has its mail caught
SELECT ops.ingest_caught_mail('mail-a', :prod, 'odoo@example.com', '{a@example.com}', 'x', '\x00');
-- another host's environment, another worker's id
SELECT ops.ingest_caught_mail('mail-a', :elsewhere, 'odoo@example.com', '{a@example.com}', 'x', '\x00');
SELECT ops.ingest_caught_mail('mail-b', :elsewhere, 'odoo@example.com', '{a@example.com}', 'x', '\x00');
-- bounds: no recipient, an oversized message, an unknown environment
SELECT ops.ingest_caught_mail('mail-a', :dev, 'odoo@example.com', '{}', 'x', '\x00');
SELECT ops.ingest_caught_mail('mail-a', :dev, 'odoo@example.com', '{a@example.com}', 'x',
                              convert_to(repeat('x', 10485761), 'UTF8'));
SELECT ops.ingest_caught_mail('mail-a', -1, 'odoo@example.com', '{a@example.com}', 'x', '\x00');
-- the worker reads nothing back
SELECT count(*) FROM ops.caught_mails;
SELECT * FROM ops.list_caught_mails(:p, 'stage');
RESET ROLE;
SELECT environment_id = :stage AS in_stage, mail_from, rcpt_to, subject, size_bytes, caught_by
  FROM ops.caught_mails;

-- Members read their project's boxes; anybody else finds nothing.
SELECT regress.probe('m-viewer', format('SELECT * FROM ops.list_caught_mails(%s, ''stage'')', :p)) AS viewer_lists,
       regress.probe('m-viewer', format('SELECT * FROM ops.list_caught_mails(%s, ''dev'')', :p)) AS dev_box_empty,
       regress.probe('stranger', format('SELECT * FROM ops.list_caught_mails(%s, ''stage'')', :p)) AS stranger_lists,
       regress.probe('m-viewer', format('SELECT * FROM ops.list_caught_mails(%s, ''stage'', 0)', :p)) AS zero_rows;
SELECT id AS m1 FROM ops.caught_mails \gset
SELECT regress.probe('m-viewer', format('SELECT * FROM ops.get_caught_mail(%s)', :m1)) AS viewer_reads,
       regress.probe('stranger', format('SELECT * FROM ops.get_caught_mail(%s)', :m1)) AS stranger_reads,
       regress.probe('m-viewer', 'SELECT * FROM ops.get_caught_mail(-1)') AS missing,
       regress.probe('m-viewer', 'SELECT * FROM ops.caught_mails') AS table_is_private;
SELECT environment, mail_from, subject, convert_from(raw, 'UTF8') AS raw FROM ops.get_caught_mail(:m1);

-- Developers delete outside production; viewers never; owners anywhere.
SELECT regress.probe('m-viewer', format('SELECT ops.delete_caught_mails(%s, ''stage'')', :p)) AS viewer_deletes,
       regress.probe('m-dev', format('SELECT ops.delete_caught_mails(%s, ''prod'')', :p)) AS dev_deletes_prod,
       regress.probe('m-owner', format('SELECT ops.delete_caught_mails(%s, ''prod'')', :p)) AS owner_deletes_prod,
       regress.probe('m-dev', format('SELECT ops.delete_caught_mails(%s, ''stage'', ''{%s}'')', :p, :m1)) AS dev_deletes_stage;
-- an id of another environment is not deleted through this one
SELECT ops.delete_caught_mails(:p, 'dev', ARRAY[:m1]::bigint[]) AS deleted_via_dev;
SELECT ops.delete_caught_mails(:p, 'stage', ARRAY[:m1]::bigint[]) AS deleted;
SELECT count(*) AS left_in_stage FROM ops.caught_mails WHERE environment_id = :stage;

-- Retention: age first, then each box's newest N messages and B bytes.
INSERT INTO ops.caught_mails (project_id, environment_id, mail_from, rcpt_to, subject, raw, size_bytes, caught_by, caught_at)
SELECT :p, e, 'o@example.com', '{r@example.com}', 'm' || g, convert_to(repeat('x', 100), 'UTF8'), 100, 'mail-a',
       now() - make_interval(days => CASE WHEN g = 1 THEN 8 ELSE 0 END)
  FROM unnest(ARRAY[:stage, :dev]) e, generate_series(1, 5) g;
SELECT ops.expire_caught_mails(7 * 86400, 1000, 1000000) AS too_old;
SELECT ops.expire_caught_mails(7 * 86400, 3, 1000000) AS over_count;
SELECT ops.expire_caught_mails(7 * 86400, 3, 250) AS over_size;
SELECT e.name, string_agg(m.subject, ',' ORDER BY m.id) AS kept
  FROM ops.caught_mails m JOIN ops.environments e ON e.id = m.environment_id GROUP BY e.name ORDER BY e.name;
SELECT ops.expire_caught_mails(0, 3, 250);
DELETE FROM ops.caught_mails;
DELETE FROM ops.worker_logins WHERE login = 'odooops_test_mail_worker';
