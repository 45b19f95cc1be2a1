\echo Use "ALTER EXTENSION odooops UPDATE" to load this file. \quit
-- odooops 0.1.2 -> 0.1.3

-- run_events partitions are whole UTC months whatever the session's TimeZone,
-- and rows that landed in the default partition move into their month.
CREATE OR REPLACE FUNCTION ops.create_run_event_partition(month_start date)
RETURNS boolean LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  name text := 'run_events_' || to_char(month_start, 'YYYY_MM');
  lower_bound text := to_char(date_trunc('month', month_start), 'YYYY-MM-DD') || ' 00:00:00+00';
  upper_bound text := to_char(date_trunc('month', month_start) + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00';
  strays boolean;
BEGIN
  IF pg_catalog.to_regclass('ops.' || name) IS NOT NULL THEN
    RETURN false;
  END IF;
  EXECUTE format('SELECT EXISTS (SELECT 1 FROM ops.run_events_default WHERE created_at >= %L AND created_at < %L)',
                 lower_bound, upper_bound) INTO strays;
  IF NOT strays THEN
    EXECUTE format('CREATE TABLE ops.%I PARTITION OF ops.run_events FOR VALUES FROM (%L) TO (%L)',
                   name, lower_bound, upper_bound);
    RETURN true;
  END IF;
  ALTER TABLE ops.run_events DETACH PARTITION ops.run_events_default;
  EXECUTE format('CREATE TABLE ops.%I PARTITION OF ops.run_events FOR VALUES FROM (%L) TO (%L)',
                 name, lower_bound, upper_bound);
  EXECUTE format('INSERT INTO ops.%I SELECT * FROM ops.run_events_default WHERE created_at >= %L AND created_at < %L',
                 name, lower_bound, upper_bound);
  EXECUTE format('DELETE FROM ops.run_events_default WHERE created_at >= %L AND created_at < %L',
                 lower_bound, upper_bound);
  ALTER TABLE ops.run_events ATTACH PARTITION ops.run_events_default DEFAULT;
  RETURN true;
END $$;

CREATE OR REPLACE FUNCTION ops.ensure_run_event_partitions(months_ahead integer DEFAULT 2)
RETURNS integer LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  first_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
  created integer := 0;
BEGIN
  IF months_ahead IS NULL OR months_ahead NOT BETWEEN 0 AND 60 THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004', MESSAGE = 'months_ahead must be between 0 and 60';
  END IF;
  FOR i IN 0..months_ahead LOOP
    IF ops.create_run_event_partition((first_month + make_interval(months => i))::date) THEN
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END $$;

CREATE OR REPLACE FUNCTION ops.drop_old_run_event_partitions(retention_months integer)
RETURNS integer LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel record;
  cutoff date;
  dropped integer := 0;
BEGIN
  IF retention_months IS NULL OR retention_months < 0 OR retention_months > 1200 THEN
    PERFORM ops._raise('OD004', 'retention_months must be between 0 and 1200');
  END IF;
  IF retention_months = 0 THEN
    RETURN 0;
  END IF;
  cutoff := (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => retention_months))::date;
  FOR rel IN
    SELECT c.oid, c.relname FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'ops.run_events'::regclass AND c.relname ~ '^run_events_\d{4}_\d{2}$'
       AND to_date(substr(c.relname, 12), 'YYYY_MM') < cutoff
     ORDER BY c.relname
  LOOP
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = rel.oid AND d.deptype = 'e') THEN
      EXECUTE format('ALTER EXTENSION odooops DROP TABLE ops.%I', rel.relname);
    END IF;
    EXECUTE format('DROP TABLE ops.%I', rel.relname);
    dropped := dropped + 1;
  END LOOP;
  RETURN dropped;
END $$;

REVOKE EXECUTE ON FUNCTION ops.create_run_event_partition(date) FROM PUBLIC;

-- 0.1.2 bounded partitions in the TimeZone of the session that created them.
-- Rebuild every partition whose bounds are not whole UTC months: detach it
-- and set it aside (its indexes renamed, so the new partitions get the names
-- a fresh install gives), create the UTC months it spans, move its rows.
DO $$
DECLARE
  r record;
  ix record;
  m date;
BEGIN
  FOR r IN
    SELECT c.relname, b[1]::timestamptz AS lower_bound, b[2]::timestamptz AS upper_bound
      FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid,
           pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                   'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') b
     WHERE i.inhparent = 'ops.run_events'::regclass AND c.relname ~ '^run_events_\d{4}_\d{2}$'
  LOOP
    CONTINUE WHEN r.lower_bound = date_trunc('month', r.lower_bound AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
              AND r.upper_bound = (date_trunc('month', r.lower_bound AT TIME ZONE 'UTC') + interval '1 month')
                                  AT TIME ZONE 'UTC';
    EXECUTE format('ALTER TABLE ops.run_events DETACH PARTITION ops.%I', r.relname);
    FOR ix IN SELECT c.relname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
               WHERE i.indrelid = ('ops.' || r.relname)::regclass
    LOOP
      EXECUTE format('ALTER INDEX ops.%I RENAME TO %I', ix.relname, 'set_aside_' || ix.relname);
    END LOOP;
    EXECUTE format('ALTER TABLE ops.%I RENAME TO %I', r.relname, 'set_aside_' || r.relname);
  END LOOP;
  FOR r IN SELECT c.relname FROM pg_catalog.pg_class c
            WHERE c.relnamespace = 'ops'::regnamespace AND c.relname ~ '^set_aside_run_events_\d{4}_\d{2}$'
  LOOP
    PERFORM ops.create_run_event_partition(to_date(substr(r.relname, 22), 'YYYY_MM'));
    FOR m IN EXECUTE format('SELECT DISTINCT date_trunc(''month'', created_at AT TIME ZONE ''UTC'')::date FROM ops.%I',
                            r.relname)
    LOOP
      PERFORM ops.create_run_event_partition(m);
    END LOOP;
    EXECUTE format('INSERT INTO ops.run_events SELECT * FROM ops.%I', r.relname);
    EXECUTE format('DROP TABLE ops.%I', r.relname);
  END LOOP;
END $$;
-- Partitions are reached only through their parent (append-only triggers).
DO $$
DECLARE
  t regclass;
BEGIN
  FOR t IN SELECT c.oid::regclass FROM pg_catalog.pg_class c
            WHERE c.relnamespace = 'ops'::regnamespace AND c.relispartition AND c.relkind = 'r'
  LOOP
    EXECUTE format('REVOKE ALL ON %s FROM odooops_admin', t);
  END LOOP;
END $$;

-- Development and preview TTLs count whole 24-hour days.
CREATE OR REPLACE FUNCTION ops._branch_environment(p ops.projects, template ops.environments, branch text)
RETURNS ops.environments LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  slug text := ops.branch_slug(branch, 40);
  e ops.environments;
BEGIN
  INSERT INTO ops.environments (project_id, name, stage, db_name, settings, branch, expires_at)
  VALUES (p.id, 'dev-' || slug, 'development', replace(left(p.slug, 20) || '_' || slug, '-', '_'),
          template.settings, branch,
          now() + make_interval(hours => 24 * coalesce((p.settings ->> 'development_ttl_days')::int, 3)))
  ON CONFLICT DO NOTHING
  RETURNING * INTO e;
  IF e.id IS NULL THEN
    PERFORM ops._raise('OD004', format('cannot create an environment for branch "%s": its name is taken', branch));
  END IF;
  RETURN e;
END $$;

CREATE OR REPLACE FUNCTION ops.ingest_github(event text, delivery_id text, signature text, body text)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  payload jsonb;
  p ops.projects;
  secret text;
  e ops.environments;
  run ops.runs;
  ref_branch text;
  answer jsonb;
  queued jsonb := '[]';
  created jsonb := '[]';
  per_minute integer;
  max_bytes constant integer := 2 * 1024 * 1024;
BEGIN
  IF body IS NULL OR octet_length(body) > max_bytes THEN
    RAISE EXCEPTION USING ERRCODE = 'OD005', MESSAGE = 'webhook body is missing or too large',
      DETAIL = format('%s bytes, the limit is %s.', octet_length(body), max_bytes);
  END IF;
  IF event IS NULL OR event !~ '^[a-z_]{1,64}$' THEN
    PERFORM ops._raise('OD004', 'X-GitHub-Event is missing or malformed');
  END IF;
  IF delivery_id IS NULL OR length(delivery_id) NOT BETWEEN 1 AND 100 THEN
    PERFORM ops._raise('OD004', 'X-GitHub-Delivery is missing or malformed');
  END IF;
  BEGIN
    payload := body::jsonb;
  EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
    PERFORM ops._raise('OD004', 'webhook body is not valid JSON');
  END;
  IF jsonb_typeof(payload) <> 'object' OR jsonb_typeof(payload -> 'repository') <> 'object' THEN
    PERFORM ops._raise('OD004', 'webhook body has no repository');
  END IF;
  SELECT * INTO p FROM ops.projects x WHERE lower(x.repo_full_name) = lower(payload -> 'repository' ->> 'full_name');
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('no project for repository "%s"', payload -> 'repository' ->> 'full_name'));
  END IF;
  SELECT s.value INTO secret FROM ops.project_secrets s WHERE s.project_id = p.id AND s.name = 'github_webhook_secret';
  IF secret IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'OD011', MESSAGE = format('project "%s" has no github_webhook_secret', p.slug),
      HINT = 'Set it with ops.set_project_secret(project_id, ''github_webhook_secret'', ...).';
  END IF;
  IF signature IS NULL OR NOT ops.github_signature_valid(secret, body, signature) THEN
    RAISE EXCEPTION USING ERRCODE = 'OD011', MESSAGE = 'invalid or missing X-Hub-Signature-256';
  END IF;

  -- Redelivery: answer as the first time.
  INSERT INTO ops.ingest_deliveries AS d (delivery_id, project_id, event)
  VALUES (ingest_github.delivery_id, p.id, ingest_github.event)
  ON CONFLICT ON CONSTRAINT ingest_deliveries_pkey DO NOTHING;
  IF NOT FOUND THEN
    SELECT d.result || jsonb_build_object('duplicate', true) INTO answer
      FROM ops.ingest_deliveries d WHERE d.delivery_id = ingest_github.delivery_id;
    RETURN answer;
  END IF;

  per_minute := coalesce((p.settings ->> 'ingest_per_minute')::int, 60);
  IF (SELECT count(*) FROM ops.ingest_deliveries d
       WHERE d.project_id = p.id AND d.received_at > now() - interval '1 minute') > per_minute THEN
    RAISE EXCEPTION USING ERRCODE = 'OD009',
      MESSAGE = format('project "%s" received more than %s webhooks in a minute', p.slug, per_minute);
  END IF;

  answer := jsonb_build_object('delivery', delivery_id, 'event', event, 'project', p.slug);
  IF event = 'ping' THEN
    answer := answer || jsonb_build_object('pong', true);

  ELSIF event = 'push' THEN
    IF payload ->> 'ref' !~ '^refs/heads/' THEN
      answer := answer || jsonb_build_object('ignored', 'not a branch push');
    ELSE
      ref_branch := substr(payload ->> 'ref', 12);
      IF (payload ->> 'deleted')::boolean THEN
        SELECT * INTO e FROM ops.environments x
         WHERE x.project_id = p.id AND x.branch = ref_branch AND x.status = 'active'
           AND x.stage IN ('development', 'preview');
        IF FOUND THEN
          queued := queued || ops._destroy_environment(e, jsonb_build_object('reason', 'branch deleted', 'github_delivery', delivery_id), 'github:' || delivery_id || ':destroy');
        ELSE
          answer := answer || jsonb_build_object('ignored', 'no environment for the deleted branch');
        END IF;
      ELSE
        e := ops._environment_for_branch(p, ref_branch);
        IF ops._is_branch_template(e) THEN
          e := ops._branch_environment(p, e, ref_branch);
          created := created || jsonb_build_array(e.name);
        ELSIF e.branch = ref_branch THEN
          UPDATE ops.environments x SET expires_at = now() + make_interval(hours =>
                    24 * coalesce((p.settings ->> 'development_ttl_days')::int, 3)), updated_at = now()
           WHERE x.id = e.id AND x.expires_at IS NOT NULL;
        END IF;
        IF e.id IS NULL THEN
          answer := answer || jsonb_build_object('ignored', format('no environment for branch %s', ref_branch));
        ELSE
          SELECT * INTO run FROM ops._queue_run_trusted(p.id, e.name, payload ->> 'after', ref_branch,
            jsonb_build_object('source', 'github', 'github_delivery', delivery_id,
                               'pusher', payload -> 'pusher' ->> 'name',
                               'commits', jsonb_array_length(coalesce(payload -> 'commits', '[]'))),
            'deploy', 0, 'github:' || delivery_id);
          queued := queued || jsonb_build_object('run_id', run.id, 'environment', e.name, 'workflow', 'deploy');
        END IF;
      END IF;
    END IF;

  ELSIF event = 'pull_request' THEN
    ref_branch := payload -> 'pull_request' -> 'head' ->> 'ref';
    SELECT * INTO e FROM ops.environments x
     WHERE x.project_id = p.id AND x.pull_request = (payload ->> 'number')::int AND x.status = 'active';
    IF payload ->> 'action' IN ('opened', 'reopened', 'synchronize') THEN
      IF e.id IS NULL THEN
        INSERT INTO ops.environments (project_id, name, stage, db_name, branch, pull_request, expires_at)
        VALUES (p.id, 'pr-' || (payload ->> 'number'), 'preview',
                replace(left(p.slug, 20), '-', '_') || '_pr_' || (payload ->> 'number'), NULL, (payload ->> 'number')::int,
                now() + make_interval(hours => 24 * coalesce((p.settings ->> 'preview_ttl_days')::int, 7)))
        RETURNING * INTO e;
        created := created || jsonb_build_array(e.name);
      ELSE
        UPDATE ops.environments x SET expires_at = now() + make_interval(hours =>
                  24 * coalesce((p.settings ->> 'preview_ttl_days')::int, 7)), updated_at = now()
         WHERE x.id = e.id;
      END IF;
      SELECT * INTO run FROM ops._queue_run_trusted(p.id, e.name,
        payload -> 'pull_request' -> 'head' ->> 'sha', ref_branch,
        jsonb_build_object('source', 'github', 'github_delivery', delivery_id,
                           'pull_request', (payload ->> 'number')::int),
        'deploy', 0, 'github:' || delivery_id);
      queued := queued || jsonb_build_object('run_id', run.id, 'environment', e.name, 'workflow', 'deploy');
    ELSIF payload ->> 'action' = 'closed' AND e.id IS NOT NULL THEN
      queued := queued || ops._destroy_environment(e, jsonb_build_object('reason', 'pull request closed', 'github_delivery', delivery_id), 'github:' || delivery_id || ':destroy');
    ELSE
      answer := answer || jsonb_build_object('ignored', format('pull_request action %s', payload ->> 'action'));
    END IF;

  ELSE
    answer := answer || jsonb_build_object('ignored', format('event %s is not handled', event));
  END IF;

  answer := answer || jsonb_build_object('queued', queued, 'created_environments', created);
  UPDATE ops.ingest_deliveries d SET result = answer WHERE d.delivery_id = ingest_github.delivery_id;
  RETURN answer;
END $$;


-- Identity and roles: ops.grant_api_to / ops.revoke_api_from give the odooops
-- roles to PostgREST roles that do not inherit (Supabase's anon,
-- authenticated, service_role).
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
REVOKE EXECUTE ON FUNCTION ops._check_role_grant(name, name, boolean), ops._sync_role_privileges(oid),
  ops.grant_api_to(name, name), ops.revoke_api_from(name, name) FROM PUBLIC;
