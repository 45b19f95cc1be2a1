#!/usr/bin/env bash
# The scheduler background worker in a real server with the library preloaded:
#  1. while the extension is not created it waits (one process, no crash loop);
#  2. a backup schedule every 2 seconds across a server stop of ~6 s: every
#     slot fires exactly once, the slots missed while down fire once on
#     return (not once each), and each fire is one queued backup run;
#  3. stale runs (claimed, never started) are requeued, then failed at
#     max_attempts, with run events; alerts open once and resolve.
set -euo pipefail
cd "$(dirname "$0")/../.."
TEST_NAME=bgw_scheduler
DB=odooops_bgw_scheduler
source tests/harness/bgw_lib.sh
trap reset_cluster EXIT

qp "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
qp "CREATE DATABASE $DB"
# Verbose messages: the server log shows each message's SQLSTATE.
qp "ALTER SYSTEM SET log_error_verbosity = 'verbose'"
use_database scheduler_naptime=500ms stale_check_interval=1s claim_timeout=2s alert_interval=1s \
  requeue_backoff_base=0 worker_restart_interval=1 dispatcher_enabled=off

# --- 1. no extension: wait, do not crash-loop --------------------------------
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'odooops scheduler' AND datname = current_database()" 20 \
  || fail "scheduler did not start in $DB"
pid1=$(worker_pid scheduler)
sleep 3
pid2=$(worker_pid scheduler)
[ "$pid1" = "$pid2" ] || fail "scheduler restarted while the extension is absent ($pid1 -> $pid2)"
grep -q "extension odooops is not created in database \"$DB\"; waiting" "$PGHOST/server.log" || fail "no waiting message"
note "no extension: scheduler $pid1 waits without restarting"
q "CREATE EXTENSION odooops" >/dev/null
q "INSERT INTO ops.projects (slug, name) VALUES ('acme', 'Acme');
   INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (1, 'production', 'production', 'acme_prod');"

# --- 2. a schedule every 2 s across a server stop ----------------------------
q "INSERT INTO ops.backup_schedules (environment_id, cron_expr) VALUES (1, '*/2 * * * * *')"
sleep 7
pg_stop fast
note "server stopped 7 s into the schedule; down for 6 s"
sleep 6
pg_start
sleep 7
q "UPDATE ops.backup_schedules SET enabled = false"
q "SELECT to_char(slot, 'HH24:MI:SS') || ' fired ' || to_char(fired_at, 'HH24:MI:SS.MS') || ' backup ' || coalesce(backup_id::text, 'none')
     FROM ops.backup_schedule_fires ORDER BY slot" | sed "s/^/$TEST_NAME:   /"
read -r fires distinct_slots backups runs errors short_gaps long_gaps late <<<"$(q "
  WITH f AS (SELECT *, slot - lag(slot) OVER (ORDER BY slot) AS gap FROM ops.backup_schedule_fires)
  SELECT count(*), count(DISTINCT slot),
         (SELECT count(*) FROM ops.backups), (SELECT count(*) FROM ops.runs WHERE workflow = 'backup'),
         count(error), count(*) FILTER (WHERE gap < interval '2 s'), count(*) FILTER (WHERE gap > interval '2 s'),
         count(*) FILTER (WHERE fired_at > slot + interval '2 s')
    FROM f" | tr '|' ' ')"
note "fires=$fires distinct_slots=$distinct_slots backups=$backups backup_runs=$runs errors=$errors gaps<2s=$short_gaps gaps>2s=$long_gaps late=$late"
[ "$fires" -ge 5 ] || fail "too few fires"
[ "$fires" = "$distinct_slots" ] && [ "$fires" = "$backups" ] && [ "$fires" = "$runs" ] || fail "a slot fired twice or without its backup"
[ "$errors" = 0 ] && [ "$short_gaps" = 0 ] || fail "errors or double fires"
[ "$long_gaps" = 1 ] || fail "expected exactly one gap (the downtime), got $long_gaps"
[ "$late" = 1 ] || fail "expected exactly one late fire (the missed slots, once), got $late"
dup=$(q "SELECT count(*) FROM (SELECT metadata->>'slot' FROM ops.backups GROUP BY 1 HAVING count(*) > 1) x")
[ "$dup" = 0 ] || fail "duplicate backups for a slot"
note "schedule OK: $fires slots fired exactly once each; the slots missed while down fired once on return"

# --- 3. stale runs and alerts ---------------------------------------------------
# The queue is emptied before the threshold drops: the scheduler evaluates
# the alerts as soon as it reloads, and the backups queued above would open
# a backpressure alert of their own.
q "SELECT count(*) FROM (SELECT ops.cancel_run(id) FROM ops.runs WHERE status = 'queued') x" >/dev/null
qp "ALTER SYSTEM SET odooops.queue_backpressure_threshold = 5" && qp "SELECT pg_reload_conf()" >/dev/null
q "SELECT ops.queue_run(1, 'production', 'abc1234', 'main', '{}', 'build', 0, 'stale', 2)" >/dev/null
q "SELECT count(*) FROM ops.claim_next_run('w1', 600)" >/dev/null
wait_for "SELECT status = 'queued' AND attempt = 1 FROM ops.runs WHERE idempotency_key = 'stale'" 10 \
  || fail "stale claimed run not requeued"
wait_for "SELECT count(*) = 1 FROM ops.alerts WHERE kind = 'stale_run' AND status = 'open'" 5 || fail "no stale_run alert"
q "SELECT count(*) FROM ops.claim_next_run('w2', 600)" >/dev/null
wait_for "SELECT status = 'failed' AND attempt = 2 FROM ops.runs WHERE idempotency_key = 'stale'" 10 \
  || fail "stale run not failed at max_attempts"
q "SELECT e.level || ' ' || e.kind || ': ' || e.message FROM ops.run_events e JOIN ops.runs r ON r.id = e.run_id
    WHERE r.idempotency_key = 'stale' AND e.actor = 'odooops' ORDER BY e.id" | sed "s/^/$TEST_NAME:   /"
[ "$(q "SELECT count(*) FROM ops.run_events e JOIN ops.runs r ON r.id = e.run_id WHERE r.idempotency_key = 'stale' AND e.actor = 'odooops' AND e.kind = 'transition'")" = 2 ] \
  || fail "expected two detector transitions"
q "SELECT count(*) FROM (SELECT ops.queue_run(1, 'production', 'abc1234', 'main', '{}', 'build') FROM generate_series(1, 8)) x" >/dev/null
wait_for "SELECT count(*) = 1 FROM ops.alerts WHERE kind = 'queue_backpressure' AND status = 'open'" 5 || fail "no backpressure alert"
sleep 2.5
[ "$(q "SELECT count(*) FROM ops.alerts WHERE kind = 'queue_backpressure'")" = 1 ] || fail "backpressure alert duplicated"
q "SELECT count(*) FROM (SELECT ops.cancel_run(id) FROM ops.runs WHERE status = 'queued') x" >/dev/null
wait_for "SELECT status = 'resolved' FROM ops.alerts WHERE kind = 'queue_backpressure'" 5 || fail "backpressure alert not resolved"
[ "$(q "SELECT count(*) FROM ops.alerts WHERE kind = 'queue_backpressure'")" = 1 ] || fail "backpressure alert reopened"
note "stale runs OK: requeued, then failed at max_attempts 2; alerts opened once and resolved"

# --- 4. how it fails, reports and stops -----------------------------------------
# Its work shows in the statistics views while it runs (not only once it
# exits): the fires of a new schedule are counted as they happen.
q "UPDATE ops.backup_schedules SET enabled = true"
wait_for "SELECT n_tup_ins >= $fires + 2 AND n_tup_ins = (SELECT count(*) FROM ops.backup_schedule_fires)
            FROM pg_stat_user_tables WHERE relid = 'ops.backup_schedule_fires'::regclass" 15 ||
  fail "the scheduler's inserts do not show in pg_stat_user_tables: $(q "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relid = 'ops.backup_schedule_fires'::regclass")"
q "UPDATE ops.backup_schedules SET enabled = false"
# A task that fails is reported with its own SQLSTATE, and the others go on.
q "CREATE OR REPLACE FUNCTION ops.expire_approvals() RETURNS integer LANGUAGE plpgsql AS
   \$\$ BEGIN RAISE EXCEPTION 'approvals are unreadable' USING ERRCODE = '22P05', HINT = 'check the table'; END \$\$"
wait_for "SELECT true WHERE pg_read_file('$PGHOST/server.log') ~ 'WARNING:  22P05: odooops scheduler: expire approvals failed: approvals are unreadable'" 10 ||
  fail "the failed task's WARNING does not carry its SQLSTATE: $(grep 'expire approvals failed' "$PGHOST/server.log" | tail -n 1)"
grep -A3 "22P05: odooops scheduler: expire approvals failed" "$PGHOST/server.log" | grep -q "HINT:  check the table" || fail "the hint was lost"
pid=$(worker_pid scheduler)
# SIGTERM ends its loop (C++ objects destroyed, logged), and the postmaster
# starts it again.
kill -TERM "$pid"
wait_for "SELECT true WHERE pg_read_file('$PGHOST/server.log') ~ 'odooops scheduler shutting down'" 10 || fail "no clean shutdown on SIGTERM"
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'odooops scheduler' AND pid <> $pid" 15 ||
  fail "the scheduler was not started again after SIGTERM"
note "failures OK: statistics reported while running; a failing task logged with SQLSTATE 22P05 and its hint; SIGTERM shut it down cleanly, restarted"
note "OK"
