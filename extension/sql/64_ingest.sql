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
-- Environment names derived from branch names (extension/core/branch_slug.h).
CREATE FUNCTION ops.branch_slug(branch text, max_length integer DEFAULT 40, hashed boolean DEFAULT false)
RETURNS text LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'odooops_branch_slug';
COMMENT ON FUNCTION ops.branch_slug IS
  'Readable slug of a branch name: lowercase [a-z0-9-], accents removed, at most max_length (10 to 63) characters; cut and ended with 8 hex digits of the SHA-256 of the full name when longer, or when hashed';

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

-- GitHub's ref names are not bounded here; odooops stores a branch in
-- environments.branch and runs.git_ref, both of at most 255 characters.
-- Longer names are refused with OD005 rather than cut: a cut name would
-- track another branch.
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

-- The database name of a new or revived environment: `plain` when no live
-- environment of any project uses it (database names are unique across the
-- cluster), else its first 54 characters, '_' and 8 hex digits of the
-- SHA-256 of "<project slug>/<environment name>", which no other
-- environment shares. NULL when both are taken.
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

-- A branch pushed again after its deletion, or a pull request reopened
-- after it was closed, gets its environment back: the same name, database
-- name (unless another environment took it meanwhile) and history, active
-- again with a new TTL, as an Odoo.sh user expects. A destroy run not yet
-- claimed is cancelled: the environment never went away. A destroy run
-- being carried out (its database is being dropped) makes the delivery fail
-- with OD004; redelivered once the run is over, it brings the environment
-- back. An active environment only gets its new TTL.
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

-- Odoo.sh gives every development branch its own build and database, kept
-- for settings.development_ttl_days (3) after its last push. TTLs count whole
-- 24-hour days, so they do not depend on the TimeZone of the session that
-- pushed (a daylight-saving change would otherwise shorten them by an hour).
--
-- Called when `branch` matched the development template and has no active
-- environment. A branch keeps the environment it got first, whatever its
-- state (ops._revive_environment), so its name never changes. A new one is
-- dev-<slug>; when another environment of the project, live or destroyed,
-- has that name, dev-<slug>-<hash of the branch>. `created` is true unless
-- the environment was active all along.
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

-- The preview environment pr-<number> of a pull request opened, reopened or
-- pushed to: the one it had, brought back if it was closed
-- (ops._revive_environment), else a new one kept settings.preview_ttl_days
-- (7). `created` is true unless it was active all along.
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

-- A pull request number from a payload: a positive JSON integer, else OD004.
CREATE FUNCTION ops._pull_request_number(v jsonb) RETURNS integer LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF jsonb_typeof(v) = 'number' AND v::text ~ '^[1-9][0-9]{0,8}$' THEN
    RETURN v::text::integer;
  END IF;
  RAISE EXCEPTION USING ERRCODE = 'OD004', MESSAGE = 'webhook body has no valid pull request number';
END $$;

-- A webhook of an organization (not of a repository) without a repository
-- in its payload, such as the ping GitHub sends when the hook is created.
-- Each project's github_webhook_secret authenticates its repository's
-- deliveries, including those of an organization hook, so the hook's
-- secret must be that of the organization's projects: the delivery is
-- authentic when it is signed with the secret of one of the projects whose
-- repository the organization owns. It is answered without being recorded
-- and changes nothing.
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
CREATE FUNCTION ops.ingest_github(event text, delivery_id text, signature text, body text)
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

CREATE FUNCTION ops.hmac_signature_valid(secret text, body text, signature text, prefix text DEFAULT '')
RETURNS boolean LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'odooops_hmac_signature_valid';
COMMENT ON FUNCTION ops.hmac_signature_valid IS
  'Checks a webhook signature: prefix followed by the hex HMAC-SHA256 of the raw body under the secret (constant-time)';
CREATE FUNCTION ops.token_valid(expected text, given text)
RETURNS boolean LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'odooops_token_valid';
COMMENT ON FUNCTION ops.token_valid IS 'Compares a shared webhook token with the expected one in constant time';
