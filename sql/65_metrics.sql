-- Metrics views and their Prometheus rendering.
SELECT id AS p FROM ops.projects WHERE slug = 'queue' \gset
UPDATE ops.runs SET status = 'cancelled', finished_at = now() - interval '2 days', lease_expires_at = NULL,
       started_at = CASE WHEN status = 'claimed' THEN NULL ELSE started_at END
 WHERE status IN ('queued', 'claimed', 'running') OR finished_at IS NOT NULL;
SELECT count(*) AS queued FROM (SELECT ops.queue_run(:p, 'staging', 'abcd01', 'main', '{}', 'build') FROM generate_series(1, 3)) q;
SELECT count(*) AS queued FROM (SELECT ops.queue_run(:p, 'production', 'abcd01', 'main', '{}', 'deploy')) q;
SELECT worker_id FROM ops.register_agent('metrics-worker', ARRAY['build']);
SELECT count(*) AS claimed FROM ops.claim_runs('metrics-worker', 2);
SELECT (ops.start_run(id, 'metrics-worker', attempt)).status AS started FROM ops.runs
 WHERE claimed_by = 'metrics-worker' AND status = 'claimed' ORDER BY id LIMIT 1;
SELECT (ops.finish_run(id, 'succeeded', '{}', 'metrics-worker', attempt)).status FROM ops.runs
 WHERE claimed_by = 'metrics-worker' AND status = 'running';

SELECT workflow, stage, queued, claimable, claimed, running FROM ops.metrics_queue ORDER BY workflow, stage;
SELECT worker_id, status, runs_held FROM ops.metrics_workers;
SELECT workflow, stage, finished, succeeded, failed, success_rate, p50_seconds >= 0 AS has_p50 FROM ops.metrics_runs;

-- The exposition text, with the time-dependent values masked.
SELECT regexp_replace(ops.metrics_prometheus(), '(seconds\{[^}]*\}) [0-9.e+-]+', '\1 <t>', 'g');
