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

-- Authorization per action: each workflow needs its own permission on the
-- environment (run.build, run.test, run.deploy replace run.queue); backups,
-- restores and destruction are queued only through their RPCs; requests
-- cannot set the metadata odooops writes; metadata references must belong
-- to the run's project.
INSERT INTO ops.policies (role, permission, stage)
SELECT p.role, w.permission, p.stage
  FROM ops.policies p, (VALUES ('run.build'), ('run.test'), ('run.deploy')) w(permission)
 WHERE p.permission = 'run.queue'
ON CONFLICT DO NOTHING;
DELETE FROM ops.policies WHERE permission = 'run.queue';
INSERT INTO ops.env_permissions (environment_id, user_id, permission, effect, created_at)
SELECT x.environment_id, x.user_id, w.permission, x.effect, x.created_at
  FROM ops.env_permissions x, (VALUES ('run.build'), ('run.test'), ('run.deploy')) w(permission)
 WHERE x.permission = 'run.queue'
ON CONFLICT DO NOTHING;
DELETE FROM ops.env_permissions WHERE permission = 'run.queue';

CREATE FUNCTION ops._check_request_metadata(metadata jsonb) RETURNS void
LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'odooops_check_request_metadata';
COMMENT ON FUNCTION ops._check_request_metadata IS 'Raises OD004 when a request sets a run metadata key that odooops writes itself';
REVOKE EXECUTE ON FUNCTION ops._check_request_metadata(jsonb) FROM PUBLIC;
COMMENT ON FUNCTION ops._queue_run_trusted IS
  'ops.queue_run for internal callers that authorized the action themselves (create_backup, restore_backup, ingest); metadata references are still checked';
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
  -- Outside the project its environments are as unknown as missing ones.
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
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
  PERFORM ops._check_request_metadata(metadata);
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
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, NULL, NULL,
                                                metadata || jsonb_build_object('backup_id', backup.id,
                                                                               'backup_type', backup_type),
                                                'backup');
  UPDATE ops.backups b SET run_id = run.id WHERE b.id = backup.id;
  RETURN QUERY SELECT backup.id, run.id, backup.expires_at;
END $$;

CREATE OR REPLACE FUNCTION ops._queue_restore(x ops.restores) RETURNS ops.restores
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b ops.backups;
  env_name text;
  run ops.runs;
BEGIN
  SELECT * INTO b FROM ops.backups WHERE id = x.backup_id;
  SELECT name INTO env_name FROM ops.environments WHERE id = x.target_environment_id;
  SELECT * INTO run FROM ops._queue_run_trusted(x.project_id, env_name, NULL, NULL,
    x.metadata || jsonb_build_object('backup_id', b.id, 'location', b.location,
                                     'sha256', b.sha256, 'size_bytes', b.size_bytes,
                                     'source_environment_id', b.environment_id,
                                     'requested_by', x.requested_by),
    'restore', 10);
  IF x.id IS NULL THEN
    INSERT INTO ops.restores (backup_id, project_id, target_environment_id, status, requested_by, metadata, run_id)
    VALUES (x.backup_id, x.project_id, x.target_environment_id, 'queued', x.requested_by, x.metadata, run.id)
    RETURNING * INTO x;
  ELSE
    UPDATE ops.restores r SET status = 'queued', run_id = run.id, updated_at = now()
     WHERE r.id = x.id RETURNING * INTO x;
  END IF;
  UPDATE ops.runs r SET metadata = r.metadata || jsonb_build_object('restore_id', x.id) WHERE r.id = run.id;
  RETURN x;
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
  PERFORM ops._check_request_metadata(metadata);
  -- Outside a project its backups and environments are as unknown as
  -- missing ones.
  SELECT * INTO b FROM ops.backups WHERE id = backup_id;
  IF NOT FOUND OR NOT ops.can_read_project(b.project_id) THEN
    PERFORM ops._raise('OD002', format('backup %s does not exist', backup_id));
  END IF;
  SELECT * INTO e FROM ops.environments WHERE id = target_env_id;
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
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
  -- Outside the project its releases are as unknown as missing ones.
  IF NOT FOUND OR NOT ops.can_read_project(target.project_id) THEN
    PERFORM ops._raise('OD002', format('release %s does not exist', release_id));
  END IF;
  SELECT * INTO e FROM ops.environments WHERE id = target.environment_id;
  PERFORM ops.authorize(e.project_id, 'run.deploy', e.id);
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  SELECT r.pre_deploy_backup_id INTO restore_from FROM ops.releases r
   WHERE r.environment_id = target.environment_id AND r.id > target.id
   ORDER BY r.id LIMIT 1;
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, target.git_sha, coalesce(target.git_ref, 'rollback'),
    jsonb_build_object('rollback_to_release', target.id, 'image', target.image,
                       'restore_backup_id', restore_from, 'reason', reason),
    'deploy', 100);
  PERFORM ops.audit(e.project_id, 'release.rollback', 'release', target.id,
                    jsonb_build_object('run_id', run.id, 'restore_backup_id', restore_from));
  RETURN run;
END $$;

-- GitHub ingest edge cases: organization webhooks, pull requests reopened
-- and branches pushed again after their environment was destroyed, branch
-- names over 255 characters, transliterated and collision-free slugs and
-- database names (docs/github.md).
DROP FUNCTION ops.branch_slug(text, integer);
CREATE FUNCTION ops.branch_slug(branch text, max_length integer DEFAULT 40, hashed boolean DEFAULT false)
RETURNS text LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'odooops_branch_slug';
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


REVOKE EXECUTE ON FUNCTION ops._check_branch_length(text), ops._environment_db_name(ops.projects, text, text, bigint),
  ops._revive_environment(ops.projects, ops.environments, interval, text),
  ops._branch_environment(ops.projects, ops.environments, text),
  ops._preview_environment(ops.projects, integer),
  ops._ingest_github_organization(text, text, text, text, jsonb)
  FROM PUBLIC;
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
  PERFORM ops.authorize_worker(worker_id);
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
CREATE OR REPLACE FUNCTION ops.record_artifact(run_id bigint, worker_id text, attempt integer, kind text, name text,
                                    location text, size_bytes bigint DEFAULT NULL, sha256 text DEFAULT NULL,
                                    metadata jsonb DEFAULT '{}', expires_at timestamptz DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r ops.runs;
  artifact_id bigint;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128), ops._check_length('name', name, 255),
          ops._check_length('location', location, 2048), ops._check_json_size('metadata', metadata, 262144);
  PERFORM ops.authorize_worker(worker_id);
  -- Share-locked: a concurrent requeue or cancel is seen before the fence is judged.
  r := ops._held_running_run(run_id, worker_id, attempt, false, 'artifacts are recorded while it runs');
  INSERT INTO ops.artifacts AS a (run_id, project_id, kind, name, location, size_bytes, sha256, metadata, expires_at)
  VALUES (r.id, r.project_id, kind, name, location, size_bytes, sha256, coalesce(metadata, '{}'), expires_at)
  ON CONFLICT ON CONSTRAINT artifacts_run_id_name_key DO UPDATE SET location = EXCLUDED.location,
     size_bytes = EXCLUDED.size_bytes,
     sha256 = EXCLUDED.sha256, metadata = EXCLUDED.metadata, expires_at = EXCLUDED.expires_at
  RETURNING a.id INTO artifact_id;
  RETURN NEXT artifact_id;
END $$;
CREATE OR REPLACE FUNCTION ops.set_agent_status(worker_id text, status text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result text;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops.authorize_worker(worker_id);
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
  -- Outside the project its environments are as unknown as missing ones.
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  PERFORM ops.authorize(e.project_id, 'env.manage', e.id);
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is already %s', env, e.status));
  END IF;
  SELECT * INTO run FROM ops.runs r
   WHERE r.environment_id = e.id AND r.workflow = 'destroy' AND r.status = 'queued' LIMIT 1;
  IF FOUND THEN
    PERFORM ops._raise('OD004', format('environment "%s" already has destroy run %s waiting for its approval', env, run.id),
                       'Another member with approval.decide decides it (ops.decide_approval), or cancel the run.');
  END IF;
  queued := ops._destroy_environment(e, jsonb_build_object('reason', coalesce(reason, 'requested'),
                                                           'requested_by', ops.current_actor()));
  SELECT * INTO run FROM ops.runs r WHERE r.id = (queued ->> 'run_id')::bigint;
  RETURN run;
END $$;
CREATE OR REPLACE FUNCTION ops.register_agent(
  worker_id text, kinds text[] DEFAULT NULL, team text DEFAULT NULL,
  labels jsonb DEFAULT '{}', version text DEFAULT NULL, hostname text DEFAULT NULL)
RETURNS ops.agents LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
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
  PERFORM ops.authorize_worker(worker_id);
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
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  result text;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops.authorize_worker(worker_id);
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
CREATE OR REPLACE FUNCTION ops.complete_backup(backup_id bigint, worker_id text, attempt integer, location text,
                                    size_bytes bigint, sha256 text, metadata jsonb DEFAULT '{}')
RETURNS ops.backups LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  backup ops.backups;
BEGIN
  PERFORM ops.authorize_worker(worker_id);
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
  PERFORM ops._check_backup_location(backup.project_id, 'location', location);
  PERFORM ops._check_backup_filestore(backup.project_id, metadata -> 'backup' -> 'filestore');
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
  PERFORM ops.authorize_worker(worker_id);
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
CREATE OR REPLACE FUNCTION ops.claim_storage_deletions(worker_id text, n integer DEFAULT 10)
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
CREATE OR REPLACE FUNCTION ops.finish_storage_deletion(deletion_id bigint, ok boolean, error text DEFAULT NULL)
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
      OR e.db_name ~ '_(pre|restore|test|seed)_[0-9]+$'
      OR EXISTS (SELECT 1 FROM ops.environments o WHERE o.db_name = e.db_name AND o.id <> e.id);
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004',
      MESSAGE = 'cannot upgrade odooops: environments whose db_name breaks the 0.1.3 rules',
      DETAIL = bad,
      HINT = 'db_name: 2 to 63 lowercase letters, digits and underscores, never a system or the control plane''s database, '
             'never ending in _pre_<n>, _restore_<n>, _test_<n> or _seed_<n>, unique across all environments (destroyed ones too). '
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
  -- update), <db>_restore_<run>, <db>_test_<run> and <db>_seed_<backup>
  -- (refresh seeds; truncated to 40 + the suffix): no environment may own
  -- such a name, or another environment's deploy would drop it.
  IF db_name ~ '_(pre|restore|test|seed)_[0-9]+$' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD004',
      MESSAGE = format('db_name "%s" is reserved for the worker''s temporary databases', db_name),
      DETAIL = 'Names ending in _pre_<n>, _restore_<n>, _test_<n> or _seed_<n> are snapshots, restores, test databases and refresh seeds the worker creates and drops.';
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


REVOKE EXECUTE ON FUNCTION ops.is_operator(), ops.repo_url_scheme(text), ops._check_settings(jsonb),
  ops._check_db_name(text), ops._environment_rules(), ops._project_rules() FROM PUBLIC;

GRANT UPDATE (runtime_profile) ON ops.projects TO odooops_api;
GRANT INSERT (runtime_profile), UPDATE (runtime_profile) ON ops.environments TO odooops_api;
GRANT SELECT ON ops.runtime_profiles TO odooops_api;
GRANT SELECT ON ops.runtime_profiles TO odooops_admin;
ALTER TABLE ops.runtime_profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON ops.runtime_profiles TO odooops_admin USING (true) WITH CHECK (true);
CREATE POLICY runtime_profiles_all_select ON ops.runtime_profiles FOR SELECT TO odooops_api USING (true);

-- ---------------------------------------------------------------------
-- Identity and audit hold: worker logins act only as the worker ids bound
-- to them; approvals, the run queue and the audit trail change only through
-- the RPCs; fenced worker writes on a run not held fail; outside a project
-- its ids answer like ids that do not exist.
-- ---------------------------------------------------------------------
CREATE TABLE ops.worker_logins (
  login      name NOT NULL,
  worker_id  text NOT NULL CHECK (length(worker_id) BETWEEN 1 AND 128),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (login, worker_id)
);
COMMENT ON TABLE ops.worker_logins IS
  'Binds PostgreSQL login roles to the worker ids they may act as in worker RPCs (written by administrators)';
REVOKE ALL ON ops.worker_logins FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON ops.worker_logins TO odooops_admin;
ALTER TABLE ops.worker_logins ENABLE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON ops.worker_logins TO odooops_admin USING (true) WITH CHECK (true);
SELECT pg_catalog.pg_extension_config_dump('ops.worker_logins', '');

CREATE OR REPLACE FUNCTION ops.may_act_as_worker(worker_id text) RETURNS boolean
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'odooops_may_act_as_worker';

CREATE OR REPLACE FUNCTION ops.authorize_worker(worker_id text) RETURNS void
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'odooops_authorize_worker';

REVOKE EXECUTE ON FUNCTION ops.may_act_as_worker(text), ops.authorize_worker(text) FROM PUBLIC;
COMMENT ON FUNCTION ops.may_act_as_worker IS
  'Whether the invoking role may act as a worker id (bound in ops.worker_logins, or an administrator, superuser or the extension owner)';
COMMENT ON FUNCTION ops.authorize_worker IS
  'Raises 42501 unless the invoking role may act as the worker id (ops.may_act_as_worker)';






CREATE OR REPLACE FUNCTION ops.claim_next_backup(worker_id text, lease_seconds integer DEFAULT 300)
RETURNS TABLE (backup_id bigint, run_id bigint, attempt integer, project_id bigint,
               environment_id bigint, db_name text, backup_type text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run ops.runs;
BEGIN
  PERFORM ops.authorize_worker(worker_id);
  SELECT * INTO run FROM ops.claim_runs(worker_id, 1, lease_seconds, ARRAY['backup']);
  IF run.id IS NULL THEN
    RETURN;
  END IF;
  PERFORM ops.start_run(run.id, worker_id, run.attempt, lease_seconds);
  RETURN QUERY
    SELECT b.id, run.id, run.attempt, run.project_id, run.environment_id, e.db_name, b.backup_type
      FROM ops.environments e LEFT JOIN ops.backups b ON b.run_id = run.id
     WHERE e.id = run.environment_id;
END $$;





COMMENT ON FUNCTION ops.record_artifact IS
  'Records (or replaces) an artifact of a run the worker holds and has started; OD003 once it lost the run';

-- Every run_events partition refuses TRUNCATE itself (statement triggers of
-- the parent do not reach partitions).
CREATE OR REPLACE FUNCTION ops._guard_run_event_partition(partition regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('CREATE TRIGGER run_events_no_truncate BEFORE TRUNCATE ON %s '
                 'FOR EACH STATEMENT EXECUTE FUNCTION ops.refuse_change(''run_events'')', partition);
END $$;

REVOKE EXECUTE ON FUNCTION ops._guard_run_event_partition(regclass) FROM PUBLIC;
DO $$
DECLARE
  t regclass;
BEGIN
  FOR t IN SELECT c.oid::regclass FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'ops.run_events'::regclass
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                               WHERE g.tgrelid = c.oid AND g.tgname = 'run_events_no_truncate')
  LOOP
    PERFORM ops._guard_run_event_partition(t);
  END LOOP;
END $$;
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
    PERFORM ops._guard_run_event_partition(format('ops.%I', name)::regclass);
    RETURN true;
  END IF;
  ALTER TABLE ops.run_events DETACH PARTITION ops.run_events_default;
  EXECUTE format('CREATE TABLE ops.%I PARTITION OF ops.run_events FOR VALUES FROM (%L) TO (%L)',
                 name, lower_bound, upper_bound);
  PERFORM ops._guard_run_event_partition(format('ops.%I', name)::regclass);
  EXECUTE format('INSERT INTO ops.%I SELECT * FROM ops.run_events_default WHERE created_at >= %L AND created_at < %L',
                 name, lower_bound, upper_bound);
  EXECUTE format('DELETE FROM ops.run_events_default WHERE created_at >= %L AND created_at < %L',
                 lower_bound, upper_bound);
  ALTER TABLE ops.run_events ATTACH PARTITION ops.run_events_default DEFAULT;
  RETURN true;
END $$;




CREATE OR REPLACE FUNCTION ops.decide_approval(approval_id bigint, decision text, reason text DEFAULT NULL)
RETURNS ops.approvals LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  actor text := ops.current_user_id();
  a ops.approvals;
BEGIN
  IF actor IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'only an identified user can decide an approval';
  END IF;
  IF decision IS NULL OR decision NOT IN ('approved', 'rejected') THEN
    PERFORM ops._raise('OD004', 'decision must be approved or rejected');
  END IF;
  IF reason IS NOT NULL AND length(reason) > 2000 THEN
    PERFORM ops._raise('OD005', 'reason is too long', 'The limit is 2000 characters.');
  END IF;
  -- Outside the project its approvals are as unknown as missing ones (and
  -- are not even locked).
  SELECT * INTO a FROM ops.approvals x WHERE x.id = approval_id AND ops.can_read_project(x.project_id) FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('approval %s does not exist', approval_id));
  END IF;
  PERFORM ops.authorize(a.project_id, 'approval.decide', a.environment_id);
  IF a.status <> 'pending' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010', MESSAGE = format('approval %s is already %s', a.id, a.status);
  END IF;
  IF a.expires_at <= now() THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010', MESSAGE = format('approval %s has expired', a.id);
  END IF;
  IF a.requested_by = actor THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'you cannot decide your own request',
      HINT = 'Another member with the approval.decide permission must decide it.';
  END IF;

  -- The decision marker lets ops.guard_approval tell this decision from a
  -- direct UPDATE; it is cleared at once (transaction-local either way).
  PERFORM set_config('odooops_guard.approval_decision', a.id::text, true);
  UPDATE ops.approvals x SET status = decision, decided_by = actor, decided_at = now(), reason = decide_approval.reason
   WHERE x.id = a.id RETURNING * INTO a;
  PERFORM set_config('odooops_guard.approval_decision', '', true);
  PERFORM ops.audit(a.project_id, 'approval.' || CASE decision WHEN 'approved' THEN 'approve' ELSE 'reject' END,
                    a.subject, a.subject_id, jsonb_build_object('approval_id', a.id, 'reason', reason));
  IF a.subject = 'restore' THEN
    IF decision = 'approved' THEN
      PERFORM ops._queue_restore(r) FROM ops.restores r WHERE r.id = a.subject_id;
    ELSE
      UPDATE ops.restores r SET status = 'rejected', finished_at = now(), updated_at = now()
       WHERE r.id = a.subject_id;
    END IF;
  ELSE
    PERFORM ops._release_gated_run(a.subject_id, decision = 'approved', a.subject || ' ' || decision);
  END IF;
  RETURN a;
END $$;

CREATE OR REPLACE FUNCTION ops.expire_approvals() RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  a ops.approvals;
  n integer := 0;
BEGIN
  FOR a IN SELECT * FROM ops.approvals x WHERE x.status = 'pending' AND x.expires_at <= now()
           ORDER BY x.id FOR UPDATE SKIP LOCKED LOOP
    PERFORM set_config('odooops_guard.approval_decision', a.id::text, true);
    UPDATE ops.approvals x SET status = 'expired', decided_at = now() WHERE x.id = a.id;
    PERFORM set_config('odooops_guard.approval_decision', '', true);
    IF a.subject = 'restore' THEN
      UPDATE ops.restores r SET status = 'expired', finished_at = now(), updated_at = now()
       WHERE r.id = a.subject_id AND r.status = 'pending_approval';
    ELSE
      PERFORM ops._release_gated_run(a.subject_id, false, a.subject || ' approval expired');
    END IF;
    INSERT INTO ops.audit_log (project_id, actor, action, subject, subject_id, payload)
    VALUES (a.project_id, 'odooops', 'approval.expire', a.subject, a.subject_id,
            jsonb_build_object('approval_id', a.id));
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;


CREATE OR REPLACE FUNCTION ops.guard_approval() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  extension_owner oid := (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'odooops');
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010', MESSAGE = format('approval %s cannot be deleted', OLD.id);
  END IF;
  IF NOT pg_catalog.pg_has_role(current_user, extension_owner, 'MEMBER') THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = 'approvals are requested and decided only through the odooops functions',
      HINT = 'Use ops.decide_approval.';
  END IF;
  IF TG_OP = 'INSERT' THEN
    RETURN NEW;
  END IF;
  IF OLD.status <> 'pending' THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010',
      MESSAGE = format('approval %s is %s and cannot be changed', OLD.id, OLD.status);
  END IF;
  IF NEW.id <> OLD.id OR NEW.requested_by <> OLD.requested_by OR NEW.project_id <> OLD.project_id
     OR NEW.environment_id <> OLD.environment_id OR NEW.subject <> OLD.subject
     OR (OLD.subject_id <> 0 AND NEW.subject_id <> OLD.subject_id)
     OR NEW.created_at <> OLD.created_at OR NEW.expires_at > OLD.expires_at THEN
    RAISE EXCEPTION USING ERRCODE = 'OD010', MESSAGE = format('approval %s: only its decision may change', OLD.id);
  END IF;
  IF (NEW.status, NEW.decided_by, NEW.decided_at, NEW.reason)
       IS DISTINCT FROM (OLD.status, OLD.decided_by, OLD.decided_at, OLD.reason)
     AND current_setting('odooops_guard.approval_decision', true) IS DISTINCT FROM OLD.id::text THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('approval %s is decided only through ops.decide_approval', OLD.id),
      HINT = 'Another member with the approval.decide permission decides it; pending approvals expire by themselves.';
  END IF;
  RETURN NEW;
END $$;

DROP TRIGGER approvals_immutable ON ops.approvals;
CREATE TRIGGER approvals_guard BEFORE INSERT OR UPDATE OR DELETE ON ops.approvals
  FOR EACH ROW EXECUTE FUNCTION ops.guard_approval();

REVOKE INSERT, UPDATE, DELETE ON ops.runs, ops.run_events, ops.restores, ops.approvals, ops.audit_log
  FROM odooops_admin;

-- ---------------------------------------------------------------------
-- Backup provenance: a backup is completed only by the worker path that
-- took it (ops.complete_backup for a backup run, ops.record_pre_deploy_backup
-- for a production deploy's), with both checksums and locations under the
-- project's backups; a deploy's result never creates or names a backup.
-- ---------------------------------------------------------------------
CREATE OR REPLACE FUNCTION ops._check_backup_location(project_id bigint, field text, location text)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  slug text := (SELECT p.slug FROM ops.projects p WHERE p.id = _check_backup_location.project_id);
  path text;
BEGIN
  IF location IS NULL OR length(location) NOT BETWEEN 1 AND 2048 THEN
    PERFORM ops._raise('OD004', format('%s must be 1 to 2048 characters', field));
  END IF;
  path := substring(location FROM '^(?:file://|s3://[a-z0-9][a-z0-9.-]{1,62})(/.*)$');
  IF path IS NULL OR location ~ '[[:cntrl:][:space:]\\%?#]' OR path ~ '//|/\.{1,2}(/|$)' THEN
    PERFORM ops._raise('OD004', format('%s "%s" is not a storage location', field, location),
                       'A file:///path or s3://bucket/key URL without empty, "." or ".." segments.');
  END IF;
  IF slug IS NULL OR strpos(path, '/backups/' || slug || '/') = 0 THEN
    PERFORM ops._raise('OD004', format('%s "%s" lies outside the backups of project %s', field, location,
                                       coalesce(slug, project_id::text)),
                       format('Backups of this project are stored under <storage>/backups/%s/.', slug));
  END IF;
END $$;


CREATE OR REPLACE FUNCTION ops._check_backup_filestore(project_id bigint, filestore jsonb)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF jsonb_typeof(filestore) IS DISTINCT FROM 'object' THEN
    PERFORM ops._raise('OD004', 'the filestore archive (location, size_bytes, sha256) is required',
                       'A backup is completed only with both checksums: the dump''s and the filestore archive''s.');
  END IF;
  IF coalesce(filestore ->> 'sha256', '') !~ '^[0-9a-f]{64}$' THEN
    PERFORM ops._raise('OD004', 'filestore sha256 must be 64 lowercase hex digits');
  END IF;
  IF coalesce(filestore ->> 'size_bytes', '') !~ '^[0-9]{1,18}$' THEN
    PERFORM ops._raise('OD004', 'filestore size_bytes must be 0 or more');
  END IF;
  PERFORM ops._check_backup_location(project_id, 'filestore location', filestore ->> 'location');
END $$;




CREATE OR REPLACE FUNCTION ops.record_pre_deploy_backup(run_id bigint, worker_id text, attempt integer, location text,
                                             size_bytes bigint, sha256 text, filestore jsonb)
RETURNS ops.backups LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r ops.runs;
  e ops.environments;
  backup ops.backups;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128), ops._check_json_size('filestore', filestore, 65536);
  PERFORM ops.authorize_worker(worker_id);
  -- Locked: the fence is judged against the run as it is, and two calls for
  -- one run are serialised.
  r := ops._held_running_run(run_id, worker_id, attempt, true, 'its backup is recorded while it runs');
  SELECT * INTO e FROM ops.environments x WHERE x.id = r.environment_id;
  IF r.workflow <> 'deploy' OR e.stage <> 'production' THEN
    PERFORM ops._raise('OD004', format('run %s is a %s of a %s environment: pre-deploy backups are taken by production deploys only',
                                       run_id, r.workflow, e.stage));
  END IF;
  IF EXISTS (SELECT 1 FROM ops.backups b WHERE b.run_id = r.id) THEN
    PERFORM ops._raise('OD001', format('run %s already recorded its pre-deploy backup', run_id));
  END IF;
  IF size_bytes IS NULL OR size_bytes < 0 THEN
    PERFORM ops._raise('OD004', 'size_bytes must be 0 or more');
  END IF;
  IF sha256 IS NULL OR sha256 !~ '^[0-9a-f]{64}$' THEN
    PERFORM ops._raise('OD004', 'sha256 must be 64 lowercase hex digits');
  END IF;
  PERFORM ops._check_backup_location(r.project_id, 'location', location);
  PERFORM ops._check_backup_filestore(r.project_id, filestore);
  INSERT INTO ops.backups AS b (project_id, environment_id, run_id, backup_type, status, location, size_bytes,
                                sha256, metadata, requested_by, started_at, completed_at, expires_at)
  VALUES (r.project_id, e.id, r.id, 'pre_deploy', 'completed', location, size_bytes, sha256,
          jsonb_build_object('backup', jsonb_build_object(
            'location', location, 'size_bytes', size_bytes, 'sha256', sha256, 'db_name', e.db_name,
            'format', 'pg_dump custom + tar filestore',
            'filestore', jsonb_build_object('location', filestore ->> 'location',
                                            'size_bytes', (filestore ->> 'size_bytes')::bigint,
                                            'sha256', filestore ->> 'sha256'))),
          worker_id, r.started_at, now(), now() + ops.backup_ttl('pre_deploy', e.settings))
  RETURNING * INTO backup;
  RETURN backup;
END $$;


CREATE OR REPLACE FUNCTION ops.record_deploy_outcome() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.status = 'succeeded' THEN
    INSERT INTO ops.releases (project_id, environment_id, run_id, git_sha, git_ref, image,
                              pre_deploy_backup_id, rollback_of)
    VALUES (NEW.project_id, NEW.environment_id, NEW.id, NEW.git_sha, NEW.git_ref, NEW.result ->> 'image',
            (SELECT max(b.id) FROM ops.backups b
              WHERE b.run_id = NEW.id AND b.environment_id = NEW.environment_id
                AND b.backup_type = 'pre_deploy' AND b.status = 'completed'),
            (NEW.metadata ->> 'rollback_to_release')::bigint);
  END IF;
  RETURN NULL;
END $$;


REVOKE EXECUTE ON FUNCTION ops._check_backup_location(bigint, text, text),
  ops._check_backup_filestore(bigint, jsonb),
  ops.record_pre_deploy_backup(bigint, text, integer, text, bigint, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.record_pre_deploy_backup(bigint, text, integer, text, bigint, text, jsonb)
  TO odooops_worker;
COMMENT ON FUNCTION ops._check_backup_location IS
  'Raises OD004 unless a backup location is a clean file:// or s3:// URL under backups/<project slug>/';
COMMENT ON FUNCTION ops._check_backup_filestore IS
  'Raises OD004 unless a backup''s filestore archive has a location under the project''s backups, a size and a SHA-256';
COMMENT ON FUNCTION ops.complete_backup IS
  'Records a finished backup (dump location, size, SHA-256; metadata.backup.filestore likewise) for the worker holding its run';
COMMENT ON FUNCTION ops.record_pre_deploy_backup IS
  'Records the pre-deploy backup of the production deploy run the worker holds (both checksums, locations under the project''s backups)';

-- Worker RPCs written in SQL share one fence (ops._held_running_run).
CREATE FUNCTION ops._held_running_run(run_id bigint, worker_id text, attempt integer, exclusive boolean,
                                      why text)
RETURNS ops.runs LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r ops.runs;
BEGIN
  IF attempt IS NULL THEN
    PERFORM ops._raise('OD004', 'worker_id and attempt are required');
  END IF;
  IF exclusive THEN
    SELECT * INTO r FROM ops.runs x WHERE x.id = _held_running_run.run_id FOR UPDATE;
  ELSE
    SELECT * INTO r FROM ops.runs x WHERE x.id = _held_running_run.run_id FOR SHARE;
  END IF;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('run %s does not exist', run_id));
  END IF;
  IF r.status NOT IN ('claimed', 'running') OR r.claimed_by IS DISTINCT FROM worker_id
     OR r.attempt <> _held_running_run.attempt THEN
    RAISE EXCEPTION USING ERRCODE = 'OD003',
      MESSAGE = format('worker "%s" no longer holds run %s', worker_id, run_id),
      DETAIL = format('The run is %s; the call came from worker "%s" on attempt %s.', r.status, worker_id, attempt),
      HINT = 'Stop working on this run; its result will be ignored.';
  END IF;
  IF r.status <> 'running' THEN
    PERFORM ops._raise('OD001', format('run %s is not started: %s', run_id, why), 'Call ops.start_run first.');
  END IF;
  RETURN r;
END $$;

COMMENT ON FUNCTION ops._held_running_run IS
  'The started run a worker holds, locked; OD002, OD003 (fence) or OD001 otherwise';
REVOKE EXECUTE ON FUNCTION ops._held_running_run(bigint, text, integer, boolean, text) FROM PUBLIC;



-- ---------------------------------------------------------------------
-- Nothing lost: a worker's numbered lines are stored exactly once (a batch
-- resent after a lost acknowledgement is deduplicated against a mark per
-- run attempt); a run handed back after a problem of the worker's own may
-- wait before it is claimed again and always stays claimable; workers
-- report their health and unhealthy ones claim nothing.
-- ---------------------------------------------------------------------
-- The highest sequence number of a worker's lines stored per run attempt.
-- A worker numbers its lines 1, 2, ... per attempt and sends them in that
-- order, again after a lost acknowledgement; ops.append_events stores only
-- the lines above the mark and moves it in the same transaction, so each
-- line is stored exactly once. A mark rather than a unique index: an index
-- of the partitioned ops.run_events must include created_at, which a line
-- sent again does not share with its first copy; and one row per attempt
-- stays small whatever the volume of output.
CREATE TABLE ops.run_event_marks (
  run_id   bigint NOT NULL REFERENCES ops.runs ON DELETE CASCADE,
  attempt  integer NOT NULL CHECK (attempt >= 1),
  last_seq bigint NOT NULL CHECK (last_seq >= 0),
  PRIMARY KEY (run_id, attempt)
);
COMMENT ON TABLE ops.run_event_marks IS
  'Per run attempt, the last sequence number of the worker''s lines stored in run_events (dedupe of resent batches)';
REVOKE ALL ON ops.run_event_marks FROM PUBLIC;
GRANT SELECT ON ops.run_event_marks TO odooops_admin;
ALTER TABLE ops.run_event_marks ENABLE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON ops.run_event_marks TO odooops_admin USING (true) WITH CHECK (true);
SELECT pg_catalog.pg_extension_config_dump('ops.run_event_marks', '');

COMMENT ON FUNCTION ops.append_events(bigint, jsonb, text, integer) IS
  'Appends a batch of events ([{level, message, payload?, stream?, step?, seq?}]) in order; numbered events (seq) already stored for the attempt are skipped; returns how many were stored';

COMMENT ON FUNCTION ops.release_run(bigint, text, integer, text) IS
  'Hands a held run back to the queue at once (a draining worker); the attempt stays counted';
CREATE FUNCTION ops.release_run(run_id bigint, worker_id text, attempt integer, reason text,
                                retry_after_seconds integer)
RETURNS ops.runs LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'odooops_release_run';
COMMENT ON FUNCTION ops.release_run(bigint, text, integer, text, integer) IS
  'Hands a held run back to the queue, claimable again after retry_after_seconds (0 to 86400: a worker whose disk is full)';
REVOKE EXECUTE ON FUNCTION ops.release_run(bigint, text, integer, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.release_run(bigint, text, integer, text, integer) TO odooops_worker;

ALTER TABLE ops.agents
  ADD COLUMN healthy boolean NOT NULL DEFAULT true,
  ADD COLUMN health_detail text CHECK (length(health_detail) <= 1024);
-- A worker reports whether it can take work (false: e.g. its state
-- directory's disk is full) and why; a change is logged in agent_events.
-- Claims skip an unhealthy worker (ops.claim_next_run).
CREATE FUNCTION ops.set_agent_health(worker_id text, healthy boolean, detail text DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  agent ops.agents;
  was boolean;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops._check_length('detail', detail, 1024);
  PERFORM ops.authorize_worker(worker_id);
  IF healthy IS NULL THEN
    PERFORM ops._raise('OD004', 'healthy must be true or false');
  END IF;
  SELECT a.healthy INTO was FROM ops.agents a WHERE a.worker_id = set_agent_health.worker_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('unknown worker "%s"', worker_id),
                       'Register it first with ops.register_agent().');
  END IF;
  UPDATE ops.agents a SET healthy = set_agent_health.healthy,
         health_detail = CASE WHEN set_agent_health.healthy THEN NULL ELSE detail END,
         last_heartbeat_at = now()
   WHERE a.worker_id = set_agent_health.worker_id
  RETURNING * INTO agent;
  IF was IS DISTINCT FROM healthy THEN
    INSERT INTO ops.agent_events (agent_id, kind, message, payload)
    VALUES (agent.id, 'status',
            format('worker %s is %s', agent.worker_id,
                   CASE WHEN healthy THEN 'healthy again' ELSE 'unhealthy' END
                   || coalesce(': ' || agent.health_detail, '')),
            jsonb_build_object('healthy', healthy));
  END IF;
  RETURN agent.healthy;
END $$;
COMMENT ON FUNCTION ops.set_agent_health IS
  'A worker reports whether it can take work (false, with a reason, while e.g. its disk is full); claims skip it meanwhile';
REVOKE EXECUTE ON FUNCTION ops.set_agent_health(text, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.set_agent_health(text, boolean, text) TO odooops_worker;

-- Idle background workers sleep: "nothing due" is NULL, not 0.
CREATE OR REPLACE FUNCTION ops._next_webhook_due_ms() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN due IS NOT NULL
              THEN greatest(0, (extract(epoch FROM due - clock_timestamp()) * 1000)::bigint) END
    FROM (SELECT min(next_attempt_at) AS due FROM ops.webhook_deliveries WHERE status = 'pending') d
$$;
CREATE OR REPLACE FUNCTION ops._next_schedule_due_ms() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN due IS NOT NULL
              THEN greatest(0, (extract(epoch FROM due - clock_timestamp()) * 1000)::bigint) END
    FROM (SELECT min(next_fire_at) AS due FROM ops.backup_schedules WHERE enabled) s
$$;
-- Nothing lost: a production restore and a production destroy first take
-- a backup of what they replace or remove (pre_restore, final), recorded
-- by the worker like a deploy's pre_deploy backup (ops.record_run_backup
-- replaces ops.record_pre_deploy_backup); a production destroy waits for
-- an approval; a dump of the control plane restores: the roles and
-- policies that come with odooops are marked shipped and left out of it,
-- and rows restored from a dump do not set off insert triggers again.
-- ---------------------------------------------------------------------
ALTER TABLE ops.backups DROP CONSTRAINT backups_backup_type_check,
  ADD CONSTRAINT backups_backup_type_check
  CHECK (backup_type IN ('daily', 'weekly', 'monthly', 'manual', 'pre_deploy', 'pre_restore', 'final'));
ALTER TABLE ops.approvals DROP CONSTRAINT approvals_subject_check,
  ADD CONSTRAINT approvals_subject_check CHECK (subject IN ('restore', 'deploy', 'destroy'));

ALTER TABLE ops.roles ADD COLUMN shipped boolean NOT NULL DEFAULT false;
ALTER TABLE ops.policies ADD COLUMN shipped boolean NOT NULL DEFAULT false;
UPDATE ops.roles SET shipped = true WHERE name IN ('owner', 'admin', 'developer', 'viewer', 'auditor');
UPDATE ops.policies p SET shipped = true
  FROM (VALUES
    ('project.read',      NULL,          ARRAY['owner', 'admin', 'developer', 'viewer', 'auditor']),
    ('audit.read',        NULL,          ARRAY['owner', 'admin', 'auditor']),
    ('project.manage',    NULL,          ARRAY['owner', 'admin']),
    ('members.manage',    NULL,          ARRAY['owner']),
    ('secrets.manage',    NULL,          ARRAY['owner', 'admin']),
    ('env.manage',        NULL,          ARRAY['owner', 'admin']),
    ('env.manage',        'development', ARRAY['developer']),
    ('env.manage',        'preview',     ARRAY['developer']),
    ('run.build',         NULL,          ARRAY['owner', 'admin']),
    ('run.build',         'staging',     ARRAY['developer']),
    ('run.build',         'development', ARRAY['developer']),
    ('run.build',         'preview',     ARRAY['developer']),
    ('run.test',          NULL,          ARRAY['owner', 'admin']),
    ('run.test',          'staging',     ARRAY['developer']),
    ('run.test',          'development', ARRAY['developer']),
    ('run.test',          'preview',     ARRAY['developer']),
    ('run.deploy',        NULL,          ARRAY['owner', 'admin']),
    ('run.deploy',        'staging',     ARRAY['developer']),
    ('run.deploy',        'development', ARRAY['developer']),
    ('run.deploy',        'preview',     ARRAY['developer']),
    ('run.cancel',        NULL,          ARRAY['owner', 'admin']),
    ('run.cancel',        'staging',     ARRAY['developer']),
    ('run.cancel',        'development', ARRAY['developer']),
    ('run.cancel',        'preview',     ARRAY['developer']),
    ('run.comment',       NULL,          ARRAY['owner', 'admin', 'developer']),
    ('run.override',      NULL,          ARRAY['owner', 'admin']),
    ('backup.create',     NULL,          ARRAY['owner', 'admin']),
    ('backup.create',     'development', ARRAY['developer']),
    ('backup.create',     'preview',     ARRAY['developer']),
    ('backup.restore',    NULL,          ARRAY['owner', 'admin']),
    ('backup.restore',    'development', ARRAY['developer']),
    ('backup.restore',    'preview',     ARRAY['developer']),
    ('approval.decide',   NULL,          ARRAY['owner', 'admin'])
  ) AS s(permission, stage, roles)
 WHERE p.permission = s.permission AND p.stage IS NOT DISTINCT FROM s.stage AND p.role = ANY (s.roles);
SELECT pg_catalog.pg_extension_config_dump('ops.roles', 'WHERE NOT shipped');
-- The operator's own policies move to ids from 1000000, as a fresh install
-- numbers them (56_permissions.sql).
ALTER TABLE ops.policies ALTER COLUMN id SET GENERATED BY DEFAULT;
UPDATE ops.policies SET id = id + 1000000 WHERE NOT shipped AND id < 1000000;
ALTER TABLE ops.policies ALTER COLUMN id SET GENERATED ALWAYS;
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('ops.policies', 'id'),
                         greatest(1000000, (SELECT max(p.id) + 1 FROM ops.policies p)), false);
-- Tables and partitions an upgrade created (ops.runtime_profiles, the
-- run_events months rebuilt in UTC) are marked for pg_dump as a fresh
-- install marks them, or a dump would leave their rows out.
DO $$
DECLARE
  rel regclass;
BEGIN
  FOR rel IN
    SELECT c.oid::regclass FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'ops'::regnamespace AND c.relkind IN ('r', 'p', 'S')
       AND c.relname NOT IN ('roles', 'policies')
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e
                        WHERE e.extname = 'odooops' AND c.oid = ANY (e.extconfig))
  LOOP
    PERFORM pg_catalog.pg_extension_config_dump(rel, '');
  END LOOP;
END $$;
SELECT pg_catalog.pg_extension_config_dump('ops.policies', 'WHERE NOT shipped');

CREATE OR REPLACE FUNCTION ops.guard_shipped_row() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  extension_owner oid := (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'odooops');
BEGIN
  IF ((TG_OP <> 'INSERT' AND OLD.shipped) OR (TG_OP <> 'DELETE' AND NEW.shipped))
     AND NOT pg_catalog.pg_has_role(current_user, extension_owner, 'MEMBER') THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('ops.%s: the rows that come with odooops are not changed', TG_TABLE_NAME),
      DETAIL = format('%s of a shipped row (%s).', initcap(TG_OP),
                      CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END),
      HINT = 'Add a role or policy of your own; to take a permission from one user, add a deny in ops.env_permissions.';
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
COMMENT ON FUNCTION ops.guard_shipped_row IS
  'Trigger: only the extension''s owner writes the roles and policies that come with odooops (shipped)';

-- No SET clause, so that it is inlined into the triggers that call it once
-- per row (a SET makes every call a function call with its own GUC
-- switch); every name in it is schema-qualified.
CREATE OR REPLACE FUNCTION ops._carried_over(created_at timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT created_at OPERATOR(pg_catalog.<) pg_catalog.now()
$$;
COMMENT ON FUNCTION ops._carried_over IS
  'Whether a row being inserted was created before this transaction (restored from a dump): insert triggers take it as it is';
CREATE TRIGGER roles_guard_shipped BEFORE INSERT OR UPDATE OR DELETE ON ops.roles
  FOR EACH ROW EXECUTE FUNCTION ops.guard_shipped_row();
CREATE TRIGGER policies_guard_shipped BEFORE INSERT OR UPDATE OR DELETE ON ops.policies
  FOR EACH ROW EXECUTE FUNCTION ops.guard_shipped_row();

DROP FUNCTION ops.record_pre_deploy_backup(bigint, text, integer, text, bigint, text, jsonb);
CREATE OR REPLACE FUNCTION ops._run_backup_type(workflow text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE workflow WHEN 'deploy' THEN 'pre_deploy' WHEN 'restore' THEN 'pre_restore'
                       WHEN 'destroy' THEN 'final' END
$$;
COMMENT ON FUNCTION ops._run_backup_type IS
  'The type of the backup a production run of a workflow takes first: pre_deploy, pre_restore or final (NULL: none)';

CREATE OR REPLACE FUNCTION ops.record_run_backup(run_id bigint, worker_id text, attempt integer, location text,
                                      size_bytes bigint, sha256 text, filestore jsonb)
RETURNS ops.backups LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r ops.runs;
  e ops.environments;
  kind text;
  backup ops.backups;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128), ops._check_json_size('filestore', filestore, 65536);
  PERFORM ops.authorize_worker(worker_id);
  -- Locked: the fence is judged against the run as it is, and two calls for
  -- one run are serialised.
  r := ops._held_running_run(run_id, worker_id, attempt, true, 'its backup is recorded while it runs');
  SELECT * INTO e FROM ops.environments x WHERE x.id = r.environment_id;
  kind := ops._run_backup_type(r.workflow);
  IF kind IS NULL OR e.stage <> 'production' THEN
    PERFORM ops._raise('OD004', format('run %s is a %s of a %s environment: only production deploys, restores and destroys record a backup of their own',
                                       run_id, r.workflow, e.stage));
  END IF;
  IF EXISTS (SELECT 1 FROM ops.backups b WHERE b.run_id = r.id) THEN
    PERFORM ops._raise('OD001', format('run %s already recorded its %s backup', run_id, kind));
  END IF;
  IF size_bytes IS NULL OR size_bytes < 0 THEN
    PERFORM ops._raise('OD004', 'size_bytes must be 0 or more');
  END IF;
  IF sha256 IS NULL OR sha256 !~ '^[0-9a-f]{64}$' THEN
    PERFORM ops._raise('OD004', 'sha256 must be 64 lowercase hex digits');
  END IF;
  PERFORM ops._check_backup_location(r.project_id, 'location', location);
  PERFORM ops._check_backup_filestore(r.project_id, filestore);
  INSERT INTO ops.backups AS b (project_id, environment_id, run_id, backup_type, status, location, size_bytes,
                                sha256, metadata, requested_by, started_at, completed_at, expires_at)
  VALUES (r.project_id, e.id, r.id, kind, 'completed', location, size_bytes, sha256,
          jsonb_build_object('backup', jsonb_build_object(
            'location', location, 'size_bytes', size_bytes, 'sha256', sha256, 'db_name', e.db_name,
            'format', 'pg_dump custom + tar filestore',
            'filestore', jsonb_build_object('location', filestore ->> 'location',
                                            'size_bytes', (filestore ->> 'size_bytes')::bigint,
                                            'sha256', filestore ->> 'sha256'))),
          worker_id, r.started_at, now(),
          CASE WHEN kind <> 'final' THEN now() + ops.backup_ttl(kind, e.settings) END)
  RETURNING * INTO backup;
  IF kind = 'pre_restore' THEN
    UPDATE ops.restores x SET metadata = x.metadata || jsonb_build_object('pre_restore_backup_id', backup.id),
                              updated_at = now()
     WHERE x.run_id = r.id;
  END IF;
  RETURN backup;
END $$;
COMMENT ON FUNCTION ops.record_run_backup IS
  'Records the backup the production deploy, restore or destroy run the worker holds took first (both checksums, locations under the project''s backups)';

CREATE OR REPLACE FUNCTION ops.sync_run_subjects() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.workflow = 'backup' THEN
    UPDATE ops.backups b SET
      status = CASE NEW.status WHEN 'running' THEN 'running' WHEN 'succeeded' THEN 'completed'
                               WHEN 'queued' THEN 'pending' WHEN 'claimed' THEN 'pending'
                               ELSE 'failed' END,
      started_at = CASE WHEN NEW.status = 'running' THEN coalesce(b.started_at, now()) ELSE b.started_at END,
      completed_at = CASE WHEN NEW.status = 'succeeded' THEN now() ELSE b.completed_at END,
      error = CASE WHEN NEW.status IN ('failed', 'cancelled') THEN coalesce(NEW.error, NEW.status) ELSE b.error END
     WHERE b.run_id = NEW.id AND b.status IN ('pending', 'running');
  ELSIF NEW.workflow = 'destroy' AND NEW.status = 'succeeded' THEN
    UPDATE ops.environments e SET status = 'destroyed', destroyed_at = now(), updated_at = now()
     WHERE e.id = NEW.environment_id AND e.status <> 'destroyed';
  ELSIF NEW.workflow = 'destroy' AND NEW.status IN ('failed', 'cancelled') THEN
    -- A production destroy that ended without its final backup stopped
    -- before the database was touched: the environment serves again. Any
    -- other failed destroy may have removed part of it and stays
    -- destroying (a push of its branch brings it back).
    UPDATE ops.environments e SET status = 'active', updated_at = now()
     WHERE e.id = NEW.environment_id AND e.status = 'destroying' AND e.stage = 'production'
       AND NOT EXISTS (SELECT 1 FROM ops.backups b WHERE b.run_id = NEW.id AND b.backup_type = 'final');
  ELSIF NEW.workflow = 'restore' THEN
    UPDATE ops.restores x SET
      status = CASE NEW.status WHEN 'running' THEN 'running' WHEN 'succeeded' THEN 'completed'
                               WHEN 'queued' THEN 'queued' WHEN 'claimed' THEN 'queued'
                               WHEN 'cancelled' THEN 'cancelled' ELSE 'failed' END,
      finished_at = CASE WHEN NEW.status IN ('succeeded', 'failed', 'cancelled') THEN now() END,
      updated_at = now()
     WHERE x.run_id = NEW.id AND x.status IN ('queued', 'running');
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER runs_gate_production_deploy ON ops.runs;
DROP TRIGGER runs_request_deploy_approval ON ops.runs;
DROP FUNCTION ops.gate_production_deploy();
DROP FUNCTION ops._release_gated_deploy(bigint, boolean, text);
CREATE OR REPLACE FUNCTION ops._run_needs_approval(workflow text, environment_id bigint) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT EXISTS (SELECT 1 FROM ops.environments e JOIN ops.projects p ON p.id = e.project_id
                  WHERE e.id = _run_needs_approval.environment_id AND e.stage = 'production'
                    AND (workflow = 'destroy'
                         OR (workflow = 'deploy'
                             AND coalesce((p.settings ->> 'production_deploy_approval')::boolean, false))))
$$;
COMMENT ON FUNCTION ops._run_needs_approval IS
  'Whether a run of a workflow on an environment waits for an approval: production destroys, and production deploys when the project asks';

CREATE OR REPLACE FUNCTION ops.gate_production_run() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF ops._carried_over(NEW.created_at) THEN   -- restored with its approval
    RETURN CASE WHEN TG_WHEN = 'BEFORE' THEN NEW END;
  END IF;
  IF TG_WHEN = 'BEFORE' THEN
    IF ops._run_needs_approval(NEW.workflow, NEW.environment_id) THEN
      NEW.available_at := 'infinity';   -- not claimable until approved
    END IF;
    RETURN NEW;
  END IF;
  -- AFTER INSERT: the gated run exists, ask for the approval.
  INSERT INTO ops.approvals (project_id, environment_id, subject, subject_id, requested_by)
  VALUES (NEW.project_id, NEW.environment_id, NEW.workflow, NEW.id, coalesce(NEW.requested_by, 'odooops'));
  PERFORM ops.audit(NEW.project_id, 'approval.request', NEW.workflow, NEW.id);
  RETURN NULL;
END $$;
COMMENT ON FUNCTION ops.gate_production_run IS
  'Trigger: holds a production deploy or destroy that needs an approval and requests it';
CREATE TRIGGER runs_gate_production BEFORE INSERT ON ops.runs
  FOR EACH ROW WHEN (NEW.workflow IN ('deploy', 'destroy')) EXECUTE FUNCTION ops.gate_production_run();
CREATE TRIGGER runs_request_approval AFTER INSERT ON ops.runs
  FOR EACH ROW WHEN (NEW.workflow IN ('deploy', 'destroy') AND NEW.available_at = 'infinity')
  EXECUTE FUNCTION ops.gate_production_run();
CREATE OR REPLACE FUNCTION ops._release_gated_run(run_id bigint, approved boolean, reason text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r ops.runs;
BEGIN
  IF approved THEN
    UPDATE ops.runs x SET available_at = now(), updated_at = now()
     WHERE x.id = run_id AND x.status = 'queued' AND x.available_at = 'infinity'
    RETURNING * INTO r;
    IF r.workflow = 'destroy' THEN
      UPDATE ops.environments e SET status = 'destroying', updated_at = now()
       WHERE e.id = r.environment_id AND e.status = 'active';
    END IF;
    INSERT INTO ops.run_events (run_id, kind, level, message, actor)
    VALUES (run_id, 'log', 'notice', reason, ops.current_actor());
    NOTIFY odooops_runs;
  ELSIF EXISTS (SELECT 1 FROM ops.runs x WHERE x.id = run_id AND x.status = 'queued') THEN
    PERFORM ops.cancel_run(run_id, reason);
  END IF;
END $$;
COMMENT ON FUNCTION ops._release_gated_run IS
  'Makes an approved gated run claimable (an approved destroy marks its environment destroying) or cancels a rejected one';

COMMENT ON FUNCTION ops.decide_approval IS
  'Approves or rejects a pending approval; the decider needs approval.decide and must not be the requester';

COMMENT ON FUNCTION ops.expire_approvals IS 'Expires pending approvals past their expiry (their restores, deploys and destroys never run); returns how many';

CREATE OR REPLACE FUNCTION ops._destroy_environment(e ops.environments, metadata jsonb, idempotency_key text DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run ops.runs;
BEGIN
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, NULL, NULL, metadata, 'destroy', 0,
                                                idempotency_key);
  IF run.available_at <> 'infinity' THEN
    UPDATE ops.environments x SET status = 'destroying', updated_at = now() WHERE x.id = e.id;
  END IF;
  RETURN jsonb_build_object('run_id', run.id, 'environment', e.name, 'workflow', 'destroy');
END $$;

COMMENT ON FUNCTION ops.destroy_environment IS
  'Queues the destruction of an environment (permission env.manage); a production one waits for an approval and is backed up first';

CREATE OR REPLACE FUNCTION ops._runs_webhook() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ops.webhook_subscriptions s WHERE s.active) THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    -- Runs restored from a dump were announced when they were queued.
    PERFORM ops._enqueue_run_webhook('run.queued', n) FROM new_runs n
      WHERE NOT ops._carried_over(n.created_at) ORDER BY n.id;
  ELSE
    PERFORM ops._enqueue_run_webhook(CASE WHEN n.status = 'running' THEN 'run.started' ELSE 'run.finished' END, n)
       FROM new_runs n JOIN old_runs o ON o.id = n.id
      WHERE o.status IS DISTINCT FROM n.status AND n.status IN ('running', 'succeeded', 'failed', 'cancelled')
      ORDER BY n.id;
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ops._backups_webhook() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- A backup restored from a dump was announced when it completed.
  IF NEW.status IN ('completed', 'failed')
     AND ((TG_OP = 'INSERT' AND NOT ops._carried_over(NEW.created_at))
          OR (TG_OP = 'UPDATE' AND OLD.status IS DISTINCT FROM NEW.status)) THEN
    PERFORM ops.enqueue_webhook_event('backup.' || NEW.status, NEW.project_id, NEW.environment_id,
      jsonb_build_object('id', NEW.id, 'backup_type', NEW.backup_type, 'status', NEW.status,
                         'run_id', NEW.run_id, 'size_bytes', NEW.size_bytes, 'sha256', NEW.sha256,
                         'error', NEW.error));
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ops._restores_webhook() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  event text;
BEGIN
  IF TG_OP = 'INSERT' AND ops._carried_over(NEW.created_at) THEN
    RETURN NULL;   -- restored from a dump: announced long ago
  ELSIF TG_OP = 'INSERT' THEN
    event := 'restore.requested';
  ELSIF OLD.status IS NOT DISTINCT FROM NEW.status THEN
    RETURN NULL;
  ELSIF OLD.status = 'pending_approval' AND NEW.status = 'queued' THEN
    event := 'restore.approved';
  ELSIF NEW.status IN ('completed', 'failed', 'rejected', 'expired', 'cancelled') THEN
    event := 'restore.finished';
  ELSE
    RETURN NULL;
  END IF;
  PERFORM ops.enqueue_webhook_event(event, NEW.project_id, NEW.target_environment_id,
    jsonb_build_object('id', NEW.id, 'backup_id', NEW.backup_id, 'status', NEW.status,
                       'run_id', NEW.run_id, 'requested_by', NEW.requested_by));
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ops._alerts_webhook() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF (TG_OP = 'INSERT' AND NOT ops._carried_over(NEW.opened_at))
     OR (TG_OP = 'UPDATE' AND NEW.status = 'resolved' AND OLD.status = 'open') THEN
    PERFORM ops.enqueue_webhook_event(CASE WHEN TG_OP = 'INSERT' THEN 'alert.opened' ELSE 'alert.resolved' END,
      NEW.project_id, NEW.environment_id,
      jsonb_build_object('id', NEW.id, 'kind', NEW.kind, 'severity', NEW.severity,
                         'status', NEW.status, 'message', NEW.message, 'details', NEW.details));
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ops._backup_schedule_before() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF TG_OP = 'INSERT' AND ops._carried_over(NEW.created_at) THEN
    RETURN NEW;   -- restored from a dump with its next slot
  END IF;
  IF TG_OP = 'INSERT' OR NEW.cron_expr IS DISTINCT FROM OLD.cron_expr
     OR NEW.enabled IS DISTINCT FROM OLD.enabled THEN
    NEW.next_fire_at := CASE WHEN NEW.enabled THEN ops.cron_next(NEW.cron_expr, now()) END;
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END $$;

REVOKE EXECUTE ON FUNCTION ops.guard_shipped_row(), ops._carried_over(timestamptz), ops._run_backup_type(text),
  ops.record_run_backup(bigint, text, integer, text, bigint, text, jsonb),
  ops._run_needs_approval(text, bigint), ops.gate_production_run(), ops._release_gated_run(bigint, boolean, text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.record_run_backup(bigint, text, integer, text, bigint, text, jsonb) TO odooops_worker;

-- run_events: the keys and the reference to ops.runs move from the parent
-- to each partition, and the monthly partitions leave the extension
-- (31_run_events.sql), so that a dump of the control plane restores in any
-- month.
ALTER TABLE ops.run_events DROP CONSTRAINT run_events_pkey, DROP CONSTRAINT run_events_run_id_fkey;
DROP INDEX ops.run_events_run;
COMMENT ON FUNCTION ops._guard_run_event_partition IS 'Makes a run_events partition refuse TRUNCATE';

CREATE OR REPLACE FUNCTION ops._key_run_event_partition(partition regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  name text := (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = partition);
BEGIN
  EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (id, created_at)', partition, name || '_pkey');
  EXECUTE format('CREATE INDEX %I ON %s (run_id, id)', name || '_run_id_id_idx', partition);
  EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I FOREIGN KEY (run_id) REFERENCES ops.runs ON DELETE RESTRICT',
                 partition, name || '_run_id_fkey');
  EXECUTE format('REVOKE ALL ON %s FROM odooops_admin', partition);
END $$;
COMMENT ON FUNCTION ops._key_run_event_partition IS
  'Gives a run_events partition its primary key, index and reference to ops.runs, and no grant';

CREATE OR REPLACE FUNCTION ops.create_run_event_partition(month_start date)
RETURNS boolean LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  name text := 'run_events_' || to_char(month_start, 'YYYY_MM');
  lower_bound text := to_char(date_trunc('month', month_start), 'YYYY-MM-DD') || ' 00:00:00+00';
  upper_bound text := to_char(date_trunc('month', month_start) + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00';
  strays boolean;
  rel regclass;
BEGIN
  IF pg_catalog.to_regclass('ops.' || name) IS NOT NULL THEN
    RETURN false;
  END IF;
  EXECUTE format('SELECT EXISTS (SELECT 1 FROM ops.run_events_default WHERE created_at >= %L AND created_at < %L)',
                 lower_bound, upper_bound) INTO strays;
  IF strays THEN
    ALTER TABLE ops.run_events DETACH PARTITION ops.run_events_default;
  END IF;
  EXECUTE format('CREATE TABLE ops.%I PARTITION OF ops.run_events FOR VALUES FROM (%L) TO (%L)',
                 name, lower_bound, upper_bound);
  rel := format('ops.%I', name)::regclass;
  PERFORM ops._guard_run_event_partition(rel), ops._key_run_event_partition(rel);
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
              WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = rel AND d.deptype = 'e') THEN
    EXECUTE format('ALTER EXTENSION odooops DROP TABLE %s', rel);
  END IF;
  IF strays THEN
    EXECUTE format('INSERT INTO %s SELECT * FROM ops.run_events_default WHERE created_at >= %L AND created_at < %L',
                   rel, lower_bound, upper_bound);
    EXECUTE format('DELETE FROM ops.run_events_default WHERE created_at >= %L AND created_at < %L',
                   lower_bound, upper_bound);
    ALTER TABLE ops.run_events ATTACH PARTITION ops.run_events_default DEFAULT;
  END IF;
  RETURN true;
END $$;
COMMENT ON FUNCTION ops.create_run_event_partition IS
  'Creates the UTC month partition of run_events holding month_start, moving its rows out of the default partition';
DO $$
DECLARE
  rel regclass;
BEGIN
  FOR rel IN SELECT i.inhrelid::regclass FROM pg_catalog.pg_inherits i
              WHERE i.inhparent = 'ops.run_events'::regclass ORDER BY 1
  LOOP
    PERFORM ops._key_run_event_partition(rel);
    IF rel <> 'ops.run_events_default'::regclass AND EXISTS (
         SELECT 1 FROM pg_catalog.pg_depend d
          WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = rel AND d.deptype = 'e') THEN
      EXECUTE format('ALTER EXTENSION odooops DROP TABLE %s', rel);
    END IF;
  END LOOP;
END $$;
REVOKE EXECUTE ON FUNCTION ops._key_run_event_partition(regclass) FROM PUBLIC;

-- Webhooks: a limit of requests in flight per host (odooops.webhook_host_concurrency).
DROP FUNCTION ops._claim_webhook_deliveries(integer, integer, integer);
DROP FUNCTION ops._next_webhook_due_ms();
CREATE FUNCTION ops._webhook_host(url text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT lower(substring(url FROM '^https?://([^/?#]+)'))
$$;
CREATE FUNCTION ops._webhook_hosts_sending() RETURNS TABLE(host text, n bigint) LANGUAGE sql STABLE AS $$
  SELECT ops._webhook_host(s.url), count(*)
    FROM ops.webhook_deliveries d JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id
   WHERE d.status = 'sending'
   GROUP BY 1
$$;
CREATE FUNCTION ops._webhook_full_subscriptions(host_cap integer) RETURNS SETOF bigint
LANGUAGE sql STABLE AS $$
  SELECT s.id FROM ops.webhook_subscriptions s
    JOIN ops._webhook_hosts_sending() x ON x.host = ops._webhook_host(s.url)
   WHERE host_cap IS NOT NULL AND x.n >= host_cap
$$;
CREATE FUNCTION ops._claim_webhook_deliveries(n integer, claim_ms integer, default_max_attempts integer,
                                              host_cap integer DEFAULT NULL)
RETURNS TABLE(id bigint, format text, url text, secret text, event_type text, payload text,
              attempts integer, max_attempts integer)
LANGUAGE sql VOLATILE AS $$
  WITH sending AS (
    SELECT * FROM ops._webhook_hosts_sending() WHERE host_cap IS NOT NULL
  ), due AS (
    SELECT d.id, d.subscription_id, d.next_attempt_at FROM ops.webhook_deliveries d
     WHERE d.status = 'pending' AND d.next_attempt_at <= now()
       AND d.subscription_id NOT IN (SELECT ops._webhook_full_subscriptions(host_cap))
     ORDER BY d.next_attempt_at, d.id
     LIMIT n FOR UPDATE SKIP LOCKED
  ), c AS (
    -- within the batch, no host beyond what it has left of host_cap
    SELECT due.id FROM (
      SELECT due.id, ops._webhook_host(s.url) AS host,
             row_number() OVER (PARTITION BY ops._webhook_host(s.url) ORDER BY due.next_attempt_at, due.id) AS k
        FROM due JOIN ops.webhook_subscriptions s ON s.id = due.subscription_id) due
      LEFT JOIN sending x ON x.host = due.host
     WHERE host_cap IS NULL OR due.k + coalesce(x.n, 0) <= host_cap
  ), u AS (
    UPDATE ops.webhook_deliveries d
       SET status = 'sending', attempts = d.attempts + 1,
           claimed_until = now() + make_interval(secs => claim_ms / 1000.0), updated_at = now()
      FROM c WHERE d.id = c.id
    RETURNING d.id, d.subscription_id, d.event_type, d.payload, d.attempts
  )
  SELECT u.id, s.format, s.url, coalesce(k.secret, ''), u.event_type, u.payload::text, u.attempts,
         coalesce(s.max_attempts, default_max_attempts)
    FROM u JOIN ops.webhook_subscriptions s ON s.id = u.subscription_id
    LEFT JOIN ops.webhook_secrets k ON k.subscription_id = s.id
   ORDER BY u.id
$$;
CREATE FUNCTION ops._next_webhook_due_ms(host_cap integer DEFAULT NULL) RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN due IS NOT NULL
              THEN greatest(0, (extract(epoch FROM due - clock_timestamp()) * 1000)::bigint) END
    FROM (SELECT min(d.next_attempt_at) AS due FROM ops.webhook_deliveries d
           WHERE d.status = 'pending'
             AND d.subscription_id NOT IN (SELECT ops._webhook_full_subscriptions(host_cap))) d
$$;
REVOKE EXECUTE ON FUNCTION ops._webhook_host(text), ops._webhook_hosts_sending(), ops._webhook_full_subscriptions(integer),
  ops._claim_webhook_deliveries(integer, integer, integer, integer), ops._next_webhook_due_ms(integer) FROM PUBLIC;
-- Storage is cleaned up: a backup's filestore archive is queued for deletion
-- with its dump, deletions are handed out only for objects the catalogue
-- marks expired, a failed deletion waits before its retry, and artifacts
-- expire after odooops.artifact_ttl.
ALTER TABLE ops.storage_deletions DROP CONSTRAINT storage_deletions_object_kind_check,
  ADD CONSTRAINT storage_deletions_object_kind_check CHECK (object_kind IN ('backup', 'filestore', 'artifact'));
ALTER TABLE ops.storage_deletions ADD COLUMN retry_at timestamptz;
COMMENT ON TABLE ops.storage_deletions IS
  'Outbox of stored objects (backup dumps and filestore archives, artifacts) to delete, drained by the worker daemon';

CREATE FUNCTION ops._storage_object_expired(object_kind text, object_id bigint, location text)
RETURNS boolean LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE _storage_object_expired.object_kind
    WHEN 'backup' THEN EXISTS (
      SELECT 1 FROM ops.backups b
       WHERE b.id = _storage_object_expired.object_id AND b.status IN ('expired', 'deleted')
         AND b.location = _storage_object_expired.location)
    WHEN 'filestore' THEN EXISTS (
      SELECT 1 FROM ops.backups b
       WHERE b.id = _storage_object_expired.object_id AND b.status IN ('expired', 'deleted')
         AND b.metadata #>> '{backup,filestore,location}' = _storage_object_expired.location)
    WHEN 'artifact' THEN EXISTS (
      SELECT 1 FROM ops.artifacts a
       WHERE a.id = _storage_object_expired.object_id AND a.expired_at IS NOT NULL
         AND a.location = _storage_object_expired.location)
    ELSE false END
$$;
COMMENT ON FUNCTION ops._storage_object_expired IS
  'Whether the catalogue marks the backup dump, filestore archive or artifact at a location expired';

CREATE FUNCTION ops._backup_objects(dump_location text, metadata jsonb)
RETURNS TABLE (object_kind text, object_location text) LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT v.kind, v.loc
    FROM (VALUES ('backup', _backup_objects.dump_location),
                 ('filestore', _backup_objects.metadata #>> '{backup,filestore,location}')) v(kind, loc)
   WHERE v.loc IS NOT NULL
$$;
COMMENT ON FUNCTION ops._backup_objects IS
  'The stored objects of a backup: its dump and its filestore archive, with their kinds';

CREATE FUNCTION ops._artifact_in_storage(project_id bigint, location text)
RETURNS boolean LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(x.path IS NOT NULL
                  AND _artifact_in_storage.location !~ '[[:cntrl:][:space:]\\%?#]'
                  AND x.path !~ '//|/\.{1,2}(/|$)'
                  AND strpos(x.path, '/artifacts/' || (SELECT p.slug FROM ops.projects p
                                                        WHERE p.id = _artifact_in_storage.project_id) || '/') > 0,
                  false)
    FROM (SELECT substring(_artifact_in_storage.location
                           FROM '^(?:file://|s3://[a-z0-9][a-z0-9.-]{1,62})(/.*)$') AS path) x
$$;
COMMENT ON FUNCTION ops._artifact_in_storage IS
  'Whether an artifact location is a clean file:// or s3:// URL under artifacts/<project slug>/';

CREATE FUNCTION ops._artifact_expiry() RETURNS timestamptz LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT now() + ttl FROM (SELECT coalesce(nullif(current_setting('odooops.artifact_ttl', true), '')::interval,
                                           interval '30 days') AS ttl) s
   WHERE ttl > interval '0'
$$;
COMMENT ON FUNCTION ops._artifact_expiry IS
  'When an artifact recorded now expires: now() + odooops.artifact_ttl, or NULL when that is 0';

REVOKE EXECUTE ON FUNCTION ops._storage_object_expired(text, bigint, text), ops._backup_objects(text, jsonb),
  ops._artifact_in_storage(bigint, text), ops._artifact_expiry() FROM PUBLIC;

CREATE OR REPLACE FUNCTION ops.claim_storage_deletions(worker_id text, n integer DEFAULT 10)
RETURNS SETOF ops.storage_deletions LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops.authorize_worker(worker_id);
  RETURN QUERY
  WITH c AS (
    SELECT s.id, ops._storage_object_expired(s.object_kind, s.object_id, s.location) AS expired
      FROM ops.storage_deletions s
     WHERE (s.status = 'pending' AND (s.retry_at IS NULL OR s.retry_at <= now()))
        OR (s.status = 'claimed' AND s.claimed_at < now() - interval '1 hour')
     ORDER BY s.id LIMIT least(greatest(n, 1), 1000) FOR UPDATE SKIP LOCKED
  ), refused AS (
    UPDATE ops.storage_deletions d SET status = 'failed', completed_at = now(), retry_at = NULL,
           error = format('not deleted: the catalogue does not mark %s %s at %s expired',
                          d.object_kind, d.object_id, d.location)
      FROM c WHERE d.id = c.id AND NOT c.expired RETURNING 1
  )
  UPDATE ops.storage_deletions d SET status = 'claimed', claimed_by = claim_storage_deletions.worker_id,
         claimed_at = now(), attempts = d.attempts + 1
    FROM c WHERE d.id = c.id AND c.expired RETURNING d.*;
END $$;
COMMENT ON FUNCTION ops.claim_storage_deletions IS
  'Claims up to n due storage deletions of expired objects for the worker daemon (others fail, unclaimed)';

CREATE OR REPLACE FUNCTION ops.finish_storage_deletion(deletion_id bigint, ok boolean, error text DEFAULT NULL)
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
  -- A failure is tried again after 1, 2, 4, 8 minutes; the fifth fails for good.
  UPDATE ops.storage_deletions s
     SET status = CASE WHEN ok THEN 'done' WHEN s.attempts >= 5 THEN 'failed' ELSE 'pending' END,
         completed_at = CASE WHEN ok OR s.attempts >= 5 THEN now() END,
         retry_at = CASE WHEN NOT ok AND s.attempts < 5
                         THEN now() + interval '1 minute' * power(2, greatest(s.attempts, 1) - 1) END,
         error = finish_storage_deletion.error
   WHERE s.id = d.id RETURNING * INTO d;
  IF ok AND d.object_kind IN ('backup', 'filestore') THEN
    -- Deleted once both its dump and its filestore archive are: the backup
    -- row is locked first, so that two workers finishing the two halves at
    -- once see each other's outcome.
    PERFORM 1 FROM ops.backups b WHERE b.id = d.object_id FOR UPDATE;
    UPDATE ops.backups b SET status = 'deleted'
     WHERE b.id = d.object_id AND b.status = 'expired'
       AND NOT EXISTS (SELECT 1 FROM ops.storage_deletions s
                        WHERE s.object_id = d.object_id AND s.object_kind IN ('backup', 'filestore')
                          AND s.status <> 'done');
  END IF;
  RETURN d;
END $$;
COMMENT ON FUNCTION ops.finish_storage_deletion IS
  'Records the outcome of a claimed storage deletion (retried with backoff; a backup whose objects are all deleted becomes deleted)';

CREATE OR REPLACE FUNCTION ops.expire_backups() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  WITH x AS (
    UPDATE ops.backups b SET status = 'expired', expired_at = now()
     WHERE b.status = 'completed'
       AND b.backup_type IN ('manual', 'pre_deploy', 'pre_restore')
       AND coalesce(b.expires_at, b.completed_at + coalesce(
             (SELECT r.manual_ttl FROM ops.backup_retention r WHERE r.environment_id = b.environment_id),
             interval '14 days')) <= now()
       AND NOT EXISTS (SELECT 1 FROM ops.restores rs WHERE rs.backup_id = b.id
                          AND rs.status IN ('pending_approval', 'queued', 'running'))
       AND NOT EXISTS (SELECT 1 FROM ops.runs r WHERE r.environment_id = b.environment_id
                          AND r.workflow = 'deploy' AND r.status IN ('queued', 'claimed', 'running')
                          AND r.metadata ->> 'restore_backup_id' = b.id::text)
    RETURNING b.id, b.location, b.metadata
  ), q AS (
    INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason)
    SELECT o.object_kind, x.id, o.object_location, 'ttl'
      FROM x CROSS JOIN LATERAL ops._backup_objects(x.location, x.metadata) o
    ON CONFLICT DO NOTHING RETURNING 1
  ) SELECT count(*) INTO n FROM x;
  RETURN n + ops.apply_backup_retention();
END $$;
COMMENT ON FUNCTION ops.expire_backups IS
  'Marks backups past retention or TTL expired and queues their dumps and filestore archives for deletion';

CREATE OR REPLACE FUNCTION ops.expire_artifacts(max_rows integer DEFAULT 10000) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  WITH due AS (
    SELECT a.id FROM ops.artifacts a
     WHERE a.expired_at IS NULL AND a.expires_at <= now()
     ORDER BY a.expires_at LIMIT max_rows FOR UPDATE SKIP LOCKED
  ), x AS (
    UPDATE ops.artifacts a SET expired_at = now() FROM due WHERE a.id = due.id
    RETURNING a.id, a.project_id, a.location
  ), q AS (
    INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason)
    SELECT 'artifact', x.id, x.location, 'ttl' FROM x
     WHERE ops._artifact_in_storage(x.project_id, x.location)
    ON CONFLICT DO NOTHING RETURNING 1
  ) SELECT count(*) INTO n FROM x;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.expire_artifacts IS
  'Expires artifacts past expires_at and queues those stored under artifacts/<project>/ for deletion; returns how many';

CREATE OR REPLACE FUNCTION ops.record_artifact(run_id bigint, worker_id text, attempt integer, kind text, name text,
                                    location text, size_bytes bigint DEFAULT NULL, sha256 text DEFAULT NULL,
                                    metadata jsonb DEFAULT '{}', expires_at timestamptz DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r ops.runs;
  artifact_id bigint;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128), ops._check_length('name', name, 255),
          ops._check_length('location', location, 2048), ops._check_json_size('metadata', metadata, 262144);
  PERFORM ops.authorize_worker(worker_id);
  -- Share-locked: a concurrent requeue or cancel is seen before the fence is judged.
  r := ops._held_running_run(run_id, worker_id, attempt, false, 'artifacts are recorded while it runs');
  INSERT INTO ops.artifacts AS a (run_id, project_id, kind, name, location, size_bytes, sha256, metadata, expires_at)
  VALUES (r.id, r.project_id, kind, name, location, size_bytes, sha256, coalesce(metadata, '{}'),
          coalesce(expires_at, ops._artifact_expiry()))
  ON CONFLICT ON CONSTRAINT artifacts_run_id_name_key DO UPDATE SET location = EXCLUDED.location,
     size_bytes = EXCLUDED.size_bytes,
     sha256 = EXCLUDED.sha256, metadata = EXCLUDED.metadata, expires_at = EXCLUDED.expires_at
  RETURNING a.id INTO artifact_id;
  RETURN NEXT artifact_id;
END $$;
COMMENT ON FUNCTION ops.record_artifact IS
  'Records (or replaces) an artifact of a run the worker holds and has started, expiring after odooops.artifact_ttl unless given; OD003 once it lost the run';

-- The filestore archives of backups expired before this version were never
-- queued: queue them now, for the same reason as their dumps.
INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason)
SELECT 'filestore', b.id, b.metadata #>> '{backup,filestore,location}', d.reason
  FROM ops.backups b JOIN ops.storage_deletions d ON d.object_kind = 'backup' AND d.object_id = b.id
 WHERE b.status IN ('expired', 'deleted') AND b.metadata #>> '{backup,filestore,location}' IS NOT NULL
ON CONFLICT DO NOTHING;
-- A branch's development environment no longer copies its template's
-- http_port (every environment gets its own port from its worker); the
-- ones that did give it up, so that they do not all claim one port.
CREATE OR REPLACE FUNCTION ops._branch_environment(p ops.projects, template ops.environments, branch text,
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
  -- The template's settings, but not its http_port: every environment gets
  -- a port of its own from its worker (worker/http_ports.h), and branches
  -- sharing the template's would start on one port.
  INSERT INTO ops.environments (project_id, name, stage, db_name, settings, branch, expires_at)
  SELECT p.id, 'dev-' || slug, 'development', db, template.settings - 'http_port', branch, now() + ttl
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
UPDATE ops.environments e SET settings = e.settings - 'http_port', updated_at = now()
 WHERE e.stage = 'development' AND e.branch IS NOT NULL AND e.settings ? 'http_port'
   AND EXISTS (SELECT 1 FROM ops.environments t
                WHERE t.project_id = e.project_id AND t.id <> e.id AND t.branch_pattern IS NOT NULL
                  AND t.settings -> 'http_port' = e.settings -> 'http_port');
-- Claim order: priority, then the time a run was first queued (a run
-- requeued after a lost lease keeps its place).
DROP INDEX ops.runs_claim_order;
-- The claim path: queued runs in claim order, and nothing else. The order is
-- priority, then when the run was first queued: a run requeued after a lost
-- lease keeps its place (available_at only gates when it may be claimed).
CREATE INDEX runs_claim_order ON ops.runs (priority DESC, created_at, id) WHERE status = 'queued';

-- Environment hosts (61_environment_hosts.sql).
-- Where an environment lives. Its running Odoo, filestore and ports are on
-- one worker's host: the registered worker that completed its first
-- successful deploy (or restore: both create the state), or a team of workers an operator pinned it to (workers
-- sharing one host). Every later run that touches that state (deploy,
-- backup, restore, destroy) is claimed there only; builds and tests, which
-- work on a checkout and a throw-away database, go to any worker. A run
-- whose host is gone waits (ops.run_waiting_reason says why); moving an
-- environment is ops.move_environment. docs/environment-hosts.md.
--
-- The route is copied onto each run (runs.host_worker_id, runs.team_id) so
-- that a claim decides on the run row it locks: a claim racing a move
-- re-reads that row (READ COMMITTED re-check), never a stale environment.

ALTER TABLE ops.environments
  ADD COLUMN host_worker_id text CHECK (length(host_worker_id) BETWEEN 1 AND 128),
  ADD COLUMN host_team_id   bigint REFERENCES ops.agent_teams ON DELETE RESTRICT,
  ADD CONSTRAINT environments_one_host CHECK (host_worker_id IS NULL OR host_team_id IS NULL);
COMMENT ON COLUMN ops.environments.host_worker_id IS
  'The worker holding this environment''s state; its deploy, backup, restore and destroy runs are claimed by it only';
COMMENT ON COLUMN ops.environments.host_team_id IS
  'The team of workers (one host) this environment is pinned to; its deploy, backup, restore and destroy runs are claimed by members only';

ALTER TABLE ops.runs ADD COLUMN host_worker_id text CHECK (length(host_worker_id) BETWEEN 1 AND 128);
COMMENT ON COLUMN ops.runs.host_worker_id IS
  'Only this worker may claim the run: the host of its environment (ops.environments.host_worker_id)';

-- The host changes only through ops.move_environment and the first
-- deploy or restore (functions owned by the extension owner, which keep the
-- waiting runs routed and write the audit trail): a direct write by an
-- administrator is refused. The operator (a superuser or the extension
-- owner) may still write it, as any row.
CREATE FUNCTION ops._guard_environment_host() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT coalesce((SELECT pg_catalog.pg_has_role(current_user, x.extowner, 'MEMBER')
                     FROM pg_catalog.pg_extension x WHERE x.extname = 'odooops'), false) THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('the host of environment "%s" changes only through ops.move_environment', NEW.name);
  END IF;
  RETURN NEW;
END $$;
COMMENT ON FUNCTION ops._guard_environment_host IS
  'Refuses a direct write of an environment''s host: it changes through ops.move_environment (audited, waiting runs re-routed)';
CREATE TRIGGER environments_guard_host_insert BEFORE INSERT ON ops.environments
  FOR EACH ROW WHEN (NEW.host_worker_id IS NOT NULL OR NEW.host_team_id IS NOT NULL)
  EXECUTE FUNCTION ops._guard_environment_host();
CREATE TRIGGER environments_guard_host_update BEFORE UPDATE OF host_worker_id, host_team_id ON ops.environments
  FOR EACH ROW WHEN (NEW.host_worker_id IS DISTINCT FROM OLD.host_worker_id
                     OR NEW.host_team_id IS DISTINCT FROM OLD.host_team_id)
  EXECUTE FUNCTION ops._guard_environment_host();

-- The workflows that read or change an environment's state on its host.
CREATE FUNCTION ops._runs_on_host(workflow text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT workflow IN ('deploy', 'backup', 'restore', 'destroy')
$$;
COMMENT ON FUNCTION ops._runs_on_host IS
  'Whether runs of a workflow touch their environment''s state and so run on its host (deploy, backup, restore, destroy)';

-- A new run of such a workflow goes where its environment lives. The
-- environment row is key-share locked (as the foreign key does anyway): a
-- move or a first host being recorded, which lock it FOR UPDATE, either
-- waits for this insert (and then re-routes the run) or finishes first (and
-- this read returns the row they wrote). Ordinary updates of the
-- environment do not conflict with it.
CREATE FUNCTION ops.route_run_to_host() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
BEGIN
  IF ops._carried_over(NEW.created_at) OR NOT ops._runs_on_host(NEW.workflow) THEN
    RETURN NEW;   -- restored from a dump with its route, or free to go anywhere
  END IF;
  SELECT * INTO e FROM ops.environments x WHERE x.id = NEW.environment_id FOR KEY SHARE;
  NEW.host_worker_id := e.host_worker_id;
  NEW.team_id := coalesce(e.host_team_id, NEW.team_id);
  RETURN NEW;
END $$;
CREATE TRIGGER runs_route_to_host BEFORE INSERT ON ops.runs
  FOR EACH ROW EXECUTE FUNCTION ops.route_run_to_host();

-- The first successful deploy or restore by a registered worker (both leave
-- a database, a filestore and a started Odoo on its host) makes that worker
-- the host of an environment that has none; the runs already waiting follow.
CREATE FUNCTION ops.record_environment_host() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ops.agents a WHERE a.worker_id = NEW.claimed_by)
     OR NOT EXISTS (SELECT 1 FROM ops.environments x WHERE x.id = NEW.environment_id
                       AND x.host_worker_id IS NULL AND x.host_team_id IS NULL) THEN
    RETURN NULL;   -- hosted already, or a worker that never registered (not tracked as a host)
  END IF;
  -- FOR UPDATE waits for runs being queued (ops.route_run_to_host), so the
  -- re-routing below sees them.
  SELECT * INTO e FROM ops.environments x WHERE x.id = NEW.environment_id FOR UPDATE;
  IF e.host_worker_id IS NOT NULL OR e.host_team_id IS NOT NULL THEN
    RETURN NULL;
  END IF;
  UPDATE ops.environments x SET host_worker_id = NEW.claimed_by, updated_at = now()
   WHERE x.id = e.id
  RETURNING * INTO e;
  UPDATE ops.runs r SET host_worker_id = e.host_worker_id, updated_at = now()
   WHERE r.environment_id = e.id AND r.status = 'queued' AND ops._runs_on_host(r.workflow);
  PERFORM ops.audit(e.project_id, 'environment.host', 'environment', e.id,
                    jsonb_build_object('environment', e.name, 'host_worker_id', e.host_worker_id,
                                       'run_id', NEW.id, 'workflow', NEW.workflow));
  RETURN NULL;
END $$;
CREATE TRIGGER runs_record_environment_host AFTER UPDATE OF status ON ops.runs
  FOR EACH ROW WHEN (NEW.workflow IN ('deploy', 'restore') AND NEW.status = 'succeeded' AND OLD.status <> 'succeeded')
  EXECUTE FUNCTION ops.record_environment_host();

-- Moves an environment to another worker or team. A move changes where its
-- runs go, nothing else: the files of the environment stay on the old
-- host, so the new one starts without them (its next deploy builds the
-- release, a restore brings data and filestore back). It is refused while
-- a deploy, backup, restore or destroy of the environment is held, and it
-- is audited.
CREATE FUNCTION ops.move_environment(project_id bigint, env text, to_worker text DEFAULT NULL,
                                     to_team text DEFAULT NULL, reason text DEFAULT NULL)
RETURNS ops.environments LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  team_row ops.agent_teams;
  held ops.runs;
  moved integer;
BEGIN
  PERFORM ops._check_length('env', env, 255);
  PERFORM ops._check_length('to_worker', to_worker, 128);
  PERFORM ops._check_length('to_team', to_team, 255);
  PERFORM ops._check_length('reason', reason, 8192);
  SELECT * INTO e FROM ops.environments x
   WHERE x.project_id = move_environment.project_id AND x.name = env;
  -- Outside the project its environments are as unknown as missing ones.
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  PERFORM ops.authorize(e.project_id, 'project.manage');
  IF (to_worker IS NULL) = (to_team IS NULL) THEN
    PERFORM ops._raise('OD004', 'name either to_worker or to_team',
                       'A worker hosts an environment alone; a team is workers sharing one host.');
  END IF;
  IF to_worker IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ops.agents a WHERE a.worker_id = to_worker) THEN
    PERFORM ops._raise('OD002', format('unknown worker "%s"', to_worker), 'A worker registers itself when it starts.');
  END IF;
  IF to_team IS NOT NULL THEN
    SELECT * INTO team_row FROM ops.agent_teams t WHERE t.name = to_team;
    IF NOT FOUND THEN
      PERFORM ops._raise('OD002', format('unknown agent team "%s"', to_team));
    END IF;
  END IF;

  SELECT * INTO e FROM ops.environments x WHERE x.id = e.id FOR UPDATE;
  -- Re-route the waiting runs first: a claim holding one of them makes this
  -- wait, and the check below then sees that claim.
  UPDATE ops.runs r SET host_worker_id = to_worker, team_id = team_row.id, updated_at = now()
   WHERE r.environment_id = e.id AND r.status = 'queued' AND ops._runs_on_host(r.workflow);
  GET DIAGNOSTICS moved = ROW_COUNT;
  SELECT * INTO held FROM ops.runs r
   WHERE r.environment_id = e.id AND r.status IN ('claimed', 'running') AND ops._runs_on_host(r.workflow)
   ORDER BY r.id LIMIT 1;
  IF FOUND THEN
    PERFORM ops._raise('OD004', format('environment "%s" has %s run %s held by %s', env, held.workflow, held.id,
                                       held.claimed_by),
                       'Move it once the run has finished (or cancel the run).');
  END IF;

  UPDATE ops.environments x SET host_worker_id = to_worker, host_team_id = team_row.id, updated_at = now()
   WHERE x.id = e.id;
  PERFORM ops.audit(e.project_id, 'environment.move', 'environment', e.id,
                    jsonb_build_object('environment', e.name,
                                       'from_worker', e.host_worker_id,
                                       'from_team', (SELECT t.name FROM ops.agent_teams t WHERE t.id = e.host_team_id),
                                       'to_worker', to_worker, 'to_team', to_team,
                                       'queued_runs', moved, 'reason', reason));
  SELECT * INTO e FROM ops.environments x WHERE x.id = e.id;
  RETURN e;
END $$;
COMMENT ON FUNCTION ops.move_environment IS
  'Moves an environment''s runs to another worker or team (permission project.manage; audited); its files stay on the old host';

-- Why a queued run is not claimed yet, in words: waiting for an approval,
-- its retry time, the environment's host (and what is wrong with it), a
-- run holding the environment, or just a free worker. NULL once the run
-- left the queue.
CREATE FUNCTION ops.run_waiting_reason(run_id bigint) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r ops.runs;
  e ops.environments;
  a ops.agents;
  team text;
  holder ops.runs;
BEGIN
  SELECT * INTO r FROM ops.runs x WHERE x.id = run_id;
  IF NOT FOUND OR NOT ops.can_read_project(r.project_id) THEN
    PERFORM ops._raise('OD002', format('run %s does not exist', run_id));
  END IF;
  IF r.status <> 'queued' THEN
    RETURN NULL;
  END IF;
  SELECT * INTO e FROM ops.environments x WHERE x.id = r.environment_id;
  IF r.available_at = 'infinity' THEN
    RETURN 'waiting for an approval';
  ELSIF r.available_at > now() THEN
    RETURN 'waiting for its retry time';
  END IF;
  IF r.host_worker_id IS NOT NULL THEN
    SELECT * INTO a FROM ops.agents x WHERE x.worker_id = r.host_worker_id;
    IF NOT FOUND THEN
      RETURN format('waiting for worker %s, the host of environment %s, which is no longer registered',
                    r.host_worker_id, e.name);
    ELSIF a.status <> 'active' THEN
      RETURN format('waiting for worker %s, the host of environment %s, which is %s', a.worker_id, e.name, a.status);
    ELSIF NOT a.healthy THEN
      RETURN format('waiting for worker %s, the host of environment %s, which is unhealthy%s', a.worker_id, e.name,
                    coalesce(': ' || a.health_detail, ''));
    ELSIF NOT r.workflow = ANY (a.kinds) THEN
      RETURN format('waiting for worker %s, the host of environment %s, which does not take %s runs',
                    a.worker_id, e.name, r.workflow);
    END IF;
  END IF;
  IF r.team_id IS NOT NULL THEN
    SELECT t.name INTO team FROM ops.agent_teams t WHERE t.id = r.team_id;
    IF NOT EXISTS (SELECT 1 FROM ops.agent_team_members m JOIN ops.agents x ON x.id = m.agent_id
                    WHERE m.team_id = r.team_id AND x.status = 'active' AND x.healthy
                      AND r.workflow = ANY (x.kinds)) THEN
      RETURN format('waiting for a worker of team %s%s: none is active, healthy and taking %s runs', team,
                    CASE WHEN e.host_team_id = r.team_id THEN format(', the host of environment %s', e.name) ELSE '' END,
                    r.workflow);
    END IF;
  END IF;
  IF r.exclusive THEN
    SELECT * INTO holder FROM ops.runs x
     WHERE x.environment_id = r.environment_id AND x.exclusive AND x.status IN ('claimed', 'running') LIMIT 1;
    IF FOUND THEN
      RETURN format('waiting for %s run %s of environment %s to finish', holder.workflow, holder.id, e.name);
    END IF;
  END IF;
  IF r.host_worker_id IS NOT NULL THEN
    RETURN format('waiting for worker %s, the host of environment %s, to claim it', r.host_worker_id, e.name);
  ELSIF r.team_id IS NOT NULL THEN
    RETURN format('waiting for a worker of team %s to claim it', team);
  END IF;
  RETURN 'waiting for a free worker';
END $$;
COMMENT ON FUNCTION ops.run_waiting_reason IS
  'Why a queued run is not claimed yet (approval, retry time, its environment''s host, a run holding the environment); NULL once claimed';
REVOKE EXECUTE ON FUNCTION ops._runs_on_host(text), ops.route_run_to_host(), ops.record_environment_host(),
  ops._guard_environment_host(),
  ops.move_environment(bigint, text, text, text, text), ops.run_waiting_reason(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.move_environment(bigint, text, text, text, text), ops.run_waiting_reason(bigint)
  TO odooops_api;
-- Environments deployed before this version: the registered worker of their
-- latest successful deploy holds them, and their waiting runs go there.
UPDATE ops.environments e SET host_worker_id = d.claimed_by
  FROM (SELECT DISTINCT ON (r.environment_id) r.environment_id, r.claimed_by FROM ops.runs r
         WHERE r.workflow = 'deploy' AND r.status = 'succeeded'
           AND EXISTS (SELECT 1 FROM ops.agents a WHERE a.worker_id = r.claimed_by)
         ORDER BY r.environment_id, r.finished_at DESC, r.id DESC) d
 WHERE d.environment_id = e.id AND e.status <> 'destroyed';
UPDATE ops.runs r SET host_worker_id = e.host_worker_id
  FROM ops.environments e
 WHERE e.id = r.environment_id AND e.host_worker_id IS NOT NULL AND r.status = 'queued'
   AND ops._runs_on_host(r.workflow);
-- Git hosts: provider-neutral ingest (ops._ingest_event) with one adapter
-- per host (GitHub, GitLab, Gitea/Forgejo, Bitbucket Cloud, post-receive),
-- and commit statuses for every host (docs/git-hosts.md).

CREATE FUNCTION ops.hmac_signature_valid(secret text, body text, signature text, prefix text DEFAULT '')
RETURNS boolean LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'odooops_hmac_signature_valid';
COMMENT ON FUNCTION ops.hmac_signature_valid IS
  'Checks a webhook signature: prefix followed by the hex HMAC-SHA256 of the raw body under the secret (constant-time)';
CREATE FUNCTION ops.token_valid(expected text, given text)
RETURNS boolean LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'odooops_token_valid';
COMMENT ON FUNCTION ops.token_valid IS 'Compares a shared webhook token with the expected one in constant time';

-- A pull request number from a payload: a positive JSON integer, else OD004.
CREATE FUNCTION ops._pull_request_number(v jsonb) RETURNS integer LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF jsonb_typeof(v) = 'number' AND v::text ~ '^[1-9][0-9]{0,8}$' THEN
    RETURN v::text::integer;
  END IF;
  RAISE EXCEPTION USING ERRCODE = 'OD004', MESSAGE = 'webhook body has no valid pull request number';
END $$;


-- The provider-neutral half of ingest (docs/git-hosts.md). Every adapter
-- (GitHub, GitLab, Gitea/Forgejo, Bitbucket Cloud, the post-receive hook)
-- checks its transport, maps its payload to one of these kinds and calls
-- ops._ingest_event, which alone decides which environment a branch maps
-- to, creates branch and preview environments, queues deploy runs and tears
-- environments down:
--   push                 `branch` now at `sha`
--   branch_deleted       `branch` was deleted
--   pull_request         pull request `pr_number` opened, reopened or pushed
--                        to, its head `branch` at `sha`
--   pull_request_closed  pull request `pr_number` closed or merged
-- `origin` (the source and its delivery id) goes into the metadata of every
-- run queued, `details` into that of deploy runs; `idempotency_key` keeps a
-- redelivered event from queueing twice. Returns {"queued": [...],
-- "created_environments": [...]} and, when nothing was done, "ignored".
CREATE FUNCTION ops._ingest_event(p ops.projects, kind text, branch text, sha text, pr_number integer,
                                  origin jsonb, details jsonb, idempotency_key text)
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  made record;
  run ops.runs;
  queued jsonb := '[]';
  created jsonb := '[]';
  ignored text;
BEGIN
  IF kind IS NULL OR kind NOT IN ('push', 'branch_deleted', 'pull_request', 'pull_request_closed') THEN
    PERFORM ops._raise('OD004', format('unknown ingest event kind "%s"', left(kind, 40)));
  END IF;
  IF kind IN ('push', 'branch_deleted', 'pull_request') AND coalesce(branch, '') = '' THEN
    PERFORM ops._raise('OD004', format('%s event without a branch name', kind));
  END IF;
  IF kind IN ('push', 'pull_request') AND (sha IS NULL OR sha !~ '^[0-9a-fA-F]{4,64}$') THEN
    PERFORM ops._raise('OD004', format('%s event without a valid commit id', kind));
  END IF;
  IF kind IN ('pull_request', 'pull_request_closed') AND coalesce(pr_number, 0) <= 0 THEN
    PERFORM ops._raise('OD004', format('%s event without a valid pull request number', kind));
  END IF;
  PERFORM ops._check_branch_length(branch);

  IF kind = 'branch_deleted' THEN
    SELECT * INTO e FROM ops.environments x
     WHERE x.project_id = p.id AND x.branch = _ingest_event.branch AND x.status = 'active'
       AND x.stage IN ('development', 'preview');
    IF FOUND THEN
      queued := queued || ops._destroy_environment(e, jsonb_build_object('reason', 'branch deleted') || origin,
                                                   idempotency_key || ':destroy');
    ELSE
      ignored := 'no environment for the deleted branch';
    END IF;

  ELSIF kind = 'push' THEN
    e := ops._environment_for_branch(p, branch);
    IF ops._is_branch_template(e) THEN
      SELECT * INTO made FROM ops._branch_environment(p, e, branch);
      e := made.env;
      IF made.created THEN
        created := created || jsonb_build_array(e.name);
      END IF;
    ELSIF e.branch = branch THEN
      UPDATE ops.environments x SET expires_at = now() + make_interval(hours =>
                24 * coalesce((p.settings ->> 'development_ttl_days')::int, 3)), updated_at = now()
       WHERE x.id = e.id AND x.expires_at IS NOT NULL;
    END IF;
    IF e.id IS NULL THEN
      ignored := format('no environment for branch %s', branch);
    ELSE
      -- A development branch is tested on every push, as on Odoo.sh: the
      -- test run (checkout, addons, the modules installed with
      -- --test-enable on a fresh database) is queued before the deploy
      -- (docs/workflow.md), each reporting its own commit status.
      IF e.stage = 'development' THEN
        SELECT * INTO run FROM ops._queue_run_trusted(p.id, e.name, sha, branch, origin || details,
                                                      'test', 0, idempotency_key || ':test');
        queued := queued || jsonb_build_object('run_id', run.id, 'environment', e.name, 'workflow', 'test');
      END IF;
      SELECT * INTO run FROM ops._queue_run_trusted(p.id, e.name, sha, branch, origin || details,
                                                    'deploy', 0, idempotency_key);
      queued := queued || jsonb_build_object('run_id', run.id, 'environment', e.name, 'workflow', 'deploy');
    END IF;

  ELSIF kind = 'pull_request' THEN
    -- A reopened pull request gets its preview environment back.
    SELECT * INTO made FROM ops._preview_environment(p, pr_number);
    e := made.env;
    IF made.created THEN
      created := created || jsonb_build_array(e.name);
    END IF;
    SELECT * INTO run FROM ops._queue_run_trusted(p.id, e.name, sha, branch,
      origin || details || jsonb_build_object('pull_request', pr_number), 'deploy', 0, idempotency_key);
    queued := queued || jsonb_build_object('run_id', run.id, 'environment', e.name, 'workflow', 'deploy');

  ELSE  -- pull_request_closed
    SELECT * INTO e FROM ops.environments x
     WHERE x.project_id = p.id AND x.pull_request = pr_number AND x.status = 'active';
    IF FOUND THEN
      queued := queued || ops._destroy_environment(e, jsonb_build_object('reason', 'pull request closed') || origin,
                                                   idempotency_key || ':destroy');
    ELSE
      ignored := format('no environment for pull request %s', pr_number);
    END IF;
  END IF;

  RETURN jsonb_build_object('queued', queued, 'created_environments', created)
         || CASE WHEN ignored IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('ignored', ignored) END;
END $$;

-- The common steps of an authentic delivery, before its event is handled:
-- one delivery of a project at a time (environment names are chosen by
-- looking at the project's environments, and a branch pushed twice in quick
-- succession must find the environment the first push made); a redelivery
-- answered as the first time (the recorded answer is returned, else NULL);
-- the per-project rate limit. `delivery_key` is the host's delivery id,
-- prefixed with the host's name except for GitHub's.
CREATE FUNCTION ops._ingest_begin(p ops.projects, delivery_key text, event text)
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  answer jsonb;
  per_minute integer := coalesce((p.settings ->> 'ingest_per_minute')::int, 60);
BEGIN
  PERFORM pg_advisory_xact_lock(1869571957, hashint8(p.id));
  INSERT INTO ops.ingest_deliveries AS d (delivery_id, project_id, event)
  VALUES (delivery_key, p.id, event)
  ON CONFLICT ON CONSTRAINT ingest_deliveries_pkey DO NOTHING;
  IF NOT FOUND THEN
    SELECT d.result || jsonb_build_object('duplicate', true) INTO answer
      FROM ops.ingest_deliveries d WHERE d.delivery_id = delivery_key;
    RETURN answer;
  END IF;
  IF (SELECT count(*) FROM ops.ingest_deliveries d
       WHERE d.project_id = p.id AND d.received_at > now() - interval '1 minute') > per_minute THEN
    RAISE EXCEPTION USING ERRCODE = 'OD009',
      MESSAGE = format('project "%s" received more than %s webhooks in a minute', p.slug, per_minute);
  END IF;
  RETURN NULL;
END $$;

-- Records the answer of a delivery for its redeliveries and returns it.
CREATE FUNCTION ops._ingest_finish(delivery_key text, answer jsonb)
RETURNS jsonb LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  UPDATE ops.ingest_deliveries d SET result = answer WHERE d.delivery_id = delivery_key;
  SELECT answer;
$$;

-- The GitHub adapter: X-GitHub-Event, X-GitHub-Delivery and
-- X-Hub-Signature-256 (HMAC-SHA256 of the raw body under the project's
-- github_webhook_secret); events push, pull_request and ping.
CREATE OR REPLACE FUNCTION ops.ingest_github(event text, delivery_id text, signature text, body text)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  payload jsonb;
  p ops.projects;
  secret text;
  answer jsonb;
  origin jsonb;
  key text := 'github:' || delivery_id;
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
  -- GitHub's delivery ids are recorded as they are (no "github:" prefix),
  -- as before other hosts were ingested.
  answer := ops._ingest_begin(p, delivery_id, event);
  IF answer IS NOT NULL THEN
    RETURN answer;
  END IF;

  answer := jsonb_build_object('delivery', delivery_id, 'event', event, 'project', p.slug);
  origin := jsonb_build_object('source', 'github', 'github_delivery', delivery_id);
  IF event = 'ping' THEN
    answer := answer || jsonb_build_object('pong', true, 'queued', '[]'::jsonb, 'created_environments', '[]'::jsonb);
  ELSIF event = 'push' AND payload ->> 'ref' !~ '^refs/heads/' THEN
    answer := answer || jsonb_build_object('ignored', 'not a branch push', 'queued', '[]'::jsonb,
                                           'created_environments', '[]'::jsonb);
  ELSIF event = 'push' THEN
    answer := answer || ops._ingest_event(p,
      CASE WHEN (payload ->> 'deleted')::boolean THEN 'branch_deleted' ELSE 'push' END,
      substr(payload ->> 'ref', 12), payload ->> 'after', NULL, origin,
      jsonb_build_object('pusher', payload -> 'pusher' ->> 'name',
                         'commits', jsonb_array_length(coalesce(payload -> 'commits', '[]'))),
      key);
  ELSIF event = 'pull_request' AND payload ->> 'action' IN ('opened', 'reopened', 'synchronize') THEN
    answer := answer || ops._ingest_event(p, 'pull_request', payload -> 'pull_request' -> 'head' ->> 'ref',
      payload -> 'pull_request' -> 'head' ->> 'sha', ops._pull_request_number(payload -> 'number'),
      origin, '{}', key);
  ELSIF event = 'pull_request' AND payload ->> 'action' = 'closed' THEN
    answer := answer || ops._ingest_event(p, 'pull_request_closed', payload -> 'pull_request' -> 'head' ->> 'ref',
      NULL, ops._pull_request_number(payload -> 'number'), origin, '{}', key);
  ELSE
    answer := answer || jsonb_build_object('queued', '[]'::jsonb, 'created_environments', '[]'::jsonb,
      'ignored', CASE WHEN event = 'pull_request' THEN format('pull_request action %s', payload ->> 'action')
                      ELSE format('event %s is not handled', event) END);
  END IF;
  RETURN ops._ingest_finish(delivery_id, answer);
END $$;
COMMENT ON FUNCTION ops.ingest_github IS
  'GitHub webhook entry point: (X-GitHub-Event, X-GitHub-Delivery, X-Hub-Signature-256, raw body)';


-- Git hosts other than GitHub (docs/git-hosts.md): GitLab, Gitea and
-- Forgejo, Bitbucket Cloud. One small adapter per host checks the transport
-- (headers, token or signature, payload shape) and maps the payload to the
-- neutral events of ops._ingest_event (64_ingest.sql).

-- Which repository of which host a project receives webhooks from. The
-- host's secret is the project secret "<host>_webhook_secret" (GitLab's is
-- the hook's secret token). GitHub keeps using ops.projects.repo_full_name.
CREATE TABLE ops.project_git_hosts (
  project_id bigint NOT NULL REFERENCES ops.projects ON DELETE CASCADE,
  host       text NOT NULL CHECK (host IN ('gitlab', 'gitea', 'bitbucket')),
  -- owner/name; GitLab's subgroups add segments (group/subgroup/name).
  repository text NOT NULL CHECK (length(repository) <= 255
                                  AND repository ~ '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$'),
  api_url    text CHECK (api_url ~ '^https?://[^\s]+$' AND length(api_url) <= 2048),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, host)
);
COMMENT ON TABLE ops.project_git_hosts IS 'The repository of a project on GitLab, Gitea/Forgejo or Bitbucket Cloud, whose webhooks it ingests';
-- A repository of a host belongs to one project, as repo_full_name does
-- for GitHub: hosts compare paths case-insensitively.
CREATE UNIQUE INDEX project_git_hosts_repository ON ops.project_git_hosts (host, lower(repository));
ALTER TABLE ops.project_git_hosts ENABLE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON ops.project_git_hosts TO odooops_admin USING (true) WITH CHECK (true);
CREATE POLICY project_git_hosts_member_select ON ops.project_git_hosts FOR SELECT TO odooops_api
  USING (ops.can_read_project(project_id));
GRANT SELECT ON ops.project_git_hosts TO odooops_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON ops.project_git_hosts TO odooops_admin;
-- Kept by pg_dump like every table of the schema (90_dump.sql).
SELECT pg_catalog.pg_extension_config_dump('ops.project_git_hosts', '');

CREATE FUNCTION ops.set_project_git_host(project_id bigint, host text, repository text, api_url text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM ops.authorize(project_id, 'project.manage');
  IF host IS NULL OR host NOT IN ('gitlab', 'gitea', 'bitbucket') THEN
    PERFORM ops._raise('OD004', 'host must be gitlab, gitea or bitbucket');
  END IF;
  IF repository IS NULL OR length(repository) > 255
     OR repository !~ '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$' THEN
    PERFORM ops._raise('OD004', 'repository must be a path such as owner/name (at most 255 characters)');
  END IF;
  IF api_url IS NOT NULL AND (length(api_url) > 2048 OR api_url !~ '^https?://[^\s]+$') THEN
    PERFORM ops._raise('OD004', 'api_url must be an http(s) URL of at most 2048 characters');
  END IF;
  IF EXISTS (SELECT 1 FROM ops.project_git_hosts h
              WHERE h.host = set_project_git_host.host AND lower(h.repository) = lower(set_project_git_host.repository)
                AND h.project_id <> set_project_git_host.project_id) THEN
    PERFORM ops._raise('OD004', format('repository "%s" of %s belongs to another project', repository, host));
  END IF;
  INSERT INTO ops.project_git_hosts AS h (project_id, host, repository, api_url)
  VALUES (project_id, host, repository, api_url)
  ON CONFLICT ON CONSTRAINT project_git_hosts_pkey
  DO UPDATE SET repository = EXCLUDED.repository, api_url = EXCLUDED.api_url, updated_at = now();
  PERFORM ops.audit(project_id, 'git_host.set', 'project', project_id,
                    jsonb_build_object('host', host, 'repository', repository));
END $$;
COMMENT ON FUNCTION ops.set_project_git_host IS
  'Connects a project to its repository on GitLab, Gitea/Forgejo or Bitbucket Cloud (its webhook secret: ops.set_project_secret(project_id, ''<host>_webhook_secret'', ...))';

-- The checks every host's delivery goes through before it is authenticated:
-- body size, JSON object, the event and delivery headers. Returns the
-- parsed payload.
CREATE FUNCTION ops._host_payload(host text, event text, event_header text, delivery_id text,
                                  delivery_header text, body text)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  payload jsonb;
  max_bytes constant integer := 2 * 1024 * 1024;
BEGIN
  IF body IS NULL OR octet_length(body) > max_bytes THEN
    RAISE EXCEPTION USING ERRCODE = 'OD005', MESSAGE = 'webhook body is missing or too large',
      DETAIL = format('%s bytes, the limit is %s.', octet_length(body), max_bytes);
  END IF;
  IF event IS NULL OR event !~ '^[A-Za-z][A-Za-z0-9 _:.-]{0,63}$' THEN
    PERFORM ops._raise('OD004', format('%s is missing or malformed', event_header));
  END IF;
  IF delivery_id IS NULL OR delivery_id !~ '^[A-Za-z0-9{}_.-]{1,90}$' THEN
    PERFORM ops._raise('OD004', format('%s is missing or malformed', delivery_header));
  END IF;
  BEGIN
    payload := body::jsonb;
  EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
    PERFORM ops._raise('OD004', 'webhook body is not valid JSON');
  END;
  IF jsonb_typeof(payload) <> 'object' THEN
    PERFORM ops._raise('OD004', 'webhook body is not a JSON object');
  END IF;
  RETURN payload;
END $$;

-- The project connected to `repository` of `host`, and its webhook secret.
-- OD002 when no project is, OD011 when it has no secret.
CREATE FUNCTION ops._host_project(host text, repository text, OUT p ops.projects, OUT secret text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF repository IS NULL OR length(repository) > 255 THEN
    PERFORM ops._raise('OD004', 'webhook body has no repository');
  END IF;
  SELECT x.* INTO p FROM ops.projects x JOIN ops.project_git_hosts h ON h.project_id = x.id
   WHERE h.host = _host_project.host AND lower(h.repository) = lower(_host_project.repository);
  IF p.id IS NULL THEN
    PERFORM ops._raise('OD002', format('no project for %s repository "%s"', host, repository));
  END IF;
  SELECT s.value INTO secret FROM ops.project_secrets s
   WHERE s.project_id = p.id AND s.name = host || '_webhook_secret';
  IF secret IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'OD011', MESSAGE = format('project "%s" has no %s_webhook_secret', p.slug, host),
      HINT = format('Set it with ops.set_project_secret(project_id, ''%s_webhook_secret'', ...).', host);
  END IF;
END $$;

-- A branch name from a full ref: refs/heads/<branch>, else NULL (tags).
CREATE FUNCTION ops._ref_branch(ref text) RETURNS text LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN ref LIKE 'refs/heads/_%' THEN substr(ref, 12) END
$$;

-- An all-zero commit id: what git and the hosts send for a deleted ref.
CREATE FUNCTION ops._is_null_sha(sha text) RETURNS boolean LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT sha ~ '^0{40}(0{24})?$'
$$;

-- The answer of a delivery whose event changes nothing.
CREATE FUNCTION ops._ingest_ignored(reason text) RETURNS jsonb LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT jsonb_build_object('queued', '[]'::jsonb, 'created_environments', '[]'::jsonb, 'ignored', reason)
$$;

------------------------------------------------------------------------------
-- GitLab: X-Gitlab-Event ("Push Hook", "Merge Request Hook", ...),
-- X-Gitlab-Event-UUID, and X-Gitlab-Token, the hook's secret token sent as
-- it is (compared in constant time with gitlab_webhook_secret).
CREATE FUNCTION ops.ingest_gitlab(event text, delivery_id text, token text, body text)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  payload jsonb := ops._host_payload('gitlab', event, 'X-Gitlab-Event', delivery_id, 'X-Gitlab-Event-UUID', body);
  found record;
  p ops.projects;
  attrs jsonb := payload -> 'object_attributes';
  key text := 'gitlab:' || delivery_id;
  origin jsonb := jsonb_build_object('source', 'gitlab', 'gitlab_delivery', delivery_id);
  answer jsonb;
BEGIN
  IF length(token) > 8192 THEN
    PERFORM ops._raise('OD005', 'X-Gitlab-Token is too long');
  END IF;
  SELECT * INTO found FROM ops._host_project('gitlab', payload -> 'project' ->> 'path_with_namespace');
  p := found.p;
  IF token IS NULL OR NOT ops.token_valid(found.secret, token) THEN
    RAISE EXCEPTION USING ERRCODE = 'OD011', MESSAGE = 'invalid or missing X-Gitlab-Token';
  END IF;
  answer := ops._ingest_begin(p, key, event);
  IF answer IS NOT NULL THEN
    RETURN answer;
  END IF;
  answer := jsonb_build_object('delivery', delivery_id, 'event', event, 'project', p.slug);
  IF event = 'Push Hook' AND ops._ref_branch(payload ->> 'ref') IS NULL THEN
    answer := answer || ops._ingest_ignored('not a branch push');
  ELSIF event = 'Push Hook' AND payload ->> 'object_kind' = 'push' THEN
    answer := answer || ops._ingest_event(p,
      CASE WHEN ops._is_null_sha(payload ->> 'after') THEN 'branch_deleted' ELSE 'push' END,
      ops._ref_branch(payload ->> 'ref'), payload ->> 'after', NULL, origin,
      jsonb_build_object('pusher', payload ->> 'user_username',
                         'commits', coalesce((payload ->> 'total_commits_count')::int, 0)),
      key);
  ELSIF event = 'Merge Request Hook' AND payload ->> 'object_kind' = 'merge_request'
        AND (attrs ->> 'action' IN ('open', 'reopen')
             OR (attrs ->> 'action' = 'update' AND attrs ? 'oldrev')) THEN
    answer := answer || ops._ingest_event(p, 'pull_request', attrs ->> 'source_branch',
      attrs -> 'last_commit' ->> 'id', ops._pull_request_number(attrs -> 'iid'), origin, '{}', key);
  ELSIF event = 'Merge Request Hook' AND payload ->> 'object_kind' = 'merge_request'
        AND attrs ->> 'action' IN ('close', 'merge') THEN
    answer := answer || ops._ingest_event(p, 'pull_request_closed', attrs ->> 'source_branch', NULL,
      ops._pull_request_number(attrs -> 'iid'), origin, '{}', key);
  ELSIF event = 'Merge Request Hook' THEN
    answer := answer || ops._ingest_ignored(format('merge request action %s', attrs ->> 'action'));
  ELSE
    answer := answer || ops._ingest_ignored(format('event %s is not handled', event));
  END IF;
  RETURN ops._ingest_finish(key, answer);
END $$;
COMMENT ON FUNCTION ops.ingest_gitlab IS
  'GitLab webhook entry point: (X-Gitlab-Event, X-Gitlab-Event-UUID, X-Gitlab-Token, raw body)';

------------------------------------------------------------------------------
-- Gitea and Forgejo: X-Gitea-Event / X-Forgejo-Event, X-Gitea-Delivery /
-- X-Forgejo-Delivery, and X-Gitea-Signature / X-Forgejo-Signature, the hex
-- HMAC-SHA256 of the raw body under gitea_webhook_secret.
CREATE FUNCTION ops.ingest_gitea(event text, delivery_id text, signature text, body text)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  payload jsonb := ops._host_payload('gitea', event, 'X-Gitea-Event', delivery_id, 'X-Gitea-Delivery', body);
  found record;
  p ops.projects;
  pr jsonb := payload -> 'pull_request';
  key text := 'gitea:' || delivery_id;
  origin jsonb := jsonb_build_object('source', 'gitea', 'gitea_delivery', delivery_id);
  answer jsonb;
BEGIN
  IF length(signature) > 200 THEN
    PERFORM ops._raise('OD005', 'X-Gitea-Signature is too long');
  END IF;
  SELECT * INTO found FROM ops._host_project('gitea', payload -> 'repository' ->> 'full_name');
  p := found.p;
  IF signature IS NULL OR NOT ops.hmac_signature_valid(found.secret, body, signature, '') THEN
    RAISE EXCEPTION USING ERRCODE = 'OD011', MESSAGE = 'invalid or missing X-Gitea-Signature';
  END IF;
  answer := ops._ingest_begin(p, key, event);
  IF answer IS NOT NULL THEN
    RETURN answer;
  END IF;
  answer := jsonb_build_object('delivery', delivery_id, 'event', event, 'project', p.slug);
  IF event = 'push' AND ops._ref_branch(payload ->> 'ref') IS NULL THEN
    answer := answer || ops._ingest_ignored('not a branch push');
  ELSIF event = 'push' THEN
    answer := answer || ops._ingest_event(p,
      CASE WHEN ops._is_null_sha(payload ->> 'after') THEN 'branch_deleted' ELSE 'push' END,
      ops._ref_branch(payload ->> 'ref'), payload ->> 'after', NULL, origin,
      jsonb_build_object('pusher', payload -> 'pusher' ->> 'login',
                         'commits', jsonb_array_length(coalesce(payload -> 'commits', '[]'))),
      key);
  ELSIF event = 'delete' AND payload ->> 'ref_type' = 'branch' THEN
    answer := answer || ops._ingest_event(p, 'branch_deleted', payload ->> 'ref', NULL, NULL, origin, '{}', key);
  ELSIF event = 'pull_request' AND payload ->> 'action' IN ('opened', 'reopened', 'synchronized') THEN
    answer := answer || ops._ingest_event(p, 'pull_request', pr -> 'head' ->> 'ref', pr -> 'head' ->> 'sha',
      ops._pull_request_number(payload -> 'number'), origin, '{}', key);
  ELSIF event = 'pull_request' AND payload ->> 'action' = 'closed' THEN
    answer := answer || ops._ingest_event(p, 'pull_request_closed', pr -> 'head' ->> 'ref', NULL,
      ops._pull_request_number(payload -> 'number'), origin, '{}', key);
  ELSIF event = 'pull_request' THEN
    answer := answer || ops._ingest_ignored(format('pull_request action %s', payload ->> 'action'));
  ELSE
    answer := answer || ops._ingest_ignored(format('event %s is not handled', event));
  END IF;
  RETURN ops._ingest_finish(key, answer);
END $$;
COMMENT ON FUNCTION ops.ingest_gitea IS
  'Gitea and Forgejo webhook entry point: (X-Gitea-Event, X-Gitea-Delivery, X-Gitea-Signature, raw body), or the X-Forgejo-* headers';

------------------------------------------------------------------------------
-- Bitbucket Cloud: X-Event-Key (repo:push, pullrequest:created|updated|
-- fulfilled|rejected), X-Request-UUID, and X-Hub-Signature, "sha256=" and
-- the hex HMAC-SHA256 of the raw body under bitbucket_webhook_secret. A push
-- carries one change per branch: each is its own event.
CREATE FUNCTION ops.ingest_bitbucket(event text, delivery_id text, signature text, body text)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  payload jsonb := ops._host_payload('bitbucket', event, 'X-Event-Key', delivery_id, 'X-Request-UUID', body);
  found record;
  p ops.projects;
  pr jsonb := payload -> 'pullrequest';
  change jsonb;
  n integer := 0;
  part jsonb;
  key text := 'bitbucket:' || delivery_id;
  origin jsonb := jsonb_build_object('source', 'bitbucket', 'bitbucket_delivery', delivery_id);
  answer jsonb;
  queued jsonb := '[]';
  created jsonb := '[]';
  ignored text[] := '{}';
BEGIN
  IF length(signature) > 200 THEN
    PERFORM ops._raise('OD005', 'X-Hub-Signature is too long');
  END IF;
  SELECT * INTO found FROM ops._host_project('bitbucket', payload -> 'repository' ->> 'full_name');
  p := found.p;
  IF signature IS NULL OR NOT ops.hmac_signature_valid(found.secret, body, signature, 'sha256=') THEN
    RAISE EXCEPTION USING ERRCODE = 'OD011', MESSAGE = 'invalid or missing X-Hub-Signature';
  END IF;
  answer := ops._ingest_begin(p, key, event);
  IF answer IS NOT NULL THEN
    RETURN answer;
  END IF;
  answer := jsonb_build_object('delivery', delivery_id, 'event', event, 'project', p.slug);
  IF event = 'repo:push' THEN
    IF jsonb_typeof(payload -> 'push' -> 'changes') IS DISTINCT FROM 'array'
       OR jsonb_array_length(payload -> 'push' -> 'changes') > 100 THEN
      PERFORM ops._raise('OD004', 'repo:push body has no list of changes (at most 100)');
    END IF;
    FOR change IN SELECT c FROM jsonb_array_elements(payload -> 'push' -> 'changes') c LOOP
      n := n + 1;
      IF change -> 'new' ->> 'type' = 'branch' THEN
        part := ops._ingest_event(p, 'push', change -> 'new' ->> 'name', change -> 'new' -> 'target' ->> 'hash',
                                  NULL, origin, jsonb_build_object('pusher', payload -> 'actor' ->> 'nickname',
                                  'commits', jsonb_array_length(coalesce(change -> 'commits', '[]'))),
                                  key || ':' || n);
      ELSIF jsonb_typeof(change -> 'new') IS DISTINCT FROM 'object' AND change -> 'old' ->> 'type' = 'branch' THEN
        part := ops._ingest_event(p, 'branch_deleted', change -> 'old' ->> 'name', NULL, NULL, origin, '{}',
                                  key || ':' || n);
      ELSE
        part := ops._ingest_ignored('not a branch change');
      END IF;
      queued := queued || (part -> 'queued');
      created := created || (part -> 'created_environments');
      IF part ? 'ignored' THEN
        ignored := ignored || (part ->> 'ignored');
      END IF;
    END LOOP;
    answer := answer || jsonb_build_object('queued', queued, 'created_environments', created)
              || CASE WHEN queued = '[]' AND cardinality(ignored) > 0
                      THEN jsonb_build_object('ignored', array_to_string(ignored, '; ')) ELSE '{}' END;
  ELSIF event IN ('pullrequest:created', 'pullrequest:updated') THEN
    answer := answer || ops._ingest_event(p, 'pull_request', pr -> 'source' -> 'branch' ->> 'name',
      pr -> 'source' -> 'commit' ->> 'hash', ops._pull_request_number(pr -> 'id'), origin, '{}', key);
  ELSIF event IN ('pullrequest:fulfilled', 'pullrequest:rejected') THEN
    answer := answer || ops._ingest_event(p, 'pull_request_closed', pr -> 'source' -> 'branch' ->> 'name', NULL,
      ops._pull_request_number(pr -> 'id'), origin, '{}', key);
  ELSE
    answer := answer || ops._ingest_ignored(format('event %s is not handled', event));
  END IF;
  RETURN ops._ingest_finish(key, answer);
END $$;
COMMENT ON FUNCTION ops.ingest_bitbucket IS
  'Bitbucket Cloud webhook entry point: (X-Event-Key, X-Request-UUID, X-Hub-Signature, raw body)';

------------------------------------------------------------------------------
-- PostgREST forms: POST /rpc/<host>_webhook with the raw JSON body; the
-- headers come from request.headers. `json` (not jsonb) keeps the bytes.
CREATE FUNCTION ops._request_headers() RETURNS jsonb LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(nullif(current_setting('request.headers', true), ''), '{}')::jsonb
$$;

CREATE FUNCTION ops.gitlab_webhook(json) RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  h jsonb := ops._request_headers();
BEGIN
  RETURN ops.ingest_gitlab(h ->> 'x-gitlab-event', coalesce(h ->> 'x-gitlab-event-uuid', h ->> 'x-gitlab-webhook-uuid'),
                           h ->> 'x-gitlab-token', $1::text);
END $$;
COMMENT ON FUNCTION ops.gitlab_webhook IS 'PostgREST entry point for GitLab webhooks: reads the headers and raw body of the request and calls ops.ingest_gitlab';

CREATE FUNCTION ops.gitea_webhook(json) RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  h jsonb := ops._request_headers();
BEGIN
  RETURN ops.ingest_gitea(coalesce(h ->> 'x-forgejo-event', h ->> 'x-gitea-event'),
                          coalesce(h ->> 'x-forgejo-delivery', h ->> 'x-gitea-delivery'),
                          coalesce(h ->> 'x-forgejo-signature', h ->> 'x-gitea-signature'), $1::text);
END $$;
COMMENT ON FUNCTION ops.gitea_webhook IS 'PostgREST entry point for Gitea and Forgejo webhooks: reads the headers and raw body of the request and calls ops.ingest_gitea';

CREATE FUNCTION ops.bitbucket_webhook(json) RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  h jsonb := ops._request_headers();
BEGIN
  RETURN ops.ingest_bitbucket(h ->> 'x-event-key', h ->> 'x-request-uuid', h ->> 'x-hub-signature', $1::text);
END $$;
COMMENT ON FUNCTION ops.bitbucket_webhook IS 'PostgREST entry point for Bitbucket Cloud webhooks: reads the headers and raw body of the request and calls ops.ingest_bitbucket';

-- A bare repository's post-receive hook (scripts/odooops-post-receive)
-- passes the lines git gives it, "<old sha> <new sha> <ref>", to
-- ops.ingest_post_receive. No signature: the caller is the database login
-- the hook connects as, and each change is authorized like the run or the
-- destroy it leads to (run.deploy on the environment the branch maps to,
-- env.manage on the environment of a deleted branch).

CREATE FUNCTION ops.ingest_post_receive(project text, lines text)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p ops.projects;
  line text;
  parts text[];
  ref_branch text;
  target ops.environments;
  part jsonb;
  n integer := 0;
  queued jsonb := '[]';
  created jsonb := '[]';
  ignored jsonb := '[]';
  origin jsonb := jsonb_build_object('source', 'git', 'pusher', ops.current_actor());
  max_bytes constant integer := 1024 * 1024;
BEGIN
  IF lines IS NULL OR octet_length(lines) > max_bytes THEN
    RAISE EXCEPTION USING ERRCODE = 'OD005', MESSAGE = 'post-receive input is missing or too large',
      DETAIL = format('%s bytes, the limit is %s.', octet_length(lines), max_bytes);
  END IF;
  SELECT * INTO p FROM ops.projects x WHERE x.slug = ingest_post_receive.project;
  IF NOT FOUND OR NOT ops.can_read_project(p.id) THEN
    PERFORM ops._raise('OD002', format('no project "%s"', left(project, 63)));
  END IF;
  PERFORM pg_advisory_xact_lock(1869571957, hashint8(p.id));
  FOR line IN SELECT l FROM regexp_split_to_table(rtrim(lines, E'\n'), E'\n') l WHERE l <> '' LOOP
    n := n + 1;
    IF n > 1000 THEN
      PERFORM ops._raise('OD005', 'post-receive input has more than 1000 refs');
    END IF;
    parts := regexp_match(line, '^([0-9a-f]{40}|[0-9a-f]{64}) ([0-9a-f]{40}|[0-9a-f]{64}) (refs/\S+)$');
    IF parts IS NULL THEN
      PERFORM ops._raise('OD004', format('post-receive line %s is not "<old sha> <new sha> <ref>"', n));
    END IF;
    ref_branch := ops._ref_branch(parts[3]);
    IF ref_branch IS NULL THEN
      ignored := ignored || to_jsonb(format('%s is not a branch', left(parts[3], 80)));
      CONTINUE;
    END IF;
    PERFORM ops._check_branch_length(ref_branch);
    IF ops._is_null_sha(parts[2]) THEN
      SELECT * INTO target FROM ops.environments x
       WHERE x.project_id = p.id AND x.branch = ref_branch AND x.status = 'active'
         AND x.stage IN ('development', 'preview');
      IF FOUND THEN
        PERFORM ops.authorize(p.id, 'env.manage', target.id);
      END IF;
      part := ops._ingest_event(p, 'branch_deleted', ref_branch, NULL, NULL, origin, '{}',
                                format('git:%s:%s', txid_current(), n));
    ELSE
      target := ops._environment_for_branch(p, ref_branch);
      IF target.id IS NOT NULL THEN
        PERFORM ops.authorize(p.id, 'run.deploy', target.id);
      END IF;
      part := ops._ingest_event(p, 'push', ref_branch, parts[2], NULL, origin, jsonb_build_object('ref', parts[3]),
                                format('git:%s:%s', txid_current(), n));
    END IF;
    queued := queued || (part -> 'queued');
    created := created || (part -> 'created_environments');
    IF part ? 'ignored' THEN
      ignored := ignored || (part -> 'ignored');
    END IF;
  END LOOP;
  RETURN jsonb_build_object('project', p.slug, 'queued', queued, 'created_environments', created,
                            'ignored', ignored);
END $$;
COMMENT ON FUNCTION ops.ingest_post_receive IS
  'Entry point of a bare repository''s post-receive hook: (project slug, the hook''s "<old> <new> <ref>" lines); authorized as the calling login';


ALTER TABLE ops.webhook_subscriptions DROP CONSTRAINT webhook_subscriptions_format_check,
  ADD CONSTRAINT webhook_subscriptions_format_check
  CHECK (format IN ('json', 'slack', 'github', 'gitlab', 'gitea', 'bitbucket'));
COMMENT ON TABLE ops.webhook_subscriptions IS 'Where events are sent: URL, format (json, slack, or the commit statuses of github, gitlab, gitea, bitbucket), event types, project filter';

CREATE OR REPLACE FUNCTION ops.enqueue_webhook_event(event_type text, project_id bigint, environment_id bigint, data jsonb)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
  n integer;
  envelope jsonb;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ops.webhook_subscriptions s WHERE s.active) THEN
    RETURN 0;
  END IF;
  envelope := jsonb_build_object(
    'type', event_type,
    'occurred_at', now(),
    'project', (SELECT jsonb_build_object('id', p.id, 'slug', p.slug, 'repo_full_name', p.repo_full_name,
                                          'git_hosts', (SELECT jsonb_object_agg(h.host, h.repository)
                                                          FROM ops.project_git_hosts h WHERE h.project_id = p.id))
                  FROM ops.projects p WHERE p.id = enqueue_webhook_event.project_id),
    'environment', (SELECT jsonb_build_object('id', e.id, 'name', e.name, 'stage', e.stage)
                      FROM ops.environments e WHERE e.id = enqueue_webhook_event.environment_id),
    'data', data);
  INSERT INTO ops.webhook_deliveries (subscription_id, event_type, payload)
  SELECT s.id, enqueue_webhook_event.event_type, envelope
    FROM ops.webhook_subscriptions s
   WHERE s.active
     AND (cardinality(s.event_types) = 0 OR enqueue_webhook_event.event_type = ANY (s.event_types))
     AND (s.project_id IS NULL OR s.project_id = enqueue_webhook_event.project_id)
     -- A commit status needs a run's commit and the project's repository
     -- on that host.
     AND (s.format NOT IN ('github', 'gitlab', 'gitea', 'bitbucket')
          OR (enqueue_webhook_event.event_type LIKE 'run.%' AND data->>'git_sha' IS NOT NULL
              AND CASE WHEN s.format = 'github' THEN envelope->'project'->>'repo_full_name'
                       ELSE envelope->'project'->'git_hosts'->>s.format END IS NOT NULL));
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN
    PERFORM ops._wake_dispatcher();
  END IF;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.enqueue_webhook_event IS 'Writes the outbox deliveries of an event (called by triggers)';


REVOKE EXECUTE ON FUNCTION
  ops.hmac_signature_valid(text, text, text, text), ops.token_valid(text, text), ops._pull_request_number(jsonb),
  ops._ingest_event(ops.projects, text, text, text, integer, jsonb, jsonb, text),
  ops._ingest_begin(ops.projects, text, text), ops._ingest_finish(text, jsonb),
  ops.set_project_git_host(bigint, text, text, text), ops._host_payload(text, text, text, text, text, text),
  ops._host_project(text, text), ops._ref_branch(text), ops._is_null_sha(text), ops._ingest_ignored(text),
  ops.ingest_gitlab(text, text, text, text), ops.ingest_gitea(text, text, text, text),
  ops.ingest_bitbucket(text, text, text, text), ops._request_headers(),
  ops.gitlab_webhook(json), ops.gitea_webhook(json), ops.bitbucket_webhook(json),
  ops.ingest_post_receive(text, text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  ops.ingest_gitlab(text, text, text, text), ops.gitlab_webhook(json),
  ops.ingest_gitea(text, text, text, text), ops.gitea_webhook(json),
  ops.ingest_bitbucket(text, text, text, text), ops.bitbucket_webhook(json)
  TO odooops_ingest, odooops_api;
GRANT EXECUTE ON FUNCTION ops.ingest_post_receive(text, text), ops.set_project_git_host(bigint, text, text, text)
  TO odooops_api;

-- Metrics: monotonic totals, zero-filled series and disk use (76_metrics_totals.sql, 77_usage.sql).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'odooops_monitor') THEN
    CREATE ROLE odooops_monitor NOLOGIN;
  END IF;
END $$;
GRANT odooops_monitor TO odooops_admin;
-- Monotonic totals for Prometheus counters. Views over ops.runs count what
-- the table still holds, and retention deletes rows: a counter made from
-- them would go down. These small tables count events as they happen
-- (triggers) and never decrease; a row exists once its count is above zero,
-- and the views below add a zero row for every known label set, so that no
-- series disappears while its value is zero. Rows restored from a dump are
-- not counted again (ops._carried_over): the totals come with the dump.

CREATE TABLE ops.metrics_run_totals (
  workflow text NOT NULL,
  outcome  text NOT NULL,   -- queued, succeeded, failed, cancelled
  total    bigint NOT NULL CHECK (total >= 0),
  PRIMARY KEY (workflow, outcome)
);
COMMENT ON TABLE ops.metrics_run_totals IS 'Runs queued and finished since installation, by workflow and outcome (never decreases)';

CREATE TABLE ops.metrics_webhook_totals (
  outcome text PRIMARY KEY,   -- enqueued, delivered, dead
  total   bigint NOT NULL CHECK (total >= 0)
);
COMMENT ON TABLE ops.metrics_webhook_totals IS 'Webhook deliveries enqueued, delivered and given up since installation (never decreases)';

CREATE TABLE ops.metrics_alert_totals (
  kind  text PRIMARY KEY,
  total bigint NOT NULL CHECK (total >= 0)
);
COMMENT ON TABLE ops.metrics_alert_totals IS 'Alerts opened since installation, by kind (never decreases)';

CREATE FUNCTION ops._count_run() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  o text := CASE WHEN TG_OP = 'INSERT' THEN 'queued' ELSE NEW.status END;
BEGIN
  IF TG_OP = 'INSERT' AND ops._carried_over(NEW.created_at) THEN
    RETURN NULL;
  END IF;
  INSERT INTO ops.metrics_run_totals AS t (workflow, outcome, total) VALUES (NEW.workflow, o, 1)
    ON CONFLICT (workflow, outcome) DO UPDATE SET total = t.total + 1;
  RETURN NULL;
END $$;
CREATE TRIGGER runs_count_queued AFTER INSERT ON ops.runs
  FOR EACH ROW EXECUTE FUNCTION ops._count_run();
CREATE TRIGGER runs_count_finished AFTER UPDATE OF status ON ops.runs
  FOR EACH ROW WHEN (NEW.status IN ('succeeded', 'failed', 'cancelled')
                     AND OLD.status NOT IN ('succeeded', 'failed', 'cancelled'))
  EXECUTE FUNCTION ops._count_run();

CREATE FUNCTION ops._count_webhook_delivery() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  o text := CASE WHEN TG_OP = 'INSERT' THEN 'enqueued' ELSE NEW.status END;
BEGIN
  IF TG_OP = 'INSERT' AND ops._carried_over(NEW.created_at) THEN
    RETURN NULL;
  END IF;
  INSERT INTO ops.metrics_webhook_totals AS t (outcome, total) VALUES (o, 1)
    ON CONFLICT (outcome) DO UPDATE SET total = t.total + 1;
  RETURN NULL;
END $$;
CREATE TRIGGER webhook_deliveries_count_enqueued AFTER INSERT ON ops.webhook_deliveries
  FOR EACH ROW EXECUTE FUNCTION ops._count_webhook_delivery();
CREATE TRIGGER webhook_deliveries_count_finished AFTER UPDATE OF status ON ops.webhook_deliveries
  FOR EACH ROW WHEN (NEW.status IN ('delivered', 'dead') AND OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION ops._count_webhook_delivery();

CREATE FUNCTION ops._count_alert() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF ops._carried_over(NEW.opened_at) THEN
    RETURN NULL;
  END IF;
  INSERT INTO ops.metrics_alert_totals AS t (kind, total) VALUES (NEW.kind, 1)
    ON CONFLICT (kind) DO UPDATE SET total = t.total + 1;
  RETURN NULL;
END $$;
CREATE TRIGGER alerts_count_opened AFTER INSERT ON ops.alerts
  FOR EACH ROW EXECUTE FUNCTION ops._count_alert();

-- The label sets every counter and gauge reports, zero or not.
CREATE VIEW ops.metrics_known_workflows(workflow) AS
  VALUES ('build'), ('test'), ('deploy'), ('backup'), ('restore'), ('destroy');
COMMENT ON VIEW ops.metrics_known_workflows IS 'The workflows metrics report a series for, zero or not';

CREATE VIEW ops.metrics_run_counters AS
  SELECT w.workflow, o.outcome, coalesce(t.total, 0) AS total
    FROM ops.metrics_known_workflows w
   CROSS JOIN (VALUES ('queued'), ('succeeded'), ('failed'), ('cancelled')) AS o(outcome)
    LEFT JOIN ops.metrics_run_totals t ON t.workflow = w.workflow AND t.outcome = o.outcome;
COMMENT ON VIEW ops.metrics_run_counters IS 'Runs queued and finished since installation, a row for every workflow and outcome';

CREATE VIEW ops.metrics_run_states AS
  SELECT w.workflow, s.state, count(r.id) AS runs,
         coalesce(extract(epoch FROM now() - min(r.created_at)), 0)::float8 AS oldest_seconds
    FROM ops.metrics_known_workflows w
   CROSS JOIN (VALUES ('queued'), ('claimed'), ('running')) AS s(state)
    LEFT JOIN ops.runs r ON r.workflow = w.workflow AND r.status = s.state
   GROUP BY w.workflow, s.state;
COMMENT ON VIEW ops.metrics_run_states IS
  'Runs waiting or held by workflow and state, with the age of the oldest, a row for every pair';

CREATE VIEW ops.metrics_webhook_counters AS
  SELECT o.outcome, coalesce(t.total, 0) AS total
    FROM (VALUES ('enqueued'), ('delivered'), ('dead')) AS o(outcome)
    LEFT JOIN ops.metrics_webhook_totals t ON t.outcome = o.outcome;
COMMENT ON VIEW ops.metrics_webhook_counters IS 'Webhook deliveries since installation, a row for every outcome';

CREATE VIEW ops.metrics_webhook_states AS
  SELECT s.status, count(d.id) AS deliveries
    FROM (VALUES ('pending'), ('sending'), ('dead')) AS s(status)
    LEFT JOIN ops.webhook_deliveries d ON d.status = s.status
   GROUP BY s.status;
COMMENT ON VIEW ops.metrics_webhook_states IS 'Webhook deliveries waiting, being sent, or given up, a row for every state';

CREATE VIEW ops.metrics_alerts AS
  SELECT k.kind, coalesce(t.total, 0) AS opened_total,
         (SELECT count(*) FROM ops.alerts a WHERE a.kind = k.kind AND a.status = 'open') AS open
    FROM (VALUES ('queue_backpressure'), ('stale_run'), ('backup_failed'),
                 ('production_restore_requested'), ('worker_lost')) AS k(kind)
    LEFT JOIN ops.metrics_alert_totals t ON t.kind = k.kind;
COMMENT ON VIEW ops.metrics_alerts IS 'Alerts open now and opened since installation, a row for every kind';

CREATE VIEW ops.metrics_backups AS
  SELECT p.slug AS project, e.name AS environment, e.stage, s.status,
         (SELECT count(*) FROM ops.backups b WHERE b.environment_id = e.id AND b.status = s.status) AS backups
    FROM ops.environments e JOIN ops.projects p ON p.id = e.project_id
   CROSS JOIN (VALUES ('pending'), ('running'), ('completed'), ('failed'), ('expired')) AS s(status)
   WHERE e.status <> 'destroyed';
COMMENT ON VIEW ops.metrics_backups IS 'Backups of each live environment, a row for every status';

-- An environment never backed up has been unprotected since it was created:
-- its age counts from then, so one alert rule (age above a limit) covers both.
CREATE VIEW ops.metrics_backup_freshness AS
  SELECT p.slug AS project, e.name AS environment, e.stage,
         extract(epoch FROM now() - coalesce(l.completed_at, e.created_at))::float8 AS last_success_age_seconds,
         (l.completed_at IS NOT NULL)::integer AS has_success
    FROM ops.environments e JOIN ops.projects p ON p.id = e.project_id
    LEFT JOIN LATERAL (SELECT max(b.completed_at) AS completed_at FROM ops.backups b
                        WHERE b.environment_id = e.id AND b.completed_at IS NOT NULL) l ON true
   WHERE e.status <> 'destroyed';
COMMENT ON VIEW ops.metrics_backup_freshness IS
  'Seconds since each live environment''s last completed backup (since its creation when it has none)';
-- The history before the upgrade counts too.
INSERT INTO ops.metrics_run_totals (workflow, outcome, total)
SELECT workflow, 'queued', count(*) FROM ops.runs GROUP BY workflow
UNION ALL
SELECT workflow, status, count(*) FROM ops.runs WHERE status IN ('succeeded', 'failed', 'cancelled')
 GROUP BY workflow, status;
INSERT INTO ops.metrics_webhook_totals (outcome, total)
SELECT 'enqueued', count(*) FROM ops.webhook_deliveries HAVING count(*) > 0
UNION ALL
SELECT status, count(*) FROM ops.webhook_deliveries WHERE status IN ('delivered', 'dead') GROUP BY status;
INSERT INTO ops.metrics_alert_totals (kind, total) SELECT kind, count(*) FROM ops.alerts GROUP BY kind;
-- Disk use: each environment's database (measured here, when it lives on
-- this server) and filestore (reported by the worker that hosts it), and
-- the disk of each worker's state directory. Workers report with
-- ops.report_agent_usage() after runs and at most every few minutes with
-- their heartbeat (worker/usage.cpp), so a scrape reads stored numbers and
-- costs the workers nothing.

CREATE TABLE ops.agent_disk_usage (
  worker_id   text PRIMARY KEY REFERENCES ops.agents (worker_id) ON DELETE CASCADE,
  path        text NOT NULL CHECK (length(path) BETWEEN 1 AND 1024),
  total_bytes bigint NOT NULL CHECK (total_bytes >= 0),
  free_bytes  bigint NOT NULL CHECK (free_bytes >= 0),
  reported_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.agent_disk_usage IS 'The disk of each worker''s state directory, as it last reported it';

CREATE TABLE ops.environment_filestore_usage (
  environment_id bigint PRIMARY KEY REFERENCES ops.environments ON DELETE CASCADE,
  worker_id      text NOT NULL CHECK (length(worker_id) BETWEEN 1 AND 128),
  bytes          bigint NOT NULL CHECK (bytes >= 0),
  reported_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.environment_filestore_usage IS 'Filestore size of each environment, as its host worker last reported it';

-- filestores: {"<project slug>/<environment name>": bytes, ...}. Only the
-- environments this worker hosts are stored: a directory left behind by an
-- environment that moved to another worker is not its size.
CREATE FUNCTION ops.report_agent_usage(worker_id text, disk_path text, total_bytes bigint,
                                       free_bytes bigint, filestores jsonb DEFAULT '{}')
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n integer;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops._check_length('disk_path', disk_path, 1024);
  PERFORM ops.authorize_worker(worker_id);
  IF disk_path IS NULL OR disk_path = '' OR total_bytes IS NULL OR free_bytes IS NULL
     OR total_bytes < 0 OR free_bytes < 0 THEN
    PERFORM ops._raise('OD004', 'disk_path, total_bytes and free_bytes must be given, sizes >= 0');
  END IF;
  IF filestores IS NULL OR jsonb_typeof(filestores) <> 'object' OR octet_length(filestores::text) > 262144
     OR EXISTS (SELECT 1 FROM jsonb_each(filestores) f
                 WHERE jsonb_typeof(f.value) <> 'number' OR f.value::numeric < 0
                    OR f.value::numeric > 9223372036854775807 OR f.value::numeric <> trunc(f.value::numeric)) THEN
    PERFORM ops._raise('OD004', 'filestores must be an object of "project/environment": bytes (at most 256 kB)');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM ops.agents a WHERE a.worker_id = report_agent_usage.worker_id) THEN
    PERFORM ops._raise('OD002', format('unknown worker "%s"', worker_id),
                       'Register it first with ops.register_agent().');
  END IF;
  INSERT INTO ops.agent_disk_usage AS u (worker_id, path, total_bytes, free_bytes)
  VALUES (worker_id, disk_path, total_bytes, free_bytes)
  ON CONFLICT ON CONSTRAINT agent_disk_usage_pkey DO UPDATE
     SET path = EXCLUDED.path, total_bytes = EXCLUDED.total_bytes, free_bytes = EXCLUDED.free_bytes,
         reported_at = now();
  INSERT INTO ops.environment_filestore_usage AS u (environment_id, worker_id, bytes)
  SELECT e.id, report_agent_usage.worker_id, f.value::numeric::bigint
    FROM jsonb_each(filestores) f
    JOIN ops.projects p ON p.slug = split_part(f.key, '/', 1)
    JOIN ops.environments e ON e.project_id = p.id AND e.name = split_part(f.key, '/', 2)
   WHERE e.host_worker_id = report_agent_usage.worker_id
  ON CONFLICT ON CONSTRAINT environment_filestore_usage_pkey DO UPDATE
     SET worker_id = EXCLUDED.worker_id, bytes = EXCLUDED.bytes, reported_at = now();
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.report_agent_usage IS
  'A worker reports its state directory''s disk and the filestore sizes of the environments it hosts; returns how many were stored';

-- pg_database_size() needs CONNECT on the database: measured here for the
-- environments' databases only, whatever the caller may connect to.
CREATE FUNCTION ops.environment_database_sizes()
RETURNS TABLE (environment_id bigint, bytes bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT e.id, pg_catalog.pg_database_size(d.oid)
    FROM ops.environments e JOIN pg_catalog.pg_database d ON d.datname = e.db_name
   WHERE e.status <> 'destroyed'
$$;
COMMENT ON FUNCTION ops.environment_database_sizes IS
  'Size of each live environment''s database, for those on this server';

CREATE VIEW ops.metrics_environment_usage AS
  SELECT p.slug AS project, e.name AS environment, e.stage,
         s.bytes AS database_bytes, f.bytes AS filestore_bytes, f.worker_id AS filestore_worker_id,
         f.reported_at AS filestore_reported_at
    FROM ops.environments e JOIN ops.projects p ON p.id = e.project_id
    LEFT JOIN ops.environment_database_sizes() s ON s.environment_id = e.id
    LEFT JOIN ops.environment_filestore_usage f ON f.environment_id = e.id
   WHERE e.status <> 'destroyed';
COMMENT ON VIEW ops.metrics_environment_usage IS
  'Database size (NULL: not on this server) and filestore size (NULL: not reported yet) of each live environment';

CREATE VIEW ops.metrics_agent_disk AS
  SELECT u.worker_id, u.path, u.total_bytes, u.free_bytes, u.reported_at,
         extract(epoch FROM now() - u.reported_at)::float8 AS report_age_seconds
    FROM ops.agent_disk_usage u;
COMMENT ON VIEW ops.metrics_agent_disk IS 'Each worker''s state directory disk, as it last reported it';
SELECT pg_catalog.pg_extension_config_dump('ops.metrics_run_totals', '');
SELECT pg_catalog.pg_extension_config_dump('ops.metrics_webhook_totals', '');
SELECT pg_catalog.pg_extension_config_dump('ops.metrics_alert_totals', '');
SELECT pg_catalog.pg_extension_config_dump('ops.agent_disk_usage', '');
SELECT pg_catalog.pg_extension_config_dump('ops.environment_filestore_usage', '');
GRANT USAGE ON SCHEMA ops TO odooops_monitor;
GRANT SELECT ON ops.metrics_queue, ops.metrics_workers, ops.metrics_runs, ops.metrics_run_counters,
                ops.metrics_run_states, ops.metrics_webhook_counters, ops.metrics_webhook_states,
                ops.metrics_alerts, ops.metrics_backups, ops.metrics_backup_freshness,
                ops.metrics_environment_usage, ops.metrics_agent_disk, ops.metrics_known_workflows
  TO odooops_monitor;
GRANT SELECT, INSERT, UPDATE, DELETE ON ops.metrics_run_totals, ops.metrics_webhook_totals,
  ops.metrics_alert_totals, ops.agent_disk_usage, ops.environment_filestore_usage,
  ops.metrics_run_counters, ops.metrics_run_states, ops.metrics_webhook_counters,
  ops.metrics_webhook_states, ops.metrics_alerts, ops.metrics_backups, ops.metrics_backup_freshness,
  ops.metrics_environment_usage, ops.metrics_agent_disk, ops.metrics_known_workflows TO odooops_admin;
DO $$
DECLARE
  t regclass;
BEGIN
  FOREACH t IN ARRAY ARRAY['ops.metrics_run_totals', 'ops.metrics_webhook_totals', 'ops.metrics_alert_totals',
                           'ops.agent_disk_usage', 'ops.environment_filestore_usage']::regclass[] LOOP
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY admin_all ON %s TO odooops_admin USING (true) WITH CHECK (true)', t);
  END LOOP;
END $$;
REVOKE EXECUTE ON FUNCTION ops._count_run(), ops._count_webhook_delivery(), ops._count_alert(),
  ops.report_agent_usage(text, text, bigint, bigint, jsonb), ops.environment_database_sizes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.environment_database_sizes() TO odooops_monitor;
GRANT EXECUTE ON FUNCTION ops.report_agent_usage(text, text, bigint, bigint, jsonb) TO odooops_worker;

-- Mail caught outside production (75_caught_mails.sql).
-- Mail caught in the environments that are not production. Their Odoo
-- sends through a mail catcher on the worker's host (worker/steps/lib/
-- mail_catcher.sh points ir_mail_server at it), which spools each message;
-- the environment's host worker hands the spooled messages over with
-- ops.ingest_caught_mail. Project members read them (mail.read), developers
-- delete them outside production (mail.delete); the scheduler's retention
-- task expires them by age and keeps each environment's box under a count
-- and size cap (ops.expire_caught_mails). docs/mail.md.

CREATE TABLE ops.caught_mails (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id     bigint NOT NULL REFERENCES ops.projects ON DELETE CASCADE,
  environment_id bigint NOT NULL REFERENCES ops.environments ON DELETE CASCADE,
  mail_from      text NOT NULL CHECK (length(mail_from) <= 998),
  rcpt_to        text[] NOT NULL CHECK (cardinality(rcpt_to) BETWEEN 1 AND 1000),
  subject        text NOT NULL DEFAULT '' CHECK (length(subject) <= 998),
  raw            bytea NOT NULL CHECK (octet_length(raw) <= 10485760),
  size_bytes     integer NOT NULL CHECK (size_bytes >= 0),
  caught_at      timestamptz NOT NULL DEFAULT now(),
  caught_by      text NOT NULL CHECK (length(caught_by) BETWEEN 1 AND 128)
);
COMMENT ON TABLE ops.caught_mails IS
  'Mail an environment that is not production sent, caught on its host instead of delivered (raw RFC 5322)';
CREATE INDEX caught_mails_environment ON ops.caught_mails (environment_id, id);
CREATE INDEX caught_mails_caught_at ON ops.caught_mails (caught_at);

-- The largest message kept: the catcher refuses larger ones at the SMTP
-- level (552), and so does ops.ingest_caught_mail.
CREATE FUNCTION ops.caught_mail_max_bytes() RETURNS integer
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT 10485760 $$;
COMMENT ON FUNCTION ops.caught_mail_max_bytes IS 'The largest caught message kept, in bytes (10 MB)';

-- A worker hands over one message the catcher of an environment it hosts
-- caught. Refused (42501) for an environment hosted elsewhere, refused
-- (OD004) for production, which never has a catcher, and for an
-- environment that is not active. Returns the new id.
CREATE FUNCTION ops.ingest_caught_mail(worker_id text, environment_id bigint, mail_from text,
                                       rcpt_to text[], subject text, raw bytea)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  new_id bigint;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops.authorize_worker(worker_id);
  PERFORM ops._check_length('mail_from', mail_from, 998);
  PERFORM ops._check_length('subject', subject, 998);
  IF rcpt_to IS NULL OR cardinality(rcpt_to) NOT BETWEEN 1 AND 1000
     OR EXISTS (SELECT 1 FROM unnest(rcpt_to) r WHERE r IS NULL OR length(r) > 998) THEN
    PERFORM ops._raise('OD005', 'rcpt_to must hold 1 to 1000 recipients of at most 998 characters');
  END IF;
  IF raw IS NULL OR octet_length(raw) > ops.caught_mail_max_bytes() THEN
    PERFORM ops._raise('OD005', format('a caught message holds at most %s bytes', ops.caught_mail_max_bytes()));
  END IF;
  SELECT * INTO e FROM ops.environments x WHERE x.id = ingest_caught_mail.environment_id;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('no environment %s', environment_id));
  END IF;
  IF NOT (e.host_worker_id IS NOT DISTINCT FROM ingest_caught_mail.worker_id
          OR EXISTS (SELECT 1 FROM ops.agent_team_members m JOIN ops.agents a ON a.id = m.agent_id
                      WHERE m.team_id = e.host_team_id AND a.worker_id = ingest_caught_mail.worker_id)) THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('worker %s does not host environment %s', worker_id, e.name);
  END IF;
  IF e.stage = 'production' THEN
    PERFORM ops._raise('OD004', format('environment %s is production: its mail is not caught', e.name));
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  INSERT INTO ops.caught_mails (project_id, environment_id, mail_from, rcpt_to, subject, raw, size_bytes, caught_by)
  VALUES (e.project_id, e.id, coalesce(mail_from, ''), rcpt_to, coalesce(subject, ''), raw, octet_length(raw),
          worker_id)
  RETURNING id INTO new_id;
  RETURN new_id;
END $$;
COMMENT ON FUNCTION ops.ingest_caught_mail IS
  'Stores a message the mail catcher of a non-production environment caught (its host worker only)';

-- The environment of a project as its member sees it: unknown (OD002)
-- outside the project, as a missing one.
CREATE FUNCTION ops._mail_environment(project_id bigint, env text) RETURNS ops.environments
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
BEGIN
  PERFORM ops._check_length('env', env, 255);
  SELECT * INTO e FROM ops.environments x WHERE x.project_id = _mail_environment.project_id AND x.name = env;
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  RETURN e;
END $$;
COMMENT ON FUNCTION ops._mail_environment IS
  'An environment of a project by name for the mail functions; OD002 outside the project';

-- The newest messages caught in an environment, without their bodies.
CREATE FUNCTION ops.list_caught_mails(project_id bigint, env text, max_rows integer DEFAULT 50)
RETURNS TABLE (id bigint, caught_at timestamptz, mail_from text, rcpt_to text[], subject text, size_bytes integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments := ops._mail_environment(project_id, env);
BEGIN
  IF max_rows IS NULL OR max_rows NOT BETWEEN 1 AND 1000 THEN
    PERFORM ops._raise('OD005', 'max_rows must be between 1 and 1000');
  END IF;
  PERFORM ops.authorize(e.project_id, 'mail.read', e.id);
  RETURN QUERY
    SELECT m.id, m.caught_at, m.mail_from, m.rcpt_to, m.subject, m.size_bytes
      FROM ops.caught_mails m WHERE m.environment_id = e.id
     ORDER BY m.id DESC LIMIT max_rows;
END $$;
COMMENT ON FUNCTION ops.list_caught_mails IS
  'The newest caught messages of an environment (mail.read), without their bodies';

-- One caught message with its raw RFC 5322 text.
CREATE FUNCTION ops.get_caught_mail(mail_id bigint)
RETURNS TABLE (id bigint, project_id bigint, environment text, caught_at timestamptz, mail_from text,
               rcpt_to text[], subject text, size_bytes integer, raw bytea)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  m ops.caught_mails;
  e ops.environments;
BEGIN
  SELECT * INTO m FROM ops.caught_mails x WHERE x.id = mail_id;
  IF NOT FOUND OR NOT ops.can_read_project(m.project_id) THEN
    PERFORM ops._raise('OD002', format('no caught mail %s', mail_id));
  END IF;
  SELECT * INTO e FROM ops.environments x WHERE x.id = m.environment_id;
  PERFORM ops.authorize(m.project_id, 'mail.read', m.environment_id);
  RETURN QUERY SELECT m.id, m.project_id, e.name, m.caught_at, m.mail_from, m.rcpt_to, m.subject,
                      m.size_bytes, m.raw;
END $$;
COMMENT ON FUNCTION ops.get_caught_mail IS 'One caught message with its raw RFC 5322 text (mail.read)';

-- Deletes caught messages of an environment: those of mail_ids, or all of
-- them when mail_ids is NULL. An id of another environment is not deleted.
-- Returns how many it deleted.
CREATE FUNCTION ops.delete_caught_mails(project_id bigint, env text, mail_ids bigint[] DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments := ops._mail_environment(project_id, env);
  n integer;
BEGIN
  IF cardinality(mail_ids) > 10000 THEN
    PERFORM ops._raise('OD005', 'at most 10000 ids at once');
  END IF;
  PERFORM ops.authorize(e.project_id, 'mail.delete', e.id);
  DELETE FROM ops.caught_mails m
   WHERE m.environment_id = e.id AND (mail_ids IS NULL OR m.id = ANY (mail_ids));
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.delete_caught_mails IS
  'Deletes caught messages of an environment, given ones or all (mail.delete); returns how many';

-- Retention: messages older than max_age_s go, and of each environment's
-- box only the newest max_per_env messages, max_bytes_per_env bytes in all,
-- stay. Run by the scheduler's retention task with the odooops.caught_mail_*
-- settings. Returns how many it deleted.
CREATE FUNCTION ops.expire_caught_mails(max_age_s integer, max_per_env integer, max_bytes_per_env bigint)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n integer;
BEGIN
  IF max_age_s IS NULL OR max_age_s < 1 OR max_per_env IS NULL OR max_per_env < 0
     OR max_bytes_per_env IS NULL OR max_bytes_per_env < 0 THEN
    PERFORM ops._raise('OD005', 'max_age_s must be positive, max_per_env and max_bytes_per_env not negative');
  END IF;
  WITH ranked AS (
    SELECT m.id, m.caught_at,
           row_number() OVER w AS newer_or_same,
           sum(m.size_bytes) OVER w AS bytes_up_to
      FROM ops.caught_mails m
    WINDOW w AS (PARTITION BY m.environment_id ORDER BY m.id DESC)
  )
  DELETE FROM ops.caught_mails m USING ranked r
   WHERE m.id = r.id
     AND (r.caught_at < now() - make_interval(secs => max_age_s)
          OR r.newer_or_same > max_per_env OR r.bytes_up_to > max_bytes_per_env);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.expire_caught_mails IS
  'Deletes caught messages past the age limit or beyond an environment''s count or size cap; returns how many';
ALTER TABLE ops.caught_mails ENABLE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON ops.caught_mails TO odooops_admin USING (true) WITH CHECK (true);
REVOKE ALL ON ops.caught_mails FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON ops.caught_mails TO odooops_admin;
REVOKE EXECUTE ON FUNCTION
  ops.caught_mail_max_bytes(), ops.ingest_caught_mail(text, bigint, text, text[], text, bytea),
  ops._mail_environment(bigint, text), ops.list_caught_mails(bigint, text, integer), ops.get_caught_mail(bigint),
  ops.delete_caught_mails(bigint, text, bigint[]), ops.expire_caught_mails(integer, integer, bigint)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.ingest_caught_mail(text, bigint, text, text[], text, bytea) TO odooops_worker;
GRANT EXECUTE ON FUNCTION
  ops.list_caught_mails(bigint, text, integer), ops.get_caught_mail(bigint),
  ops.delete_caught_mails(bigint, text, bigint[]), ops.caught_mail_max_bytes()
  TO odooops_api;
-- The shipped mail policies, numbered below the operator's (56_permissions.sql).
INSERT INTO ops.policies (id, role, permission, stage, shipped) OVERRIDING SYSTEM VALUE
SELECT (SELECT max(x.id) FROM ops.policies x WHERE x.id < 1000000) + row_number() OVER (), r.role, p.permission, p.stage, true
  FROM (VALUES
    ('mail.read',         NULL,          ARRAY['owner', 'admin', 'developer', 'viewer', 'auditor']),
    ('mail.delete',       NULL,          ARRAY['owner', 'admin']),
    ('mail.delete',       'staging',     ARRAY['developer']),
    ('mail.delete',       'development', ARRAY['developer']),
    ('mail.delete',       'preview',     ARRAY['developer'])
  ) AS p(permission, stage, roles),
  LATERAL unnest(p.roles) AS r(role)
ON CONFLICT DO NOTHING;
-- Caught mails are the control plane's data: a dump keeps them (90_dump.sql).
DO $$
DECLARE
  rel regclass;
BEGIN
  FOR rel IN
    SELECT c.oid::regclass FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'ops'::regnamespace AND c.relkind IN ('r', 'S')
       AND c.relname IN ('caught_mails', 'caught_mails_id_seq')
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
  LOOP
    PERFORM pg_catalog.pg_extension_config_dump(rel, '');
  END LOOP;
END $$;

-- Run events of a test run carry its counts and first failing tests.
CREATE OR REPLACE FUNCTION ops._enqueue_run_webhook(event text, run ops.runs) RETURNS integer LANGUAGE sql AS $$
  SELECT ops.enqueue_webhook_event(event, run.project_id, run.environment_id,
    jsonb_build_object('id', run.id, 'workflow', run.workflow, 'status', run.status,
                       'attempt', run.attempt, 'git_sha', run.git_sha, 'git_ref', run.git_ref,
                       'error', run.error, 'requested_by', run.requested_by,
                       'target_url', run.result->>'url')
    -- A test run's counts and first failing tests: the commit status names them.
    || CASE WHEN jsonb_typeof(run.result -> 'tests' -> 'failing') = 'array' THEN jsonb_build_object('tests',
         jsonb_build_object('passed', run.result -> 'tests' -> 'passed', 'failed', run.result -> 'tests' -> 'failed',
                            'errors', run.result -> 'tests' -> 'errors', 'tests', run.result -> 'tests' -> 'tests',
                            'failing', coalesce((SELECT jsonb_agg(f) FROM (
                                SELECT f FROM jsonb_array_elements(run.result -> 'tests' -> 'failing') f LIMIT 3) x),
                              '[]'::jsonb)))
       ELSE '{}'::jsonb END)
$$;

-- A rebuild, as Odoo.sh's "Rebuild" button: the environment's current
-- commit (its latest release) deployed again from scratch, on a new
-- database with an empty filestore (worker/steps/lib/rebuild.sh), the one
-- it replaces kept aside until the rebuilt one stands. It destroys the
-- environment's data, so it needs env.manage as well as run.deploy on the
-- environment; production is never rebuilt (its database is its data:
-- ops.rollback_release and ops.restore_backup bring an earlier state back).
CREATE FUNCTION ops.rebuild_environment(project_id bigint, env text)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
  rel ops.releases;
  run ops.runs;
BEGIN
  PERFORM ops._check_length('env', env, 255);
  SELECT * INTO e FROM ops.environments x WHERE x.project_id = rebuild_environment.project_id AND x.name = env;
  -- Outside the project its environments are as unknown as missing ones.
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  PERFORM ops.authorize(e.project_id, 'env.manage', e.id);
  PERFORM ops.authorize(e.project_id, 'run.deploy', e.id);
  IF e.stage = 'production' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is production: production is never rebuilt', env),
                       'Use ops.rollback_release or ops.restore_backup to bring an earlier state back.');
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', env, e.status));
  END IF;
  SELECT * INTO rel FROM ops.releases r WHERE r.environment_id = e.id ORDER BY r.id DESC LIMIT 1;
  IF NOT FOUND OR rel.git_sha IS NULL THEN
    PERFORM ops._raise('OD004', format('environment "%s" has no release to rebuild', env),
                       'Deploy it first (a push, or ops.queue_run).');
  END IF;
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, rel.git_sha, coalesce(rel.git_ref, e.branch),
    jsonb_build_object('rebuild', true, 'rebuild_of_release', rel.id, 'requested_by', ops.current_actor()), 'deploy');
  RETURN run;
END $$;
COMMENT ON FUNCTION ops.rebuild_environment IS
  'Deploys the environment''s current commit again from scratch: a new database and filestore (permissions env.manage and run.deploy; never production)';
REVOKE EXECUTE ON FUNCTION ops.rebuild_environment(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.rebuild_environment(bigint, text) TO odooops_api;

-- ---------------------------------------------------------------------
-- Backups users can use (docs/backups.md): the manual-backup limit per
-- environment and day is the operator's odooops.manual_backups_per_day,
-- which an environment's settings may lower, never raise; time-limited
-- download links of backups, signed by a worker (permission
-- backup.download).
-- ---------------------------------------------------------------------
-- Manual backups an environment may take in 24 hours: the operator's
-- odooops.manual_backups_per_day (superusers only, default 5), lowered by
-- the environment's settings.manual_backups_per_day, never raised by it
-- (project admins and, in development, developers write settings).
CREATE FUNCTION ops.manual_backups_per_day(env_settings jsonb DEFAULT '{}')
RETURNS integer LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT least(cap.n, CASE WHEN env_settings ->> 'manual_backups_per_day' ~ '^[0-9]{1,6}$'
                           THEN (env_settings ->> 'manual_backups_per_day')::integer ELSE cap.n END)
    FROM (SELECT coalesce(nullif(current_setting('odooops.manual_backups_per_day', true), '')::integer, 5) AS n) cap
$$;
COMMENT ON FUNCTION ops.manual_backups_per_day IS
  'Manual backups an environment may take in 24 hours: odooops.manual_backups_per_day, lowered (never raised) by settings.manual_backups_per_day';

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
  -- Outside the project its environments are as unknown as missing ones.
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
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
  PERFORM ops._check_request_metadata(metadata);
  PERFORM ops.authorize(e.project_id, 'backup.create', e.id);

  -- Manual backups are limited per environment and day, as on Odoo.sh.
  IF backup_type = 'manual' THEN
    limit_per_day := ops.manual_backups_per_day(e.settings);
    PERFORM pg_advisory_xact_lock(1869571956, hashint8(e.id));
    IF (SELECT count(*) FROM ops.backups b WHERE b.environment_id = e.id AND b.backup_type = 'manual'
          AND b.created_at > now() - interval '1 day') >= limit_per_day THEN
      RAISE EXCEPTION USING ERRCODE = 'OD009',
        MESSAGE = format('environment "%s" already has %s manual backups in the last 24 hours', env, limit_per_day),
        HINT = 'Wait; the operator''s odooops.manual_backups_per_day caps the limit, settings.manual_backups_per_day of the environment may only lower it.';
    END IF;
  END IF;

  INSERT INTO ops.backups (project_id, environment_id, backup_type, metadata, requested_by, expires_at)
  VALUES (e.project_id, e.id, backup_type, metadata, ops.current_actor(),
          now() + ops.backup_ttl(backup_type, e.settings))
  RETURNING * INTO backup;
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, NULL, NULL,
                                                metadata || jsonb_build_object('backup_id', backup.id,
                                                                               'backup_type', backup_type),
                                                'backup');
  UPDATE ops.backups b SET run_id = run.id WHERE b.id = backup.id;
  RETURN QUERY SELECT backup.id, run.id, backup.expires_at;
END $$;
COMMENT ON FUNCTION ops.create_backup IS
  'Requests a backup of an environment: a pending backup row and a queued run of workflow backup';

-- Time-limited download links of backups (docs/backups.md). Only the
-- workers hold storage credentials, so a member asks for a link
-- (ops.request_backup_download) and an idle worker whose storage holds the
-- backup signs it (ops.claim_backup_downloads, ops.finish_backup_download):
-- an S3 presigned GET URL, or for file:// storage a path of the worker's own
-- HTTP listener signed with a key that never leaves the worker. The link is
-- a bearer credential: only the member who asked reads it (row-level
-- security, 80_security.sql), while still a member of the project.
CREATE TABLE ops.backup_downloads (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  backup_id     bigint NOT NULL REFERENCES ops.backups ON DELETE CASCADE,
  project_id    bigint NOT NULL REFERENCES ops.projects ON DELETE CASCADE,
  requested_by  text NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 255),
  ttl_seconds   integer NOT NULL CHECK (ttl_seconds BETWEEN 60 AND 86400),
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed', 'ready', 'failed')),
  claimed_by    text,
  claimed_at    timestamptz,
  url           text CHECK (length(url) BETWEEN 1 AND 8192),            -- the dump
  filestore_url text CHECK (length(filestore_url) BETWEEN 1 AND 8192),  -- the filestore archive
  expires_at    timestamptz,   -- when the links stop working
  error         text CHECK (length(error) <= 8192),
  created_at    timestamptz NOT NULL DEFAULT now(),
  completed_at  timestamptz
);
COMMENT ON TABLE ops.backup_downloads IS
  'Requests for time-limited download links of backups, signed by a worker; readable by the requester only';
CREATE INDEX backup_downloads_pending ON ops.backup_downloads (id) WHERE status IN ('pending', 'claimed');
CREATE INDEX backup_downloads_backup ON ops.backup_downloads (backup_id);

-- A member who may download the backup's environment's backups asks for
-- links valid `ttl` (1 minute to 24 hours). Outside the project the backup
-- is as unknown as a missing one. At most 10 requests of a project wait at
-- once (OD009). Audited; wakes the workers.
CREATE FUNCTION ops.request_backup_download(backup_id bigint, ttl interval DEFAULT '1 hour')
RETURNS ops.backup_downloads LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b ops.backups;
  seconds numeric;
  d ops.backup_downloads;
BEGIN
  SELECT * INTO b FROM ops.backups x WHERE x.id = request_backup_download.backup_id;
  IF NOT FOUND OR NOT ops.can_read_project(b.project_id) THEN
    PERFORM ops._raise('OD002', format('backup %s does not exist', backup_id));
  END IF;
  PERFORM ops.authorize(b.project_id, 'backup.download', b.environment_id);
  seconds := extract(epoch FROM ttl);
  IF seconds IS NULL OR seconds < 60 OR seconds > 86400 THEN
    PERFORM ops._raise('OD004', format('ttl %s is out of range', coalesce(ttl::text, 'NULL')),
                       'A download link is valid from 1 minute to 24 hours.');
  END IF;
  IF b.status <> 'completed' OR b.location IS NULL THEN
    PERFORM ops._raise('OD004', format('backup %s is %s: only a completed backup is downloaded', b.id, b.status));
  END IF;
  PERFORM pg_advisory_xact_lock(1869571957, hashint8(b.project_id));
  IF (SELECT count(*) FROM ops.backup_downloads x
       WHERE x.project_id = b.project_id AND x.status IN ('pending', 'claimed')) >= 10 THEN
    RAISE EXCEPTION USING ERRCODE = 'OD009',
      MESSAGE = format('project %s already has 10 download requests waiting for a worker', b.project_id),
      HINT = 'Wait until a worker with the backups'' storage signs them.';
  END IF;
  INSERT INTO ops.backup_downloads (backup_id, project_id, requested_by, ttl_seconds)
  VALUES (b.id, b.project_id, coalesce(ops.current_user_id(), ops.current_actor()), round(seconds)::integer)
  RETURNING * INTO d;
  PERFORM ops.audit(b.project_id, 'backup.download_requested', 'backup', b.id,
                    jsonb_build_object('download_id', d.id, 'ttl_seconds', d.ttl_seconds));
  NOTIFY odooops_runs;
  RETURN d;
END $$;
COMMENT ON FUNCTION ops.request_backup_download IS
  'Asks a worker for time-limited download links of a completed backup (permission backup.download; ttl 1 minute to 24 hours); audited';

-- Claims for a worker id the invoking role may act as the waiting requests
-- whose backup lies in its storage (`storage_url`, the worker's --storage:
-- the dump's location starts with it), and claims older than 5 minutes of
-- a worker that vanished. Returns what the worker signs.
CREATE FUNCTION ops.claim_backup_downloads(worker_id text, storage_url text, n integer DEFAULT 10)
RETURNS TABLE (download_id bigint, backup_id bigint, project_slug text, location text,
               filestore_location text, ttl_seconds integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  root text;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128), ops._check_length('storage_url', storage_url, 2048);
  PERFORM ops.authorize_worker(worker_id);
  root := rtrim(coalesce(storage_url, ''), '/') || '/';
  IF root !~ '^(file|s3)://' THEN
    PERFORM ops._raise('OD004', format('storage_url "%s" is not a file:// or s3:// URL', storage_url));
  END IF;
  RETURN QUERY
  WITH c AS (
    SELECT d.id FROM ops.backup_downloads d JOIN ops.backups b ON b.id = d.backup_id
     WHERE ((d.status = 'pending') OR (d.status = 'claimed' AND d.claimed_at < now() - interval '5 minutes'))
       AND left(b.location, length(root)) = root
     ORDER BY d.id LIMIT least(greatest(n, 1), 100) FOR UPDATE OF d SKIP LOCKED
  ), u AS (
    UPDATE ops.backup_downloads d SET status = 'claimed', claimed_by = claim_backup_downloads.worker_id,
           claimed_at = now()
      FROM c WHERE d.id = c.id RETURNING d.*
  )
  SELECT u.id, u.backup_id, p.slug, b.location, b.metadata #>> '{backup,filestore,location}', u.ttl_seconds
    FROM u JOIN ops.backups b ON b.id = u.backup_id JOIN ops.projects p ON p.id = b.project_id
   ORDER BY u.id;
END $$;
COMMENT ON FUNCTION ops.claim_backup_downloads IS
  'Claims up to n waiting download requests whose backup lies under the worker''s storage URL';

-- The worker that holds the claim records the signed links (valid until
-- expires_at, which the request's ttl bounds), or why it could not sign.
CREATE FUNCTION ops.finish_backup_download(download_id bigint, worker_id text, url text,
                                           filestore_url text, expires_at timestamptz, error text DEFAULT NULL)
RETURNS ops.backup_downloads LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  d ops.backup_downloads;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128), ops._check_length('url', url, 8192),
          ops._check_length('filestore_url', filestore_url, 8192), ops._check_length('error', error, 8192);
  PERFORM ops.authorize_worker(worker_id);
  SELECT * INTO d FROM ops.backup_downloads x WHERE x.id = finish_backup_download.download_id FOR UPDATE;
  IF NOT FOUND OR d.status <> 'claimed' OR d.claimed_by IS DISTINCT FROM worker_id THEN
    PERFORM ops._raise('OD002', format('download %s is not claimed by worker %s', download_id, worker_id));
  END IF;
  IF url IS NULL THEN
    UPDATE ops.backup_downloads x SET status = 'failed', completed_at = now(),
           error = coalesce(nullif(finish_backup_download.error, ''), 'the worker could not sign the download')
     WHERE x.id = d.id RETURNING * INTO d;
    RETURN d;
  END IF;
  IF url !~ '^https?://' OR (filestore_url IS NOT NULL AND filestore_url !~ '^https?://') THEN
    PERFORM ops._raise('OD004', 'download links are http:// or https:// URLs');
  END IF;
  IF expires_at IS NULL OR expires_at > now() + make_interval(secs => d.ttl_seconds + 60) THEN
    PERFORM ops._raise('OD004', format('expires_at must be within the %s seconds asked for', d.ttl_seconds));
  END IF;
  UPDATE ops.backup_downloads x SET status = 'ready', url = finish_backup_download.url,
         filestore_url = finish_backup_download.filestore_url, expires_at = finish_backup_download.expires_at,
         completed_at = now(), error = NULL
   WHERE x.id = d.id RETURNING * INTO d;
  RETURN d;
END $$;
COMMENT ON FUNCTION ops.finish_backup_download IS
  'Records the signed links of a claimed download request (or the reason it failed) for the worker holding it';

REVOKE EXECUTE ON FUNCTION
  ops.manual_backups_per_day(jsonb), ops.request_backup_download(bigint, interval),
  ops.claim_backup_downloads(text, text, integer),
  ops.finish_backup_download(bigint, text, text, text, timestamptz, text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.request_backup_download(bigint, interval) TO odooops_api;
GRANT EXECUTE ON FUNCTION ops.claim_backup_downloads(text, text, integer),
  ops.finish_backup_download(bigint, text, text, text, timestamptz, text)
  TO odooops_worker;
REVOKE ALL ON ops.backup_downloads FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON ops.backup_downloads TO odooops_admin;
REVOKE INSERT, UPDATE ON ops.backup_downloads FROM odooops_admin;
ALTER TABLE ops.backup_downloads ENABLE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON ops.backup_downloads TO odooops_admin USING (true) WITH CHECK (true);
CREATE POLICY backup_downloads_requester_select ON ops.backup_downloads FOR SELECT TO odooops_api
  USING (requested_by = ops.current_user_id() AND ops.can_read_project(project_id));
GRANT SELECT ON ops.backup_downloads TO odooops_api;
SELECT pg_catalog.pg_extension_config_dump('ops.backup_downloads', '');
SELECT pg_catalog.pg_extension_config_dump('ops.backup_downloads_id_seq', '');
-- The shipped download policies, numbered below the operator's (56_permissions.sql).
INSERT INTO ops.policies (id, role, permission, stage, shipped) OVERRIDING SYSTEM VALUE
SELECT (SELECT max(x.id) FROM ops.policies x WHERE x.id < 1000000) + row_number() OVER (), r.role, p.permission, p.stage, true
  FROM (VALUES
    ('backup.download',   NULL,          ARRAY['owner', 'admin']),
    ('backup.download',   'development', ARRAY['developer']),
    ('backup.download',   'preview',     ARRAY['developer'])
  ) AS p(permission, stage, roles),
  LATERAL unnest(p.roles) AS r(role)
ON CONFLICT DO NOTHING;

-- Runs counted once per statement by the statement triggers of ops.runs
-- (74_webhooks.sql), each count spread over up to 16 rows
-- (76_metrics_totals.sql): finishing transactions of different workers no
-- longer queue on one row, and a batch adds to each count once.
ALTER TABLE ops.metrics_run_totals
  ADD COLUMN shard smallint NOT NULL DEFAULT 0 CHECK (shard BETWEEN 0 AND 15);
ALTER TABLE ops.metrics_run_totals DROP CONSTRAINT metrics_run_totals_pkey;
ALTER TABLE ops.metrics_run_totals
  ADD CONSTRAINT metrics_run_totals_pkey PRIMARY KEY (workflow, outcome, shard);
COMMENT ON TABLE ops.metrics_run_totals IS 'Runs queued and finished since installation, by workflow and outcome, in up to 16 rows each (never decreases)';
DROP TRIGGER runs_count_queued ON ops.runs;
DROP TRIGGER runs_count_finished ON ops.runs;
DROP FUNCTION ops._count_run();
CREATE OR REPLACE FUNCTION ops._runs_webhook() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO ops.metrics_run_totals AS t (workflow, outcome, shard, total)
    SELECT n.workflow, 'queued', pg_backend_pid() % 16, count(*) FROM new_runs n
     WHERE n.created_at >= now()  -- not ops._carried_over(), written out
     GROUP BY n.workflow ORDER BY n.workflow
        ON CONFLICT (workflow, outcome, shard) DO UPDATE SET total = t.total + excluded.total;
  ELSE
    INSERT INTO ops.metrics_run_totals AS t (workflow, outcome, shard, total)
    SELECT n.workflow, n.status, pg_backend_pid() % 16, count(*)
      FROM new_runs n JOIN old_runs o ON o.id = n.id
     WHERE n.status IN ('succeeded', 'failed', 'cancelled')
       AND o.status NOT IN ('succeeded', 'failed', 'cancelled')
     GROUP BY n.workflow, n.status ORDER BY n.workflow, n.status
        ON CONFLICT (workflow, outcome, shard) DO UPDATE SET total = t.total + excluded.total;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM ops.webhook_subscriptions s WHERE s.active) THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    -- Runs restored from a dump were announced when they were queued.
    PERFORM ops._enqueue_run_webhook('run.queued', n) FROM new_runs n
      WHERE NOT ops._carried_over(n.created_at) ORDER BY n.id;
  ELSE
    PERFORM ops._enqueue_run_webhook(CASE WHEN n.status = 'running' THEN 'run.started' ELSE 'run.finished' END, n)
       FROM new_runs n JOIN old_runs o ON o.id = n.id
      WHERE o.status IS DISTINCT FROM n.status AND n.status IN ('running', 'succeeded', 'failed', 'cancelled')
      ORDER BY n.id;
  END IF;
  RETURN NULL;
END $$;
CREATE OR REPLACE VIEW ops.metrics_run_counters AS
  SELECT w.workflow, o.outcome,
         coalesce((SELECT sum(t.total) FROM ops.metrics_run_totals t
                    WHERE t.workflow = w.workflow AND t.outcome = o.outcome), 0)::bigint AS total
    FROM ops.metrics_known_workflows w
   CROSS JOIN (VALUES ('queued'), ('succeeded'), ('failed'), ('cancelled')) AS o(outcome);
-- Upgrades tried before they happen (68_upgrades.sql): deploy plans,
-- upgrade tests and production upgrades with the operator's upgrade hook.
-- The shipped upgrade policies, numbered below the operator's (56_permissions.sql).
INSERT INTO ops.policies (id, role, permission, stage, shipped) OVERRIDING SYSTEM VALUE
SELECT (SELECT max(x.id) FROM ops.policies x WHERE x.id < 1000000) + row_number() OVER (), r.role, p.permission, p.stage, true
  FROM (VALUES
    ('upgrade.test',      NULL,          ARRAY['owner', 'admin']),
    ('upgrade.run',       NULL,          ARRAY['owner', 'admin'])
  ) AS p(permission, stage, roles),
  LATERAL unnest(p.roles) AS r(role)
ON CONFLICT DO NOTHING;
-- A production upgrade always waits for an approval.
CREATE OR REPLACE FUNCTION ops.gate_production_run() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF ops._carried_over(NEW.created_at) THEN   -- restored with its approval
    RETURN CASE WHEN TG_WHEN = 'BEFORE' THEN NEW END;
  END IF;
  IF TG_WHEN = 'BEFORE' THEN
    -- A production upgrade (68_upgrades.sql) always waits for one.
    IF ops._run_needs_approval(NEW.workflow, NEW.environment_id) OR NEW.metadata ->> 'mode' = 'upgrade' THEN
      NEW.available_at := 'infinity';   -- not claimable until approved
    END IF;
    RETURN NEW;
  END IF;
  -- AFTER INSERT: the gated run exists, ask for the approval.
  INSERT INTO ops.approvals (project_id, environment_id, subject, subject_id, requested_by)
  VALUES (NEW.project_id, NEW.environment_id, NEW.workflow, NEW.id, coalesce(NEW.requested_by, 'odooops'));
  PERFORM ops.audit(NEW.project_id, 'approval.request', NEW.workflow, NEW.id);
  RETURN NULL;
END $$;
COMMENT ON FUNCTION ops.gate_production_run IS
  'Trigger: holds a production deploy, upgrade or destroy that needs an approval and requests it';
-- Upgrades tried before they happen (docs/upgrades.md): a deploy plan lists
-- the modules a deploy of a revision would install and update, decided on
-- the environment's database by the same function every deploy decides
-- with; an upgrade test runs the operator's major-version upgrade hook on a
-- copy of production's latest backup. Both are runs of an existing
-- workflow with a metadata.mode that only odooops writes (a plan is a
-- build: it only reads; an upgrade test is a test: it works on a throw-away
-- database), so the queue, claims and fencing treat them as those.

-- The environment `env` of a project, for a request: outside the project
-- its environments are as unknown as missing ones (OD002).
CREATE FUNCTION ops._request_environment(project_id bigint, env text) RETURNS ops.environments
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
BEGIN
  PERFORM ops._check_length('env', env, 255);
  SELECT * INTO e FROM ops.environments x WHERE x.project_id = _request_environment.project_id AND x.name = env;
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  RETURN e;
END $$;
COMMENT ON FUNCTION ops._request_environment IS
  'The environment of a project named in a request; OD002 when it does not exist or the caller is not a member';

-- A deploy plan of a revision for an environment, queued by odooops (no
-- authorization here: ops.queue_deploy_plan authorizes its caller,
-- ops.plan_gated_deploy acts for a deploy already queued). With for_run,
-- the plan of that queued deploy (same environment; its revision unless
-- one is given), shown with it by ops.deploy_plan.
CREATE FUNCTION ops._queue_deploy_plan(e ops.environments, git_sha text, git_ref text, for_run bigint)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  d ops.runs;
  run ops.runs;
  metadata jsonb := jsonb_build_object('mode', 'plan');
BEGIN
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  IF for_run IS NOT NULL THEN
    SELECT * INTO d FROM ops.runs r WHERE r.id = for_run AND r.project_id = e.project_id;
    IF NOT FOUND THEN
      PERFORM ops._raise('OD002', format('run %s does not exist', for_run));
    END IF;
    IF d.workflow <> 'deploy' OR d.environment_id <> e.id OR d.metadata ? 'mode' THEN
      PERFORM ops._raise('OD004', format('run %s is not a deploy of environment "%s"', for_run, e.name));
    END IF;
    IF git_sha IS NULL AND git_ref IS NULL THEN
      git_sha := d.git_sha;
      git_ref := d.git_ref;
    END IF;
    metadata := metadata || jsonb_build_object('plan_for_run', d.id);
  END IF;
  IF git_sha IS NULL AND git_ref IS NULL THEN
    PERFORM ops._raise('OD004', 'a deploy plan needs git_sha or git_ref', 'Name the revision the deploy would run.');
  END IF;
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, git_sha, git_ref, metadata, 'build', 10);
  -- It reads the environment's database: it runs where the environment
  -- lives (as of now; a later move does not re-route a queued plan).
  UPDATE ops.runs r SET host_worker_id = e.host_worker_id, team_id = coalesce(e.host_team_id, r.team_id)
   WHERE r.id = run.id RETURNING * INTO run;
  PERFORM ops.audit(e.project_id, 'plan.queue', 'run', run.id,
                    jsonb_build_object('environment', e.name, 'for_run', for_run));
  RETURN run;
END $$;
COMMENT ON FUNCTION ops._queue_deploy_plan IS
  'Internal: queues a deploy plan of an environment (callers authorize)';

-- A deploy plan requested by a member: permission run.build on the
-- environment (a plan is a build that also reads its module list).
CREATE FUNCTION ops.queue_deploy_plan(project_id bigint, env text, git_sha text DEFAULT NULL,
                                      git_ref text DEFAULT NULL, for_run bigint DEFAULT NULL)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments := ops._request_environment(project_id, env);
BEGIN
  PERFORM ops.authorize(e.project_id, 'run.build', e.id);
  RETURN ops._queue_deploy_plan(e, git_sha, git_ref, for_run);
END $$;
COMMENT ON FUNCTION ops.queue_deploy_plan IS
  'Queues a deploy plan: the modules a deploy of a revision would install and update in an environment, read from its database (run.build)';

-- The newest plan of a deploy run (its plan_for_run), or the plan a plan
-- run holds: {"plan_run_id", "status", "git_sha", "plan"} (plan null until
-- it succeeded); status not_queued and the error when the plan of a
-- waiting deploy could not be queued; null when the deploy has none.
-- Readable by the project's members (project.read).
CREATE FUNCTION ops.deploy_plan(run_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r ops.runs;
  p ops.runs;
BEGIN
  SELECT * INTO r FROM ops.runs x WHERE x.id = run_id;
  IF NOT FOUND OR NOT ops.can_read_project(r.project_id) THEN
    PERFORM ops._raise('OD002', format('run %s does not exist', run_id));
  END IF;
  PERFORM ops.authorize(r.project_id, 'project.read', r.environment_id);
  IF r.workflow = 'build' AND r.metadata ->> 'mode' = 'plan' THEN
    p := r;
  ELSE
    SELECT * INTO p FROM ops.runs x
     WHERE x.project_id = r.project_id AND x.workflow = 'build' AND x.metadata ->> 'mode' = 'plan'
       AND x.metadata ->> 'plan_for_run' = r.id::text
     ORDER BY x.id DESC LIMIT 1;
    IF NOT FOUND THEN   -- none, or why a waiting deploy has none (ops.plan_gated_deploy)
      RETURN (SELECT jsonb_build_object('plan_run_id', NULL, 'status', 'not_queued', 'git_sha', r.git_sha,
                                        'plan', NULL, 'error', ev.message)
                FROM ops.run_events ev
               WHERE ev.run_id = r.id AND ev.attempt = 0 AND ev.payload ->> 'deploy_plan' = 'not_queued'
               ORDER BY ev.id DESC LIMIT 1);
    END IF;
  END IF;
  RETURN jsonb_build_object('plan_run_id', p.id, 'status', p.status,
                            'git_sha', coalesce(p.result #>> '{git,sha}', p.git_sha),
                            'plan', p.result -> 'plan', 'error', p.error);
END $$;
COMMENT ON FUNCTION ops.deploy_plan IS
  'The newest deploy plan of a deploy run (or a plan run''s own): the modules it would install and update (project.read)';

-- An upgrade test (Odoo.sh's Upgrade tab, for Community Edition): the
-- operator's upgrade hook (the worker's --upgrade-hook, never a setting)
-- runs on a copy of the production environment's latest completed backup,
-- restored beside production into a throw-away database the worker names
-- and drops; production itself is not touched. The revision is the code
-- the upgraded database is to run (default: the project's production
-- branch). Permission upgrade.test on the production environment.
CREATE FUNCTION ops.queue_upgrade_test(project_id bigint, env text, git_sha text DEFAULT NULL,
                                       git_ref text DEFAULT NULL)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments := ops._request_environment(project_id, env);
  b ops.backups;
  run ops.runs;
BEGIN
  PERFORM ops.authorize(e.project_id, 'upgrade.test', e.id);
  IF e.stage <> 'production' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s: an upgrade test copies production', e.name, e.stage));
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  SELECT * INTO b FROM ops.backups x
   WHERE x.environment_id = e.id AND x.status = 'completed' AND (x.expires_at IS NULL OR x.expires_at > now())
     AND x.sha256 IS NOT NULL AND x.metadata #>> '{backup,filestore,sha256}' IS NOT NULL
   ORDER BY x.completed_at DESC NULLS LAST, x.id DESC LIMIT 1;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD004', format('environment "%s" has no completed backup to test the upgrade on', e.name),
                       'Take one first: ops.create_backup.');
  END IF;
  IF git_sha IS NULL AND git_ref IS NULL THEN
    SELECT p.production_branch INTO git_ref FROM ops.projects p WHERE p.id = e.project_id;
  END IF;
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, git_sha, git_ref,
    jsonb_build_object('mode', 'upgrade_test', 'backup_id', b.id), 'test', 10);
  PERFORM ops.audit(e.project_id, 'upgrade.test', 'run', run.id,
                    jsonb_build_object('environment', e.name, 'backup_id', b.id));
  RETURN run;
END $$;
COMMENT ON FUNCTION ops.queue_upgrade_test IS
  'Queues an upgrade test: the operator''s upgrade hook on a copy of production''s latest backup, production untouched (upgrade.test)';

-- A production upgrade: a deploy of `mode` upgrade of the revision the
-- upgraded database is to run. It waits for another member's approval
-- (ops.gate_production_run, 65_approvals.sql), then the worker stops
-- production, takes the pre-deploy backup (the run stops without it), runs
-- the operator's upgrade hook on a copy of the database and filestore,
-- swaps the upgraded copy in, starts the new release and checks its
-- health, and puts the previous database, filestore and release back when
-- anything fails (worker/steps/upgrade/). Permission upgrade.run on the
-- production environment.
CREATE FUNCTION ops.request_upgrade(project_id bigint, env text, git_sha text DEFAULT NULL,
                                    git_ref text DEFAULT NULL)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments := ops._request_environment(project_id, env);
  run ops.runs;
BEGIN
  PERFORM ops.authorize(e.project_id, 'upgrade.run', e.id);
  IF e.stage <> 'production' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s: upgrades are tried on copies elsewhere (ops.queue_upgrade_test)',
                                       e.name, e.stage));
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  IF git_sha IS NULL AND git_ref IS NULL THEN
    SELECT p.production_branch INTO git_ref FROM ops.projects p WHERE p.id = e.project_id;
  END IF;
  SELECT * INTO run FROM ops._queue_run_trusted(e.project_id, e.name, git_sha, git_ref,
    jsonb_build_object('mode', 'upgrade'), 'deploy', 0);
  PERFORM ops.audit(e.project_id, 'upgrade.request', 'run', run.id, jsonb_build_object('environment', e.name));
  RETURN run;
END $$;
COMMENT ON FUNCTION ops.request_upgrade IS
  'Requests a production upgrade with the operator''s upgrade hook: approval, pre-deploy backup, put back on failure (upgrade.run)';
REVOKE EXECUTE ON FUNCTION
  ops._request_environment(bigint, text), ops.queue_deploy_plan(bigint, text, text, text, bigint),
  ops.deploy_plan(bigint), ops.queue_upgrade_test(bigint, text, text, text),
  ops.request_upgrade(bigint, text, text, text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  ops.queue_deploy_plan(bigint, text, text, text, bigint), ops.deploy_plan(bigint),
  ops.queue_upgrade_test(bigint, text, text, text), ops.request_upgrade(bigint, text, text, text)
  TO odooops_api;

-- A runtime profile names a runtime by name; the workers refuse one they do
-- not implement (docs/runtimes.md), so a new runtime needs no schema change.
ALTER TABLE ops.runtime_profiles DROP CONSTRAINT runtime_profiles_runtime_check;
ALTER TABLE ops.runtime_profiles ADD CONSTRAINT runtime_profiles_runtime_check
  CHECK (runtime ~ '^[a-z][a-z0-9_-]{0,31}$');

-- Sessions in an environment's runtime and run-event notifications (78_sessions.sql).
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

-- Run events wake their followers: after each statement that appends
-- events to a run someone follows, one notification on channel
-- odooops_run_events with "<run id>:<newest event id>" (ids only: every
-- session of the database that listens receives it, whatever it may read).
-- `odooops logs --follow` follows a run and reads its new events then,
-- instead of polling. Rows restored from a dump notify nobody
-- (ops._carried_over).
--
-- Only followed runs notify: PostgreSQL serialises the commits of all
-- transactions that send a notification (one lock on the notification queue
-- from before the commit to its end), so a notification for every claim and
-- finish made concurrent workers commit one at a time.

-- Who follows which run: a session's backend pid. Unlogged: it is about
-- live sessions and means nothing after a crash. Rows of sessions that
-- ended are swept by the next ops.follow_run_events; one left meanwhile
-- costs a notification nobody reads.
CREATE UNLOGGED TABLE ops.run_followers (
  run_id bigint NOT NULL,
  pid    integer NOT NULL,
  since  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, pid)
);
COMMENT ON TABLE ops.run_followers IS
  'Sessions following a run''s events (odooops logs --follow): only followed runs notify odooops_run_events';

-- The calling session follows a run it may read (its events notify from
-- now on); it stops following when it ends. A run of another project is
-- answered like a missing one. At most 64 runs per session.
CREATE FUNCTION ops.follow_run_events(run_id bigint) RETURNS void LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  project bigint;
BEGIN
  SELECT r.project_id INTO project FROM ops.runs r WHERE r.id = follow_run_events.run_id;
  IF NOT FOUND OR NOT ops.can_read_project(project) THEN
    PERFORM ops._raise('OD002', format('no run %s', run_id));
  END IF;
  DELETE FROM ops.run_followers f
   WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid OPERATOR(pg_catalog.=) f.pid);
  IF (SELECT count(*) FROM ops.run_followers f WHERE f.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()
       AND f.run_id OPERATOR(pg_catalog.<>) follow_run_events.run_id) >= 64 THEN
    PERFORM ops._raise('OD005', 'this session already follows 64 runs');
  END IF;
  INSERT INTO ops.run_followers (run_id, pid)
  VALUES (follow_run_events.run_id, pg_catalog.pg_backend_pid())
  ON CONFLICT DO NOTHING;
END $$;
COMMENT ON FUNCTION ops.follow_run_events IS
  'The calling session follows a run: its new events notify odooops_run_events with "<run id>:<newest event id>"';

CREATE FUNCTION ops._notify_run_events() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ops.run_followers) THEN
    RETURN NULL;
  END IF;
  -- One statement for the whole batch (a claim or finish of 100 runs
  -- appends 100 events): not a statement per run.
  PERFORM pg_catalog.pg_notify('odooops_run_events', x.run_id || ':' || x.last_id)
     FROM (SELECT n.run_id, max(n.id) AS last_id FROM new_events n
            WHERE NOT ops._carried_over(n.created_at)
              AND EXISTS (SELECT 1 FROM ops.run_followers f WHERE f.run_id OPERATOR(pg_catalog.=) n.run_id)
            GROUP BY n.run_id ORDER BY n.run_id) x;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION ops._notify_run_events IS
  'Notifies odooops_run_events with "<run id>:<newest event id>" for each followed run after events are appended';
CREATE TRIGGER run_events_notify AFTER INSERT ON ops.run_events
  REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION ops._notify_run_events();
SELECT pg_catalog.pg_extension_config_dump('ops.run_followers', '');
ALTER TABLE ops.run_followers ENABLE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON ops.run_followers TO odooops_admin USING (true) WITH CHECK (true);
REVOKE ALL ON ops.run_followers FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON ops.run_followers TO odooops_admin;
REVOKE EXECUTE ON FUNCTION ops.follow_run_events(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.follow_run_events(bigint) TO odooops_api;
ALTER TABLE ops.sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON ops.sessions TO odooops_admin USING (true) WITH CHECK (true);
REVOKE ALL ON ops.sessions FROM PUBLIC;
GRANT SELECT ON ops.sessions TO odooops_admin;
REVOKE EXECUTE ON FUNCTION
  ops.session_token_ttl(), ops._session_permission(text), ops.open_session(text, text, text),
  ops.redeem_session(text, text), ops.close_session(bigint, text, integer), ops._notify_run_events()
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.redeem_session(text, text), ops.close_session(bigint, text, integer)
  TO odooops_worker;
GRANT EXECUTE ON FUNCTION ops.open_session(text, text, text), ops.session_token_ttl() TO odooops_api;
-- The shipped session policies, numbered below the operator's (56_permissions.sql).
INSERT INTO ops.policies (id, role, permission, stage, shipped) OVERRIDING SYSTEM VALUE
SELECT (SELECT max(x.id) FROM ops.policies x WHERE x.id < 1000000) + row_number() OVER (), r.role, p.permission, p.stage, true
  FROM (VALUES
    ('env.shell',         NULL,          ARRAY['owner', 'admin']),
    ('env.shell',         'staging',     ARRAY['developer']),
    ('env.shell',         'development', ARRAY['developer']),
    ('env.shell',         'preview',     ARRAY['developer']),
    ('env.psql',          NULL,          ARRAY['owner', 'admin']),
    ('env.psql',          'staging',     ARRAY['developer']),
    ('env.psql',          'development', ARRAY['developer']),
    ('env.psql',          'preview',     ARRAY['developer']),
    ('env.logs',          NULL,          ARRAY['owner', 'admin', 'developer', 'viewer', 'auditor'])
  ) AS p(permission, stage, roles),
  LATERAL unnest(p.roles) AS r(role)
ON CONFLICT DO NOTHING;
-- Sessions are the control plane's data: a dump keeps them (90_dump.sql).
DO $$
DECLARE
  rel regclass;
BEGIN
  FOR rel IN
    SELECT c.oid::regclass FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'ops'::regnamespace AND c.relkind IN ('r', 'S')
       AND c.relname IN ('sessions', 'sessions_id_seq')
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
  LOOP
    PERFORM pg_catalog.pg_extension_config_dump(rel, '');
  END LOOP;
END $$;

-- Restore tests (73_restore_tests.sql): workflow restore_test, the
-- schedule kind 'restore_test', the backup run_context gives it, and the
-- alert of a failed one.
ALTER TABLE ops.agents DROP CONSTRAINT agents_kinds_check;
ALTER TABLE ops.agents ADD CONSTRAINT agents_kinds_check CHECK (cardinality(kinds) > 0
  AND kinds <@ ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy', 'restore_test']);
ALTER TABLE ops.agents ALTER COLUMN kinds
  SET DEFAULT ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy', 'restore_test'];
CREATE OR REPLACE FUNCTION ops.register_agent(
  worker_id text, kinds text[] DEFAULT NULL, team text DEFAULT NULL,
  labels jsonb DEFAULT '{}', version text DEFAULT NULL, hostname text DEFAULT NULL)
RETURNS ops.agents LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
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
  IF cardinality(kinds) > 7 THEN
    RAISE EXCEPTION USING ERRCODE = 'OD005', MESSAGE = 'kinds has too many entries',
      DETAIL = format('%s entries, the limit is 7.', cardinality(kinds));
  END IF;
  PERFORM ops.authorize_worker(worker_id);
  IF kinds IS NOT NULL AND (cardinality(kinds) = 0 OR NOT kinds <@
      ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy', 'restore_test']) THEN
    PERFORM ops._raise('OD004', 'kinds must be a non-empty list of workflows',
                       'Workflows: build, test, deploy, backup, restore, destroy, restore_test.');
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
          coalesce(kinds, ARRAY['build', 'test', 'deploy', 'backup', 'restore', 'destroy', 'restore_test']),
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
COMMENT ON FUNCTION ops.register_agent IS 'Registers or updates a worker; claims then honour its kinds and team';
ALTER TABLE ops.backup_schedules
  ADD COLUMN kind text NOT NULL DEFAULT 'backup' CHECK (kind IN ('backup', 'restore_test'));
ALTER TABLE ops.backup_schedules DROP CONSTRAINT backup_schedules_environment_id_cron_expr_backup_type_key;
ALTER TABLE ops.backup_schedules ADD UNIQUE (environment_id, cron_expr, backup_type, kind);
COMMENT ON TABLE ops.backup_schedules IS 'Cron schedules of automatic backups and restore tests per environment (UTC)';
CREATE OR REPLACE FUNCTION ops.fire_due_backup_schedules(max_schedules integer DEFAULT 100)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  s record;
  created record;
  fired integer := 0;
BEGIN
  FOR s IN
    SELECT bs.id, bs.cron_expr, bs.backup_type, bs.kind, bs.next_fire_at, e.id AS env_id,
           e.project_id, e.name AS env, e.status
      FROM ops.backup_schedules bs JOIN ops.environments e ON e.id = bs.environment_id
     WHERE bs.enabled AND bs.next_fire_at <= now()
     ORDER BY bs.next_fire_at, bs.id
     LIMIT max_schedules
       FOR UPDATE OF bs SKIP LOCKED
  LOOP
    BEGIN
      IF s.status <> 'active' THEN
        RAISE EXCEPTION 'environment % is %', s.env, s.status;
      END IF;
      IF s.kind = 'restore_test' THEN
        SELECT NULL::bigint AS backup_id, t.id AS run_id INTO created
          FROM ops._queue_restore_test(s.env_id,
                 jsonb_build_object('schedule_id', s.id, 'slot', s.next_fire_at,
                                    'idempotency_key', format('schedule-%s-%s', s.id, extract(epoch FROM s.next_fire_at)::bigint))) t;
      ELSE
        SELECT * INTO created FROM ops.create_backup(s.project_id, s.env, s.backup_type,
          jsonb_build_object('schedule_id', s.id, 'slot', s.next_fire_at,
                             'idempotency_key', format('schedule-%s-%s', s.id, extract(epoch FROM s.next_fire_at)::bigint)));
      END IF;
      INSERT INTO ops.backup_schedule_fires (schedule_id, slot, backup_id, run_id)
      VALUES (s.id, s.next_fire_at, created.backup_id, created.run_id);
      UPDATE ops.backup_schedules SET last_slot = s.next_fire_at, last_fired_at = now(),
             last_backup_id = created.backup_id, last_error = NULL,
             next_fire_at = ops.cron_next(s.cron_expr, greatest(now(), s.next_fire_at))
       WHERE id = s.id;
      fired := fired + 1;
    EXCEPTION WHEN OTHERS THEN
      -- The slot is skipped, with the reason recorded; it is not retried.
      INSERT INTO ops.backup_schedule_fires (schedule_id, slot, error)
      VALUES (s.id, s.next_fire_at, SQLERRM) ON CONFLICT DO NOTHING;
      UPDATE ops.backup_schedules SET last_slot = s.next_fire_at, last_error = SQLERRM,
             next_fire_at = ops.cron_next(s.cron_expr, greatest(now(), s.next_fire_at))
       WHERE id = s.id;
    END;
  END LOOP;
  RETURN fired;
END $$;
COMMENT ON FUNCTION ops.fire_due_backup_schedules IS
  'Fires each due backup or restore-test schedule slot exactly once (missed slots fire once); returns how many';
CREATE OR REPLACE FUNCTION ops.run_context(run_id bigint, worker_id text, attempt integer)
RETURNS jsonb LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result jsonb;
BEGIN
  PERFORM ops._check_length('worker_id', worker_id, 128);
  PERFORM ops.authorize_worker(worker_id);
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
                       WHERE CASE WHEN r.workflow = 'restore_test'
                                    THEN b.environment_id = r.environment_id AND b.status = 'completed'
                                         AND (b.expires_at IS NULL OR b.expires_at > now())
                                  WHEN r.workflow <> 'deploy'
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
COMMENT ON FUNCTION ops.run_context IS
  'What a worker needs to execute a run it holds: the run, its project and environment, and the backup involved';
CREATE OR REPLACE FUNCTION ops.alert_conditions(backpressure_threshold integer DEFAULT 50,
                                     agent_timeout_seconds integer DEFAULT 120)
RETURNS SETOF ops._alert_condition
LANGUAGE sql STABLE AS $$
  -- more runs waiting than the threshold
  SELECT 'queue_backpressure', 'queue', 'warning', NULL::bigint, NULL::bigint,
         format('%s runs queued (threshold %s)', q.n, backpressure_threshold),
         jsonb_build_object('queued', q.n, 'threshold', backpressure_threshold)
    FROM (SELECT count(*) AS n FROM ops.runs WHERE status = 'queued') q
   WHERE q.n > backpressure_threshold
  UNION ALL
  -- runs the stale-run detector took back (requeued and waiting, or failed)
  SELECT 'stale_run', 'run:' || r.id, CASE WHEN r.status = 'failed' THEN 'critical' ELSE 'warning' END,
         r.project_id, r.environment_id,
         format('%s run %s %s after its lease expired (attempt %s of %s)', r.workflow, r.id,
                CASE WHEN r.status = 'failed' THEN 'failed' ELSE 'was requeued' END, r.attempt, r.max_attempts),
         jsonb_build_object('run_id', r.id, 'status', r.status, 'attempt', r.attempt)
    FROM ops.runs r
   WHERE r.status IN ('queued', 'failed') AND r.attempt > 0
     AND r.updated_at > now() - interval '7 days'
     AND (SELECT e.actor = 'odooops' AND e.from_status IN ('claimed', 'running')
            FROM ops.run_events e
           WHERE e.run_id = r.id AND e.kind = 'transition'
           ORDER BY e.id DESC LIMIT 1)
  UNION ALL
  -- the latest finished backup of an environment failed
  SELECT 'backup_failed', 'environment:' || b.environment_id, 'critical', b.project_id, b.environment_id,
         format('%s backup %s failed: %s', b.backup_type, b.id, coalesce(b.error, 'unknown error')),
         jsonb_build_object('backup_id', b.id)
    FROM (SELECT DISTINCT ON (environment_id) * FROM ops.backups
           WHERE status IN ('completed', 'failed', 'expired', 'deleted')
           ORDER BY environment_id, created_at DESC, id DESC) b
   WHERE b.status = 'failed'
  UNION ALL
  -- the latest finished restore test of an environment failed
  SELECT 'restore_test_failed', 'environment:' || r.environment_id, 'critical', r.project_id, r.environment_id,
         format('restore test run %s failed: %s', r.id, coalesce(r.error, 'unknown error')),
         jsonb_build_object('run_id', r.id, 'backup_id', r.result -> 'restore_test' -> 'backup_id')
    FROM (SELECT DISTINCT ON (environment_id) * FROM ops.runs
           WHERE workflow = 'restore_test' AND status IN ('succeeded', 'failed')
           ORDER BY environment_id, id DESC) r
   WHERE r.status = 'failed'
  UNION ALL
  -- a restore into production is pending approval or in progress
  SELECT 'production_restore_requested', 'restore:' || rs.id, 'warning', rs.project_id,
         rs.target_environment_id,
         format('restore %s of backup %s into production %s is %s', rs.id, rs.backup_id, e.name, rs.status),
         jsonb_build_object('restore_id', rs.id, 'backup_id', rs.backup_id, 'requested_by', rs.requested_by)
    FROM ops.restores rs JOIN ops.environments e ON e.id = rs.target_environment_id
   WHERE e.stage = 'production' AND rs.status IN ('pending_approval', 'queued', 'running')
  UNION ALL
  -- a worker stopped heartbeating
  SELECT 'worker_lost', 'agent:' || a.worker_id, 'warning', NULL, NULL,
         format('worker %s has not sent a heartbeat since %s', a.worker_id, a.last_heartbeat_at),
         jsonb_build_object('worker_id', a.worker_id, 'last_heartbeat_at', a.last_heartbeat_at)
    FROM ops.agents a
   WHERE a.status <> 'disabled'
     AND a.last_heartbeat_at < now() - make_interval(secs => agent_timeout_seconds)
$$;
COMMENT ON FUNCTION ops.alert_conditions IS 'The conditions that should have an open alert right now';

-- Restore tests: the latest backup of a production environment is restored
-- into a throwaway database, started with Odoo and health-checked, and the
-- database dropped again (worker/steps/restore_test). They are runs of
-- workflow `restore_test`, queued by a schedule of kind 'restore_test'
-- (70_schedules.sql) or by a person with ops.queue_restore_test; which
-- backup is tested is decided when the run starts (ops.run_context: the
-- latest completed one). The run's result records the outcome
-- (result.restore_test); a failed one opens an alert (72_alerts.sql) and
-- sends the webhook of a failed run. The environment itself is not touched,
-- so the run is neither exclusive nor bound to the environment's host.

-- Queues a restore test of a production environment, for callers that
-- authorized it themselves (the scheduler, ops.queue_restore_test).
CREATE FUNCTION ops._queue_restore_test(env_id bigint, metadata jsonb DEFAULT '{}')
RETURNS ops.runs LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
BEGIN
  SELECT * INTO e FROM ops.environments x WHERE x.id = env_id;
  IF NOT FOUND THEN
    PERFORM ops._raise('OD002', format('environment %s does not exist', env_id));
  END IF;
  IF e.stage <> 'production' THEN
    PERFORM ops._raise('OD004',
      format('environment "%s" is a %s environment: restore tests are for production', e.name, e.stage),
      'A restore test checks that the backups of production can be brought back.');
  END IF;
  IF e.status <> 'active' THEN
    PERFORM ops._raise('OD004', format('environment "%s" is %s', e.name, e.status));
  END IF;
  RETURN ops._queue_run_trusted(e.project_id, e.name, NULL, NULL, metadata, 'restore_test', 0);
END $$;
COMMENT ON FUNCTION ops._queue_restore_test IS
  'Queues a restore_test run of a production environment without a permission check (internal callers only)';

CREATE FUNCTION ops.queue_restore_test(project_id bigint, env text)
RETURNS ops.runs LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e ops.environments;
BEGIN
  PERFORM ops._check_length('env', env, 255);
  SELECT * INTO e FROM ops.environments x WHERE x.project_id = queue_restore_test.project_id AND x.name = env;
  -- Outside the project its environments are as unknown as missing ones.
  IF NOT FOUND OR NOT ops.can_read_project(e.project_id) THEN
    PERFORM ops._raise('OD002', format('project %s has no environment "%s"', project_id, env));
  END IF;
  PERFORM ops.authorize(e.project_id, 'backup.restore', e.id);
  RETURN ops._queue_restore_test(e.id, jsonb_build_object('requested_by', ops.current_actor()));
END $$;
COMMENT ON FUNCTION ops.queue_restore_test IS
  'Queues a restore test of the latest backup of a production environment (needs backup.restore there)';
REVOKE EXECUTE ON FUNCTION ops._queue_restore_test(bigint, jsonb), ops.queue_restore_test(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.queue_restore_test(bigint, text) TO odooops_api;
ALTER TABLE ops.alerts DROP CONSTRAINT alerts_kind_check;
ALTER TABLE ops.alerts ADD CONSTRAINT alerts_kind_check CHECK (kind IN ('queue_backpressure', 'stale_run',
  'backup_failed', 'production_restore_requested', 'worker_lost', 'restore_test_failed'));

-- A production deploy waiting for its approval has its deploy plan queued
-- with it, whoever queued it (68_upgrades.sql).
-- A production deploy that waits for its approval (65_approvals.sql) has
-- its plan queued with it, whoever queued it (a member with run.deploy, or
-- a push through the ingest), so the approver sees what it would install
-- and update (ops.deploy_plan of the deploy). The plan is odooops's own
-- part of the deploy, read-only, and readable by the project's members
-- only. A plan that cannot be queued changes nothing else: the deploy
-- waits as before, the reason in its log and in ops.deploy_plan (status
-- not_queued). Upgrades and rollbacks replace the database: no plan.
CREATE FUNCTION ops.plan_gated_deploy() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF ops._carried_over(NEW.created_at) THEN   -- restored from a dump with its plan
    RETURN NULL;
  END IF;
  BEGIN
    PERFORM ops._queue_deploy_plan(e, NULL, NULL, NEW.id)
       FROM ops.environments e WHERE e.id = NEW.environment_id;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO ops.run_events (run_id, kind, level, message, actor, payload)
    VALUES (NEW.id, 'log', 'warning', left('deploy plan not queued: ' || SQLERRM, 8192), ops.current_actor(),
            '{"deploy_plan": "not_queued"}');
  END;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION ops.plan_gated_deploy IS
  'Trigger: queues the deploy plan of a production deploy waiting for its approval';
REVOKE EXECUTE ON FUNCTION ops._queue_deploy_plan(ops.environments, text, text, bigint) FROM PUBLIC;
CREATE TRIGGER runs_plan_gated_deploy AFTER INSERT ON ops.runs
  FOR EACH ROW WHEN (NEW.workflow = 'deploy' AND NEW.available_at = 'infinity'
                     AND NOT NEW.metadata ?| ARRAY['mode', 'rollback_to_release'])
  EXECUTE FUNCTION ops.plan_gated_deploy();
REVOKE EXECUTE ON FUNCTION ops.plan_gated_deploy() FROM PUBLIC;
