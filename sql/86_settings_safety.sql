-- Environment and project settings cannot point odooops at things it must
-- not touch: an environment's database is never the control plane's, a
-- system database, another environment's (of any project, destroyed or not)
-- or one of the worker's temporary copies; executables, paths and the
-- runtime come from the operator's runtime profiles, never from settings a
-- developer edits; repository URLs use the transports the operator allows;
-- a GitHub repository belongs to one project. Every refusal has a message
-- and an SQLSTATE, and changes nothing.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP DATABASE IF EXISTS ss_existing_app;
DROP ROLE IF EXISTS ss_platform_admin;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
END $$;
GRANT odooops_api TO authenticated;
RESET client_min_messages;
-- A database on this server that belongs to something else.
CREATE DATABASE ss_existing_app;
-- A platform administrator (odooops_admin) who is not the operator.
CREATE ROLE ss_platform_admin NOLOGIN;
GRANT odooops_admin TO ss_platform_admin;
-- The default transports, whatever the cluster running the suite allows.
SET odooops.repo_url_schemes = 'https,ssh';

INSERT INTO ops.projects (slug, name, repo_full_name) VALUES ('ss-shop', 'SS Shop', 'ss-acme/shop')
RETURNING id AS shop \gset
INSERT INTO ops.projects (slug, name) VALUES ('ss-other', 'SS Other') RETURNING id AS other \gset
INSERT INTO ops.project_members (project_id, user_id, role) VALUES
  (:shop, 'ss-owner', 'owner'), (:shop, 'ss-dev', 'developer'), (:other, 'ss-other-owner', 'owner');
INSERT INTO ops.environments (project_id, name, stage, db_name, branch_pattern) VALUES
  (:shop, 'production', 'production', 'ss_shop_prod', 'main'),
  (:shop, 'dev', 'development', 'ss_shop_dev', 'feature/*'),
  (:other, 'production', 'production', 'ss_other_prod', 'main');
INSERT INTO ops.environments (project_id, name, stage, db_name, status, destroyed_at)
VALUES (:other, 'old', 'development', 'ss_other_old', 'destroyed', now());
SELECT id AS shop_dev FROM ops.environments WHERE project_id = :shop AND name = 'dev' \gset

-- What the refusals below must leave as it is.
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
  SELECT md5((SELECT string_agg(to_jsonb(p)::text, ',' ORDER BY p.id) FROM ops.projects p)
             || (SELECT string_agg(to_jsonb(e)::text, ',' ORDER BY e.id) FROM ops.environments e))
$$;
SELECT pg_temp.state() AS before \gset

-- 1. db_name. A developer may create development environments (env.manage):
-- not on the control plane's database, a system database, another
-- project's database (live or destroyed), a database that exists on this
-- server, a temporary copy's name, or a name outside the pattern.
SELECT q, regress.as_user('ss-dev', format(
         'INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (%s, %L, ''development'', %L)',
         :shop, 'x' || n, q)) AS outcome
  FROM unnest(ARRAY[current_database()::text, 'postgres', 'template0', 'template1', 'ss_other_prod',
                    'ss_other_old', 'ss_existing_app', 'ss_shop_prod_pre_42', 'ss_shop_prod_restore_7',
                    'ss_shop_dev_test_3', 'ss_shop_stage_seed_12', 'SS_Shop', 'ss-shop-x', '_ss_shop', 'x', 'ss shop',
                    repeat('s', 64)]) WITH ORDINALITY AS t(q, n);
-- The same refusals for the platform administrator and the superuser
-- (names of existing databases aside: the operator may adopt one).
SET ROLE ss_platform_admin;
SELECT q, regress.err(format(
         'INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (%s, %L, ''development'', %L)',
         :shop, 'a' || n, q)) AS as_platform_admin
  FROM unnest(ARRAY[current_database()::text, 'postgres', 'ss_other_old', 'ss_existing_app', 'ss_shop_dev_test_3']) WITH ORDINALITY AS t(q, n);
RESET ROLE;
SELECT q, regress.err(format(
         'INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (%s, %L, ''development'', %L)',
         :shop, 's' || n, q)) AS as_superuser
  FROM unnest(ARRAY[current_database()::text, 'template1', 'ss_other_old', 'ss_shop_dev_test_3']) WITH ORDINALITY AS t(q, n);
-- Nobody but the operator changes an environment's database: not a
-- developer (no column privilege), not a platform administrator.
SELECT regress.as_user('ss-dev', format('UPDATE ops.environments SET db_name = ''ss_shop_dev2'' WHERE id = %s', :shop_dev)) AS dev_renames;
SELECT regress.as_user('ss-owner', format('UPDATE ops.environments SET db_name = ''ss_shop_dev2'' WHERE id = %s', :shop_dev)) AS owner_renames;
SET ROLE ss_platform_admin;
SELECT regress.err(format('UPDATE ops.environments SET db_name = ''ss_other_prod2'' WHERE id = %s', :shop_dev)) AS admin_renames;
SELECT regress.err(format('UPDATE ops.environments SET db_name = %L WHERE id = %s', current_database(), :shop_dev)) AS admin_points_at_control_plane;
RESET ROLE;
SELECT pg_temp.state() = :'before' AS nothing_changed;

-- Names GitHub ingest derives are accepted (a project slug may start with a
-- digit; branch slugs become lowercase letters, digits and underscores).
SELECT regress.as_user('ss-dev', format(
         'INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (%s, ''dev-fix-it'', ''development'', %L)',
         :shop, replace(left('1-ss-shop', 20) || '_' || ops.branch_slug('feature/Fix-It', 40), '-', '_'))) AS ingest_style_name;
SELECT name, db_name FROM ops.environments WHERE project_id = :shop AND name = 'dev-fix-it';
DELETE FROM ops.environments WHERE project_id = :shop AND name = 'dev-fix-it';
-- The operator may rename a database and attach an environment to an
-- existing one (a migration).
BEGIN;
UPDATE ops.environments SET db_name = 'ss_existing_app' WHERE id = :shop_dev RETURNING name, db_name;
ROLLBACK;

-- 2. Executables, paths and the runtime are not settings. What a worker
-- used to take from an environment's settings (odoo_bin, odoo_addons,
-- odoo_image, runtime, repo_url, docker_db_host) is refused, in environment
-- and project settings, whoever writes it.
SELECT k, regress.as_user('ss-dev', format(
         'UPDATE ops.environments SET settings = settings || jsonb_build_object(%L, %L) WHERE id = %s',
         k, v, :shop_dev)) AS dev_sets
  FROM (VALUES ('odoo_bin', '/bin/sh'), ('odoo_addons', '/etc,/root'), ('odoo_image', 'evil/odoo:latest'),
               ('runtime', '../../../../tmp/evil'), ('repo_url', '/srv/other-project.git'),
               ('docker_db_host', 'db.evil.example')) AS s(k, v);
SELECT regress.as_user('ss-dev', format(
         'INSERT INTO ops.environments (project_id, name, stage, db_name, settings) VALUES (%s, ''x'', ''development'', ''ss_shop_x'', ''{"odoo_bin": "/bin/sh"}'')',
         :shop)) AS dev_creates_with_odoo_bin;
SELECT regress.as_user('ss-owner', format(
         'UPDATE ops.projects SET settings = ''{"odoo_bin": "/bin/sh"}'' WHERE id = %s', :shop)) AS owner_sets_project_odoo_bin;
SELECT regress.err(format('UPDATE ops.environments SET settings = ''{"runtime": "docker"}'' WHERE id = %s', :shop_dev)) AS superuser_sets_runtime;
SELECT pg_temp.state() = :'before' AS nothing_changed;
-- Settings that choose behaviour, not executables, stay.
SELECT regress.as_user('ss-dev', format(
         'UPDATE ops.environments SET settings = ''{"test_tags": "/ss_shop", "http_port": 18999}'' WHERE id = %s', :shop_dev)) AS dev_sets_test_tags;
UPDATE ops.environments SET settings = '{}' WHERE id = :shop_dev;

-- Runtime profiles: the operator's, chosen by name.
INSERT INTO ops.runtime_profiles (name, runtime, odoo_bin, odoo_addons, description)
VALUES ('odoo17', 'process', '/opt/odoo17/odoo-bin', '/opt/odoo17/addons', 'Odoo 17 from source');
INSERT INTO ops.runtime_profiles (name, runtime, odoo_image) VALUES ('odoo17-docker', 'docker', 'odoo:17');
-- Nobody but the operator writes them: not a developer, not an owner, not a
-- platform administrator.
SELECT regress.as_user('ss-owner', $$INSERT INTO ops.runtime_profiles (name, odoo_bin) VALUES ('mine', '/bin/sh')$$) AS owner_adds_profile;
SELECT regress.as_user('ss-owner', $$UPDATE ops.runtime_profiles SET odoo_bin = '/bin/sh' WHERE name = 'odoo17'$$) AS owner_edits_profile;
SET ROLE ss_platform_admin;
SELECT regress.err($$INSERT INTO ops.runtime_profiles (name, odoo_bin) VALUES ('mine', '/bin/sh')$$) AS admin_adds_profile;
SELECT regress.err($$UPDATE ops.runtime_profiles SET odoo_bin = '/bin/sh' WHERE name = 'odoo17'$$) AS admin_edits_profile;
SELECT regress.err($$DELETE FROM ops.runtime_profiles WHERE name = 'odoo17'$$) AS admin_deletes_profile;
SELECT name, runtime, odoo_bin FROM ops.runtime_profiles WHERE name LIKE 'odoo17%' ORDER BY name;
RESET ROLE;
-- Profile values have a shape: a runtime's name (which runtimes exist is
-- the workers' to say), absolute paths without
-- `..`, an image reference.
SELECT regress.err(format('INSERT INTO ops.runtime_profiles (name, runtime, odoo_bin, odoo_addons, odoo_image) VALUES (%L, %L, %L, %L, %L)',
                          n, r, b, a, i)) AS bad_profile
  FROM (VALUES ('p1', '../shell', NULL, NULL, NULL), ('p2', 'process', 'odoo-bin', NULL, NULL),
               ('p3', 'process', '/opt/../bin/sh', NULL, NULL), ('p4', 'process', NULL, '/opt/addons,relative', NULL),
               ('p5', 'docker', NULL, NULL, '-evil'), ('P 6', 'process', NULL, NULL, NULL)) AS x(n, r, b, a, i);
SELECT count(*) AS profiles FROM ops.runtime_profiles WHERE name LIKE 'odoo17%' OR name ~ '^p[0-9]';
-- Environment managers choose among them; an unknown profile is refused.
SELECT regress.as_user('ss-dev', format('UPDATE ops.environments SET runtime_profile = ''odoo17'' WHERE id = %s', :shop_dev)) AS dev_chooses_profile;
SELECT regress.as_user('ss-dev', format('UPDATE ops.environments SET runtime_profile = ''nope'' WHERE id = %s', :shop_dev)) AS dev_unknown_profile;
SELECT regress.as_user('ss-owner', format('UPDATE ops.projects SET runtime_profile = ''odoo17-docker'' WHERE id = %s', :shop)) AS owner_sets_project_default;
-- A profile in use cannot be deleted.
SELECT regress.err($$DELETE FROM ops.runtime_profiles WHERE name = 'odoo17'$$) AS delete_used_profile;

-- What a worker gets: the environment's profile, else the project's.
SELECT id AS run FROM ops.queue_run(:shop, 'dev', 'abcd01', 'feature/x', '{}', 'test', 1000) \gset
SELECT id = :run AS claimed_ours, attempt AS attempt FROM ops.claim_next_run('ss-worker', 300, ARRAY['test']) \gset
SELECT :'claimed_ours'::boolean AS claimed_ours;
SELECT c -> 'runtime' AS runtime, c ->> 'repo_url_schemes' AS repo_url_schemes
  FROM ops.run_context(:run, 'ss-worker', :attempt) c;
UPDATE ops.environments SET runtime_profile = NULL WHERE id = :shop_dev;
SELECT c -> 'runtime' ->> 'name' AS project_default FROM ops.run_context(:run, 'ss-worker', :attempt) c;
UPDATE ops.projects SET runtime_profile = NULL WHERE id = :shop;
SELECT c -> 'runtime' AS worker_default FROM ops.run_context(:run, 'ss-worker', :attempt) c;

-- 3. Repository URLs use the transports the operator allows
-- (odooops.repo_url_schemes, default https,ssh): no local paths or file://
-- (another project's repository, any directory the worker can read), no
-- option injection, no remote helpers.
SELECT pg_temp.state() AS before \gset
SELECT u, regress.as_user('ss-owner', format('UPDATE ops.projects SET repo_url = %L WHERE id = %s', u, :shop)) AS owner_sets
  FROM unnest(ARRAY['/srv/git/other-project.git', 'file:///etc', '--upload-pack=/tmp/ss-pwned.sh',
                    'ext::/tmp/ss-pwned.sh', 'ssh://-oProxyCommand=touch%20x/repo.git',
                    '-oProxyCommand=x:repo', 'http://git.example.com/acme/shop.git',
                    'gopher://example.com/x', 'relative/path.git', 'https://', 'https:// x/y',
                    'https://git.example.com/a.git' || chr(10) || 'x']) AS u;
SELECT regress.as_user('ss-owner', $$SELECT ops.create_project('ss-local', 'Local', '/srv/git/local.git')$$) AS create_local;
SELECT regress.err(format('UPDATE ops.projects SET repo_url = ''/srv/git/x.git'' WHERE id = %s', :shop)) AS superuser_local_path;
SELECT pg_temp.state() = :'before' AS nothing_changed;
SELECT count(*) AS ss_local_projects FROM ops.projects WHERE slug = 'ss-local';
-- Allowed URLs: https and ssh (URL and scp-like forms).
SELECT u, regress.as_user('ss-owner', format('UPDATE ops.projects SET repo_url = %L WHERE id = %s', u, :shop)) AS owner_sets,
       ops.repo_url_scheme(u) AS scheme
  FROM unnest(ARRAY['https://github.com/ss-acme/shop.git', 'ssh://git@github.com/ss-acme/shop.git',
                    'git@github.com:ss-acme/shop.git']) AS u;
-- Only a superuser (or a role granted SET on it) changes the allow-list.
SELECT regress.as_user('ss-owner', $$SET odooops.repo_url_schemes = 'https,ssh,file'$$) AS owner_widens;
SELECT regress.err_detail($$SET odooops.repo_url_schemes = 'https,gopher'$$) AS unknown_scheme;
SHOW odooops.repo_url_schemes;
-- With file allowed (test clusters, single-host set-ups), local paths work,
-- but only absolute ones.
SET odooops.repo_url_schemes = 'https,ssh,file';
SELECT u, regress.err(format('UPDATE ops.projects SET repo_url = %L WHERE id = %s', u, :shop)) AS outcome
  FROM unnest(ARRAY['/srv/git/ss-shop.git', 'file:///srv/git/ss-shop.git', 'relative/ss-shop.git']) AS u;
SELECT repo_url FROM ops.projects WHERE id = :shop;
-- Narrowed again, a URL set earlier is refused when a run needs the
-- repository (the worker fails the run before any step); runs that do not
-- fetch code still get their context.
SET odooops.repo_url_schemes = 'https,ssh';
SELECT regress.err(format('SELECT ops.run_context(%s, ''ss-worker'', %s)', :run, :attempt)) AS test_run_context;
SELECT id AS backup_run FROM ops._queue_run_trusted(:shop, 'dev', NULL, NULL, '{}', 'backup', 1000) \gset
SELECT id = :backup_run AS claimed_ours, attempt AS backup_attempt FROM ops.claim_next_run('ss-worker', 300, ARRAY['backup']) \gset
SELECT :'claimed_ours'::boolean AS claimed_ours,
       c -> 'run' ->> 'workflow' AS workflow, c -> 'project' ->> 'repo_url' AS repo_url
  FROM ops.run_context(:backup_run, 'ss-worker', :backup_attempt) c;
SELECT status FROM ops.cancel_run(:backup_run, 'test over');
UPDATE ops.projects SET repo_url = 'https://github.com/ss-acme/shop.git' WHERE id = :shop;
SELECT c -> 'project' ->> 'repo_url' AS repo_url FROM ops.run_context(:run, 'ss-worker', :attempt) c;
SELECT status FROM ops.start_run(:run, 'ss-worker', :attempt);
SELECT status FROM ops.finish_run(:run, 'succeeded', '{}', 'ss-worker', :attempt);

-- 4. A GitHub repository belongs to one project, whatever the case of its
-- name (GitHub treats owner/name case-insensitively): another project
-- cannot take over its webhooks.
SELECT pg_temp.state() AS before \gset
SELECT regress.as_user('ss-other-owner', format('UPDATE ops.projects SET repo_full_name = ''ss-acme/shop'' WHERE id = %s', :other)) AS same_name;
SELECT regress.as_user('ss-other-owner', format('UPDATE ops.projects SET repo_full_name = ''SS-Acme/Shop'' WHERE id = %s', :other)) AS other_case;
SELECT regress.as_user('ss-other-owner', $$SELECT ops.create_project('ss-squat', 'Squat', NULL, 'SS-ACME/SHOP')$$) AS create_squat;
SELECT pg_temp.state() = :'before' AS nothing_changed;
SELECT count(*) AS ss_squat_projects FROM ops.projects WHERE slug = 'ss-squat';
-- The project itself may change the case of its own name.
SELECT regress.as_user('ss-owner', format('UPDATE ops.projects SET repo_full_name = ''SS-Acme/Shop'' WHERE id = %s', :shop)) AS own_case;

DROP DATABASE ss_existing_app;
