-- Backups come only from the worker path that took them.
--  1. A deploy's result (the steps' output, which a branch can forge) never
--     creates, completes or names a backup, in any stage.
--  2. A production deploy's pre-deploy backup is recorded by the worker
--     holding that run (ops.record_run_backup, fenced), of that run's
--     own production environment, and the release references it.
--  3. No backup is completed without both checksums (the dump's and the
--     filestore archive's), nor with a location outside the project's
--     backups (scheme, "..", project prefix).
-- Every refusal has its SQLSTATE and changes nothing.
\set SHOW_CONTEXT never
-- Errors without the serial ids they name.
CREATE FUNCTION pg_temp.e(q text) RETURNS text LANGUAGE sql AS $$
  SELECT regexp_replace(regress.err(q), '(run|backup) [0-9]+', '\1 N', 'g')
$$;
-- Everything a refusal could have changed.
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
  SELECT md5((SELECT coalesce(string_agg(b::text, ',' ORDER BY b.id), '') FROM ops.backups b)
          || (SELECT coalesce(string_agg(r::text, ',' ORDER BY r.id), '') FROM ops.releases r)
          || (SELECT coalesce(string_agg(x.id || x.status || x.attempt, ',' ORDER BY x.id), '') FROM ops.runs x))
$$;
-- One deploy of `env` through worker bp-w, left running.
CREATE FUNCTION pg_temp.start_deploy(p bigint, env text, sha text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  run ops.runs;
BEGIN
  UPDATE ops.runs SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
   WHERE status IN ('queued', 'claimed');
  run := ops.queue_run(p, env, sha, 'main');
  PERFORM ops.claim_next_run('bp-w');
  PERFORM ops.start_run(run.id, 'bp-w', 1);
  RETURN run.id;
END $$;

INSERT INTO ops.projects (slug, name) VALUES ('bp-shop', 'BP Shop') RETURNING id AS shop \gset
INSERT INTO ops.projects (slug, name) VALUES ('bp-other', 'BP Other') RETURNING id AS other \gset
INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES
  (:shop, 'production', 'production', 'bp_shop_prod'), (:shop, 'dev', 'development', 'bp_shop_dev'),
  (:other, 'production', 'production', 'bp_other_prod');
SELECT id AS shop_prod FROM ops.environments WHERE project_id = :shop AND name = 'production' \gset
INSERT INTO ops.worker_logins (login, worker_id) VALUES ('odooops_test_worker', 'bp-w');
SELECT repeat('d', 64) AS dump_sha, repeat('f', 64) AS fs_sha \gset
\set good_loc 'file:///srv/odooops/backups/bp-shop/production/s1/db.dump'
\set good_fs '{"location": "file:///srv/odooops/backups/bp-shop/production/s1/filestore.tar", "size_bytes": 10, "sha256": "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"}'

-- A backup of the other project, completed by its own backup run.
SELECT backup_id AS other_backup FROM ops.create_backup(:other, 'production', 'manual') \gset
SELECT count(*) AS claimed FROM ops.claim_next_backup('bp-w');
SELECT status, backup_type FROM ops.complete_backup(:other_backup, 'bp-w', 1,
  'file:///srv/odooops/backups/bp-other/production/s0/db.dump', 5, :'dump_sha',
  '{"backup": {"filestore": {"location": "file:///srv/odooops/backups/bp-other/production/s0/filestore.tar", "size_bytes": 1, "sha256": "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"}}}');

-- =====================================================================
-- 1. A deploy's result creates no backup and names none, in development
--    as in production: the release is recorded without one.
-- =====================================================================
SELECT count(*) AS backups_before FROM ops.backups \gset
SELECT pg_temp.start_deploy(:shop, 'dev', 'beef01') AS dev_run \gset
SELECT status FROM ops.finish_run(:dev_run, 'succeeded', jsonb_build_object(
  'pre_deploy_backup', jsonb_build_object('location', 'file:///etc/passwd', 'size_bytes', 1, 'sha256', :'dump_sha',
                                          'filestore', jsonb_build_object('location', 'file:///etc/shadow', 'size_bytes', 1, 'sha256', :'fs_sha'))),
  'bp-w', 1);
SELECT pg_temp.start_deploy(:shop, 'production', 'beef02') AS prod_run \gset
SELECT status FROM ops.finish_run(:prod_run, 'succeeded', jsonb_build_object(
  'pre_deploy_backup', jsonb_build_object('location', :'good_loc', 'size_bytes', 1, 'sha256', :'dump_sha',
                                          'filestore', :'good_fs'::jsonb),
  'pre_deploy_backup_id', :other_backup), 'bp-w', 1);
SELECT count(*) - :backups_before AS backups_created FROM ops.backups;
SELECT count(*) AS forged_locations FROM ops.backups WHERE location IN ('file:///etc/passwd', :'good_loc');
SELECT e.name, r.pre_deploy_backup_id IS NULL AS no_backup FROM ops.releases r JOIN ops.environments e ON e.id = r.environment_id
 WHERE r.run_id IN (:dev_run, :prod_run) ORDER BY e.name;

-- =====================================================================
-- 2. The worker holding a production deploy records its pre-deploy backup.
-- =====================================================================
SELECT pg_temp.start_deploy(:shop, 'dev', 'beef03') AS dev_run \gset
SELECT pg_temp.state() AS s0 \gset
-- Not from a development deploy.
SELECT pg_temp.e(format($$SELECT ops.record_run_backup(%s, 'bp-w', 1, %L, 10, %L, %L)$$,
                        :dev_run, :'good_loc', :'dump_sha', :'good_fs')) AS from_development;
UPDATE ops.runs SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL WHERE id = :dev_run;
SELECT pg_temp.start_deploy(:shop, 'production', 'beef04') AS prod_run \gset
SELECT pg_temp.state() AS s0 \gset
-- Not by a worker that does not hold the run, nor on another attempt.
SELECT pg_temp.e(format($$SELECT ops.record_run_backup(%s, 'bp-x', 1, %L, 10, %L, %L)$$,
                        :prod_run, :'good_loc', :'dump_sha', :'good_fs')) AS other_worker;
SELECT pg_temp.e(format($$SELECT ops.record_run_backup(%s, 'bp-w', 2, %L, 10, %L, %L)$$,
                        :prod_run, :'good_loc', :'dump_sha', :'good_fs')) AS other_attempt;
-- Not without both checksums.
SELECT pg_temp.e(format($$SELECT ops.record_run_backup(%s, 'bp-w', 1, %L, 10, NULL, %L)$$,
                        :prod_run, :'good_loc', :'good_fs')) AS no_dump_checksum;
SELECT pg_temp.e(format($$SELECT ops.record_run_backup(%s, 'bp-w', 1, %L, 10, %L, NULL)$$,
                        :prod_run, :'good_loc', :'dump_sha')) AS no_filestore;
SELECT pg_temp.e(format($$SELECT ops.record_run_backup(%s, 'bp-w', 1, %L, 10, %L, %L)$$,
                        :prod_run, :'good_loc', :'dump_sha', :'good_fs'::jsonb - 'sha256')) AS no_filestore_checksum;
-- Not outside the project's backups.
SELECT loc, pg_temp.e(format($$SELECT ops.record_run_backup(%s, 'bp-w', 1, %L, 10, %L, %L)$$,
                             :prod_run, loc, :'dump_sha', :'good_fs')) AS refused
  FROM unnest(ARRAY['file:///etc/passwd', 'file:///srv/odooops/backups/bp-other/production/s0/db.dump',
                    'file:///srv/odooops/backups/bp-shop/../bp-other/production/s0/db.dump',
                    'file:///srv/odooops/backups/bp-shop/./x/db.dump', 'file://host/backups/bp-shop/x',
                    'http://example.com/backups/bp-shop/x', 's3://bucket/backups/bp-shop-2/x',
                    'file:///srv/odooops/backups/bp-shop/x%2f..%2f/db.dump']) AS loc;
SELECT pg_temp.e(format($$SELECT ops.record_run_backup(%s, 'bp-w', 1, %L, 10, %L, %L)$$,
                        :prod_run, :'good_loc', :'dump_sha',
                        jsonb_set(:'good_fs'::jsonb, '{location}', '"file:///etc/shadow"'))) AS filestore_outside;
SELECT pg_temp.state() = :'s0' AS nothing_changed;
-- The worker holding it, with both checksums under the project's backups.
SELECT backup_type, status, location, size_bytes, metadata #>> '{backup,filestore,sha256}' = :'fs_sha' AS filestore_checksum
  FROM ops.record_run_backup(:prod_run, 'bp-w', 1, :'good_loc', 10, :'dump_sha', :'good_fs');
SELECT id AS pre_backup FROM ops.backups WHERE run_id = :prod_run \gset
SELECT pg_temp.e(format($$SELECT ops.record_run_backup(%s, 'bp-w', 1, %L, 10, %L, %L)$$,
                        :prod_run, :'good_loc', :'dump_sha', :'good_fs')) AS second_time;
-- A result naming another backup changes nothing: the release references this run's.
SELECT status FROM ops.finish_run(:prod_run, 'succeeded', jsonb_build_object('pre_deploy_backup_id', :other_backup), 'bp-w', 1);
SELECT pre_deploy_backup_id = :pre_backup AS references_its_backup FROM ops.releases WHERE run_id = :prod_run;
-- A finished run records no backup any more.
SELECT pg_temp.e(format($$SELECT ops.record_run_backup(%s, 'bp-w', 1, %L, 10, %L, %L)$$,
                        :prod_run, :'good_loc', :'dump_sha', :'good_fs')) AS after_finish;

-- =====================================================================
-- 3. A backup run is completed only with both checksums, under the
--    project's backups.
-- =====================================================================
UPDATE ops.runs SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
 WHERE status IN ('queued', 'claimed');
SELECT backup_id AS b FROM ops.create_backup(:shop, 'production', 'manual') \gset
SELECT count(*) AS claimed FROM ops.claim_next_backup('bp-w');
SELECT pg_temp.state() AS s0 \gset
SELECT pg_temp.e(format($$SELECT ops.complete_backup(%s, 'bp-w', 1, %L, 10, %L)$$, :b, :'good_loc', :'dump_sha'))
       AS no_filestore;
SELECT pg_temp.e(format($$SELECT ops.complete_backup(%s, 'bp-w', 1, %L, 10, %L, %L)$$, :b, :'good_loc', :'dump_sha',
                        jsonb_build_object('backup', jsonb_build_object('filestore', :'good_fs'::jsonb - 'sha256'))))
       AS no_filestore_checksum;
SELECT pg_temp.e(format($$SELECT ops.complete_backup(%s, 'bp-w', 1, %L, 10, %L, %L)$$, :b, 'file:///etc/passwd', :'dump_sha',
                        jsonb_build_object('backup', jsonb_build_object('filestore', :'good_fs'::jsonb))))
       AS location_outside;
SELECT pg_temp.e(format($$SELECT ops.complete_backup(%s, 'bp-w', 1, %L, 10, %L, %L)$$, :b,
                        'file:///srv/odooops/backups/bp-shop/../../../etc/passwd', :'dump_sha',
                        jsonb_build_object('backup', jsonb_build_object('filestore', :'good_fs'::jsonb))))
       AS location_dotdot;
SELECT pg_temp.e(format($$SELECT ops.complete_backup(%s, 'bp-w', 1, %L, 10, %L, %L)$$, :b, :'good_loc', :'dump_sha',
                        jsonb_build_object('backup', jsonb_build_object('filestore',
                          jsonb_set(:'good_fs'::jsonb, '{location}', '"s3://bucket/backups/bp-other/x"')))))
       AS filestore_other_project;
SELECT pg_temp.state() = :'s0' AS nothing_changed;
SELECT status FROM ops.backups WHERE id = :b;
SELECT status, location FROM ops.complete_backup(:b, 'bp-w', 1, :'good_loc', 10, :'dump_sha',
  jsonb_build_object('backup', jsonb_build_object('filestore', :'good_fs'::jsonb)));
