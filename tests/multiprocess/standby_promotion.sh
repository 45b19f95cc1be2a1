#!/usr/bin/env bash
# A streaming standby promoted while backups are scheduled. A primary with
# the library preloaded fires a backup schedule every 2 seconds; a standby
# made with pg_basebackup -R (the library preloaded too, the same settings)
# replays it. On the standby nothing of odooops runs before promotion: no
# scheduler or dispatcher, no error in its log, the fired slots it shows
# are the primary's. The primary stops, the standby is promoted, and its
# scheduler resumes from the replicated schedule: the slots missed while
# no server was primary fire once, and no slot of the whole history has two
# fires, two backups or two backup runs. A run whose lease ran out while no
# server was primary is requeued one odooops.restart_lease_grace after the
# promotion, not at once.
#
# Runs two throw-away clusters of its own (STANDBY_PROMOTION_PORT and the
# port after it; default: free ports) and needs the extension installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
TEST_NAME=standby_promotion
DB=odooops_standby
PG_BINDIR=${PG_BINDIR:-$(pg_config --bindir)}
fail() { echo "$TEST_NAME: FAIL: $*" >&2; exit 1; }
note() { echo "$TEST_NAME: $*"; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
WORK=$(mktemp -d /tmp/odooops-standby.XXXXXX)
chmod 755 "$WORK"
PRIMARY=$WORK/primary
STANDBY=$WORK/standby
cleanup() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    for log in "$PRIMARY/server.log" "$STANDBY/server.log"; do
      [ -f "$log" ] && { echo "--- $log" >&2; tail -n 40 "$log" >&2; }
    done
  fi
  tests/harness/cluster.sh stop "$STANDBY" >/dev/null 2>&1 || true
  tests/harness/cluster.sh stop "$PRIMARY" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

port_free() { ! (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
if [ -n "${STANDBY_PROMOTION_PORT:-}" ]; then
  primary_port=$STANDBY_PROMOTION_PORT
  standby_port=$((STANDBY_PROMOTION_PORT + 1))
else
  primary_port=
  for p in $(seq 54440 2 54458); do
    if port_free "$p" && port_free $((p + 1)); then primary_port=$p; break; fi
  done
  [ -n "$primary_port" ] || fail "no two free ports in 54440-54459"
  standby_port=$((primary_port + 1))
fi

# on primary|standby SQL: one value from $DB there.
on() {
  local dir=$PRIMARY port=$primary_port
  [ "$1" = standby ] && { dir=$STANDBY; port=$standby_port; }
  psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d "${3:-$DB}" -c "$2"
}
# wait_on primary|standby SQL SECONDS: until SQL returns t there.
wait_on() {
  for _ in $(seq 1 $(($3 * 10))); do
    [ "$(on "$1" "$2" 2>/dev/null || true)" = t ] && return 0
    sleep 0.1
  done
  return 1
}
odooops_backends() { on "$1" "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'odooops %'" postgres; }
# Lines of a server log at ERROR, FATAL or PANIC, but for the WAL
# receiver's own when the primary goes away.
log_errors() {
  grep -E '(ERROR|FATAL|PANIC): ' "$1" \
    | grep -vE 'FATAL:  could not (send end-of-streaming message to primary|connect to the primary server)' || true
}

# --- the primary, firing every 2 s -----------------------------------------
tests/harness/cluster.sh start "$PRIMARY" "$primary_port" >/dev/null
on primary "CREATE DATABASE $DB" postgres
GRACE=8
for kv in "database = '$DB'" "scheduler_naptime = '500ms'" "dispatcher_enabled = off" \
  "stale_check_interval = '1s'" "requeue_backoff_base = 0" "restart_lease_grace = '${GRACE}s'"; do
  on primary "ALTER SYSTEM SET odooops.$kv" postgres
done
tests/harness/cluster.sh restart "$PRIMARY"
on primary "CREATE EXTENSION odooops" >/dev/null
on primary "INSERT INTO ops.projects (slug, name) VALUES ('acme', 'Acme');
            INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (1, 'production', 'production', 'acme_prod');
            INSERT INTO ops.backup_schedules (environment_id, cron_expr) VALUES (1, '*/2 * * * * *')"
wait_on primary "SELECT count(*) >= 2 FROM ops.backup_schedule_fires" 10 || fail "the primary's scheduler fires nothing"
note "primary on port $primary_port fires the schedule"

# --- the standby: pg_basebackup -R, the same configuration -----------------
mkdir -p "$STANDBY"
[ "$(id -u)" = 0 ] && chown postgres: "$STANDBY"
as_owner "$PG_BINDIR/pg_basebackup" -h "$PRIMARY" -p "$primary_port" -U postgres -D "$STANDBY/data" -R -X stream -c fast
cat >>"$STANDBY/data/postgresql.conf" <<CONF
port = $standby_port
unix_socket_directories = '$STANDBY'
CONF
sed "s|$PRIMARY|$STANDBY|; s|PGPORT=$primary_port|PGPORT=$standby_port|" "$PRIMARY/env" >"$STANDBY/env"
as_owner "$PG_BINDIR/pg_ctl" -D "$STANDBY/data" -l "$STANDBY/server.log" -w -t 60 start >/dev/null
[ "$(on standby "SHOW shared_preload_libraries" postgres)" = odooops ] || fail "the standby does not preload odooops"
[ "$(on standby "SELECT pg_is_in_recovery()" postgres)" = t ] || fail "the standby is not in recovery"
wait_on standby "SELECT count(*) = 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'" 30 || fail "the standby does not stream"
note "standby on port $standby_port streams from the primary"

# --- before promotion: the standby replays, runs nothing -----------------------
seen=$(on standby "SELECT count(*) FROM ops.backup_schedule_fires")
wait_on standby "SELECT count(*) >= $seen + 3 FROM ops.backup_schedule_fires" 20 || fail "the standby does not replay the primary's fires"
[ "$(odooops_backends standby)" = 0 ] || fail "odooops background workers run on the standby: $(on standby "SELECT string_agg(backend_type, ', ') FROM pg_stat_activity WHERE backend_type LIKE 'odooops %'" postgres)"
[ "$(odooops_backends primary)" = 1 ] || fail "the primary does not run exactly its scheduler"
[ -z "$(log_errors "$STANDBY/server.log")" ] || fail "the standby logged errors: $(log_errors "$STANDBY/server.log" | head -5)"
note "the standby replays $(on standby "SELECT count(*) FROM ops.backup_schedule_fires") fires, runs no odooops worker and logs no error"

# --- the primary stops; the standby is promoted ------------------------------
# A run held with a 4-second lease that runs out while no server is primary.
held=$(on primary "SELECT id FROM ops.queue_run(1, 'production', 'abc1234', 'main', '{}', 'build')")
on primary "SELECT count(*) FROM ops.claim_next_run('w1', 4, ARRAY['build'])" >/dev/null
on primary "SELECT count(*) FROM ops.start_run($held, 'w1', 1, 4)" >/dev/null
wait_on standby "SELECT status = 'running' FROM ops.runs WHERE id = $held" 3 || fail "the standby does not see run $held running"
tests/harness/cluster.sh stop "$PRIMARY"
fires_before=$(on standby "SELECT count(*) FROM ops.backup_schedule_fires")
last_slot_before=$(on standby "SELECT max(slot) FROM ops.backup_schedule_fires")
sleep 5   # slots pass while no server is primary
[ "$(on standby "SELECT count(*) FROM ops.backup_schedule_fires")" = "$fires_before" ] || fail "fires appeared on the standby before promotion"
[ "$(odooops_backends standby)" = 0 ] || fail "odooops workers started on the standby before promotion"
as_owner "$PG_BINDIR/pg_ctl" -D "$STANDBY/data" -w -t 60 promote >/dev/null
[ "$(on standby "SELECT pg_is_in_recovery()" postgres)" = f ] || fail "the standby was not promoted"
wait_on standby "SELECT count(*) >= $fires_before + 3 FROM ops.backup_schedule_fires" 30 || fail "the scheduler did not resume on the promoted standby"
on standby "UPDATE ops.backup_schedules SET enabled = false"
# The lease that ran out during the failover is judged only once the
# restart grace has passed since the promotion (the scheduler's start):
# its worker may still be alive and come back.
wait_on standby "SELECT status = 'queued' FROM ops.runs WHERE id = $held" $((GRACE + 10)) || fail "run $held was never requeued"
requeued_after=$(on standby "SELECT round(extract(epoch FROM e.created_at - a.backend_start), 1)
                               FROM ops.run_events e, pg_stat_activity a
                              WHERE e.run_id = $held AND e.kind = 'transition' AND e.to_status = 'queued' AND e.from_status = 'running'
                                AND a.backend_type = 'odooops scheduler'")
awk -v t="$requeued_after" -v g="$GRACE" 'BEGIN { exit !(t != "" && t >= g - 0.5 && t <= g + 3) }' \
  || fail "the lease that ran out during the failover was judged ${requeued_after:-never} s after the promotion, expected ${GRACE} s (the restart grace)"
note "the lease that ran out during the failover was judged $requeued_after s after the promotion (grace $GRACE s)"
[ "$(odooops_backends standby)" = 1 ] || fail "the promoted standby does not run exactly its scheduler"
note "promoted: the scheduler resumed ($(on standby "SELECT count(*) FROM ops.backup_schedule_fires") fires in all)"

# --- every slot once, across both servers ------------------------------------
on standby "SELECT to_char(slot, 'HH24:MI:SS') || ' fired ' || to_char(fired_at, 'HH24:MI:SS.MS') || ' backup ' || coalesce(backup_id::text, 'none')
              FROM ops.backup_schedule_fires ORDER BY slot" | sed "s/^/$TEST_NAME:   /"
read -r fires distinct_slots backups slot_backups runs errors short_gaps late_after <<<"$(on standby "
  WITH f AS (SELECT *, slot - lag(slot) OVER (ORDER BY slot) AS gap FROM ops.backup_schedule_fires)
  SELECT count(*), count(DISTINCT slot),
         (SELECT count(*) FROM ops.backups), (SELECT count(DISTINCT metadata->>'slot') FROM ops.backups),
         (SELECT count(*) FROM ops.runs WHERE workflow = 'backup'),
         count(error), count(*) FILTER (WHERE gap < interval '2 s'),
         count(*) FILTER (WHERE slot > '$last_slot_before' AND fired_at > slot + interval '2 s')
    FROM f" | tr '|' ' ')"
note "fires=$fires distinct_slots=$distinct_slots backups=$backups slots_with_backups=$slot_backups backup_runs=$runs errors=$errors gaps<2s=$short_gaps late_after_promotion=$late_after"
[ "$fires" = "$distinct_slots" ] || fail "a slot fired twice"
for n in "$backups" "$runs" "$slot_backups"; do
  [ "$n" = "$fires" ] || fail "a slot has no backup, or two backups or backup runs"
done
[ "$errors" = 0 ] || fail "a slot fired with an error"
[ "$short_gaps" = 0 ] || fail "slots closer than the schedule's 2 s"
[ "$late_after" = 1 ] || fail "expected the slots missed while no server was primary to fire once, late: $late_after late fires"
[ -z "$(log_errors "$STANDBY/server.log")" ] || fail "the promoted standby logged errors: $(log_errors "$STANDBY/server.log" | head -5)"
note "OK: no odooops worker on the standby before promotion; after it, the scheduler resumed; $fires slots, each fired once with one backup and one run"
