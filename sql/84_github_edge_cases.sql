-- GitHub ingest edge cases, driven by GitHub's own example payloads (the npm
-- package @octokit/webhooks-examples, installed by tests/harness/npm_deps.sh):
-- organization-level pings, reopened pull requests, branches deleted and
-- pushed again, over-long and non-ASCII branch names, slug and database-name
-- collisions. Payloads are adapted with jsonb_set and signed with pgcrypto.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
RESET client_min_messages;

-- Every example payload, by event name and position.
\set examples `cat tests/harness/node_modules/@octokit/webhooks-examples/api.github.com/index.json`
CREATE TEMP TABLE gh_example AS
  SELECT ev ->> 'name' AS event, x.n, x.payload
    FROM jsonb_array_elements(:'examples'::jsonb) ev,
         jsonb_array_elements(ev -> 'examples') WITH ORDINALITY AS x(payload, n);
\unset examples
SELECT event, count(*) > 0 AS has_examples FROM gh_example
 WHERE event IN ('ping', 'push', 'pull_request', 'organization') GROUP BY event ORDER BY event;

-- The first example of `event` that contains `filter`.
CREATE FUNCTION pg_temp.example(event text, filter jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT g.payload FROM gh_example g WHERE g.event = example.event AND g.payload @> filter ORDER BY g.n LIMIT 1
$$;
CREATE FUNCTION pg_temp.sign(body text, secret text) RETURNS text LANGUAGE sql AS $$
  SELECT 'sha256=' || encode(hmac(convert_to(body, 'UTF8'), convert_to(secret, 'UTF8'), 'sha256'), 'hex')
$$;
-- Delivers `payload` as GitHub does: the body's exact bytes, signed.
CREATE FUNCTION pg_temp.hook(event text, delivery text, payload jsonb, secret text DEFAULT 'edge-secret')
RETURNS jsonb LANGUAGE sql AS $$
  SELECT ops.ingest_github(event, delivery, pg_temp.sign(payload::text, secret), payload::text)
$$;
-- The same as text for regress.err, which shows the refusal.
CREATE FUNCTION pg_temp.hook_sql(event text, delivery text, payload jsonb, secret text DEFAULT 'edge-secret')
RETURNS text LANGUAGE sql AS $$
  SELECT format('SELECT pg_temp.hook(%L, %L, %L::jsonb, %L)', event, delivery, payload, secret)
$$;
-- GitHub's push example (a branch push) moved to `repo` and `branch`.
CREATE FUNCTION pg_temp.push(repo text, branch text, after text, deleted boolean DEFAULT false)
RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_set(jsonb_set(jsonb_set(jsonb_set(jsonb_set(
           pg_temp.example('push', '{"ref": "refs/heads/master", "deleted": false}'),
           '{repository,full_name}', to_jsonb(repo)), '{ref}', to_jsonb('refs/heads/' || branch)),
           '{after}', to_jsonb(after)), '{deleted}', to_jsonb(deleted)),
           '{commits}', CASE WHEN deleted THEN '[]'::jsonb ELSE pg_temp.example('push', '{"ref": "refs/heads/master"}') -> 'commits' END)
$$;
-- GitHub's pull_request example of `action` (a repository webhook's) for
-- pull request `number` of `repo`, whose head is `head_ref` at `head_sha`.
CREATE FUNCTION pg_temp.pr(repo text, action text, number int, head_ref text, head_sha text)
RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_set(jsonb_set(jsonb_set(jsonb_set(jsonb_set(
           (SELECT g.payload FROM gh_example g
             WHERE g.event = 'pull_request' AND g.payload ->> 'action' = action AND NOT g.payload ? 'organization'
             ORDER BY g.n LIMIT 1),
           '{repository,full_name}', to_jsonb(repo)), '{number}', to_jsonb(number)),
           '{pull_request,number}', to_jsonb(number)), '{pull_request,head,ref}', to_jsonb(head_ref)),
           '{pull_request,head,sha}', to_jsonb(head_sha))
$$;
-- An answer without what varies between runs (delivery and run ids).
CREATE FUNCTION pg_temp.shape(answer jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT (answer - 'delivery') || jsonb_build_object('queued',
           coalesce((SELECT jsonb_agg(q - 'run_id') FROM jsonb_array_elements(answer -> 'queued') q), '[]'))
$$;
-- A worker runs the newest queued destroy run of `env` to `outcome`
-- (succeeded or failed), or only claims it (outcome 'claimed'). Its priority
-- puts it first in the queue.
CREATE FUNCTION pg_temp.run_destroy(project text, env text, outcome text DEFAULT 'succeeded')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  rid bigint;
  claimed bigint;
BEGIN
  SELECT r.id INTO rid FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id
    JOIN ops.projects p ON p.id = e.project_id
   WHERE p.slug = project AND e.name = env AND r.workflow = 'destroy' AND r.status = 'queued'
   ORDER BY r.id DESC LIMIT 1;
  IF rid IS NULL THEN
    RETURN 'no queued destroy run';
  END IF;
  UPDATE ops.runs SET priority = 1000 WHERE id = rid;
  SELECT c.id INTO claimed FROM ops.claim_next_run('w-edge-84') c;
  IF claimed IS DISTINCT FROM rid THEN
    RETURN 'claimed another run';
  END IF;
  IF outcome = 'claimed' THEN
    RETURN 'claimed';
  END IF;
  PERFORM ops.start_run(rid, 'w-edge-84', 1);
  PERFORM ops.finish_run(rid, outcome, jsonb_build_object('error', 'disk on fire'), 'w-edge-84', 1);
  RETURN (SELECT e.status FROM ops.environments e JOIN ops.projects p ON p.id = e.project_id
           WHERE p.slug = project AND e.name = env);
END $$;

INSERT INTO ops.projects (slug, name, repo_full_name, production_branch)
VALUES ('octo-edge', 'Octo edge cases', 'edge-octo/Hello-World', 'master') RETURNING id AS p \gset
INSERT INTO ops.environments (project_id, name, stage, branch_pattern, db_name) VALUES
  (:p, 'production', 'production', 'master', 'octo_edge_prod'),
  (:p, 'development', 'development', '**', 'octo_edge_dev_template');
SELECT ops.set_project_secret(:p, 'github_webhook_secret', 'edge-secret') IS NOT NULL AS secret_set;
-- Two more projects of the same organization, one of them without a secret
-- yet; its slug starts like the first project's databases.
INSERT INTO ops.projects (slug, name, repo_full_name, production_branch)
VALUES ('octo-edge-feature', 'Octo edge cases 2', 'edge-octo/second', 'main') RETURNING id AS p2 \gset
INSERT INTO ops.environments (project_id, name, stage, branch_pattern, db_name) VALUES
  (:p2, 'development', 'development', '*', 'octo_edge_feature_dev_template');
SELECT ops.set_project_secret(:p2, 'github_webhook_secret', 'edge-secret') IS NOT NULL AS secret_set;
INSERT INTO ops.projects (slug, name, repo_full_name) VALUES
  ('octo-edge-unset', 'No secret', 'edge-octo/third'),
  ('octo-bare', 'Organization without secrets', 'bare-octo/first');

-- The real payloads still do what they did: a repository ping, a push of
-- master to production.
SELECT pg_temp.shape(pg_temp.hook('ping', 'e84-ping-repo',
         jsonb_set(pg_temp.example('ping', '{"hook": {"type": "Repository"}}'),
                   '{repository,full_name}', '"Edge-Octo/hello-world"')));
SELECT pg_temp.shape(pg_temp.hook('push', 'e84-master', pg_temp.push('edge-octo/Hello-World', 'master', repeat('a', 40))));

------------------------------------------------------------------------------
-- 1. An organization webhook's ping carries no repository. It is answered
-- once signed with the secret of a project of that organization, and
-- touches nothing.
SELECT count(*) AS deliveries_before FROM ops.ingest_deliveries \gset
SELECT count(*) AS envs_before FROM ops.environments \gset
SELECT pg_temp.example('ping', '{"hook": {"type": "Organization"}}') ? 'repository' AS org_ping_has_repository;
SELECT pg_temp.shape(pg_temp.hook('ping', 'e84-org-ping',
         jsonb_set(pg_temp.example('ping', '{"hook": {"type": "Organization"}}'), '{organization,login}', '"Edge-Octo"')));
-- Other organization events without a repository are acknowledged.
SELECT pg_temp.shape(pg_temp.hook('organization', 'e84-org-member',
         jsonb_set(pg_temp.example('organization', '{"action": "member_added"}'), '{organization,login}', '"edge-octo"')));
-- Refused: a wrong secret, an organization without projects, one whose
-- projects have no secret, no signature, a payload with neither repository
-- nor organization.
SELECT regress.err(pg_temp.hook_sql('ping', 'e84-org-ping-bad',
         jsonb_set(pg_temp.example('ping', '{"hook": {"type": "Organization"}}'), '{organization,login}', '"edge-octo"'),
         'not-the-secret'));
SELECT regress.err(pg_temp.hook_sql('ping', 'e84-org-ping-other',
         jsonb_set(pg_temp.example('ping', '{"hook": {"type": "Organization"}}'), '{organization,login}', '"nobody-84"')));
SELECT regress.err(pg_temp.hook_sql('ping', 'e84-org-ping-bare',
         jsonb_set(pg_temp.example('ping', '{"hook": {"type": "Organization"}}'), '{organization,login}', '"bare-octo"')));
SELECT regress.err(format($$SELECT ops.ingest_github('ping', 'e84-org-ping-unsigned', NULL, %L)$$,
         jsonb_set(pg_temp.example('ping', '{"hook": {"type": "Organization"}}'), '{organization,login}', '"edge-octo"')::text));
SELECT regress.err(pg_temp.hook_sql('ping', 'e84-org-ping-none',
         pg_temp.example('ping', '{"hook": {"type": "Organization"}}') - 'organization'));
SELECT (SELECT count(*) FROM ops.ingest_deliveries) = :deliveries_before AS deliveries_unchanged,
       (SELECT count(*) FROM ops.environments) = :envs_before AS environments_unchanged;

------------------------------------------------------------------------------
-- 2. A reopened pull request brings its preview environment back and
-- deploys it again.
SELECT pg_temp.shape(pg_temp.hook('pull_request', 'e84-pr2-opened',
         pg_temp.pr('edge-octo/Hello-World', 'opened', 2, 'changes', repeat('b', 40))));
SELECT pg_temp.shape(pg_temp.hook('pull_request', 'e84-pr2-closed',
         pg_temp.pr('edge-octo/Hello-World', 'closed', 2, 'changes', repeat('b', 40))));
SELECT pg_temp.run_destroy('octo-edge', 'pr-2');
SELECT pg_temp.shape(pg_temp.hook('pull_request', 'e84-pr2-reopened',
         pg_temp.pr('edge-octo/Hello-World', 'reopened', 2, 'changes', repeat('c', 40))));
SELECT name, stage, pull_request, status, destroyed_at IS NULL AS not_destroyed, db_name,
       expires_at BETWEEN now() + interval '167 hours' AND now() + interval '169 hours' AS ttl_7_days
  FROM ops.environments WHERE project_id = :p AND pull_request = 2;
SELECT r.workflow, r.status, r.git_sha FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id
 WHERE e.project_id = :p AND e.name = 'pr-2' ORDER BY r.id;
-- Reopened before its destroy run was claimed: the destroy is cancelled and
-- the environment stays.
SELECT pg_temp.shape(pg_temp.hook('pull_request', 'e84-pr3-opened',
         pg_temp.pr('edge-octo/Hello-World', 'opened', 3, 'more', repeat('d', 40))));
SELECT pg_temp.shape(pg_temp.hook('pull_request', 'e84-pr3-closed',
         pg_temp.pr('edge-octo/Hello-World', 'closed', 3, 'more', repeat('d', 40))));
SELECT pg_temp.shape(pg_temp.hook('pull_request', 'e84-pr3-reopened',
         pg_temp.pr('edge-octo/Hello-World', 'reopened', 3, 'more', repeat('d', 40))));
SELECT name, status FROM ops.environments WHERE project_id = :p AND pull_request = 3;
SELECT r.workflow, r.status, r.result ->> 'reason' AS reason FROM ops.runs r
  JOIN ops.environments e ON e.id = r.environment_id WHERE e.project_id = :p AND e.name = 'pr-3' ORDER BY r.id;
-- Reopened while its destroy run is being carried out: refused, nothing
-- changes, and the same delivery succeeds once the destroy is over.
SELECT pg_temp.shape(pg_temp.hook('pull_request', 'e84-pr4-opened',
         pg_temp.pr('edge-octo/Hello-World', 'opened', 4, 'other', repeat('e', 40))));
SELECT pg_temp.shape(pg_temp.hook('pull_request', 'e84-pr4-closed',
         pg_temp.pr('edge-octo/Hello-World', 'closed', 4, 'other', repeat('e', 40))));
SELECT pg_temp.run_destroy('octo-edge', 'pr-4', 'claimed');
SELECT count(*) AS runs_before FROM ops.runs \gset
SELECT count(*) AS deliveries_before FROM ops.ingest_deliveries \gset
SELECT regress.err(pg_temp.hook_sql('pull_request', 'e84-pr4-reopened',
         pg_temp.pr('edge-octo/Hello-World', 'reopened', 4, 'other', repeat('f', 40))));
SELECT (SELECT count(*) FROM ops.runs) = :runs_before AS runs_unchanged,
       (SELECT count(*) FROM ops.ingest_deliveries) = :deliveries_before AS deliveries_unchanged,
       (SELECT status FROM ops.environments WHERE project_id = :p AND name = 'pr-4') AS pr_4;
SELECT id AS held FROM ops.runs r WHERE r.project_id = :p AND r.status = 'claimed' \gset
SELECT status FROM ops.start_run(:held, 'w-edge-84', 1);
SELECT status FROM ops.finish_run(:held, 'succeeded', '{}', 'w-edge-84', 1);
SELECT pg_temp.shape(pg_temp.hook('pull_request', 'e84-pr4-reopened',
         pg_temp.pr('edge-octo/Hello-World', 'reopened', 4, 'other', repeat('f', 40))));

------------------------------------------------------------------------------
-- 3. A branch deleted and pushed again gets its environment back: the same
-- name and database, deployed again.
SELECT pg_temp.shape(pg_temp.hook('push', 'e84-again-1', pg_temp.push('edge-octo/Hello-World', 'feature/again', repeat('1', 40))));
SELECT pg_temp.shape(pg_temp.hook('push', 'e84-again-2', pg_temp.push('edge-octo/Hello-World', 'feature/again', repeat('0', 40), true)));
-- pushed again before the destroy run started: the destroy is cancelled
SELECT pg_temp.shape(pg_temp.hook('push', 'e84-again-3', pg_temp.push('edge-octo/Hello-World', 'feature/again', repeat('2', 40))));
SELECT name, status FROM ops.environments WHERE project_id = :p AND branch = 'feature/again';
-- deleted, destroyed, pushed again
SELECT pg_temp.shape(pg_temp.hook('push', 'e84-again-4', pg_temp.push('edge-octo/Hello-World', 'feature/again', repeat('0', 40), true)));
SELECT pg_temp.run_destroy('octo-edge', 'dev-feature-again');
SELECT pg_temp.shape(pg_temp.hook('push', 'e84-again-5', pg_temp.push('edge-octo/Hello-World', 'feature/again', repeat('3', 40))));
SELECT name, status, db_name, destroyed_at IS NULL AS not_destroyed,
       expires_at BETWEEN now() + interval '71 hours' AND now() + interval '73 hours' AS ttl_3_days
  FROM ops.environments WHERE project_id = :p AND branch = 'feature/again';
SELECT r.workflow, r.status, r.git_sha FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id
 WHERE e.project_id = :p AND e.branch = 'feature/again' ORDER BY r.id;
-- deleted, the destroy run failed (the environment stays destroying),
-- pushed again: active again
SELECT pg_temp.hook('push', 'e84-stuck-1', pg_temp.push('edge-octo/Hello-World', 'feature/stuck', repeat('1', 40))) -> 'created_environments' AS created;
SELECT pg_temp.hook('push', 'e84-stuck-2', pg_temp.push('edge-octo/Hello-World', 'feature/stuck', repeat('0', 40), true)) -> 'queued' -> 0 ->> 'workflow' AS workflow;
SELECT pg_temp.run_destroy('octo-edge', 'dev-feature-stuck', 'failed');
SELECT pg_temp.shape(pg_temp.hook('push', 'e84-stuck-3', pg_temp.push('edge-octo/Hello-World', 'feature/stuck', repeat('2', 40))));
SELECT r.workflow, r.status FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id
 WHERE e.project_id = :p AND e.branch = 'feature/stuck' ORDER BY r.id;
-- a deletion of a branch that never had an environment is still ignored
SELECT pg_temp.shape(pg_temp.hook('push', 'e84-again-6', pg_temp.push('edge-octo/Hello-World', 'feature/never', repeat('0', 40), true)));

------------------------------------------------------------------------------
-- 4. Branch names over 255 characters are refused with OD005 and change
-- nothing; 255 characters are accepted, with a bounded, hashed name.
SELECT count(*) AS runs_before FROM ops.runs \gset
SELECT count(*) AS deliveries_before FROM ops.ingest_deliveries \gset
SELECT count(*) AS envs_before FROM ops.environments \gset
SELECT regress.err(pg_temp.hook_sql('push', 'e84-long-1',
         pg_temp.push('edge-octo/Hello-World', 'feature/' || repeat('x', 292), repeat('4', 40))));
SELECT regress.err(pg_temp.hook_sql('push', 'e84-long-2',
         pg_temp.push('edge-octo/Hello-World', 'feature/' || repeat('x', 292), repeat('0', 40), true)));
SELECT regress.err(pg_temp.hook_sql('pull_request', 'e84-long-3',
         pg_temp.pr('edge-octo/Hello-World', 'opened', 5, 'feature/' || repeat('x', 292), repeat('4', 40))));
SELECT (SELECT count(*) FROM ops.runs) = :runs_before AS runs_unchanged,
       (SELECT count(*) FROM ops.ingest_deliveries) = :deliveries_before AS deliveries_unchanged,
       (SELECT count(*) FROM ops.environments) = :envs_before AS environments_unchanged;
SELECT pg_temp.shape(pg_temp.hook('push', 'e84-long-4',
         pg_temp.push('edge-octo/Hello-World', 'feature/' || repeat('long-name-', 24) || 'abcdefg', repeat('4', 40))));
SELECT length(branch) AS branch_length, name, length(name) AS name_length, db_name, length(db_name) AS db_name_length,
       name = 'dev-feature-long-name-long-name-lon-'
              || left(encode(sha256(convert_to(branch, 'UTF8')), 'hex'), 8) AS hash_of_full_branch
  FROM ops.environments WHERE project_id = :p AND branch LIKE 'feature/long-name-%';

------------------------------------------------------------------------------
-- 5. Non-ASCII branch names are transliterated; names that collide with
-- another branch's environment get a hash of the full branch name.
SELECT b AS branch, ops.branch_slug(b) AS slug
  FROM unnest(ARRAY['feature/été', 'feature/ÉTÉ', U&'feature/e\0301te\0301', 'feature/Straße', 'feature/Œuvre-Łódź',
                    'feature/日本', 'fix/🚀-rocket']) b;
SELECT b AS branch, pg_temp.shape(pg_temp.hook('push', 'e84-utf-' || n, pg_temp.push('edge-octo/Hello-World', b, repeat('5', 40)))) -> 'created_environments' AS created
  FROM unnest(ARRAY['feature/été', 'feature/t', 'feature/ete', 'feature/ÉTÉ', U&'feature/e\0301te\0301',
                    'feature/Straße', 'feature/日本']) WITH ORDINALITY AS x(b, n) ORDER BY n;
SELECT branch, name, db_name,
       name = 'dev-feature-ete-' || left(encode(sha256(convert_to(branch, 'UTF8')), 'hex'), 8) AS hashed
  FROM ops.environments WHERE project_id = :p AND branch ~ '^feature/(t|ete|été|ÉTÉ|e.te.|Straße|日本)$' ORDER BY id;
-- The same branch always finds its environment again.
SELECT b AS branch, pg_temp.hook('push', 'e84-utf-again-' || n, pg_temp.push('edge-octo/Hello-World', b, repeat('6', 40))) -> 'queued' -> 0 ->> 'environment' AS environment
  FROM unnest(ARRAY['feature/ete', 'feature/été', U&'feature/e\0301te\0301']) WITH ORDINALITY AS x(b, n) ORDER BY n;
-- Deleted, destroyed and pushed again: still the hashed name it had.
SELECT pg_temp.hook('push', 'e84-utf-del', pg_temp.push('edge-octo/Hello-World', 'feature/ete', repeat('0', 40), true)) -> 'queued' -> 0 ->> 'workflow' AS workflow;
SELECT pg_temp.run_destroy('octo-edge', (SELECT name FROM ops.environments WHERE project_id = :p AND branch = 'feature/ete'));
SELECT pg_temp.hook('push', 'e84-utf-back', pg_temp.push('edge-octo/Hello-World', 'feature/ete', repeat('7', 40))) -> 'created_environments'
       = jsonb_build_array('dev-feature-ete-' || left(encode(sha256(convert_to('feature/ete', 'UTF8')), 'hex'), 8)) AS same_name;
SELECT count(*) FILTER (WHERE branch = 'feature/ete') AS feature_ete_rows,
       count(DISTINCT name) = count(*) AS names_distinct
  FROM ops.environments WHERE project_id = :p;

------------------------------------------------------------------------------
-- 6. Database names stay valid, bounded and distinct: a development branch
-- named like a pull request, and a project whose slug continues another's.
SELECT pg_temp.shape(pg_temp.hook('push', 'e84-db-1', pg_temp.push('edge-octo/Hello-World', 'pr/6', repeat('8', 40))));
SELECT pg_temp.shape(pg_temp.hook('pull_request', 'e84-db-2', pg_temp.pr('edge-octo/Hello-World', 'opened', 6, 'six', repeat('8', 40))));
SELECT pg_temp.shape(pg_temp.hook('push', 'e84-db-3', pg_temp.push('edge-octo/Hello-World', 'feature/x', repeat('9', 40))));
SELECT pg_temp.shape(pg_temp.hook('push', 'e84-db-4', pg_temp.push('edge-octo/second', 'x', repeat('9', 40))));
SELECT p.slug AS project, e.name, e.db_name
  FROM ops.environments e JOIN ops.projects p ON p.id = e.project_id
 WHERE (p.id = :p AND e.name IN ('dev-pr-6', 'pr-6', 'dev-feature-x')) OR (p.id = :p2 AND e.name = 'dev-x')
 ORDER BY e.id;
SELECT count(*) FILTER (WHERE db_name !~ '^[a-z0-9_]{1,63}$') AS invalid_db_names,
       count(DISTINCT db_name) = count(*) AS db_names_distinct,
       count(*) FILTER (WHERE name !~ '^[a-z0-9][a-z0-9-]{0,62}$') AS invalid_names
  FROM ops.environments WHERE project_id IN (:p, :p2) AND status <> 'destroyed';
