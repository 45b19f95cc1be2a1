-- Monotonic totals for Prometheus counters. Views over ops.runs count what
-- the table still holds, and retention deletes rows: a counter made from
-- them would go down. These small tables count events as they happen
-- (triggers) and never decrease; a row exists once its count is above zero,
-- and the views below add a zero row for every known label set, so that no
-- series disappears while its value is zero. Rows restored from a dump are
-- not counted again (ops._carried_over): the totals come with the dump.
-- The triggers write with the extension's rights, so that a change made by
-- any role is counted.

-- A count is spread over up to 16 rows (shard: the writing backend's
-- process id modulo 16; the views add them up): every finishing transaction
-- updates its count and holds that row until it commits, so one row per
-- count would make concurrent workers finish one after the other.
CREATE TABLE ops.metrics_run_totals (
  workflow text NOT NULL,
  outcome  text NOT NULL,   -- queued, succeeded, failed, cancelled
  total    bigint NOT NULL CHECK (total >= 0),
  shard    smallint NOT NULL DEFAULT 0 CHECK (shard BETWEEN 0 AND 15),
  CONSTRAINT metrics_run_totals_pkey PRIMARY KEY (workflow, outcome, shard)
);
COMMENT ON TABLE ops.metrics_run_totals IS 'Runs queued and finished since installation, by workflow and outcome, in up to 16 rows each (never decreases)';

CREATE TABLE ops.metrics_webhook_totals (
  outcome text PRIMARY KEY,   -- enqueued, delivered, dead
  total   bigint NOT NULL CHECK (total >= 0)
);
COMMENT ON TABLE ops.metrics_webhook_totals IS 'Webhook deliveries enqueued, delivered and given up since installation (never decreases)';

CREATE TABLE ops.metrics_alert_totals (
  kind  text PRIMARY KEY,
  total bigint NOT NULL CHECK (total >= 0)
);
COMMENT ON TABLE ops.metrics_alert_totals IS 'Alerts opened since installation, by kind (never decreases)';

-- Runs are counted by the statement triggers of ops.runs, once per
-- statement (ops._runs_webhook, 74_webhooks.sql): a batch adds to each count
-- once, and a claim, which finishes nothing, writes nothing here.

CREATE FUNCTION ops._count_webhook_delivery() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  o text := CASE WHEN TG_OP = 'INSERT' THEN 'enqueued' ELSE NEW.status END;
BEGIN
  IF TG_OP = 'INSERT' AND ops._carried_over(NEW.created_at) THEN
    RETURN NULL;
  END IF;
  INSERT INTO ops.metrics_webhook_totals AS t (outcome, total) VALUES (o, 1)
    ON CONFLICT (outcome) DO UPDATE SET total = t.total + 1;
  RETURN NULL;
END $$;
CREATE TRIGGER webhook_deliveries_count_enqueued AFTER INSERT ON ops.webhook_deliveries
  FOR EACH ROW EXECUTE FUNCTION ops._count_webhook_delivery();
CREATE TRIGGER webhook_deliveries_count_finished AFTER UPDATE OF status ON ops.webhook_deliveries
  FOR EACH ROW WHEN (NEW.status IN ('delivered', 'dead') AND OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION ops._count_webhook_delivery();

CREATE FUNCTION ops._count_alert() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF ops._carried_over(NEW.opened_at) THEN
    RETURN NULL;
  END IF;
  INSERT INTO ops.metrics_alert_totals AS t (kind, total) VALUES (NEW.kind, 1)
    ON CONFLICT (kind) DO UPDATE SET total = t.total + 1;
  RETURN NULL;
END $$;
CREATE TRIGGER alerts_count_opened AFTER INSERT ON ops.alerts
  FOR EACH ROW EXECUTE FUNCTION ops._count_alert();

-- The label sets every counter and gauge reports, zero or not.
CREATE VIEW ops.metrics_known_workflows(workflow) AS
  VALUES ('build'), ('test'), ('deploy'), ('backup'), ('restore'), ('destroy');
COMMENT ON VIEW ops.metrics_known_workflows IS 'The workflows metrics report a series for, zero or not';

CREATE VIEW ops.metrics_run_counters AS
  SELECT w.workflow, o.outcome,
         coalesce((SELECT sum(t.total) FROM ops.metrics_run_totals t
                    WHERE t.workflow = w.workflow AND t.outcome = o.outcome), 0)::bigint AS total
    FROM ops.metrics_known_workflows w
   CROSS JOIN (VALUES ('queued'), ('succeeded'), ('failed'), ('cancelled')) AS o(outcome);
COMMENT ON VIEW ops.metrics_run_counters IS 'Runs queued and finished since installation, a row for every workflow and outcome';

CREATE VIEW ops.metrics_run_states AS
  SELECT w.workflow, s.state, count(r.id) AS runs,
         coalesce(extract(epoch FROM now() - min(r.created_at)), 0)::float8 AS oldest_seconds
    FROM ops.metrics_known_workflows w
   CROSS JOIN (VALUES ('queued'), ('claimed'), ('running')) AS s(state)
    LEFT JOIN ops.runs r ON r.workflow = w.workflow AND r.status = s.state
   GROUP BY w.workflow, s.state;
COMMENT ON VIEW ops.metrics_run_states IS
  'Runs waiting or held by workflow and state, with the age of the oldest, a row for every pair';

CREATE VIEW ops.metrics_webhook_counters AS
  SELECT o.outcome, coalesce(t.total, 0) AS total
    FROM (VALUES ('enqueued'), ('delivered'), ('dead')) AS o(outcome)
    LEFT JOIN ops.metrics_webhook_totals t ON t.outcome = o.outcome;
COMMENT ON VIEW ops.metrics_webhook_counters IS 'Webhook deliveries since installation, a row for every outcome';

CREATE VIEW ops.metrics_webhook_states AS
  SELECT s.status, count(d.id) AS deliveries
    FROM (VALUES ('pending'), ('sending'), ('dead')) AS s(status)
    LEFT JOIN ops.webhook_deliveries d ON d.status = s.status
   GROUP BY s.status;
COMMENT ON VIEW ops.metrics_webhook_states IS 'Webhook deliveries waiting, being sent, or given up, a row for every state';

CREATE VIEW ops.metrics_alerts AS
  SELECT k.kind, coalesce(t.total, 0) AS opened_total,
         (SELECT count(*) FROM ops.alerts a WHERE a.kind = k.kind AND a.status = 'open') AS open
    FROM (VALUES ('queue_backpressure'), ('stale_run'), ('backup_failed'),
                 ('production_restore_requested'), ('worker_lost')) AS k(kind)
    LEFT JOIN ops.metrics_alert_totals t ON t.kind = k.kind;
COMMENT ON VIEW ops.metrics_alerts IS 'Alerts open now and opened since installation, a row for every kind';

CREATE VIEW ops.metrics_backups AS
  SELECT p.slug AS project, e.name AS environment, e.stage, s.status,
         (SELECT count(*) FROM ops.backups b WHERE b.environment_id = e.id AND b.status = s.status) AS backups
    FROM ops.environments e JOIN ops.projects p ON p.id = e.project_id
   CROSS JOIN (VALUES ('pending'), ('running'), ('completed'), ('failed'), ('expired')) AS s(status)
   WHERE e.status <> 'destroyed';
COMMENT ON VIEW ops.metrics_backups IS 'Backups of each live environment, a row for every status';

-- An environment never backed up has been unprotected since it was created:
-- its age counts from then, so one alert rule (age above a limit) covers both.
CREATE VIEW ops.metrics_backup_freshness AS
  SELECT p.slug AS project, e.name AS environment, e.stage,
         extract(epoch FROM now() - coalesce(l.completed_at, e.created_at))::float8 AS last_success_age_seconds,
         (l.completed_at IS NOT NULL)::integer AS has_success
    FROM ops.environments e JOIN ops.projects p ON p.id = e.project_id
    LEFT JOIN LATERAL (SELECT max(b.completed_at) AS completed_at FROM ops.backups b
                        WHERE b.environment_id = e.id AND b.completed_at IS NOT NULL) l ON true
   WHERE e.status <> 'destroyed';
COMMENT ON VIEW ops.metrics_backup_freshness IS
  'Seconds since each live environment''s last completed backup (since its creation when it has none)';
