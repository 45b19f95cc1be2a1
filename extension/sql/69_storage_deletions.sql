-- Stored objects to delete (expired backups and artifacts): an outbox the
-- worker daemon drains with ops.claim_storage_deletions / ops.finish_storage_deletion.
CREATE TABLE ops.storage_deletions (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  object_kind  text NOT NULL CHECK (object_kind IN ('backup', 'artifact')),
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
  UNIQUE (object_kind, object_id)
);
COMMENT ON TABLE ops.storage_deletions IS 'Outbox of stored objects (backup dumps, artifacts) to delete, drained by the worker daemon';
CREATE INDEX storage_deletions_pending ON ops.storage_deletions (id) WHERE status = 'pending';
ALTER TABLE ops.storage_deletions ENABLE ROW LEVEL SECURITY;

-- Claims for a worker id the invoking role may act as (ops.authorize_worker).
CREATE FUNCTION ops.claim_storage_deletions(worker_id text, n integer DEFAULT 10)
RETURNS SETOF ops.storage_deletions LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops.authorize_worker(worker_id);
  RETURN QUERY
  WITH c AS (
    SELECT s.id FROM ops.storage_deletions s
     WHERE s.status = 'pending' OR (s.status = 'claimed' AND s.claimed_at < now() - interval '1 hour')
     ORDER BY s.id LIMIT least(greatest(n, 1), 1000) FOR UPDATE SKIP LOCKED
  )
  UPDATE ops.storage_deletions d SET status = 'claimed', claimed_by = claim_storage_deletions.worker_id,
         claimed_at = now(), attempts = d.attempts + 1
    FROM c WHERE d.id = c.id RETURNING d.*;
END $$;
COMMENT ON FUNCTION ops.claim_storage_deletions IS 'Claims up to n pending storage deletions for the worker daemon';

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
  UPDATE ops.storage_deletions s
     SET status = CASE WHEN ok THEN 'done' WHEN s.attempts >= 5 THEN 'failed' ELSE 'pending' END,
         completed_at = CASE WHEN ok OR s.attempts >= 5 THEN now() END,
         error = finish_storage_deletion.error
   WHERE s.id = d.id RETURNING * INTO d;
  IF ok AND d.object_kind = 'backup' THEN
    UPDATE ops.backups SET status = 'deleted' WHERE id = d.object_id AND status = 'expired';
  END IF;
  RETURN d;
END $$;
COMMENT ON FUNCTION ops.finish_storage_deletion IS 'Records the outcome of a claimed storage deletion (a deleted backup becomes deleted)';
