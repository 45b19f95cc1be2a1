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

-- Granting the odooops roles to PostgREST's roles. Supabase creates anon,
-- authenticated and service_role NOINHERIT: such a role is a member of the
-- roles granted to it but uses none of their privileges until it SETs ROLE
-- to one, and PostgREST never does (it SETs ROLE to the JWT's role and runs
-- the request). `GRANT odooops_api TO authenticated` therefore leaves
-- authenticated with nothing. ops.grant_api_to() grants the membership and,
-- to a grantee that does not inherit, the same privileges directly on the
-- objects of schema ops and a place in the same row-level security
-- policies: exactly what the membership lets it reach through SET ROLE,
-- nothing more. A grantee that inherits (PostgREST's own tutorial roles,
-- login roles) gets the membership alone, through which its privileges
-- follow the odooops roles across upgrades by themselves. Both functions
-- run with the caller's rights (SECURITY INVOKER): only the extension's
-- owner or a superuser can make the grants they make.

-- The caller must own the extension (or be a superuser), the grantee must be
-- an ordinary role and api_role one of the odooops roles that carry
-- privileges. Raises 42501 / OD004 otherwise.
CREATE FUNCTION ops._check_role_grant(grantee name, api_role name, granting boolean) RETURNS oid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  g pg_catalog.pg_roles;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = current_user AND r.rolsuper)
     AND NOT pg_catalog.pg_has_role(current_user, (SELECT e.extowner FROM pg_catalog.pg_extension e
                                                    WHERE e.extname = 'odooops'), 'USAGE') THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = 'only the owner of extension odooops or a superuser may grant or revoke odooops roles';
  END IF;
  IF api_role IS NULL OR api_role NOT IN ('odooops_api', 'odooops_worker', 'odooops_admin', 'odooops_ingest') THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004',
      MESSAGE = format('api_role must be odooops_api, odooops_worker, odooops_admin or odooops_ingest, not %s',
                       coalesce(quote_ident(api_role), 'NULL')),
      HINT = 'odooops_authenticator carries no privileges: GRANT odooops_authenticator TO authenticator.';
  END IF;
  SELECT * INTO g FROM pg_catalog.pg_roles r WHERE r.rolname = grantee;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('role %s does not exist', coalesce(quote_ident(grantee), 'NULL'));
  END IF;
  IF g.rolname LIKE 'odooops\_%' THEN
    PERFORM ops._raise('OD004', format('grantee %s is one of the odooops roles', g.rolname));
  END IF;
  IF g.rolsuper OR g.oid = (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'odooops') THEN
    PERFORM ops._raise('OD004', format('grantee %s is a superuser or owns the extension: it has every privilege already', g.rolname));
  END IF;
  -- Row-level security is what limits odooops_api to a member's projects.
  IF granting AND g.rolbypassrls AND api_role = 'odooops_api' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004',
      MESSAGE = format('grantee %s bypasses row-level security: with odooops_api it would read every project', g.rolname),
      HINT = 'Grant odooops_admin to a role that bypasses row-level security (Supabase''s service_role), or use a role without BYPASSRLS.';
  END IF;
  RETURN g.oid;
END $$;
COMMENT ON FUNCTION ops._check_role_grant IS 'Internal to ops.grant_api_to and ops.revoke_api_from';

-- Makes the grantee's direct privileges on the objects of schema ops, and its
-- place in their row-level security policies, exactly those of the odooops
-- roles it is a direct member of when it does not inherit, and none when it
-- does. Returns the statements it ran.
CREATE FUNCTION ops._sync_role_privileges(g oid) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  grantee text := (SELECT quote_ident(o.rolname) FROM pg_catalog.pg_roles o WHERE o.oid = g);
  sources oid[];
  r record;
  roles text;
  stmt text;
BEGIN
  SELECT coalesce(array_agg(m.roleid), '{}') INTO sources
    FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles o ON o.oid = m.roleid
   WHERE m.member = g AND o.rolname IN ('odooops_api', 'odooops_worker', 'odooops_admin', 'odooops_ingest')
     AND NOT (SELECT x.rolinherit FROM pg_catalog.pg_roles x WHERE x.oid = g);

  FOR r IN
    WITH acl AS (
      SELECT format('SCHEMA %I', n.nspname) AS target, NULL::text AS col, x.grantee AS who, x.privilege_type AS priv
        FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) x
       WHERE n.oid = 'ops'::regnamespace
      UNION ALL
      SELECT format('%s %s', CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass), NULL,
             x.grantee, x.privilege_type
        FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) x
       WHERE c.relnamespace = 'ops'::regnamespace
      UNION ALL
      SELECT format('TABLE %s', c.oid::regclass), quote_ident(a.attname), x.grantee, x.privilege_type
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped,
             pg_catalog.aclexplode(a.attacl) x
       WHERE c.relnamespace = 'ops'::regnamespace
      UNION ALL
      SELECT format('ROUTINE %s', p.oid::regprocedure), NULL, x.grantee, x.privilege_type
        FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) x
       WHERE p.pronamespace = 'ops'::regnamespace
    ),
    wanted AS (
      SELECT a.target, a.col, a.priv FROM acl a
       WHERE a.who <> 0 AND a.who <> g
         AND EXISTS (SELECT 1 FROM unnest(sources) s WHERE pg_catalog.pg_has_role(s, a.who, 'USAGE'))
    ),
    held AS (SELECT a.target, a.col, a.priv FROM acl a WHERE a.who = g)
    SELECT 'GRANT' AS verb, w.* FROM (SELECT * FROM wanted EXCEPT SELECT * FROM held) w
    UNION ALL
    SELECT 'REVOKE', h.* FROM (SELECT * FROM held EXCEPT SELECT * FROM wanted) h
    ORDER BY 1, 2, 3, 4
  LOOP
    stmt := format('%s %s%s ON %s %s %s', r.verb, r.priv, coalesce(' (' || r.col || ')', ''), r.target,
                   CASE r.verb WHEN 'GRANT' THEN 'TO' ELSE 'FROM' END, grantee);
    EXECUTE stmt;
    RETURN NEXT stmt;
  END LOOP;

  -- Policies for PUBLIC apply to the grantee already; a policy that names
  -- only the grantee is the operator's own and is left alone.
  FOR r IN
    SELECT p.polname, p.polrelid::regclass AS tbl, p.polroles, g = ANY (p.polroles) AS has,
           EXISTS (SELECT 1 FROM unnest(p.polroles) pr, unnest(sources) s
                    WHERE pr <> g AND pg_catalog.pg_has_role(s, pr, 'USAGE')) AS wants
      FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
     WHERE c.relnamespace = 'ops'::regnamespace AND NOT (0 = ANY (p.polroles))
     ORDER BY 2::text, 1
  LOOP
    CONTINUE WHEN r.has = r.wants OR (r.has AND cardinality(r.polroles) = 1);
    SELECT string_agg(quote_ident(o.rolname), ', ' ORDER BY o.rolname) INTO roles
      FROM pg_catalog.pg_roles o
     WHERE o.oid = ANY (CASE WHEN r.wants THEN r.polroles || g ELSE array_remove(r.polroles, g) END);
    stmt := format('ALTER POLICY %I ON %s TO %s', r.polname, r.tbl, roles);
    EXECUTE stmt;
    RETURN NEXT stmt;
  END LOOP;
END $$;
COMMENT ON FUNCTION ops._sync_role_privileges IS 'Internal to ops.grant_api_to and ops.revoke_api_from';

CREATE FUNCTION ops.grant_api_to(grantee name, api_role name DEFAULT 'odooops_api') RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  g oid := ops._check_role_grant(grantee, api_role, true);
  stmt text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles o ON o.oid = m.roleid
                  WHERE m.member = g AND o.rolname = api_role) THEN
    stmt := format('GRANT %I TO %I', api_role, grantee);
    EXECUTE stmt;
    RETURN NEXT stmt;
  END IF;
  RETURN QUERY SELECT * FROM ops._sync_role_privileges(g);
END $$;
COMMENT ON FUNCTION ops.grant_api_to IS 'Grants an odooops role to a role such as Supabase''s authenticated: the membership and, when the grantee does not inherit, the same privileges and policies directly; owner or superuser only; returns the statements run';

CREATE FUNCTION ops.revoke_api_from(grantee name, api_role name DEFAULT 'odooops_api') RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  g oid := ops._check_role_grant(grantee, api_role, false);
  stmt text;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles o ON o.oid = m.roleid
              WHERE m.member = g AND o.rolname = api_role) THEN
    stmt := format('REVOKE %I FROM %I', api_role, grantee);
    EXECUTE stmt;
    RETURN NEXT stmt;
  END IF;
  RETURN QUERY SELECT * FROM ops._sync_role_privileges(g);
END $$;
COMMENT ON FUNCTION ops.revoke_api_from IS 'Revokes an odooops role granted with ops.grant_api_to, with the privileges and policy places it gave; owner or superuser only; returns the statements run';
