-- Outputs of runs: images, logs, reports, archives, with expiry.

CREATE TABLE ops.artifacts (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id      bigint NOT NULL REFERENCES ops.runs ON DELETE RESTRICT,
  project_id  bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  kind        text NOT NULL CHECK (kind IN ('image', 'log', 'sbom', 'archive', 'report', 'other')),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
  location    text NOT NULL CHECK (length(location) BETWEEN 1 AND 2048),  -- file://, s3://, image ref
  size_bytes  bigint CHECK (size_bytes >= 0),
  sha256      text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  metadata    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  expired_at  timestamptz,
  UNIQUE (run_id, name),
  CHECK (expires_at IS NULL OR expires_at > created_at)
);
COMMENT ON TABLE ops.artifacts IS 'Build outputs (images, logs, SBOMs, archives) with their location and expiry';
CREATE INDEX artifacts_expiry ON ops.artifacts (expires_at) WHERE expired_at IS NULL AND expires_at IS NOT NULL;

-- When an artifact recorded now expires: now() + odooops.artifact_ttl
-- (default 30 days; read as "30d" and the like), NULL when that is 0. The
-- setting is the extension's; without the library loaded the default holds.
CREATE FUNCTION ops._artifact_expiry() RETURNS timestamptz LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT now() + ttl FROM (SELECT coalesce(nullif(current_setting('odooops.artifact_ttl', true), '')::interval,
                                           interval '30 days') AS ttl) s
   WHERE ttl > interval '0'
$$;
COMMENT ON FUNCTION ops._artifact_expiry IS
  'When an artifact recorded now expires: now() + odooops.artifact_ttl, or NULL when that is 0';

-- An artifact of a run the worker holds and has started. A worker that lost
-- the run (requeued, reclaimed, cancelled, finished) is told so with OD003,
-- like every fenced call, instead of recording nothing. Recording the same
-- name again replaces it. Without an expires_at it expires after
-- odooops.artifact_ttl (ops._artifact_expiry); ops.expire_artifacts then
-- queues its object for deletion.
CREATE FUNCTION ops.record_artifact(run_id bigint, worker_id text, attempt integer, kind text, name text,
                                    location text, size_bytes bigint DEFAULT NULL, sha256 text DEFAULT NULL,
                                    metadata jsonb DEFAULT '{}', expires_at timestamptz DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r ops.runs;
  artifact_id bigint;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128), ops._check_length('name', name, 255),
          ops._check_length('location', location, 2048), ops._check_json_size('metadata', metadata, 262144);
  PERFORM ops.authorize_worker(worker_id);
  -- Share-locked: a concurrent requeue or cancel is seen before the fence is judged.
  r := ops._held_running_run(run_id, worker_id, attempt, false, 'artifacts are recorded while it runs');
  INSERT INTO ops.artifacts AS a (run_id, project_id, kind, name, location, size_bytes, sha256, metadata, expires_at)
  VALUES (r.id, r.project_id, kind, name, location, size_bytes, sha256, coalesce(metadata, '{}'),
          coalesce(expires_at, ops._artifact_expiry()))
  ON CONFLICT ON CONSTRAINT artifacts_run_id_name_key DO UPDATE SET location = EXCLUDED.location,
     size_bytes = EXCLUDED.size_bytes,
     sha256 = EXCLUDED.sha256, metadata = EXCLUDED.metadata, expires_at = EXCLUDED.expires_at
  RETURNING a.id INTO artifact_id;
  RETURN NEXT artifact_id;
END $$;
COMMENT ON FUNCTION ops.record_artifact IS
  'Records (or replaces) an artifact of a run the worker holds and has started, expiring after odooops.artifact_ttl unless given; OD003 once it lost the run';
