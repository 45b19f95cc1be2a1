-- What a pg_dump of the control plane keeps, and what a pg_restore of it
-- sets off (tests/multiprocess/dump_restore.sh dumps and restores a whole
-- control plane).
--  1. The roles and policies that come with odooops (shipped) are left out
--     of the dump, since CREATE EXTENSION makes them again; only the
--     extension's owner changes them, so no change to one is lost. An
--     administrator's own roles and policies are dumped.
--  2. A row created before the transaction that inserts it (restored from
--     a dump) sets off no approval, webhook or schedule again.
\set SHOW_CONTEXT never
SELECT c.relname, u.cond
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(rel, cond)
  JOIN pg_class c ON c.oid = u.rel
 WHERE e.extname = 'odooops' AND u.cond <> ''
 ORDER BY 1;
SELECT count(*) > 0 AS shipped_policies, bool_and(shipped) AS all_shipped FROM ops.policies
 WHERE role IN ('owner', 'admin', 'developer', 'viewer', 'auditor') AND created_at < now();

-- 1. An administrator neither changes, removes nor adds a shipped row;
-- every refusal changes nothing.
CREATE ROLE dr_admin;
GRANT odooops_admin TO dr_admin;
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
  SELECT md5((SELECT string_agg(r::text, ',' ORDER BY r.name) FROM ops.roles r)
          || (SELECT string_agg(p::text, ',' ORDER BY p.id) FROM ops.policies p))
$$;
SELECT pg_temp.state() AS before \gset
SET ROLE dr_admin;
SELECT regress.err($$UPDATE ops.policies SET stage = 'staging' WHERE role = 'developer' AND permission = 'run.deploy' AND stage = 'development'$$) AS change_policy;
SELECT regress.err($$DELETE FROM ops.policies WHERE role = 'developer' AND permission = 'env.manage' AND stage = 'development'$$) AS remove_policy;
SELECT regress.err($$UPDATE ops.roles SET rank = 55 WHERE name = 'developer'$$) AS change_role;
SELECT regress.err($$DELETE FROM ops.roles WHERE name = 'viewer'$$) AS remove_role;
SELECT regress.err($$INSERT INTO ops.policies (role, permission, stage, shipped) VALUES ('viewer', 'run.build', 'development', true)$$) AS add_shipped;
SELECT regress.err($$UPDATE ops.policies SET shipped = false WHERE role = 'auditor'$$) AS unmark;
RESET ROLE;
SELECT pg_temp.state() = :'before' AS unchanged;
-- Its own role and policies are its to change; they are what a dump keeps.
SET ROLE dr_admin;
INSERT INTO ops.roles (name, rank, description) VALUES ('dr_releaser', 60, 'Deploys production');
INSERT INTO ops.policies (role, permission, stage) VALUES ('dr_releaser', 'run.deploy', 'production');
UPDATE ops.policies SET stage = NULL WHERE role = 'dr_releaser';
RESET ROLE;
SELECT role, permission, coalesce(stage, '*') AS stage, shipped FROM ops.policies WHERE role = 'dr_releaser';
SET ROLE dr_admin;
DELETE FROM ops.roles WHERE name = 'dr_releaser';
RESET ROLE;
SELECT count(*) AS releaser_left FROM ops.policies WHERE role = 'dr_releaser';

-- 2. Rows restored from a dump, inserted as pg_restore does (by the owner,
-- with the creation time they had): a gated production destroy and deploy
-- are taken as they were, with no approval requested again; a schedule
-- keeps its next slot.
INSERT INTO ops.projects (slug, name, settings) VALUES ('dr-shop', 'DR Shop', '{"production_deploy_approval": true}')
RETURNING id AS shop \gset
INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (:shop, 'production', 'production', 'dr_shop_prod')
RETURNING id AS prod \gset
SELECT count(*) AS approvals_before FROM ops.approvals \gset
SELECT count(*) AS deliveries_before FROM ops.webhook_deliveries \gset
INSERT INTO ops.webhook_subscriptions (name, url, project_id) VALUES ('dr', 'https://hooks.example.com/dr', :shop);
-- Times of the dumped rows: some days before this run of the test.
SELECT now() - interval '40 days' AS t0, now() - interval '39 days' AS t1, now() - interval '38 days' AS t2 \gset
INSERT INTO ops.runs (project_id, environment_id, workflow, git_sha, status, available_at, created_at, updated_at, finished_at)
VALUES (:shop, :prod, 'destroy', NULL, 'cancelled', :'t1', :'t0', :'t2', :'t2'),
       (:shop, :prod, 'deploy', 'abcd00', 'queued', 'infinity', :'t0', :'t0', NULL);
SELECT workflow, status, available_at = :'t1' AS kept_available_at,
       available_at = 'infinity' AS held
  FROM ops.runs WHERE environment_id = :prod ORDER BY id;
SELECT count(*) - :approvals_before AS approvals_requested,
       (SELECT count(*) FROM ops.webhook_deliveries) - :deliveries_before AS webhooks_sent
  FROM ops.approvals;
INSERT INTO ops.backup_schedules (environment_id, cron_expr, next_fire_at, created_at, updated_at)
VALUES (:prod, '0 3 * * *', :'t2', :'t0', :'t1');
SELECT next_fire_at = :'t2' AS kept_next_slot, updated_at = :'t1' AS kept_updated_at
  FROM ops.backup_schedules WHERE environment_id = :prod;
-- A run queued now is gated as ever, and announced.
SELECT status, available_at = 'infinity' AS held FROM ops.queue_run(:shop, 'production', 'abcd01', 'main');
SELECT count(*) - :approvals_before AS approvals_requested,
       (SELECT count(*) FROM ops.webhook_deliveries) - :deliveries_before > 0 AS webhook_sent
  FROM ops.approvals;
UPDATE ops.runs SET status = 'cancelled', finished_at = now() WHERE environment_id = :prod AND status = 'queued';
DELETE FROM ops.webhook_subscriptions WHERE project_id = :shop;
DELETE FROM ops.backup_schedules WHERE environment_id = :prod;
DROP ROLE dr_admin;
