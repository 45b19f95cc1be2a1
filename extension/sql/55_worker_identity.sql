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

-- The check is native (extension/api/run_common.cpp), shared with the
-- native worker RPCs. Not SECURITY DEFINER and granted to nobody: the
-- worker RPCs that call it run with the extension owner's rights.
CREATE FUNCTION ops.may_act_as_worker(worker_id text) RETURNS boolean
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'odooops_may_act_as_worker';
COMMENT ON FUNCTION ops.may_act_as_worker IS
  'Whether the invoking role may act as a worker id (bound in ops.worker_logins, or an administrator, superuser or the extension owner)';

-- The check every worker RPC makes before it reads or writes anything:
-- 42501 unless the invoking role may act as `worker_id` (OD004 for NULL).
CREATE FUNCTION ops.authorize_worker(worker_id text) RETURNS void
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'odooops_authorize_worker';
COMMENT ON FUNCTION ops.authorize_worker IS
  'Raises 42501 unless the invoking role may act as the worker id (ops.may_act_as_worker)';
