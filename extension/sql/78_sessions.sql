-- Interactive sessions in an environment's runtime: an Odoo shell, psql on
-- its database, or its Odoo server log (`odooops shell`, `odooops psql`,
-- `odooops odoo-logs`). Authorization is the caller's: a person opens a
-- session with ops.open_session, which checks their project permission on
-- the environment and returns a one-time token valid for a minute.
-- Execution is the worker's: `odooops-worker session TOKEN`, run on the
-- environment's host with the worker's configuration, redeems the token
-- (ops.redeem_session, worker logins only, exactly once), runs the session
-- with the same environment a run of that environment gets, and records its
-- end (ops.close_session). docs/cli.md, docs/access-control.md.
--
-- The trail: each of the three is one append-only row of ops.audit_log
-- (session.open by the person, session.start and session.end by the
-- worker), written in the same transaction as the session's own state
-- change, which happens once: a token is redeemed once, a session closed
-- once. A session is not a run: runs are queued work that any eligible
-- worker claims under a lease, requeued when the lease runs out; a session
-- is started by the person at the host and lasts as long as they type.
-- Only a hash of the token is stored.

CREATE TABLE ops.sessions (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id     bigint NOT NULL REFERENCES ops.projects ON DELETE RESTRICT,
  environment_id bigint NOT NULL REFERENCES ops.environments ON DELETE RESTRICT,
  kind           text NOT NULL CHECK (kind IN ('shell', 'psql', 'odoo_logs')),
  token_sha256   bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
  opened_by      text NOT NULL CHECK (length(opened_by) BETWEEN 1 AND 255),
  opened_at      timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL,
  redeemed_by    text CHECK (length(redeemed_by) BETWEEN 1 AND 128),
  redeemed_at    timestamptz,
  closed_at      timestamptz,
  exit_status    integer CHECK (exit_status BETWEEN 0 AND 255),
  CONSTRAINT sessions_redeemed CHECK ((redeemed_by IS NULL) = (redeemed_at IS NULL)),
  CONSTRAINT sessions_closed CHECK (closed_at IS NULL OR redeemed_at IS NOT NULL),
  CONSTRAINT sessions_exit_status CHECK (exit_status IS NULL OR closed_at IS NOT NULL)
);
COMMENT ON TABLE ops.sessions IS
  'Interactive sessions (Odoo shell, psql, Odoo log) opened in an environment: a hash of the one-time token, who opened it, which worker ran it, when it ended';
CREATE INDEX sessions_environment ON ops.sessions (environment_id, id);

-- How long a token may wait for its worker.
CREATE FUNCTION ops.session_token_ttl() RETURNS interval
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT interval '60 seconds' $$;
COMMENT ON FUNCTION ops.session_token_ttl IS 'How long a session token may wait to be redeemed (60 s)';

-- The permission a kind of session needs on its environment.
CREATE FUNCTION ops._session_permission(kind text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE kind WHEN 'shell' THEN 'env.shell' WHEN 'psql' THEN 'env.psql' WHEN 'odoo_logs' THEN 'env.logs' END
$$;
COMMENT ON FUNCTION ops._session_permission IS
  'The permission a session kind needs: shell env.shell, psql env.psql, odoo_logs env.logs';

-- A person opens a session: the permission of its kind on the environment
-- (a project slug and an environment name; outside the project both answer
-- as missing ones, OD002), an active environment. Returns the session, its
-- one-time token (shown once, stored as a hash), its expiry and where it
-- runs (the environment's host worker or team, if it has one).
CREATE FUNCTION ops.open_session(project text, environment text, kind text)
RETURNS TABLE (session_id bigint, token text, expires_at timestamptz, environment_id bigint,
               host_worker_id text, host_team text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  secret text;
  s ops.sessions;
BEGIN
  PERFORM ops._check_length('project', project, 255);
  PERFORM ops._check_length('environment', environment, 255);
  PERFORM ops._check_length('kind', kind, 32);
  IF kind IS NULL OR ops._session_permission(kind) IS NULL THEN
    PERFORM ops._raise('OD004', format('kind must be shell, psql or odoo_logs, not %s',
                                       coalesce(quote_literal(kind), 'NULL')));
  END IF;
  SELECT x.* INTO e FROM ops.environments x JOIN ops.projects p ON p.id = x.project_id
   WHERE p.slug = open_session.project AND x.name = open_session.environment;
  -- Outside the project its environments are as unknown as missing ones.
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
    PERFORM ops._raise('OD002', format('project "%s" has no environment "%s"', project, environment));
  END IF;
  PERFORM ops.authorize(e.project_id, ops._session_permission(kind), e.id);
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', environment, e.status));
  END IF;
  -- 244 random bits (two version 4 UUIDs, from the server's strong random source).
  secret := 'odooops_s_' || replace(pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, '-', '');
  INSERT INTO ops.sessions (project_id, environment_id, kind, token_sha256, opened_by, expires_at)
  VALUES (e.project_id, e.id, kind, pg_catalog.sha256(pg_catalog.convert_to(secret, 'UTF8')),
          coalesce(ops.current_user_id(), ops.current_actor()), pg_catalog.now() + ops.session_token_ttl())
  RETURNING * INTO s;
  PERFORM ops.audit(e.project_id, 'session.open', 'environment', e.id,
                    jsonb_build_object('session_id', s.id, 'kind', kind, 'environment', e.name,
                                       'stage', e.stage, 'expires_at', s.expires_at));
  RETURN QUERY SELECT s.id, secret, s.expires_at, e.id, e.host_worker_id,
                      (SELECT t.name FROM ops.agent_teams t WHERE t.id = e.host_team_id);
END $$;
COMMENT ON FUNCTION ops.open_session IS
  'Opens a shell, psql or odoo_logs session in an environment (env.shell, env.psql, env.logs): a one-time token a worker redeems within a minute';

-- The worker redeems a token, once, before it expires, for an environment
-- it may run (its host worker or a member of its host team; any worker
-- when the environment has no host yet). Returns what the worker needs to
-- build the environment's step environment, in the shape of
-- ops.run_context: session, project, environment, runtime,
-- repo_url_schemes and the environment's latest release.
CREATE FUNCTION ops.redeem_session(token text, worker_id text)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s ops.sessions;
  e ops.environments;
  result jsonb;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops.authorize_worker(worker_id);
  PERFORM ops._check_length('token', token, 128);
  SELECT * INTO s FROM ops.sessions x
   WHERE x.token_sha256 = pg_catalog.sha256(pg_catalog.convert_to(coalesce(token, ''), 'UTF8'))
     FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', 'no session has this token');
  END IF;
  IF s.redeemed_at IS NOT NULL THEN
    PERFORM ops._raise('OD001', format('session %s was already redeemed', s.id),
                       'A token opens one session; open another with ops.open_session.');
  END IF;
  IF s.expires_at <= pg_catalog.clock_timestamp() THEN
    PERFORM ops._raise('OD001', format('session %s expired unredeemed', s.id),
                       'A token is valid for a minute; open another with ops.open_session.');
  END IF;
  SELECT * INTO e FROM ops.environments x WHERE x.id = s.environment_id;
  IF NOT (e.host_worker_id IS NOT DISTINCT FROM redeem_session.worker_id
          OR (e.host_worker_id IS NULL AND e.host_team_id IS NULL)
          OR EXISTS (SELECT 1 FROM ops.agent_team_members m JOIN ops.agents a ON a.id = m.agent_id
                      WHERE m.team_id = e.host_team_id AND a.worker_id = redeem_session.worker_id)) THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('worker %s does not host environment %s', worker_id, e.name),
      HINT = 'Run the session on the environment''s host, with its worker''s configuration.';
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  UPDATE ops.sessions x SET redeemed_by = redeem_session.worker_id, redeemed_at = pg_catalog.now()
   WHERE x.id = s.id;
  PERFORM ops.audit(s.project_id, 'session.start', 'environment', e.id,
                    jsonb_build_object('session_id', s.id, 'kind', s.kind, 'environment', e.name,
                                       'opened_by', s.opened_by, 'worker_id', worker_id));
  SELECT jsonb_build_object(
           'session', jsonb_build_object('id', s.id, 'kind', s.kind, 'opened_by', s.opened_by),
           'project', jsonb_build_object('id', p.id, 'slug', p.slug, 'repo_url', p.repo_url,
                                         'production_branch', p.production_branch, 'settings', p.settings),
           'environment', jsonb_build_object('id', e.id, 'name', e.name, 'stage', e.stage,
                                             'db_name', e.db_name, 'settings', e.settings),
           'runtime', (SELECT jsonb_build_object('name', rp.name, 'runtime', rp.runtime, 'odoo_bin', rp.odoo_bin,
                                                 'odoo_addons', rp.odoo_addons, 'odoo_image', rp.odoo_image)
                         FROM ops.runtime_profiles rp
                        WHERE rp.name = coalesce(e.runtime_profile, p.runtime_profile)),
           'repo_url_schemes', pg_catalog.current_setting('odooops.repo_url_schemes'),
           'release', (SELECT jsonb_build_object('id', r.id, 'git_sha', r.git_sha, 'git_ref', r.git_ref)
                         FROM ops.releases r WHERE r.environment_id = e.id ORDER BY r.id DESC LIMIT 1))
    INTO result
    FROM ops.projects p WHERE p.id = e.project_id;
  RETURN result;
END $$;
COMMENT ON FUNCTION ops.redeem_session IS
  'A worker redeems a session token once, before it expires, for an environment it hosts; returns the environment''s context';

-- The worker that redeemed a session records its end, once, with the exit
-- status of what ran (0-255).
CREATE FUNCTION ops.close_session(session_id bigint, worker_id text, exit_status integer)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s ops.sessions;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops.authorize_worker(worker_id);
  IF exit_status IS NULL OR exit_status NOT BETWEEN 0 AND 255 THEN
    PERFORM ops._raise('OD004', 'exit_status must be between 0 and 255');
  END IF;
  SELECT * INTO s FROM ops.sessions x WHERE x.id = close_session.session_id FOR UPDATE;
  -- Only the worker that ran it knows the session.
  IF NOT FOUND OR s.redeemed_by IS DISTINCT FROM close_session.worker_id THEN
    PERFORM ops._raise('OD002', format('worker %s runs no session %s', worker_id, session_id));
  END IF;
  IF s.closed_at IS NOT NULL THEN
    PERFORM ops._raise('OD001', format('session %s is already closed', s.id));
  END IF;
  UPDATE ops.sessions x SET closed_at = pg_catalog.now(), exit_status = close_session.exit_status
   WHERE x.id = s.id;
  PERFORM ops.audit(s.project_id, 'session.end', 'environment', s.environment_id,
                    jsonb_build_object('session_id', s.id, 'kind', s.kind, 'opened_by', s.opened_by,
                                       'environment', (SELECT e.name FROM ops.environments e
                                                        WHERE e.id = s.environment_id),
                                       'worker_id', worker_id, 'exit_status', exit_status,
                                       'seconds', round(extract(epoch FROM pg_catalog.now() - s.redeemed_at)::numeric, 3)));
END $$;
COMMENT ON FUNCTION ops.close_session IS
  'The worker that ran a session records its end and exit status, once';

