-- Git hosts other than GitHub, and the neutral ingest every adapter shares.
-- Each host's documented example payloads (tests/fixtures/<host>/*.json,
-- whole) are delivered with the headers and the token or signature the
-- host computes: push deploys the branch's environment, a merge or pull
-- request opened gets a preview, closed tears it down, a bad token or
-- signature is refused and changes nothing, unknown events are ignored with
-- a reason. Variants of a payload are made with jsonb_set.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
RESET client_min_messages;

\set gl_push `cat tests/fixtures/gitlab/push-event.json`
\set gl_mr `cat tests/fixtures/gitlab/merge-request-event.json`
\set gt_push `cat tests/fixtures/gitea/push-event.json`
\set gt_pr `cat tests/fixtures/gitea/pull-request-event.json`
\set gt_delete `cat tests/fixtures/gitea/delete-event.json`
\set bb_push `cat tests/fixtures/bitbucket/repo-push.json`
\set bb_created `cat tests/fixtures/bitbucket/pull-request-created.json`
\set bb_updated `cat tests/fixtures/bitbucket/pull-request-updated.json`
\set bb_merged `cat tests/fixtures/bitbucket/pull-request-merged.json`
\set bb_declined `cat tests/fixtures/bitbucket/pull-request-declined.json`

-- Signatures as the hosts compute them: hex HMAC-SHA256 of the body's bytes.
CREATE FUNCTION pg_temp.hmac_hex(body text, secret text) RETURNS text LANGUAGE sql AS $$
  SELECT encode(hmac(convert_to(body, 'UTF8'), convert_to(secret, 'UTF8'), 'sha256'), 'hex')
$$;
-- An answer without what varies between runs (run ids).
CREATE FUNCTION pg_temp.shape(answer jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT answer || jsonb_build_object('queued',
           coalesce((SELECT jsonb_agg(q - 'run_id') FROM jsonb_array_elements(answer -> 'queued') q), '[]'))
$$;
-- A call's answer, or its refusal as "SQLSTATE: message".
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  answer jsonb;
BEGIN
  EXECUTE q INTO answer;
  RETURN pg_temp.shape(answer)::text;
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- What a delivery may change: runs, environments, deliveries recorded (of
-- this file's projects).
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
  WITH mine AS (SELECT id FROM ops.projects WHERE slug IN ('gl-diaspora', 'gl-test', 'gt-example', 'bb-repo'))
  SELECT format('runs=%s environments=%s deliveries=%s',
                (SELECT count(*) FROM ops.runs WHERE project_id IN (SELECT id FROM mine)),
                (SELECT count(*) FROM ops.environments WHERE project_id IN (SELECT id FROM mine)),
                (SELECT count(*) FROM ops.ingest_deliveries WHERE project_id IN (SELECT id FROM mine)))
$$;
-- The runs a project's deliveries queued, oldest first.
CREATE FUNCTION pg_temp.runs(project text) RETURNS TABLE (env text, workflow text, status text, git_sha text,
                                                           git_ref text, source text, pull_request text)
LANGUAGE sql AS $$
  SELECT e.name, r.workflow, r.status, r.git_sha, r.git_ref, r.metadata ->> 'source', r.metadata ->> 'pull_request'
    FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id JOIN ops.projects p ON p.id = r.project_id
   WHERE p.slug = project ORDER BY r.id
$$;

-- One project per repository of the examples: production on master, a
-- development template for every other branch.
CREATE FUNCTION pg_temp.project(slug text, host text, repository text, secret text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  pid bigint;
BEGIN
  INSERT INTO ops.projects (slug, name, production_branch) VALUES (slug, slug, 'master') RETURNING id INTO pid;
  INSERT INTO ops.environments (project_id, name, stage, branch_pattern, db_name) VALUES
    (pid, 'production', 'production', 'master', replace(slug, '-', '_') || '_prod'),
    (pid, 'development', 'development', '**', replace(slug, '-', '_') || '_dev_template');
  PERFORM ops.set_project_git_host(pid, host, repository);
  PERFORM ops.set_project_secret(pid, host || '_webhook_secret', secret);
END $$;
SELECT pg_temp.project('gl-diaspora', 'gitlab', 'mike/diaspora', 'gl-token-1');
SELECT pg_temp.project('gl-test', 'gitlab', 'GitlabHQ/Gitlab-Test', 'gl-token-2');
SELECT pg_temp.project('gt-example', 'gitea', 'example/example', 'gitea-secret');
SELECT pg_temp.project('bb-repo', 'bitbucket', 'team_name/repo_name', 'bb-secret');
SELECT host, repository FROM ops.project_git_hosts ORDER BY host, repository;

-- Connecting a repository: bounded, one project per repository of a host.
SELECT pg_temp.try(format('SELECT to_jsonb(ops.set_project_git_host(%s, %L, %L))', id, 'gitlab', 'mike/DIASPORA'))
  FROM ops.projects WHERE slug = 'gl-test';
SELECT pg_temp.try(format('SELECT to_jsonb(ops.set_project_git_host(%s, %L, %L))', id, 'sourcehut', 'a/b'))
  FROM ops.projects WHERE slug = 'gl-test';
SELECT pg_temp.try(format('SELECT to_jsonb(ops.set_project_git_host(%s, %L, %L))', id, 'gitea', 'no-owner'))
  FROM ops.projects WHERE slug = 'gl-test';
SELECT pg_temp.try(format('SELECT to_jsonb(ops.set_project_git_host(%s, %L, %L))', id, 'gitea', 'a/' || repeat('b', 300)))
  FROM ops.projects WHERE slug = 'gl-test';

------------------------------------------------------------------------------
-- GitLab: X-Gitlab-Token is the hook's secret token, sent as it is.
SELECT pg_temp.state() AS before;
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', 'gl-1', 'gl-token-1', :'gl_push'));
-- the same delivery again is answered as the first time
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', 'gl-1', 'gl-token-1', :'gl_push'));
-- a feature branch gets its own environment; pushed again, a new run
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', 'gl-2', 'gl-token-1',
         jsonb_set(:'gl_push'::jsonb, '{ref}', '"refs/heads/feature/Login"')));
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', 'gl-3', 'gl-token-1',
         jsonb_set(jsonb_set(:'gl_push'::jsonb, '{ref}', '"refs/heads/feature/Login"'), '{after}', '"1234567890abcdef1234567890abcdef12345678"')));
-- the branch deleted: GitLab sends a push whose "after" is all zeros
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', 'gl-4', 'gl-token-1',
         jsonb_set(jsonb_set(:'gl_push'::jsonb, '{ref}', '"refs/heads/feature/Login"'), '{after}', to_jsonb(repeat('0', 40)))));
SELECT * FROM pg_temp.runs('gl-diaspora');
SELECT name, stage, branch, status FROM ops.environments e WHERE e.project_id = (SELECT id FROM ops.projects WHERE slug = 'gl-diaspora') ORDER BY id;
-- the merge request example (action "open"): a preview environment
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Merge Request Hook', 'gl-5', 'gl-token-2', :'gl_mr'));
-- an update without new commits (no oldrev) changes nothing; with new commits it redeploys
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Merge Request Hook', 'gl-6', 'gl-token-2',
         jsonb_set(:'gl_mr'::jsonb, '{object_attributes,action}', '"update"')));
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Merge Request Hook', 'gl-7', 'gl-token-2',
         jsonb_set(jsonb_set(:'gl_mr'::jsonb, '{object_attributes,action}', '"update"'), '{object_attributes,oldrev}', '"95790bf891e76fee5e1747ab589903a6a1f80f22"')));
-- approved: not a code change
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Merge Request Hook', 'gl-8', 'gl-token-2',
         jsonb_set(:'gl_mr'::jsonb, '{object_attributes,action}', '"approved"')));
-- merged: the preview is torn down
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Merge Request Hook', 'gl-9', 'gl-token-2',
         jsonb_set(:'gl_mr'::jsonb, '{object_attributes,action}', '"merge"')));
SELECT * FROM pg_temp.runs('gl-test');
-- refusals change nothing
SELECT pg_temp.state() AS before_refusals;
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', 'gl-10', 'gl-token-2', :'gl_push')) AS other_projects_token;
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', 'gl-10', NULL, :'gl_push')) AS no_token;
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', 'gl-10', repeat('t', 9000), :'gl_push')) AS huge_token;
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', NULL, 'gl-token-1', :'gl_push')) AS no_uuid;
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', 'gl-10', 'gl-token-1', '{"object_kind": ')) AS not_json;
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', 'gl-10', 'gl-token-1', '[1]')) AS not_object;
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', 'gl-10', 'gl-token-1', repeat(' ', 3 * 1024 * 1024))) AS too_large;
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', 'gl-10', 'gl-token-1',
         jsonb_set(:'gl_push'::jsonb, '{project,path_with_namespace}', '"mike/unknown"'))) AS unknown_repository;
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', 'gl-10', 'gl-token-1',
         jsonb_set(:'gl_push'::jsonb, '{after}', '"not a sha"'))) AS bad_sha;
SELECT pg_temp.state() AS after_refusals;
-- an event odooops does not handle is answered, and says so
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Note Hook', 'gl-11', 'gl-token-1',
         jsonb_set(:'gl_push'::jsonb, '{object_kind}', '"note"')));
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Tag Push Hook', 'gl-12', 'gl-token-1',
         jsonb_set(jsonb_set(:'gl_push'::jsonb, '{ref}', '"refs/tags/v1.0"'), '{object_kind}', '"tag_push"')));
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', 'gl-13', 'gl-token-1',
         jsonb_set(:'gl_push'::jsonb, '{ref}', '"refs/tags/v1.0"')));

------------------------------------------------------------------------------
-- Gitea and Forgejo: X-Gitea-Signature / X-Forgejo-Signature, the hex HMAC.
SELECT pg_temp.try(format('SELECT ops.ingest_gitea(%L, %L, %L, %L)', 'push', 'gt-1',
         pg_temp.hmac_hex(:'gt_push', 'gitea-secret'), :'gt_push'));
-- a branch pushed, then deleted (Gitea's delete event)
SELECT pg_temp.try(format('SELECT ops.ingest_gitea(%L, %L, %L, %L)', 'push', 'gt-2', pg_temp.hmac_hex(b, 'gitea-secret'), b))
  FROM (SELECT jsonb_set(:'gt_push'::jsonb, '{ref}', '"refs/heads/example3"')::text AS b) x;
SELECT pg_temp.try(format('SELECT ops.ingest_gitea(%L, %L, %L, %L)', 'delete', 'gt-3',
         pg_temp.hmac_hex(:'gt_delete', 'gitea-secret'), :'gt_delete'));
-- the pull request example (opened), pushed to (synchronized), closed
SELECT pg_temp.try(format('SELECT ops.ingest_gitea(%L, %L, %L, %L)', 'pull_request', 'gt-4',
         pg_temp.hmac_hex(:'gt_pr', 'gitea-secret'), :'gt_pr'));
SELECT pg_temp.try(format('SELECT ops.ingest_gitea(%L, %L, %L, %L)', 'pull_request', 'gt-5', pg_temp.hmac_hex(b, 'gitea-secret'), b))
  FROM (SELECT jsonb_set(:'gt_pr'::jsonb, '{action}', '"synchronized"')::text AS b) x;
SELECT pg_temp.try(format('SELECT ops.ingest_gitea(%L, %L, %L, %L)', 'pull_request', 'gt-6', pg_temp.hmac_hex(b, 'gitea-secret'), b))
  FROM (SELECT jsonb_set(:'gt_pr'::jsonb, '{action}', '"closed"')::text AS b) x;
SELECT * FROM pg_temp.runs('gt-example');
SELECT pg_temp.state() AS before_refusals;
SELECT pg_temp.try(format('SELECT ops.ingest_gitea(%L, %L, %L, %L)', 'push', 'gt-7',
         pg_temp.hmac_hex(:'gt_push', 'wrong-secret'), :'gt_push')) AS wrong_secret;
SELECT pg_temp.try(format('SELECT ops.ingest_gitea(%L, %L, %L, %L)', 'push', 'gt-7',
         pg_temp.hmac_hex(:'gt_push', 'gitea-secret'), :'gt_push' || ' ')) AS body_changed;
SELECT pg_temp.try(format('SELECT ops.ingest_gitea(%L, %L, %L, %L)', 'push', 'gt-7',
         'sha256=' || pg_temp.hmac_hex(:'gt_push', 'gitea-secret'), :'gt_push')) AS github_style_header;
SELECT pg_temp.try(format('SELECT ops.ingest_gitea(%L, %L, %L, %L)', 'push', 'gt-7', NULL, :'gt_push')) AS no_signature;
SELECT pg_temp.try(format('SELECT ops.ingest_gitea(%L, %L, %L, %L)', 'pull_request', 'gt-7', pg_temp.hmac_hex(b, 'gitea-secret'), b))
  FROM (SELECT jsonb_set(:'gt_pr'::jsonb, '{number}', '"two"')::text AS b) x;
SELECT pg_temp.state() AS after_refusals;
SELECT pg_temp.try(format('SELECT ops.ingest_gitea(%L, %L, %L, %L)', 'issues', 'gt-8',
         pg_temp.hmac_hex(:'gt_push', 'gitea-secret'), :'gt_push'));

------------------------------------------------------------------------------
-- Bitbucket Cloud: X-Hub-Signature "sha256=<hex HMAC>", X-Event-Key.
SELECT pg_temp.try(format('SELECT ops.ingest_bitbucket(%L, %L, %L, %L)', 'repo:push', '{bb-1}',
         'sha256=' || pg_temp.hmac_hex(:'bb_push', 'bb-secret'), :'bb_push'));
-- a push that deletes the branch: the change has no "new"
SELECT pg_temp.try(format('SELECT ops.ingest_bitbucket(%L, %L, %L, %L)', 'repo:push', '{bb-2}',
         'sha256=' || pg_temp.hmac_hex(b, 'bb-secret'), b))
  FROM (SELECT jsonb_set(:'bb_push'::jsonb, '{push,changes,0,new}', 'null')::text AS b) x;
SELECT pg_temp.try(format('SELECT ops.ingest_bitbucket(%L, %L, %L, %L)', 'pullrequest:created', '{bb-3}',
         'sha256=' || pg_temp.hmac_hex(:'bb_created', 'bb-secret'), :'bb_created'));
SELECT pg_temp.try(format('SELECT ops.ingest_bitbucket(%L, %L, %L, %L)', 'pullrequest:updated', '{bb-4}',
         'sha256=' || pg_temp.hmac_hex(:'bb_updated', 'bb-secret'), :'bb_updated'));
SELECT pg_temp.try(format('SELECT ops.ingest_bitbucket(%L, %L, %L, %L)', 'pullrequest:fulfilled', '{bb-5}',
         'sha256=' || pg_temp.hmac_hex(:'bb_merged', 'bb-secret'), :'bb_merged'));
-- declined after being reopened: torn down again
SELECT pg_temp.try(format('SELECT ops.ingest_bitbucket(%L, %L, %L, %L)', 'pullrequest:created', '{bb-6}',
         'sha256=' || pg_temp.hmac_hex(:'bb_created', 'bb-secret'), :'bb_created'));
SELECT pg_temp.try(format('SELECT ops.ingest_bitbucket(%L, %L, %L, %L)', 'pullrequest:rejected', '{bb-7}',
         'sha256=' || pg_temp.hmac_hex(:'bb_declined', 'bb-secret'), :'bb_declined'));
SELECT * FROM pg_temp.runs('bb-repo');
SELECT pg_temp.state() AS before_refusals;
SELECT pg_temp.try(format('SELECT ops.ingest_bitbucket(%L, %L, %L, %L)', 'repo:push', '{bb-8}',
         'sha256=' || pg_temp.hmac_hex(:'bb_push', 'gitea-secret'), :'bb_push')) AS wrong_secret;
SELECT pg_temp.try(format('SELECT ops.ingest_bitbucket(%L, %L, %L, %L)', 'repo:push', '{bb-8}',
         pg_temp.hmac_hex(:'bb_push', 'bb-secret'), :'bb_push')) AS no_prefix;
SELECT pg_temp.try(format('SELECT ops.ingest_bitbucket(%L, %L, %L, %L)', 'repo:push', '{bb-8}',
         'sha256=' || pg_temp.hmac_hex(b, 'bb-secret'), b)) AS changes_not_a_list
  FROM (SELECT jsonb_set(:'bb_push'::jsonb, '{push,changes}', '{}')::text AS b) x;
SELECT pg_temp.try(format('SELECT ops.ingest_bitbucket(%L, %L, %L, %L)', 'repo:push', 'bb 8',
         'sha256=' || pg_temp.hmac_hex(:'bb_push', 'bb-secret'), :'bb_push')) AS bad_request_uuid;
SELECT pg_temp.state() AS after_refusals;
SELECT pg_temp.try(format('SELECT ops.ingest_bitbucket(%L, %L, %L, %L)', 'repo:fork', '{bb-9}',
         'sha256=' || pg_temp.hmac_hex(:'bb_push', 'bb-secret'), :'bb_push'));

------------------------------------------------------------------------------
-- The post-receive entry point: authorized as the calling login, each
-- change like the run it queues.
SELECT pg_temp.try(format('SELECT ops.ingest_post_receive(%L, %L)', 'bb-repo',
         repeat('a', 40) || ' ' || repeat('b', 40) || E' refs/heads/master\n'
         || repeat('0', 40) || ' ' || repeat('c', 40) || E' refs/heads/topic\n'
         || repeat('0', 40) || ' ' || repeat('d', 40) || E' refs/tags/v1\n'));
-- the branch deleted
SELECT pg_temp.try(format('SELECT ops.ingest_post_receive(%L, %L)', 'bb-repo',
         repeat('c', 40) || ' ' || repeat('0', 40) || ' refs/heads/topic'));
SELECT pg_temp.try(format('SELECT ops.ingest_post_receive(%L, %L)', 'bb-repo', E'not a line\n')) AS malformed;
SELECT pg_temp.try(format('SELECT ops.ingest_post_receive(%L, %L)', 'nope', '')) AS unknown_project;
SELECT pg_temp.try(format('SELECT ops.ingest_post_receive(%L, %L)', 'bb-repo', repeat('x', 2 * 1024 * 1024))) AS too_large;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hosts_viewer') THEN CREATE ROLE hosts_viewer LOGIN; END IF;
END $$;
SET client_min_messages = warning;
GRANT odooops_api TO hosts_viewer;
RESET client_min_messages;
INSERT INTO ops.project_members (project_id, user_id, role)
SELECT id, 'hosts_viewer', 'viewer' FROM ops.projects WHERE slug = 'bb-repo';
SET ROLE hosts_viewer;
SELECT pg_temp.try(format('SELECT ops.ingest_post_receive(%L, %L)', 'bb-repo',
         repeat('a', 40) || ' ' || repeat('e', 40) || ' refs/heads/master'))
         ~ '^42501: permission denied: run.deploy on project \d+ \(production environment production\)$' AS viewer_may_not_deploy_production;
RESET ROLE;
SELECT * FROM pg_temp.runs('bb-repo') WHERE source = 'git';

------------------------------------------------------------------------------
-- Commit statuses: a subscription per host (the host's API base URL, its
-- token as the secret) gets a delivery for each run event of a pushed commit
-- of a project connected to that host; the dispatcher renders each host's
-- request (core/commit_status.h). In a transaction rolled back: the
-- dispatcher never sees these deliveries.
BEGIN;
INSERT INTO ops.webhook_subscriptions (name, url, format, project_id)
SELECT 'status ' || f, 'https://' || f || '.example/api', f, p.id
  FROM ops.projects p,
       (VALUES ('gl-diaspora', 'gitlab'), ('gt-example', 'gitea'), ('bb-repo', 'bitbucket'), ('gt-example', 'gitlab')) v(slug, f)
 WHERE p.slug = v.slug;
SELECT pg_temp.try(format('SELECT ops.ingest_gitlab(%L, %L, %L, %L)', 'Push Hook', 'gl-20', 'gl-token-1',
         jsonb_set(:'gl_push'::jsonb, '{after}', '"abcdef0123456789abcdef0123456789abcdef01"')));
SELECT pg_temp.try(format('SELECT ops.ingest_gitea(%L, %L, %L, %L)', 'push', 'gt-20', pg_temp.hmac_hex(b, 'gitea-secret'), b))
  FROM (SELECT jsonb_set(:'gt_push'::jsonb, '{after}', '"abcdef0123456789abcdef0123456789abcdef02"')::text AS b) x;
SELECT pg_temp.try(format('SELECT ops.ingest_bitbucket(%L, %L, %L, %L)', 'repo:push', '{bb-20}',
         'sha256=' || pg_temp.hmac_hex(b, 'bb-secret'), b))
  FROM (SELECT jsonb_set(:'bb_push'::jsonb, '{push,changes,0,new,target,hash}', '"abcdef0123456789abcdef0123456789abcdef03"')::text AS b) x;
-- one delivery per connected host (none for the gitlab subscription of the
-- Gitea-only project), with the host's repository in the envelope
SELECT s.format, d.event_type, d.payload -> 'data' ->> 'git_sha' AS git_sha,
       d.payload -> 'project' -> 'git_hosts' ->> s.format AS repository
  FROM ops.webhook_deliveries d JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id
 WHERE s.name LIKE 'status %' ORDER BY d.id;
ROLLBACK;

------------------------------------------------------------------------------
-- The PostgREST forms read each host's headers from request.headers and
-- take the body as json (its bytes unchanged, so the signature holds).
SELECT set_config('request.headers', '{"x-gitlab-event": "Push Hook", "x-gitlab-event-uuid": "gl-30", "x-gitlab-token": "gl-token-1"}', false) IS NOT NULL AS headers_set;
SELECT pg_temp.shape(ops.gitlab_webhook(:'gl_push'::json)) - 'event' - 'delivery' AS gitlab_webhook;
SELECT set_config('request.headers', json_build_object('x-forgejo-event', 'push', 'x-forgejo-delivery', 'gt-30',
         'x-forgejo-signature', pg_temp.hmac_hex(:'gt_push', 'gitea-secret'))::text, false) IS NOT NULL AS headers_set;
SELECT pg_temp.shape(ops.gitea_webhook(:'gt_push'::json)) - 'event' - 'delivery' AS forgejo_webhook;
SELECT set_config('request.headers', json_build_object('x-event-key', 'pullrequest:created', 'x-request-uuid', '{bb-30}',
         'x-hub-signature', 'sha256=' || pg_temp.hmac_hex(:'bb_created', 'bb-secret'))::text, false) IS NOT NULL AS headers_set;
SELECT pg_temp.shape(ops.bitbucket_webhook(:'bb_created'::json)) - 'event' - 'delivery' AS bitbucket_webhook;
SELECT set_config('request.headers', '', false) IS NOT NULL AS headers_cleared;
SELECT pg_temp.try(format('SELECT ops.bitbucket_webhook(%L::json)', :'bb_created')) AS without_headers;
