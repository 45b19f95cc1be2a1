-- Upgrades tried before they happen: deploy plans (a build run with
-- metadata.mode plan) and upgrade tests (a test run with metadata.mode
-- upgrade_test on a copy of production's latest backup). Who may queue
-- them, what they name, and bad input refused with nothing changed.
\set SHOW_CONTEXT never
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
END $$;
SET client_min_messages = warning;  -- the grant may exist from an earlier test
GRANT odooops_api TO authenticated;
RESET client_min_messages;

INSERT INTO ops.projects (slug, name, repo_url, production_branch)
VALUES ('upgr', 'Upgrades', 'https://example.com/upgr.git', 'main') RETURNING id AS p \gset
INSERT INTO ops.projects (slug, name, repo_url) VALUES ('upgr-other', 'Other', 'https://example.com/other.git')
RETURNING id AS other \gset
INSERT INTO ops.environments (project_id, name, stage, db_name, branch_pattern)
VALUES (:p, 'prod', 'production', 'upgr_prod', 'main'), (:p, 'stage', 'staging', 'upgr_stage', 'staging'),
       (:other, 'prod', 'production', 'upgr_other_prod', 'main');
SELECT id AS prod FROM ops.environments WHERE db_name = 'upgr_prod' \gset
SELECT id AS other_prod FROM ops.environments WHERE db_name = 'upgr_other_prod' \gset
INSERT INTO ops.project_members (project_id, user_id, role)
VALUES (:p, 'u-owner', 'owner'), (:p, 'u-admin', 'admin'), (:p, 'u-dev', 'developer'), (:p, 'u-viewer', 'viewer'),
       (:other, 'o-owner', 'owner');

CREATE FUNCTION pg_temp.backup(env_id bigint, tag text, age interval, with_filestore boolean DEFAULT true)
RETURNS bigint LANGUAGE sql AS $$
  INSERT INTO ops.backups (project_id, environment_id, backup_type, status, location, size_bytes, sha256,
                           metadata, created_at, completed_at)
  SELECT e.project_id, e.id, 'manual', 'completed', 'file:///s/backups/x/' || tag || '/db.dump', 1, repeat('a', 64),
         CASE WHEN with_filestore THEN jsonb_build_object('backup', jsonb_build_object('filestore', jsonb_build_object(
           'location', 'file:///s/backups/x/' || tag || '/filestore.tar', 'size_bytes', 1,
           'sha256', repeat('b', 64)))) ELSE '{}' END,
         now() - age, now() - age
    FROM ops.environments e WHERE e.id = env_id
  RETURNING id
$$;
CREATE FUNCTION pg_temp.runs() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM ops.runs $$;

-- 1. An upgrade test needs a completed backup of production with both
-- checksums: none yet, then one without a filestore checksum.
SELECT regress.probe('u-owner', format('SELECT ops.queue_upgrade_test(%s, ''prod'')', :p)) AS no_backup;
SELECT pg_temp.backup(:prod, 'old', '2 days') AS b_old \gset
SELECT pg_temp.backup(:prod, 'nofs', '1 hour', false) AS b_nofs \gset
SELECT pg_temp.backup(:other_prod, 'other', '1 minute') AS b_other \gset

-- 2. Who may queue one: owners and admins of the project; not developers,
-- viewers, strangers or another project's owner (who finds nothing).
SELECT regress.probe('u-owner', format('SELECT ops.queue_upgrade_test(%s, ''prod'')', :p)) AS owner,
       regress.probe('u-admin', format('SELECT ops.queue_upgrade_test(%s, ''prod'')', :p)) AS admin,
       regress.probe('u-dev', format('SELECT ops.queue_upgrade_test(%s, ''prod'')', :p)) AS developer,
       regress.probe('u-viewer', format('SELECT ops.queue_upgrade_test(%s, ''prod'')', :p)) AS viewer,
       regress.probe('stranger', format('SELECT ops.queue_upgrade_test(%s, ''prod'')', :p)) AS stranger,
       regress.probe('o-owner', format('SELECT ops.queue_upgrade_test(%s, ''prod'')', :p)) AS other_owner;

-- 3. Queued by the owner: a test run on production's newest backup with
-- both checksums (not the newer one without a filestore checksum, not
-- another project's), on the production branch by default.
SELECT set_config('request.jwt.claims', '{"sub": "u-owner", "role": "authenticated"}', false) IS NOT NULL AS as_owner;
SELECT id AS t1 FROM ops.queue_upgrade_test(:p, 'prod') \gset
RESET request.jwt.claims;
SELECT workflow, status, git_ref, metadata ->> 'mode' AS mode, (metadata ->> 'backup_id')::bigint = :b_old AS on_old_backup,
       requested_by, exclusive
  FROM ops.runs WHERE id = :t1;
SELECT action, subject, payload ->> 'environment' AS env FROM ops.audit_log WHERE subject_id = :t1 AND action = 'upgrade.test';

-- 4. Bad input: nothing queued, each with its SQLSTATE.
SELECT pg_temp.runs() AS runs_before \gset
\set VERBOSITY sqlstate
SELECT ops.queue_upgrade_test(:p, 'stage');                    -- not production
SELECT ops.queue_upgrade_test(:p, 'nope');                     -- no such environment
SELECT ops.queue_upgrade_test(:p, repeat('x', 300));           -- too long
SELECT ops.queue_upgrade_test(:p, 'prod', 'not-hex');          -- not a revision
SELECT ops.queue_upgrade_test(:other + 1000, 'prod');          -- no such project
\set VERBOSITY default
SELECT pg_temp.runs() - :runs_before AS queued_by_bad_input;

-- 5. A request never sets the mode: a developer's queue_run with a mode is
-- refused, so a deploy plan or an upgrade test is only what odooops queues.
\set VERBOSITY sqlstate
SELECT ops.queue_run(:p, 'stage', 'abcdef1', NULL, '{"mode": "upgrade_test"}', 'test');
SELECT ops.queue_run(:p, 'stage', 'abcdef1', NULL, '{"mode": "plan"}', 'build');
\set VERBOSITY default
SELECT pg_temp.runs() - :runs_before AS queued_with_a_mode;

-- 6. Deploy plans: run.build on the environment (developers plan staging,
-- not production), a revision required, another project's deploy run not
-- reachable.
SELECT regress.probe('u-dev', format('SELECT ops.queue_deploy_plan(%s, ''stage'', ''abcdef1'')', :p)) AS dev_stage,
       regress.probe('u-dev', format('SELECT ops.queue_deploy_plan(%s, ''prod'', ''abcdef1'')', :p)) AS dev_prod,
       regress.probe('u-viewer', format('SELECT ops.queue_deploy_plan(%s, ''stage'', ''abcdef1'')', :p)) AS viewer,
       regress.probe('u-owner', format('SELECT ops.queue_deploy_plan(%s, ''prod'', ''abcdef1'')', :p)) AS owner_prod,
       regress.probe('o-owner', format('SELECT ops.queue_deploy_plan(%s, ''prod'', ''abcdef1'')', :p)) AS other_owner;
SELECT id AS d1 FROM ops.queue_run(:p, 'prod', 'abcdef1234', 'main') \gset
SELECT id AS other_deploy FROM ops.queue_run(:other, 'prod', 'abcdef9999', 'main') \gset
SELECT pg_temp.runs() AS runs_before \gset
\set VERBOSITY sqlstate
SELECT ops.queue_deploy_plan(:p, 'prod');                                      -- no revision
SELECT ops.queue_deploy_plan(:p, 'prod', NULL, NULL, :other_deploy);           -- another project's run
SELECT ops.queue_deploy_plan(:p, 'prod', NULL, NULL, :t1);                     -- not a deploy
SELECT ops.queue_deploy_plan(:p, 'stage', NULL, NULL, :d1);                    -- another environment's deploy
SELECT ops.queue_deploy_plan(:p, 'prod', repeat('a', 65));                     -- not a revision
\set VERBOSITY default
SELECT pg_temp.runs() - :runs_before AS queued_by_bad_input;
-- The plan of a deploy: same environment and revision, shown with it.
SELECT id AS pl FROM ops.queue_deploy_plan(:p, 'prod', NULL, NULL, :d1) \gset
SELECT workflow, git_sha, git_ref, metadata ->> 'mode' AS mode, (metadata ->> 'plan_for_run')::bigint = :d1 AS for_d1
  FROM ops.runs WHERE id = :pl;
SELECT ops.deploy_plan(:d1) - 'plan_run_id' AS before_it_ran, (ops.deploy_plan(:d1) ->> 'plan_run_id')::bigint = :pl AS names_plan;
-- once a worker finished it, its result is the plan
UPDATE ops.runs SET status = 'succeeded', finished_at = now(), attempt = 1, claimed_by = 'w', claimed_at = now(),
                    started_at = now(),
                    result = '{"plan": {"install": ["acme_new"], "update": ["acme_sale"], "removed": []}}'
 WHERE id = :pl;
SELECT ops.deploy_plan(:d1) -> 'plan' AS plan, ops.deploy_plan(:d1) ->> 'status' AS status;
SELECT ops.deploy_plan(:t1) AS no_plan_for_a_test;
SELECT regress.probe('u-viewer', format('SELECT ops.deploy_plan(%s)', :d1)) AS viewer_reads,
       regress.probe('o-owner', format('SELECT ops.deploy_plan(%s)', :d1)) AS other_owner_reads;

-- 7. Production upgrades: upgrade.run (owners and admins), production
-- only, always held for another member's approval.
SELECT regress.probe('u-dev', format('SELECT ops.request_upgrade(%s, ''prod'')', :p)) AS developer,
       regress.probe('u-viewer', format('SELECT ops.request_upgrade(%s, ''prod'')', :p)) AS viewer,
       regress.probe('o-owner', format('SELECT ops.request_upgrade(%s, ''prod'')', :p)) AS other_owner,
       regress.probe('u-admin', format('SELECT ops.request_upgrade(%s, ''prod'')', :p)) AS admin;
SELECT pg_temp.runs() AS runs_before \gset
\set VERBOSITY sqlstate
SELECT ops.request_upgrade(:p, 'stage');                        -- not production
SELECT ops.request_upgrade(:p, 'prod', 'xyz');                  -- not a revision
SELECT ops.request_upgrade(:p, NULL);                           -- no environment
\set VERBOSITY default
SELECT pg_temp.runs() - :runs_before AS queued_by_bad_input;
SELECT set_config('request.jwt.claims', '{"sub": "u-owner", "role": "authenticated"}', false) IS NOT NULL AS as_owner;
SELECT id AS u1 FROM ops.request_upgrade(:p, 'prod') \gset
RESET request.jwt.claims;
SELECT workflow, status, git_ref, metadata ->> 'mode' AS mode, available_at = 'infinity' AS held, exclusive
  FROM ops.runs WHERE id = :u1;
SELECT subject, status, requested_by FROM ops.approvals WHERE subject_id = :u1 AND subject = 'deploy';
-- the requester cannot approve it; another owner or admin can
SELECT id AS a1 FROM ops.approvals WHERE subject_id = :u1 AND subject = 'deploy' \gset
SELECT regress.probe('u-owner', format('SELECT ops.decide_approval(%s, ''approved'')', :a1)) AS own_request,
       regress.probe('u-dev', format('SELECT ops.decide_approval(%s, ''approved'')', :a1)) AS developer,
       regress.probe('u-admin', format('SELECT ops.decide_approval(%s, ''approved'')', :a1)) AS admin;

-- 8. A production deploy that waits for its approval has its plan queued
-- with it, for the same environment and revision, shown with the deploy
-- while it runs and once it ran. A deploy that does not wait (staging) and
-- a production upgrade have none. Another project's owner reads neither
-- the plan nor the approval. A requester allowed to deploy but not to
-- build (as the ingest of a push) gets the plan all the same: it is
-- odooops's own part of the deploy, not the requester's build.
UPDATE ops.projects SET settings = settings || '{"production_deploy_approval": true}' WHERE id = :p;
SELECT pg_temp.runs() AS runs_before \gset
SELECT set_config('request.jwt.claims', '{"sub": "u-admin", "role": "authenticated"}', false) IS NOT NULL AS as_admin;
SET ROLE authenticated;
SELECT id AS d2 FROM ops.queue_run(:p, 'prod', 'abcdef5678', 'main') \gset
SELECT id AS s1 FROM ops.queue_run(:p, 'stage', 'abcdef5678', 'staging') \gset
SELECT id AS u2 FROM ops.request_upgrade(:p, 'prod') \gset
RESET ROLE;
RESET request.jwt.claims;
SELECT pg_temp.runs() - :runs_before AS queued;   -- the deploys, the upgrade and one plan
SELECT id AS pl2 FROM ops.runs WHERE metadata ->> 'plan_for_run' = :'d2' \gset
SELECT workflow, status, git_sha, git_ref, metadata ->> 'mode' AS mode, requested_by, available_at < 'infinity' AS claimable
  FROM ops.runs WHERE id = :pl2;
SELECT a.status AS approval, r.status AS deploy, r.available_at = 'infinity' AS held
  FROM ops.approvals a JOIN ops.runs r ON r.id = a.subject_id WHERE a.subject = 'deploy' AND a.subject_id = :d2;
SELECT ops.deploy_plan(:d2) - 'plan_run_id' AS while_it_runs,
       (ops.deploy_plan(:d2) ->> 'plan_run_id')::bigint = :pl2 AS names_plan,
       ops.deploy_plan(:s1) AS staging_deploy, ops.deploy_plan(:u2) AS upgrade;
SELECT actor, action, payload ->> 'for_run' = :'d2' AS for_d2 FROM ops.audit_log WHERE subject_id = :pl2 AND action = 'plan.queue';
UPDATE ops.runs SET status = 'succeeded', finished_at = now(), attempt = 1, claimed_by = 'w', claimed_at = now(),
                    started_at = now(), result = '{"plan": {"install": ["acme_new"], "update": [], "removed": []}}'
 WHERE id = :pl2;
SELECT ops.deploy_plan(:d2) -> 'plan' AS plan, ops.deploy_plan(:d2) ->> 'status' AS status;
SELECT regress.probe('u-viewer', format('SELECT ops.deploy_plan(%s)', :d2)) AS viewer_reads,
       regress.probe('o-owner', format('SELECT ops.deploy_plan(%s)', :d2)) AS other_owner_reads,
       regress.probe('o-owner', format('SELECT 1 FROM ops.runs WHERE id = %s', :pl2)) AS other_owner_sees_plan_run,
       regress.probe('o-owner', format('SELECT 1 FROM ops.approvals WHERE subject_id = %s', :d2)) AS other_owner_sees_approval;
-- a developer allowed to deploy production but not to build there
INSERT INTO ops.env_permissions (environment_id, user_id, permission, effect) VALUES (:prod, 'u-dev', 'run.deploy', 'allow');
SELECT pg_temp.runs() AS runs_before \gset
SELECT set_config('request.jwt.claims', '{"sub": "u-dev", "role": "authenticated"}', false) IS NOT NULL AS as_dev;
SET ROLE authenticated;
SELECT id AS d3 FROM ops.queue_run(:p, 'prod', 'abcdef9abc', 'main') \gset
RESET ROLE;
RESET request.jwt.claims;
SELECT pg_temp.runs() - :runs_before AS queued;   -- the deploy and its plan
SELECT r.status, r.available_at = 'infinity' AS held, a.status AS approval
  FROM ops.runs r JOIN ops.approvals a ON a.subject = 'deploy' AND a.subject_id = r.id WHERE r.id = :d3;
SELECT ops.deploy_plan(:d3) ->> 'status' AS plan_status, ops.deploy_plan(:d3) ->> 'git_sha' AS plan_sha,
       (SELECT requested_by FROM ops.runs WHERE id = (ops.deploy_plan(:d3) ->> 'plan_run_id')::bigint) AS plan_requested_by;
-- the developer still cannot plan production deploys of their own
SELECT regress.probe('u-dev', format('SELECT ops.queue_deploy_plan(%s, ''prod'', ''abcdef9abc'')', :p)) AS dev_plans_prod;
DELETE FROM ops.env_permissions WHERE environment_id = :prod AND user_id = 'u-dev';
UPDATE ops.projects SET settings = settings - 'production_deploy_approval' WHERE id = :p;
