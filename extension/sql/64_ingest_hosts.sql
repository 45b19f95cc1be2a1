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
