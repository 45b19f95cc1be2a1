-- Operational metrics: queue depth, worker utilisation, success rates and
-- duration percentiles by workflow and stage, and the same in Prometheus'
-- text format for a scraper (e.g. through PostgREST: GET /rpc/metrics_prometheus
-- with Accept: text/plain). For platform administrators.

CREATE VIEW ops.metrics_queue AS
  SELECT r.workflow, e.stage,
         count(*) FILTER (WHERE r.status = 'queued') AS queued,
         count(*) FILTER (WHERE r.status = 'queued' AND r.available_at <= now()) AS claimable,
         count(*) FILTER (WHERE r.status = 'claimed') AS claimed,
         count(*) FILTER (WHERE r.status = 'running') AS running,
         coalesce(extract(epoch FROM now() - min(r.created_at) FILTER (WHERE r.status = 'queued')), 0)
           AS oldest_queued_seconds
    FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id
   WHERE r.status IN ('queued', 'claimed', 'running')
   GROUP BY r.workflow, e.stage;
COMMENT ON VIEW ops.metrics_queue IS 'Runs waiting or held, by workflow and stage';

CREATE VIEW ops.metrics_workers AS
  SELECT a.worker_id, a.status, a.kinds,
         extract(epoch FROM now() - a.last_heartbeat_at) AS seconds_since_heartbeat,
         (SELECT count(*) FROM ops.runs r
           WHERE r.claimed_by = a.worker_id AND r.status IN ('claimed', 'running')) AS runs_held
    FROM ops.agents a;
COMMENT ON VIEW ops.metrics_workers IS 'Registered workers: liveness and the runs they hold';

-- Finished runs of the last 24 hours.
CREATE VIEW ops.metrics_runs AS
  SELECT r.workflow, e.stage,
         count(*) AS finished,
         count(*) FILTER (WHERE r.status = 'succeeded') AS succeeded,
         count(*) FILTER (WHERE r.status = 'failed') AS failed,
         count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
         round(count(*) FILTER (WHERE r.status = 'succeeded')::numeric
               / nullif(count(*) FILTER (WHERE r.status IN ('succeeded', 'failed')), 0), 4) AS success_rate,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - r.started_at))
           FILTER (WHERE r.started_at IS NOT NULL) AS p50_seconds,
         percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - r.started_at))
           FILTER (WHERE r.started_at IS NOT NULL) AS p90_seconds,
         percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - r.started_at))
           FILTER (WHERE r.started_at IS NOT NULL) AS p99_seconds
    FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id
   WHERE r.finished_at > now() - interval '24 hours'
   GROUP BY r.workflow, e.stage;
COMMENT ON VIEW ops.metrics_runs IS 'Runs finished in the last 24 hours: outcomes and duration percentiles';
CREATE INDEX runs_finished_recent ON ops.runs (finished_at) WHERE finished_at IS NOT NULL;

-- A Prometheus label value: backslash, quote and newline escaped.
CREATE FUNCTION ops._prometheus_label(value text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT '"' || replace(replace(replace(coalesce(value, ''), E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n') || '"'
$$;

CREATE FUNCTION ops.metrics_prometheus() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
  WITH samples(metric, help, kind, labels, value, ord) AS (
    SELECT 'odooops_queue_runs', 'Runs by state (queued, claimable, claimed, running).', 'gauge',
           format('workflow=%s,stage=%s,state=%s', ops._prometheus_label(q.workflow),
                  ops._prometheus_label(q.stage), ops._prometheus_label(s.state)), s.value, 1
      FROM ops.metrics_queue q,
           LATERAL (VALUES ('queued', q.queued::float8), ('claimable', q.claimable::float8),
                           ('claimed', q.claimed::float8), ('running', q.running::float8)) AS s(state, value)
    UNION ALL
    SELECT 'odooops_queue_oldest_seconds', 'Age of the oldest queued run.', 'gauge',
           format('workflow=%s,stage=%s', ops._prometheus_label(q.workflow), ops._prometheus_label(q.stage)),
           q.oldest_queued_seconds::float8, 2
      FROM ops.metrics_queue q
    UNION ALL
    SELECT 'odooops_worker_runs_held', 'Runs a worker holds (claimed or running).', 'gauge',
           format('worker=%s,status=%s', ops._prometheus_label(w.worker_id), ops._prometheus_label(w.status)),
           w.runs_held::float8, 3
      FROM ops.metrics_workers w
    UNION ALL
    SELECT 'odooops_worker_heartbeat_age_seconds', 'Seconds since a worker''s last heartbeat.', 'gauge',
           format('worker=%s', ops._prometheus_label(w.worker_id)), w.seconds_since_heartbeat::float8, 4
      FROM ops.metrics_workers w
    UNION ALL
    SELECT 'odooops_runs_finished_24h', 'Runs finished in the last 24 hours, by outcome.', 'gauge',
           format('workflow=%s,stage=%s,status=%s', ops._prometheus_label(m.workflow),
                  ops._prometheus_label(m.stage), ops._prometheus_label(s.status)), s.value, 5
      FROM ops.metrics_runs m,
           LATERAL (VALUES ('succeeded', m.succeeded::float8), ('failed', m.failed::float8),
                           ('cancelled', m.cancelled::float8)) AS s(status, value)
    UNION ALL
    SELECT 'odooops_run_duration_seconds', 'Run duration percentiles over the last 24 hours.', 'gauge',
           format('workflow=%s,stage=%s,quantile=%s', ops._prometheus_label(m.workflow),
                  ops._prometheus_label(m.stage), ops._prometheus_label(s.q)), s.value, 6
      FROM ops.metrics_runs m,
           LATERAL (VALUES ('0.5', m.p50_seconds), ('0.9', m.p90_seconds), ('0.99', m.p99_seconds)) AS s(q, value)
     WHERE s.value IS NOT NULL
  ), families AS (
    SELECT metric, help, kind, min(ord) AS ord,
           string_agg(metric || '{' || labels || '} ' || value::text, E'\n' ORDER BY labels) AS lines
      FROM samples GROUP BY metric, help, kind
  )
  SELECT coalesce(string_agg(format(E'# HELP %s %s\n# TYPE %s %s\n%s', metric, help, metric, kind, lines),
                             E'\n' ORDER BY ord) || E'\n', '')
    FROM families
$$;
COMMENT ON FUNCTION ops.metrics_prometheus IS 'Queue, worker and run metrics in the Prometheus text exposition format';
