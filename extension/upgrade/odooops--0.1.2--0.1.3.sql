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


-- Input limits (docs/errors.md): every text and JSON argument of the RPCs
-- below is bounded, refused with OD005 before anything changes. The native
-- functions' limits come with the library. CREATE OR REPLACE resets
-- SECURITY DEFINER and SET, which 80_security.sql gives some of these by
-- ALTER FUNCTION: they are repeated here.
CREATE FUNCTION ops._check_length(field text, value text, max_chars integer)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  -- octet_length() reads the header only: most texts are decided without
  -- counting characters.
  IF octet_length(value) > max_chars AND length(value) > max_chars THEN
    RAISE EXCEPTION USING ERRCODE = 'OD005', MESSAGE = field || ' is too long',
      DETAIL = format('%s characters, the limit is %s.', length(value), max_chars);
  END IF;
END $$;
COMMENT ON FUNCTION ops._check_length IS
  'Raises OD005 when a text argument is longer than max_chars characters';
REVOKE EXECUTE ON FUNCTION ops._check_length(text, text, integer) FROM PUBLIC;
CREATE FUNCTION ops._check_json_size(field text, value jsonb, max_bytes integer)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  bytes integer;
BEGIN
  IF value IS NULL THEN
    RETURN;
  END IF;
  bytes := octet_length(value::text);
  IF bytes > max_bytes THEN
    RAISE EXCEPTION USING ERRCODE = 'OD005', MESSAGE = field || ' is too large',
      DETAIL = format('%s bytes of JSON, the limit is %s.', bytes, max_bytes);
  END IF;
END $$;
COMMENT ON FUNCTION ops._check_json_size IS
  'Raises OD005 when a JSON argument''s text is longer than max_bytes bytes';
REVOKE EXECUTE ON FUNCTION ops._check_json_size(text, jsonb, integer) FROM PUBLIC;
CREATE OR REPLACE FUNCTION ops.create_project(slug text, name text, repo_url text DEFAULT NULL,
                                   repo_full_name text DEFAULT NULL)
RETURNS ops.projects LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  actor text := ops.current_user_id();
  project ops.projects;
BEGIN
  IF actor IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'only an identified user can create a project';
  END IF;
  PERFORM ops._check_length('name', name, 200);
  PERFORM ops._check_length('repo_url', repo_url, 2048);
  PERFORM ops._check_length('repo_full_name', repo_full_name, 255);
  IF slug IS NULL OR slug !~ '^[a-z0-9][a-z0-9-]{0,62}$' THEN
    PERFORM ops._raise('OD004', 'slug must be 1-63 lowercase letters, digits or dashes');
  END IF;
  IF EXISTS (SELECT 1 FROM ops.projects p WHERE p.slug = create_project.slug) THEN
    PERFORM ops._raise('OD004', format('a project "%s" already exists', slug));
  END IF;
  INSERT INTO ops.projects (slug, name, repo_url, repo_full_name)
  VALUES (slug, name, repo_url, repo_full_name) RETURNING * INTO project;
  INSERT INTO ops.project_members (project_id, user_id, role, added_by)
  VALUES (project.id, actor, 'owner', actor);
  PERFORM ops.audit(project.id, 'project.create', 'project', project.id);
  RETURN project;
END $$;
CREATE OR REPLACE FUNCTION ops.run_context(run_id bigint, worker_id text, attempt integer)
RETURNS jsonb LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result jsonb;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  SELECT jsonb_build_object(
           'run', to_jsonb(r),
           'project', jsonb_build_object('id', p.id, 'slug', p.slug, 'repo_url', p.repo_url,
                                         'repo_full_name', p.repo_full_name,
                                         'production_branch', p.production_branch, 'settings', p.settings),
           'environment', jsonb_build_object('id', e.id, 'name', e.name, 'stage', e.stage,
                                             'db_name', e.db_name, 'settings', e.settings),
           'backup', (SELECT to_jsonb(b) || jsonb_build_object('source_environment', se.name,
                                                                'source_db', se.db_name, 'source_stage', se.stage,
                                                                'purpose', k.purpose)
                        FROM ops.backups b JOIN ops.environments se ON se.id = b.environment_id
                       WHERE CASE WHEN r.workflow <> 'deploy'
                                    THEN b.id = k.named_id OR (r.metadata ->> 'backup_id' IS NULL AND b.run_id = r.id)
                                  WHEN k.purpose = 'rollback'
                                    THEN b.id = k.restore_id AND b.environment_id = r.environment_id
                                  WHEN k.purpose = 'refresh'
                                    THEN b.project_id = r.project_id AND se.stage = 'production'
                                         AND b.status = 'completed'
                                  ELSE false END
                       ORDER BY b.completed_at DESC NULLS LAST, b.id DESC LIMIT 1))
    INTO result
    FROM ops.runs r JOIN ops.projects p ON p.id = r.project_id JOIN ops.environments e ON e.id = r.environment_id
         CROSS JOIN LATERAL (
           SELECT CASE WHEN r.workflow <> 'deploy' THEN r.workflow
                       WHEN r.metadata ? 'restore_backup_id' THEN 'rollback'
                       WHEN e.stage = 'staging' THEN 'refresh' END AS purpose,
                  CASE WHEN r.metadata ->> 'backup_id' ~ '^[0-9]{1,18}$'
                       THEN (r.metadata ->> 'backup_id')::bigint END AS named_id,
                  CASE WHEN r.metadata ->> 'restore_backup_id' ~ '^[0-9]{1,18}$'
                       THEN (r.metadata ->> 'restore_backup_id')::bigint END AS restore_id) k
   WHERE r.id = run_context.run_id AND r.status IN ('claimed', 'running')
     AND r.claimed_by = run_context.worker_id AND r.attempt = run_context.attempt;
  IF result IS NULL THEN
    IF NOT EXISTS (SELECT 1 FROM ops.runs r WHERE r.id = run_context.run_id) THEN
      PERFORM ops._raise('OD002', format('run %s does not exist', run_id));
    END IF;
    PERFORM ops._raise('OD003', format('worker "%s" no longer holds run %s', worker_id, run_id));
  END IF;
  RETURN result;
END $$;
CREATE OR REPLACE FUNCTION ops.record_artifact(run_id bigint, worker_id text, attempt integer, kind text, name text,
                                    location text, size_bytes bigint DEFAULT NULL, sha256 text DEFAULT NULL,
                                    metadata jsonb DEFAULT '{}', expires_at timestamptz DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT ops._check_length('worker_id', worker_id, 128), ops._check_length('name', name, 255),
         ops._check_length('location', location, 2048), ops._check_json_size('metadata', metadata, 262144);
  INSERT INTO ops.artifacts AS a (run_id, project_id, kind, name, location, size_bytes, sha256, metadata, expires_at)
  SELECT r.id, r.project_id, kind, name, location, size_bytes, sha256, coalesce(metadata, '{}'), expires_at
    FROM ops.runs r
   WHERE r.id = record_artifact.run_id AND r.claimed_by = record_artifact.worker_id
     AND r.attempt = record_artifact.attempt AND r.status = 'running'
     FOR SHARE OF r
  ON CONFLICT (run_id, name) DO UPDATE SET location = EXCLUDED.location, size_bytes = EXCLUDED.size_bytes,
     sha256 = EXCLUDED.sha256, metadata = EXCLUDED.metadata, expires_at = EXCLUDED.expires_at
  RETURNING a.id
$$;
CREATE OR REPLACE FUNCTION ops.set_agent_status(worker_id text, status text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result text;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  IF status IS NULL OR status NOT IN ('active', 'draining', 'offline') THEN
    PERFORM ops._raise('OD004', 'status must be active, draining or offline');
  END IF;
  UPDATE ops.agents a SET status = CASE WHEN a.status = 'disabled' THEN 'disabled' ELSE set_agent_status.status END,
         last_heartbeat_at = now()
   WHERE a.worker_id = set_agent_status.worker_id
  RETURNING a.status INTO result;
  IF result IS NULL THEN
    PERFORM ops._raise('OD002', format('unknown worker "%s"', worker_id));
  END IF;
  INSERT INTO ops.agent_events (agent_id, kind, message)
  SELECT a.id, 'status', format('worker %s is %s', a.worker_id, result) FROM ops.agents a
   WHERE a.worker_id = set_agent_status.worker_id;
  RETURN result;
END $$;
CREATE OR REPLACE FUNCTION ops.destroy_environment(project_id bigint, env text, reason text DEFAULT NULL)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  queued jsonb;
  run ops.runs;
BEGIN
  PERFORM ops._check_length('env', env, 255);
  PERFORM ops._check_length('reason', reason, 8192);
  SELECT * INTO e FROM ops.environments x WHERE x.project_id = destroy_environment.project_id AND x.name = env;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  PERFORM ops.authorize(e.project_id, 'env.manage', e.id);
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is already %s', env, e.status));
  END IF;
  queued := ops._destroy_environment(e, jsonb_build_object('reason', coalesce(reason, 'requested'),
                                                           'requested_by', ops.current_actor()));
  SELECT * INTO run FROM ops.runs r WHERE r.id = (queued ->> 'run_id')::bigint;
  RETURN run;
END $$;
CREATE OR REPLACE FUNCTION ops.register_agent(
  worker_id text, kinds text[] DEFAULT NULL, team text DEFAULT NULL,
  labels jsonb DEFAULT '{}', version text DEFAULT NULL, hostname text DEFAULT NULL)
RETURNS ops.agents LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  agent ops.agents;
  team_row ops.agent_teams;
BEGIN
  IF worker_id IS NULL OR length(worker_id) NOT BETWEEN 1 AND 128 THEN
    PERFORM ops._raise('OD004', 'worker_id must be 1 to 128 characters');
  END IF;
  PERFORM ops._check_length('team', team, 255);
  PERFORM ops._check_length('version', version, 64);
  PERFORM ops._check_length('hostname', hostname, 255);
  PERFORM ops._check_json_size('labels', labels, 65536);
  IF cardinality(kinds) > 6 THEN
    RAISE EXCEPTION USING ERRCODE = 'OD005', MESSAGE = 'kinds has too many entries',
      DETAIL = format('%s entries, the limit is 6.', cardinality(kinds));
  END IF;
  IF kinds IS NOT NULL AND (cardinality(kinds) = 0 OR NOT kinds <@
      ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy']) THEN
    PERFORM ops._raise('OD004', 'kinds must be a non-empty list of workflows',
                       'Workflows: build, test, deploy, backup, restore, destroy.');
  END IF;
  IF labels IS NULL OR jsonb_typeof(labels) <> 'object' THEN
    PERFORM ops._raise('OD004', 'labels must be a JSON object');
  END IF;
  IF team IS NOT NULL THEN
    SELECT * INTO team_row FROM ops.agent_teams t WHERE t.name = team;
    IF NOT FOUND THEN
      PERFORM ops._raise('OD002', format('unknown agent team "%s"', team));
    END IF;
  END IF;

  INSERT INTO ops.agents AS a (worker_id, kinds, labels, version, hostname)
  VALUES (register_agent.worker_id,
          coalesce(kinds, ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy']),
          labels, version, hostname)
  ON CONFLICT ON CONSTRAINT agents_worker_id_key DO UPDATE
    SET kinds = EXCLUDED.kinds, labels = EXCLUDED.labels, version = EXCLUDED.version,
        hostname = EXCLUDED.hostname, last_heartbeat_at = now(),
        status = CASE WHEN a.status = 'disabled' THEN 'disabled' ELSE 'active' END
  RETURNING * INTO agent;

  DELETE FROM ops.agent_team_members m WHERE m.agent_id = agent.id
    AND m.team_id IS DISTINCT FROM team_row.id;
  IF team_row.id IS NOT NULL THEN
    INSERT INTO ops.agent_team_members (team_id, agent_id) VALUES (team_row.id, agent.id)
    ON CONFLICT DO NOTHING;
  END IF;

  INSERT INTO ops.agent_events (agent_id, kind, message, payload)
  VALUES (agent.id, 'registered', format('worker %s registered (%s)', agent.worker_id, agent.status),
          jsonb_build_object('kinds', agent.kinds, 'team', team, 'version', agent.version));
  RETURN agent;
END $$;
CREATE OR REPLACE FUNCTION ops.agent_heartbeat(worker_id text, required boolean DEFAULT true) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result text;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  UPDATE ops.agents a SET last_heartbeat_at = now(),
         status = CASE WHEN a.status = 'offline' THEN 'active' ELSE a.status END
   WHERE a.worker_id = agent_heartbeat.worker_id
  RETURNING a.status INTO result;
  IF NOT FOUND AND required THEN
    PERFORM ops._raise('OD002', format('unknown worker "%s"', worker_id),
                       'Register it first with ops.register_agent().');
  END IF;
  RETURN result;
END $$;
CREATE OR REPLACE FUNCTION ops.create_backup(project_id bigint, env text, backup_type text DEFAULT 'manual',
                                  metadata jsonb DEFAULT '{}')
RETURNS TABLE (backup_id bigint, run_id bigint, expires_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  backup ops.backups;
  run ops.runs;
  limit_per_day integer;
BEGIN
  PERFORM ops._check_length('env', env, 255);
  PERFORM ops._check_json_size('metadata', metadata, 262144);
  SELECT * INTO e FROM ops.environments x WHERE x.project_id = create_backup.project_id AND x.name = env;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', env, e.status));
  END IF;
  IF backup_type IS NULL OR backup_type NOT IN ('daily', 'weekly', 'monthly', 'manual', 'pre_deploy', 'pre_restore') THEN
    PERFORM ops._raise('OD004', format('unknown backup type "%s"', backup_type),
                       'Types: daily, weekly, monthly, manual, pre_deploy, pre_restore.');
  END IF;
  IF metadata IS NULL OR jsonb_typeof(metadata) <> 'object' THEN
    PERFORM ops._raise('OD004', 'metadata must be a JSON object');
  END IF;
  PERFORM ops.authorize(e.project_id, 'backup.create', e.id);

  -- Manual backups are limited per environment and day, as on Odoo.sh.
  IF backup_type = 'manual' THEN
    limit_per_day := coalesce((e.settings ->> 'manual_backups_per_day')::int, 5);
    PERFORM pg_advisory_xact_lock(1869571956, hashint8(e.id));
    IF (SELECT count(*) FROM ops.backups b WHERE b.environment_id = e.id AND b.backup_type = 'manual'
          AND b.created_at > now() - interval '1 day') >= limit_per_day THEN
      RAISE EXCEPTION USING ERRCODE = 'OD009',
        MESSAGE = format('environment "%s" already has %s manual backups in the last 24 hours', env, limit_per_day),
        HINT = 'Raise settings.manual_backups_per_day of the environment, or wait.';
    END IF;
  END IF;

  INSERT INTO ops.backups (project_id, environment_id, backup_type, metadata, requested_by, expires_at)
  VALUES (e.project_id, e.id, backup_type, metadata, ops.current_actor(),
          now() + ops.backup_ttl(backup_type, e.settings))
  RETURNING * INTO backup;
  SELECT * INTO run FROM ops.queue_run(e.project_id, e.name, NULL, NULL,
                                       metadata || jsonb_build_object('backup_id', backup.id,
                                                                      'backup_type', backup_type),
                                       'backup');
  UPDATE ops.backups b SET run_id = run.id WHERE b.id = backup.id;
  RETURN QUERY SELECT backup.id, run.id, backup.expires_at;
END $$;
CREATE OR REPLACE FUNCTION ops.complete_backup(backup_id bigint, worker_id text, attempt integer, location text,
                                    size_bytes bigint, sha256 text, metadata jsonb DEFAULT '{}')
RETURNS ops.backups LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  backup ops.backups;
BEGIN
  IF location IS NULL OR length(location) NOT BETWEEN 1 AND 2048 THEN
    PERFORM ops._raise('OD004', 'location must be 1 to 2048 characters');
  END IF;
  IF size_bytes IS NULL OR size_bytes < 0 THEN
    PERFORM ops._raise('OD004', 'size_bytes must be 0 or more');
  END IF;
  IF sha256 IS NULL OR sha256 !~ '^[0-9a-f]{64}$' THEN
    PERFORM ops._raise('OD004', 'sha256 must be 64 lowercase hex digits');
  END IF;
  PERFORM ops._check_json_size('metadata', metadata, 262144);
  SELECT * INTO backup FROM ops.backups b WHERE b.id = complete_backup.backup_id FOR UPDATE;
  IF NOT FOUND OR backup.run_id IS NULL THEN
    PERFORM ops._raise('OD002', format('backup %s does not exist', backup_id));
  END IF;
  UPDATE ops.backups b SET location = complete_backup.location, size_bytes = complete_backup.size_bytes,
         sha256 = complete_backup.sha256, metadata = b.metadata || coalesce(complete_backup.metadata, '{}')
   WHERE b.id = backup.id;
  -- Fenced: a worker that lost the run changes nothing (the UPDATE above is
  -- rolled back with the error). The run trigger marks the backup completed.
  PERFORM ops.finish_run(backup.run_id, 'succeeded',
                         jsonb_build_object('location', location, 'size_bytes', size_bytes, 'sha256', sha256),
                         worker_id, attempt);
  SELECT * INTO backup FROM ops.backups b WHERE b.id = backup.id;
  RETURN backup;
END $$;
CREATE OR REPLACE FUNCTION ops.fail_backup(backup_id bigint, worker_id text, attempt integer, error text)
RETURNS ops.backups LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  backup ops.backups;
BEGIN
  PERFORM ops._check_length('error', error, 8192);
  SELECT * INTO backup FROM ops.backups b WHERE b.id = fail_backup.backup_id;
  IF NOT FOUND OR backup.run_id IS NULL THEN
    PERFORM ops._raise('OD002', format('backup %s does not exist', backup_id));
  END IF;
  PERFORM ops.finish_run(backup.run_id, 'failed',
                         jsonb_build_object('error', coalesce(nullif(error, ''), 'backup failed')),
                         worker_id, attempt);
  SELECT * INTO backup FROM ops.backups b WHERE b.id = backup.id;
  RETURN backup;
END $$;
CREATE OR REPLACE FUNCTION ops.restore_backup(backup_id bigint, target_env_id bigint, requested_by text DEFAULT NULL,
                                   metadata jsonb DEFAULT '{}')
RETURNS ops.restores LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  actor text := ops.current_user_id();
  b ops.backups;
  e ops.environments;
  x ops.restores;
  approval ops.approvals;
BEGIN
  IF actor IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'only an identified user can request a restore';
  END IF;
  -- The requester is the session's user; the parameter is only checked.
  PERFORM ops._check_length('requested_by', requested_by, 255);
  IF requested_by IS NOT NULL AND requested_by <> actor THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = 'requested_by must be the calling user',
      DETAIL = format('The session belongs to %s.', quote_literal(actor));
  END IF;
  IF metadata IS NULL OR jsonb_typeof(metadata) <> 'object' THEN
    PERFORM ops._raise('OD004', 'metadata must be a JSON object');
  END IF;
  PERFORM ops._check_json_size('metadata', metadata, 262144);
  SELECT * INTO b FROM ops.backups WHERE id = backup_id;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('backup %s does not exist', backup_id));
  END IF;
  SELECT * INTO e FROM ops.environments WHERE id = target_env_id;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('environment %s does not exist', target_env_id));
  END IF;
  PERFORM ops.authorize(e.project_id, 'backup.restore', e.id);
  IF e.project_id <> b.project_id THEN
    PERFORM ops._raise('OD004', format('backup %s belongs to another project', backup_id));
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  IF b.status = 'expired' OR b.status = 'deleted' OR (b.status = 'completed' AND b.expires_at <= now()) THEN
    PERFORM ops._raise('OD004', format('backup %s has expired', backup_id));
  END IF;
  IF b.status <> 'completed' THEN
    PERFORM ops._raise('OD004', format('backup %s is %s, not completed', backup_id, b.status));
  END IF;

  IF e.stage = 'production' THEN
    INSERT INTO ops.approvals (project_id, environment_id, subject, subject_id, requested_by)
    VALUES (e.project_id, e.id, 'restore', 0, actor) RETURNING * INTO approval;
    INSERT INTO ops.restores (backup_id, project_id, target_environment_id, approval_id, status,
                              requested_by, metadata)
    VALUES (b.id, e.project_id, e.id, approval.id, 'pending_approval', actor, metadata)
    RETURNING * INTO x;
    UPDATE ops.approvals a SET subject_id = x.id WHERE a.id = approval.id;
    PERFORM ops.audit(e.project_id, 'approval.request', 'restore', x.id,
                      jsonb_build_object('approval_id', approval.id, 'backup_id', b.id,
                                         'environment', e.name));
    RETURN x;
  END IF;

  x.backup_id := b.id;
  x.project_id := e.project_id;
  x.target_environment_id := e.id;
  x.requested_by := actor;
  x.metadata := metadata;
  RETURN ops._queue_restore(x);
END $$;
CREATE OR REPLACE FUNCTION ops.rollback_release(release_id bigint, reason text DEFAULT NULL)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  target ops.releases;
  e ops.environments;
  restore_from bigint;
  run ops.runs;
BEGIN
  PERFORM ops._check_length('reason', reason, 8192);
  SELECT * INTO target FROM ops.releases WHERE id = release_id;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('release %s does not exist', release_id));
  END IF;
  SELECT * INTO e FROM ops.environments WHERE id = target.environment_id;
  PERFORM ops.authorize(e.project_id, 'run.queue', e.id);
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  SELECT r.pre_deploy_backup_id INTO restore_from FROM ops.releases r
   WHERE r.environment_id = target.environment_id AND r.id > target.id
   ORDER BY r.id LIMIT 1;
  SELECT * INTO run FROM ops.queue_run(e.project_id, e.name, target.git_sha, coalesce(target.git_ref, 'rollback'),
    jsonb_build_object('rollback_to_release', target.id, 'image', target.image,
                       'restore_backup_id', restore_from, 'reason', reason),
    'deploy', 100);
  PERFORM ops.audit(e.project_id, 'release.rollback', 'release', target.id,
                    jsonb_build_object('run_id', run.id, 'restore_backup_id', restore_from));
  RETURN run;
END $$;
CREATE OR REPLACE FUNCTION ops.claim_storage_deletions(worker_id text, n integer DEFAULT 10)
RETURNS SETOF ops.storage_deletions LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT ops._check_length('worker_id', worker_id, 128);
  WITH c AS (
    SELECT id FROM ops.storage_deletions
     WHERE status = 'pending' OR (status = 'claimed' AND claimed_at < now() - interval '1 hour')
     ORDER BY id LIMIT least(greatest(n, 1), 1000) FOR UPDATE SKIP LOCKED
  )
  UPDATE ops.storage_deletions d SET status = 'claimed', claimed_by = worker_id, claimed_at = now(),
         attempts = d.attempts + 1
    FROM c WHERE d.id = c.id RETURNING d.*
$$;
CREATE OR REPLACE FUNCTION ops.finish_storage_deletion(deletion_id bigint, ok boolean, error text DEFAULT NULL)
RETURNS ops.storage_deletions LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  d ops.storage_deletions;
BEGIN
  PERFORM ops._check_length('error', error, 8192);
  UPDATE ops.storage_deletions s
     SET status = CASE WHEN ok THEN 'done' WHEN s.attempts >= 5 THEN 'failed' ELSE 'pending' END,
         completed_at = CASE WHEN ok OR s.attempts >= 5 THEN now() END,
         error = finish_storage_deletion.error
   WHERE s.id = deletion_id AND s.status = 'claimed' RETURNING * INTO d;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('storage deletion %s is not claimed', deletion_id));
  END IF;
  IF ok AND d.object_kind = 'backup' THEN
    UPDATE ops.backups SET status = 'deleted' WHERE id = d.object_id AND status = 'expired';
  END IF;
  RETURN d;
END $$;

-- Columns people write directly (PostgREST) get the limits the RPCs have.
ALTER TABLE ops.projects
  ADD CONSTRAINT projects_repo_full_name_length CHECK (length(repo_full_name) <= 255),
  ADD CONSTRAINT projects_settings_size CHECK (octet_length(settings::text) <= 65536);
ALTER TABLE ops.environments
  ADD CONSTRAINT environments_settings_size CHECK (octet_length(settings::text) <= 65536);
ALTER TABLE ops.project_members
  ADD CONSTRAINT project_members_added_by_length CHECK (length(added_by) <= 255);
ALTER TABLE ops.env_permissions
  ADD CONSTRAINT env_permissions_permission_length CHECK (length(permission) <= 64);
