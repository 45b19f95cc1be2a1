-- Backup schedules (cron, each slot exactly once), retention, expiry of
-- stored objects and run_events partition upkeep. The scheduler background
-- worker calls these same functions; here they are called directly.
-- This suite counts rows of shared tables (backups, runs, alerts, ...), so
-- it runs in a database of its own, untouched by the other suites.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS odooops_regress_70;
CREATE DATABASE odooops_regress_70;
\c odooops_regress_70
CREATE EXTENSION odooops;
SET client_min_messages = warning;
SET timezone = 'UTC';
INSERT INTO ops.projects (slug, name, repo_full_name) VALUES ('sched', 'Scheduler', 'acme/sched');
INSERT INTO ops.environments (project_id, name, stage, db_name)
SELECT p.id, v.name, v.stage, 'sched_' || v.name
  FROM ops.projects p, (VALUES ('production', 'production'), ('staging', 'staging')) v(name, stage)
 WHERE p.slug = 'sched';

-- cron: 5 fields or 6 with seconds, UTC, strictly after
SELECT ops.cron_next('0 2 * * *', '2024-05-10 01:59:59+00') AS daily,
       ops.cron_next('*/5 * * * * *', '2024-01-01 00:00:03+00') AS every_5s,
       ops.cron_next('30 6 * * MON-FRI', '2024-06-07 07:00+00') AS weekdays,
       ops.cron_next('@monthly', '2024-01-31 12:00+00') AS monthly,
       ops.cron_next('0 0 30 2 *', '2024-01-01+00') AS never;
-- clear errors
SELECT ops.cron_next('0 25 * * *');
SELECT ops.cron_next('* * * *');
SELECT ops.cron_next('0 0 * FOO *');
\set VERBOSITY terse
INSERT INTO ops.backup_schedules (environment_id, cron_expr)
SELECT e.id, '61 * * * *' FROM ops.environments e WHERE e.db_name = 'sched_production';
\set VERBOSITY default

-- with no schedule enabled there is no next slot (the scheduler sleeps its
-- naptime), not one due now
SELECT ops._next_schedule_due_ms() IS NULL AS nothing_due;

-- a schedule gets its first slot at once
INSERT INTO ops.backup_schedules (environment_id, cron_expr)
SELECT e.id, '0 * * * *' FROM ops.environments e WHERE e.db_name = 'sched_production';
SELECT next_fire_at = date_trunc('hour', now()) + interval '1 hour' AS next_is_top_of_hour
  FROM ops.backup_schedules;

-- the server was "down" for a day: 24 hourly slots were missed, one fires
UPDATE ops.backup_schedules SET next_fire_at = date_trunc('hour', now()) - interval '24 hours';
SELECT ops.fire_due_backup_schedules() AS fired;
SELECT ops.fire_due_backup_schedules() AS fired_again;
SELECT count(*) AS fires, count(backup_id) AS with_backup FROM ops.backup_schedule_fires;
SELECT next_fire_at > now() AS moved_on, last_error FROM ops.backup_schedules;
-- the fired slot is a pending daily backup with a queued backup run
SELECT b.backup_type, b.status, r.workflow, r.status AS run_status,
       r.metadata->>'schedule_id' IS NOT NULL AS tagged
  FROM ops.backups b JOIN ops.runs r ON r.id = b.run_id;

-- a slot whose backup cannot be created is skipped with the reason, not retried
UPDATE ops.environments SET status = 'destroyed', destroyed_at = now() WHERE db_name = 'sched_production';
UPDATE ops.backup_schedules SET next_fire_at = now() - interval '1 minute';
SELECT ops.fire_due_backup_schedules() AS fired;
SELECT last_error, next_fire_at > now() AS moved_on FROM ops.backup_schedules;
UPDATE ops.environments SET status = 'active', destroyed_at = NULL WHERE db_name = 'sched_production';
DELETE FROM ops.backup_schedules;

-- Retention: 120 days of completed daily backups of staging (2024-01-01 ..
-- 2024-04-29, 02:00 UTC). Odoo.sh defaults keep 7 daily, 4 weekly, 3 monthly.
INSERT INTO ops.backups (project_id, environment_id, backup_type, status, location, size_bytes, sha256,
                         created_at, completed_at)
SELECT e.project_id, e.id, 'daily', 'completed', 'file:///b/' || d::date, 1000, repeat('a', 64),
       d, d + interval '5 minutes'
  FROM ops.environments e, generate_series('2024-01-01 02:00+00'::timestamptz, '2024-04-29 02:00+00', '1 day') d
 WHERE e.db_name = 'sched_staging';
-- manual backups: one past its TTL, one not
INSERT INTO ops.backups (project_id, environment_id, backup_type, status, location, size_bytes, sha256,
                         created_at, completed_at, expires_at)
SELECT e.project_id, e.id, 'manual', 'completed', 'file:///b/manual-' || v.n, 1, repeat('b', 64),
       now() - interval '20 days', now() - interval '20 days', v.expires
  FROM ops.environments e, (VALUES (1, now() - interval '1 day'), (2, now() + interval '1 day')) v(n, expires)
 WHERE e.db_name = 'sched_staging';
SELECT ops.expire_backups() AS expired;
SELECT ops.expire_backups() AS expired_again;
SELECT to_char(created_at, 'YYYY-MM-DD Dy') AS kept
  FROM ops.backups WHERE status = 'completed' AND backup_type = 'daily' ORDER BY created_at;
SELECT location, status FROM ops.backups WHERE backup_type = 'manual' ORDER BY location;
SELECT object_kind, reason, count(*) FROM ops.storage_deletions GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS expired_rows FROM ops.backups WHERE status = 'expired' AND expired_at IS NOT NULL;

-- a pre-deploy backup past its TTL is kept while a rollback deploy that
-- restores it (ops.rollback_release) is unfinished
INSERT INTO ops.backups (project_id, environment_id, backup_type, status, location, size_bytes, sha256,
                         created_at, completed_at, expires_at)
SELECT e.project_id, e.id, 'pre_deploy', 'completed', 'file:///b/pre-deploy-1', 1, repeat('c', 64),
       now() - interval '20 days', now() - interval '20 days', now() - interval '1 day'
  FROM ops.environments e WHERE e.db_name = 'sched_staging'
RETURNING id AS pre \gset
INSERT INTO ops.runs (project_id, environment_id, workflow, git_sha, metadata)
SELECT project_id, id, 'deploy', 'abc1234', jsonb_build_object('restore_backup_id', :pre)
  FROM ops.environments WHERE db_name = 'sched_staging'
RETURNING id AS rollback_run \gset
SELECT ops.expire_backups() AS expired;
SELECT status AS while_queued FROM ops.backups WHERE id = :pre;
UPDATE ops.runs SET status = 'cancelled', finished_at = now() WHERE id = :rollback_run;
SELECT ops.expire_backups() AS expired;
SELECT status AS once_cancelled FROM ops.backups WHERE id = :pre;

-- per-environment policy: keep only 2 daily (and the weekly/monthly set)
INSERT INTO ops.backup_retention (environment_id, keep_daily, keep_weekly, keep_monthly)
SELECT id, 2, 0, 0 FROM ops.environments WHERE db_name = 'sched_staging';
SELECT ops.expire_backups() AS expired;
SELECT to_char(created_at, 'YYYY-MM-DD') AS kept FROM ops.backups
 WHERE status = 'completed' AND backup_type = 'daily' ORDER BY created_at;

-- the worker daemon drains the deletion outbox
SELECT count(*) AS claimed FROM ops.claim_storage_deletions('w1', 3);
SELECT status, count(*) FROM ops.storage_deletions GROUP BY 1 ORDER BY 1;
SELECT (ops.finish_storage_deletion(id, true)).status FROM ops.storage_deletions
 WHERE status = 'claimed' AND object_kind = 'backup' ORDER BY id LIMIT 1;
SELECT count(*) AS deleted_backups FROM ops.backups WHERE status = 'deleted';
SELECT ops.finish_storage_deletion(-1, true);

-- artifacts past their expiry are marked and queued
INSERT INTO ops.runs (project_id, environment_id, workflow, git_sha)
SELECT project_id, id, 'build', 'abc1234' FROM ops.environments WHERE db_name = 'sched_staging';
INSERT INTO ops.artifacts (run_id, project_id, kind, name, location, created_at, expires_at)
SELECT r.id, r.project_id, 'log', v.name, 'file:///a/' || v.name, now() - interval '2 days', v.expires
  FROM ops.runs r, (VALUES ('old.log', now() - interval '1 hour'), ('new.log', now() + interval '1 day')) v(name, expires)
 WHERE r.workflow = 'build';
SELECT ops.expire_artifacts() AS expired, ops.expire_artifacts() AS again;
SELECT name, expired_at IS NOT NULL AS expired FROM ops.artifacts ORDER BY name;

-- run_events partitions: months ahead exist, old months are dropped
CREATE TABLE ops.run_events_2020_01 PARTITION OF ops.run_events
  FOR VALUES FROM ('2020-01-01+00') TO ('2020-02-01+00');
SELECT ops.drop_old_run_event_partitions(0) AS kept_forever;
SELECT ops.drop_old_run_event_partitions(12) AS dropped;
SELECT to_regclass('ops.run_events_2020_01') IS NULL AS gone;
SELECT ops.drop_old_run_event_partitions(-1);

-- Partition bounds are whole UTC months whatever the session's TimeZone:
-- a session in one zone makes this month and three ahead, one in another
-- zone a month more, and none overlaps (an overlap would raise an error).
SET timezone = 'America/Los_Angeles';
SELECT ops.ensure_run_event_partitions(3) AS created_in_los_angeles;
SET timezone = 'Asia/Kolkata';
SELECT ops.ensure_run_event_partitions(4) AS created_in_kolkata;
SET timezone = 'UTC';
SET datestyle = 'ISO';
CREATE FUNCTION pg_temp.monthly_partitions() RETURNS TABLE (name text, lower timestamptz, upper timestamptz)
LANGUAGE sql AS $$
  SELECT c.relname::text, b[1]::timestamptz, b[2]::timestamptz
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
         regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') b
   WHERE i.inhparent = 'ops.run_events'::regclass AND c.relname <> 'run_events_default'
$$;
SELECT count(*) AS months,
       bool_and(lower = date_trunc('month', lower AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS starts_at_utc_midnight,
       bool_and(upper = (date_trunc('month', lower AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC') AS one_month,
       bool_and(name = 'run_events_' || to_char(lower AT TIME ZONE 'UTC', 'YYYY_MM')) AS named_by_month,
       max(upper) - min(lower) BETWEEN interval '150 days' AND interval '153 days' AS five_months_without_gaps
  FROM pg_temp.monthly_partitions();
-- A row that landed in the default partition (the scheduler was down when its
-- month began) moves into that month's partition once it is created.
SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '7 months 3 days') AT TIME ZONE 'UTC' AS stray_at \gset
INSERT INTO ops.run_events (run_id, created_at, kind, level, message)
SELECT min(id), :'stray_at', 'log', 'info', 'written while no partition existed' FROM ops.runs;
SELECT tableoid::regclass = 'ops.run_events_default'::regclass AS in_default
  FROM ops.run_events WHERE message = 'written while no partition existed';
SELECT ops.ensure_run_event_partitions(7) AS created;
SELECT tableoid::regclass::text = 'ops.run_events_' || to_char(created_at, 'YYYY_MM') AS in_its_month,
       (SELECT count(*) FROM ops.run_events_default) AS left_in_default
  FROM ops.run_events WHERE message = 'written while no partition existed';
-- The default partition is append-only again after the move.
SELECT count(*) AS append_only_triggers FROM pg_trigger
 WHERE tgrelid = 'ops.run_events_default'::regclass AND tgname = 'run_events_append_only';
SELECT count(*) = 8 AS months_now FROM pg_temp.monthly_partitions();
RESET datestyle;
