-- Backups are executed as runs of workflow `backup`, so they share the
-- queue's claim path, lease and fencing. Their rows follow their runs
-- (trigger below); expiry comes from the backup type and the environment.

-- Days a backup of `backup_type` is kept, before count-based retention
-- (environment settings may override: backup_ttl_days.<type>).
CREATE FUNCTION ops.backup_ttl(backup_type text, env_settings jsonb DEFAULT '{}')
RETURNS interval LANGUAGE sql IMMUTABLE AS $$
  SELECT make_interval(days => coalesce((env_settings -> 'backup_ttl_days' ->> backup_type)::int,
    CASE backup_type WHEN 'daily' THEN 7 WHEN 'weekly' THEN 28 WHEN 'monthly' THEN 92
                     WHEN 'manual' THEN 30 ELSE 14 END))
$$;
COMMENT ON FUNCTION ops.backup_ttl IS 'How long a backup of a type is kept before count-based retention (environment settings may override)';

-- Manual backups an environment may take in 24 hours: the operator's
-- odooops.manual_backups_per_day (superusers only, default 5), lowered by
-- the environment's settings.manual_backups_per_day, never raised by it
-- (project admins and, in development, developers write settings).
CREATE FUNCTION ops.manual_backups_per_day(env_settings jsonb DEFAULT '{}')
RETURNS integer LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT least(cap.n, CASE WHEN env_settings ->> 'manual_backups_per_day' ~ '^[0-9]{1,6}$'
                           THEN (env_settings ->> 'manual_backups_per_day')::integer ELSE cap.n END)
    FROM (SELECT coalesce(nullif(current_setting('odooops.manual_backups_per_day', true), '')::integer, 5) AS n) cap
$$;
COMMENT ON FUNCTION ops.manual_backups_per_day IS
  'Manual backups an environment may take in 24 hours: odooops.manual_backups_per_day, lowered (never raised) by settings.manual_backups_per_day';

CREATE FUNCTION ops.create_backup(project_id bigint, env text, backup_type text DEFAULT 'manual',
                                  metadata jsonb DEFAULT '{}')
RETURNS TABLE (backup_id bigint, run_id bigint, expires_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  backup ops.backups;
  run ops.runs;
  limit_per_day integer;
BEGIN
  PERFORM ops._check_length('env', env, 255);
  PERFORM ops._check_json_size('metadata', metadata, 262144);
  SELECT * INTO e FROM ops.environments x WHERE x.project_id = create_backup.project_id AND x.name = env;
  -- Outside the project its environments are as unknown as missing ones.
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', env, e.status));
  END IF;
  IF backup_type IS NULL OR backup_type NOT IN ('daily', 'weekly', 'monthly', 'manual', 'pre_deploy', 'pre_restore') THEN
    PERFORM ops._raise('OD004', format('unknown backup type "%s"', backup_type),
                       'Types: daily, weekly, monthly, manual, pre_deploy, pre_restore.');
  END IF;
  IF metadata IS NULL OR jsonb_typeof(metadata) <> 'object' THEN
    PERFORM ops._raise('OD004', 'metadata must be a JSON object');
  END IF;
  PERFORM ops._check_request_metadata(metadata);
  PERFORM ops.authorize(e.project_id, 'backup.create', e.id);

  -- Manual backups are limited per environment and day, as on Odoo.sh.
  IF backup_type = 'manual' THEN
    limit_per_day := ops.manual_backups_per_day(e.settings);
    PERFORM pg_advisory_xact_lock(1869571956, hashint8(e.id));
    IF (SELECT count(*) FROM ops.backups b WHERE b.environment_id = e.id AND b.backup_type = 'manual'
          AND b.created_at > now() - interval '1 day') >= limit_per_day THEN
      RAISE EXCEPTION USING ERRCODE = 'OD009',
        MESSAGE = format('environment "%s" already has %s manual backups in the last 24 hours', env, limit_per_day),
        HINT = 'Wait; the operator''s odooops.manual_backups_per_day caps the limit, settings.manual_backups_per_day of the environment may only lower it.';
    END IF;
  END IF;

  INSERT INTO ops.backups (project_id, environment_id, backup_type, metadata, requested_by, expires_at)
  VALUES (e.project_id, e.id, backup_type, metadata, ops.current_actor(),
          now() + ops.backup_ttl(backup_type, e.settings))
  RETURNING * INTO backup;
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, NULL, NULL,
                                                metadata || jsonb_build_object('backup_id', backup.id,
                                                                               'backup_type', backup_type),
                                                'backup');
  UPDATE ops.backups b SET run_id = run.id WHERE b.id = backup.id;
  RETURN QUERY SELECT backup.id, run.id, backup.expires_at;
END $$;
COMMENT ON FUNCTION ops.create_backup IS
  'Requests a backup of an environment: a pending backup row and a queued run of workflow backup';

-- Claims the next backup run and starts it (a backup worker needs nothing
-- between the two). Returns what the worker needs to dump the database.
CREATE FUNCTION ops.claim_next_backup(worker_id text, lease_seconds integer DEFAULT 300)
RETURNS TABLE (backup_id bigint, run_id bigint, attempt integer, project_id bigint,
               environment_id bigint, db_name text, backup_type text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run ops.runs;
BEGIN
  PERFORM ops.authorize_worker(worker_id);
  SELECT * INTO run FROM ops.claim_runs(worker_id, 1, lease_seconds, ARRAY['backup']);
  IF run.id IS NULL THEN
    RETURN;
  END IF;
  PERFORM ops.start_run(run.id, worker_id, run.attempt, lease_seconds);
  RETURN QUERY
    SELECT b.id, run.id, run.attempt, run.project_id, run.environment_id, e.db_name, b.backup_type
      FROM ops.environments e LEFT JOIN ops.backups b ON b.run_id = run.id
     WHERE e.id = run.environment_id;
END $$;
COMMENT ON FUNCTION ops.claim_next_backup IS 'Claims and starts the next backup run; returns what the worker needs to dump the database';

-- Where a backup object may be recorded: a file:// or s3:// URL whose path
-- has no empty, "." or ".." segment and lies under backups/<project slug>/
-- (the worker adds the configured storage root, which the database does not
-- know, and resolves symlinks). A location outside it would let a later
-- restore read some other file or another project's backup.
CREATE FUNCTION ops._check_backup_location(project_id bigint, field text, location text)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  slug text := (SELECT p.slug FROM ops.projects p WHERE p.id = _check_backup_location.project_id);
  path text;
BEGIN
  IF location IS NULL OR length(location) NOT BETWEEN 1 AND 2048 THEN
    PERFORM ops._raise('OD004', format('%s must be 1 to 2048 characters', field));
  END IF;
  path := substring(location FROM '^(?:file://|s3://[a-z0-9][a-z0-9.-]{1,62})(/.*)$');
  IF path IS NULL OR location ~ '[[:cntrl:][:space:]\\%?#]' OR path ~ '//|/\.{1,2}(/|$)' THEN
    PERFORM ops._raise('OD004', format('%s "%s" is not a storage location', field, location),
                       'A file:///path or s3://bucket/key URL without empty, "." or ".." segments.');
  END IF;
  IF slug IS NULL OR strpos(path, '/backups/' || slug || '/') = 0 THEN
    PERFORM ops._raise('OD004', format('%s "%s" lies outside the backups of project %s', field, location,
                                       coalesce(slug, project_id::text)),
                       format('Backups of this project are stored under <storage>/backups/%s/.', slug));
  END IF;
END $$;
COMMENT ON FUNCTION ops._check_backup_location IS
  'Raises OD004 unless a backup location is a clean file:// or s3:// URL under backups/<project slug>/';

-- The filestore archive of a backup, as recorded in its metadata
-- (metadata.backup.filestore: location, size_bytes, sha256): required, so a
-- restore always verifies both halves.
CREATE FUNCTION ops._check_backup_filestore(project_id bigint, filestore jsonb)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF jsonb_typeof(filestore) IS DISTINCT FROM 'object' THEN
    PERFORM ops._raise('OD004', 'the filestore archive (location, size_bytes, sha256) is required',
                       'A backup is completed only with both checksums: the dump''s and the filestore archive''s.');
  END IF;
  IF coalesce(filestore ->> 'sha256', '') !~ '^[0-9a-f]{64}$' THEN
    PERFORM ops._raise('OD004', 'filestore sha256 must be 64 lowercase hex digits');
  END IF;
  IF coalesce(filestore ->> 'size_bytes', '') !~ '^[0-9]{1,18}$' THEN
    PERFORM ops._raise('OD004', 'filestore size_bytes must be 0 or more');
  END IF;
  PERFORM ops._check_backup_location(project_id, 'filestore location', filestore ->> 'location');
END $$;
COMMENT ON FUNCTION ops._check_backup_filestore IS
  'Raises OD004 unless a backup''s filestore archive has a location under the project''s backups, a size and a SHA-256';

CREATE FUNCTION ops.complete_backup(backup_id bigint, worker_id text, attempt integer, location text,
                                    size_bytes bigint, sha256 text, metadata jsonb DEFAULT '{}')
RETURNS ops.backups LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  backup ops.backups;
BEGIN
  PERFORM ops.authorize_worker(worker_id);
  IF location IS NULL OR length(location) NOT BETWEEN 1 AND 2048 THEN
    PERFORM ops._raise('OD004', 'location must be 1 to 2048 characters');
  END IF;
  IF size_bytes IS NULL OR size_bytes < 0 THEN
    PERFORM ops._raise('OD004', 'size_bytes must be 0 or more');
  END IF;
  IF sha256 IS NULL OR sha256 !~ '^[0-9a-f]{64}$' THEN
    PERFORM ops._raise('OD004', 'sha256 must be 64 lowercase hex digits');
  END IF;
  PERFORM ops._check_json_size('metadata', metadata, 262144);
  SELECT * INTO backup FROM ops.backups b WHERE b.id = complete_backup.backup_id FOR UPDATE;
  IF NOT FOUND OR backup.run_id IS NULL THEN
    PERFORM ops._raise('OD002', format('backup %s does not exist', backup_id));
  END IF;
  PERFORM ops._check_backup_location(backup.project_id, 'location', location);
  PERFORM ops._check_backup_filestore(backup.project_id, metadata -> 'backup' -> 'filestore');
  UPDATE ops.backups b SET location = complete_backup.location, size_bytes = complete_backup.size_bytes,
         sha256 = complete_backup.sha256, metadata = b.metadata || coalesce(complete_backup.metadata, '{}')
   WHERE b.id = backup.id;
  -- Fenced: a worker that lost the run changes nothing (the UPDATE above is
  -- rolled back with the error). The run trigger marks the backup completed.
  PERFORM ops.finish_run(backup.run_id, 'succeeded',
                         jsonb_build_object('location', location, 'size_bytes', size_bytes, 'sha256', sha256),
                         worker_id, attempt);
  SELECT * INTO backup FROM ops.backups b WHERE b.id = backup.id;
  RETURN backup;
END $$;
COMMENT ON FUNCTION ops.complete_backup IS
  'Records a finished backup (dump location, size, SHA-256; metadata.backup.filestore likewise) for the worker holding its run';

-- The backup a production run takes of what it is about to replace or
-- remove: a deploy before it touches the database (pre_deploy), a restore
-- before it replaces the database (pre_restore), a destroy before it drops
-- it (final). Its type follows from the run, never from the caller.
CREATE FUNCTION ops._run_backup_type(workflow text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE workflow WHEN 'deploy' THEN 'pre_deploy' WHEN 'restore' THEN 'pre_restore'
                       WHEN 'destroy' THEN 'final' END
$$;
COMMENT ON FUNCTION ops._run_backup_type IS
  'The type of the backup a production run of a workflow takes first: pre_deploy, pre_restore or final (NULL: none)';

-- Recorded by the worker process holding the run (fenced) from what it
-- verified itself in storage, never from a step's output: a deploy runs the
-- branch's code, which could print anything. One per run. The release a
-- deploy becomes references its backup (ops.record_deploy_outcome); a
-- restore records its backup in the restore's metadata (pre_restore_backup_id),
-- so what it replaced can be restored in turn. A final backup has no expiry:
-- it is the last copy of an environment that is gone, and is deleted by hand.
CREATE FUNCTION ops.record_run_backup(run_id bigint, worker_id text, attempt integer, location text,
                                      size_bytes bigint, sha256 text, filestore jsonb)
RETURNS ops.backups LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r ops.runs;
  e ops.environments;
  kind text;
  backup ops.backups;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128), ops._check_json_size('filestore', filestore, 65536);
  PERFORM ops.authorize_worker(worker_id);
  -- Locked: the fence is judged against the run as it is, and two calls for
  -- one run are serialised.
  r := ops._held_running_run(run_id, worker_id, attempt, true, 'its backup is recorded while it runs');
  SELECT * INTO e FROM ops.environments x WHERE x.id = r.environment_id;
  kind := ops._run_backup_type(r.workflow);
  IF kind IS NULL OR e.stage <> 'production' THEN
    PERFORM ops._raise('OD004', format('run %s is a %s of a %s environment: only production deploys, restores and destroys record a backup of their own',
                                       run_id, r.workflow, e.stage));
  END IF;
  IF EXISTS (SELECT 1 FROM ops.backups b WHERE b.run_id = r.id) THEN
    PERFORM ops._raise('OD001', format('run %s already recorded its %s backup', run_id, kind));
  END IF;
  IF size_bytes IS NULL OR size_bytes < 0 THEN
    PERFORM ops._raise('OD004', 'size_bytes must be 0 or more');
  END IF;
  IF sha256 IS NULL OR sha256 !~ '^[0-9a-f]{64}$' THEN
    PERFORM ops._raise('OD004', 'sha256 must be 64 lowercase hex digits');
  END IF;
  PERFORM ops._check_backup_location(r.project_id, 'location', location);
  PERFORM ops._check_backup_filestore(r.project_id, filestore);
  INSERT INTO ops.backups AS b (project_id, environment_id, run_id, backup_type, status, location, size_bytes,
                                sha256, metadata, requested_by, started_at, completed_at, expires_at)
  VALUES (r.project_id, e.id, r.id, kind, 'completed', location, size_bytes, sha256,
          jsonb_build_object('backup', jsonb_build_object(
            'location', location, 'size_bytes', size_bytes, 'sha256', sha256, 'db_name', e.db_name,
            'format', 'pg_dump custom + tar filestore',
            'filestore', jsonb_build_object('location', filestore ->> 'location',
                                            'size_bytes', (filestore ->> 'size_bytes')::bigint,
                                            'sha256', filestore ->> 'sha256'))),
          worker_id, r.started_at, now(),
          CASE WHEN kind <> 'final' THEN now() + ops.backup_ttl(kind, e.settings) END)
  RETURNING * INTO backup;
  IF kind = 'pre_restore' THEN
    UPDATE ops.restores x SET metadata = x.metadata || jsonb_build_object('pre_restore_backup_id', backup.id),
                              updated_at = now()
     WHERE x.run_id = r.id;
  END IF;
  RETURN backup;
END $$;
COMMENT ON FUNCTION ops.record_run_backup IS
  'Records the backup the production deploy, restore or destroy run the worker holds took first (both checksums, locations under the project''s backups)';
CREATE FUNCTION ops.fail_backup(backup_id bigint, worker_id text, attempt integer, error text)
RETURNS ops.backups LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  backup ops.backups;
BEGIN
  PERFORM ops._check_length('error', error, 8192);
  PERFORM ops.authorize_worker(worker_id);
  SELECT * INTO backup FROM ops.backups b WHERE b.id = fail_backup.backup_id;
  IF NOT FOUND OR backup.run_id IS NULL THEN
    PERFORM ops._raise('OD002', format('backup %s does not exist', backup_id));
  END IF;
  PERFORM ops.finish_run(backup.run_id, 'failed',
                         jsonb_build_object('error', coalesce(nullif(error, ''), 'backup failed')),
                         worker_id, attempt);
  SELECT * INTO backup FROM ops.backups b WHERE b.id = backup.id;
  RETURN backup;
END $$;
COMMENT ON FUNCTION ops.fail_backup IS 'Records a failed backup for the worker holding its run';

-- Backups and restores follow their runs, whichever path moved the run
-- (worker, cancel, lease expiry); a succeeded destroy run destroys its
-- environment.
CREATE FUNCTION ops.sync_run_subjects() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.workflow = 'backup' THEN
    UPDATE ops.backups b SET
      status = CASE NEW.status WHEN 'running' THEN 'running' WHEN 'succeeded' THEN 'completed'
                               WHEN 'queued' THEN 'pending' WHEN 'claimed' THEN 'pending'
                               ELSE 'failed' END,
      started_at = CASE WHEN NEW.status = 'running' THEN coalesce(b.started_at, now()) ELSE b.started_at END,
      completed_at = CASE WHEN NEW.status = 'succeeded' THEN now() ELSE b.completed_at END,
      error = CASE WHEN NEW.status IN ('failed', 'cancelled') THEN coalesce(NEW.error, NEW.status) ELSE b.error END
     WHERE b.run_id = NEW.id AND b.status IN ('pending', 'running');
  ELSIF NEW.workflow = 'destroy' AND NEW.status = 'succeeded' THEN
    UPDATE ops.environments e SET status = 'destroyed', destroyed_at = now(), updated_at = now()
     WHERE e.id = NEW.environment_id AND e.status <> 'destroyed';
  ELSIF NEW.workflow = 'destroy' AND NEW.status IN ('failed', 'cancelled') THEN
    -- A production destroy that ended without its final backup stopped
    -- before the database was touched: the environment serves again. Any
    -- other failed destroy may have removed part of it and stays
    -- destroying (a push of its branch brings it back).
    UPDATE ops.environments e SET status = 'active', updated_at = now()
     WHERE e.id = NEW.environment_id AND e.status = 'destroying' AND e.stage = 'production'
       AND NOT EXISTS (SELECT 1 FROM ops.backups b WHERE b.run_id = NEW.id AND b.backup_type = 'final');
  ELSIF NEW.workflow = 'restore' THEN
    UPDATE ops.restores x SET
      status = CASE NEW.status WHEN 'running' THEN 'running' WHEN 'succeeded' THEN 'completed'
                               WHEN 'queued' THEN 'queued' WHEN 'claimed' THEN 'queued'
                               WHEN 'cancelled' THEN 'cancelled' ELSE 'failed' END,
      finished_at = CASE WHEN NEW.status IN ('succeeded', 'failed', 'cancelled') THEN now() END,
      updated_at = now()
     WHERE x.run_id = NEW.id AND x.status IN ('queued', 'running');
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER runs_sync_subjects AFTER UPDATE OF status ON ops.runs
  FOR EACH ROW WHEN (NEW.workflow IN ('backup', 'restore', 'destroy') AND NEW.status IS DISTINCT FROM OLD.status)
  EXECUTE FUNCTION ops.sync_run_subjects();
