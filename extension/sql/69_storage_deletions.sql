-- Stored objects to delete (expired backups and artifacts): an outbox the
-- worker daemon drains with ops.claim_storage_deletions / ops.finish_storage_deletion.
-- A backup is two objects: its dump (object_kind 'backup') and its
-- filestore archive ('filestore'), both keyed by the backup's id.
CREATE TABLE ops.storage_deletions (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  object_kind  text NOT NULL CHECK (object_kind IN ('backup', 'filestore', 'artifact')),
  object_id    bigint NOT NULL,
  location     text NOT NULL CHECK (length(location) BETWEEN 1 AND 2048),
  reason       text NOT NULL CHECK (reason IN ('retention', 'ttl', 'manual')),
  status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed', 'done', 'failed')),
  attempts     integer NOT NULL DEFAULT 0,
  claimed_by   text,
  claimed_at   timestamptz,
  completed_at timestamptz,
  error        text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  retry_at     timestamptz,      -- a failed attempt is tried again from then on
  UNIQUE (object_kind, object_id)
);
COMMENT ON TABLE ops.storage_deletions IS
  'Outbox of stored objects (backup dumps and filestore archives, artifacts) to delete, drained by the worker daemon';
CREATE INDEX storage_deletions_pending ON ops.storage_deletions (id) WHERE status = 'pending';

-- Whether the catalogue marks the object of a deletion expired, at that
-- location: a backup expired (or deleted) whose dump or filestore archive
-- it is, an artifact with expired_at. Nothing else is ever deleted, whoever
-- wrote the outbox row.
CREATE FUNCTION ops._storage_object_expired(object_kind text, object_id bigint, location text)
RETURNS boolean LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE _storage_object_expired.object_kind
    WHEN 'backup' THEN EXISTS (
      SELECT 1 FROM ops.backups b
       WHERE b.id = _storage_object_expired.object_id AND b.status IN ('expired', 'deleted')
         AND b.location = _storage_object_expired.location)
    WHEN 'filestore' THEN EXISTS (
      SELECT 1 FROM ops.backups b
       WHERE b.id = _storage_object_expired.object_id AND b.status IN ('expired', 'deleted')
         AND b.metadata #>> '{backup,filestore,location}' = _storage_object_expired.location)
    WHEN 'artifact' THEN EXISTS (
      SELECT 1 FROM ops.artifacts a
       WHERE a.id = _storage_object_expired.object_id AND a.expired_at IS NOT NULL
         AND a.location = _storage_object_expired.location)
    ELSE false END
$$;
COMMENT ON FUNCTION ops._storage_object_expired IS
  'Whether the catalogue marks the backup dump, filestore archive or artifact at a location expired';

-- The stored objects of backups: the dump and, when recorded, the
-- filestore archive (metadata.backup.filestore.location).
CREATE FUNCTION ops._backup_objects(dump_location text, metadata jsonb)
RETURNS TABLE (object_kind text, object_location text) LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT v.kind, v.loc
    FROM (VALUES ('backup', _backup_objects.dump_location),
                 ('filestore', _backup_objects.metadata #>> '{backup,filestore,location}')) v(kind, loc)
   WHERE v.loc IS NOT NULL
$$;
COMMENT ON FUNCTION ops._backup_objects IS
  'The stored objects of a backup: its dump and its filestore archive, with their kinds';
ALTER TABLE ops.storage_deletions ENABLE ROW LEVEL SECURITY;

-- Claims for a worker id the invoking role may act as (ops.authorize_worker)
-- the pending deletions whose retry time has come (and claims older than an
-- hour, of a worker that vanished). A row whose object the catalogue does
-- not mark expired is not handed out: it fails at once, saying why.
CREATE FUNCTION ops.claim_storage_deletions(worker_id text, n integer DEFAULT 10)
RETURNS SETOF ops.storage_deletions LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops.authorize_worker(worker_id);
  RETURN QUERY
  WITH c AS (
    SELECT s.id, ops._storage_object_expired(s.object_kind, s.object_id, s.location) AS expired
      FROM ops.storage_deletions s
     WHERE (s.status = 'pending' AND (s.retry_at IS NULL OR s.retry_at <= now()))
        OR (s.status = 'claimed' AND s.claimed_at < now() - interval '1 hour')
     ORDER BY s.id LIMIT least(greatest(n, 1), 1000) FOR UPDATE SKIP LOCKED
  ), refused AS (
    UPDATE ops.storage_deletions d SET status = 'failed', completed_at = now(), retry_at = NULL,
           error = format('not deleted: the catalogue does not mark %s %s at %s expired',
                          d.object_kind, d.object_id, d.location)
      FROM c WHERE d.id = c.id AND NOT c.expired RETURNING 1
  )
  UPDATE ops.storage_deletions d SET status = 'claimed', claimed_by = claim_storage_deletions.worker_id,
         claimed_at = now(), attempts = d.attempts + 1
    FROM c WHERE d.id = c.id AND c.expired RETURNING d.*;
END $$;
COMMENT ON FUNCTION ops.claim_storage_deletions IS
  'Claims up to n due storage deletions of expired objects for the worker daemon (others fail, unclaimed)';

-- Only a role that may act as the worker holding the claim records its
-- outcome.
CREATE FUNCTION ops.finish_storage_deletion(deletion_id bigint, ok boolean, error text DEFAULT NULL)
RETURNS ops.storage_deletions LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  d ops.storage_deletions;
BEGIN
  PERFORM ops._check_length('error', error, 8192);
  IF ok IS NULL THEN
    PERFORM ops._raise('OD004', 'ok is required');
  END IF;
  SELECT * INTO d FROM ops.storage_deletions s WHERE s.id = deletion_id FOR UPDATE;
  IF NOT FOUND OR d.status <> 'claimed' THEN
    PERFORM ops._raise('OD002', format('storage deletion %s is not claimed', deletion_id));
  END IF;
  IF NOT ops.may_act_as_worker(d.claimed_by) THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('role %s may not act as the worker that claimed storage deletion %s',
                       quote_ident(ops.invoking_role()), deletion_id),
      HINT = 'An administrator binds logins to worker ids in ops.worker_logins.';
  END IF;
  -- A failure is tried again after 1, 2, 4, 8 minutes; the fifth fails for good.
  UPDATE ops.storage_deletions s
     SET status = CASE WHEN ok THEN 'done' WHEN s.attempts >= 5 THEN 'failed' ELSE 'pending' END,
         completed_at = CASE WHEN ok OR s.attempts >= 5 THEN now() END,
         retry_at = CASE WHEN NOT ok AND s.attempts < 5
                         THEN now() + interval '1 minute' * power(2, greatest(s.attempts, 1) - 1) END,
         error = finish_storage_deletion.error
   WHERE s.id = d.id RETURNING * INTO d;
  IF ok AND d.object_kind IN ('backup', 'filestore') THEN
    -- Deleted once both its dump and its filestore archive are: the backup
    -- row is locked first, so that two workers finishing the two halves at
    -- once see each other's outcome.
    PERFORM 1 FROM ops.backups b WHERE b.id = d.object_id FOR UPDATE;
    UPDATE ops.backups b SET status = 'deleted'
     WHERE b.id = d.object_id AND b.status = 'expired'
       AND NOT EXISTS (SELECT 1 FROM ops.storage_deletions s
                        WHERE s.object_id = d.object_id AND s.object_kind IN ('backup', 'filestore')
                          AND s.status <> 'done');
  END IF;
  RETURN d;
END $$;
COMMENT ON FUNCTION ops.finish_storage_deletion IS
  'Records the outcome of a claimed storage deletion (retried with backoff; a backup whose objects are all deleted becomes deleted)';
