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
    RETURNING b.id, b.location
  ), q AS (
    INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason)
    SELECT 'backup', x.id, x.location, 'ttl' FROM x
    ON CONFLICT DO NOTHING RETURNING 1
  ) SELECT count(*) INTO n FROM x;
  RETURN n + ops.apply_backup_retention();
END $$;
COMMENT ON FUNCTION ops.expire_backups IS 'Marks backups past retention or TTL expired and queues their objects for deletion';

-- Expires artifacts whose expires_at has passed and queues their objects.
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
    RETURNING a.id, a.location
  ), q AS (
    INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason)
    SELECT 'artifact', x.id, x.location, 'ttl' FROM x ON CONFLICT DO NOTHING RETURNING 1
  ) SELECT count(*) INTO n FROM x;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.expire_artifacts IS 'Expires artifacts past expires_at and queues their objects for deletion; returns how many';
