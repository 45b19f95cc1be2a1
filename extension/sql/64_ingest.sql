-- GitHub ingest: the SQL entry point for GitHub webhooks (push,
-- pull_request, ping). It verifies X-Hub-Signature-256 over the exact bytes
-- received, deduplicates on X-GitHub-Delivery, maps branches to
-- environments, creates development and preview environments as Odoo.sh
-- does, applies a per-project rate limit, and answers with what it queued.

CREATE FUNCTION ops.github_signature_valid(secret text, body text, signature text)
RETURNS boolean LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'odooops_github_signature_valid';
COMMENT ON FUNCTION ops.github_signature_valid IS 'Checks a GitHub X-Hub-Signature-256 header against the raw body and a secret';
CREATE FUNCTION ops.branch_matches(pattern text, branch text)
RETURNS boolean LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'odooops_branch_matches';
COMMENT ON FUNCTION ops.branch_matches IS 'Whether a branch name matches a branch pattern (* matches within a path segment, ** across)';
CREATE FUNCTION ops.branch_slug(branch text, max_length integer DEFAULT 40)
RETURNS text LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'odooops_branch_slug';
COMMENT ON FUNCTION ops.branch_slug IS 'A branch name as a lowercase [a-z0-9_-] slug of at most max_length characters (a short hash keeps long names distinct)';

CREATE TABLE ops.ingest_deliveries (
  delivery_id text PRIMARY KEY CHECK (length(delivery_id) BETWEEN 1 AND 100),
  project_id  bigint NOT NULL REFERENCES ops.projects ON DELETE CASCADE,
  event       text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  result      jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE ops.ingest_deliveries IS 'GitHub deliveries received, by X-GitHub-Delivery: redeliveries are answered from here';
CREATE INDEX ingest_deliveries_project_time ON ops.ingest_deliveries (project_id, received_at);

-- The environment a push to `branch` deploys to: one already tracking the
-- branch, else the one whose pattern matches (exact names before globs,
-- production before staging before development). A development glob such
-- as feature/* is a template: ops._branch_environment creates the branch's
-- own environment from it.
CREATE FUNCTION ops._environment_for_branch(p ops.projects, branch text)
RETURNS ops.environments LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT x.* FROM ops.environments x
   WHERE x.project_id = p.id AND x.status = 'active'
     AND (x.branch = _environment_for_branch.branch
          OR (x.branch IS NULL AND ops.branch_matches(
                coalesce(x.branch_pattern, CASE WHEN x.stage = 'production' THEN p.production_branch END),
                _environment_for_branch.branch)))
   ORDER BY x.branch IS NULL, x.branch_pattern ~ '[*?]',
            array_position(ARRAY['production', 'staging', 'development', 'preview'], x.stage), x.id
   LIMIT 1
$$;

CREATE FUNCTION ops._is_branch_template(e ops.environments) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT e.stage = 'development' AND e.branch IS NULL AND e.branch_pattern ~ '[*?]'
$$;

-- Odoo.sh gives every development branch its own build and database, kept
-- for settings.development_ttl_days (3) after its last push. TTLs count whole
-- 24-hour days, so they do not depend on the TimeZone of the session that
-- pushed (a daylight-saving change would otherwise shorten them by an hour).
CREATE FUNCTION ops._branch_environment(p ops.projects, template ops.environments, branch text)
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

CREATE FUNCTION ops.ingest_github(event text, delivery_id text, signature text, body text)
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
COMMENT ON FUNCTION ops.ingest_github IS
  'GitHub webhook entry point: (X-GitHub-Event, X-GitHub-Delivery, X-Hub-Signature-256, raw body)';

-- PostgREST form: POST /rpc/github_webhook with the raw JSON body; the
-- headers come from request.headers. `json` (not jsonb) keeps the bytes.
CREATE FUNCTION ops.github_webhook(json) RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  headers jsonb := coalesce(nullif(current_setting('request.headers', true), ''), '{}')::jsonb;
BEGIN
  RETURN ops.ingest_github(headers ->> 'x-github-event', headers ->> 'x-github-delivery',
                           headers ->> 'x-hub-signature-256', $1::text);
END $$;
COMMENT ON FUNCTION ops.github_webhook IS 'PostgREST entry point for GitHub webhooks: reads the headers and raw body of the request and calls ops.ingest_github';
