-- Metrics for the PostgreSQL exporter: counters that only grow, a row for
-- every known label set, the workers' disk-use reports (bounded, authorized,
-- only for environments a worker hosts) and a monitoring role that reads
-- the metrics views and nothing else.
\set SHOW_CONTEXT never

INSERT INTO ops.projects (slug, name) VALUES ('metrics', 'Metrics tests') RETURNING id AS p \gset
INSERT INTO ops.environments (project_id, name, stage, db_name)
VALUES (:p, 'live', 'staging', 'm_live'), (:p, 'other', 'development', 'm_other');

-- Every workflow and outcome has a row, zero or not.
SELECT count(*) AS run_series, count(DISTINCT workflow) AS workflows FROM ops.metrics_run_counters;
SELECT count(*) AS alert_series FROM ops.metrics_alerts;
SELECT count(*) AS webhook_series FROM ops.metrics_webhook_counters;
SELECT status, backups FROM ops.metrics_backups WHERE project = 'metrics' AND environment = 'live' ORDER BY status;
SELECT has_success, last_success_age_seconds >= 0 AS age_counted FROM ops.metrics_backup_freshness
 WHERE project = 'metrics' AND environment = 'live';

-- Queuing and finishing count once each.
CREATE TEMP TABLE before AS SELECT workflow, outcome, total FROM ops.metrics_run_counters;
SELECT id AS r1 FROM ops.queue_run(:p, 'other', 'abcd01', 'main', '{}', 'build') \gset
SELECT id AS r2 FROM ops.queue_run(:p, 'other', 'abcd02', 'main', '{}', 'build') \gset
SELECT status FROM ops.cancel_run(:r1, 'test');
SELECT c.workflow, c.outcome, c.total - b.total AS added
  FROM ops.metrics_run_counters c JOIN before b USING (workflow, outcome)
 WHERE c.total <> b.total ORDER BY 1, 2;
SELECT status FROM ops.cancel_run(:r2, 'test');
-- A batch counts each of its runs once, in one statement.
SELECT id AS r3 FROM ops.queue_run(:p, 'other', 'abcd03', 'main', '{}', 'test', 1000) \gset
SELECT id AS r4 FROM ops.queue_run(:p, 'other', 'abcd04', 'main', '{}', 'test', 1000) \gset
SELECT id AS r5 FROM ops.queue_run(:p, 'other', 'abcd05', 'main', '{}', 'test', 1000) \gset
DROP TABLE before;
CREATE TEMP TABLE before AS SELECT workflow, outcome, total FROM ops.metrics_run_counters;
SELECT count(*) AS claimed FROM ops.claim_runs('m-batch', 3, 300, ARRAY['test']);
SELECT status FROM ops.start_run(:r5, 'm-batch', 1);
SELECT count(*) AS finished FROM ops.finish_runs('m-batch', jsonb_build_array(
  jsonb_build_object('run_id', :r3, 'attempt', 1, 'status', 'failed'),
  jsonb_build_object('run_id', :r4, 'attempt', 1, 'status', 'failed'),
  jsonb_build_object('run_id', :r5, 'attempt', 1, 'status', 'succeeded')));
SELECT c.workflow, c.outcome, c.total - b.total AS added
  FROM ops.metrics_run_counters c JOIN before b USING (workflow, outcome)
 WHERE c.total <> b.total ORDER BY 1, 2;

-- Disk use: bad input is refused and changes nothing.
SELECT worker_id FROM ops.register_agent('m-worker');
SELECT worker_id FROM ops.register_agent('m-other');
UPDATE ops.environments SET host_worker_id = 'm-worker' WHERE project_id = :p AND name = 'live';
SELECT ops.report_agent_usage('m-worker', '/srv/state', 100, -1);
SELECT ops.report_agent_usage('m-worker', '', 100, 1);
SELECT ops.report_agent_usage('m-worker', '/srv/state', 100, 1, '[1]');
SELECT ops.report_agent_usage('m-worker', '/srv/state', 100, 1, '{"metrics/live": -5}');
SELECT ops.report_agent_usage('m-worker', '/srv/state', 100, 1, '{"metrics/live": "big"}');
SELECT ops.report_agent_usage('m-worker', repeat('x', 1025), 100, 1);
SELECT ops.report_agent_usage('m-nobody', '/srv/state', 100, 1);
SELECT count(*) AS nothing_stored FROM ops.agent_disk_usage WHERE worker_id LIKE 'm-%';
-- Only the environments the worker hosts are stored.
SELECT ops.report_agent_usage('m-worker', '/srv/state', 1000, 400,
                              '{"metrics/live": 2048, "metrics/other": 7, "nope/none": 1}') AS stored;
SELECT ops.report_agent_usage('m-other', '/srv/other', 50, 5, '{"metrics/live": 1}') AS stored_by_other;
SELECT environment, filestore_bytes, filestore_worker_id, database_bytes
  FROM ops.metrics_environment_usage WHERE project = 'metrics' ORDER BY environment;
SELECT worker_id, path, total_bytes, free_bytes FROM ops.metrics_agent_disk
 WHERE worker_id LIKE 'm-%' ORDER BY worker_id;
-- A second report replaces the first.
SELECT ops.report_agent_usage('m-worker', '/srv/state', 1000, 300, '{"metrics/live": 4096}') AS stored;
SELECT filestore_bytes FROM ops.metrics_environment_usage WHERE project = 'metrics' AND environment = 'live';
SELECT free_bytes FROM ops.metrics_agent_disk WHERE worker_id = 'm-worker';

-- A worker login reports only as the worker ids bound to it.
INSERT INTO ops.worker_logins (login, worker_id) VALUES ('odooops_test_worker', 'm-worker');
SET ROLE odooops_test_worker;
SELECT ops.report_agent_usage('m-worker', '/srv/state', 1000, 200) AS stored;
SELECT ops.report_agent_usage('m-other', '/srv/state', 1000, 200);
RESET ROLE;
SELECT worker_id, free_bytes FROM ops.metrics_agent_disk WHERE worker_id LIKE 'm-%' ORDER BY worker_id;

-- The monitoring role reads the metrics views, not the tables behind them.
SET client_min_messages = warning;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'odooops_test_monitor') THEN
    CREATE ROLE odooops_test_monitor NOLOGIN IN ROLE odooops_monitor;
  END IF;
END $$;
RESET client_min_messages;
SET ROLE odooops_test_monitor;
SELECT count(*) > 0 AS reads_counters FROM ops.metrics_run_counters;
SELECT count(*) > 0 AS reads_usage FROM ops.metrics_environment_usage WHERE project = 'metrics';
SELECT count(*) FROM ops.runs;
SELECT count(*) FROM ops.metrics_run_totals;
SELECT ops.report_agent_usage('m-worker', '/srv/state', 1, 1);
RESET ROLE;
