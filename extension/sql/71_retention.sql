-- Retention: which backups and artifacts are kept, and when stored objects
-- expire. Expired objects are queued in ops.storage_deletions.

-- Retention per environment; environments without a row keep the Odoo.sh
-- defaults (7 daily, 4 weekly, 3 monthly; manual backups 14 days).
CREATE TABLE ops.backup_retention (
  environment_id bigint PRIMARY KEY REFERENCES ops.environments ON DELETE CASCADE,
  keep_daily     integer NOT NULL DEFAULT 7 CHECK (keep_daily BETWEEN 0 AND 366),
  keep_weekly    integer NOT NULL DEFAULT 4 CHECK (keep_weekly BETWEEN 0 AND 520),
  keep_monthly   integer NOT NULL DEFAULT 3 CHECK (keep_monthly BETWEEN 0 AND 1200),
  manual_ttl     interval NOT NULL DEFAULT '14 days' CHECK (manual_ttl > interval '0'),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.backup_retention IS 'Backup retention of an environment: GFS counts for automatic backups, TTL for manual ones';
ALTER TABLE ops.backup_retention ENABLE ROW LEVEL SECURITY;

-- Keeps the newest completed daily/weekly/monthly backups per environment's
-- policy (extension/core/retention.h) and marks the others expired,
-- queueing their objects for deletion. Backups an active restore uses are
-- kept. Returns how many it expired. Native: extension/api/retention.cpp.
CREATE FUNCTION ops.apply_backup_retention() RETURNS integer
LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_apply_backup_retention';
COMMENT ON FUNCTION ops.apply_backup_retention IS 'Expires completed automatic backups beyond the daily/weekly/monthly counts; returns how many';

-- Expires backups: automatic ones by retention counts, manual and
-- pre-deploy/pre-restore ones once their TTL (expires_at, or completion +
-- the environment's manual_ttl) has passed. A backup an active restore or
-- an unfinished rollback deploy (metadata.restore_backup_id) uses is kept.
-- Returns how many it expired.
CREATE FUNCTION ops.expire_backups() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  WITH x AS (
    UPDATE ops.backups b SET status = 'expired', expired_at = now()
     WHERE b.status = 'completed'
       AND b.backup_type IN ('manual', 'pre_deploy', 'pre_restore')
       AND coalesce(b.expires_at, b.completed_at + coalesce(
             (SELECT r.manual_ttl FROM ops.backup_retention r WHERE r.environment_id = b.environment_id),
             interval '14 days')) <= now()
       AND NOT EXISTS (SELECT 1 FROM ops.restores rs WHERE rs.backup_id = b.id
                          AND rs.status IN ('pending_approval', 'queued', 'running'))
       AND NOT EXISTS (SELECT 1 FROM ops.runs r WHERE r.environment_id = b.environment_id
                          AND r.workflow = 'deploy' AND r.status IN ('queued', 'claimed', 'running')
                          AND r.metadata ->> 'restore_backup_id' = b.id::text)
    RETURNING b.id, b.location, b.metadata
  ), q AS (
    INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason)
    SELECT o.object_kind, x.id, o.object_location, 'ttl'
      FROM x CROSS JOIN LATERAL ops._backup_objects(x.location, x.metadata) o
    ON CONFLICT DO NOTHING RETURNING 1
  ) SELECT count(*) INTO n FROM x;
  RETURN n + ops.apply_backup_retention();
END $$;
COMMENT ON FUNCTION ops.expire_backups IS
  'Marks backups past retention or TTL expired and queues their dumps and filestore archives for deletion';

-- Whether an artifact's location is an object the worker stored for its
-- project: a clean file:// or s3:// URL under artifacts/<project slug>/.
-- Anything else a step reported (an image reference, a URL elsewhere, a
-- path into another project's area) is not the worker's to delete.
CREATE FUNCTION ops._artifact_in_storage(project_id bigint, location text)
RETURNS boolean LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(x.path IS NOT NULL
                  AND _artifact_in_storage.location !~ '[[:cntrl:][:space:]\\%?#]'
                  AND x.path !~ '//|/\.{1,2}(/|$)'
                  AND strpos(x.path, '/artifacts/' || (SELECT p.slug FROM ops.projects p
                                                        WHERE p.id = _artifact_in_storage.project_id) || '/') > 0,
                  false)
    FROM (SELECT substring(_artifact_in_storage.location
                           FROM '^(?:file://|s3://[a-z0-9][a-z0-9.-]{1,62})(/.*)$') AS path) x
$$;
COMMENT ON FUNCTION ops._artifact_in_storage IS
  'Whether an artifact location is a clean file:// or s3:// URL under artifacts/<project slug>/';

-- Expires artifacts whose expires_at has passed (ops.record_artifact sets
-- it from odooops.artifact_ttl) and queues the objects stored for them.
CREATE FUNCTION ops.expire_artifacts(max_rows integer DEFAULT 10000) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  WITH due AS (
    SELECT a.id FROM ops.artifacts a
     WHERE a.expired_at IS NULL AND a.expires_at <= now()
     ORDER BY a.expires_at LIMIT max_rows FOR UPDATE SKIP LOCKED
  ), x AS (
    UPDATE ops.artifacts a SET expired_at = now() FROM due WHERE a.id = due.id
    RETURNING a.id, a.project_id, a.location
  ), q AS (
    INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason)
    SELECT 'artifact', x.id, x.location, 'ttl' FROM x
     WHERE ops._artifact_in_storage(x.project_id, x.location)
    ON CONFLICT DO NOTHING RETURNING 1
  ) SELECT count(*) INTO n FROM x;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.expire_artifacts IS
  'Expires artifacts past expires_at and queues those stored under artifacts/<project>/ for deletion; returns how many';
