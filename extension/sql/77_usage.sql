-- Disk use: each environment's database (measured here, when it lives on
-- this server) and filestore (reported by the worker that hosts it), and
-- the disk of each worker's state directory. Workers report with
-- ops.report_agent_usage() after runs and at most every few minutes with
-- their heartbeat (worker/usage.cpp), so a scrape reads stored numbers and
-- costs the workers nothing.

CREATE TABLE ops.agent_disk_usage (
  worker_id   text PRIMARY KEY REFERENCES ops.agents (worker_id) ON DELETE CASCADE,
  path        text NOT NULL CHECK (length(path) BETWEEN 1 AND 1024),
  total_bytes bigint NOT NULL CHECK (total_bytes >= 0),
  free_bytes  bigint NOT NULL CHECK (free_bytes >= 0),
  reported_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.agent_disk_usage IS 'The disk of each worker''s state directory, as it last reported it';

CREATE TABLE ops.environment_filestore_usage (
  environment_id bigint PRIMARY KEY REFERENCES ops.environments ON DELETE CASCADE,
  worker_id      text NOT NULL CHECK (length(worker_id) BETWEEN 1 AND 128),
  bytes          bigint NOT NULL CHECK (bytes >= 0),
  reported_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.environment_filestore_usage IS 'Filestore size of each environment, as its host worker last reported it';

-- filestores: {"<project slug>/<environment name>": bytes, ...}. Only the
-- environments this worker hosts are stored: a directory left behind by an
-- environment that moved to another worker is not its size.
CREATE FUNCTION ops.report_agent_usage(worker_id text, disk_path text, total_bytes bigint,
                                       free_bytes bigint, filestores jsonb DEFAULT '{}')
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n integer;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops._check_length('disk_path', disk_path, 1024);
  PERFORM ops.authorize_worker(worker_id);
  IF disk_path IS NULL OR disk_path = '' OR total_bytes IS NULL OR free_bytes IS NULL
     OR total_bytes < 0 OR free_bytes < 0 THEN
    PERFORM ops._raise('OD004', 'disk_path, total_bytes and free_bytes must be given, sizes >= 0');
  END IF;
  IF filestores IS NULL OR jsonb_typeof(filestores) <> 'object' OR octet_length(filestores::text) > 262144
     OR EXISTS (SELECT 1 FROM jsonb_each(filestores) f
                 WHERE jsonb_typeof(f.value) <> 'number' OR f.value::numeric < 0
                    OR f.value::numeric > 9223372036854775807 OR f.value::numeric <> trunc(f.value::numeric)) THEN
    PERFORM ops._raise('OD004', 'filestores must be an object of "project/environment": bytes (at most 256 kB)');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM ops.agents a WHERE a.worker_id = report_agent_usage.worker_id) THEN
    PERFORM ops._raise('OD002', format('unknown worker "%s"', worker_id),
                       'Register it first with ops.register_agent().');
  END IF;
  INSERT INTO ops.agent_disk_usage AS u (worker_id, path, total_bytes, free_bytes)
  VALUES (worker_id, disk_path, total_bytes, free_bytes)
  ON CONFLICT ON CONSTRAINT agent_disk_usage_pkey DO UPDATE
     SET path = EXCLUDED.path, total_bytes = EXCLUDED.total_bytes, free_bytes = EXCLUDED.free_bytes,
         reported_at = now();
  INSERT INTO ops.environment_filestore_usage AS u (environment_id, worker_id, bytes)
  SELECT e.id, report_agent_usage.worker_id, f.value::numeric::bigint
    FROM jsonb_each(filestores) f
    JOIN ops.projects p ON p.slug = split_part(f.key, '/', 1)
    JOIN ops.environments e ON e.project_id = p.id AND e.name = split_part(f.key, '/', 2)
   WHERE e.host_worker_id = report_agent_usage.worker_id
  ON CONFLICT ON CONSTRAINT environment_filestore_usage_pkey DO UPDATE
     SET worker_id = EXCLUDED.worker_id, bytes = EXCLUDED.bytes, reported_at = now();
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.report_agent_usage IS
  'A worker reports its state directory''s disk and the filestore sizes of the environments it hosts; returns how many were stored';

-- pg_database_size() needs CONNECT on the database: measured here for the
-- environments' databases only, whatever the caller may connect to.
CREATE FUNCTION ops.environment_database_sizes()
RETURNS TABLE (environment_id bigint, bytes bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT e.id, pg_catalog.pg_database_size(d.oid)
    FROM ops.environments e JOIN pg_catalog.pg_database d ON d.datname = e.db_name
   WHERE e.status <> 'destroyed'
$$;
COMMENT ON FUNCTION ops.environment_database_sizes IS
  'Size of each live environment''s database, for those on this server';

CREATE VIEW ops.metrics_environment_usage AS
  SELECT p.slug AS project, e.name AS environment, e.stage,
         s.bytes AS database_bytes, f.bytes AS filestore_bytes, f.worker_id AS filestore_worker_id,
         f.reported_at AS filestore_reported_at
    FROM ops.environments e JOIN ops.projects p ON p.id = e.project_id
    LEFT JOIN ops.environment_database_sizes() s ON s.environment_id = e.id
    LEFT JOIN ops.environment_filestore_usage f ON f.environment_id = e.id
   WHERE e.status <> 'destroyed';
COMMENT ON VIEW ops.metrics_environment_usage IS
  'Database size (NULL: not on this server) and filestore size (NULL: not reported yet) of each live environment';

CREATE VIEW ops.metrics_agent_disk AS
  SELECT u.worker_id, u.path, u.total_bytes, u.free_bytes, u.reported_at,
         extract(epoch FROM now() - u.reported_at)::float8 AS report_age_seconds
    FROM ops.agent_disk_usage u;
COMMENT ON VIEW ops.metrics_agent_disk IS 'Each worker''s state directory disk, as it last reported it';
