-- Releases, rollbacks and approval-gated production deploys.
\set SHOW_CONTEXT never
-- Runs one deploy through a worker; `result` is what the worker reports.
CREATE FUNCTION pg_temp.deploy(p bigint, env text, sha text, result jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  run ops.runs;
BEGIN
  UPDATE ops.runs SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
   WHERE status = 'queued';
  run := ops.queue_run(p, env, sha, 'main');
  PERFORM ops.claim_next_run('rel-worker');
  PERFORM ops.start_run(run.id, 'rel-worker', 1);
  PERFORM ops.finish_run(run.id, 'succeeded', result, 'rel-worker', 1);
  RETURN run.id;
END $$;

SELECT id AS shop FROM ops.projects WHERE slug = 'shop' \gset
SELECT id AS staging FROM ops.environments WHERE project_id = :shop AND name = 'staging' \gset
UPDATE ops.runs SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
 WHERE status IN ('claimed', 'running');

-- Two deploys: two releases. A result naming a backup (here a pending
-- pre_deploy backup) is the steps' output and is ignored: the release
-- references none (only ops.record_run_backup records one, for a
-- production deploy: 90_backup_provenance).
SELECT backup_id AS b FROM ops.create_backup(:shop, 'staging', 'pre_deploy') \gset
SELECT pg_temp.deploy(:shop, 'staging', 'aaaa01', '{"image": "shop:aaaa01"}') > 0 AS deployed;
SELECT pg_temp.deploy(:shop, 'staging', 'bbbb02', jsonb_build_object('image', 'shop:bbbb02', 'pre_deploy_backup_id', :b)) > 0 AS deployed;
SELECT git_sha, image, pre_deploy_backup_id IS NULL AS no_backup FROM ops.releases
 WHERE environment_id = :staging ORDER BY id;
SELECT min(id) AS first_release FROM ops.releases WHERE environment_id = :staging \gset

-- A result describing a backup taken before the update creates no backup.
SELECT pg_temp.deploy(:shop, 'staging', 'cccc0303', jsonb_build_object('pre_deploy_backup',
         jsonb_build_object('location', 'file:///b/pre', 'size_bytes', 42, 'sha256', repeat('e', 64)))) AS d3 \gset
SELECT b.backup_type, b.status, b.location, b.size_bytes, r.pre_deploy_backup_id = b.id AS referenced
  FROM ops.backups b JOIN ops.releases r ON r.run_id = b.run_id WHERE b.run_id = :d3;

-- Rolling back to the first release deploys its revision; the release that
-- replaced it has no pre-deploy backup, so there is no database to restore.
SELECT workflow, git_sha, priority, metadata ->> 'image' AS image,
       metadata ->> 'restore_backup_id' IS NULL AS restores_nothing,
       (metadata ->> 'rollback_to_release')::bigint = :first_release AS target
  FROM ops.rollback_release(:first_release, 'bad release');
SELECT regress.as_user('viewer-1', format('SELECT ops.rollback_release(%s)', :first_release));
SELECT regress.as_user('dev-1', 'SELECT ops.rollback_release(999999)');

-- Production deploys wait for an approval when the project asks for it.
UPDATE ops.runs SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL WHERE status IN ('queued', 'claimed');
UPDATE ops.projects SET settings = '{"production_deploy_approval": true}' WHERE id = :shop;
SELECT regress.as_user('admin-1', format('SELECT ops.queue_run(%s, ''production'', ''ca11ab1e03'', ''main'')', :shop));
SELECT id AS gated, available_at = 'infinity' AS gated_run FROM ops.runs WHERE git_sha = 'ca11ab1e03' AND workflow = 'deploy' \gset
SELECT :'gated_run' AS waiting_for_approval;
SELECT count(*) AS claimable FROM ops.claim_next_run('rel-worker', 300, ARRAY['deploy']);
SELECT id AS approval, subject, status, requested_by FROM ops.approvals WHERE subject = 'deploy' AND subject_id = :gated \gset
SELECT :'subject' AS subject, :'status' AS status, :'requested_by' AS requested_by;
SELECT regress.as_user('admin-1', format('SELECT ops.decide_approval(%s, ''approved'')', :approval));
SELECT regress.as_user('owner-1', format('SELECT ops.decide_approval(%s, ''approved'')', :approval));
SELECT git_sha, attempt FROM ops.claim_next_run('rel-worker', 300, ARRAY['deploy']);
-- A rejected production deploy is cancelled.
SELECT regress.as_user('admin-1', format('SELECT ops.queue_run(%s, ''production'', ''de1e7e04'', ''main'')', :shop));
SELECT a.id AS approval2 FROM ops.approvals a JOIN ops.runs r ON r.id = a.subject_id
 WHERE a.subject = 'deploy' AND r.git_sha = 'de1e7e04' \gset
SELECT regress.as_user('owner-1', format('SELECT ops.decide_approval(%s, ''rejected'', ''freeze'')', :approval2));
SELECT status, error FROM ops.runs WHERE git_sha = 'de1e7e04' AND workflow = 'deploy';
UPDATE ops.projects SET settings = '{}' WHERE id = :shop;
