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


-- Function resolution: every SECURITY DEFINER function pins its search_path
-- (0.1.2 left the native API functions to the caller's path, so a caller's
-- own `=` operator could run with the extension owner's rights). The pure
-- native helpers read only their arguments and run as the caller.
ALTER FUNCTION ops.user_has_permission(bigint, text, bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.user_has_stage_permission(bigint, text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.queue_run(bigint, text, text, text, jsonb, text, integer, text, integer)
  SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops._queue_run_trusted(bigint, text, text, text, jsonb, text, integer, text, integer)
  SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.claim_next_run(text, integer, text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.claim_runs(text, integer, integer, text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.start_run(bigint, text, integer, integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.heartbeat_run(bigint, text, integer, integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.release_run(bigint, text, integer, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.append_event(bigint, text, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.append_event(bigint, text, text, jsonb, text, integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.append_events(bigint, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.append_events(bigint, jsonb, text, integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.finish_run(bigint, text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.finish_run(bigint, text, jsonb, text, integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.finish_runs(text, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.cancel_run(bigint, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.requeue_expired_runs(integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops._wake_scheduler() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops._wake_dispatcher() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.apply_backup_retention() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION ops.github_signature_valid(text, text, text) SECURITY INVOKER;
ALTER FUNCTION ops.branch_matches(text, text) SECURITY INVOKER;
ALTER FUNCTION ops.branch_slug(text, integer) SECURITY INVOKER;
ALTER FUNCTION ops.cron_next(text, timestamptz) SECURITY INVOKER;

-- Every public function is documented in the catalog.
COMMENT ON FUNCTION ops.run_context IS
  'What a worker needs to execute a run it holds: the run, its project and environment, and the backup involved';
COMMENT ON FUNCTION ops.record_artifact IS 'Records (or replaces) an artifact of a run the worker holds';
COMMENT ON FUNCTION ops.set_agent_status IS 'A worker marks itself draining or offline (a disabled worker stays disabled)';
COMMENT ON FUNCTION ops.agent_heartbeat IS 'Records that a worker is alive and returns its status';
COMMENT ON FUNCTION ops.expire_approvals IS 'Expires pending approvals past their expiry (their restores and deploys never run); returns how many';
COMMENT ON FUNCTION ops.claim_storage_deletions IS 'Claims up to n pending storage deletions for the worker daemon';
COMMENT ON FUNCTION ops.finish_storage_deletion IS 'Records the outcome of a claimed storage deletion (a deleted backup becomes deleted)';
COMMENT ON FUNCTION ops.apply_backup_retention IS 'Expires completed automatic backups beyond the daily/weekly/monthly counts; returns how many';
COMMENT ON FUNCTION ops.expire_artifacts IS 'Expires artifacts past expires_at and queues their objects for deletion; returns how many';
COMMENT ON FUNCTION ops.invoking_role IS 'The role a call was made as (the SET ROLE target, else the login), even inside SECURITY DEFINER functions';
COMMENT ON FUNCTION ops.is_admin IS 'True for platform administrators (members of odooops_admin)';
COMMENT ON FUNCTION ops.current_actor IS 'The actor recorded in events and audit rows: the calling user, else the invoking role';
COMMENT ON FUNCTION ops.user_has_permission IS 'Whether the calling user holds a permission on a project (and, given an environment, on that environment)';
COMMENT ON FUNCTION ops.user_has_stage_permission IS 'Whether the calling user holds a permission for environments of a stage in a project';
COMMENT ON FUNCTION ops.can_read_project IS 'Whether the calling user may read a project (member or administrator); used by row-level security';
COMMENT ON FUNCTION ops.authorize IS 'Raises 42501 unless the calling user holds the permission on the project (and environment)';
COMMENT ON FUNCTION ops.audit IS 'Appends a row to the audit log of a project';
COMMENT ON FUNCTION ops.create_project IS 'Creates a project; its creator becomes its owner';
COMMENT ON FUNCTION ops.set_project_secret IS 'Sets a project secret (write-only: values are never readable through the API)';
COMMENT ON FUNCTION ops.expire_environments IS 'Destroys development and preview environments past their expiry; returns how many';
COMMENT ON FUNCTION ops.append_events(bigint, jsonb) IS 'Appends a batch of log lines to a run, in order (people: comments on runs they may manage)';
COMMENT ON FUNCTION ops.backup_ttl IS 'How long a backup of a type is kept before count-based retention (environment settings may override)';
COMMENT ON FUNCTION ops.claim_next_backup IS 'Claims and starts the next backup run; returns what the worker needs to dump the database';
COMMENT ON FUNCTION ops.complete_backup IS 'Records a finished backup (location, size, SHA-256) for the worker holding its run';
COMMENT ON FUNCTION ops.fail_backup IS 'Records a failed backup for the worker holding its run';
COMMENT ON FUNCTION ops.github_signature_valid IS 'Checks a GitHub X-Hub-Signature-256 header against the raw body and a secret';
COMMENT ON FUNCTION ops.branch_matches IS 'Whether a branch name matches a branch pattern (* matches within a path segment, ** across)';
COMMENT ON FUNCTION ops.branch_slug IS 'A branch name as a lowercase [a-z0-9_-] slug of at most max_length characters (a short hash keeps long names distinct)';
COMMENT ON FUNCTION ops.github_webhook IS 'PostgREST entry point for GitHub webhooks: reads the headers and raw body of the request and calls ops.ingest_github';
COMMENT ON FUNCTION ops.alert_conditions IS 'The conditions that should have an open alert right now';
COMMENT ON FUNCTION ops.resolve_alert IS 'Resolves an open alert';
COMMENT ON FUNCTION ops.prune_webhook_history IS 'Clears old webhook response bodies and deletes delivered deliveries past their retention; returns rows touched';

-- Settings safety: what projects and environments may point at.
-- Existing rows that break the new database-name or repository rules stop
-- the upgrade with the list (nothing is renamed behind the operator's back:
-- a database name is also a database on a server). Setting keys that once
-- chose executables, paths or the runtime are removed with a warning.
DO $$
DECLARE
  bad text;
BEGIN
  SELECT string_agg(format('environment %s (%s of project %s, %s): db_name "%s"', e.id, e.name, e.project_id,
                           e.status, e.db_name), '; ' ORDER BY e.id)
    INTO bad
    FROM ops.environments e
   WHERE e.db_name !~ '^[a-z0-9][a-z0-9_]{1,62}$'
      OR e.db_name IN ('postgres', 'template0', 'template1', pg_catalog.current_database())
      OR e.db_name = pg_catalog.current_setting('odooops.database', true)
      OR e.db_name ~ '_(pre|restore|test)_[0-9]+$'
      OR EXISTS (SELECT 1 FROM ops.environments o WHERE o.db_name = e.db_name AND o.id <> e.id);
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004',
      MESSAGE = 'cannot upgrade odooops: environments whose db_name breaks the 0.1.3 rules',
      DETAIL = bad,
      HINT = 'db_name: 2 to 63 lowercase letters, digits and underscores, never a system or the control plane''s database, '
             'never ending in _pre_<n>, _restore_<n> or _test_<n>, unique across all environments (destroyed ones too). '
             'Rename those databases and rows (docs/operator-config.md), then run ALTER EXTENSION odooops UPDATE again.';
  END IF;
  SELECT string_agg(format('projects %s: repo_full_name "%s"', ids, name), '; ')
    INTO bad
    FROM (SELECT lower(p.repo_full_name) AS name, string_agg(p.id::text, ', ' ORDER BY p.id) AS ids
            FROM ops.projects p WHERE p.repo_full_name IS NOT NULL
           GROUP BY lower(p.repo_full_name) HAVING count(*) > 1) d;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004',
      MESSAGE = 'cannot upgrade odooops: projects share a GitHub repository',
      DETAIL = bad,
      HINT = 'Keep repo_full_name on the project that owns the repository, then run ALTER EXTENSION odooops UPDATE again.';
  END IF;
  SELECT string_agg(format('project %s: %s = %s', p.id, k, p.settings -> k), '; ' ORDER BY p.id, k) INTO bad
    FROM ops.projects p, jsonb_object_keys(p.settings) k
   WHERE k IN ('odoo_bin', 'odoo_addons', 'odoo_image', 'runtime', 'docker_db_host', 'repo_url');
  IF bad IS NOT NULL THEN
    RAISE WARNING 'odooops: removed project settings that are no longer read: %', bad
      USING HINT = 'Executables, paths and the runtime come from ops.runtime_profiles (docs/operator-config.md).';
    UPDATE ops.projects SET settings = settings - ARRAY['odoo_bin', 'odoo_addons', 'odoo_image', 'runtime',
                                                        'docker_db_host', 'repo_url']
     WHERE settings ?| ARRAY['odoo_bin', 'odoo_addons', 'odoo_image', 'runtime', 'docker_db_host', 'repo_url'];
  END IF;
  SELECT string_agg(format('environment %s: %s = %s', e.id, k, e.settings -> k), '; ' ORDER BY e.id, k) INTO bad
    FROM ops.environments e, jsonb_object_keys(e.settings) k
   WHERE k IN ('odoo_bin', 'odoo_addons', 'odoo_image', 'runtime', 'docker_db_host', 'repo_url');
  IF bad IS NOT NULL THEN
    RAISE WARNING 'odooops: removed environment settings that are no longer read: %', bad
      USING HINT = 'Executables, paths and the runtime come from ops.runtime_profiles (docs/operator-config.md): '
                   'create the profiles these environments need and set their runtime_profile.';
    UPDATE ops.environments SET settings = settings - ARRAY['odoo_bin', 'odoo_addons', 'odoo_image', 'runtime',
                                                            'docker_db_host', 'repo_url']
     WHERE settings ?| ARRAY['odoo_bin', 'odoo_addons', 'odoo_image', 'runtime', 'docker_db_host', 'repo_url'];
  END IF;
END $$;

CREATE TABLE ops.runtime_profiles (
  name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
  runtime     text NOT NULL DEFAULT 'process' CHECK (runtime IN ('process', 'docker')),
  -- absolute paths of plain segments: no "..", no blanks or shell characters
  odoo_bin    text CHECK (length(odoo_bin) <= 1024 AND odoo_bin ~ '^(/[A-Za-z0-9_.+-]+)+$'
                          AND odoo_bin !~ '/\.\.?(/|$)'),
  odoo_addons text CHECK (length(odoo_addons) <= 4096
                          AND odoo_addons ~ '^(/[A-Za-z0-9_.+-]+)+(,(/[A-Za-z0-9_.+-]+)+)*$'
                          AND odoo_addons !~ '/\.\.?(/|,|$)'),
  odoo_image  text CHECK (odoo_image ~ '^[a-z0-9][A-Za-z0-9._/:@-]{0,254}$'),
  description text CHECK (length(description) <= 1000),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.runtime_profiles IS
  'How Odoo runs (runtime, odoo-bin, addons directories, image), as the operator configured it; environments and projects choose one by name';

ALTER TABLE ops.projects ADD COLUMN runtime_profile text REFERENCES ops.runtime_profiles;
CREATE UNIQUE INDEX projects_repo_full_name_unique ON ops.projects (lower(repo_full_name));
ALTER TABLE ops.environments
  DROP CONSTRAINT environments_db_name_check,
  ADD CONSTRAINT environments_db_name_check CHECK (db_name ~ '^[a-z0-9][a-z0-9_]{1,62}$'),
  ADD CONSTRAINT environments_db_name_key UNIQUE (db_name),
  ADD COLUMN runtime_profile text REFERENCES ops.runtime_profiles;
DROP INDEX ops.environments_db_name_live;

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

CREATE FUNCTION ops.repo_url_scheme(url text) RETURNS text LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'odooops_repo_url_scheme';
COMMENT ON FUNCTION ops.repo_url_scheme IS
  'The git transport of a repository URL (https, http, ssh, git, file); raises OD004 when it is malformed or not in odooops.repo_url_schemes';

-- Setting keys that once chose executables, host paths, the runtime or the
-- repository. They are not read any more and are refused, so nobody
-- believes they still take effect.
CREATE FUNCTION ops._check_settings(settings jsonb) RETURNS void LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  key text;
BEGIN
  SELECT k INTO key FROM pg_catalog.jsonb_object_keys(settings) k
   WHERE k IN ('odoo_bin', 'odoo_addons', 'odoo_image', 'runtime', 'docker_db_host', 'repo_url')
   ORDER BY k LIMIT 1;
  IF key = 'repo_url' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004',
      MESSAGE = 'settings.repo_url cannot be set: the repository is the project''s repo_url';
  ELSIF key IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004',
      MESSAGE = format('settings.%s cannot be set: executables, paths and the runtime come from the operator''s configuration', key),
      HINT = 'Choose one of ops.runtime_profiles with runtime_profile.';
  END IF;
END $$;

CREATE FUNCTION ops._check_db_name(db_name text) RETURNS void LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF db_name !~ '^[a-z0-9][a-z0-9_]{1,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004', MESSAGE = format('db_name "%s" is not a valid database name', db_name),
      DETAIL = 'Use 2 to 63 lowercase letters, digits and underscores, starting with a letter or digit.';
  END IF;
  IF db_name IN ('postgres', 'template0', 'template1') THEN
    PERFORM ops._raise('OD004', format('db_name "%s" is a system database', db_name));
  END IF;
  IF db_name = pg_catalog.current_database() OR db_name = pg_catalog.current_setting('odooops.database', true) THEN
    PERFORM ops._raise('OD004', format('db_name "%s" is the control plane''s own database', db_name));
  END IF;
  -- The worker creates and drops <db>_pre_<run> (snapshots before an
  -- update), <db>_restore_<run> and <db>_test_<run> (truncated to 40 + the
  -- suffix): no environment may own such a name, or another environment's
  -- deploy would drop it.
  IF db_name ~ '_(pre|restore|test)_[0-9]+$' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004',
      MESSAGE = format('db_name "%s" is reserved for the worker''s temporary databases', db_name),
      DETAIL = 'Names ending in _pre_<n>, _restore_<n> or _test_<n> are snapshots, restores and test databases the worker creates and drops.';
  END IF;
  -- Another application's database on this server: destroying the
  -- environment would drop it. The operator may still adopt one (a
  -- migration into odooops).
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_database d WHERE d.datname = db_name) AND NOT ops.is_operator() THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('a database named "%s" already exists on this server', db_name),
      DETAIL = 'Only the operator (a superuser or the extension owner) attaches an environment to an existing database.';
  END IF;
END $$;

-- Runs as the extension owner so that the checks it calls need no grants;
-- it reads only the row and the catalogs. The uniqueness of db_name across
-- all environments is the table's own constraint.
CREATE FUNCTION ops._environment_rules() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.db_name IS DISTINCT FROM OLD.db_name AND NOT ops.is_operator() THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('the database of environment "%s" cannot be changed', OLD.name),
      DETAIL = 'Only the operator (a superuser or the extension owner) points an environment at another database.';
  END IF;
  IF TG_OP = 'INSERT' OR NEW.db_name IS DISTINCT FROM OLD.db_name THEN
    PERFORM ops._check_db_name(NEW.db_name);
  END IF;
  IF TG_OP = 'INSERT' OR NEW.settings IS DISTINCT FROM OLD.settings THEN
    PERFORM ops._check_settings(NEW.settings);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER environments_rules BEFORE INSERT OR UPDATE OF db_name, settings ON ops.environments
  FOR EACH ROW EXECUTE FUNCTION ops._environment_rules();

-- The same for projects: repo_url within the operator's transports.
-- repo_full_name is unique case-insensitively (projects_repo_full_name_unique).
CREATE FUNCTION ops._project_rules() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.repo_url IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.repo_url IS DISTINCT FROM OLD.repo_url) THEN
    PERFORM ops.repo_url_scheme(NEW.repo_url);
  END IF;
  IF TG_OP = 'INSERT' OR NEW.settings IS DISTINCT FROM OLD.settings THEN
    PERFORM ops._check_settings(NEW.settings);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER projects_rules BEFORE INSERT OR UPDATE OF repo_url, settings ON ops.projects
  FOR EACH ROW EXECUTE FUNCTION ops._project_rules();

CREATE OR REPLACE FUNCTION ops.run_context(run_id bigint, worker_id text, attempt integer)
RETURNS jsonb LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result jsonb;
BEGIN
  SELECT jsonb_build_object(
           'run', to_jsonb(r),
           'project', jsonb_build_object('id', p.id, 'slug', p.slug, 'repo_url', p.repo_url,
                                         'repo_full_name', p.repo_full_name,
                                         'production_branch', p.production_branch, 'settings', p.settings),
           'environment', jsonb_build_object('id', e.id, 'name', e.name, 'stage', e.stage,
                                             'db_name', e.db_name, 'settings', e.settings),
           'runtime', (SELECT jsonb_build_object('name', rp.name, 'runtime', rp.runtime, 'odoo_bin', rp.odoo_bin,
                                                 'odoo_addons', rp.odoo_addons, 'odoo_image', rp.odoo_image)
                         FROM ops.runtime_profiles rp
                        WHERE rp.name = coalesce(e.runtime_profile, p.runtime_profile)),
           'repo_url_schemes', pg_catalog.current_setting('odooops.repo_url_schemes'),
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
  IF result -> 'run' ->> 'workflow' IN ('build', 'test', 'deploy') THEN
    PERFORM ops.repo_url_scheme(result -> 'project' ->> 'repo_url');
  END IF;
  RETURN result;
END $$;

REVOKE EXECUTE ON FUNCTION ops.is_operator(), ops.repo_url_scheme(text), ops._check_settings(jsonb),
  ops._check_db_name(text), ops._environment_rules(), ops._project_rules() FROM PUBLIC;

GRANT UPDATE (runtime_profile) ON ops.projects TO odooops_api;
GRANT INSERT (runtime_profile), UPDATE (runtime_profile) ON ops.environments TO odooops_api;
GRANT SELECT ON ops.runtime_profiles TO odooops_api;
GRANT SELECT ON ops.runtime_profiles TO odooops_admin;
ALTER TABLE ops.runtime_profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON ops.runtime_profiles TO odooops_admin USING (true) WITH CHECK (true);
CREATE POLICY runtime_profiles_all_select ON ops.runtime_profiles FOR SELECT TO odooops_api USING (true);
