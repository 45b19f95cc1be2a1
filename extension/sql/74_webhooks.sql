-- Outbound webhooks: subscriptions, their secrets, and a durable outbox of
-- deliveries written by triggers in the same transaction as the change that
-- caused them. The dispatcher background worker (bgworker/dispatcher.cpp)
-- claims due deliveries, commits, sends them over HTTP outside any
-- transaction, and records the results in a new one.
-- Formats and the signature header: docs/background-workers.md.

CREATE TABLE ops.webhook_subscriptions (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  url          text NOT NULL CHECK (url ~ '^https?://[^\s]+$' AND length(url) <= 2048),
  -- github, gitlab, gitea, bitbucket: commit statuses (core/commit_status.h)
  format       text NOT NULL DEFAULT 'json'
               CHECK (format IN ('json', 'slack', 'github', 'gitlab', 'gitea', 'bitbucket')),
  -- empty: every event type
  event_types  text[] NOT NULL DEFAULT '{}' CHECK (event_types <@ ARRAY[
                 'run.queued', 'run.started', 'run.finished', 'backup.completed', 'backup.failed',
                 'restore.requested', 'restore.approved', 'restore.finished',
                 'alert.opened', 'alert.resolved']),
  project_id   bigint REFERENCES ops.projects ON DELETE CASCADE,   -- NULL: every project
  active       boolean NOT NULL DEFAULT true,
  max_attempts integer CHECK (max_attempts BETWEEN 1 AND 100),     -- NULL: odooops.webhook_max_attempts
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.webhook_subscriptions IS 'Where events are sent: URL, format (json, slack, or the commit statuses of github, gitlab, gitea, bitbucket), event types, project filter';
ALTER TABLE ops.webhook_subscriptions ENABLE ROW LEVEL SECURITY;

-- Secrets live apart from the subscriptions so no user-facing role is ever
-- granted them: the HMAC key of a json subscription, the token of a github one.
CREATE TABLE ops.webhook_secrets (
  subscription_id bigint PRIMARY KEY REFERENCES ops.webhook_subscriptions ON DELETE CASCADE,
  secret          text NOT NULL CHECK (length(secret) BETWEEN 1 AND 4096),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ops.webhook_secrets IS 'Signing secrets and tokens of webhook subscriptions (never granted to users)';
ALTER TABLE ops.webhook_secrets ENABLE ROW LEVEL SECURITY;

CREATE TABLE ops.webhook_deliveries (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription_id  bigint NOT NULL REFERENCES ops.webhook_subscriptions ON DELETE CASCADE,
  event_type       text NOT NULL,
  payload          jsonb NOT NULL,   -- the event envelope (core/webhook_payload.h)
  status           text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'sending', 'delivered', 'dead')),
  attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  claimed_until    timestamptz,
  last_status_code integer,
  last_latency_ms  integer,
  last_error       text,
  last_response    text,             -- truncated; cleared after odooops.webhook_response_ttl
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  delivered_at     timestamptz,
  dead_at          timestamptz,
  CHECK ((status = 'sending') = (claimed_until IS NOT NULL)),
  CHECK ((status = 'delivered') = (delivered_at IS NOT NULL)),
  CHECK ((status = 'dead') = (dead_at IS NOT NULL))
);
COMMENT ON TABLE ops.webhook_deliveries IS 'Durable outbox: one row per (event, subscription), with its delivery state';
CREATE INDEX webhook_deliveries_due ON ops.webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_sending ON ops.webhook_deliveries (claimed_until) WHERE status = 'sending';
CREATE INDEX webhook_deliveries_dead ON ops.webhook_deliveries (subscription_id) WHERE status = 'dead';
CREATE INDEX webhook_deliveries_finished ON ops.webhook_deliveries (updated_at) WHERE status IN ('delivered', 'dead');
ALTER TABLE ops.webhook_deliveries ENABLE ROW LEVEL SECURITY;

CREATE TABLE ops.webhook_delivery_attempts (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id   bigint NOT NULL REFERENCES ops.webhook_deliveries ON DELETE CASCADE,
  attempt       integer NOT NULL,
  started_at    timestamptz NOT NULL,
  recorded_at   timestamptz NOT NULL DEFAULT now(),
  outcome       text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead')),
  status_code   integer,             -- NULL: no HTTP response (connect error, timeout, ...)
  latency_ms    integer,
  error         text,
  response_body text                 -- truncated; cleared after odooops.webhook_response_ttl
);
COMMENT ON TABLE ops.webhook_delivery_attempts IS 'Every HTTP attempt of a delivery: status code, latency, error, truncated response';
CREATE INDEX webhook_delivery_attempts_delivery ON ops.webhook_delivery_attempts (delivery_id, attempt);
CREATE INDEX webhook_delivery_attempts_recorded ON ops.webhook_delivery_attempts (recorded_at);
ALTER TABLE ops.webhook_delivery_attempts ENABLE ROW LEVEL SECURITY;

-- Writes one delivery per matching active subscription for an event and
-- wakes the dispatcher at commit. Returns how many deliveries it wrote.
-- SECURITY DEFINER: the triggers below run it for any user whose change
-- causes an event, while the outbox and subscriptions stay private (RLS
-- without policies). Not to be granted to users directly.
CREATE FUNCTION ops.enqueue_webhook_event(event_type text, project_id bigint, environment_id bigint, data jsonb)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
  n integer;
  envelope jsonb;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ops.webhook_subscriptions s WHERE s.active) THEN
    RETURN 0;
  END IF;
  envelope := jsonb_build_object(
    'type', event_type,
    'occurred_at', now(),
    'project', (SELECT jsonb_build_object('id', p.id, 'slug', p.slug, 'repo_full_name', p.repo_full_name,
                                          'git_hosts', (SELECT jsonb_object_agg(h.host, h.repository)
                                                          FROM ops.project_git_hosts h WHERE h.project_id = p.id))
                  FROM ops.projects p WHERE p.id = enqueue_webhook_event.project_id),
    'environment', (SELECT jsonb_build_object('id', e.id, 'name', e.name, 'stage', e.stage)
                      FROM ops.environments e WHERE e.id = enqueue_webhook_event.environment_id),
    'data', data);
  INSERT INTO ops.webhook_deliveries (subscription_id, event_type, payload)
  SELECT s.id, enqueue_webhook_event.event_type, envelope
    FROM ops.webhook_subscriptions s
   WHERE s.active
     AND (cardinality(s.event_types) = 0 OR enqueue_webhook_event.event_type = ANY (s.event_types))
     AND (s.project_id IS NULL OR s.project_id = enqueue_webhook_event.project_id)
     -- A commit status needs a run's commit and the project's repository
     -- on that host.
     AND (s.format NOT IN ('github', 'gitlab', 'gitea', 'bitbucket')
          OR (enqueue_webhook_event.event_type LIKE 'run.%' AND data->>'git_sha' IS NOT NULL
              AND CASE WHEN s.format = 'github' THEN envelope->'project'->>'repo_full_name'
                       ELSE envelope->'project'->'git_hosts'->>s.format END IS NOT NULL));
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN
    PERFORM ops._wake_dispatcher();
  END IF;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.enqueue_webhook_event IS 'Writes the outbox deliveries of an event (called by triggers)';

-- Event triggers: run.queued / run.started / run.finished, and the run
-- counts of ops.metrics_run_totals (76_metrics_totals.sql). Statement-level
-- with transition tables: a statement that queues, starts or finishes many
-- runs (queue_run over a set, claim_runs, finish_runs) costs one call and
-- adds to each count once, and a project without active subscriptions
-- costs one index probe, not one function call per row (BENCHMARKS.md).
CREATE FUNCTION ops._runs_webhook() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO ops.metrics_run_totals AS t (workflow, outcome, shard, total)
    SELECT n.workflow, 'queued', pg_backend_pid() % 16, count(*) FROM new_runs n
     WHERE n.created_at >= now()  -- not ops._carried_over(), written out
     GROUP BY n.workflow ORDER BY n.workflow
        ON CONFLICT (workflow, outcome, shard) DO UPDATE SET total = t.total + excluded.total;
  ELSE
    INSERT INTO ops.metrics_run_totals AS t (workflow, outcome, shard, total)
    SELECT n.workflow, n.status, pg_backend_pid() % 16, count(*)
      FROM new_runs n JOIN old_runs o ON o.id = n.id
     WHERE n.status IN ('succeeded', 'failed', 'cancelled')
       AND o.status NOT IN ('succeeded', 'failed', 'cancelled')
     GROUP BY n.workflow, n.status ORDER BY n.workflow, n.status
        ON CONFLICT (workflow, outcome, shard) DO UPDATE SET total = t.total + excluded.total;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM ops.webhook_subscriptions s WHERE s.active) THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    -- Runs restored from a dump were announced when they were queued.
    PERFORM ops._enqueue_run_webhook('run.queued', n) FROM new_runs n
      WHERE NOT ops._carried_over(n.created_at) ORDER BY n.id;
  ELSE
    PERFORM ops._enqueue_run_webhook(CASE WHEN n.status = 'running' THEN 'run.started' ELSE 'run.finished' END, n)
       FROM new_runs n JOIN old_runs o ON o.id = n.id
      WHERE o.status IS DISTINCT FROM n.status AND n.status IN ('running', 'succeeded', 'failed', 'cancelled')
      ORDER BY n.id;
  END IF;
  RETURN NULL;
END $$;
CREATE FUNCTION ops._enqueue_run_webhook(event text, run ops.runs) RETURNS integer LANGUAGE sql AS $$
  SELECT ops.enqueue_webhook_event(event, run.project_id, run.environment_id,
    jsonb_build_object('id', run.id, 'workflow', run.workflow, 'status', run.status,
                       'attempt', run.attempt, 'git_sha', run.git_sha, 'git_ref', run.git_ref,
                       'error', run.error, 'requested_by', run.requested_by,
                       'target_url', run.result->>'url')
    -- A test run's counts and first failing tests: the commit status names them.
    || CASE WHEN jsonb_typeof(run.result -> 'tests' -> 'failing') = 'array' THEN jsonb_build_object('tests',
         jsonb_build_object('passed', run.result -> 'tests' -> 'passed', 'failed', run.result -> 'tests' -> 'failed',
                            'errors', run.result -> 'tests' -> 'errors', 'tests', run.result -> 'tests' -> 'tests',
                            'failing', coalesce((SELECT jsonb_agg(f) FROM (
                                SELECT f FROM jsonb_array_elements(run.result -> 'tests' -> 'failing') f LIMIT 3) x),
                              '[]'::jsonb)))
       ELSE '{}'::jsonb END)
$$;
CREATE TRIGGER runs_webhook_insert AFTER INSERT ON ops.runs
  REFERENCING NEW TABLE AS new_runs FOR EACH STATEMENT EXECUTE FUNCTION ops._runs_webhook();
CREATE TRIGGER runs_webhook_status AFTER UPDATE ON ops.runs
  REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs FOR EACH STATEMENT EXECUTE FUNCTION ops._runs_webhook();

-- backup.completed / backup.failed
CREATE FUNCTION ops._backups_webhook() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- A backup restored from a dump was announced when it completed.
  IF NEW.status IN ('completed', 'failed')
     AND ((TG_OP = 'INSERT' AND NOT ops._carried_over(NEW.created_at))
          OR (TG_OP = 'UPDATE' AND OLD.status IS DISTINCT FROM NEW.status)) THEN
    PERFORM ops.enqueue_webhook_event('backup.' || NEW.status, NEW.project_id, NEW.environment_id,
      jsonb_build_object('id', NEW.id, 'backup_type', NEW.backup_type, 'status', NEW.status,
                         'run_id', NEW.run_id, 'size_bytes', NEW.size_bytes, 'sha256', NEW.sha256,
                         'error', NEW.error));
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER backups_webhook AFTER INSERT OR UPDATE OF status ON ops.backups
  FOR EACH ROW EXECUTE FUNCTION ops._backups_webhook();

-- restore.requested / restore.approved / restore.finished
CREATE FUNCTION ops._restores_webhook() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  event text;
BEGIN
  IF TG_OP = 'INSERT' AND ops._carried_over(NEW.created_at) THEN
    RETURN NULL;   -- restored from a dump: announced long ago
  ELSIF TG_OP = 'INSERT' THEN
    event := 'restore.requested';
  ELSIF OLD.status IS NOT DISTINCT FROM NEW.status THEN
    RETURN NULL;
  ELSIF OLD.status = 'pending_approval' AND NEW.status = 'queued' THEN
    event := 'restore.approved';
  ELSIF NEW.status IN ('completed', 'failed', 'rejected', 'expired', 'cancelled') THEN
    event := 'restore.finished';
  ELSE
    RETURN NULL;
  END IF;
  PERFORM ops.enqueue_webhook_event(event, NEW.project_id, NEW.target_environment_id,
    jsonb_build_object('id', NEW.id, 'backup_id', NEW.backup_id, 'status', NEW.status,
                       'run_id', NEW.run_id, 'requested_by', NEW.requested_by));
  RETURN NULL;
END $$;
CREATE TRIGGER restores_webhook AFTER INSERT OR UPDATE OF status ON ops.restores
  FOR EACH ROW EXECUTE FUNCTION ops._restores_webhook();

-- alert.opened / alert.resolved
CREATE FUNCTION ops._alerts_webhook() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF (TG_OP = 'INSERT' AND NOT ops._carried_over(NEW.opened_at))
     OR (TG_OP = 'UPDATE' AND NEW.status = 'resolved' AND OLD.status = 'open') THEN
    PERFORM ops.enqueue_webhook_event(CASE WHEN TG_OP = 'INSERT' THEN 'alert.opened' ELSE 'alert.resolved' END,
      NEW.project_id, NEW.environment_id,
      jsonb_build_object('id', NEW.id, 'kind', NEW.kind, 'severity', NEW.severity,
                         'status', NEW.status, 'message', NEW.message, 'details', NEW.details));
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER alerts_webhook AFTER INSERT OR UPDATE OF status ON ops.alerts
  FOR EACH ROW EXECUTE FUNCTION ops._alerts_webhook();

-- Wakes the dispatcher when deliveries are written directly (e.g. bulk
-- inserts by admins or benchmarks).
CREATE FUNCTION ops._wake_dispatcher_trigger() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM ops._wake_dispatcher();
  RETURN NULL;
END $$;
CREATE TRIGGER webhook_deliveries_wake AFTER INSERT ON ops.webhook_deliveries
  FOR EACH STATEMENT EXECUTE FUNCTION ops._wake_dispatcher_trigger();

-- The dispatcher's side (internal).

-- The host a subscription's deliveries go to ("host:port" as in its URL):
-- the unit of the per-host concurrency limit.
CREATE FUNCTION ops._webhook_host(url text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT lower(substring(url FROM '^https?://([^/?#]+)'))
$$;

-- Requests in flight per host.
CREATE FUNCTION ops._webhook_hosts_sending() RETURNS TABLE(host text, n bigint) LANGUAGE sql STABLE AS $$
  SELECT ops._webhook_host(s.url), count(*)
    FROM ops.webhook_deliveries d JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id
   WHERE d.status = 'sending'
   GROUP BY 1
$$;

-- The subscriptions whose host has host_cap requests in flight (none when
-- host_cap is NULL): their deliveries wait until one of those ends.
CREATE FUNCTION ops._webhook_full_subscriptions(host_cap integer) RETURNS SETOF bigint
LANGUAGE sql STABLE AS $$
  SELECT s.id FROM ops.webhook_subscriptions s
    JOIN ops._webhook_hosts_sending() x ON x.host = ops._webhook_host(s.url)
   WHERE host_cap IS NOT NULL AND x.n >= host_cap
$$;

-- Claims up to n due deliveries, oldest first: they go to 'sending' with
-- attempts + 1 and a claim deadline, and are returned with what rendering
-- needs (including the secret). The caller commits before any HTTP. Hosts
-- with host_cap requests in flight already get none (NULL: no limit): one
-- receiver that hangs holds at most host_cap of the dispatcher's slots,
-- never all of them, and the others are served meanwhile.
CREATE FUNCTION ops._claim_webhook_deliveries(n integer, claim_ms integer, default_max_attempts integer,
                                              host_cap integer DEFAULT NULL)
RETURNS TABLE(id bigint, format text, url text, secret text, event_type text, payload text,
              attempts integer, max_attempts integer)
LANGUAGE sql VOLATILE AS $$
  WITH sending AS (
    SELECT * FROM ops._webhook_hosts_sending() WHERE host_cap IS NOT NULL
  ), due AS (
    SELECT d.id, d.subscription_id, d.next_attempt_at FROM ops.webhook_deliveries d
     WHERE d.status = 'pending' AND d.next_attempt_at <= now()
       AND d.subscription_id NOT IN (SELECT ops._webhook_full_subscriptions(host_cap))
     ORDER BY d.next_attempt_at, d.id
     LIMIT n FOR UPDATE SKIP LOCKED
  ), c AS (
    -- within the batch, no host beyond what it has left of host_cap
    SELECT due.id FROM (
      SELECT due.id, ops._webhook_host(s.url) AS host,
             row_number() OVER (PARTITION BY ops._webhook_host(s.url) ORDER BY due.next_attempt_at, due.id) AS k
        FROM due JOIN ops.webhook_subscriptions s ON s.id = due.subscription_id) due
      LEFT JOIN sending x ON x.host = due.host
     WHERE host_cap IS NULL OR due.k + coalesce(x.n, 0) <= host_cap
  ), u AS (
    UPDATE ops.webhook_deliveries d
       SET status = 'sending', attempts = d.attempts + 1,
           claimed_until = now() + make_interval(secs => claim_ms / 1000.0), updated_at = now()
      FROM c WHERE d.id = c.id
    RETURNING d.id, d.subscription_id, d.event_type, d.payload, d.attempts
  )
  SELECT u.id, s.format, s.url, coalesce(k.secret, ''), u.event_type, u.payload::text, u.attempts,
         coalesce(s.max_attempts, default_max_attempts)
    FROM u JOIN ops.webhook_subscriptions s ON s.id = u.subscription_id
    LEFT JOIN ops.webhook_secrets k ON k.subscription_id = s.id
   ORDER BY u.id
$$;

-- Records a batch of attempt results:
--   [{id, attempt, outcome: delivered|retry|dead, delay_ms, status_code,
--     latency_ms, error, response, started_ms}]
-- Fenced by (status = 'sending', attempts = attempt): a result for a claim
-- that was recovered meanwhile changes nothing. Returns how many it applied.
CREATE FUNCTION ops._record_webhook_results(results jsonb) RETURNS integer LANGUAGE sql VOLATILE AS $$
  WITH r AS (
    SELECT * FROM jsonb_to_recordset(results)
      AS r(id bigint, attempt integer, outcome text, delay_ms bigint, status_code integer,
           latency_ms integer, error text, response text, started_ms bigint)
  ), u AS (
    UPDATE ops.webhook_deliveries d
       SET status = CASE r.outcome WHEN 'delivered' THEN 'delivered' WHEN 'dead' THEN 'dead' ELSE 'pending' END,
           next_attempt_at = CASE WHEN r.outcome = 'retry'
                                  THEN now() + make_interval(secs => r.delay_ms / 1000.0)
                                  ELSE d.next_attempt_at END,
           claimed_until = NULL,
           last_status_code = r.status_code, last_latency_ms = r.latency_ms,
           last_error = r.error, last_response = r.response,
           delivered_at = CASE WHEN r.outcome = 'delivered' THEN now() END,
           dead_at = CASE WHEN r.outcome = 'dead' THEN now() END,
           updated_at = now()
      FROM r
     WHERE d.id = r.id AND d.status = 'sending' AND d.attempts = r.attempt
    RETURNING d.id
  ), a AS (
    INSERT INTO ops.webhook_delivery_attempts
      (delivery_id, attempt, started_at, outcome, status_code, latency_ms, error, response_body)
    SELECT r.id, r.attempt, to_timestamp(r.started_ms / 1000.0), r.outcome, r.status_code,
           r.latency_ms, r.error, r.response
      FROM r JOIN u ON u.id = r.id
    RETURNING 1
  ) SELECT count(*)::integer FROM a
$$;

-- Puts deliveries a crash left in 'sending' back to 'pending' (all of them
-- when the dispatcher starts; otherwise those past their claim deadline).
-- The unrecorded attempt is not counted. Returns how many.
CREATE FUNCTION ops._recover_webhook_deliveries(everything boolean) RETURNS integer LANGUAGE sql VOLATILE AS $$
  WITH u AS (
    UPDATE ops.webhook_deliveries d
       SET status = 'pending', attempts = greatest(d.attempts - 1, 0), claimed_until = NULL,
           next_attempt_at = now(), updated_at = now()
     WHERE d.status = 'sending' AND (everything OR d.claimed_until < now())
    RETURNING 1
  ) SELECT count(*)::integer FROM u
$$;

-- Milliseconds until the next pending delivery is due (NULL: none), not
-- counting hosts at host_cap (the dispatcher claims again when it has
-- recorded results, which frees their slots). NULL when nothing is
-- pending: the dispatcher then sleeps its naptime (a 0 here kept it
-- claiming in a loop, a whole core while idle).
CREATE FUNCTION ops._next_webhook_due_ms(host_cap integer DEFAULT NULL) RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN due IS NOT NULL
              THEN greatest(0, (extract(epoch FROM due - clock_timestamp()) * 1000)::bigint) END
    FROM (SELECT min(d.next_attempt_at) AS due FROM ops.webhook_deliveries d
           WHERE d.status = 'pending'
             AND d.subscription_id NOT IN (SELECT ops._webhook_full_subscriptions(host_cap))) d
$$;

-- Re-drives dead deliveries (all, one subscription's, or the given ids):
-- back to pending with a fresh attempt budget. Returns how many.
CREATE FUNCTION ops.redrive_webhook_deliveries(subscription_id bigint DEFAULT NULL, delivery_ids bigint[] DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  UPDATE ops.webhook_deliveries d
     SET status = 'pending', attempts = 0, next_attempt_at = now(), dead_at = NULL, updated_at = now()
   WHERE d.status = 'dead'
     AND (redrive_webhook_deliveries.subscription_id IS NULL OR d.subscription_id = redrive_webhook_deliveries.subscription_id)
     AND (delivery_ids IS NULL OR d.id = ANY (delivery_ids));
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN
    PERFORM ops._wake_dispatcher();
  END IF;
  RETURN n;
END $$;
COMMENT ON FUNCTION ops.redrive_webhook_deliveries IS 'Sends dead deliveries again with a fresh attempt budget';

-- History TTLs: response bodies are cleared after `response_ttl_seconds`,
-- delivered deliveries (and their attempts) deleted after
-- `retention_seconds`, at most `max_rows` per call. Returns rows touched.
CREATE FUNCTION ops.prune_webhook_history(response_ttl_seconds integer, retention_seconds integer,
                                          max_rows integer DEFAULT 10000)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  a integer;
  b integer;
  c integer;
BEGIN
  UPDATE ops.webhook_delivery_attempts SET response_body = NULL
   WHERE id IN (SELECT id FROM ops.webhook_delivery_attempts
                 WHERE response_body IS NOT NULL
                   AND recorded_at < now() - make_interval(secs => response_ttl_seconds)
                 LIMIT max_rows);
  GET DIAGNOSTICS a = ROW_COUNT;
  UPDATE ops.webhook_deliveries SET last_response = NULL
   WHERE id IN (SELECT id FROM ops.webhook_deliveries
                 WHERE status IN ('delivered', 'dead') AND last_response IS NOT NULL
                   AND updated_at < now() - make_interval(secs => response_ttl_seconds)
                 LIMIT max_rows);
  GET DIAGNOSTICS b = ROW_COUNT;
  DELETE FROM ops.webhook_deliveries
   WHERE id IN (SELECT id FROM ops.webhook_deliveries
                 WHERE status = 'delivered' AND updated_at < now() - make_interval(secs => retention_seconds)
                 LIMIT max_rows);
  GET DIAGNOSTICS c = ROW_COUNT;
  RETURN a + b + c;
END $$;
COMMENT ON FUNCTION ops.prune_webhook_history IS 'Clears old webhook response bodies and deletes delivered deliveries past their retention; returns rows touched';
