-- Which worker ids a login may act as. Worker RPCs name the worker they act
-- for (claims, fenced writes, registration); that name is only as good as
-- the login behind it, so an administrator binds each worker login to the
-- ids it may use, and every worker RPC checks the binding of the invoking
-- role (the SET ROLE target, else the login: ops.invoking_role()).
-- Superusers, the extension's owner and platform administrators (who may
-- write these bindings themselves) act as any worker.
-- docs/access-control.md describes the set-up.

CREATE TABLE ops.worker_logins (
  login      name NOT NULL,
  worker_id  text NOT NULL CHECK (length(worker_id) BETWEEN 1 AND 128),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (login, worker_id)
);
COMMENT ON TABLE ops.worker_logins IS
  'Binds PostgreSQL login roles to the worker ids they may act as in worker RPCs (written by administrators)';

-- SECURITY DEFINER: workers may not read the bindings, yet are judged by them.
CREATE FUNCTION ops.may_act_as_worker(worker_id text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT ops.is_admin()
      OR pg_catalog.pg_has_role(ops.invoking_role(),
                                (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'odooops'),
                                'MEMBER')
      OR EXISTS (SELECT 1 FROM ops.worker_logins l
                  WHERE l.login = ops.invoking_role() AND l.worker_id = may_act_as_worker.worker_id)
$$;
COMMENT ON FUNCTION ops.may_act_as_worker IS
  'Whether the invoking role may act as a worker id (bound in ops.worker_logins, or an administrator, superuser or the extension owner)';

-- The check every worker RPC makes before it reads or writes anything:
-- 42501 unless the invoking role may act as `worker_id`.
CREATE FUNCTION ops.authorize_worker(worker_id text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF worker_id IS NULL THEN
    PERFORM ops._raise('OD004', 'worker_id is required');
  END IF;
  IF NOT ops.may_act_as_worker(worker_id) THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('role %s may not act as worker "%s"', quote_ident(ops.invoking_role()), worker_id),
      HINT = 'An administrator binds logins to worker ids in ops.worker_logins.';
  END IF;
END $$;
COMMENT ON FUNCTION ops.authorize_worker IS
  'Raises 42501 unless the invoking role may act as the worker id (ops.may_act_as_worker)';
