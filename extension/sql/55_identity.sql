-- Who is calling. The actor always comes from the session, never from a
-- parameter a caller could fake:
--  * behind PostgREST/Supabase: the `sub` of request.jwt.claims — trusted
--    only when the login role (PostgREST's authenticator) was granted
--    odooops_authenticator, so a plain database user cannot forge claims;
--  * on plain PostgreSQL: the invoking role (SET ROLE target, else the
--    login role), mapped through ops.user_logins, else its own name when it
--    can log in.
-- docs/access-control.md describes the set-up.

CREATE TABLE ops.user_logins (
  login      name PRIMARY KEY,
  user_id    text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 255),
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.user_logins IS 'Maps PostgreSQL login roles to odooops user ids (plain PostgreSQL identity)';

-- The role a call was made as, even inside SECURITY DEFINER functions
-- (which change current_user but not the session's role setting).
CREATE FUNCTION ops.invoking_role() RETURNS name LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN current_setting('role') IN ('none', '') THEN session_user
              ELSE current_setting('role')::name END
$$;
COMMENT ON FUNCTION ops.invoking_role IS 'The role a call was made as (the SET ROLE target, else the login), even inside SECURITY DEFINER functions';

CREATE FUNCTION ops.current_user_id() RETURNS text LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  claims text := current_setting('request.jwt.claims', true);
  invoker name := ops.invoking_role();
  mapped text;
BEGIN
  IF coalesce(claims, '') <> '' AND pg_has_role(session_user, 'odooops_authenticator', 'MEMBER') THEN
    BEGIN
      RETURN nullif(claims::jsonb ->> 'sub', '');
    EXCEPTION WHEN invalid_text_representation THEN
      RAISE EXCEPTION USING ERRCODE = '28000', MESSAGE = 'request.jwt.claims is not valid JSON';
    END;
  END IF;
  SELECT l.user_id INTO mapped FROM ops.user_logins l WHERE l.login = invoker;
  IF mapped IS NOT NULL THEN
    RETURN mapped;
  END IF;
  RETURN (SELECT r.rolname::text FROM pg_roles r WHERE r.rolname = invoker AND r.rolcanlogin);
END $$;
COMMENT ON FUNCTION ops.current_user_id IS 'The calling user: JWT sub behind PostgREST, else the mapped or own login role; NULL for anonymous';

-- Platform administrators (odooops_admin members and superusers) are not
-- bound by project permissions.
CREATE FUNCTION ops.is_admin() RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
  SELECT pg_has_role(ops.invoking_role(), 'odooops_admin', 'MEMBER')
$$;
COMMENT ON FUNCTION ops.is_admin IS 'True for platform administrators (members of odooops_admin)';

-- The operator: whoever configures the hosts odooops drives, i.e. a
-- superuser or the extension owner (or a member of its role), never a
-- platform administrator as such. Only the operator attaches an environment
-- to a database that already exists, changes an environment's database, and
-- writes ops.runtime_profiles (docs/operator-config.md). Judged by the
-- invoking role, so SECURITY DEFINER functions do not make their callers
-- operators.
CREATE FUNCTION ops.is_operator() RETURNS boolean LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce((SELECT pg_catalog.pg_has_role(ops.invoking_role(), x.extowner, 'MEMBER')
                     FROM pg_catalog.pg_extension x WHERE x.extname = 'odooops'), false)
$$;
COMMENT ON FUNCTION ops.is_operator IS 'True for the operator: a superuser or the extension owner (judged by the invoking role)';

-- The actor recorded in events and requests.
CREATE FUNCTION ops.current_actor() RETURNS text LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(ops.current_user_id(), ops.invoking_role()::text)
$$;
COMMENT ON FUNCTION ops.current_actor IS 'The actor recorded in events and audit rows: the calling user, else the invoking role';
