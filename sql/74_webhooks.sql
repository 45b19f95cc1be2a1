-- The webhook outbox: subscriptions, deliveries written by triggers in the
-- changing transaction, the dispatcher's claim / record / recover steps
-- (called directly here), retries, dead deliveries and re-drive.
-- This suite counts rows of shared tables (backups, runs, alerts, ...), so
-- it runs in a database of its own, untouched by the other suites.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS odooops_regress_74;
CREATE DATABASE odooops_regress_74;
\c odooops_regress_74
CREATE EXTENSION odooops;
SET client_min_messages = warning;
SET timezone = 'UTC';
SELECT count(*) >= 0 AS cancelled FROM (SELECT ops.cancel_run(id) FROM ops.runs
                                        WHERE status IN ('queued', 'claimed', 'running')) x;
INSERT INTO ops.projects (slug, name, repo_full_name) VALUES ('hooks', 'Hooks', 'acme/hooks'), ('other', 'Other', NULL);
INSERT INTO ops.environments (project_id, name, stage, db_name)
SELECT id, 'staging', 'staging', slug || '_staging' FROM ops.projects WHERE slug IN ('hooks', 'other');
CREATE TEMP TABLE h AS SELECT id AS project_id FROM ops.projects WHERE slug = 'hooks';

-- bad subscriptions are refused
\set VERBOSITY terse
INSERT INTO ops.webhook_subscriptions (name, url) VALUES ('bad', 'ftp://example.com');
INSERT INTO ops.webhook_subscriptions (name, url, event_types) VALUES ('bad', 'http://x', '{run.exploded}');
INSERT INTO ops.webhook_subscriptions (name, url, format) VALUES ('bad', 'http://x', 'xml');
\set VERBOSITY default

INSERT INTO ops.webhook_subscriptions (name, url, format, event_types, project_id)
SELECT v.name, v.url, v.format, v.types::text[], CASE WHEN v.scoped THEN h.project_id END
  FROM h, (VALUES ('all-json', 'http://127.0.0.1:9/all', 'json', '{}', false),
                  ('runs-finished', 'http://127.0.0.1:9/fin', 'json', '{run.finished}', true),
                  ('slack', 'http://127.0.0.1:9/slack', 'slack', '{run.finished,alert.opened}', false),
                  ('github', 'http://127.0.0.1:9', 'github', '{}', false)) v(name, url, format, types, scoped);
INSERT INTO ops.webhook_secrets (subscription_id, secret)
SELECT id, 'secret-' || name FROM ops.webhook_subscriptions WHERE name IN ('all-json', 'github');

-- a run of project hooks: queued, claimed (no event), started, finished
SELECT (ops.queue_run(project_id, 'staging', 'abc1234', 'main', '{}', 'build', 0, 'hook-1')).status FROM h;
SELECT count(*) FROM ops.claim_runs('hook-w', 1);
SELECT (ops.start_run(id, 'hook-w', 1)).status FROM ops.runs WHERE idempotency_key = 'hook-1';
SELECT (ops.finish_run(id, 'succeeded', '{}', 'hook-w', 1)).status FROM ops.runs WHERE idempotency_key = 'hook-1';
-- a run of the other project (no repository: no GitHub status) that rolls back writes nothing
BEGIN;
SELECT (ops.queue_run(p.id, 'staging', NULL, 'main')).status FROM ops.projects p WHERE slug = 'other';
ROLLBACK;
SELECT (ops.queue_run(p.id, 'staging', NULL, 'main')).status FROM ops.projects p WHERE slug = 'other';

SELECT s.name, d.event_type, d.status, d.attempts,
       d.payload->'data'->>'status' AS run_status, d.payload->'project'->>'slug' AS project
  FROM ops.webhook_deliveries d JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id
 ORDER BY d.id;

-- backups, restores and alerts write events too
INSERT INTO ops.backups (project_id, environment_id, backup_type, status, error)
SELECT project_id, e.id, 'daily', 'failed', 'disk full' FROM h JOIN ops.environments e USING (project_id);
SELECT * FROM ops.evaluate_alerts(50, 120);
SELECT d.event_type, count(*) FROM ops.webhook_deliveries d
 WHERE d.event_type NOT LIKE 'run.%' GROUP BY 1 ORDER BY 1;

-- the dispatcher claims due deliveries (secret included) ...
SELECT id, format, secret, attempts, max_attempts
  FROM ops._claim_webhook_deliveries(3, 60000, 5) ORDER BY id;
SELECT status, count(*) FROM ops.webhook_deliveries GROUP BY 1 ORDER BY 1;
-- ... and records results: delivered, retry (with backoff), dead
CREATE TEMP TABLE claimed AS
SELECT id, row_number() OVER (ORDER BY id) AS n FROM ops.webhook_deliveries WHERE status = 'sending';
SELECT ops._record_webhook_results(jsonb_agg(jsonb_build_object(
         'id', id, 'attempt', 1, 'started_ms', 1700000000000,
         'outcome', CASE n WHEN 1 THEN 'delivered' WHEN 2 THEN 'retry' ELSE 'dead' END,
         'delay_ms', 30000, 'status_code', CASE n WHEN 1 THEN 200 WHEN 2 THEN 500 END,
         'latency_ms', 12, 'error', CASE n WHEN 1 THEN NULL WHEN 2 THEN 'HTTP 500' ELSE 'Timeout was reached' END,
         'response', 'ok'))) AS recorded
  FROM claimed;
SELECT c.n, d.status, d.attempts, d.last_status_code, d.last_error,
       d.next_attempt_at > now() + interval '29 seconds' AS backed_off
  FROM claimed c JOIN ops.webhook_deliveries d USING (id) ORDER BY c.n;
SELECT c.n, a.attempt, a.outcome, a.status_code, a.latency_ms, a.response_body
  FROM claimed c JOIN ops.webhook_delivery_attempts a ON a.delivery_id = c.id ORDER BY c.n;
-- a late result for an attempt that is no longer in flight changes nothing
SELECT ops._record_webhook_results(jsonb_build_array(jsonb_build_object(
         'id', id, 'attempt', 1, 'outcome', 'delivered', 'started_ms', 0))) AS recorded
  FROM claimed WHERE n = 2;

-- a crash leaves deliveries in 'sending': recovery puts them back, uncounted
SELECT count(*) FROM ops._claim_webhook_deliveries(2, 60000, 5);
SELECT ops._recover_webhook_deliveries(false) AS not_expired, ops._recover_webhook_deliveries(true) AS recovered;
SELECT status, count(*), max(attempts) FROM ops.webhook_deliveries GROUP BY 1 ORDER BY 1;
SELECT ops._next_webhook_due_ms() = 0 AS something_due;
-- nothing pending: no due time at all (the dispatcher sleeps), not "now"
BEGIN;
DELETE FROM ops.webhook_deliveries WHERE status = 'pending';
SELECT ops._next_webhook_due_ms() IS NULL AS nothing_due;
ROLLBACK;

-- per-host limit: a host with host_cap requests in flight gets no more until
-- one ends; another host's deliveries are claimed meanwhile, and the due
-- time leaves the full host out
BEGIN;
DELETE FROM ops.webhook_deliveries;
INSERT INTO ops.webhook_subscriptions (name, url) VALUES
  ('slow host a', 'http://Slow.example:8080/a'), ('slow host b', 'http://slow.example:8080/b'),
  ('fast host', 'https://fast.example/hook');
INSERT INTO ops.webhook_deliveries (subscription_id, event_type, payload)
SELECT s.id, 'run.queued', '{}' FROM ops.webhook_subscriptions s, generate_series(1, 3)
 WHERE s.name IN ('slow host a', 'slow host b', 'fast host') ORDER BY s.name <> 'slow host a', s.id;
SELECT ops._webhook_host(url) AS host, count(*) FROM ops._claim_webhook_deliveries(4, 60000, 5, 2)
 GROUP BY 1 ORDER BY 1;
SELECT host, n FROM ops._webhook_hosts_sending() ORDER BY 1;
SELECT ops._webhook_host(url) AS host, count(*) FROM ops._claim_webhook_deliveries(10, 60000, 5, 2)
 GROUP BY 1 ORDER BY 1;
SELECT ops._next_webhook_due_ms(2) IS NULL AS only_full_hosts_due, ops._next_webhook_due_ms() = 0 AS due_without_limit;
SELECT count(*) AS unlimited FROM ops._claim_webhook_deliveries(10, 60000, 5);
ROLLBACK;

-- dead deliveries are visible and can be re-driven
SELECT s.name, d.last_error FROM ops.webhook_deliveries d
  JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id WHERE d.status = 'dead';
SELECT ops.redrive_webhook_deliveries() AS redriven;
SELECT status, attempts FROM ops.webhook_deliveries d JOIN claimed c USING (id) WHERE c.n = 3;

-- history TTLs
UPDATE ops.webhook_deliveries SET updated_at = now() - interval '40 days' WHERE status = 'delivered';
UPDATE ops.webhook_delivery_attempts SET recorded_at = now() - interval '10 days';
SELECT ops.prune_webhook_history(7 * 86400, 30 * 86400) AS pruned;
SELECT count(*) FILTER (WHERE status = 'delivered') AS delivered_left FROM ops.webhook_deliveries;
SELECT count(*) FILTER (WHERE response_body IS NOT NULL) AS bodies_left FROM ops.webhook_delivery_attempts;

-- an inactive subscription receives nothing new
UPDATE ops.webhook_subscriptions SET active = false;
SELECT ops.enqueue_webhook_event('run.queued', NULL, NULL, '{}') AS written;
