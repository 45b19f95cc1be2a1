#!/usr/bin/env bash
# The worker across a long control-plane outage (OUTAGE_SECONDS, default
# 600), with the real binary, on a cluster of its own whose scheduler (the
# control plane's stale-run detector) watches the control-plane database. A
# run's step prints 20 numbered lines, the control plane stops, the step
# prints the other lines during the outage and ends successfully, long past
# the run's lease. Meanwhile the worker keeps the lines in its spool, keeps
# retrying with backoff and logs little. When the control plane comes back,
# the lease that ran out while nothing could renew it is not held against
# the worker (docs/background-workers.md, "Stale runs": a restart gives such
# a lease a grace period): the worker delivers every line exactly once and
# the run's true result, succeeded by attempt 1; neither the detector nor an
# idle worker that rescues expired leases requeues it, and nothing runs
# twice. The run of a worker killed during the outage is requeued one grace
# period after the restart, not before, and completed by the idle worker.
#
# tests/run_all.sh runs it in the background (tests/background/) while the
# other suites run. OUTAGE_SECONDS shortens it by hand; OUTAGE_PORT chooses
# the port (default: a free one in 54430-54439, outside the range other
# tests' clusters take, so no other cluster takes it while this one is down).
# Needs the extension installed and the worker in build/.
set -euo pipefail
OUTAGE_SECONDS=${OUTAGE_SECONDS:-600}
LEASE=60
[ "$OUTAGE_SECONDS" -gt $((LEASE + 10)) ] || { echo "worker_long_outage: OUTAGE_SECONDS must exceed the lease ($LEASE s) by 10 s" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# A TERM from tests/run_all.sh runs the cleanup (stops this cluster).
trap 'exit 143' TERM INT

port=${OUTAGE_PORT:-}
if [ -z "$port" ]; then
  for p in $(seq 54430 54439); do
    (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null || { port=$p; break; }
  done
  [ -n "$port" ] || { echo "worker_long_outage: no free port in 54430-54439" >&2; exit 1; }
fi
CLUSTER=$(mktemp -d /tmp/odooops-long-outage-pg.XXXXXX)
chmod 755 "$CLUSTER"
"$ROOT/tests/harness/cluster.sh" start "$CLUSTER" "$port" >/dev/null
# shellcheck disable=SC1091
source "$CLUSTER/env"
source "$ROOT/tests/e2e/lib.sh"
EXTRA_CLEANUP+=("$ROOT/tests/harness/cluster.sh stop $CLUSTER; rm -rf $CLUSTER")
server_up() { pg_isready -q -h "$CLUSTER" -p "$PGPORT"; }

LINES=400
# Lines 21..400 come during the outage, spread over its first half.
PACE=$(awk -v s="$OUTAGE_SECONDS" -v n="$LINES" 'BEGIN { printf "%.3f", s / 2 / (n - 20) }')
mkdir -p "$WORK/steps/build"
cat >"$WORK/steps/build/10-count" <<STEP
#!/usr/bin/env bash
for i in \$(seq 1 $LINES); do
  echo "line \$i of $LINES"
  if [ "\$i" = 20 ]; then
    for _ in \$(seq 1 600); do [ -e "$WORK/plane-down" ] && break; sleep 0.5; done
  fi
  [ "\$i" -gt 20 ] && sleep $PACE
done
touch "$WORK/step-done.\$ODOOOPS_RUN_ID"
STEP
chmod +x "$WORK/steps/build/10-count"

# lines RUN -> "stored distinct first last" of the step's numbered lines
lines() {
  scalar "SELECT count(*) || ' ' || count(DISTINCT message) || ' ' || coalesce(min(n), 0) || ' ' || coalesce(max(n), 0)
            FROM (SELECT message, split_part(message, ' ', 2)::int AS n FROM ops.run_events
                   WHERE run_id = $1 AND kind = 'log' AND message LIKE 'line % of $LINES') x"
}

setup_control_plane
# The scheduler works in the control-plane database, as in production.
psql -X -q -d postgres -c "ALTER SYSTEM SET odooops.database = '$CP_DB'" \
  -c "ALTER SYSTEM SET odooops.stale_check_interval = '1s'" -c "ALTER SYSTEM SET odooops.requeue_backoff_base = 0" \
  -c "ALTER SYSTEM SET odooops.restart_lease_grace = '60s'"
"$ROOT/tests/harness/cluster.sh" restart "$CLUSTER"
for _ in $(seq 1 100); do
  [ "$(scalar "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'odooops scheduler'")" = 1 ] && break
  sleep 0.1
done
[ "$(scalar "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'odooops scheduler' AND datname = current_database()")" = 1 ] \
  || fail "no scheduler in $CP_DB"
GRACE=$(scalar "SELECT setting FROM pg_settings WHERE name = 'odooops.restart_lease_grace'")
# wait_holder RUN WORKER: waits until WORKER holds the run.
wait_holder() {
  for _ in $(seq 1 300); do
    [ "$(scalar "SELECT claimed_by FROM ops.runs WHERE id = $1")" = "$2" ] && return 0
    sleep 0.1
  done
  fail "run $1 is not held by $2"
}
start_worker lo --steps-dir "$WORK/steps" --kinds build --lease $LEASE --heartbeat-interval 5
WORKER=$LAST_WORKER_PID
run=$(queue dev build)
wait_holder "$run" lo
# A worker that dies during the outage, holding a test run whose first
# attempt never ends by itself.
mkdir -p "$WORK/steps/test"
cat >"$WORK/steps/test/10-wait" <<'STEP'
#!/usr/bin/env bash
[ "$ODOOOPS_ATTEMPT" = 1 ] && sleep 100000
echo "attempt $ODOOOPS_ATTEMPT done"
STEP
chmod +x "$WORK/steps/test/10-wait"
start_worker lo-dead --steps-dir "$WORK/steps" --kinds test --lease $LEASE --heartbeat-interval 5
DEAD=$LAST_WORKER_PID
dead_run=$(queue dev test)
wait_holder "$dead_run" lo-dead
# An idle worker that rescues expired leases (the default) and takes what
# is requeued.
start_worker lo-idle --steps-dir "$WORK/steps" --kinds build,test --lease $LEASE --heartbeat-interval 5
IDLE=$LAST_WORKER_PID

for _ in $(seq 1 300); do
  [ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $run AND message = 'line 20 of $LINES'")" = 1 ] && break
  sleep 0.1
done
[ "$(lines "$run")" = "20 20 1 20" ] || fail "run $run: lines before the outage are $(lines "$run"), expected 20 20 1 20"
[ "$(scalar "SELECT claimed_by FROM ops.runs WHERE id = $run")" = lo ] || fail "run $run is not held by worker lo"

say "the control plane stops for $OUTAGE_SECONDS s (lease $LEASE s)"
"$ROOT/tests/harness/cluster.sh" stop "$CLUSTER"
down_at=$(date +%s)
log_lines_before=$(wc -l <"$WORK/worker-lo.log")
touch "$WORK/plane-down"
{ kill -KILL "$DEAD"; wait "$DEAD"; } 2>/dev/null || true
for _ in $(seq 1 $((OUTAGE_SECONDS * 8 / 10))); do [ -e "$WORK/step-done.$run" ] && break; sleep 1; done
[ -e "$WORK/step-done.$run" ] || fail "the step did not end during the outage"
# Every line printed while the control plane is away waits in the spool.
spooled=$(cat "$STATE"/spool/run-"$run"-a1.*.events 2>/dev/null | grep -c "line [0-9]* of $LINES" || true)
[ "$spooled" -ge $((LINES - 20)) ] || fail "the spool holds $spooled numbered lines, expected at least $((LINES - 20))"
remaining=$((OUTAGE_SECONDS - ($(date +%s) - down_at)))
if [ "$remaining" -gt 0 ]; then
  sleep "$remaining" &
  wait $!   # a TERM ends the wait at once
fi
server_up && fail "the control plane came back by itself"
alive "$WORKER" || fail "worker lo did not survive the outage"
alive "$IDLE" || fail "worker lo-idle did not survive the outage"
log_growth=$(( $(wc -l <"$WORK/worker-lo.log") - log_lines_before ))
# Repeated failures are logged once a minute per kind (output, heartbeat,
# result), not once per try.
[ "$log_growth" -le $((4 * OUTAGE_SECONDS / 60 + 10)) ] \
  || { tail -30 "$WORK/worker-lo.log" >&2; fail "worker lo wrote $log_growth log lines during a $OUTAGE_SECONDS s outage"; }
# Backoff: the delays grow and stay at most 15 s.
delays=$(sed -n 's/.*output not delivered yet.*trying again in \([0-9.]*\) s.*/\1/p' "$WORK/worker-lo.log")
[ -n "$delays" ] || fail "worker lo never said it would try again"
awk '$1 > 15 { bad = 1 } END { exit bad }' <<<"$delays" || fail "a retry delay exceeds 15 s: $(tr '\n' ' ' <<<"$delays")"

say "the control plane returns after $(( $(date +%s) - down_at )) s"
"$ROOT/tests/harness/cluster.sh" restart "$CLUSTER" 2>/dev/null || "$ROOT/tests/harness/cluster.sh" restart "$CLUSTER"
up_at=$(date +%s)
wait_status "$run" "succeeded|failed|queued|cancelled" 60
recovered=$(( $(date +%s) - up_at ))
status=$(scalar "SELECT status || ' ' || attempt || ' ' || coalesce(claimed_by, '-') FROM ops.runs WHERE id = $run")
[ "$status" = "succeeded 1 lo" ] || { show_events "$run" >&2; fail "run $run is '$status', expected 'succeeded 1 lo': its step succeeded and its worker never went away"; }
got=$(lines "$run")
[ "$got" = "$LINES $LINES 1 $LINES" ] || fail "run $run: lines stored/distinct/first/last are $got, expected $LINES $LINES 1 $LINES"
[ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $run AND kind = 'transition' AND to_status = 'queued' AND from_status IS NOT NULL")" = 0 ] \
  || fail "run $run was requeued"
[ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $run AND attempt > 1")" = 0 ] || fail "run $run has events of another attempt"
[ "$(scalar "SELECT result->'steps'->0->>'outcome' FROM ops.runs WHERE id = $run")" != "" ] || fail "run $run has no step result"
[ "$recovered" -le 30 ] || fail "the result took $recovered s after the control plane returned (retries back off to 15 s at most)"
# The dead worker's run: requeued one grace period after the start, by
# the server's clock, and completed by the idle worker.
wait_status "$dead_run" succeeded $((GRACE + 40))
requeued_after=$(scalar "SELECT round(extract(epoch FROM min(created_at) - pg_postmaster_start_time()))::int FROM ops.run_events
                          WHERE run_id = $dead_run AND kind = 'transition' AND from_status = 'running' AND to_status = 'queued'")
awk -v t="$requeued_after" -v g="$GRACE" 'BEGIN { exit !(t != "" && t >= g && t <= g + 10) }' \
  || { show_events "$dead_run" >&2; fail "the dead worker's run was requeued ${requeued_after:-never} s after the start, expected $GRACE-$((GRACE + 10)) s"; }
[ "$(scalar "SELECT claimed_by || ' ' || attempt FROM ops.runs WHERE id = $dead_run")" = "lo-idle 2" ] || fail "run $dead_run was not completed by lo-idle's attempt 2"
[ "$(scalar "SELECT count(*) FROM ops.runs WHERE claimed_by = 'lo-idle' AND id <> $dead_run")" = 0 ] || fail "worker lo-idle took another run"
[ "$(scalar "SELECT status || ' ' || attempt FROM ops.runs WHERE id = $run")" = "succeeded 1" ] || fail "run $run changed after it succeeded"
alive "$WORKER" || fail "worker lo exited after the outage"
alive "$IDLE" || fail "worker lo-idle exited after the outage"
grep -q "output delivered again" "$WORK/worker-lo.log" || fail "worker lo did not say its output went through again"
say "OK: a $OUTAGE_SECONDS s outage (lease $LEASE s): $LINES lines stored once, run succeeded by attempt 1 ${recovered} s after the return, $log_growth worker log lines meanwhile; the dead worker's run requeued $requeued_after s after the start (grace $GRACE s)"
