-- Time-limited download links of backups (docs/backups.md). Only the
-- workers hold storage credentials, so a member asks for a link
-- (ops.request_backup_download) and an idle worker whose storage holds the
-- backup signs it (ops.claim_backup_downloads, ops.finish_backup_download):
-- an S3 presigned GET URL, or for file:// storage a path of the worker's own
-- HTTP listener signed with a key that never leaves the worker. The link is
-- a bearer credential: only the member who asked reads it (row-level
-- security, 80_security.sql), while still a member of the project.
CREATE TABLE ops.backup_downloads (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  backup_id     bigint NOT NULL REFERENCES ops.backups ON DELETE CASCADE,
  project_id    bigint NOT NULL REFERENCES ops.projects ON DELETE CASCADE,
  requested_by  text NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 255),
  ttl_seconds   integer NOT NULL CHECK (ttl_seconds BETWEEN 60 AND 86400),
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed', 'ready', 'failed')),
  claimed_by    text,
  claimed_at    timestamptz,
  url           text CHECK (length(url) BETWEEN 1 AND 8192),            -- the dump
  filestore_url text CHECK (length(filestore_url) BETWEEN 1 AND 8192),  -- the filestore archive
  expires_at    timestamptz,   -- when the links stop working
  error         text CHECK (length(error) <= 8192),
  created_at    timestamptz NOT NULL DEFAULT now(),
  completed_at  timestamptz
);
COMMENT ON TABLE ops.backup_downloads IS
  'Requests for time-limited download links of backups, signed by a worker; readable by the requester only';
CREATE INDEX backup_downloads_pending ON ops.backup_downloads (id) WHERE status IN ('pending', 'claimed');
CREATE INDEX backup_downloads_backup ON ops.backup_downloads (backup_id);

-- A member who may download the backup's environment's backups asks for
-- links valid `ttl` (1 minute to 24 hours). Outside the project the backup
-- is as unknown as a missing one. At most 10 requests of a project wait at
-- once (OD009). Audited; wakes the workers.
CREATE FUNCTION ops.request_backup_download(backup_id bigint, ttl interval DEFAULT '1 hour')
RETURNS ops.backup_downloads LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b ops.backups;
  seconds numeric;
  d ops.backup_downloads;
BEGIN
  SELECT * INTO b FROM ops.backups x WHERE x.id = request_backup_download.backup_id;
  IF NOT FOUND OR NOT ops.can_read_project(b.project_id) THEN
    PERFORM ops._raise('OD002', format('backup %s does not exist', backup_id));
  END IF;
  PERFORM ops.authorize(b.project_id, 'backup.download', b.environment_id);
  seconds := extract(epoch FROM ttl);
  IF seconds IS NULL OR seconds < 60 OR seconds > 86400 THEN
    PERFORM ops._raise('OD004', format('ttl %s is out of range', coalesce(ttl::text, 'NULL')),
                       'A download link is valid from 1 minute to 24 hours.');
  END IF;
  IF b.status <> 'completed' OR b.location IS NULL THEN
    PERFORM ops._raise('OD004', format('backup %s is %s: only a completed backup is downloaded', b.id, b.status));
  END IF;
  PERFORM pg_advisory_xact_lock(1869571957, hashint8(b.project_id));
  IF (SELECT count(*) FROM ops.backup_downloads x
       WHERE x.project_id = b.project_id AND x.status IN ('pending', 'claimed')) >= 10 THEN
    RAISE EXCEPTION USING ERRCODE = 'OD009',
      MESSAGE = format('project %s already has 10 download requests waiting for a worker', b.project_id),
      HINT = 'Wait until a worker with the backups'' storage signs them.';
  END IF;
  INSERT INTO ops.backup_downloads (backup_id, project_id, requested_by, ttl_seconds)
  VALUES (b.id, b.project_id, coalesce(ops.current_user_id(), ops.current_actor()), round(seconds)::integer)
  RETURNING * INTO d;
  PERFORM ops.audit(b.project_id, 'backup.download_requested', 'backup', b.id,
                    jsonb_build_object('download_id', d.id, 'ttl_seconds', d.ttl_seconds));
  NOTIFY odooops_runs;
  RETURN d;
END $$;
COMMENT ON FUNCTION ops.request_backup_download IS
  'Asks a worker for time-limited download links of a completed backup (permission backup.download; ttl 1 minute to 24 hours); audited';

-- Claims for a worker id the invoking role may act as the waiting requests
-- whose backup lies in its storage (`storage_url`, the worker's --storage:
-- the dump's location starts with it), and claims older than 5 minutes of
-- a worker that vanished. Returns what the worker signs.
CREATE FUNCTION ops.claim_backup_downloads(worker_id text, storage_url text, n integer DEFAULT 10)
RETURNS TABLE (download_id bigint, backup_id bigint, project_slug text, location text,
               filestore_location text, ttl_seconds integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  root text;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128), ops._check_length('storage_url', storage_url, 2048);
  PERFORM ops.authorize_worker(worker_id);
  root := rtrim(coalesce(storage_url, ''), '/') || '/';
  IF root !~ '^(file|s3)://' THEN
    PERFORM ops._raise('OD004', format('storage_url "%s" is not a file:// or s3:// URL', storage_url));
  END IF;
  RETURN QUERY
  WITH c AS (
    SELECT d.id FROM ops.backup_downloads d JOIN ops.backups b ON b.id = d.backup_id
     WHERE ((d.status = 'pending') OR (d.status = 'claimed' AND d.claimed_at < now() - interval '5 minutes'))
       AND left(b.location, length(root)) = root
     ORDER BY d.id LIMIT least(greatest(n, 1), 100) FOR UPDATE OF d SKIP LOCKED
  ), u AS (
    UPDATE ops.backup_downloads d SET status = 'claimed', claimed_by = claim_backup_downloads.worker_id,
           claimed_at = now()
      FROM c WHERE d.id = c.id RETURNING d.*
  )
  SELECT u.id, u.backup_id, p.slug, b.location, b.metadata #>> '{backup,filestore,location}', u.ttl_seconds
    FROM u JOIN ops.backups b ON b.id = u.backup_id JOIN ops.projects p ON p.id = b.project_id
   ORDER BY u.id;
END $$;
COMMENT ON FUNCTION ops.claim_backup_downloads IS
  'Claims up to n waiting download requests whose backup lies under the worker''s storage URL';

-- The worker that holds the claim records the signed links (valid until
-- expires_at, which the request's ttl bounds), or why it could not sign.
CREATE FUNCTION ops.finish_backup_download(download_id bigint, worker_id text, url text,
                                           filestore_url text, expires_at timestamptz, error text DEFAULT NULL)
RETURNS ops.backup_downloads LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  d ops.backup_downloads;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128), ops._check_length('url', url, 8192),
          ops._check_length('filestore_url', filestore_url, 8192), ops._check_length('error', error, 8192);
  PERFORM ops.authorize_worker(worker_id);
  SELECT * INTO d FROM ops.backup_downloads x WHERE x.id = finish_backup_download.download_id FOR UPDATE;
  IF NOT FOUND OR d.status <> 'claimed' OR d.claimed_by IS DISTINCT FROM worker_id THEN
    PERFORM ops._raise('OD002', format('download %s is not claimed by worker %s', download_id, worker_id));
  END IF;
  IF url IS NULL THEN
    UPDATE ops.backup_downloads x SET status = 'failed', completed_at = now(),
           error = coalesce(nullif(finish_backup_download.error, ''), 'the worker could not sign the download')
     WHERE x.id = d.id RETURNING * INTO d;
    RETURN d;
  END IF;
  IF url !~ '^https?://' OR (filestore_url IS NOT NULL AND filestore_url !~ '^https?://') THEN
    PERFORM ops._raise('OD004', 'download links are http:// or https:// URLs');
  END IF;
  IF expires_at IS NULL OR expires_at > now() + make_interval(secs => d.ttl_seconds + 60) THEN
    PERFORM ops._raise('OD004', format('expires_at must be within the %s seconds asked for', d.ttl_seconds));
  END IF;
  UPDATE ops.backup_downloads x SET status = 'ready', url = finish_backup_download.url,
         filestore_url = finish_backup_download.filestore_url, expires_at = finish_backup_download.expires_at,
         completed_at = now(), error = NULL
   WHERE x.id = d.id RETURNING * INTO d;
  RETURN d;
END $$;
COMMENT ON FUNCTION ops.finish_backup_download IS
  'Records the signed links of a claimed download request (or the reason it failed) for the worker holding it';
