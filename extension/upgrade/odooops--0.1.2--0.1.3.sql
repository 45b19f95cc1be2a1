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


-- GitHub ingest edge cases: organization webhooks, pull requests reopened
-- and branches pushed again after their environment was destroyed, branch
-- names over 255 characters, transliterated and collision-free slugs and
-- database names (docs/github.md).
DROP FUNCTION ops.branch_slug(text, integer);
CREATE FUNCTION ops.branch_slug(branch text, max_length integer DEFAULT 40, hashed boolean DEFAULT false)
RETURNS text LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'odooops_branch_slug';
ALTER FUNCTION ops.branch_slug(text, integer, boolean) SECURITY DEFINER;
COMMENT ON FUNCTION ops.branch_slug IS
  'Readable slug of a branch name: lowercase [a-z0-9-], accents removed, at most max_length (10 to 63) characters; cut and ended with 8 hex digits of the SHA-256 of the full name when longer, or when hashed';
REVOKE EXECUTE ON FUNCTION ops.branch_slug(text, integer, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.branch_slug(text, integer, boolean) TO odooops_api, odooops_worker;
DROP FUNCTION ops._branch_environment(ops.projects, ops.environments, text);

CREATE FUNCTION ops._check_branch_length(branch text) RETURNS void LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF length(branch) > 255 THEN
    RAISE EXCEPTION USING ERRCODE = 'OD005',
      MESSAGE = format('branch name is %s characters long, the limit is 255', length(branch)),
      DETAIL = format('Branch "%s...".', left(branch, 60)),
      HINT = 'Rename the branch: odooops does not deploy branches with longer names.';
  END IF;
END $$;

CREATE FUNCTION ops._environment_db_name(p ops.projects, env_name text, plain text, self_id bigint DEFAULT NULL)
RETURNS text LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  candidate text;
BEGIN
  FOREACH candidate IN ARRAY ARRAY[plain, left(plain, 54) || '_' ||
           left(encode(sha256(convert_to(p.slug || '/' || env_name, 'UTF8')), 'hex'), 8)] LOOP
    IF NOT EXISTS (SELECT 1 FROM ops.environments x
                    WHERE x.db_name = candidate AND x.status <> 'destroyed' AND x.id IS DISTINCT FROM self_id) THEN
      RETURN candidate;
    END IF;
  END LOOP;
  RETURN NULL;
END $$;

CREATE FUNCTION ops._revive_environment(p ops.projects, e ops.environments, ttl interval, reason text)
RETURNS ops.environments LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  destroy ops.runs;
  db text := e.db_name;
BEGIN
  IF e.status <> 'active' THEN
    -- Locking the run keeps workers from claiming it meanwhile (they skip
    -- locked runs); one that a worker holds already shows as claimed.
    SELECT * INTO destroy FROM ops.runs r
     WHERE r.environment_id = e.id AND r.workflow = 'destroy' AND r.status IN ('queued', 'claimed', 'running')
     ORDER BY r.id DESC LIMIT 1 FOR UPDATE;
    IF destroy.status IN ('claimed', 'running') THEN
      RAISE EXCEPTION USING ERRCODE = 'OD004',
        MESSAGE = format('environment "%s" is being destroyed', e.name),
        DETAIL = format('Its destroy run is %s.', destroy.status),
        HINT = 'Redeliver the webhook once the destroy run has finished: the environment then comes back.';
    END IF;
    IF destroy.id IS NOT NULL THEN
      WITH cancelled AS (
        UPDATE ops.runs r SET status = 'cancelled', finished_at = now(), updated_at = now(),
                              result = r.result || jsonb_build_object('reason', reason)
         WHERE r.id = destroy.id RETURNING r.*)
      INSERT INTO ops.run_events (run_id, attempt, kind, level, message, from_status, to_status, actor, payload)
      SELECT c.id, c.attempt, 'transition', 'info', 'cancelled', 'queued', 'cancelled', ops.current_actor(),
             jsonb_build_object('reason', reason)
        FROM cancelled c;
    END IF;
    IF e.status = 'destroyed' THEN
      db := ops._environment_db_name(p, e.name, e.db_name, e.id);
      IF db IS NULL THEN
        PERFORM ops._raise('OD004', format('cannot bring environment "%s" back: its database name is taken', e.name));
      END IF;
    END IF;
  END IF;
  UPDATE ops.environments x SET status = 'active', destroyed_at = NULL, db_name = db,
                                expires_at = now() + ttl, updated_at = now()
   WHERE x.id = e.id
  RETURNING * INTO e;
  RETURN e;
END $$;

CREATE FUNCTION ops._branch_environment(p ops.projects, template ops.environments, branch text,
                                        OUT env ops.environments, OUT created boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  ttl interval := make_interval(hours => 24 * coalesce((p.settings ->> 'development_ttl_days')::int, 3));
  slug text;
  db text;
BEGIN
  SELECT * INTO env FROM ops.environments x
   WHERE x.project_id = p.id AND x.branch = _branch_environment.branch AND x.stage = 'development'
   ORDER BY x.status = 'destroyed', x.id DESC LIMIT 1;
  IF FOUND THEN
    created := env.status = 'destroyed';
    env := ops._revive_environment(p, env, ttl, 'branch pushed again');
    RETURN;
  END IF;
  slug := ops.branch_slug(branch, 40);
  IF EXISTS (SELECT 1 FROM ops.environments x WHERE x.project_id = p.id AND x.name = 'dev-' || slug) THEN
    slug := ops.branch_slug(branch, 40, hashed => true);
  END IF;
  db := ops._environment_db_name(p, 'dev-' || slug, replace(left(p.slug, 20) || '_' || slug, '-', '_'));
  INSERT INTO ops.environments (project_id, name, stage, db_name, settings, branch, expires_at)
  SELECT p.id, 'dev-' || slug, 'development', db, template.settings, branch, now() + ttl
   WHERE db IS NOT NULL
  ON CONFLICT DO NOTHING
  RETURNING * INTO env;
  IF env.id IS NULL THEN
    -- Only an environment created by hand under the hashed name (or a
    -- SHA-256 prefix shared by two branches) gets here.
    RAISE EXCEPTION USING ERRCODE = 'OD004',
      MESSAGE = format('cannot create an environment for branch "%s": its name is taken', branch),
      DETAIL = format('Environment "dev-%s" or its database name already exists.', slug),
      HINT = 'Rename or destroy that environment, then push again.';
  END IF;
  created := true;
END $$;

CREATE FUNCTION ops._preview_environment(p ops.projects, number integer,
                                         OUT env ops.environments, OUT created boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  ttl interval := make_interval(hours => 24 * coalesce((p.settings ->> 'preview_ttl_days')::int, 7));
  name text := 'pr-' || number;
  db text;
BEGIN
  SELECT * INTO env FROM ops.environments x
   WHERE x.project_id = p.id AND x.pull_request = number AND x.stage = 'preview'
   ORDER BY x.status = 'destroyed', x.id DESC LIMIT 1;
  IF FOUND THEN
    created := env.status = 'destroyed';
    env := ops._revive_environment(p, env, ttl, 'pull request reopened');
    RETURN;
  END IF;
  db := ops._environment_db_name(p, name, replace(left(p.slug, 20) || '_' || name, '-', '_'));
  INSERT INTO ops.environments (project_id, name, stage, db_name, branch, pull_request, expires_at)
  SELECT p.id, name, 'preview', db, NULL, number, now() + ttl
   WHERE db IS NOT NULL
  ON CONFLICT DO NOTHING
  RETURNING * INTO env;
  IF env.id IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004',
      MESSAGE = format('cannot create the preview environment of pull request %s: its name is taken', number),
      DETAIL = format('Environment "%s" or its database name already exists.', name),
      HINT = 'Rename or destroy that environment, then reopen the pull request.';
  END IF;
  created := true;
END $$;

CREATE FUNCTION ops._ingest_github_organization(event text, delivery_id text, signature text, body text,
                                                payload jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  login text := payload -> 'organization' ->> 'login';
  projects integer;
  secrets text[];
BEGIN
  -- GitHub logins: letters, digits and single hyphens, at most 39 characters.
  IF login IS NULL OR login !~ '^[A-Za-z0-9][A-Za-z0-9-]{0,38}$' THEN
    PERFORM ops._raise('OD004', 'webhook body has no repository and no valid organization login');
  END IF;
  SELECT count(*), array_agg(DISTINCT s.value) FILTER (WHERE s.value IS NOT NULL) INTO projects, secrets
    FROM ops.projects x
    LEFT JOIN ops.project_secrets s ON s.project_id = x.id AND s.name = 'github_webhook_secret'
   WHERE lower(split_part(x.repo_full_name, '/', 1)) = lower(login);
  IF projects = 0 THEN
    PERFORM ops._raise('OD002', format('no project for organization "%s"', login));
  END IF;
  IF secrets IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'OD011',
      MESSAGE = format('no project of organization "%s" has a github_webhook_secret', login),
      HINT = 'Set the organization webhook''s secret on its projects with ops.set_project_secret(project_id, ''github_webhook_secret'', ...).';
  END IF;
  IF signature IS NULL
     OR NOT EXISTS (SELECT 1 FROM unnest(secrets) k WHERE ops.github_signature_valid(k, body, signature)) THEN
    RAISE EXCEPTION USING ERRCODE = 'OD011', MESSAGE = 'invalid or missing X-Hub-Signature-256';
  END IF;
  RETURN jsonb_build_object('delivery', delivery_id, 'event', event, 'organization', login, 'ok', true,
                            'queued', '[]'::jsonb, 'created_environments', '[]'::jsonb)
         || CASE WHEN event = 'ping' THEN jsonb_build_object('pong', true)
                 ELSE jsonb_build_object('ignored', format('event %s without a repository is not handled', event)) END;
END $$;

CREATE OR REPLACE FUNCTION ops.ingest_github(event text, delivery_id text, signature text, body text)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  payload jsonb;
  p ops.projects;
  secret text;
  e ops.environments;
  made record;
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
  IF jsonb_typeof(payload) <> 'object' THEN
    PERFORM ops._raise('OD004', 'webhook body has no repository');
  END IF;
  IF jsonb_typeof(payload -> 'repository') IS DISTINCT FROM 'object' THEN
    IF jsonb_typeof(payload -> 'organization') = 'object' THEN
      RETURN ops._ingest_github_organization(event, delivery_id, signature, body, payload);
    END IF;
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
  -- One delivery of a project at a time: environment names are chosen by
  -- looking at the project's environments, and a branch pushed twice in
  -- quick succession must find the environment the first push made.
  PERFORM pg_advisory_xact_lock(1869571957, hashint8(p.id));

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
      PERFORM ops._check_branch_length(ref_branch);
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
          SELECT * INTO made FROM ops._branch_environment(p, e, ref_branch);
          e := made.env;
          IF made.created THEN
            created := created || jsonb_build_array(e.name);
          END IF;
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
    PERFORM ops._check_branch_length(ref_branch);
    SELECT * INTO e FROM ops.environments x
     WHERE x.project_id = p.id AND x.pull_request = (payload ->> 'number')::int AND x.status = 'active';
    IF payload ->> 'action' IN ('opened', 'reopened', 'synchronize') THEN
      -- A reopened pull request gets its preview environment back.
      SELECT * INTO made FROM ops._preview_environment(p, (payload ->> 'number')::int);
      e := made.env;
      IF made.created THEN
        created := created || jsonb_build_array(e.name);
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

REVOKE EXECUTE ON FUNCTION ops._check_branch_length(text), ops._environment_db_name(ops.projects, text, text, bigint),
  ops._revive_environment(ops.projects, ops.environments, interval, text),
  ops._branch_environment(ops.projects, ops.environments, text),
  ops._preview_environment(ops.projects, integer),
  ops._ingest_github_organization(text, text, text, text, jsonb)
  FROM PUBLIC;
