-- GitHub ingest with real-shaped payloads: signatures (valid, invalid,
-- missing), redeliveries, branch mapping, development and preview
-- environments, branch deletion, oversize and malformed bodies.
-- Signatures are computed independently with pgcrypto.
\set SHOW_CONTEXT never
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE FUNCTION pg_temp.sign(body text) RETURNS text LANGUAGE sql AS $$
  SELECT 'sha256=' || encode(hmac(convert_to(body, 'UTF8'), convert_to('hook-secret', 'UTF8'), 'sha256'), 'hex')
$$;
-- A push payload shaped like GitHub's (trimmed to the fields that matter).
CREATE FUNCTION pg_temp.push(ref text, after text, deleted boolean DEFAULT false) RETURNS text LANGUAGE sql AS $$
  SELECT jsonb_build_object(
    'ref', ref, 'before', repeat('0', 40), 'after', after, 'created', false, 'deleted', deleted,
    'forced', false, 'compare', 'https://github.com/acme/shop/compare/x...y',
    'commits', CASE WHEN deleted THEN '[]'::jsonb ELSE jsonb_build_array(jsonb_build_object(
       'id', after, 'message', 'Fix invoice rounding', 'author', jsonb_build_object('name', 'Dev', 'email', 'dev@example.com'))) END,
    'repository', jsonb_build_object('id', 1296269, 'name', 'shop', 'full_name', 'acme/shop',
                                     'private', true, 'default_branch', 'main'),
    'pusher', jsonb_build_object('name', 'dev', 'email', 'dev@example.com'),
    'sender', jsonb_build_object('login', 'dev', 'id', 1))::text
$$;
CREATE FUNCTION pg_temp.pull_request(action text, number int, head_ref text, head_sha text) RETURNS text LANGUAGE sql AS $$
  SELECT jsonb_build_object(
    'action', action, 'number', number,
    'pull_request', jsonb_build_object('number', number, 'state', CASE WHEN action = 'closed' THEN 'closed' ELSE 'open' END,
       'title', 'Add loyalty points', 'head', jsonb_build_object('ref', head_ref, 'sha', head_sha),
       'base', jsonb_build_object('ref', 'main')),
    'repository', jsonb_build_object('id', 1296269, 'full_name', 'acme/shop'),
    'sender', jsonb_build_object('login', 'dev'))::text
$$;

-- An answer without the parts that vary between runs (delivery, run ids).
CREATE FUNCTION pg_temp.shape(answer jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT (answer - 'delivery') || jsonb_build_object('queued',
           coalesce((SELECT jsonb_agg(q - 'run_id') FROM jsonb_array_elements(answer -> 'queued') q), '[]'))
$$;

INSERT INTO ops.projects (slug, name, repo_full_name, production_branch)
VALUES ('acme-shop', 'Acme shop', 'acme/shop', 'main') RETURNING id AS p \gset
INSERT INTO ops.environments (project_id, name, stage, branch_pattern, db_name) VALUES
  (:p, 'production', 'production', 'main', 'acme_prod'),
  (:p, 'staging', 'staging', 'staging', 'acme_staging'),
  (:p, 'development', 'development', 'feature/*', 'acme_dev_template');
SELECT ops.set_project_secret(:p, 'github_webhook_secret', 'hook-secret');

-- ping
SELECT pg_temp.shape(ops.ingest_github('ping', 'd-ping', pg_temp.sign(b), b))
  FROM (SELECT '{"zen": "Keep it logically awesome.", "hook_id": 1, "repository": {"full_name": "acme/shop"}}'::text AS b) x;

-- push to main deploys production; to staging deploys staging
SELECT pg_temp.shape(ops.ingest_github('push', 'd-1', pg_temp.sign(b), b))
  FROM (SELECT pg_temp.push('refs/heads/main', repeat('a', 40)) AS b) x;
SELECT pg_temp.shape(ops.ingest_github('push', 'd-2', pg_temp.sign(b), b)) -> 'queued'
  FROM (SELECT pg_temp.push('refs/heads/staging', repeat('b', 40)) AS b) x;
-- a new feature branch gets its own development environment, with a TTL
SELECT pg_temp.shape(ops.ingest_github('push', 'd-3', pg_temp.sign(b), b))
  FROM (SELECT pg_temp.push('refs/heads/feature/Loyalty-Points', repeat('c', 40)) AS b) x;
SELECT name, stage, branch, db_name, expires_at BETWEEN now() + interval '71 hours' AND now() + interval '73 hours' AS ttl_3_days
  FROM ops.environments WHERE project_id = :p AND branch IS NOT NULL;
-- a second push to it reuses the environment
SELECT ops.ingest_github('push', 'd-4', pg_temp.sign(b), b) -> 'created_environments' AS created
  FROM (SELECT pg_temp.push('refs/heads/feature/Loyalty-Points', repeat('d', 40)) AS b) x;
-- unmapped branches and tags are acknowledged and ignored
SELECT ops.ingest_github('push', 'd-5', pg_temp.sign(b), b) ->> 'ignored'
  FROM (SELECT pg_temp.push('refs/heads/experiments/x', repeat('e', 40)) AS b) x;
SELECT ops.ingest_github('push', 'd-6', pg_temp.sign(b), b) ->> 'ignored'
  FROM (SELECT pg_temp.push('refs/tags/v1.0', repeat('e', 40)) AS b) x;

SELECT e.name, r.workflow, r.git_sha, r.git_ref, r.status, r.idempotency_key, r.metadata ->> 'source' AS source
  FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id
 WHERE r.project_id = :p ORDER BY r.id;

-- A redelivery returns the first answer and queues nothing new.
SELECT count(*) AS runs_before FROM ops.runs WHERE project_id = :p \gset
SELECT (ops.ingest_github('push', 'd-1', pg_temp.sign(b), b) ->> 'duplicate') AS duplicate
  FROM (SELECT pg_temp.push('refs/heads/main', repeat('a', 40)) AS b) x;
SELECT count(*) = :runs_before AS nothing_new FROM ops.runs WHERE project_id = :p;

-- Deleting the branch tears its development environment down.
SELECT ops.ingest_github('push', 'd-7', pg_temp.sign(b), b) -> 'queued' -> 0 ->> 'workflow' AS workflow
  FROM (SELECT pg_temp.push('refs/heads/feature/Loyalty-Points', repeat('0', 40), true) AS b) x;
SELECT name, status FROM ops.environments WHERE project_id = :p AND branch IS NOT NULL;

-- Pull requests: opened → preview environment and deploy; closed → destroy.
SELECT pg_temp.shape(ops.ingest_github('pull_request', 'd-8', pg_temp.sign(b), b))
  FROM (SELECT pg_temp.pull_request('opened', 42, 'feature/points', repeat('f', 40)) AS b) x;
SELECT ops.ingest_github('pull_request', 'd-9', pg_temp.sign(b), b) -> 'created_environments' AS created
  FROM (SELECT pg_temp.pull_request('synchronize', 42, 'feature/points', repeat('1', 40)) AS b) x;
SELECT ops.ingest_github('pull_request', 'd-10', pg_temp.sign(b), b) -> 'queued' -> 0 ->> 'workflow' AS workflow
  FROM (SELECT pg_temp.pull_request('closed', 42, 'feature/points', repeat('1', 40)) AS b) x;
SELECT name, stage, pull_request, status FROM ops.environments WHERE project_id = :p AND pull_request IS NOT NULL;
-- The destroy run, once it succeeds, marks the environment destroyed.
SELECT id AS destroy_run FROM ops.runs WHERE project_id = :p AND workflow = 'destroy' ORDER BY id DESC LIMIT 1 \gset
-- Earlier suites leave queued runs of other projects (one of priority 10): cancel them all.
UPDATE ops.runs SET status = 'cancelled', finished_at = now() WHERE status = 'queued' AND id <> :destroy_run;
SELECT id = :destroy_run AS claimed FROM ops.claim_next_run('w-ingest');
SELECT status FROM ops.start_run(:destroy_run, 'w-ingest', 1);
SELECT status FROM ops.finish_run(:destroy_run, 'succeeded', '{}', 'w-ingest', 1);
SELECT name, status, destroyed_at IS NOT NULL AS destroyed FROM ops.environments WHERE name = 'pr-42';

-- Development and preview environments past their TTL are destroyed.
SELECT ops.ingest_github('push', 'd-ttl', pg_temp.sign(b), b) -> 'created_environments' AS created
  FROM (SELECT pg_temp.push('refs/heads/feature/short-lived', repeat('9', 40)) AS b) x;
SELECT ops.expire_environments() AS expired_now;
UPDATE ops.environments SET expires_at = now() - interval '1 minute' WHERE branch = 'feature/short-lived';
SELECT ops.expire_environments() AS expired_later;
SELECT name, status FROM ops.environments WHERE branch = 'feature/short-lived';
SELECT r.workflow, r.metadata ->> 'reason' AS reason FROM ops.runs r
  JOIN ops.environments e ON e.id = r.environment_id WHERE e.branch = 'feature/short-lived' ORDER BY r.id;

-- Refusals change nothing.
SELECT count(*) AS runs_before FROM ops.runs \gset
SELECT count(*) AS deliveries_before FROM ops.ingest_deliveries \gset
SELECT regress.err(q) FROM (VALUES
  ($$SELECT ops.ingest_github('push', 'x-1', 'sha256=' || repeat('0', 64), pg_temp.push('refs/heads/main', repeat('a', 40)))$$),
  ($$SELECT ops.ingest_github('push', 'x-2', NULL, pg_temp.push('refs/heads/main', repeat('a', 40)))$$),
  ($$SELECT ops.ingest_github('push', 'x-3', pg_temp.sign(pg_temp.push('refs/heads/main', repeat('a', 40))),
                              pg_temp.push('refs/heads/main', repeat('a', 40)) || ' ')$$),
  ($$SELECT ops.ingest_github('push', 'x-4', pg_temp.sign('{"repository": {"full_name": "evil/repo"}}'),
                              '{"repository": {"full_name": "evil/repo"}}')$$),
  ($$SELECT ops.ingest_github('push', 'x-5', pg_temp.sign('{not json'), '{not json')$$),
  ($$SELECT ops.ingest_github('push', 'x-6', 'sha256=00', repeat('x', 3000000))$$),
  ($$SELECT ops.ingest_github('push', NULL, 'sha256=00', '{}')$$),
  ($$SELECT ops.ingest_github(NULL, 'x-7', 'sha256=00', '{}')$$),
  ($$SELECT ops.ingest_github('push', 'x-8', 'sha256=00', '[1, 2]')$$)
) AS t(q);
SELECT (SELECT count(*) FROM ops.runs) = :runs_before AS runs_unchanged,
       (SELECT count(*) FROM ops.ingest_deliveries) = :deliveries_before AS deliveries_unchanged;

-- Rate limit per project.
UPDATE ops.projects SET settings = '{"ingest_per_minute": 10}' WHERE id = :p;
SELECT regress.err(format($$SELECT ops.ingest_github('ping', 'd-rate', %L, %L)$$, pg_temp.sign(b), b))
  FROM (SELECT '{"zen": "x", "repository": {"full_name": "acme/shop"}}'::text AS b) x;

-- The PostgREST form reads the headers from request.headers.
UPDATE ops.projects SET settings = '{}' WHERE id = :p;
BEGIN;
SELECT set_config('request.headers', json_build_object('x-github-event', 'ping', 'x-github-delivery', 'd-rest',
                  'x-hub-signature-256', pg_temp.sign('{"zen": "rest", "repository": {"full_name": "acme/shop"}}'))::text, true) IS NOT NULL AS headers;
SELECT ops.github_webhook('{"zen": "rest", "repository": {"full_name": "acme/shop"}}'::json) ->> 'pong' AS pong;
COMMIT;
