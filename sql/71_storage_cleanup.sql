-- Storage cleanup: expired backups queue their dump and their filestore
-- archive, artifacts expire after odooops.artifact_ttl, deletions are handed
-- out only for objects the catalogue marks expired, and a failed deletion
-- waits before it is tried again. The worker daemon deletes the objects
-- (tests/e2e/storage_cleanup.sh); here the SQL side is called directly.
-- It counts rows of shared tables, so it runs in a database of its own.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS odooops_regress_71;
CREATE DATABASE odooops_regress_71;
\c odooops_regress_71
CREATE EXTENSION odooops;
SET client_min_messages = warning;
SET timezone = 'UTC';
INSERT INTO ops.projects (slug, name) VALUES ('shop', 'Shop'), ('other', 'Other');
INSERT INTO ops.environments (project_id, name, stage, db_name)
SELECT p.id, 'production', 'production', p.slug || '_prod' FROM ops.projects p;
SELECT id AS shop FROM ops.projects WHERE slug = 'shop' \gset
SELECT id AS shop_prod FROM ops.environments WHERE db_name = 'shop_prod' \gset

CREATE FUNCTION pg_temp.backup(kind text, tag text, age interval, expires timestamptz, with_filestore boolean DEFAULT true)
RETURNS bigint LANGUAGE sql AS $$
  INSERT INTO ops.backups (project_id, environment_id, backup_type, status, location, size_bytes, sha256,
                           metadata, created_at, completed_at, expires_at)
  SELECT e.project_id, e.id, kind, 'completed', 'file:///s/backups/shop/production/' || tag || '/db.dump', 1,
         repeat('a', 64),
         CASE WHEN with_filestore THEN jsonb_build_object('backup', jsonb_build_object('filestore', jsonb_build_object(
           'location', 'file:///s/backups/shop/production/' || tag || '/filestore.tar', 'size_bytes', 1,
           'sha256', repeat('b', 64)))) ELSE '{}' END,
         now() - age, now() - age, expires
    FROM ops.environments e WHERE e.db_name = 'shop_prod'
  RETURNING id
$$;

-- 1. An expired manual backup queues both its dump and its filestore
-- archive; one still within its TTL queues nothing; a backup recorded
-- without a filestore archive queues its dump alone.
SELECT pg_temp.backup('manual', 'm1', '20 days', now() - interval '1 day') AS m1 \gset
SELECT pg_temp.backup('manual', 'm2', '20 days', now() + interval '1 day') AS m2 \gset
SELECT pg_temp.backup('manual', 'm3', '20 days', now() - interval '1 day', false) AS m3 \gset
SELECT ops.expire_backups() AS expired;
SELECT object_kind, replace(location, 'file:///s/backups/shop/production/', '') AS location, reason, status
  FROM ops.storage_deletions ORDER BY object_id, object_kind;
SELECT id = :m2 AS is_m2, status FROM ops.backups WHERE id IN (:m1, :m2, :m3) ORDER BY id;

-- Retention (native) queues both objects too: keep 1 daily of 3.
INSERT INTO ops.backup_retention (environment_id, keep_daily, keep_weekly, keep_monthly)
VALUES (:shop_prod, 1, 0, 0);
SELECT pg_temp.backup('daily', 'd' || n, make_interval(days => n), NULL) FROM generate_series(1, 3) n;
SELECT ops.expire_backups() AS expired;
SELECT object_kind, reason, count(*) FROM ops.storage_deletions GROUP BY 1, 2 ORDER BY 1, 2;

-- 2. Draining: the dump alone does not make the backup deleted; its
-- filestore archive too does.
SELECT worker_id FROM ops.register_agent('w1', NULL, NULL, '{}', '1', 'h');
SELECT object_kind, attempts FROM ops.claim_storage_deletions('w1', 2) ORDER BY id;
SELECT (ops.finish_storage_deletion(id, true)).status FROM ops.storage_deletions
 WHERE object_id = :m1 AND object_kind = 'backup';
SELECT status AS after_dump FROM ops.backups WHERE id = :m1;
SELECT (ops.finish_storage_deletion(id, true)).status FROM ops.storage_deletions
 WHERE object_id = :m1 AND object_kind = 'filestore';
SELECT status AS after_filestore FROM ops.backups WHERE id = :m1;

-- 3. A failed deletion is pending again, but not handed out before its
-- retry time: 1, 2, 4, 8 minutes after attempts 1 to 4; the fifth failure
-- is final.
SELECT id AS m3_del FROM ops.storage_deletions WHERE object_id = :m3 AND object_kind = 'backup' \gset
UPDATE ops.storage_deletions SET retry_at = now() + interval '1 hour' WHERE id <> :m3_del AND status = 'pending';
CREATE FUNCTION pg_temp.fail_once() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  d ops.storage_deletions;
  claimed integer;
BEGIN
  SELECT count(*) INTO claimed FROM ops.claim_storage_deletions('w1', 10);
  SELECT * INTO d FROM ops.finish_storage_deletion(
    (SELECT id FROM ops.storage_deletions WHERE status = 'claimed'), false, 'S3 endpoint unreachable');
  RETURN format('claimed %s, attempts %s, %s, retry in %s', claimed, d.attempts, d.status,
                coalesce(to_char(d.retry_at - now(), 'MI:SS'), '-'));
END $$;
SELECT pg_temp.fail_once() AS first_failure;
-- before its retry time nothing is handed out
SELECT count(*) AS claimed_too_early FROM ops.claim_storage_deletions('w1', 10);
UPDATE ops.storage_deletions SET retry_at = now() - interval '1 second' WHERE id = :m3_del;
SELECT pg_temp.fail_once() AS second_failure;
UPDATE ops.storage_deletions SET retry_at = now() - interval '1 second' WHERE id = :m3_del;
SELECT pg_temp.fail_once() AS third_failure;
UPDATE ops.storage_deletions SET retry_at = now() - interval '1 second' WHERE id = :m3_del;
SELECT pg_temp.fail_once() AS fourth_failure;
UPDATE ops.storage_deletions SET retry_at = now() - interval '1 second' WHERE id = :m3_del;
SELECT pg_temp.fail_once() AS fifth_failure;
SELECT status, attempts, error, completed_at IS NOT NULL AS completed FROM ops.storage_deletions WHERE id = :m3_del;
SELECT status AS backup_of_failed_deletion FROM ops.backups WHERE id = :m3;
-- a success after a failure clears the retry time
UPDATE ops.storage_deletions SET retry_at = now() - interval '1 second'
 WHERE object_id <> :m3 AND status = 'pending' AND id = (SELECT min(id) FROM ops.storage_deletions WHERE status = 'pending')
RETURNING id AS retried \gset
SELECT count(*) AS claimed FROM ops.claim_storage_deletions('w1', 1);
SELECT (ops.finish_storage_deletion(:retried, false, 'timeout')).attempts AS attempts_after_failure;
UPDATE ops.storage_deletions SET retry_at = now() - interval '1 second' WHERE id = :retried;
SELECT count(*) AS claimed FROM ops.claim_storage_deletions('w1', 1);
SELECT d.status, d.retry_at IS NULL AS no_retry_time, d.error IS NULL AS no_error
  FROM ops.finish_storage_deletion(:retried, true) d;

-- 4. Only what the catalogue marks expired is handed out: a row for a
-- live backup, or at another location than the expired object's, fails
-- unclaimed and says why.
UPDATE ops.storage_deletions SET retry_at = now() + interval '1 hour' WHERE status = 'pending';
INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason) VALUES
  ('backup', :m2, 'file:///s/backups/shop/production/m2/db.dump', 'manual'),
  ('filestore', :m3, 'file:///s/backups/shop/production/m1/filestore.tar', 'manual');
SELECT count(*) AS claimed FROM ops.claim_storage_deletions('w1', 10);
SELECT object_kind, object_id = :m2 AS live_backup, status,
       regexp_replace(regexp_replace(error, '\m' || :m2 || '\M', '<m2>'), '\m' || :m3 || '\M', '<m3>') AS error
  FROM ops.storage_deletions WHERE reason = 'manual' ORDER BY id;
SELECT status AS live_backup_status FROM ops.backups WHERE id = :m2;

-- 5. Artifacts expire after odooops.artifact_ttl (30 days by default)
-- unless the worker gives an expiry; 0 keeps them.
SELECT id AS run FROM ops.queue_run(:shop, 'production', 'abc1234', 'main', '{}', 'build') \gset
SELECT id = :run AS claimed FROM ops.claim_next_run('w1');
SELECT status FROM ops.start_run(:run, 'w1', 1);
SHOW odooops.artifact_ttl;
SELECT count(*) FROM ops.record_artifact(:run, 'w1', 1, 'log', 'default.log', 'file:///s/artifacts/shop/run-1/default.log');
SELECT count(*) FROM ops.record_artifact(:run, 'w1', 1, 'log', 'given.log', 'file:///s/artifacts/shop/run-1/given.log',
                                         NULL, NULL, '{}', now() + interval '2 hours');
SET odooops.artifact_ttl = '90min';
SELECT count(*) FROM ops.record_artifact(:run, 'w1', 1, 'log', 'short.log', 'file:///s/artifacts/shop/run-1/short.log');
SET odooops.artifact_ttl = 0;
SELECT count(*) FROM ops.record_artifact(:run, 'w1', 1, 'log', 'kept.log', 'file:///s/artifacts/shop/run-1/kept.log');
RESET odooops.artifact_ttl;
SELECT name, to_char(expires_at - created_at, 'DD"d" HH24:MI') AS ttl FROM ops.artifacts ORDER BY name;
SET odooops.artifact_ttl = -1;
SET odooops.artifact_ttl = '4000d';

-- Expired artifacts are marked; only those stored under the project's
-- artifacts/ area are queued for deletion (an image reference, another
-- project's area or a path with ".." are not the worker's to delete).
SELECT count(*)
  FROM (VALUES ('image', 'image', 'registry.example.com/shop:abc'),
               ('other', 'foreign', 's3://bucket/p/artifacts/other/run-1/x'),
               ('other', 'dotdot', 'file:///s/artifacts/shop/../../backups/shop/x'),
               ('other', 's3', 's3://bucket/p/artifacts/shop/run-1/s3.bin')) v(kind, name, location),
       LATERAL ops.record_artifact(:run, 'w1', 1, v.kind, v.name, v.location);
UPDATE ops.artifacts SET created_at = now() - interval '31 days', expires_at = now() - interval '1 day'
 WHERE name <> 'given.log' AND name <> 'kept.log';
SELECT ops.expire_artifacts() AS expired, ops.expire_artifacts() AS again;
SELECT a.name, a.expired_at IS NOT NULL AS expired, d.status AS deletion
  FROM ops.artifacts a LEFT JOIN ops.storage_deletions d ON d.object_kind = 'artifact' AND d.object_id = a.id
 ORDER BY a.name;
